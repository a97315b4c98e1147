//! What an administrator changes through the API alone, without installing a module, as
//! recorded on 19.0 (`../shared/protocols/odoo.md`, "Preparing an Odoo for the floor's
//! results, over the API"): `ir.model` (a model's id), `ir.model.fields` (custom `x_` fields of
//! `mrp.production`, which are then its fields like any other), `ir.model.data` (external ids:
//! the MO form's view) and `ir.ui.view` (views inheriting the MO form, whose fields must
//! exist), and `get_views` showing the combined form. Changing any of them takes an
//! administrator ([`rights`]).
//!
//! Recorded: the ids' lookups, `create` answers, `state` `manual`, the ValidationErrors for a
//! missing `model_id`, a name without `x_` and a view naming a field the model lacks, `unlink`
//! answering `true`, the page shown inside the notebook before `<chatter/>`. Taken from Odoo's
//! source, not recorded: a field shown in a view cannot be deleted (UserError), a standard
//! field neither; two fields of one name are refused; an integer field reads 0 until written.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::orm::{self, Answer, Field, OrmError};
use super::{arch, rights, State};

pub(super) const MODEL: &str = "ir.model";
pub(super) const FIELDS: &str = "ir.model.fields";
pub(super) const DATA: &str = "ir.model.data";
pub(super) const VIEW: &str = "ir.ui.view";

const MO: &str = "mrp.production";

/// `ir.model`'s rows: (id, model, description). mrp.production's id is the recorded one; the
/// others are made up (ids differ per database: they are always looked up).
const MODELS: [(i64, &str, &str); 11] = [
    (490, MO, "Manufacturing Order"),
    (331, "stock.picking", "Transfer"),
    (95, "mail.message", "Message"),
    (498, "mrp.workorder", "Work Order"),
    (486, "mrp.workcenter.productivity", "Workcenter Productivity Log"),
    (
        485,
        "mrp.workcenter.productivity.loss",
        "Workcenter Productivity Losses",
    ),
    (2, MODEL, "Models"),
    (4, FIELDS, "Fields"),
    (29, DATA, "Model Data"),
    (31, VIEW, "View"),
    (6, "res.users", "User"),
];

/// The MO form's view (843, as recorded) and its external id.
const MO_FORM: i64 = 843;
const MO_FORM_XMLID: (&str, &str) = ("mrp", "mrp_production_form_view");

/// The ids of `mrp.production`'s standard fields start here, those of the custom fields the
/// simulator was started with (`SimOdooConfig::custom_fields`) there; fields made through the
/// API get the recorded 5780 first.
const STANDARD_IDS: i64 = 4000;
const CONFIGURED_IDS: i64 = 5600;

/// Field types a custom field may be made with here (Odoo has more, which need more values).
const TYPES: [&str; 8] = [
    "char", "text", "html", "integer", "float", "boolean", "date", "datetime",
];

/// A custom field made through the API.
pub(super) struct Manual {
    name: String,
    kind: &'static str,
    label: String,
    help: Value,
}

/// A view made through the API.
pub(super) struct View {
    name: String,
    kind: String,
    model: String,
    inherit_id: Option<i64>,
    arch: String,
    priority: i64,
}

pub(super) struct Ir {
    fields: BTreeMap<i64, Manual>,
    views: BTreeMap<i64, View>,
    next_field: i64,
    next_view: i64,
}

impl Ir {
    pub(super) fn new() -> Ir {
        Ir {
            fields: BTreeMap::new(),
            views: BTreeMap::new(),
            // The ids recorded for the first field and view made.
            next_field: 5780,
            next_view: 899,
        }
    }
}

/// `mrp.production`'s custom fields made through the API, as fields of the model.
pub(super) fn mo_fields(state: &State) -> Vec<Field> {
    let made = state.ir.fields.values();
    made.map(|f| Field {
        label: Some(f.label.clone()),
        ..orm::field(&f.name, f.kind, true, None)
    })
    .collect()
}

/// What a custom field of `kind` reads on a record that never had it written.
fn unset(kind: &str) -> Value {
    match kind {
        "integer" => json!(0),
        "float" => json!(0.0),
        _ => Value::Bool(false),
    }
}

/// A new MO's values for the custom fields made through the API.
pub(super) fn with_defaults(state: &State, mut record: Map<String, Value>) -> Map<String, Value> {
    for field in state.ir.fields.values() {
        record.entry(field.name.clone()).or_insert_with(|| unset(field.kind));
    }
    record
}

/// The models here, and `get_views` on the MOs; None for anything else.
pub(super) fn call(state: &mut State, model: &str, method: &str, args: &Map<String, Value>) -> Option<Answer> {
    if model == MO && method == "get_views" {
        return Some(get_views(state, args));
    }
    let fields = fields_of(model)?;
    let table = table(state, model);
    Some(match method {
        "search_read" => orm::search(&table, &fields, model, "id asc", args, true).and_then(|found| {
            let names = orm::field_list(&fields, args.get("fields"), model)?;
            Ok(Some(Value::Array(
                found.iter().map(|r| orm::project(r, &names)).collect(),
            )))
        }),
        "read" => orm::ids(args).and_then(|ids| {
            let names = orm::field_list(&fields, args.get("fields"), model)?;
            let found = ids.iter().filter_map(|id| table.get(id));
            Ok(Some(Value::Array(found.map(|r| orm::project(r, &names)).collect())))
        }),
        "fields_get" => Ok(Some(orm::fields_get(model, &fields, args))),
        "create" | "write" | "unlink" => {
            rights::check_admin(state, model, method).and_then(|()| match (model, method) {
                (FIELDS, "create") => create_fields(state, &fields, args),
                (FIELDS, "unlink") => unlink_fields(state, args),
                (VIEW, "create") => create_views(state, &fields, args),
                (VIEW, "write") => write_views(state, args),
                (VIEW, "unlink") => unlink_views(state, args),
                _ => Err(OrmError::value(format!("(simulated) {model}.{method} is not modelled"))),
            })
        }
        _ if method.starts_with('_') => Err(OrmError::access(format!(
            "Private methods (such as '{model}.{method}') cannot be called remotely."
        ))),
        _ => Err(OrmError::unknown_method(model, method)),
    })
}

/// The fields of each model here, as `fields_get` lists them.
fn fields_of(model: &str) -> Option<Vec<Field>> {
    let f = orm::field;
    Some(match model {
        MODEL => vec![
            f("id", "integer", true, None),
            f("model", "char", true, None),
            f("name", "char", true, None),
            f("state", "selection", true, None),
        ],
        FIELDS => vec![
            f("id", "integer", true, None),
            f("name", "char", true, None),
            f("model", "char", true, None),
            f("model_id", "many2one", true, Some(MODEL)),
            f("ttype", "selection", true, None),
            f("field_description", "char", true, None),
            f("help", "text", true, None),
            f("state", "selection", true, None),
            f("store", "boolean", true, None),
            f("readonly", "boolean", true, None),
            f("required", "boolean", true, None),
            f("relation", "char", true, None),
        ],
        DATA => vec![
            f("id", "integer", true, None),
            f("module", "char", true, None),
            f("name", "char", true, None),
            f("complete_name", "char", false, None),
            f("model", "char", true, None),
            f("res_id", "many2one_reference", true, None),
            f("noupdate", "boolean", true, None),
        ],
        VIEW => vec![
            f("id", "integer", true, None),
            f("name", "char", true, None),
            f("type", "selection", true, None),
            f("model", "char", true, None),
            f("inherit_id", "many2one", true, Some(VIEW)),
            f("arch", "text", false, None),
            f("priority", "integer", true, None),
            f("mode", "selection", true, None),
            f("active", "boolean", true, None),
        ],
        _ => return None,
    })
}

fn row(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// The rows of `model` as they are now.
fn table(state: &State, model: &str) -> BTreeMap<i64, Map<String, Value>> {
    match model {
        MODEL => MODELS
            .iter()
            .map(|(id, name, label)| {
                (
                    *id,
                    row(json!({"id": id, "model": name, "name": label, "state": "base"})),
                )
            })
            .collect(),
        FIELDS => field_rows(state),
        DATA => {
            let (module, name) = MO_FORM_XMLID;
            let form = json!({"id": 2, "module": module, "name": name, "complete_name": format!("{module}.{name}"),
                "model": VIEW, "res_id": MO_FORM, "noupdate": false});
            let model = json!({"id": 1, "module": "mrp", "name": "model_mrp_production",
                "complete_name": "mrp.model_mrp_production", "model": MODEL, "res_id": MODELS[0].0, "noupdate": false});
            BTreeMap::from([(1, row(model)), (2, row(form))])
        }
        _ => {
            let base = json!({"id": MO_FORM, "name": "mrp.production.form", "type": "form", "model": MO,
                "inherit_id": false, "arch": base_form(state), "priority": 16, "mode": "primary", "active": true});
            let mut rows = BTreeMap::from([(MO_FORM, row(base))]);
            for (id, view) in &state.ir.views {
                let parent = view
                    .inherit_id
                    .map_or(json!(false), |p| json!([p, view_name(state, p)]));
                let mode = if view.inherit_id.is_some() {
                    "extension"
                } else {
                    "primary"
                };
                let value = json!({"id": id, "name": view.name, "type": view.kind, "model": view.model,
                    "inherit_id": parent, "arch": view.arch, "priority": view.priority, "mode": mode, "active": true});
                rows.insert(*id, row(value));
            }
            rows
        }
    }
}

/// `ir.model.fields`' rows for `mrp.production`: its standard fields, the custom ones the
/// simulator was started with, and those made through the API.
fn field_rows(state: &State) -> BTreeMap<i64, Map<String, Value>> {
    let (model_id, _, description) = MODELS[0];
    let described = |name: &str, kind: &str, label: Value, help: &Value, custom: bool, relation: Option<&str>| {
        row(
            json!({"name": name, "model": MO, "model_id": [model_id, description], "ttype": kind,
            "field_description": label, "help": help, "state": if custom { "manual" } else { "base" },
            "store": true, "readonly": false, "required": false, "relation": relation.map_or(json!(false), |r| json!(r))}),
        )
    };
    let standard = orm::mo_fields(state.config.version, &[]);
    let labels = orm::fields_get(MO, &standard, &Map::new());
    let mut rows = BTreeMap::new();
    let mut add = |id: i64, mut r: Map<String, Value>| {
        r.insert("id".into(), json!(id));
        rows.insert(id, r);
    };
    for (i, f) in standard.iter().enumerate() {
        let label = labels[&f.name]["string"].clone();
        add(
            STANDARD_IDS + i as i64,
            described(&f.name, f.kind, label, &Value::Bool(false), false, f.relation),
        );
    }
    for (i, name) in state.config.custom_fields.iter().enumerate() {
        let label = json!(name.trim_start_matches("x_").replace('_', " "));
        add(
            CONFIGURED_IDS + i as i64,
            described(name, "char", label, &Value::Bool(false), true, None),
        );
    }
    for (id, f) in &state.ir.fields {
        add(*id, described(&f.name, f.kind, json!(f.label), &f.help, true, None));
    }
    rows
}

/// Whether `mrp.production` has a field of this name, standard or custom.
fn mo_has(state: &State, name: &str) -> bool {
    orm::mo_fields(state.config.version, &state.config.custom_fields)
        .iter()
        .any(|f| f.name == name)
        || state.ir.fields.values().any(|f| f.name == name)
}

fn missing_required(label: &str, name: &str, description: &str, model: &str) -> OrmError {
    OrmError::validation(format!(
        "The operation cannot be completed: Missing required value for the field '{label}' ({name}).\n\
         Model: '{description}' ({model})\n\
         - create/update: a mandatory field is not set\n\
         - delete: another model requires the record being deleted, you can archive it instead\n"
    ))
}

/// A record that is not there, as Odoo names it: `Record: ir.ui.view(7,)`.
fn missing(model: &str, id: i64) -> OrmError {
    let message = format!("Record does not exist or has been deleted.\n(Record: {model}({id},), User: 2)");
    OrmError::same("odoo.exceptions.MissingError", 404, message)
}

/// A UserError (JSON-2: 422, as a ValidationError is).
fn user_error(message: String) -> OrmError {
    OrmError::same("odoo.exceptions.UserError", 422, message)
}

fn empty(value: Option<&Value>) -> bool {
    value.is_none_or(|v| matches!(v, Value::Bool(false) | Value::Null) || v == "")
}

/// `ir.model.fields/create`: custom fields of `mrp.production`, all or none.
fn create_fields(state: &mut State, fields: &[Field], args: &Map<String, Value>) -> Answer {
    let (list, single) = orm::vals_list(args, fields, FIELDS)?;
    let mut made: Vec<Manual> = Vec::new();
    for vals in &list {
        for (name, label) in [
            ("model_id", "Model"),
            ("name", "Field Name"),
            ("field_description", "Field Label"),
            ("ttype", "Field Type"),
        ] {
            if empty(vals.get(name)) {
                return Err(missing_required(label, name, "Fields", FIELDS));
            }
        }
        let model_id = vals["model_id"].as_i64().unwrap_or(0);
        let Some((_, model, _)) = MODELS.iter().find(|m| m.0 == model_id) else {
            return Err(missing(MODEL, model_id));
        };
        if *model != MO {
            return Err(OrmError::value(format!(
                "(simulated) custom fields are modelled on {MO} only, not on {model}"
            )));
        }
        let ttype = vals["ttype"].as_str().unwrap_or_default();
        let Some(kind) = TYPES.iter().find(|t| **t == ttype) else {
            return Err(OrmError::value(format!(
                "Wrong value for ir.model.fields.ttype: '{ttype}'"
            )));
        };
        let name = vals["name"].as_str().unwrap_or_default().to_string();
        if mo_has(state, &name) || made.iter().any(|m| m.name == name) {
            return Err(OrmError::validation("Field names must be unique per model.".into()));
        }
        if !name.starts_with("x_") {
            return Err(OrmError::validation(
                "Custom fields must have a name that starts with 'x_'!".into(),
            ));
        }
        made.push(Manual {
            name,
            kind,
            label: vals["field_description"].as_str().unwrap_or_default().to_string(),
            help: vals
                .get("help")
                .cloned()
                .filter(|h| h.is_string())
                .unwrap_or(json!(false)),
        });
    }
    let mut ids = Vec::new();
    for field in made {
        for mo in state.mos.values_mut() {
            mo.insert(field.name.clone(), unset(field.kind));
        }
        let id = state.ir.next_field;
        state.ir.next_field += 1;
        state.ir.fields.insert(id, field);
        ids.push(id);
    }
    Ok(Some(if single { json!(ids[0]) } else { json!(ids) }))
}

/// `ir.model.fields/unlink`: custom fields go with their values; a field a view shows stays.
fn unlink_fields(state: &mut State, args: &Map<String, Value>) -> Answer {
    let ids = orm::ids(args)?;
    let rows = field_rows(state);
    for id in &ids {
        if !state.ir.fields.contains_key(id) {
            return Err(match rows.get(id) {
                Some(_) => user_error("This column contains module data and cannot be removed!".into()),
                None => missing(FIELDS, *id),
            });
        }
    }
    for id in &ids {
        let name = &state.ir.fields[id].name;
        let shown = state
            .ir
            .views
            .values()
            .find(|v| arch::field_names(&v.arch).contains(name));
        if let Some(view) = shown {
            return Err(user_error(format!(
                "Cannot rename/delete fields that are still present in views:\nFields: {name}\nView: {}",
                view.name
            )));
        }
    }
    for id in ids {
        if let Some(field) = state.ir.fields.remove(&id) {
            for mo in state.mos.values_mut() {
                mo.remove(&field.name);
            }
        }
    }
    Ok(Some(json!(true)))
}

fn view_name(state: &State, id: i64) -> String {
    match state.ir.views.get(&id) {
        Some(view) => view.name.clone(),
        None => "mrp.production.form".into(),
    }
}

/// The MO form as the Manufacturing app defines it, cut to what the simulator's MOs have:
/// a notebook of pages, and the chatter after the sheet (`<chatter/>` since 18.0).
fn base_form(state: &State) -> String {
    let chatter = if state.config.version >= 18 {
        "<chatter/>"
    } else {
        r#"<div class="oe_chatter"/>"#
    };
    format!(
        r#"<form string="Manufacturing Orders"><header><button name="button_mark_done" string="Produce All" type="object"/><field name="state" widget="statusbar"/></header><sheet><div class="oe_title"><h1><field name="name"/></h1></div><group><group><field name="product_id"/><field name="product_qty"/><field name="product_uom_id"/><field name="bom_id"/></group><group><field name="date_start"/><field name="date_deadline"/><field name="user_id"/><field name="origin"/></group></group><notebook><page string="Components" name="components"><field name="move_raw_ids"/></page><page string="Work Orders" name="operations"><field name="workorder_ids"/></page><page string="By-Products" name="finished_products"><field name="move_finished_ids"/></page><page string="Miscellaneous" name="miscellaneous"><group><field name="company_id"/></group></page></notebook></sheet>{chatter}</form>"#
    )
}

/// The arch of view `id` with every active view inheriting from it applied, in Odoo's order
/// (priority, then id), leaving out `skip`.
fn combined(state: &State, id: i64, skip: Option<i64>) -> Result<String, OrmError> {
    let arch = if id == MO_FORM {
        base_form(state)
    } else {
        state.ir.views.get(&id).ok_or_else(|| missing(VIEW, id))?.arch.clone()
    };
    extend(state, arch, id, skip)
}

fn extend(state: &State, mut doc: String, parent: i64, skip: Option<i64>) -> Result<String, OrmError> {
    let mut children: Vec<(&i64, &View)> = state
        .ir
        .views
        .iter()
        .filter(|(id, v)| v.inherit_id == Some(parent) && Some(**id) != skip)
        .collect();
    children.sort_by_key(|(id, v)| (v.priority, **id));
    for (id, view) in children {
        doc = inherit(&doc, view)?;
        doc = extend(state, doc, *id, skip)?;
    }
    Ok(doc)
}

/// `parent` with `view`'s specs applied, or the ValidationError Odoo gives.
fn inherit(parent: &str, view: &View) -> Result<String, OrmError> {
    let specs = arch::specs(&view.arch).map_err(OrmError::value)?;
    arch::apply(parent, &specs).map_err(|expr| {
        OrmError::validation(format!(
            "Error while validating view:\n\nElement '<xpath expr=\"{expr}\">' cannot be located in parent view\n\n\
             View error context:\n{{'name': '{}', 'view.model': '{}'}}",
            view.name, view.model
        ))
    })
}

/// Checks `view` as Odoo does on create and write: its specs locate their elements in the
/// parent, and every field it names exists on its model. `id`: the view's own, on a write.
fn validate(state: &State, view: &View, id: Option<i64>) -> Result<(), OrmError> {
    if view.model != MO {
        return Err(OrmError::value(format!(
            "(simulated) views are modelled on {MO} only, not on {}",
            view.model
        )));
    }
    if let Some(parent) = view.inherit_id {
        inherit(&combined(state, parent, id)?, view)?;
    }
    let mut fields = orm::mo_fields(state.config.version, &state.config.custom_fields);
    fields.extend(mo_fields(state));
    let unknown = arch::field_names(&view.arch)
        .into_iter()
        .find(|name| !fields.iter().any(|f| f.name == *name));
    match unknown {
        Some(name) => Err(OrmError::validation(format!(
            "Error while validating view near:\n\n<field name=\"{name}\"/>\n\
             Field \"{name}\" does not exist in model \"{MO}\"\n\n\
             View error context:\n{{'name': '{}', 'view.model': '{MO}'}}",
            view.name
        ))),
        None => Ok(()),
    }
}

/// `ir.ui.view/create`: views on the MOs, all or none.
fn create_views(state: &mut State, fields: &[Field], args: &Map<String, Value>) -> Answer {
    let (list, single) = orm::vals_list(args, fields, VIEW)?;
    let mut made = Vec::new();
    for vals in &list {
        for (name, label) in [("name", "View Name"), ("arch", "View Architecture")] {
            if empty(vals.get(name)) {
                return Err(missing_required(label, name, "View", VIEW));
            }
        }
        let text = |name: &str| vals.get(name).and_then(Value::as_str).map(str::to_string);
        let inherit_id = vals.get("inherit_id").and_then(Value::as_i64);
        if let Some(parent) = inherit_id.filter(|p| *p != MO_FORM && !state.ir.views.contains_key(p)) {
            return Err(missing(VIEW, parent));
        }
        let view = View {
            name: text("name").unwrap_or_default(),
            kind: text("type").unwrap_or_else(|| "form".into()),
            model: text("model").unwrap_or_else(|| MO.into()),
            inherit_id,
            arch: text("arch").unwrap_or_default(),
            priority: vals.get("priority").and_then(Value::as_i64).unwrap_or(16),
        };
        validate(state, &view, None)?;
        made.push(view);
    }
    let mut ids = Vec::new();
    for view in made {
        let id = state.ir.next_view;
        state.ir.next_view += 1;
        state.ir.views.insert(id, view);
        ids.push(id);
    }
    Ok(Some(if single { json!(ids[0]) } else { json!(ids) }))
}

/// `ir.ui.view/write` of a view made through the API: its name, arch or priority.
fn write_views(state: &mut State, args: &Map<String, Value>) -> Answer {
    let ids = orm::ids(args)?;
    let vals = args
        .get("vals")
        .and_then(Value::as_object)
        .ok_or_else(|| OrmError::missing_argument("vals"))?;
    if let Some(other) = vals
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "arch" | "priority"))
    {
        return Err(OrmError::value(format!(
            "(simulated) writing {other} on a view is not modelled"
        )));
    }
    let mut changed = Vec::new();
    for id in &ids {
        let view = state.ir.views.get(id).ok_or_else(|| missing(VIEW, *id))?;
        let text = |name: &str, now: &str| vals.get(name).and_then(Value::as_str).unwrap_or(now).to_string();
        let new = View {
            name: text("name", &view.name),
            kind: view.kind.clone(),
            model: view.model.clone(),
            inherit_id: view.inherit_id,
            arch: text("arch", &view.arch),
            priority: vals.get("priority").and_then(Value::as_i64).unwrap_or(view.priority),
        };
        validate(state, &new, Some(*id))?;
        changed.push((*id, new));
    }
    state.ir.views.extend(changed);
    Ok(Some(json!(true)))
}

/// `ir.ui.view/unlink`: views made through the API, with the views inheriting from them.
fn unlink_views(state: &mut State, args: &Map<String, Value>) -> Answer {
    let ids = orm::ids(args)?;
    if let Some(id) = ids.iter().find(|id| !state.ir.views.contains_key(id)) {
        return Err(match *id == MO_FORM {
            true => OrmError::value("(simulated) the MO form itself is kept".into()),
            false => missing(VIEW, *id),
        });
    }
    let mut gone = ids;
    while let Some(id) = gone.pop() {
        state.ir.views.remove(&id);
        let children = state.ir.views.iter().filter(|(_, v)| v.inherit_id == Some(id));
        gone.extend(children.map(|(child, _)| *child));
    }
    Ok(Some(json!(true)))
}

/// `mrp.production/get_views`: the combined form and the fields it shows. Other view types
/// are not modelled.
fn get_views(state: &State, args: &Map<String, Value>) -> Answer {
    let views = args
        .get("views")
        .and_then(Value::as_array)
        .ok_or_else(|| OrmError::missing_argument("views"))?;
    let mut answer = Map::new();
    let mut shown: Vec<String> = Vec::new();
    for pair in views {
        let kind = pair.get(1).and_then(Value::as_str).unwrap_or_default();
        if kind != "form" {
            return Err(OrmError::value(format!(
                "(simulated) only the {MO} form view is modelled, not {kind}"
            )));
        }
        let arch = combined(state, MO_FORM, None)?;
        shown.extend(arch::field_names(&arch));
        answer.insert(kind.into(), json!({"arch": arch, "id": MO_FORM, "model": MO}));
    }
    let mut fields = orm::mo_fields(state.config.version, &state.config.custom_fields);
    fields.extend(mo_fields(state));
    let described = orm::fields_get(MO, &fields, &Map::from_iter([("allfields".into(), json!(shown))]));
    Ok(Some(json!({"views": answer, "models": {MO: {"fields": described}}})))
}

/// The custom fields made through the API, as `ir.model.fields` reads them.
pub(super) fn made_fields(state: &State) -> Vec<Value> {
    let rows = field_rows(state);
    let made = state.ir.fields.keys().filter_map(|id| rows.get(id));
    made.map(|r| Value::Object(r.clone())).collect()
}

/// The views made through the API, as `ir.ui.view` reads them.
pub(super) fn made_views(state: &State) -> Vec<Value> {
    let rows = table(state, VIEW);
    let made = state.ir.views.keys().filter_map(|id| rows.get(id));
    made.map(|r| Value::Object(r.clone())).collect()
}

/// The MO form as `get_views` shows it.
pub(super) fn mo_form(state: &State) -> String {
    combined(state, MO_FORM, None).unwrap_or_else(|e| format!("(the form cannot be combined: {})", e.message))
}
