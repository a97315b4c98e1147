//! The chatter step: a note on the MO with what the floor did, posted once (found again by its
//! event id when an earlier try may have posted it).

use serde_json::{json, Map, Value};

use super::owner::{self, Owners};
use super::{Failure, OdooOutbox};
use crate::mo::result::{FloorResult, Happened};

impl OdooOutbox {
    /// The chatter note, unless Odoo has it already (`uncertain`: an earlier try may have
    /// posted it).
    pub(super) async fn note(&self, result: &FloorResult, uncertain: bool) -> Result<(), Failure> {
        if uncertain {
            let domain = json!([
                ["model", "=", "mrp.production"],
                ["res_id", "=", result.mo],
                ["body", "ilike", result.event_id]
            ]);
            let found = self.first_id("mail.message", &domain).await?;
            if found.is_some() {
                return Ok(());
            }
        }
        let named = Map::from_iter([
            ("ids".to_string(), json!([result.mo])),
            (
                "body".to_string(),
                json!(note(result, self.owners.as_ref().map(Owners::gateway))),
            ),
            ("message_type".to_string(), json!("comment")),
            ("subtype_xmlid".to_string(), json!("mail.mt_note")),
        ]);
        match self.once("mrp.production", "message_post", named).await? {
            // JSON-2 answers the new message's id in a list, /jsonrpc the id alone.
            Value::Number(_) => Ok(()),
            Value::Array(ids) if ids.len() == 1 && ids[0].is_i64() => Ok(()),
            other => Err(Failure::Park(format!(
                "message_post answered {} where a message id was expected",
                crate::http::snippet(&other.to_string())
            ))),
        }
    }
}

/// The chatter note of a result: plain lines, then the gateway's (see [`owner`]), and the
/// event id last (it finds the note again).
pub(crate) fn note(result: &FloorResult, gateway: Option<&str>) -> String {
    let p = &result.protected;
    let mut lines = vec![format!("linegate: {} {}", result.name, result.happened.as_str())];
    let mut who = Vec::new();
    if let Some(operator) = &result.operator {
        who.push(format!("operator {operator}"));
    }
    if let Some(leader) = &p.leader_id {
        who.push(format!("leader {leader}"));
    }
    who.push(format!("station {}", result.station));
    if let Some(line) = &p.line {
        who.push(format!("line {line}"));
    }
    lines.push(who.join(", "));
    let mut what = Vec::new();
    match (&p.auth_first, &p.auth_last) {
        (Some(first), Some(last)) => what.push(format!("stickers {first} to {last}")),
        (Some(first), None) => what.push(format!("first sticker {first}")),
        _ => {}
    }
    if let Some(roll) = &p.roll_number {
        what.push(format!("roll {roll}"));
    }
    if result.happened == Happened::Ended {
        if let Some(produced) = result.produced() {
            what.push(format!("produced {produced}"));
        }
        if let Some(loss) = result.loss() {
            what.push(format!("loss {loss}"));
        }
    }
    if !what.is_empty() {
        lines.push(what.join(", "));
    }
    let mut times = Vec::new();
    if let Some(start) = &p.date_start {
        times.push(format!("started {start}"));
    }
    if let Some(end) = &p.date_finished {
        times.push(format!("ended {end}"));
    }
    times.push(format!(
        "recorded {} (gateway clock {})",
        result.at,
        if result.clock_synced {
            "synchronised"
        } else {
            "NOT synchronised"
        }
    ));
    lines.push(times.join(", "));
    if let Some(gateway) = gateway {
        lines.push(owner::line(gateway));
    }
    lines.push(format!("event {}", result.event_id));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::odoo::tests::ended;

    #[test]
    fn a_note_says_who_what_when_and_carries_the_event_id() {
        assert_eq!(
            note(&ended(), Some("gw-1")),
            "linegate: WH/MO/00007 ended\n\
             operator ana, leader 0042, station ws-1, line L1\n\
             stickers 000100 to 000219, roll R-7, produced 120, loss 5\n\
             started 2026-12-01T06:00:00Z, ended 2026-12-01T08:00:00Z, recorded 2026-12-01T08:00:00Z (gateway clock NOT synchronised)\n\
             [linegate gateway gw-1]\n\
             event lg-00112233aabbccdd"
        );
    }
}
