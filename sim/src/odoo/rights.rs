//! Who calls, and what they may do (model-level access rights, not record rules): the
//! configured user (uid 2, an administrator), API users a test adds
//! ([`super::SimOdoo::add_api_user`]), models a user has no rights on ([`super::SimOdoo::deny`],
//! [`super::SimOdoo::without_manufacturing_rights`]) or may only read
//! ([`super::SimOdoo::deny_writes`]); what each method needs and Odoo's refusals; and asking
//! ahead with `has_access` (18.0+) and `check_access_rights`, as recorded on 19.0
//! (`../shared/protocols/odoo.md`, "Asking for rights ahead").

use serde_json::{json, Map, Value};

use super::ir;
use super::orm::{Answer, OrmError};
use super::State;

/// A user with an API key of their own, beside the configured one.
pub(super) struct ApiUser {
    pub(super) uid: i64,
    pub(super) login: String,
    pub(super) key: String,
    /// In Administration/Settings: may change models, fields and views.
    pub(super) admin: bool,
}

/// The configured user's id: Mitchell Admin, an administrator.
const CONFIGURED_UID: i64 = 2;

/// Models whose records only an administrator (Administration/Settings) may change; every
/// internal user may read them.
const ADMIN_ONLY: [&str; 4] = [ir::MODEL, ir::FIELDS, ir::DATA, ir::VIEW];

/// Whether the bearer of `key` is a user, and an administrator.
pub(super) fn by_key(state: &State, key: &str) -> Option<bool> {
    if key == state.config.api_key {
        return Some(true);
    }
    state.users.iter().find(|u| u.key == key).map(|u| u.admin)
}

/// The uid `login` logs in as with `secret` (the configured user's password or key, another
/// user's key).
pub(super) fn login(state: &State, login: &str, secret: &str) -> Option<i64> {
    if login == state.config.login && (secret == state.config.password || secret == state.config.api_key) {
        return Some(CONFIGURED_UID);
    }
    let user = state.users.iter().find(|u| u.login == login && u.key == secret)?;
    Some(user.uid)
}

/// Whether `uid` with `secret` is a user (`execute_kw`), and an administrator.
pub(super) fn by_uid(state: &State, uid: Option<i64>, secret: &str) -> Option<bool> {
    if uid == Some(CONFIGURED_UID) && (secret == state.config.password || secret == state.config.api_key) {
        return Some(true);
    }
    let user = state.users.iter().find(|u| Some(u.uid) == uid && u.key == secret)?;
    Some(user.admin)
}

/// Adds a user with an API key; the new uid.
pub(super) fn add(state: &mut State, login: &str, key: &str, admin: bool) -> i64 {
    let uid = state
        .users
        .iter()
        .map(|u| u.uid)
        .max()
        .unwrap_or(CONFIGURED_UID)
        .max(CONFIGURED_UID)
        + 1;
    state.users.push(ApiUser {
        uid,
        login: login.to_string(),
        key: key.to_string(),
        admin,
    });
    uid
}

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

/// Whether the caller may `operation` (`read`, `write`, `create`, `unlink`) records of `model`,
/// as the model's access rights say (record rules aside).
fn may(state: &State, model: &str, operation: &str) -> bool {
    if state.denied.iter().any(|m| m == model) {
        return false;
    }
    if operation != "read" && state.read_only.iter().any(|m| m == model) {
        return false;
    }
    !(ADMIN_ONLY.contains(&model) && operation != "read" && !state.caller_admin)
}

/// Odoo's refusal of `model.method` for the caller, if it refuses it. `fields_get` checks no
/// access; posting on an MO is refused as the message's creation (recorded on 19); the
/// administrators' models answer with their own refusal (`check_admin`, in `ir`).
pub(super) fn refused(state: &State, model: &str, method: &str) -> Option<OrmError> {
    if method == "fields_get" || ADMIN_ONLY.contains(&model) {
        return None;
    }
    if method == "message_post" && model == "mrp.production" {
        return post_refused(state);
    }
    let op = operation(method);
    (!may(state, model, op)).then(|| OrmError::not_allowed(model, op))
}

/// Why a message on an MO cannot be created by the caller: posting needs the right to write
/// the MO (`_mail_post_access`). The refusal's first words are modelled; the recording kept
/// "(Document type: Message, Operation: create)".
pub(super) fn post_refused(state: &State) -> Option<OrmError> {
    (!may(state, "mrp.production", "write")).then(|| {
        OrmError::access(
            "The requested operation cannot be completed due to security restrictions. Please contact your \
             system administrator.\n\n(Document type: Message, Operation: create)"
                .into(),
        )
    })
}

/// The caller's refusal to change records of an administrators' model: Odoo names the
/// operation, the model and the group that may (the shape of D16/E14, with its group).
pub(super) fn check_admin(state: &State, model: &str, operation: &str) -> Result<(), OrmError> {
    if may(state, model, operation) {
        return Ok(());
    }
    let verb = match operation {
        "write" => "modify",
        "unlink" => "delete",
        "create" => "create",
        _ => "access",
    };
    let description = match model {
        ir::MODEL => "Models",
        ir::FIELDS => "Fields",
        ir::DATA => "Model Data",
        ir::VIEW => "View",
        other => other,
    };
    Err(OrmError::access(format!(
        "You are not allowed to {verb} '{description}' ({model}) records.\n\n\
         This operation is allowed for the following groups:\n\t- Administration/Settings\n\n\
         Contact your administrator to request access if necessary."
    )))
}

/// `has_access` and `check_access_rights`, on any model the simulator serves; None for other
/// methods. They answer for a user without rights too: they are how to ask ahead.
pub(super) fn call(state: &State, model: &str, method: &str, args: &Map<String, Value>) -> Option<Answer> {
    if !matches!(method, "has_access" | "check_access_rights") {
        return None;
    }
    if !super::orm::served(model) {
        return Some(Err(OrmError::unknown_model(model)));
    }
    let Some(operation) = args.get("operation").and_then(Value::as_str) else {
        return Some(Err(OrmError::missing_argument("operation")));
    };
    if !["read", "write", "create", "unlink"].contains(&operation) {
        return Some(Err(OrmError::value(format!("Invalid access mode: {operation:?}"))));
    }
    let allowed = may(state, model, operation);
    Some(match method {
        // 18.0 brought has_access; 16 and 17 have only check_access_rights.
        "has_access" if state.config.version < 18 => Err(OrmError::unknown_method(model, method)),
        "has_access" => Ok(Some(json!(allowed))),
        // `raise_exception=False` asks for a yes or no, on every version.
        _ if args.get("raise_exception").is_some_and(|r| r == false) => Ok(Some(json!(allowed))),
        _ if !allowed && ADMIN_ONLY.contains(&model) => check_admin(state, model, operation).map(|()| None),
        _ if !allowed => Err(OrmError::not_allowed(model, operation)),
        // 18.0 made it a wrapper of check_access, which returns None; before, True.
        _ if state.config.version >= 18 => Ok(None),
        _ => Ok(Some(json!(true))),
    })
}
