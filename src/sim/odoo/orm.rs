//! The ORM behind every API of the simulated Odoo: models, fields per version, the methods the
//! agent may call, and Odoo's exceptions for everything else.

use serde_json::{json, Map, Value};

use super::domain;
use super::State;

/// An Odoo exception, with what each API makes of it.
#[derive(Debug, Clone)]
pub struct OrmError {
    /// The exception class as JSON-RPC reports it (`data.name`).
    pub name: &'static str,
    pub message: String,
    /// JSON-2's status, class and message (werkzeug wraps some exceptions).
    pub status: u16,
    pub json2_name: &'static str,
    pub json2_message: String,
}

impl OrmError {
    fn same(name: &'static str, status: u16, message: String) -> OrmError {
        OrmError {
            name,
            message: message.clone(),
            status,
            json2_name: name,
            json2_message: message,
        }
    }
    pub fn value(message: String) -> OrmError {
        OrmError::same("builtins.ValueError", 500, message)
    }
    pub fn access(message: String) -> OrmError {
        OrmError::same("odoo.exceptions.AccessError", 403, message)
    }
    fn missing(model: &str, ids: &[i64]) -> OrmError {
        let ids: Vec<String> = ids.iter().map(|i| format!("{i},")).collect();
        OrmError::same(
            "odoo.exceptions.MissingError",
            404,
            format!(
                "Record does not exist or has been deleted.\n(Record: {model}({}), User: 2)",
                ids.join(" ")
            ),
        )
    }
    fn validation(message: String) -> OrmError {
        OrmError::same("odoo.exceptions.ValidationError", 422, message)
    }
    fn unknown_model(model: &str) -> OrmError {
        OrmError {
            name: "odoo.exceptions.UserError",
            message: format!("Object {model} doesn't exist"),
            status: 404,
            json2_name: "werkzeug.exceptions.NotFound",
            json2_message: format!("the model '{model}' does not exist"),
        }
    }
    fn unknown_method(model: &str, method: &str) -> OrmError {
        let message = format!("The method '{model}.{method}' does not exist");
        OrmError {
            name: "builtins.AttributeError",
            message: message.clone(),
            status: 404,
            json2_name: "werkzeug.exceptions.NotFound",
            json2_message: message,
        }
    }
    pub fn missing_argument(name: &str) -> OrmError {
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

/// A field: name, type, stored, relation.
pub struct Field {
    pub name: String,
    pub kind: &'static str,
    pub stored: bool,
    pub relation: Option<&'static str>,
}

fn field(name: &str, kind: &'static str, stored: bool, relation: Option<&'static str>) -> Field {
    Field {
        name: name.to_string(),
        kind,
        stored,
        relation,
    }
}

/// `mrp.production`'s fields on this version, as `fields_get` lists them.
pub fn mo_fields(version: u32, custom: &[String]) -> Vec<Field> {
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
        field("picking_ids", "many2many", false, Some("stock.picking")),
    ];
    if version >= 19 {
        fields.push(field("lot_producing_ids", "many2many", true, Some("stock.lot")));
    } else {
        fields.push(field("lot_producing_id", "many2one", true, Some("stock.lot")));
    }
    if version <= 16 {
        // 17 renamed the planned dates to date_start / date_finished, which on 16 are the actual ones.
        fields.push(field("date_planned_start", "datetime", true, None));
        fields.push(field("date_planned_finished", "datetime", true, None));
    }
    fields.extend(custom.iter().map(|name| field(name, "char", true, None)));
    fields
}

pub fn picking_fields() -> Vec<Field> {
    vec![
        field("id", "integer", true, None),
        field("name", "char", true, None),
        field("origin", "char", true, None),
        field("state", "selection", true, None),
        field("create_date", "datetime", true, None),
        field("write_date", "datetime", true, None),
        field("scheduled_date", "datetime", true, None),
        field("picking_type_id", "many2one", true, Some("stock.picking.type")),
    ]
}

/// A new MO record with every stored field set, as the ORM's `create` leaves it.
#[allow(clippy::too_many_arguments)]
pub fn new_mo(
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
    let mut record = json!({
        "id": id, "name": name, "state": mo_state, "priority": "0",
        "product_id": [product.0, product.1.clone()], "product_qty": qty, "product_uom_id": [1, "Units"],
        "qty_producing": 0.0, "origin": origin.map_or(Value::Bool(false), Value::String),
        "create_date": now, "write_date": now, "date_deadline": false,
        "bom_id": [1, product.1], "company_id": [1, "My Company (San Francisco)"], "user_id": [2, "Mitchell Admin"],
        "reservation_state": "assigned", "workorder_ids": [], "move_finished_ids": [], "move_raw_ids": [],
    });
    let record = record.as_object_mut().expect("an object literal");
    if state.config.version >= 19 {
        record.insert("lot_producing_ids".into(), json!([]));
    } else {
        record.insert("lot_producing_id".into(), json!(false));
    }
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
pub fn with_computed(record: &Map<String, Value>) -> Map<String, Value> {
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
pub type Answer = Result<Option<Value>, OrmError>;

/// The positional parameters of each method, for APIs that pass them positionally.
pub fn positional_names(method: &str) -> &'static [&'static str] {
    match method {
        "search_read" => &["domain", "fields", "offset", "limit", "order"],
        "search" => &["domain", "offset", "limit", "order"],
        "search_count" => &["domain"],
        "fields_get" => &["allfields", "attributes"],
        "create" => &["vals_list"],
        "read" => &["ids", "fields"],
        "write" => &["ids", "vals"],
        _ => &["ids"],
    }
}

/// Runs `model.method` with named arguments.
pub fn call(state: &mut State, model: &str, method: &str, args: &Map<String, Value>) -> Answer {
    let fields = match model {
        "mrp.production" => mo_fields(state.config.version, &state.config.custom_fields),
        "stock.picking" => picking_fields(),
        _ => return Err(OrmError::unknown_model(model)),
    };
    if method.starts_with('_') {
        return Err(OrmError::access(format!(
            "Private methods (such as '{model}.{method}') cannot be called remotely."
        )));
    }
    let ids = || -> Result<Vec<i64>, OrmError> {
        let ids = args.get("ids").ok_or_else(|| OrmError::missing_argument("ids"))?;
        match ids {
            Value::Number(n) => Ok(vec![n.as_i64().unwrap_or(0)]),
            other => serde_json::from_value(other.clone()).map_err(|e| OrmError::value(format!("ids: {e}"))),
        }
    };
    let table = if model == "mrp.production" {
        &state.mos
    } else {
        &state.pickings
    };
    match method {
        "search_read" => {
            let found = search(table, &fields, args, true)?;
            let names = field_list(&fields, args.get("fields"), model)?;
            Ok(Some(Value::Array(found.iter().map(|r| project(r, &names)).collect())))
        }
        "search" => {
            let found = search(table, &fields, args, false)?;
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
            let missing: Vec<i64> = ids.iter().copied().filter(|id| !table.contains_key(id)).collect();
            if !missing.is_empty() {
                return Err(OrmError::missing(model, &missing));
            }
            Ok(Some(Value::Array(
                ids.iter().map(|id| project(&table[id], &names)).collect(),
            )))
        }
        "fields_get" => Ok(Some(fields_get(&fields, args))),
        "write" => {
            let ids = ids()?;
            let vals = args
                .get("vals")
                .and_then(Value::as_object)
                .ok_or_else(|| OrmError::missing_argument("vals"))?;
            write(state, model, &fields, &ids, vals)?;
            Ok(Some(json!(true)))
        }
        "create" if model == "mrp.production" => create(state, args),
        "action_confirm" | "action_start" | "action_cancel" | "button_mark_done" if model == "mrp.production" => {
            let ids = ids()?;
            let new_state = match method {
                "action_confirm" => "confirmed",
                "action_start" => "progress",
                "action_cancel" => "cancel",
                _ => "done",
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
        _ => Err(OrmError::unknown_method(model, method)),
    }
}

fn search<'a>(
    table: &'a std::collections::BTreeMap<i64, Map<String, Value>>,
    fields: &[Field],
    args: &Map<String, Value>,
    domain_optional: bool,
) -> Result<Vec<&'a Map<String, Value>>, OrmError> {
    let domain = match args.get("domain") {
        Some(d) => d.clone(),
        None if domain_optional => json!([]),
        None => return Err(OrmError::missing_argument("domain")),
    };
    let model = if fields.iter().any(|f| f.name == "product_qty") {
        "mrp.production"
    } else {
        "stock.picking"
    };
    let expr = domain::parse(&domain, fields, model)?;
    let mut found: Vec<&Map<String, Value>> = table.values().filter(|r| expr.matches(r)).collect();
    let default_order = if model == "mrp.production" {
        "priority desc, date_start asc, id asc"
    } else {
        "id desc"
    };
    let order = args
        .get("order")
        .and_then(Value::as_str)
        .filter(|o| !o.trim().is_empty())
        .unwrap_or(default_order);
    domain::sort(&mut found, order, fields, model)?;
    let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |l| l as usize);
    Ok(found.into_iter().skip(offset).take(limit).collect())
}

/// The requested field names, every field when none are given; an unknown one fails the call.
fn field_list(fields: &[Field], requested: Option<&Value>, model: &str) -> Result<Vec<String>, OrmError> {
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

fn project(record: &Map<String, Value>, names: &[String]) -> Value {
    let full = with_computed(record);
    Value::Object(
        names
            .iter()
            .map(|n| (n.clone(), full.get(n).cloned().unwrap_or(Value::Bool(false))))
            .collect(),
    )
}

fn fields_get(fields: &[Field], args: &Map<String, Value>) -> Value {
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
        let mut description = json!({
            "type": f.kind, "string": f.name.replace('_', " "), "store": f.stored,
            "readonly": matches!(f.name.as_str(), "id" | "create_date" | "write_date" | "state" | "name"),
            "required": matches!(f.name.as_str(), "product_id" | "product_qty" | "product_uom_id"),
        });
        if let Some(relation) = f.relation {
            description["relation"] = json!(relation);
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

fn write(
    state: &mut State,
    model: &str,
    fields: &[Field],
    ids: &[i64],
    vals: &Map<String, Value>,
) -> Result<(), OrmError> {
    if let Some(unknown) = vals.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
        return Err(OrmError::value(format!("Invalid field '{unknown}' on '{model}'")));
    }
    let table = if model == "mrp.production" {
        &mut state.mos
    } else {
        &mut state.pickings
    };
    let missing: Vec<i64> = ids.iter().copied().filter(|id| !table.contains_key(id)).collect();
    if !missing.is_empty() {
        return Err(OrmError::missing(model, &missing));
    }
    let now = State::now();
    for id in ids {
        let record = table.get_mut(id).expect("checked above");
        record.extend(vals.clone());
        record.insert("write_date".into(), now.clone());
    }
    Ok(())
}

fn create(state: &mut State, args: &Map<String, Value>) -> Answer {
    let list = match args.get("vals_list") {
        Some(Value::Array(list)) => list.clone(),
        Some(Value::Object(one)) => vec![Value::Object(one.clone())],
        _ => return Err(OrmError::missing_argument("vals_list")),
    };
    let mut ids = Vec::new();
    for vals in list {
        let vals = vals.as_object().cloned().unwrap_or_default();
        let Some(product_id) = vals.get("product_id").and_then(Value::as_i64) else {
            return Err(OrmError::validation(
                "The operation cannot be completed: Missing required value for the field 'Product' (product_id).\n\
                 Model: 'Manufacturing Order' (mrp.production)\n\
                 - create/update: a mandatory field is not set\n\
                 - delete: another model requires the record being deleted, you can archive it instead\n"
                    .into(),
            ));
        };
        let name = super::PRODUCTS
            .iter()
            .find(|p| p.0 == product_id)
            .map_or("Product", |p| p.1);
        let custom: Map<String, Value> = vals
            .iter()
            .filter(|(k, _)| k.starts_with("x_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let id = state.create_mo(super::NewMo {
            product: Some((product_id, name.to_string())),
            qty: vals.get("product_qty").and_then(Value::as_f64).unwrap_or(1.0),
            state: "draft".into(),
            origin: vals.get("origin").and_then(Value::as_str).map(str::to_string),
            custom,
        });
        ids.push(id);
    }
    Ok(Some(json!(ids)))
}
