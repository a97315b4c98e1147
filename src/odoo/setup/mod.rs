//! Preparing an Odoo for the floor's results over the API alone, with an administrator's key
//! (`linegate odoo-setup`): the custom fields `[odoo.push.fields]` maps, and a page on the MO
//! form that shows them — as recorded on 19.0 (`odoo.md`, "Preparing an Odoo for the floor's
//! results, over the API"), so it works where modules cannot be installed.
//!
//! It asks first and changes after ([`plan`]): whether the key may (`has_access`, 18.0+, or
//! `check_access_rights` before), what Odoo has. Fields are made in one call (one transaction:
//! all or none), then the page; a page Odoo refuses takes the fields made with it away again.

pub(crate) mod page;
pub(crate) mod plan;

use serde_json::{json, Map, Value};

use super::{OdooClient, OdooError};
use plan::{Existing, FieldStep, Found, PageStep, Plan};

const MO: &str = "mrp.production";
const FIELDS: &str = "ir.model.fields";
const VIEW: &str = "ir.ui.view";
/// The MO form's external id.
const MO_FORM: (&str, &str) = ("mrp", "mrp_production_form_view");

/// What the command does to Odoo: make (or update) what is missing, or take it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    Make,
    Remove,
}

/// The models and operations `task` needs, in the order they are asked.
fn needs(task: Task) -> [(&'static str, &'static str); 2] {
    match task {
        Task::Make => [(FIELDS, "create"), (VIEW, "create")],
        Task::Remove => [(FIELDS, "unlink"), (VIEW, "unlink")],
    }
}

/// Whether the key's user may carry out `task`: Err(the first model and operation refused).
pub(crate) async fn rights(
    client: &OdooClient,
    version: u32,
    task: Task,
) -> Result<Result<(), (&'static str, &'static str)>, OdooError> {
    for (model, operation) in needs(task) {
        if !may(client, version, model, operation).await? {
            return Ok(Err((model, operation)));
        }
    }
    Ok(Ok(()))
}

/// What the records of a model this command changes are, for a person.
pub(crate) fn describe(model: &str) -> &'static str {
    match model {
        FIELDS => "custom fields",
        _ => "views",
    }
}

/// Odoo's own answer to whether the user may `operation` records of `model` (its access
/// rights): `has_access` on 18.0 and later, `check_access_rights` without raising before.
async fn may(client: &OdooClient, version: u32, model: &str, operation: &str) -> Result<bool, OdooError> {
    let mut named = Map::from_iter([("operation".to_string(), json!(operation))]);
    let method = if version >= 18 {
        "has_access"
    } else {
        named.insert("raise_exception".into(), json!(false));
        "check_access_rights"
    };
    match client.call(model, method, named).await? {
        Value::Bool(allowed) => Ok(allowed),
        other => Err(OdooError::Decode(format!(
            "{model}.{method} answered {}",
            crate::http::snippet(&other.to_string())
        ))),
    }
}

/// What Odoo has: `mrp.production`'s id, the MO form, the fields `names` and every field this
/// command made, its pages.
pub(crate) async fn look(client: &OdooClient, names: &[&str]) -> Result<Found, OdooError> {
    let model_id = first(
        client,
        "ir.model",
        json!([["model", "=", MO]]),
        "id",
        "Manufacturing app (mrp.production is not in ir.model)",
    )
    .await?;
    let (module, name) = MO_FORM;
    let xmlid = json!([["module", "=", module], ["name", "=", name], ["model", "=", VIEW]]);
    let form = first(
        client,
        "ir.model.data",
        xmlid,
        "res_id",
        "MO form view (mrp.mrp_production_form_view)",
    )
    .await?;
    // The named ones, and the custom ones among which this command's are.
    let domain = json!([["model", "=", MO], "|", ["name", "in", names], ["state", "=", "manual"]]);
    let fields = strings(&["name", "ttype", "help"]);
    let rows = client.search_read(FIELDS, &domain, &fields, "id asc", None).await?;
    let fields = rows
        .iter()
        .filter_map(|r| {
            Some(Existing {
                id: r.get("id")?.as_i64()?,
                name: r.get("name")?.as_str()?.to_string(),
                kind: r.get("ttype")?.as_str()?.to_string(),
                ours: r.get("help").and_then(Value::as_str).is_some_and(plan::made_here),
            })
        })
        .collect();
    let domain = json!([["model", "=", MO], ["name", "=", page::VIEW_NAME]]);
    let rows = client
        .search_read(VIEW, &domain, &strings(&["arch"]), "id asc", None)
        .await?;
    let pages = rows
        .iter()
        .filter_map(|r| Some((r.get("id")?.as_i64()?, r.get("arch")?.as_str()?.to_string())))
        .collect();
    Ok(Found {
        model_id,
        form,
        fields,
        pages,
    })
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// `field` of the first record of `model` that `domain` finds; a decode error naming `what`
/// when there is none.
async fn first(client: &OdooClient, model: &str, domain: Value, field: &str, what: &str) -> Result<i64, OdooError> {
    let rows = client
        .search_read(model, &domain, &strings(&[field]), "id asc", Some(1))
        .await?;
    rows.first()
        .and_then(|r| r.get(field))
        .and_then(Value::as_i64)
        .ok_or_else(|| OdooError::Unsupported(format!("this Odoo has no {what}")))
}

/// What [`make`] did before it stopped, and why it stopped.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub(crate) error: OdooError,
    /// The step it stopped at.
    pub(crate) at: &'static str,
    /// Fields it made and could not take away again (the page was refused after them).
    pub(crate) left: Vec<String>,
}

/// Carries `plan` out: the fields to make in one call, then the page. The page's view id.
pub(crate) async fn make(client: &OdooClient, found: &Found, plan: &Plan, help: &str) -> Result<i64, Stopped> {
    let vals: Vec<Value> = plan
        .fields
        .iter()
        .filter_map(|step| match step {
            FieldStep::Make { name, kind, label, .. } => Some(json!({
                "model_id": found.model_id, "name": name, "ttype": kind,
                "field_description": label, "help": help,
            })),
            FieldStep::Keep { .. } => None,
        })
        .collect();
    let mut made = Vec::new();
    if !vals.is_empty() {
        let named = Map::from_iter([("vals_list".to_string(), Value::Array(vals))]);
        let answer = client
            .call_once(FIELDS, "create", named)
            .await
            .map_err(|error| Stopped {
                error,
                at: "making the fields",
                left: Vec::new(),
            })?;
        made = answer
            .as_array()
            .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
    }
    let page = match &plan.page {
        PageStep::Keep { id } => Ok(*id),
        PageStep::Make { arch } => {
            let vals =
                json!([{"name": page::VIEW_NAME, "type": "form", "model": MO, "inherit_id": found.form, "arch": arch}]);
            let named = Map::from_iter([("vals_list".to_string(), vals)]);
            match client.call_once(VIEW, "create", named).await {
                Ok(Value::Array(ids)) if ids.len() == 1 && ids[0].is_i64() => Ok(ids[0].as_i64().unwrap_or(0)),
                Ok(other) => Err(OdooError::Decode(format!(
                    "ir.ui.view.create answered {}",
                    crate::http::snippet(&other.to_string())
                ))),
                Err(e) => Err(e),
            }
        }
        PageStep::Update { id, arch } => {
            let named = Map::from_iter([
                ("ids".to_string(), json!([id])),
                ("vals".to_string(), json!({"arch": arch})),
            ]);
            client.call_once(VIEW, "write", named).await.map(|_| *id)
        }
    };
    match page {
        Ok(id) => Ok(id),
        Err(error) => {
            // Nothing half-made: the fields made for a page Odoo refused go again (no value has
            // been written into them yet).
            let names: Vec<String> = plan
                .fields
                .iter()
                .filter(|s| matches!(s, FieldStep::Make { .. }))
                .map(|s| s.name().to_string())
                .collect();
            let left = match made.is_empty() || unlink(client, FIELDS, &made).await.is_ok() {
                true => Vec::new(),
                false => names,
            };
            Err(Stopped {
                error,
                at: "making the page",
                left,
            })
        }
    }
}

/// Takes away what this command made: its pages first (Odoo keeps a field a view shows), then
/// its fields, with their values.
pub(crate) async fn remove(client: &OdooClient, found: &Found) -> Result<(), Stopped> {
    let pages: Vec<i64> = found.pages.iter().map(|(id, _)| *id).collect();
    let ours: Vec<i64> = found.fields.iter().filter(|f| f.ours).map(|f| f.id).collect();
    for (model, ids, at) in [
        (VIEW, pages, "removing the page"),
        (FIELDS, ours, "removing the fields"),
    ] {
        if !ids.is_empty() {
            let left = Vec::new();
            unlink(client, model, &ids)
                .await
                .map_err(|error| Stopped { error, at, left })?;
        }
    }
    Ok(())
}

async fn unlink(client: &OdooClient, model: &str, ids: &[i64]) -> Result<(), OdooError> {
    let named = Map::from_iter([("ids".to_string(), json!(ids))]);
    match client.call_once(model, "unlink", named).await? {
        Value::Bool(true) => Ok(()),
        other => Err(OdooError::Decode(format!(
            "{model}.unlink answered {}",
            crate::http::snippet(&other.to_string())
        ))),
    }
}
