//! The ORM behind every API of the simulated Odoo: models, fields per version, the methods the
//! agent may call, and Odoo's exceptions for everything else.

use serde_json::{json, Map, Value};

use super::domain;
use super::State;

/// An Odoo exception, with what each API makes of it.
#[derive(Debug, Clone)]
pub(super) struct OrmError {
    /// The exception class as JSON-RPC reports it (`data.name`).
    pub name: &'static str,
    pub message: String,
    /// JSON-2's status, class and message (werkzeug wraps some exceptions).
    pub status: u16,
    pub json2_name: &'static str,
    pub json2_message: String,
}

impl OrmError {
    pub(super) fn same(name: &'static str, status: u16, message: String) -> OrmError {
        OrmError {
            name,
            message: message.clone(),
            status,
            json2_name: name,
            json2_message: message,
        }
    }
    pub(super) fn value(message: String) -> OrmError {
        OrmError::same("builtins.ValueError", 500, message)
    }
    pub(super) fn access(message: String) -> OrmError {
        OrmError::same("odoo.exceptions.AccessError", 403, message)
    }
    /// A user outside the model's groups (D16, E14): Odoo names the operation and the model's
    /// description.
    pub(super) fn not_allowed(model: &str, op: &str) -> OrmError {
        let operation = match op {
            "write" => "modify",
            "create" => "create",
            "unlink" => "delete",
            _ => "access",
        };
        let description = match model {
            "mrp.production" => "Manufacturing Order",
            "stock.picking" => "Transfer",
            "mail.message" => "Message",
            "mrp.workorder" => "Work Order",
            "mrp.workcenter.productivity" => "Workcenter Productivity Log",
            "mrp.workcenter.productivity.loss" => "Workcenter Productivity Losses",
            other => other,
        };
        OrmError::access(format!(
            "You are not allowed to {operation} '{description}' ({model}) records.\n\n\
             This operation is allowed for the following groups:\n\t- Inventory/User\n\t- \
             Manufacturing/Administrator\n\t- Manufacturing/User\n\n\
             Contact your administrator to request access if necessary."
        ))
    }
    fn missing(model: &str, ids: &[i64]) -> OrmError {
        OrmError::same(
            "odoo.exceptions.MissingError",
            404,
            format!(
                "Record does not exist or has been deleted.\n(Record: {}, User: 2)",
                recordset(model, ids)
            ),
        )
    }
    pub(super) fn validation(message: String) -> OrmError {
        OrmError::same("odoo.exceptions.ValidationError", 422, message)
    }
    pub(super) fn unknown_model(model: &str) -> OrmError {
        OrmError {
            name: "odoo.exceptions.UserError",
            message: format!("Object {model} doesn't exist"),
            status: 404,
            json2_name: "werkzeug.exceptions.NotFound",
            json2_message: format!("the model '{model}' does not exist"),
        }
    }
    pub(super) fn unknown_method(model: &str, method: &str) -> OrmError {
        let message = format!("The method '{model}.{method}' does not exist");
        OrmError {
            name: "builtins.AttributeError",
            message: message.clone(),
            status: 404,
            json2_name: "werkzeug.exceptions.NotFound",
            json2_message: message,
        }
    }
    /// A create or write naming a related record that does not exist.
    pub(super) fn missing_on(model: &str) -> OrmError {
        OrmError::same(
            "odoo.exceptions.MissingError",
            404,
            format!("Record does not exist or has been deleted.\n(Record: {model}, User: 2)"),
        )
    }
    pub(super) fn missing_argument(name: &str) -> OrmError {
        let message = format!("missing a required argument: '{name}'");
        OrmError {
            name: "builtins.TypeError",
            message: message.clone(),
            status: 422,
            json2_name: "werkzeug.exceptions.UnprocessableEntity",
            json2_message: message,
        }
    }
}

/// A record set as Python prints it: `mrp.production(7,)`, `mrp.production(7, 8)`.
fn recordset(model: &str, ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    match ids.len() {
        1 => format!("{model}({},)", ids[0]),
        _ => format!("{model}({})", ids.join(", ")),
    }
}

/// A field: name, type, stored, relation.
pub(super) struct Field {
    pub name: String,
    pub kind: &'static str,
    pub stored: bool,
    pub relation: Option<&'static str>,
    /// The label `fields_get` gives, when it is not the standard one (a custom field's).
    pub label: Option<String>,
}

pub(super) fn field(name: &str, kind: &'static str, stored: bool, relation: Option<&'static str>) -> Field {
    Field {
        name: name.to_string(),
        kind,
        stored,
        relation,
        label: None,
    }
}

/// `mrp.production`'s fields on this version, as `fields_get` lists them.
pub(super) fn mo_fields(version: u32, custom: &[String]) -> Vec<Field> {
    let mut fields = vec![
        field("id", "integer", true, None),
        field("name", "char", true, None),
        field("state", "selection", true, None),
        field("priority", "selection", true, None),
        field("product_id", "many2one", true, Some("product.product")),
        field("product_qty", "float", true, None),
        field("product_uom_id", "many2one", true, Some("uom.uom")),
        field("qty_producing", "float", true, None),
        field("qty_produced", "float", false, None),
        field("origin", "char", true, None),
        field("create_date", "datetime", true, None),
        field("write_date", "datetime", true, None),
        field("date_start", "datetime", true, None),
        field("date_finished", "datetime", true, None),
        field("date_deadline", "datetime", true, None),
        field("bom_id", "many2one", true, Some("mrp.bom")),
        field("company_id", "many2one", true, Some("res.company")),
        field("user_id", "many2one", true, Some("res.users")),
        field("reservation_state", "selection", true, None),
        field("workorder_ids", "one2many", true, Some("mrp.workorder")),
        field("move_finished_ids", "one2many", true, Some("stock.move")),
        field("move_raw_ids", "one2many", true, Some("stock.move")),
        field("move_dest_ids", "one2many", true, Some("stock.move")),
        field("picking_ids", "many2many", false, Some("stock.picking")),
    ];
    if version >= 19 {
        fields.push(field("lot_producing_ids", "many2many", true, Some("stock.lot")));
    } else {
        fields.push(field("lot_producing_id", "many2one", true, Some("stock.lot")));
    }
    // What links an MO and its backorders (19 has no procurement_group_id on the MO).
    fields.push(group_field(version));
    if version <= 16 {
        // 17 renamed the planned dates to date_start / date_finished, which on 16 are the actual ones.
        fields.push(field("date_planned_start", "datetime", true, None));
        fields.push(field("date_planned_finished", "datetime", true, None));
    }
    fields.extend(custom.iter().map(|name| field(name, "char", true, None)));
    fields
}

/// The field that links an MO and its backorders on `version`: `production_group_id`
/// (`mrp.production.group`) on 19, `procurement_group_id` before.
pub(super) fn group_field(version: u32) -> Field {
    if version >= 19 {
        field("production_group_id", "many2one", true, Some("mrp.production.group"))
    } else {
        field("procurement_group_id", "many2one", true, Some("procurement.group"))
    }
}

pub(super) fn picking_fields() -> Vec<Field> {
    vec![
        field("id", "integer", true, None),
        field("name", "char", true, None),
        field("origin", "char", true, None),
        field("state", "selection", true, None),
        field("priority", "selection", true, None),
        field("create_date", "datetime", true, None),
        field("write_date", "datetime", true, None),
        field("scheduled_date", "datetime", true, None),
        field("picking_type_id", "many2one", true, Some("stock.picking.type")),
    ]
}

/// The label, readonly, required and selection attributes `fields_get` gives (recorded on 19).
fn describe(model: &str, name: &str) -> (String, bool, bool, Option<Value>) {
    const PRIORITY: &str = r#"[["0", "Normal"], ["1", "Urgent"]]"#;
    const MO_STATE: &str = r#"[["draft", "Draft"], ["confirmed", "Confirmed"], ["progress", "In Progress"],
        ["to_close", "To Close"], ["done", "Done"], ["cancel", "Cancelled"]]"#;
    const RESERVATION: &str = r#"[["confirmed", "Waiting"], ["assigned", "Ready"],
        ["waiting", "Waiting Another Operation"]]"#;
    const PICKING_STATE: &str = r#"[["draft", "Draft"], ["waiting", "Waiting Another Operation"],
        ["confirmed", "Waiting"], ["assigned", "Ready"], ["done", "Done"], ["cancel", "Cancelled"]]"#;
    let selection = |text: &str| serde_json::from_str::<Value>(text).ok();
    let (label, readonly, required, choices) = match (model, name) {
        (_, "id") => ("ID", true, false, None),
        (_, "create_date") => ("Created on", true, false, None),
        (_, "write_date") => ("Last Updated on", true, false, None),
        (_, "priority") => ("Priority", false, false, selection(PRIORITY)),
        ("mrp.production", "name") => ("Reference", true, false, None),
        ("mrp.production", "state") => ("State", true, false, selection(MO_STATE)),
        ("mrp.production", "origin") => ("Source", false, false, None),
        ("mrp.production", "product_id") => ("Product", false, true, None),
        ("mrp.production", "product_qty") => ("Quantity To Produce", false, true, None),
        ("mrp.production", "product_uom_id") => ("Unit", false, true, None),
        ("mrp.production", "lot_producing_ids" | "lot_producing_id") => ("Lot/Serial Number", false, false, None),
        ("mrp.production", "qty_producing") => ("Quantity Producing", false, false, None),
        ("mrp.production", "qty_produced") => ("Quantity Produced", true, false, None),
        ("mrp.production", "date_deadline") => ("Deadline", false, false, None),
        ("mrp.production", "date_start") => ("Start", false, true, None),
        ("mrp.production", "date_finished") => ("End", true, false, None),
        ("mrp.production", "date_planned_start") => ("Scheduled Date", false, true, None),
        ("mrp.production", "date_planned_finished") => ("Scheduled End Date", false, false, None),
        ("mrp.production", "bom_id") => ("Bill of Material", false, false, None),
        ("mrp.production", "reservation_state") => ("MO Readiness", true, false, selection(RESERVATION)),
        ("mrp.production", "move_finished_ids") => ("Finished Products", false, false, None),
        ("mrp.production", "move_raw_ids") => ("Components", false, false, None),
        ("mrp.production", "workorder_ids") => ("Work Orders", false, false, None),
        ("mrp.production", "move_dest_ids") => ("Stock Movements of Produced Goods", false, false, None),
        ("mrp.production", "user_id") => ("Responsible", false, false, None),
        ("mrp.production", "company_id") => ("Company", false, true, None),
        ("mrp.production", "picking_ids") => ("Picking associated to this manufacturing order", true, false, None),
        ("stock.picking", "name") => ("Reference", false, false, None),
        ("stock.picking", "origin") => ("Source Document", false, false, None),
        ("stock.picking", "state") => ("Status", true, false, selection(PICKING_STATE)),
        ("stock.picking", "scheduled_date") => ("Scheduled Date", false, true, None),
        ("stock.picking", "picking_type_id") => ("Operation Type", false, true, None),
        _ => {
            let mut label = name.replace('_', " ");
            if let Some(first) = label.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            return (label, false, false, None);
        }
    };
    (label.to_string(), readonly, required, choices)
}

/// A new MO record with every stored field set, as the ORM's `create` leaves it.
#[allow(clippy::too_many_arguments)]
pub(super) fn new_mo(
    state: &State,
    id: i64,
    name: String,
    product: (i64, String),
    qty: f64,
    mo_state: String,
    origin: Option<String>,
    custom: Map<String, Value>,
) -> Map<String, Value> {
    let now_unix = crate::clock::now_unix();
    let now = json!(crate::clock::format_odoo(now_unix));
    let tomorrow = json!(crate::clock::format_odoo(now_unix + 86_400));
    let bom = super::BOMS
        .iter()
        .find(|(_, p)| *p == product.0)
        .map_or(Value::Bool(false), |(b, _)| json!([b, product.1.clone()]));
    let mut record = json!({
        "id": id, "name": name, "state": mo_state, "priority": "0",
        "product_id": [product.0, product.1.clone()], "product_qty": qty, "product_uom_id": [1, "Units"],
        "qty_producing": 0.0, "origin": origin.map_or(Value::Bool(false), Value::String),
        "create_date": now, "write_date": now, "date_deadline": false,
        "bom_id": bom, "company_id": [1, "My Company (San Francisco)"], "user_id": [2, "Mitchell Admin"],
        "reservation_state": "assigned", "workorder_ids": [], "move_finished_ids": [], "move_raw_ids": [],
        "move_dest_ids": [],
    });
    let record = record.as_object_mut().expect("an object literal");
    if state.config.version >= 19 {
        record.insert("lot_producing_ids".into(), json!([]));
    } else {
        record.insert("lot_producing_id".into(), json!(false));
    }
    // A group of its own, named after it; its backorders join it.
    record.insert(group_field(state.config.version).name, json!([id, name.clone()]));
    if state.config.version <= 16 {
        record.insert("date_planned_start".into(), now.clone());
        record.insert("date_planned_finished".into(), tomorrow);
        record.insert("date_start".into(), json!(false));
        record.insert("date_finished".into(), json!(false));
    } else {
        record.insert("date_start".into(), now.clone());
        record.insert("date_finished".into(), tomorrow);
    }
    for name in &state.config.custom_fields {
        record.insert(name.clone(), custom.get(name).cloned().unwrap_or(Value::Bool(false)));
    }
    record.clone()
}

/// A stored record with its computed (non-stored) fields added.
pub(super) fn with_computed(record: &Map<String, Value>) -> Map<String, Value> {
    let mut record = record.clone();
    let done = record.get("state").and_then(Value::as_str) == Some("done");
    let produced = if done {
        record.get("qty_producing").cloned().unwrap_or(json!(0.0))
    } else {
        json!(0.0)
    };
    record.insert("qty_produced".into(), produced);
    record.insert("picking_ids".into(), json!([]));
    record
}

/// What a method answered: a value, or nothing (Python's None).
pub(super) type Answer = Result<Option<Value>, OrmError>;

/// The positional parameters of each method, for APIs that pass them positionally.
pub(super) fn positional_names(method: &str) -> &'static [&'static str] {
    match method {
        "search_read" => &["domain", "fields", "offset", "limit", "order"],
        "search" => &["domain", "offset", "limit", "order"],
        "search_count" => &["domain"],
        "fields_get" => &["allfields", "attributes"],
        "create" => &["vals_list"],
        "read" => &["ids", "fields"],
        "write" => &["ids", "vals"],
        "has_access" | "check_access_rights" => &["operation"],
        _ => &["ids"],
    }
}

/// What `/jsonrpc` and `/web/dataset/call_kw` make of a method's result: a method declared
/// with `@api.returns(…, lambda value: value.id)` (`message_post`) gives the bare id there,
/// where JSON-2 gives the record set's ids as a list.
pub(super) fn downgraded(method: &str, result: Option<Value>) -> Option<Value> {
    match (method, result) {
        ("message_post", Some(Value::Array(ids))) if ids.len() == 1 => ids.into_iter().next(),
        (_, result) => result,
    }
}

/// The `ids` argument: a list, or one id.
pub(super) fn ids(args: &Map<String, Value>) -> Result<Vec<i64>, OrmError> {
    let ids = args.get("ids").ok_or_else(|| OrmError::missing_argument("ids"))?;
    match ids {
        Value::Number(n) => Ok(vec![n.as_i64().unwrap_or(0)]),
        other => serde_json::from_value(other.clone()).map_err(|e| OrmError::value(format!("ids: {e}"))),
    }
}

/// Whether the simulator serves `model`.
pub(super) fn served(model: &str) -> bool {
    use super::{ir, records};
    [
        "mrp.production",
        "stock.picking",
        records::MESSAGE,
        records::WORKORDER,
        records::PRODUCTIVITY,
        records::LOSS,
        ir::MODEL,
        ir::FIELDS,
        ir::DATA,
        ir::VIEW,
    ]
    .contains(&model)
}

/// Runs `model.method` with named arguments.
pub(super) fn call(state: &mut State, model: &str, method: &str, args: &Map<String, Value>) -> Answer {
    // Asking ahead answers a user without rights too.
    if let Some(answer) = super::rights::call(state, model, method, args) {
        return answer;
    }
    if let Some(refused) = super::rights::refused(state, model, method) {
        return Err(refused);
    }
    if let Some(answer) = super::records::call(state, model, method, args) {
        return answer;
    }
    if let Some(answer) = super::ir::call(state, model, method, args) {
        return answer;
    }
    let fields = match model {
        "mrp.production" => {
            let mut fields = mo_fields(state.config.version, &state.config.custom_fields);
            fields.extend(super::ir::mo_fields(state));
            fields
        }
        "stock.picking" => picking_fields(),
        _ => return Err(OrmError::unknown_model(model)),
    };
    if method.starts_with('_') {
        return Err(OrmError::access(format!(
            "Private methods (such as '{model}.{method}') cannot be called remotely."
        )));
    }
    let ids = || ids(args);
    let (table, default_order) = if model == "mrp.production" {
        (&state.mos, "priority desc, date_start asc, id asc")
    } else {
        (&state.pickings, "priority desc, scheduled_date asc, id desc")
    };
    match method {
        "search_read" => {
            let found = search(table, &fields, model, default_order, args, true)?;
            let names = field_list(&fields, args.get("fields"), model)?;
            Ok(Some(Value::Array(found.iter().map(|r| project(r, &names)).collect())))
        }
        "search" => {
            let found = search(table, &fields, model, default_order, args, false)?;
            Ok(Some(json!(found.iter().map(|r| r["id"].clone()).collect::<Vec<_>>())))
        }
        "search_count" => {
            let domain = args.get("domain").ok_or_else(|| OrmError::missing_argument("domain"))?;
            let expr = domain::parse(domain, &fields, model)?;
            Ok(Some(json!(table.values().filter(|r| expr.matches(r)).count())))
        }
        "read" => {
            let ids = ids()?;
            let names = field_list(&fields, args.get("fields"), model)?;
            // Records that do not exist (any more) are left out of the answer, not an error.
            Ok(Some(Value::Array(
                ids.iter()
                    .filter_map(|id| table.get(id))
                    .map(|r| project(r, &names))
                    .collect(),
            )))
        }
        "fields_get" => Ok(Some(fields_get(model, &fields, args))),
        "write" => {
            let ids = ids()?;
            let vals = args
                .get("vals")
                .and_then(Value::as_object)
                .ok_or_else(|| OrmError::missing_argument("vals"))?;
            write(state, model, &fields, &ids, vals)?;
            Ok(Some(json!(true)))
        }
        "create" if model == "mrp.production" => create(state, &fields, args),
        "action_confirm" | "action_start" | "action_cancel" if model == "mrp.production" => {
            let ids = ids()?;
            let new_state = match method {
                "action_confirm" => "confirmed",
                "action_start" => "progress",
                _ => "cancel",
            };
            write(
                state,
                model,
                &fields,
                &ids,
                &Map::from_iter([("state".to_string(), json!(new_state))]),
            )?;
            // action_start returns None: JSON-RPC then has no `result`, JSON-2 answers `null`.
            Ok((method != "action_start").then_some(json!(true)))
        }
        "set_qty_producing" if model == "mrp.production" => {
            let ids = ids()?;
            existing(state, model, &ids)?;
            for id in &ids {
                if let Some(mo) = state.mos.get_mut(id) {
                    recompute_state(mo);
                }
            }
            Ok(None)
        }
        "button_mark_done" if model == "mrp.production" => mark_done(state, model, &ids()?, args),
        "message_post" => {
            let ids = ids()?;
            existing(state, model, &ids)?;
            if ids.len() != 1 {
                return Err(OrmError::value(format!(
                    "Expected singleton: {}",
                    recordset(model, &ids)
                )));
            }
            super::records::post(state, ids[0], args)
        }
        _ => Err(OrmError::unknown_method(model, method)),
    }
}

fn existing(state: &State, model: &str, ids: &[i64]) -> Result<(), OrmError> {
    let table = if model == "mrp.production" {
        &state.mos
    } else {
        &state.pickings
    };
    let missing: Vec<i64> = ids.iter().copied().filter(|id| !table.contains_key(id)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(OrmError::missing(model, &missing))
    }
}

fn float(record: &Map<String, Value>, name: &str) -> f64 {
    record.get(name).and_then(Value::as_f64).unwrap_or(0.0)
}

/// `state` is a stored computed field: without work orders, producing the whole quantity makes
/// an open MO `to_close`, producing part of it `progress`.
fn recompute_state(mo: &mut Map<String, Value>) {
    let open = matches!(
        mo.get("state").and_then(Value::as_str),
        Some("confirmed" | "progress" | "to_close")
    );
    let (producing, qty) = (float(mo, "qty_producing"), float(mo, "product_qty"));
    if !open || producing <= 0.0 {
        return;
    }
    let new_state = if producing >= qty { "to_close" } else { "progress" };
    mo.insert("state".into(), json!(new_state));
}

/// `button_mark_done`: closes MOs; the whole quantity is taken as produced when none was
/// reported (an untracked product). A partial quantity returns the backorder wizard and changes
/// nothing, unless the context says `skip_backorder` (with `mo_ids_to_backorder` for the MOs
/// that get a backorder for the rest). Every open work order of a closed MO without time of
/// its own gets its expected duration booked (`_post_inventory`, recorded on 19).
fn mark_done(state: &mut State, model: &str, ids: &[i64], args: &Map<String, Value>) -> Answer {
    existing(state, model, ids)?;
    let context = args
        .get("context")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let skip_backorder = context
        .get("skip_backorder")
        .is_some_and(|v| v.as_bool() != Some(false));
    let to_backorder: Vec<i64> = context
        .get("mo_ids_to_backorder")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let partial: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| {
            let mo = &state.mos[id];
            let producing = float(mo, "qty_producing");
            producing > 0.0 && producing < float(mo, "product_qty")
        })
        .collect();
    if !partial.is_empty() && !skip_backorder {
        let lines: Vec<Value> = partial
            .iter()
            .map(|id| json!([0, 0, {"mrp_production_id": id, "to_backorder": true}]))
            .collect();
        let mut ctx = context.clone();
        ctx.insert("default_mrp_production_ids".into(), json!(ids));
        ctx.insert("default_mrp_production_backorder_line_ids".into(), json!(lines));
        return Ok(Some(json!({
            "id": 617, "name": "You produced less than initial demand", "type": "ir.actions.act_window",
            "res_model": "mrp.production.backorder", "view_mode": "form", "views": [[false, "form"]],
            "target": "new", "context": ctx, "binding_type": "action", "binding_view_types": "list,form",
        })));
    }
    let now = State::now();
    let mut backorders = Vec::new();
    for id in ids {
        if partial.contains(id) && to_backorder.contains(id) {
            let producing = float(&state.mos[id], "qty_producing");
            backorders.push(state.backorder(*id, producing));
            if let Some(mo) = state.mos.get_mut(id) {
                mo.insert("date_finished".into(), now.clone());
            }
            super::records::book_expected_time(state, *id);
            continue;
        }
        let Some(mo) = state.mos.get_mut(id) else { continue };
        if matches!(mo.get("state").and_then(Value::as_str), Some("done" | "cancel")) {
            continue;
        }
        if float(mo, "qty_producing") <= 0.0 {
            let qty = float(mo, "product_qty");
            mo.insert("qty_producing".into(), json!(qty));
        }
        mo.insert("state".into(), json!("done"));
        mo.insert("date_finished".into(), now.clone());
        mo.insert("write_date".into(), now.clone());
        super::records::book_expected_time(state, *id);
    }
    // With backorders made, Odoo answers an action that opens them (recorded on 19: one
    // backorder, a form on it, no `name`); `true` only when it made none.
    Ok(Some(match backorders.as_slice() {
        [] => json!(true),
        [one] => json!({
            "res_model": "mrp.production", "type": "ir.actions.act_window",
            "context": {"skip_backorder": false, "mo_ids_to_backorder": null},
            "views": [[false, "form"]], "view_mode": "form", "res_id": one,
        }),
        several => json!({
            "res_model": "mrp.production", "type": "ir.actions.act_window",
            "context": {"skip_backorder": false, "mo_ids_to_backorder": null},
            "name": "Backorder MO", "domain": [["id", "in", several]], "view_mode": "list,form",
        }),
    }))
}

/// The records of `table` that `args`' domain matches, in `args`' order (the model's
/// `default_order` without one), paged by its offset and limit.
pub(super) fn search<'a>(
    table: &'a std::collections::BTreeMap<i64, Map<String, Value>>,
    fields: &[Field],
    model: &str,
    default_order: &str,
    args: &Map<String, Value>,
    domain_optional: bool,
) -> Result<Vec<&'a Map<String, Value>>, OrmError> {
    let domain = match args.get("domain") {
        Some(d) => d.clone(),
        None if domain_optional => json!([]),
        None => return Err(OrmError::missing_argument("domain")),
    };
    let expr = domain::parse(&domain, fields, model)?;
    let mut found: Vec<&Map<String, Value>> = table.values().filter(|r| expr.matches(r)).collect();
    let order = args
        .get("order")
        .and_then(Value::as_str)
        .filter(|o| !o.trim().is_empty())
        .unwrap_or(default_order);
    domain::sort(&mut found, order, fields, model)?;
    let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    // Python's `if limit:` — 0, null and false all mean no limit.
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .filter(|l| *l > 0)
        .map_or(usize::MAX, |l| l as usize);
    Ok(found.into_iter().skip(offset).take(limit).collect())
}

/// The requested field names, every field when none are given; an unknown one fails the call.
pub(super) fn field_list(fields: &[Field], requested: Option<&Value>, model: &str) -> Result<Vec<String>, OrmError> {
    let requested: Vec<String> = match requested {
        Some(Value::Array(names)) if !names.is_empty() => names
            .iter()
            .map(|n| n.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => return Ok(fields.iter().map(|f| f.name.clone()).collect()),
    };
    if let Some(unknown) = requested.iter().find(|n| !fields.iter().any(|f| &f.name == *n)) {
        return Err(OrmError::value(format!("Invalid field '{unknown}' on '{model}'")));
    }
    let mut names = vec!["id".to_string()];
    names.extend(requested.into_iter().filter(|n| n != "id"));
    Ok(names)
}

pub(super) fn project(record: &Map<String, Value>, names: &[String]) -> Value {
    let full = with_computed(record);
    Value::Object(
        names
            .iter()
            .map(|n| (n.clone(), full.get(n).cloned().unwrap_or(Value::Bool(false))))
            .collect(),
    )
}

pub(super) fn fields_get(model: &str, fields: &[Field], args: &Map<String, Value>) -> Value {
    let wanted: Option<Vec<&str>> = args
        .get("allfields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let attributes: Option<Vec<&str>> = args
        .get("attributes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let mut out = Map::new();
    for f in fields {
        // Unknown names in `allfields` are silently ignored, as Odoo does.
        if wanted
            .as_ref()
            .is_some_and(|w| !w.is_empty() && !w.contains(&f.name.as_str()))
        {
            continue;
        }
        let (label, readonly, required, selection) = describe(model, &f.name);
        let label = f.label.clone().unwrap_or(label);
        let mut description = json!({
            "type": f.kind, "string": label, "store": f.stored, "readonly": readonly, "required": required,
        });
        if let Some(relation) = f.relation {
            description["relation"] = json!(relation);
        }
        if let Some(selection) = selection {
            description["selection"] = selection;
        }
        if let Some(attributes) = &attributes {
            description
                .as_object_mut()
                .expect("object")
                .retain(|k, _| attributes.contains(&k.as_str()));
        }
        out.insert(f.name.clone(), description);
    }
    Value::Object(out)
}

/// The display name of a related record, as a many2one shows it next to the id.
fn display_name(relation: &str, id: i64) -> String {
    let known = match (relation, id) {
        ("product.product", _) => super::PRODUCTS.iter().find(|p| p.0 == id).map(|p| p.1),
        ("mrp.bom", _) => super::BOMS
            .iter()
            .find(|b| b.0 == id)
            .and_then(|b| super::PRODUCTS.iter().find(|p| p.0 == b.1))
            .map(|p| p.1),
        ("res.users", 1) => Some("OdooBot"),
        ("res.users", 2) => Some("Mitchell Admin"),
        ("res.company", 1) => Some("My Company (San Francisco)"),
        ("res.company", 2) => Some("My Company (Chicago)"),
        ("uom.uom", 1) => Some("Units"),
        ("stock.picking.type", 2) => Some("YourCompany: Delivery Orders"),
        _ => None,
    };
    known.map_or_else(|| format!("{relation},{id}"), str::to_string)
}

/// A written value as the ORM stores it and reads it back: floats as floats, many2one as
/// `[id, name]`, empty as `false`.
fn convert(field: &Field, value: &Value, current: Option<&Value>) -> Result<Value, OrmError> {
    let invalid = || OrmError::value(format!("Wrong value for {}: {value}", field.name));
    Ok(match (field.kind, value) {
        ("float", Value::Number(n)) => json!(n.as_f64().ok_or_else(invalid)?),
        ("float", Value::Bool(false) | Value::Null) => json!(0.0),
        ("float", _) => return Err(invalid()),
        ("integer", Value::Number(_)) => value.clone(),
        ("integer", Value::Bool(false) | Value::Null) => json!(0),
        ("many2one", Value::Number(n)) => {
            let id = n.as_i64().ok_or_else(invalid)?;
            json!([id, display_name(field.relation.unwrap_or_default(), id)])
        }
        ("many2one", Value::Array(pair)) if pair.len() == 2 && pair[0].is_i64() => value.clone(),
        ("one2many" | "many2many", Value::Array(commands)) => {
            // Only `[6, 0, ids]` (replace) changes the ids the simulation keeps.
            let mut ids = current.cloned().unwrap_or(json!([]));
            for command in commands {
                if let Some([code, _, Value::Array(new)]) = command.as_array().map(Vec::as_slice) {
                    if code == 6 {
                        ids = Value::Array(new.clone());
                    }
                }
            }
            ids
        }
        ("datetime", Value::String(s)) if s.len() == 10 => json!(format!("{s} 00:00:00")),
        (_, Value::Null) => Value::Bool(false),
        _ => value.clone(),
    })
}

fn write(
    state: &mut State,
    model: &str,
    fields: &[Field],
    ids: &[i64],
    vals: &Map<String, Value>,
) -> Result<(), OrmError> {
    // (`write` says "in" where `read` says "on": recorded so on 19.)
    if let Some(unknown) = vals.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
        return Err(OrmError::value(format!("Invalid field '{unknown}' in '{model}'")));
    }
    existing(state, model, ids)?;
    // A site's own constraint (`@api.constrains`) refuses the whole write.
    let refused = |(f, v, _): &&(String, Value, String)| vals.get(f) == Some(v);
    if let Some((_, _, message)) = state.constraints.iter().find(refused) {
        return Err(OrmError::validation(message.clone()));
    }
    let table = if model == "mrp.production" {
        &mut state.mos
    } else {
        &mut state.pickings
    };
    let now = State::now();
    for id in ids {
        let record = table.get_mut(id).expect("checked above");
        for (name, value) in vals {
            let field = fields.iter().find(|f| &f.name == name).expect("checked above");
            let converted = convert(field, value, record.get(name))?;
            record.insert(name.clone(), converted);
        }
        if model == "mrp.production" && vals.contains_key("qty_producing") && !vals.contains_key("state") {
            recompute_state(record);
        }
        record.insert("write_date".into(), now.clone());
    }
    Ok(())
}

/// `create`'s values: a list, or one dict (then the answer is the id alone, as Odoo's RPC layer
/// answers `create(vals)`); a field the model lacks fails the call.
pub(super) fn vals_list(
    args: &Map<String, Value>,
    fields: &[Field],
    model: &str,
) -> Result<(Vec<Map<String, Value>>, bool), OrmError> {
    let (list, single) = match args.get("vals_list") {
        Some(Value::Array(list)) => (list.clone(), false),
        Some(Value::Object(one)) => (vec![Value::Object(one.clone())], true),
        _ => return Err(OrmError::missing_argument("vals_list")),
    };
    let list: Vec<Map<String, Value>> = list
        .into_iter()
        .map(|v| v.as_object().cloned().unwrap_or_default())
        .collect();
    for vals in &list {
        if let Some(unknown) = vals.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
            return Err(OrmError::value(format!("Invalid field '{unknown}' on '{model}'")));
        }
    }
    Ok((list, single))
}

/// `create`: a list of values gives a list of ids, a single dict gives the id alone.
fn create(state: &mut State, fields: &[Field], args: &Map<String, Value>) -> Answer {
    let (list, single) = vals_list(args, fields, "mrp.production")?;
    let mut ids = Vec::new();
    for vals in list {
        let Some(product_id) = vals.get("product_id").and_then(Value::as_i64) else {
            // A failed create still consumes a number of the sequence: names have gaps.
            state.next_mo += 1;
            return Err(OrmError::validation(
                "The operation cannot be completed: Missing required value for the field 'Product' (product_id).\n\
                 Model: 'Manufacturing Order' (mrp.production)\n\
                 - create/update: a mandatory field is not set\n\
                 - delete: another model requires the record being deleted, you can archive it instead\n"
                    .into(),
            ));
        };
        let custom: Map<String, Value> = vals
            .iter()
            .filter(|(k, _)| state.config.custom_fields.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let id = state.create_mo(super::NewMo {
            product: Some((product_id, display_name("product.product", product_id))),
            qty: vals.get("product_qty").and_then(Value::as_f64).unwrap_or(1.0),
            state: "draft".into(),
            origin: vals.get("origin").and_then(Value::as_str).map(str::to_string),
            custom,
        });
        // The other values are written as `write` would store them.
        let rest: Map<String, Value> = vals
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "product_id" | "product_qty" | "origin" | "id"))
            .filter(|(k, _)| !state.config.custom_fields.contains(k))
            .collect();
        let record = state.mos.get_mut(&id).expect("just created");
        for (name, value) in &rest {
            let field = fields.iter().find(|f| &f.name == name).expect("checked above");
            let converted = convert(field, value, record.get(name))?;
            record.insert(name.clone(), converted);
        }
        ids.push(id);
    }
    Ok(Some(if single { json!(ids[0]) } else { json!(ids) }))
}
