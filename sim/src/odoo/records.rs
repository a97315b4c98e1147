//! The models beside `mrp.production` that pushing shop-floor results back touches: the
//! chatter (`mail.message`, written by `message_post`), work orders, and time tracking
//! (`mrp.workcenter.productivity` and its loss types), as recorded on Odoo 19 (see
//! `../shared/protocols/odoo.md`, "Changing MO state").

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::orm::{self, Answer, Field, OrmError};
use super::State;

pub(super) const MESSAGE: &str = "mail.message";
pub(super) const WORKORDER: &str = "mrp.workorder";
pub(super) const PRODUCTIVITY: &str = "mrp.workcenter.productivity";
pub(super) const LOSS: &str = "mrp.workcenter.productivity.loss";

/// The author of what the API key's user posts (its partner), as a message shows it.
const AUTHOR: (i64, &str) = (3, "YourCompany, Mitchell Admin");
/// Work centers of the demo data.
pub(super) const WORKCENTERS: [(i64, &str); 2] = [(1, "Assembly Line 1"), (2, "Drill Station 1")];
/// Loss types of a fresh database: (id, name, loss_type).
const LOSSES: [(i64, &str, &str); 7] = [
    (1, "Material Availability", "availability"),
    (2, "Equipment Failure", "availability"),
    (3, "Setup and Adjustments", "availability"),
    (4, "Reduced Speed", "performance"),
    (5, "Process Defect", "quality"),
    (6, "Reduced Yield", "quality"),
    (7, "Fully Productive Time", "productive"),
];

/// Rows of the models here.
#[derive(Default)]
pub(super) struct Records {
    pub(super) messages: BTreeMap<i64, Map<String, Value>>,
    pub(super) workorders: BTreeMap<i64, Map<String, Value>>,
    pub(super) productivity: BTreeMap<i64, Map<String, Value>>,
    next_message: i64,
    next_workorder: i64,
    next_productivity: i64,
}

impl Records {
    pub(super) fn new() -> Records {
        Records {
            // Ids of a database that has lived a while.
            next_message: 10_340,
            next_workorder: 1,
            next_productivity: 1,
            ..Default::default()
        }
    }
}

fn fields(model: &str) -> Option<Vec<Field>> {
    let f = orm::field;
    Some(match model {
        MESSAGE => vec![
            f("id", "integer", true, None),
            f("model", "char", true, None),
            f("res_id", "many2one_reference", true, None),
            f("body", "html", true, None),
            f("date", "datetime", true, None),
            f("author_id", "many2one", true, Some("res.partner")),
            f("subtype_id", "many2one", true, Some("mail.message.subtype")),
            f("message_type", "selection", true, None),
        ],
        WORKORDER => vec![
            f("id", "integer", true, None),
            f("name", "char", true, None),
            f("production_id", "many2one", true, Some("mrp.production")),
            f("workcenter_id", "many2one", true, Some("mrp.workcenter")),
            f("state", "selection", true, None),
        ],
        PRODUCTIVITY => vec![
            f("id", "integer", true, None),
            f("production_id", "many2one", true, Some("mrp.production")),
            f("workorder_id", "many2one", true, Some("mrp.workorder")),
            f("workcenter_id", "many2one", true, Some("mrp.workcenter")),
            f("company_id", "many2one", true, Some("res.company")),
            f("loss_id", "many2one", true, Some("mrp.workcenter.productivity.loss")),
            f("loss_type", "selection", true, None),
            f("description", "text", true, None),
            f("date_start", "datetime", true, None),
            f("date_end", "datetime", true, None),
            f("duration", "float", true, None),
            f("user_id", "many2one", true, Some("res.users")),
        ],
        LOSS => vec![
            f("id", "integer", true, None),
            f("name", "char", true, None),
            f("loss_type", "selection", true, None),
        ],
        _ => return None,
    })
}

fn losses() -> BTreeMap<i64, Map<String, Value>> {
    LOSSES
        .iter()
        .map(|(id, name, kind)| {
            let row = json!({"id": id, "name": name, "loss_type": kind});
            (*id, row.as_object().cloned().unwrap_or_default())
        })
        .collect()
}

/// `model.method` for the models here; None for a model that is not one of them.
pub(super) fn call(state: &mut State, model: &str, method: &str, args: &Map<String, Value>) -> Option<Answer> {
    let fields = fields(model)?;
    let losses = losses();
    let table = match model {
        MESSAGE => &state.records.messages,
        WORKORDER => &state.records.workorders,
        PRODUCTIVITY => &state.records.productivity,
        _ => &losses,
    };
    Some(match method {
        "search_read" => orm::search(table, &fields, model, "id desc", args, true).and_then(|found| {
            let names = orm::field_list(&fields, args.get("fields"), model)?;
            Ok(Some(Value::Array(
                found.iter().map(|r| orm::project(r, &names)).collect(),
            )))
        }),
        "read" => orm::ids(args).and_then(|ids| {
            let names = orm::field_list(&fields, args.get("fields"), model)?;
            Ok(Some(Value::Array(
                ids.iter()
                    .filter_map(|id| table.get(id))
                    .map(|r| orm::project(r, &names))
                    .collect(),
            )))
        }),
        "fields_get" => Ok(Some(orm::fields_get(model, &fields, args))),
        "create" if model == PRODUCTIVITY => create_productivity(state, &fields, args),
        _ if method.starts_with('_') => Err(OrmError::access(format!(
            "Private methods (such as '{model}.{method}') cannot be called remotely."
        ))),
        _ => Err(OrmError::unknown_method(model, method)),
    })
}

/// `message_post` on one MO: the note is stored as the chatter keeps it, its body as HTML (a
/// plain-text body is escaped and wrapped in a paragraph), and its id comes back in a list.
pub(super) fn post(state: &mut State, res_id: i64, args: &Map<String, Value>) -> Answer {
    let text = match args.get("body") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(false)) | Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let body = format!("<p>{}</p>", escape(&text).replace('\n', "<br>"));
    let subtype = match args.get("subtype_xmlid").and_then(Value::as_str) {
        Some("mail.mt_note") => json!([2, "Note"]),
        Some("mail.mt_comment") => json!([1, "Discussions"]),
        Some(other) => return Err(OrmError::value(format!("External ID not found in the system: {other}"))),
        None => json!(false),
    };
    let message_type = args
        .get("message_type")
        .and_then(Value::as_str)
        .unwrap_or("notification")
        .to_string();
    state.records.next_message += 1;
    let id = state.records.next_message;
    let row = json!({
        "id": id, "model": "mrp.production", "res_id": res_id, "body": body, "date": State::now(),
        "author_id": [AUTHOR.0, AUTHOR.1], "subtype_id": subtype, "message_type": message_type,
    });
    state
        .records
        .messages
        .insert(id, row.as_object().cloned().unwrap_or_default());
    Ok(Some(json!([id])))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// A work order on MO `production` at work center `workcenter`, listed in its `workorder_ids`.
pub(super) fn add_workorder(state: &mut State, production: i64, workcenter: i64) -> Option<i64> {
    let mo = state.mos.get_mut(&production)?;
    let id = state.records.next_workorder;
    state.records.next_workorder += 1;
    let mut ids: Vec<Value> = mo["workorder_ids"].as_array().cloned().unwrap_or_default();
    ids.push(json!(id));
    mo.insert("workorder_ids".into(), Value::Array(ids));
    let name = mo["name"].clone();
    let center = WORKCENTERS
        .iter()
        .find(|w| w.0 == workcenter)
        .map_or("Work Center", |w| w.1);
    let row = json!({
        "id": id, "name": "Assembly", "production_id": [production, name],
        "workcenter_id": [workcenter, center], "state": "ready",
    });
    state
        .records
        .workorders
        .insert(id, row.as_object().cloned().unwrap_or_default());
    Some(id)
}

/// `create` on `mrp.workcenter.productivity`: the work center, the loss type and the start are
/// required (the company defaults), the duration is computed in minutes, the user is the key's.
fn create_productivity(state: &mut State, fields: &[Field], args: &Map<String, Value>) -> Answer {
    let (list, single) = orm::vals_list(args, fields, PRODUCTIVITY)?;
    // All or nothing, as one transaction.
    let mut rows = Vec::new();
    for vals in &list {
        for (name, label) in [
            ("workcenter_id", "Work Center"),
            ("loss_id", "Loss Reason"),
            ("date_start", "Start Date"),
        ] {
            if vals
                .get(name)
                .is_none_or(|v| matches!(v, Value::Bool(false) | Value::Null))
            {
                return Err(OrmError::validation(format!(
                    "The operation cannot be completed: Missing required value for the field '{label}' ({name}).\n\
                     Model: 'Workcenter Productivity Log' ({PRODUCTIVITY})\n\
                     - create/update: a mandatory field is not set\n\
                     - delete: another model requires the record being deleted, you can archive it instead\n"
                )));
            }
        }
        let id_of = |name: &str| vals.get(name).and_then(Value::as_i64);
        let center = id_of("workcenter_id").and_then(|id| WORKCENTERS.iter().find(|w| w.0 == id));
        let loss = id_of("loss_id").and_then(|id| LOSSES.iter().find(|l| l.0 == id));
        let (Some(center), Some(loss)) = (center, loss) else {
            return Err(OrmError::missing_on(PRODUCTIVITY));
        };
        let production = match id_of("production_id") {
            Some(id) => Some((
                id,
                state.mos.get(&id).ok_or_else(|| OrmError::missing_on(PRODUCTIVITY))?,
            )),
            None => None,
        };
        let workorder = match id_of("workorder_id") {
            Some(id) => Some((
                id,
                state
                    .records
                    .workorders
                    .get(&id)
                    .ok_or_else(|| OrmError::missing_on(PRODUCTIVITY))?,
            )),
            None => None,
        };
        let text = |name: &str| vals.get(name).and_then(Value::as_str).map(str::to_string);
        let start = text("date_start").unwrap_or_default();
        let end = text("date_end");
        let minutes = match (
            super::clock::parse_odoo(&start),
            end.as_deref().and_then(super::clock::parse_odoo),
        ) {
            (Some(s), Some(e)) => (e - s) as f64 / 60.0,
            _ => 0.0,
        };
        rows.push(json!({
            "production_id": production.map_or(json!(false), |(id, mo)| json!([id, mo["name"]])),
            "workorder_id": workorder.map_or(json!(false), |(id, wo)| json!([id, wo["name"]])),
            "workcenter_id": [center.0, center.1],
            "company_id": [1, "My Company (San Francisco)"],
            "loss_id": [loss.0, loss.1],
            "loss_type": loss.2,
            "description": text("description").map_or(json!(false), Value::String),
            "date_start": start,
            "date_end": end.map_or(json!(false), Value::String),
            "duration": minutes,
            "user_id": [2, "Mitchell Admin"],
        }));
    }
    let mut ids = Vec::new();
    for mut row in rows {
        let id = state.records.next_productivity;
        state.records.next_productivity += 1;
        row["id"] = json!(id);
        state
            .records
            .productivity
            .insert(id, row.as_object().cloned().unwrap_or_default());
        ids.push(id);
    }
    Ok(Some(if single { json!(ids[0]) } else { json!(ids) }))
}
