//! The time-tracking step: the floor's start and end as productive time on the MO's work order.

use serde_json::{json, Map, Value};

use super::progress::wizard;
use super::{Failure, OdooOutbox};
use crate::clock;
use crate::mo::result::{FloorResult, Happened};

impl OdooOutbox {
    /// A time-tracking entry with the floor's start and end on the MO's first work order,
    /// unless Odoo has it already (found by the event id in its description).
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
        let row = self.read_mo(result.mo, &["workorder_ids", "company_id"]).await?;
        let Some(workorder) = row
            .get("workorder_ids")
            .and_then(Value::as_array)
            .and_then(|w| w.first())
            .and_then(Value::as_i64)
        else {
            // Nothing to attach it to.
            return Ok(());
        };
        if uncertain {
            let domain = json!([
                ["workorder_id", "=", workorder],
                ["description", "ilike", result.event_id]
            ]);
            let found = self.first_id("mrp.workcenter.productivity", &domain).await?;
            if found.is_some() {
                return Ok(());
            }
        }
        let many2one =
            |row: &Map<String, Value>, name: &str| row.get(name).and_then(|v| v.get(0)).and_then(Value::as_i64);
        let named = Map::from_iter([
            ("ids".to_string(), json!([workorder])),
            ("fields".to_string(), json!(["workcenter_id"])),
        ]);
        let workcenter = match self.ask("mrp.workorder", "read", named).await? {
            Value::Array(rows) => rows
                .first()
                .and_then(Value::as_object)
                .and_then(|r| many2one(r, "workcenter_id")),
            _ => None,
        };
        let Some(workcenter) = workcenter else {
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
        let mut vals = json!({"workorder_id": workorder, "workcenter_id": workcenter, "production_id": result.mo,
            "loss_id": loss, "date_start": start, "date_end": end,
            "description": format!("linegate {} ({})", result.event_id, result.station)});
        if let Some(company) = many2one(&row, "company_id") {
            vals["company_id"] = json!(company);
        }
        let named = Map::from_iter([("vals_list".to_string(), json!([vals]))]);
        match self.once("mrp.workcenter.productivity", "create", named).await? {
            Value::Array(ids) if ids.len() == 1 && ids[0].is_i64() => Ok(()),
            other => Err(wizard("create", &other)),
        }
    }
}
