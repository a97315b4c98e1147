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
/// The API key's user, as Odoo's log names it.
const AUTHOR_USER: i64 = 2;
/// Work centers of the demo data.
pub(super) const WORKCENTERS: [(i64, &str); 2] = [(1, "Assembly Line 1"), (2, "Drill Station 1")];
/// The external ids of the chatter's subtypes: (id, module, name, model, res_id).
pub(super) const XMLIDS: [(i64, &str, &str, &str, i64); 2] = [
    (301, "mail", "mt_comment", "mail.message.subtype", 1),
    (302, "mail", "mt_note", "mail.message.subtype", 2),
];
/// The subtypes by id, as a message shows them.
const SUBTYPES: [(i64, &str); 2] = [(1, "Discussions"), (2, "Note")];
/// What a work order expects when nobody said otherwise (minutes).
pub(super) const EXPECTED_MINUTES: f64 = 60.0;
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
            f("duration_expected", "float", true, None),
            // The sum of its time tracking, in minutes.
            f("duration", "float", true, None),
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
    match (model, method) {
        (MESSAGE, "create") => return Some(create_message(state, &fields, args)),
        (PRODUCTIVITY, "create") => return Some(create_productivity(state, &fields, args)),
        (PRODUCTIVITY, "write") => return Some(write_productivity(state, &fields, args)),
        (PRODUCTIVITY, "unlink") => return Some(unlink_productivity(state, args)),
        _ => {}
    }
    let fixed = match model {
        LOSS => losses(),
        _ => BTreeMap::new(),
    };
    let table = match model {
        MESSAGE => &state.records.messages,
        WORKORDER => &state.records.workorders,
        PRODUCTIVITY => &state.records.productivity,
        _ => &fixed,
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
        _ if method.starts_with('_') => Err(OrmError::access(format!(
            "Private methods (such as '{model}.{method}') cannot be called remotely."
        ))),
        _ => Err(OrmError::unknown_method(model, method)),
    })
}

/// `message_post` on one MO: the note is stored as the chatter keeps it, and its id comes back
/// in a list. A text body is escaped and kept as one paragraph, its line breaks left as they
/// are (HTML shows them as spaces: one run-on line in the chatter); with `body_is_html` the
/// caller's markup is kept, and Odoo logs a WARNING for every such post by an internal user
/// (recorded on 19; `mail_thread.py`).
pub(super) fn post(state: &mut State, res_id: i64, args: &Map<String, Value>) -> Answer {
    let text = match args.get("body") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(false)) | Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let body = if args.get("body_is_html").is_some_and(|v| v.as_bool() == Some(true)) {
        state.warnings.push(format!(
            "WARNING mes odoo.addons.mail.models.mail_thread: Posting HTML message using body_is_html=True, \
             use a Markup object instead (user: {})",
            AUTHOR_USER
        ));
        text
    } else {
        format!("<p>{}</p>", escape(&text))
    };
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
    Ok(Some(json!([insert_message(
        state,
        res_id,
        body,
        subtype,
        message_type
    )])))
}

fn insert_message(state: &mut State, res_id: i64, body: String, subtype: Value, message_type: String) -> i64 {
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
    id
}

/// `create` on `mail.message`: a body given as text is HTML to the field (sanitized, its markup
/// kept: the simulation keeps it as given), with no warning; the author is the key's user. On
/// an MO it needs what posting there needs ([`super::rights::post_refused`]).
fn create_message(state: &mut State, fields: &[Field], args: &Map<String, Value>) -> Answer {
    let (list, single) = orm::vals_list(args, fields, MESSAGE)?;
    let mut rows = Vec::new();
    for vals in &list {
        let res_id = vals.get("res_id").and_then(Value::as_i64).unwrap_or(0);
        if vals.get("model").and_then(Value::as_str) != Some("mrp.production") {
            return Err(OrmError::value("the simulation keeps messages on MOs only".into()));
        }
        if let Some(refused) = super::rights::post_refused(state) {
            return Err(refused);
        }
        if !state.mos.contains_key(&res_id) {
            return Err(OrmError::missing_on(MESSAGE));
        }
        let subtype = match vals.get("subtype_id").and_then(Value::as_i64) {
            Some(id) => match SUBTYPES.iter().find(|s| s.0 == id) {
                Some((id, name)) => json!([id, name]),
                None => return Err(OrmError::missing_on(MESSAGE)),
            },
            None => json!(false),
        };
        let body = vals.get("body").and_then(Value::as_str).unwrap_or_default().to_string();
        let kind = vals
            .get("message_type")
            .and_then(Value::as_str)
            .unwrap_or("email")
            .to_string();
        rows.push((res_id, body, subtype, kind));
    }
    let ids: Vec<i64> = rows
        .into_iter()
        .map(|(res_id, body, subtype, kind)| insert_message(state, res_id, body, subtype, kind))
        .collect();
    Ok(Some(if single { json!(ids[0]) } else { json!(ids) }))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// A work order on MO `production` at work center `workcenter`, expecting `minutes`, listed in
/// the MO's `workorder_ids`.
pub(super) fn add_workorder(state: &mut State, production: i64, workcenter: i64, minutes: f64) -> Option<i64> {
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
        "duration_expected": minutes, "duration": 0.0,
    });
    state
        .records
        .workorders
        .insert(id, row.as_object().cloned().unwrap_or_default());
    Some(id)
}

/// Work orders for MO `to` like those of MO `from` (a backorder's), none of their time.
pub(super) fn copy_workorders(state: &mut State, from: i64, to: i64) {
    let ids: Vec<i64> = state.mos.get(&from).map_or_else(Vec::new, |mo| {
        mo["workorder_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect()
    });
    for id in ids {
        let Some(wo) = state.records.workorders.get(&id) else {
            continue;
        };
        let center = wo["workcenter_id"][0].as_i64().unwrap_or(1);
        let minutes = wo["duration_expected"].as_f64().unwrap_or(EXPECTED_MINUTES);
        add_workorder(state, to, center, minutes);
    }
}

/// What `button_mark_done` does to MO `mo`'s work orders (`_post_inventory`, recorded on 19):
/// every one not done or cancelled whose `duration` is 0 gets `duration = duration_expected`,
/// which Odoo writes as a productive time-tracking row ("Time Tracking: <user>") ending now;
/// each is then done.
pub(super) fn book_expected_time(state: &mut State, mo: i64) {
    let ids: Vec<i64> = state.mos.get(&mo).map_or_else(Vec::new, |m| {
        m["workorder_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect()
    });
    let now = super::clock::now_unix();
    for id in ids {
        let Some(wo) = state.records.workorders.get(&id) else {
            continue;
        };
        if matches!(wo["state"].as_str(), Some("done" | "cancel")) {
            continue;
        }
        let expected = wo["duration_expected"].as_f64().unwrap_or(0.0);
        if wo["duration"].as_f64().unwrap_or(0.0) == 0.0 && expected > 0.0 {
            let (loss_id, loss, kind) = LOSSES[6];
            let row = json!({
                "production_id": [mo, state.mos[&mo]["name"]],
                "workorder_id": [id, wo["name"]],
                "workcenter_id": wo["workcenter_id"],
                "company_id": [1, "My Company (San Francisco)"],
                "loss_id": [loss_id, loss], "loss_type": kind,
                "description": "Time Tracking: Mitchell Admin",
                "date_start": super::clock::format_odoo(now - (expected * 60.0).round() as i64),
                "date_end": super::clock::format_odoo(now),
                "duration": expected,
                "user_id": [2, "Mitchell Admin"],
            });
            insert_productivity(state, row);
        }
        if let Some(wo) = state.records.workorders.get_mut(&id) {
            wo.insert("state".into(), json!("done"));
        }
    }
}

fn insert_productivity(state: &mut State, mut row: Value) -> i64 {
    let id = state.records.next_productivity;
    state.records.next_productivity += 1;
    row["id"] = json!(id);
    let workorder = row["workorder_id"][0].as_i64();
    state
        .records
        .productivity
        .insert(id, row.as_object().cloned().unwrap_or_default());
    if let Some(workorder) = workorder {
        recompute_duration(state, workorder);
    }
    id
}

/// A work order's `duration`: the sum of its time tracking.
fn recompute_duration(state: &mut State, workorder: i64) {
    let total: f64 = state
        .records
        .productivity
        .values()
        .filter(|r| r["workorder_id"][0].as_i64() == Some(workorder))
        .filter_map(|r| r["duration"].as_f64())
        .sum();
    if let Some(wo) = state.records.workorders.get_mut(&workorder) {
        wo.insert("duration".into(), json!(total));
    }
}

/// Minutes between two of Odoo's datetimes; 0 when either is missing.
fn minutes(start: &str, end: Option<&str>) -> f64 {
    match (super::clock::parse_odoo(start), end.and_then(super::clock::parse_odoo)) {
        (Some(s), Some(e)) => (e - s) as f64 / 60.0,
        _ => 0.0,
    }
}

/// `write` on `mrp.workcenter.productivity`: its times and description; the duration follows.
fn write_productivity(state: &mut State, fields: &[Field], args: &Map<String, Value>) -> Answer {
    let ids = orm::ids(args)?;
    let vals = args
        .get("vals")
        .and_then(Value::as_object)
        .ok_or_else(|| OrmError::missing_argument("vals"))?;
    if let Some(unknown) = vals.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
        return Err(OrmError::value(format!(
            "Invalid field '{unknown}' in '{PRODUCTIVITY}'"
        )));
    }
    if let Some(missing) = ids.iter().find(|id| !state.records.productivity.contains_key(id)) {
        return Err(OrmError::missing_on(&format!("{PRODUCTIVITY}({missing},)")));
    }
    let mut touched = Vec::new();
    for id in &ids {
        let row = state.records.productivity.get_mut(id).expect("checked above");
        for name in ["date_start", "date_end", "description"] {
            if let Some(value) = vals.get(name) {
                row.insert(name.into(), value.clone());
            }
        }
        let start = row["date_start"].as_str().unwrap_or_default().to_string();
        let end = row["date_end"].as_str().map(str::to_string);
        row.insert("duration".into(), json!(minutes(&start, end.as_deref())));
        touched.extend(row["workorder_id"][0].as_i64());
    }
    for workorder in touched {
        recompute_duration(state, workorder);
    }
    Ok(Some(json!(true)))
}

/// `unlink` on `mrp.workcenter.productivity`.
fn unlink_productivity(state: &mut State, args: &Map<String, Value>) -> Answer {
    let ids = orm::ids(args)?;
    let mut touched = Vec::new();
    for id in ids {
        if let Some(row) = state.records.productivity.remove(&id) {
            touched.extend(row["workorder_id"][0].as_i64());
        }
    }
    for workorder in touched {
        recompute_duration(state, workorder);
    }
    Ok(Some(json!(true)))
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
        let minutes = minutes(&start, end.as_deref());
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
    let ids: Vec<i64> = rows.into_iter().map(|row| insert_productivity(state, row)).collect();
    Ok(Some(if single { json!(ids[0]) } else { json!(ids) }))
}
