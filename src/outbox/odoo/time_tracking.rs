//! The time-tracking step: the floor's start and end as productive time on the MO's first
//! work order, so that what Odoo holds for that work is the floor's real time.
//!
//! Odoo's mark-done gives every open work order of the MO without time its expected duration,
//! booked as a row of the API user ending at mark-done time (`_post_inventory`; recorded on 19).
//! So the floor's row goes on before the close (see the step order in [`super`]); when the
//! close came first all the same (a result queued before this order, a person who closed the
//! MO in Odoo, time tracking turned on later), the row Odoo invented for this work order is
//! made the floor's, rather than added to. The MO's other work orders keep Odoo's estimate:
//! the floor tracks one span per MO.

use serde_json::{json, Map, Value};

use super::progress::wizard;
use super::{Failure, OdooOutbox};
use crate::clock;
use crate::mo::result::{FloorResult, Happened};

/// How far a row's end may be from the MO's close and still be the one the close booked:
/// both are stamped in the same transaction, a few calls apart.
const CLOSE_WINDOW: i64 = 60;

impl OdooOutbox {
    /// The floor's time on the MO's first work order, unless Odoo has it already (found by
    /// the event id in its description).
    pub(super) async fn time_tracking(
        &self,
        result: &FloorResult,
        loss: Option<i64>,
        uncertain: bool,
    ) -> Result<(), Failure> {
        let p = &result.protected;
        let (Happened::Ended, Some(start), Some(end)) = (result.happened, &p.date_start, &p.date_finished) else {
            return Ok(());
        };
        let row = self
            .read_mo(result.mo, &["workorder_ids", "company_id", "state", "date_finished"])
            .await?;
        let Some(workorder) = row
            .get("workorder_ids")
            .and_then(Value::as_array)
            .and_then(|w| w.first())
            .and_then(Value::as_i64)
        else {
            // Nothing to attach it to.
            return Ok(());
        };
        let many2one =
            |row: &Map<String, Value>, name: &str| row.get(name).and_then(|v| v.get(0)).and_then(Value::as_i64);
        let named = Map::from_iter([
            ("ids".to_string(), json!([workorder])),
            ("fields".to_string(), json!(["workcenter_id", "duration_expected"])),
        ]);
        let order = match self.ask("mrp.workorder", "read", named).await? {
            Value::Array(mut rows) if !rows.is_empty() => match rows.swap_remove(0) {
                Value::Object(order) => order,
                _ => Map::new(),
            },
            _ => Map::new(),
        };
        let closed = row.get("state").and_then(Value::as_str) == Some("done");
        let mut invented = None;
        if uncertain || closed {
            let rows = self.time_rows(workorder).await?;
            let ours = |r: &&Map<String, Value>| {
                r.get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.contains(&result.event_id))
            };
            if rows.iter().any(|r| ours(&r)) {
                return Ok(());
            }
            if closed {
                invented = booked_by_the_close(&rows, &row, &order);
            }
        }
        let Some(workcenter) = many2one(&order, "workcenter_id") else {
            return Err(Failure::Park(format!(
                "work order {workorder} has no work center in Odoo"
            )));
        };
        let Some(loss) = loss else {
            return Err(Failure::Park(
                "Odoo has no productive loss type (mrp.workcenter.productivity.loss)".into(),
            ));
        };
        let odoo_time = |t: &str| clock::parse_rfc3339(t).map(clock::format_odoo);
        let (Some(start), Some(end)) = (odoo_time(start), odoo_time(end)) else {
            return Err(Failure::Park("the floor's start or end time cannot be read".into()));
        };
        let description = format!("linegate {} ({})", result.event_id, result.station);
        if let Some(invented) = invented {
            // The close's estimate becomes the floor's time: the work order holds it alone.
            let vals = json!({"date_start": start, "date_end": end, "description": description, "loss_id": loss});
            let named = Map::from_iter([("ids".to_string(), json!([invented])), ("vals".to_string(), vals)]);
            return match self.once("mrp.workcenter.productivity", "write", named).await? {
                Value::Bool(true) => Ok(()),
                other => Err(wizard("write", &other)),
            };
        }
        let mut vals = json!({"workorder_id": workorder, "workcenter_id": workcenter, "production_id": result.mo,
            "loss_id": loss, "date_start": start, "date_end": end, "description": description});
        if let Some(company) = many2one(&row, "company_id") {
            vals["company_id"] = json!(company);
        }
        let named = Map::from_iter([("vals_list".to_string(), json!([vals]))]);
        match self.once("mrp.workcenter.productivity", "create", named).await? {
            Value::Array(ids) if ids.len() == 1 && ids[0].is_i64() => Ok(()),
            other => Err(wizard("create", &other)),
        }
    }

    /// The time-tracking rows of `workorder`.
    async fn time_rows(&self, workorder: i64) -> Result<Vec<Map<String, Value>>, Failure> {
        let domain = json!([["workorder_id", "=", workorder]]);
        let fields = ["description", "date_end", "duration"].map(String::from);
        self.client
            .search_read(
                "mrp.workcenter.productivity",
                &domain,
                &fields,
                "id asc",
                Some(MAX_ROWS),
            )
            .await
            .map_err(super::classify)
    }
}

/// Rows of one work order read at most.
const MAX_ROWS: u32 = 200;

/// The row the MO's close booked on its own for a work order without time: it ends when the
/// MO was closed and lasts what the work order expected, and it is not linegate's.
fn booked_by_the_close(
    rows: &[Map<String, Value>],
    mo: &Map<String, Value>,
    order: &Map<String, Value>,
) -> Option<i64> {
    let closed_at = mo
        .get("date_finished")
        .and_then(Value::as_str)
        .and_then(clock::parse_odoo)?;
    let expected = order.get("duration_expected").and_then(Value::as_f64)?;
    let mut found = rows.iter().filter(|r| {
        let ends = r.get("date_end").and_then(Value::as_str).and_then(clock::parse_odoo);
        let lasts = r.get("duration").and_then(Value::as_f64).unwrap_or(-1.0);
        let linegate = r
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with("linegate lg-"));
        !linegate && ends.is_some_and(|e| (e - closed_at).abs() <= CLOSE_WINDOW) && (lasts - expected).abs() < 0.02
    });
    // Only when it is the work order's one row: time anyone tracked makes the close book none.
    let first = found.next()?;
    (rows.len() == 1)
        .then(|| first.get("id").and_then(Value::as_i64))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn only_the_closes_own_estimate_is_taken_for_the_floors() {
        let mo = row(json!({"date_finished": "2026-12-01 08:00:05"}));
        let order = row(json!({"duration_expected": 60.0}));
        let invented = row(
            json!({"id": 9, "description": "Time Tracking: Mitchell Admin", "date_end": "2026-12-01 08:00:04", "duration": 60.0}),
        );
        assert_eq!(
            booked_by_the_close(std::slice::from_ref(&invented), &mo, &order),
            Some(9)
        );
        // Someone's own time, an hour before the close: not the close's
        let earlier = row(json!({"id": 9, "date_end": "2026-12-01 07:00:00", "duration": 60.0}));
        assert_eq!(booked_by_the_close(&[earlier], &mo, &order), None);
        // Another length than expected: not the close's
        let other = row(json!({"id": 9, "date_end": "2026-12-01 08:00:04", "duration": 42.0}));
        assert_eq!(booked_by_the_close(&[other], &mo, &order), None);
        // Beside other rows the close booked nothing: the work order had time already
        let tracked = row(json!({"id": 8, "date_end": "2026-12-01 06:00:00", "duration": 10.0}));
        assert_eq!(booked_by_the_close(&[tracked, invented], &mo, &order), None);
    }
}
