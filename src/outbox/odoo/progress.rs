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
    /// step Odoo already has (its answer lost) is not made twice.
    pub(super) async fn progress(&self, result: &FloorResult) -> Result<(), Failure> {
        let mo = result.mo;
        let state = |row: &Map<String, Value>| row.get("state").and_then(Value::as_str).unwrap_or_default().to_string();
        match result.happened {
            Happened::Registered => Ok(()),
            Happened::Started => {
                let row = self.read_mo(mo, &["state"]).await?;
                match state(&row).as_str() {
                    "confirmed" => {
                        let named = Map::from_iter([("ids".to_string(), json!([mo]))]);
                        // It answers nothing (JSON-2 `null`, JSON-RPC no `result`).
                        match self.once("mrp.production", "action_start", named).await? {
                            Value::Null | Value::Bool(true) => Ok(()),
                            other => Err(wizard("action_start", &other)),
                        }
                    }
                    "progress" | "to_close" | "done" => Ok(()),
                    other => Err(Failure::Park(format!(
                        "the MO is {other:?} in Odoo; it cannot be started there"
                    ))),
                }
            }
            Happened::Ended => {
                let row = self.read_mo(mo, &["state", "product_qty"]).await?;
                match state(&row).as_str() {
                    "done" => return Ok(()),
                    "confirmed" | "progress" | "to_close" => {}
                    other => {
                        return Err(Failure::Park(format!(
                            "the MO is {other:?} in Odoo; it cannot be closed there"
                        )))
                    }
                }
                let p = &result.protected;
                let Some(produced) = result.produced() else {
                    return Err(Failure::Park(match (&p.auth_first, &p.auth_last) {
                        (Some(first), Some(last)) => {
                            format!("the sticker codes {first} … {last} give no quantity produced")
                        }
                        _ => "no quantity produced is known (no sticker codes)".to_string(),
                    }));
                };
                let planned = row.get("product_qty").and_then(Value::as_f64).unwrap_or(0.0);
                // A code mistyped by a digit would close the MO with billions made: that is
                // for a person to look at, not for Odoo to book.
                if produced as f64 > (planned * IMPLAUSIBLE).max(planned + IMPLAUSIBLE_OVER) {
                    return Err(Failure::Park(format!(
                        "the sticker codes say {produced} made, where {planned} were planned: a person \
                         checks them, closes the MO in Odoo, and drops this result"
                    )));
                }
                let vals = json!({"qty_producing": produced as f64});
                let named = Map::from_iter([("ids".to_string(), json!([mo])), ("vals".to_string(), vals)]);
                match self.once("mrp.production", "write", named).await? {
                    Value::Bool(true) => {}
                    other => return Err(wizard("write", &other)),
                }
                // The quantity onto the MO's moves, as the form's "produce" does (it answers
                // nothing); both calls set, so repeating them changes nothing.
                let named = Map::from_iter([("ids".to_string(), json!([mo]))]);
                match self.once("mrp.production", "set_qty_producing", named).await? {
                    Value::Null | Value::Bool(true) => {}
                    other => return Err(wizard("set_qty_producing", &other)),
                }
                let mut named = Map::from_iter([("ids".to_string(), json!([mo]))]);
                if (produced as f64) < planned {
                    // Less than planned: close it and leave the rest in a backorder, as the
                    // wizard's "Create Backorder" does.
                    named.insert(
                        "context".into(),
                        json!({"skip_backorder": true, "mo_ids_to_backorder": [mo]}),
                    );
                }
                match self.once("mrp.production", "button_mark_done", named).await? {
                    Value::Bool(true) => Ok(()),
                    // A dict where `true` was expected is a wizard: nothing was done.
                    other => Err(wizard("button_mark_done", &other)),
                }
            }
        }
    }
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
