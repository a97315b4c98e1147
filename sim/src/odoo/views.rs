//! `ir.ui.view` as an administrator uses it over the API (recorded on 19.0, see [`super::ir`]):
//! the MO form (`mrp.mrp_production_form_view`), views inheriting it whose specs must locate
//! their elements and whose fields must exist, and `mrp.production/get_views` showing the
//! combined form.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::ir::{self, empty, missing, missing_required, row, MO, MO_FORM, VIEW};
use super::orm::{self, Answer, Field, OrmError};
use super::{arch, State};

/// A view made through the API.
pub(super) struct View {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) model: String,
    pub(super) inherit_id: Option<i64>,
    pub(super) arch: String,
    pub(super) priority: i64,
}

/// `ir.ui.view`'s rows: the MO form, and the views made through the API.
pub(super) fn rows(state: &State) -> BTreeMap<i64, Map<String, Value>> {
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
    fields.extend(ir::mo_fields(state));
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
pub(super) fn create(state: &mut State, fields: &[Field], args: &Map<String, Value>) -> Answer {
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
pub(super) fn write(state: &mut State, args: &Map<String, Value>) -> Answer {
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
pub(super) fn unlink(state: &mut State, args: &Map<String, Value>) -> Answer {
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
pub(super) fn get_views(state: &State, args: &Map<String, Value>) -> Answer {
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
    fields.extend(ir::mo_fields(state));
    let described = orm::fields_get(MO, &fields, &Map::from_iter([("allfields".into(), json!(shown))]));
    Ok(Some(json!({"views": answer, "models": {MO: {"fields": described}}})))
}

/// The views made through the API, as `ir.ui.view` reads them.
pub(super) fn made(state: &State) -> Vec<Value> {
    let rows = rows(state);
    let made = state.ir.views.keys().filter_map(|id| rows.get(id));
    made.map(|r| Value::Object(r.clone())).collect()
}

/// The MO form as `get_views` shows it.
pub(super) fn mo_form(state: &State) -> String {
    combined(state, MO_FORM, None).unwrap_or_else(|e| format!("(the form cannot be combined: {})", e.message))
}
