//! The progress step: the MO's own state in Odoo follows the floor's.

use serde_json::{json, Map, Value};

use super::{Failure, OdooOutbox};
use crate::mo::result::{FloorResult, Happened};

/// Produced over this many times the planned quantity, and over it by [`IMPLAUSIBLE_OVER`],
/// is taken for a mistyped sticker code (an extra digit or two), not for overproduction.
const IMPLAUSIBLE: f64 = 10.0;
const IMPLAUSIBLE_OVER: f64 = 10_000.0;

impl OdooOutbox {
    /// The MO's state in Odoo follows the floor: started there when started here; on the end,
    /// the quantity made, then done (with a backorder for the rest). Read first, so that a
    /// step Odoo already has (its answer lost) is not made twice. An end answers what Odoo
    /// holds afterwards, for the note and the result's record. `id` is the result's, for a
    /// person's next command.
    pub(super) async fn progress(&self, result: &FloorResult, id: i64) -> Result<Option<String>, Failure> {
        let mo = result.mo;
        match result.happened {
            Happened::Registered => Ok(None),
            Happened::Started => {
                let row = self.read_mo(mo, &["state"]).await?;
                match state(&row) {
                    "confirmed" => {
                        let named = Map::from_iter([("ids".to_string(), json!([mo]))]);
                        // It answers nothing (JSON-2 `null`, JSON-RPC no `result`).
                        match self.once("mrp.production", "action_start", named).await? {
                            Value::Null | Value::Bool(true) => Ok(None),
                            other => Err(wizard("action_start", &other)),
                        }
                    }
                    "progress" | "to_close" | "done" => Ok(None),
                    other => Err(Failure::Park(format!(
                        "the MO is {other:?} in Odoo; it cannot be started there"
                    ))),
                }
            }
            Happened::Ended => self.close(result, id).await.map(Some),
        }
    }

    /// The end: the quantity made, onto the MO's moves, then done; what Odoo holds afterwards.
    async fn close(&self, result: &FloorResult, id: i64) -> Result<String, Failure> {
        let mo = result.mo;
        let group = self.group_field().await?;
        let row = self
            .read_mo(mo, &["state", "name", "product_qty", "qty_produced", group])
            .await?;
        let p = &result.protected;
        let Some(produced) = result.produced() else {
            return Err(Failure::Park(match (&p.auth_first, &p.auth_last) {
                (Some(first), Some(last)) => {
                    format!("the sticker codes {first} … {last} give no quantity produced")
                }
                _ => "no quantity produced is known (no sticker codes)".to_string(),
            }));
        };
        let produced = produced as f64;
        match state(&row) {
            // Closed already: by this result's own mark-done whose answer was lost, or in
            // Odoo before the floor's end reached it.
            "done" => return self.closed_before(&row, group, produced, id).await,
            "confirmed" | "progress" | "to_close" => {}
            other => {
                return Err(Failure::Park(format!(
                    "the MO is {other:?} in Odoo; it cannot be closed there"
                )))
            }
        }
        let planned = number(&row, "product_qty");
        // A code mistyped by a digit would close the MO with billions made: that is for a
        // person to look at, not for Odoo to book.
        if produced > (planned * IMPLAUSIBLE).max(planned + IMPLAUSIBLE_OVER) {
            return Err(Failure::Park(format!(
                "the sticker codes say {produced} made, where {planned} were planned: a person \
                 checks them, closes the MO in Odoo, and drops this result"
            )));
        }
        let vals = json!({"qty_producing": produced});
        let named = Map::from_iter([("ids".to_string(), json!([mo])), ("vals".to_string(), vals)]);
        match self.once("mrp.production", "write", named).await? {
            Value::Bool(true) => {}
            other => return Err(wizard("write", &other)),
        }
        // The quantity onto the MO's moves, as the form's "produce" does (it answers nothing);
        // both calls set, so repeating them changes nothing.
        let named = Map::from_iter([("ids".to_string(), json!([mo]))]);
        match self.once("mrp.production", "set_qty_producing", named).await? {
            Value::Null | Value::Bool(true) => {}
            other => return Err(wizard("set_qty_producing", &other)),
        }
        let mut named = Map::from_iter([("ids".to_string(), json!([mo]))]);
        if produced < planned {
            // Less than planned: close it and leave the rest in a backorder, as the wizard's
            // "Create Backorder" does.
            named.insert(
                "context".into(),
                json!({"skip_backorder": true, "mo_ids_to_backorder": [mo]}),
            );
        }
        let answer = self.once("mrp.production", "button_mark_done", named).await?;
        if answer == Value::Bool(true) {
            // Closed, and no backorder made: the MO keeps its name.
            return Ok(closed(&row, produced, &[]));
        }
        // A dict: a wizard that did nothing, or Odoo opening the backorder it made (with the
        // backorder context it always answers so). What Odoo holds tells which.
        let opened: Vec<i64> = match (answer.get("res_model").and_then(Value::as_str), answer.get("res_id")) {
            (Some("mrp.production"), Some(Value::Number(n))) => n.as_i64().into_iter().collect(),
            _ => Vec::new(),
        };
        let domain = if opened.is_empty() {
            open_in_group(mo, &row, group)
        } else {
            let ids = [vec![mo], opened].concat();
            json!([["id", "in", ids]])
        };
        let held = self.holds(&domain).await?;
        let Some(now) = held.iter().find(|r| r.get("id").and_then(Value::as_i64) == Some(mo)) else {
            return Err(Failure::Park("the MO no longer exists in Odoo".into()));
        };
        if state(now) != "done" {
            return Err(wizard("button_mark_done", &answer));
        }
        Ok(closed(now, number(now, "qty_produced"), &others(&held, mo)))
    }

    /// An end whose MO Odoo holds closed already: this result's own close (its answer lost)
    /// when Odoo holds at least what the floor made; else closed in Odoo before the floor's
    /// end reached it, and what the floor made beyond it is booked nowhere: that waits for a
    /// person, with what each side holds.
    async fn closed_before(
        &self,
        row: &Map<String, Value>,
        group: &str,
        produced: f64,
        id: i64,
    ) -> Result<String, Failure> {
        let mo = row.get("id").and_then(Value::as_i64).unwrap_or_default();
        let held = self.holds(&open_in_group(mo, row, group)).await?;
        let backorders = others(&held, mo);
        let holds = number(row, "qty_produced");
        if produced <= holds + QTY_EPSILON {
            return Ok(closed(row, holds, &backorders));
        }
        let name = text(row, "name");
        let rest = match backorders.as_slice() {
            [] => String::new(),
            names => format!(" (its backorder {} holds the rest of the plan)", names.join(", ")),
        };
        let book = backorders
            .first()
            .map_or("on another MO".to_string(), |b| format!("on {b}"));
        Err(Failure::Park(format!(
            "the floor made {} but Odoo closed this MO before the floor's end reached it, as {name} with {}{rest}: \
             the other {} are booked nowhere. Book them in Odoo ({book}, or as Odoo's own correction), then drop \
             this result (linegate outbox drop {id} --yes)",
            qty(produced),
            qty(holds),
            qty(produced - holds)
        )))
    }

    /// `name`, `state` and `qty_produced` of the MOs `domain` finds.
    async fn holds(&self, domain: &Value) -> Result<Vec<Map<String, Value>>, Failure> {
        let fields = ["name", "state", "product_qty", "qty_produced"].map(String::from);
        self.client
            .search_read("mrp.production", domain, &fields, "id asc", Some(MAX_BACKORDERS))
            .await
            .map_err(super::classify)
    }

    /// The field that links an MO and its backorders on this server.
    async fn group_field(&self) -> Result<&'static str, Failure> {
        let (_, version) = self.client.api().await.map_err(super::classify)?;
        Ok(if version >= 19 {
            "production_group_id"
        } else {
            "procurement_group_id"
        })
    }
}

/// MOs one close answers for at most (the MO and its open backorders).
const MAX_BACKORDERS: u32 = 20;
/// Quantities closer than this are the same (Odoo's floats).
const QTY_EPSILON: f64 = 1e-6;

fn state(row: &Map<String, Value>) -> &str {
    row.get("state").and_then(Value::as_str).unwrap_or_default()
}

fn number(row: &Map<String, Value>, name: &str) -> f64 {
    row.get(name).and_then(Value::as_f64).unwrap_or(0.0)
}

fn text(row: &Map<String, Value>, name: &str) -> String {
    row.get(name).and_then(Value::as_str).unwrap_or("?").to_string()
}

/// A quantity as a person writes it: 4, not 4.0.
fn qty(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// The MO `mo` and the open MOs of its group (its backorders), when it has a group.
fn open_in_group(mo: i64, row: &Map<String, Value>, group: &str) -> Value {
    match row.get(group).and_then(|g| g.get(0)).and_then(Value::as_i64) {
        Some(group_id) => json!([
            "|",
            ["id", "=", mo],
            "&",
            [group, "=", group_id],
            ["state", "not in", ["done", "cancel"]]
        ]),
        None => json!([["id", "=", mo]]),
    }
}

/// The names of the MOs in `held` other than `mo`.
fn others(held: &[Map<String, Value>], mo: i64) -> Vec<String> {
    held.iter()
        .filter(|r| r.get("id").and_then(Value::as_i64) != Some(mo))
        .map(|r| text(r, "name"))
        .collect()
}

/// What Odoo holds of a closed MO, as the note and the result's record say it.
fn closed(row: &Map<String, Value>, holds: f64, backorders: &[String]) -> String {
    let mut said = format!("Odoo: closed as {} with {}", text(row, "name"), qty(holds));
    if !backorders.is_empty() {
        said.push_str(&format!("; backorder {} for the rest", backorders.join(", ")));
    }
    said
}

/// An answer of another shape than the call promises: a wizard (an action dict) where `true`
/// or nothing was expected means Odoo did nothing and wants a person.
pub(super) fn wizard(method: &str, answer: &Value) -> Failure {
    let name = answer.get("name").and_then(Value::as_str);
    match (answer.get("type").and_then(Value::as_str), name) {
        (Some(kind), Some(name)) if kind.starts_with("ir.actions") => Failure::Park(format!(
            "{method} opened a wizard in Odoo ({name:?}): a person must finish it there"
        )),
        _ => Failure::Park(format!(
            "{method} answered {} where success was expected",
            crate::http::snippet(&answer.to_string())
        )),
    }
}
