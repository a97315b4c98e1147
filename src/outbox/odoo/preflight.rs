//! What Odoo offers the sync and the configured steps, asked before the first delivery (again
//! whenever Odoo returns, and at least hourly) and by `linegate check-config --odoo`: the
//! rights each needs of the API user (asked with `has_access`, see [`crate::odoo`]'s
//! `rights`), the mapped fields and their types, the note subtype, the productive loss type.
//! It only reads. Record rules (a company the user is not in) are learnt at the call, whose
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

/// The rights on (model, operation) each part needs of the API user, in the order asked.
const SYNC_RIGHTS: &[(&str, &str)] = &[("mrp.production", "read"), ("stock.picking", "read")];
/// A note is posted on the MO: Odoo wants the right to write it (`_mail_post_access`).
const CHATTER_RIGHTS: &[(&str, &str)] = &[
    ("mrp.production", "write"),
    ("mail.message", "create"),
    ("mail.message", "read"),
];
const FIELDS_RIGHTS: &[(&str, &str)] = &[("mrp.production", "write")];
const PROGRESS_RIGHTS: &[(&str, &str)] = &[("mrp.production", "read"), ("mrp.production", "write")];
const TIME_TRACKING_RIGHTS: &[(&str, &str)] = &[
    ("mrp.workorder", "read"),
    ("mrp.workcenter.productivity", "read"),
    ("mrp.workcenter.productivity", "create"),
    ("mrp.workcenter.productivity", "write"),
    ("mrp.workcenter.productivity.loss", "read"),
];

/// The rights asked so far in one check: each asked once.
struct Rights<'a> {
    client: &'a OdooClient,
    known: HashMap<(&'static str, &'static str), Result<(), String>>,
}

impl Rights<'_> {
    /// Ok when the API user has every right of `needed`, else the first missing, named.
    async fn all(&mut self, needed: &[(&'static str, &'static str)]) -> Result<Result<(), String>, OdooError> {
        for &(model, operation) in needed {
            let answer = match self.known.get(&(model, operation)) {
                Some(known) => known.clone(),
                None => {
                    let asked = self.client.may(model, operation).await?;
                    self.known.insert((model, operation), asked.clone());
                    asked
                }
            };
            if let Err(why) = answer {
                return Ok(Err(format!("the API user may not {operation} {model}: {why}")));
            }
        }
        Ok(Ok(()))
    }
}

/// Asks Odoo about the sync, and the steps of `push` when given. An error is one that
/// retrying may mend (Odoo unreachable, busy, the login refused); what Odoo refuses for good
/// is in the checks.
pub(crate) async fn preflight(client: &OdooClient, push: Option<&PushConfig>) -> Result<Preflight, OdooError> {
    let mut found = Preflight::default();
    let mut rights = Rights {
        client,
        known: HashMap::new(),
    };
    let outcome = rights.all(SYNC_RIGHTS).await?;
    found.checks.push(Check {
        step: "sync",
        outcome: outcome.map(|()| "MOs and transfers readable".to_string()),
    });
    let Some(push) = push else {
        return Ok(found);
    };
    if push.chatter {
        let mut outcome = rights.all(CHATTER_RIGHTS).await?;
        // Whatever the rights: a note tried all the same (a person retried it) parks on Odoo's
        // own refusal, not on a subtype it lacks.
        match note_subtype(client).await {
            Ok(found_id) => found.note_subtype = found_id,
            Err(e) => outcome = outcome.and(Err(refusal(e)?)),
        }
        if outcome.is_ok() && found.note_subtype.is_none() {
            outcome = Err(super::chatter::NO_NOTE_SUBTYPE.to_string());
        }
        let outcome = outcome.map(|()| {
            "a note (mail.message) on the MO, and mail.message readable, to find a note whose answer was lost"
                .to_string()
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
        let allowed = rights.all(FIELDS_RIGHTS).await?;
        let outcome = match mapped.iter().find(|(_, f)| !found.types.contains_key(*f)) {
            Some((key, field)) => Err(format!(
                "odoo.push.fields.{key}: Odoo has no field `{field}` on mrp.production: run `linegate odoo-setup`"
            )),
            None if allowed.is_err() => allowed.map(|()| String::new()),
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
        let allowed = rights.all(PROGRESS_RIGHTS).await?;
        let outcome = match field_types(client, &["qty_producing"])
            .await?
            .contains_key("qty_producing")
        {
            true => allowed.map(|()| {
                "action_start, qty_producing, button_mark_done (a backorder for what was not made)".to_string()
            }),
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
        if outcome.is_ok() {
            outcome = rights.all(TIME_TRACKING_RIGHTS).await?;
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
