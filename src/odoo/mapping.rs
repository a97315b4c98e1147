//! From Odoo's records to the store's rows: which fields to ask for on this server, how
//! Odoo's values (`false` for empty, `[id, "name"]` for relations) become ours, and which
//! transfer belongs to which MO.

use serde_json::{json, Map, Value};

use super::OdooError;
use crate::config::InstanceFields;
use crate::mo::UpstreamMo;

/// `mrp.production` fields every supported version has.
pub(crate) const STANDARD_FIELDS: [&str; 12] = [
    "id",
    "name",
    "state",
    "product_id",
    "product_uom_id",
    "product_qty",
    "qty_producing",
    "origin",
    "create_date",
    "write_date",
    "date_deadline",
    "date_start",
];

/// Odoo 16 calls the planned dates this; 17 renamed them to `date_start` / `date_finished`
/// (which on 16 are the actual dates).
pub(crate) const PLANNED_FIELDS_BEFORE_17: [&str; 2] = ["date_planned_start", "date_planned_finished"];

/// The fields this server has, resolved once per connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldPlan {
    planned_start: &'static str,
    planned_finish: &'static str,
    group_worker: Option<String>,
    note: Option<String>,
    initial_qty_target: Option<String>,
}

impl FieldPlan {
    pub(crate) fn new(existing: &[String], instance: &InstanceFields) -> Result<FieldPlan, OdooError> {
        let has = |f: &str| existing.iter().any(|e| e == f);
        if let Some(missing) = STANDARD_FIELDS.iter().find(|f| !has(f)) {
            return Err(OdooError::Unsupported(format!(
                "mrp.production has no `{missing}`: is the Manufacturing app installed?"
            )));
        }
        for (key, field) in instance.configured() {
            if !has(field) {
                return Err(OdooError::UnknownField {
                    key: format!("odoo.fields.{key}"),
                    field: field.to_string(),
                    model: "mrp.production".into(),
                });
            }
        }
        let (planned_start, planned_finish) = if has("date_planned_start") {
            ("date_planned_start", "date_planned_finished")
        } else {
            ("date_start", "date_finished")
        };
        Ok(FieldPlan {
            planned_start,
            planned_finish,
            group_worker: instance.group_worker.clone(),
            note: instance.note.clone(),
            initial_qty_target: instance.initial_qty_target.clone(),
        })
    }

    /// The field list for `search_read` / `read`.
    pub(crate) fn fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = STANDARD_FIELDS.iter().map(|f| f.to_string()).collect();
        fields.retain(|f| f != "date_start");
        fields.push(self.planned_start.into());
        fields.push(self.planned_finish.into());
        fields.extend(
            [&self.group_worker, &self.note, &self.initial_qty_target]
                .into_iter()
                .flatten()
                .cloned(),
        );
        fields
    }

    /// Maps one `mrp.production` record. The transfer is filled in separately.
    pub(crate) fn upstream_mo(&self, r: &Map<String, Value>) -> Result<UpstreamMo, OdooError> {
        let id = r.get("id").and_then(Value::as_i64).ok_or_else(|| bad(r, "id"))?;
        let required_text = |f: &str| text(r.get(f)).ok_or_else(|| bad(r, f));
        let (product_id, product_name) = many2one(r.get("product_id"));
        let custom_text = |f: &Option<String>| f.as_ref().and_then(|f| text(r.get(f)));
        Ok(UpstreamMo {
            id,
            name: required_text("name")?,
            state: required_text("state")?,
            product_id,
            product_name,
            uom: many2one(r.get("product_uom_id")).1,
            product_qty: number(r.get("product_qty")).unwrap_or(0.0),
            qty_producing: number(r.get("qty_producing")).unwrap_or(0.0),
            origin: text(r.get("origin")),
            create_date: text(r.get("create_date")),
            write_date: required_text("write_date")?,
            planned_start: text(r.get(self.planned_start)),
            planned_finish: text(r.get(self.planned_finish)),
            date_deadline: text(r.get("date_deadline")),
            transfer_id: None,
            transfer_name: None,
            group_worker: custom_text(&self.group_worker),
            note: custom_text(&self.note),
            initial_qty_target: self.initial_qty_target.as_ref().and_then(|f| number(r.get(f))),
        })
    }
}

fn bad(r: &Map<String, Value>, field: &str) -> OdooError {
    let id = r.get("id").map(Value::to_string).unwrap_or_default();
    OdooError::Decode(format!("mrp.production {id}: `{field}` is missing or not a value"))
}

/// Odoo's text: `false` (or null) is empty; numbers become text; a relation gives its name.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(pair) if pair.len() == 2 => pair[1].as_str().map(str::to_string),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `[id, "display name"]`, or `false` for none.
fn many2one(v: Option<&Value>) -> (Option<i64>, Option<String>) {
    match v {
        Some(Value::Array(pair)) if pair.len() == 2 => (pair[0].as_i64(), pair[1].as_str().map(str::to_string)),
        _ => (None, None),
    }
}

/// One `stock.picking` domain for a whole page: every picking whose origin mentions one of the
/// MOs' names or origins. None when there is nothing to look for.
pub(crate) fn picking_domain(mos: &[UpstreamMo]) -> Option<Value> {
    let mut terms: Vec<&str> = mos.iter().map(|m| m.name.as_str()).collect();
    terms.extend(mos.iter().filter_map(|m| m.origin.as_deref()));
    terms.retain(|t| !t.trim().is_empty());
    terms.sort_unstable();
    terms.dedup();
    if terms.is_empty() {
        return None;
    }
    let mut domain: Vec<Value> = vec![json!("|"); terms.len() - 1];
    domain.extend(terms.iter().map(|t| json!(["origin", "ilike", t])));
    Some(Value::Array(domain))
}

/// The seed's rule: an MO's transfer is the newest picking whose origin contains the MO's
/// name, or failing that its origin. `pickings` are (id, name, origin).
pub(crate) fn assign_transfers(mos: &mut [UpstreamMo], pickings: &[(i64, String, String)]) {
    let mut newest_first: Vec<&(i64, String, String)> = pickings.iter().collect();
    newest_first.sort_by_key(|p| std::cmp::Reverse(p.0));
    let lowered: Vec<String> = newest_first.iter().map(|p| p.2.to_lowercase()).collect();
    let find = |needle: &str| {
        let needle = needle.to_lowercase();
        lowered
            .iter()
            .position(|origin| !needle.is_empty() && origin.contains(&needle))
            .map(|i| newest_first[i])
    };
    for mo in mos {
        let by_name = find(&mo.name);
        let found = by_name.or_else(|| mo.origin.as_deref().and_then(find));
        if let Some((id, name, _)) = found {
            mo.transfer_id = Some(*id);
            mo.transfer_name = Some(name.clone());
        }
    }
}

/// (id, name, origin) of `stock.picking` records.
pub(crate) fn pickings(records: &[Map<String, Value>]) -> Vec<(i64, String, String)> {
    records
        .iter()
        .filter_map(|r| Some((r.get("id")?.as_i64()?, text(r.get("name"))?, text(r.get("origin"))?)))
        .collect()
}

/// An MO's `id` and `write_date`, as the reconcile reads every one in the domain: read
/// straight from the answer, 10,000 of them in well under a MiB (as JSON values they took 6).
#[derive(Debug, PartialEq, serde::Deserialize)]
pub(crate) struct WriteStamp {
    pub(crate) id: i64,
    /// None when Odoo says `false` (its empty) or nothing: it matches no stored date, so the
    /// MO is read again in full.
    #[serde(default, deserialize_with = "text_or_empty")]
    pub(crate) write_date: Option<String>,
}

fn text_or_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum TextOrNot {
        Text(String),
        Not(serde::de::IgnoredAny),
    }
    Ok(match serde::Deserialize::deserialize(d)? {
        TextOrNot::Text(text) => Some(text),
        TextOrNot::Not(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn write_stamps_read_odoos_false_and_refuse_a_record_without_an_id() {
        let read = |text: &str| serde_json::from_str::<Vec<WriteStamp>>(text);
        let stamps =
            read(r#"[{"id": 7, "write_date": "2026-11-30 08:00:01"}, {"id": 8, "write_date": false}, {"id": 9}]"#)
                .unwrap();
        let dates: Vec<_> = stamps.iter().map(|s| (s.id, s.write_date.as_deref())).collect();
        assert_eq!(dates, [(7, Some("2026-11-30 08:00:01")), (8, None), (9, None)]);
        assert!(read(r#"[{"write_date": "2026-11-30 08:00:01"}]"#).is_err());
        assert!(read(r#"[{"id": false, "write_date": false}]"#).is_err());
    }

    fn plan() -> FieldPlan {
        let existing: Vec<String> = STANDARD_FIELDS
            .iter()
            .chain(["date_finished", "x_note"].iter())
            .map(|s| s.to_string())
            .collect();
        let instance = InstanceFields {
            note: Some("x_note".into()),
            ..Default::default()
        };
        FieldPlan::new(&existing, &instance).unwrap()
    }

    /// The record from the recorded Odoo 19 sample C1.
    fn sample() -> Map<String, Value> {
        serde_json::from_str(r#"{"id": 2, "name": "WH/MO/00002", "state": "draft", "product_id": [54, "[FURN_9666] Table"],
            "product_qty": 1.0, "product_uom_id": [1, "Units"], "qty_producing": 0.0, "origin": false,
            "create_date": "2026-11-22 01:36:38", "write_date": "2026-11-22 01:36:38", "date_start": "2026-11-23 01:36:00",
            "date_finished": "2026-11-23 09:00:00", "date_deadline": false, "x_note": false}"#)
        .unwrap()
    }

    #[test]
    fn maps_the_recorded_sample() {
        let mo = plan().upstream_mo(&sample()).unwrap();
        assert_eq!(mo.name, "WH/MO/00002");
        assert_eq!(mo.product_id, Some(54));
        assert_eq!(mo.product_name.as_deref(), Some("[FURN_9666] Table"));
        assert_eq!(mo.uom.as_deref(), Some("Units"));
        assert_eq!(mo.origin, None, "false is empty");
        assert_eq!(mo.date_deadline, None);
        assert_eq!(mo.note, None);
        assert_eq!(mo.planned_start.as_deref(), Some("2026-11-23 01:36:00"));
        assert_eq!(mo.planned_finish.as_deref(), Some("2026-11-23 09:00:00"));
    }

    #[test]
    fn odoo_16_planned_dates_come_from_their_old_names() {
        let existing: Vec<String> = STANDARD_FIELDS
            .iter()
            .chain(PLANNED_FIELDS_BEFORE_17.iter())
            .map(|s| s.to_string())
            .collect();
        let plan = FieldPlan::new(&existing, &InstanceFields::default()).unwrap();
        assert!(plan.fields().contains(&"date_planned_start".to_string()));
        assert!(!plan.fields().contains(&"date_start".to_string()));
    }

    #[test]
    fn a_missing_instance_field_is_named_with_its_key() {
        let existing: Vec<String> = STANDARD_FIELDS.iter().map(|s| s.to_string()).collect();
        let instance = InstanceFields {
            group_worker: Some("x_group_worker".into()),
            ..Default::default()
        };
        let err = FieldPlan::new(&existing, &instance).unwrap_err();
        assert_eq!(
            err.to_string(),
            "odoo.fields.group_worker: Odoo has no field `x_group_worker` on mrp.production"
        );
    }

    #[test]
    fn transfers_prefer_the_newest_picking_naming_the_mo() {
        let mut mos = vec![plan().upstream_mo(&sample()).unwrap()];
        mos[0].origin = Some("SO/0042".into());
        let pickings = vec![
            (3, "WH/OUT/00003".to_string(), "SO/0042".to_string()),
            (5, "WH/OUT/00005".to_string(), "wh/mo/00002".to_string()),
            (4, "WH/OUT/00004".to_string(), "WH/MO/00002".to_string()),
        ];
        assign_transfers(&mut mos, &pickings);
        assert_eq!(mos[0].transfer_id, Some(5));
        assign_transfers(&mut mos, &pickings[..1]);
        assert_eq!(mos[0].transfer_id, Some(3), "falls back to the MO's origin");
        let domain = picking_domain(&mos).unwrap();
        assert_eq!(
            domain,
            json!(["|", ["origin", "ilike", "SO/0042"], ["origin", "ilike", "WH/MO/00002"]])
        );
    }

    fn odoo_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Bool(false)),
            Just(Value::Null),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
            (any::<i64>(), ".{0,8}").prop_map(|(i, s)| json!([i, s])),
            Just(json!([])),
        ]
    }

    proptest! {
        /// Whatever Odoo sends in a field, mapping gives a row or a clear error, never a panic,
        /// and `false` is always empty.
        #[test]
        fn mapping_never_panics(values in proptest::collection::vec(odoo_value(), 15)) {
            let mut record = sample();
            let keys: Vec<String> = record.keys().cloned().collect();
            for (key, value) in keys.iter().zip(values) {
                record.insert(key.clone(), value);
            }
            if let Ok(mo) = plan().upstream_mo(&record) {
                if record["origin"] == Value::Bool(false) { prop_assert_eq!(mo.origin, None); }
                if record["product_id"] == Value::Bool(false) { prop_assert_eq!(mo.product_id, None); }
            }
        }
    }
}
