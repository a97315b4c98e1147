//! What Odoo offers the configured steps, asked before the first delivery (again whenever
//! Odoo returns, and at least hourly) and by `linegate check-config --odoo`: the mapped
//! fields and their types, read access to each model a step reads, the productive loss type.
//! It only reads: whether Odoo lets the API user write is learnt at the first write, whose
//! refusal parks the result with Odoo's own words.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::config::PushConfig;
use crate::odoo::{OdooClient, OdooError};

/// What was found for the configured steps.
#[derive(Debug, Clone, Default)]
pub(crate) struct Preflight {
    /// The mapped fields Odoo has, with their types (`char`, `datetime`, `float`, …).
    pub(crate) types: HashMap<String, String>,
    /// The productive loss type time-tracking entries are booked on.
    pub(crate) productive_loss: Option<i64>,
    /// The chatter's note subtype (`mail.mt_note`), which a note is made with.
    pub(crate) note_subtype: Option<i64>,
    /// One per configured step, in delivery order.
    pub(crate) checks: Vec<Check>,
}

#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// The step's name in `[odoo.push]`.
    pub(crate) step: &'static str,
    /// What the step does with what was found, or why Odoo will refuse it.
    pub(crate) outcome: Result<String, String>,
}

impl Preflight {
    pub(crate) fn refusals(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.checks
            .iter()
            .filter_map(|c| c.outcome.as_ref().err().map(|why| (c.step, why.as_str())))
    }
}

/// Asks Odoo. An error is one that retrying may mend (Odoo unreachable, busy, the login
/// refused); what Odoo refuses for good is in the checks.
pub(crate) async fn preflight(client: &OdooClient, push: &PushConfig) -> Result<Preflight, OdooError> {
    let mut found = Preflight::default();
    if push.chatter {
        let domain = json!([["model", "=", "mrp.production"]]);
        let mut outcome = readable(client, "mail.message", &domain).await?;
        if outcome.is_ok() {
            found.note_subtype = note_subtype(client).await?;
            if found.note_subtype.is_none() {
                outcome = Err(super::chatter::NO_NOTE_SUBTYPE.to_string());
            }
        }
        let outcome = outcome.map(|()| {
            "a note (mail.message) on the MO; mail.message readable, to find a note whose answer was lost".to_string()
        });
        found.checks.push(Check {
            step: "chatter",
            outcome,
        });
    }
    let mapped = push.fields.mapped();
    if !mapped.is_empty() {
        let names: Vec<&str> = mapped.iter().map(|(_, f)| *f).collect();
        found.types = field_types(client, &names).await?;
        let outcome = match mapped.iter().find(|(_, f)| !found.types.contains_key(*f)) {
            Some((key, field)) => Err(format!(
                "odoo.push.fields.{key}: Odoo has no field `{field}` on mrp.production"
            )),
            None => Ok(mapped
                .iter()
                .map(|(key, f)| format!("{key} → {f} ({})", found.types[*f]))
                .collect::<Vec<_>>()
                .join(", ")),
        };
        found.checks.push(Check {
            step: "fields",
            outcome,
        });
    }
    if push.progress {
        let outcome = match field_types(client, &["qty_producing"])
            .await?
            .contains_key("qty_producing")
        {
            true => Ok("action_start, qty_producing, button_mark_done (a backorder for what was not made)".to_string()),
            false => Err("Odoo has no qty_producing on mrp.production".to_string()),
        };
        found.checks.push(Check {
            step: "progress",
            outcome,
        });
    }
    if push.time_tracking {
        // The loss type whatever else is refused: a delivery needs it to say what it lacks.
        let domain = json!([["loss_type", "=", "productive"]]);
        let mut outcome = match first_id(client, "mrp.workcenter.productivity.loss", &domain).await {
            Ok(loss) => {
                found.productive_loss = loss;
                Ok(())
            }
            Err(e) => Err(refusal(e)?),
        };
        for model in ["mrp.workorder", "mrp.workcenter.productivity"] {
            if outcome.is_ok() {
                outcome = readable(client, model, &json!([])).await?;
            }
        }
        let outcome = outcome.and_then(|()| match found.productive_loss {
            Some(loss) => Ok(format!("entries on the MO's work order, loss type {loss} (productive)")),
            None => Err("Odoo has no productive loss type (mrp.workcenter.productivity.loss)".to_string()),
        });
        found.checks.push(Check {
            step: "time_tracking",
            outcome,
        });
    }
    Ok(found)
}

/// Whether the API user may read `model`: Ok(Err(Odoo's refusal)) when not.
async fn readable(client: &OdooClient, model: &str, domain: &Value) -> Result<Result<(), String>, OdooError> {
    match first_id(client, model, domain).await {
        Ok(_) => Ok(Ok(())),
        Err(e) => Ok(Err(refusal(e)?)),
    }
}

/// Odoo's no to a step (no rights, no such model or field), as opposed to Odoo not answering,
/// or refusing the login, now.
fn refusal(e: OdooError) -> Result<String, OdooError> {
    match e {
        OdooError::AccessError(_) | OdooError::UnknownField { .. } | OdooError::Rpc { retryable: false, .. } => {
            Ok(super::one_line(&e))
        }
        e => Err(e),
    }
}

/// The id of the chatter's note subtype, by its external id `mail.mt_note`.
async fn note_subtype(client: &OdooClient) -> Result<Option<i64>, OdooError> {
    let domain = json!([["module", "=", "mail"], ["name", "=", "mt_note"]]);
    let found = client
        .search_read("ir.model.data", &domain, &["res_id".to_string()], "id asc", Some(1))
        .await?;
    Ok(found.first().and_then(|r| r.get("res_id")).and_then(Value::as_i64))
}

async fn first_id(client: &OdooClient, model: &str, domain: &Value) -> Result<Option<i64>, OdooError> {
    let found = client
        .search_read(model, domain, &["id".to_string()], "id asc", Some(1))
        .await?;
    Ok(found.first().and_then(|r| r.get("id")).and_then(Value::as_i64))
}

/// The types of those of `names` that `mrp.production` has (`fields_get` leaves the others out).
pub(crate) async fn field_types(client: &OdooClient, names: &[&str]) -> Result<HashMap<String, String>, OdooError> {
    let named = Map::from_iter([
        ("allfields".to_string(), json!(names)),
        ("attributes".to_string(), json!(["type"])),
    ]);
    match client.call("mrp.production", "fields_get", named).await? {
        Value::Object(fields) => Ok(fields
            .into_iter()
            .map(|(name, d)| (name, d["type"].as_str().unwrap_or("char").to_string()))
            .collect()),
        other => Err(OdooError::Decode(format!(
            "fields_get answered {}",
            crate::http::snippet(&other.to_string())
        ))),
    }
}
