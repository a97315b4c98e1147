//! The fields step: the mapped operator values written into the instance's own fields of the MO.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{classify, preflight, Failure, OdooOutbox};
use crate::clock;
use crate::mo::result::FloorResult;

impl OdooOutbox {
    /// The mapped operator values, written into the instance's fields.
    pub(super) async fn fields(&self, result: &FloorResult, types: &HashMap<String, String>) -> Result<(), Failure> {
        let mapped = self.push.fields.mapped();
        // One missing when Odoo was last asked may have been added since (then a person
        // retried the parked result): asked again before parking on it.
        let fresh;
        let types = if mapped.iter().all(|(_, f)| types.contains_key(*f)) {
            types
        } else {
            let names: Vec<&str> = mapped.iter().map(|(_, f)| *f).collect();
            fresh = preflight::field_types(&self.client, &names).await.map_err(classify)?;
            &fresh
        };
        let mut vals = Map::new();
        for (key, field) in mapped {
            let Some(kind) = types.get(field) else {
                return Err(Failure::Park(format!(
                    "odoo.push.fields.{key}: Odoo has no field `{field}` on mrp.production: run `linegate \
                     odoo-setup`, then `linegate outbox retry --all`"
                )));
            };
            vals.insert(field.to_string(), field_value(result, key, kind));
        }
        let named = Map::from_iter([
            ("ids".to_string(), json!([result.mo])),
            ("vals".to_string(), Value::Object(vals)),
        ]);
        match self.once("mrp.production", "write", named).await? {
            Value::Bool(true) => Ok(()),
            other => Err(Failure::Park(format!(
                "write answered {} where true was expected",
                crate::http::snippet(&other.to_string())
            ))),
        }
    }
}

/// A mapped value in the shape of its Odoo field: datetimes as Odoo writes them (naive UTC),
/// numbers as numbers, text as text; an unset value is `false`, as Odoo's empty.
fn field_value(result: &FloorResult, key: &str, kind: &str) -> Value {
    let p = &result.protected;
    let text = |v: &Option<String>| v.clone().map_or(Value::Bool(false), Value::String);
    let time = |v: &Option<String>| {
        v.as_deref()
            .and_then(clock::parse_rfc3339)
            .map_or(Value::Bool(false), |t| json!(clock::format_odoo(t)))
    };
    let value = match key {
        "auth_first" => text(&p.auth_first),
        "auth_last" => text(&p.auth_last),
        "roll_number" => text(&p.roll_number),
        "leader_id" => text(&p.leader_id),
        "line" => text(&p.line),
        "operator" => text(&result.operator),
        "date_start" => time(&p.date_start),
        "date_finished" => time(&p.date_finished),
        "produced" => result.produced().map_or(Value::Bool(false), |n| json!(n)),
        _ => Value::Bool(false),
    };
    match (kind, value) {
        ("char" | "text", Value::Number(n)) => json!(n.to_string()),
        (_, value) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::odoo::tests::ended;

    #[test]
    fn mapped_values_take_their_fields_shapes() {
        let r = ended();
        assert_eq!(field_value(&r, "date_start", "datetime"), json!("2026-12-01 06:00:00"));
        assert_eq!(field_value(&r, "produced", "integer"), json!(120));
        assert_eq!(field_value(&r, "produced", "char"), json!("120"));
        assert_eq!(field_value(&r, "leader_id", "char"), json!("0042"));
        let mut started = r.clone();
        started.protected.date_finished = None;
        started.protected.auth_last = None;
        assert_eq!(field_value(&started, "date_finished", "datetime"), json!(false));
        assert_eq!(field_value(&started, "produced", "integer"), json!(false));
    }
}
