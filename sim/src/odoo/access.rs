//! The API user's rights as Odoo checks them (model-level access rights, not record rules):
//! what each method needs, the refusals, and the two ways to ask ahead — `has_access` (18+)
//! and `check_access_rights` (every version), as recorded on 19 ("Asking for rights ahead" in
//! `../shared/protocols/odoo.md`).

use serde_json::{json, Map, Value};

use super::orm::{Answer, OrmError};
use super::State;

/// The models a user without Manufacturing (or Inventory) rights cannot touch.
pub(super) const MANUFACTURING: [&str; 5] = [
    "mrp.production",
    "stock.picking",
    "mrp.workorder",
    "mrp.workcenter.productivity",
    "mrp.workcenter.productivity.loss",
];

/// The access operation a method needs on its model.
fn operation(method: &str) -> &'static str {
    match method {
        "search_read" | "search" | "search_count" | "read" => "read",
        "create" => "create",
        "unlink" => "unlink",
        _ => "write",
    }
}

/// Whether the API user may `op` on `model`.
fn allowed(state: &State, model: &str, op: &str) -> bool {
    let denied = state.denied.iter().any(|m| m == model);
    let read_only = state.read_only.iter().any(|m| m == model);
    !(denied || (read_only && op != "read"))
}

/// `has_access` and `check_access_rights` on any model; None for every other method.
pub(super) fn ask(state: &State, model: &str, method: &str, args: &Map<String, Value>) -> Option<Answer> {
    if !matches!(method, "has_access" | "check_access_rights") {
        return None;
    }
    let known = MANUFACTURING.contains(&model) || ["mail.message", "ir.model.data"].contains(&model);
    if !known || (method == "has_access" && state.config.version < 18) {
        return None;
    }
    let Some(op) = args.get("operation").and_then(Value::as_str) else {
        return Some(Err(OrmError::missing_argument("operation")));
    };
    if !["read", "write", "create", "unlink"].contains(&op) {
        return Some(Err(OrmError::value(format!("Invalid access mode: {op:?}"))));
    }
    let ok = allowed(state, model, op);
    Some(match method {
        "has_access" => Ok(Some(json!(ok))),
        // Recorded on 19: None when allowed; before 18 it answered True.
        _ if ok => Ok((state.config.version < 18).then_some(json!(true))),
        _ => Err(OrmError::not_allowed(model, op)),
    })
}

/// Odoo's refusal of `model.method` for the API user, if it refuses it. `fields_get` checks
/// no access; posting on an MO is refused as the message's creation (recorded on 19).
pub(super) fn refused(state: &State, model: &str, method: &str) -> Option<OrmError> {
    if method == "fields_get" {
        return None;
    }
    if method == "message_post" && model == "mrp.production" {
        return post_refused(state);
    }
    let op = operation(method);
    (!allowed(state, model, op)).then(|| OrmError::not_allowed(model, op))
}

/// Why a message on an MO cannot be created by the API user: posting needs the right to
/// write the MO (`_mail_post_access`). The refusal's first words are modelled; the recording
/// kept "(Document type: Message, Operation: create)".
pub(super) fn post_refused(state: &State) -> Option<OrmError> {
    (!allowed(state, "mrp.production", "write")).then(|| {
        OrmError::access(
            "The requested operation cannot be completed due to security restrictions. Please contact your \
             system administrator.\n\n(Document type: Message, Operation: create)"
                .into(),
        )
    })
}
