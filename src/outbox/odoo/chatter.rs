//! The chatter step: a note on the MO with what the floor did, posted once (found again by its
//! event id when an earlier try may have posted it).

use serde_json::{json, Map, Value};

use super::owner::{self, Owners};
use super::{Failure, OdooOutbox};
use crate::mo::result::{FloorResult, Happened};

impl OdooOutbox {
    /// The chatter note, unless Odoo has it already (`uncertain`: an earlier try may have
    /// posted it). `outcome` is what Odoo made of the result, when an earlier step learnt it.
    pub(super) async fn note(
        &self,
        result: &FloorResult,
        subtype: Option<i64>,
        outcome: Option<&str>,
        uncertain: bool,
    ) -> Result<(), Failure> {
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
        let Some(subtype) = subtype else {
            return Err(Failure::Park(NO_NOTE_SUBTYPE.into()));
        };
        // A message made directly, not with message_post: its body is HTML to Odoo, so the
        // note keeps its lines. message_post escapes a text body into one paragraph (its line
        // breaks show as spaces), and takes HTML only with body_is_html, for which Odoo logs a
        // WARNING at every post (a Markup body, which it takes silently, cannot be sent over
        // JSON). Posting needs the same rights either way (the right to write the MO).
        let lines = lines(result, self.owners.as_ref().map(Owners::gateway), outcome);
        let vals = json!({
            "model": "mrp.production", "res_id": result.mo, "message_type": "comment",
            "subtype_id": subtype, "body": html(&lines),
        });
        let named = Map::from_iter([("vals_list".to_string(), json!([vals]))]);
        match self.once("mail.message", "create", named).await? {
            Value::Array(ids) if ids.len() == 1 && ids[0].is_i64() => Ok(()),
            other => Err(Failure::Park(format!(
                "mail.message create answered {} where a message id was expected",
                crate::http::snippet(&other.to_string())
            ))),
        }
    }
}

/// Why a note cannot be made: Odoo has no note subtype to make it with.
pub(super) const NO_NOTE_SUBTYPE: &str = "Odoo has no note subtype (mail.mt_note) to make the chatter note with";

/// A note's lines as one HTML paragraph, a line break between lines, every value escaped.
fn html(lines: &[String]) -> String {
    let lines: Vec<String> = lines.iter().map(|l| escape(l)).collect();
    format!("<p>{}</p>", lines.join("<br>"))
}

/// Text as HTML shows it: markup characters as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            // A line of the note is one line: a value's own breaks would forge lines.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The chatter note of a result, line by line: who, what, when, what Odoo made of it (when an
/// earlier step learnt it), then the gateway's line (see [`owner`]), and the event id last (it
/// finds the note again).
fn lines(result: &FloorResult, gateway: Option<&str>, outcome: Option<&str>) -> Vec<String> {
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
    if let Some(outcome) = outcome {
        lines.push(outcome.to_string());
    }
    if let Some(gateway) = gateway {
        lines.push(owner::line(gateway));
    }
    lines.push(format!("event {}", result.event_id));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::odoo::tests::ended;

    #[test]
    fn a_note_says_who_what_when_and_carries_the_event_id_line_by_line() {
        assert_eq!(
            html(&lines(&ended(), Some("gw-1"), None)),
            "<p>linegate: WH/MO/00007 ended<br>\
             operator ana, leader 0042, station ws-1, line L1<br>\
             stickers 000100 to 000219, roll R-7, produced 120, loss 5<br>\
             started 2026-12-01T06:00:00Z, ended 2026-12-01T08:00:00Z, recorded 2026-12-01T08:00:00Z (gateway clock NOT synchronised)<br>\
             [linegate gateway gw-1]<br>\
             event lg-00112233aabbccdd</p>"
        );
    }

    #[test]
    fn every_value_from_the_floor_or_odoo_is_escaped_and_stays_on_its_line() {
        let mut r = ended();
        r.operator = Some("<b>ana</b> & \"bo\"\n<script>".into());
        r.name = "WH/MO/<7>".into();
        let note = html(&lines(&r, None, Some("Odoo closed it as WH/MO/<7>-001")));
        assert!(
            note.starts_with("<p>linegate: WH/MO/&lt;7&gt; ended<br>operator &lt;b&gt;ana&lt;/b&gt; &amp; &quot;bo&quot; &lt;script&gt;, "),
            "{note}"
        );
        assert!(note.contains("<br>Odoo closed it as WH/MO/&lt;7&gt;-001<br>"), "{note}");
        assert_eq!(note.matches("<br>").count(), 5, "{note}");
        assert_eq!(
            note.matches('<').count(),
            2 + 5,
            "only the paragraph's and the breaks' own: {note}"
        );
    }
}
