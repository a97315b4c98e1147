//! What an administrator changes through the API alone, without installing a module, as
//! recorded on 19.0 (`../shared/protocols/odoo.md`, "Preparing an Odoo for the floor's
//! results, over the API"): `ir.model` (a model's id), `ir.model.fields` (custom `x_` fields of
//! `mrp.production`, which are then its fields like any other), `ir.model.data` (external ids:
//! the MO form's view) and `ir.ui.view` (views inheriting the MO form, whose fields must
//! exist: [`views`]), and `get_views` showing the combined form. Changing any of them takes an
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
use super::views::{self, View};
use super::{arch, rights, State};

pub(super) const MODEL: &str = "ir.model";
pub(super) const FIELDS: &str = "ir.model.fields";
pub(super) const DATA: &str = "ir.model.data";
pub(super) const VIEW: &str = "ir.ui.view";

pub(super) const MO: &str = "mrp.production";

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
pub(super) const MO_FORM: i64 = 843;
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

pub(super) struct Ir {
    fields: BTreeMap<i64, Manual>,
    pub(super) views: BTreeMap<i64, View>,
    next_field: i64,
    pub(super) next_view: i64,
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
        return Some(views::get_views(state, args));
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
                (VIEW, "create") => views::create(state, &fields, args),
                (VIEW, "write") => views::write(state, args),
                (VIEW, "unlink") => views::unlink(state, args),
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

pub(super) fn row(value: Value) -> Map<String, Value> {
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
            let mut rows = BTreeMap::from([(1, row(model)), (2, row(form))]);
            // The chatter's subtypes, which a note names.
            for (id, module, name, model, res_id) in super::records::XMLIDS {
                let xmlid = json!({"id": id, "module": module, "name": name, "complete_name": format!("{module}.{name}"),
                    "model": model, "res_id": res_id, "noupdate": true});
                rows.insert(id, row(xmlid));
            }
            rows
        }
        _ => super::views::rows(state),
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

pub(super) fn missing_required(label: &str, name: &str, description: &str, model: &str) -> OrmError {
    OrmError::validation(format!(
        "The operation cannot be completed: Missing required value for the field '{label}' ({name}).\n\
         Model: '{description}' ({model})\n\
         - create/update: a mandatory field is not set\n\
         - delete: another model requires the record being deleted, you can archive it instead\n"
    ))
}

/// A record that is not there, as Odoo names it: `Record: ir.ui.view(7,)`.
pub(super) fn missing(model: &str, id: i64) -> OrmError {
    let message = format!("Record does not exist or has been deleted.\n(Record: {model}({id},), User: 2)");
    OrmError::same("odoo.exceptions.MissingError", 404, message)
}

/// A UserError (JSON-2: 422, as a ValidationError is).
fn user_error(message: String) -> OrmError {
    OrmError::same("odoo.exceptions.UserError", 422, message)
}

pub(super) fn empty(value: Option<&Value>) -> bool {
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

/// The custom fields made through the API, as `ir.model.fields` reads them.
pub(super) fn made_fields(state: &State) -> Vec<Value> {
    let rows = field_rows(state);
    let made = state.ir.fields.keys().filter_map(|id| rows.get(id));
    made.map(|r| Value::Object(r.clone())).collect()
}
