//! What the displays see, folded from the retained topics, and drawn as a board for an 80×24
//! terminal. Everything here comes from the broker: payloads are read as JSON values and every
//! field is optional, so a display's view of a half-written or foreign payload is "—", never a
//! crash.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

use crate::mqtt::topics::Topic;

/// MOs kept at most (the retained MO topics of one gateway; any beyond are not shown).
const MAX_MOS: usize = 200_000;
/// Lines kept at most.
const MAX_LINES: usize = 1_000;

/// One MO, as much of it as the board shows.
#[derive(Debug, Clone, Default, PartialEq)]
struct Mo {
    name: String,
    product: String,
    leader: String,
    codes: String,
    produced: String,
    loss: String,
    since: String,
}

impl Mo {
    fn from(v: &Value) -> Mo {
        let operator = &v["operator"];
        let first = text(&operator["auth_first"]);
        let last = text(&operator["auth_last"]);
        Mo {
            name: text(&v["name"]),
            product: text(&v["product"]["name"]),
            leader: text(&operator["leader_id"]),
            codes: if last == "—" {
                first
            } else {
                format!("{first}…{last}")
            },
            produced: text(&v["produced"]),
            loss: text(&v["loss"]),
            since: clock_time(&operator["date_start"]),
        }
    }
}

/// What one message changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Status,
    Line(String),
    Mo(i64),
    Permits,
}

/// The retained state of one gateway.
#[derive(Debug, Default)]
pub(crate) struct Board {
    status: Option<Value>,
    lines: BTreeMap<String, Value>,
    mos: HashMap<i64, Mo>,
    permits: Option<Value>,
}

impl Board {
    /// Takes one message; None when it is not one of the displays' topics (or past a bound).
    /// An empty payload clears the topic, as it does for a display.
    pub(crate) fn apply(&mut self, prefix: &str, topic: &str, payload: &[u8]) -> Option<Change> {
        let topic = Topic::parse(prefix, topic)?;
        let value: Option<Value> = if payload.is_empty() {
            None
        } else {
            Some(serde_json::from_slice(payload).unwrap_or(Value::Null))
        };
        match topic {
            Topic::Status => {
                self.status = value;
                Some(Change::Status)
            }
            Topic::PermitsExpiring => {
                self.permits = value;
                Some(Change::Permits)
            }
            Topic::Line(name) => {
                match value {
                    None => {
                        self.lines.remove(&name);
                    }
                    Some(v) if self.lines.len() < MAX_LINES || self.lines.contains_key(&name) => {
                        self.lines.insert(name.clone(), v);
                    }
                    Some(_) => return None,
                }
                Some(Change::Line(name))
            }
            Topic::Mo(id) => {
                match value {
                    None => {
                        self.mos.remove(&id);
                    }
                    Some(v) if self.mos.len() < MAX_MOS || self.mos.contains_key(&id) => {
                        self.mos.insert(id, Mo::from(&v));
                    }
                    Some(_) => return None,
                }
                Some(Change::Mo(id))
            }
            _ => None,
        }
    }

    /// The board, at most `width` columns and `height` rows: the gateway, then each line (or
    /// only `only`) with what runs there and what is ready, then the permits expiring.
    pub(crate) fn render(&self, only: Option<&str>, width: usize, height: usize) -> String {
        let mut rows: Vec<String> = Vec::new();
        rows.extend(self.gateway_rows());
        let lines: Vec<(&String, &Value)> = self
            .lines
            .iter()
            .filter(|(name, _)| only.is_none_or(|l| l == name.as_str()))
            .collect();
        if lines.is_empty() {
            rows.push(match only {
                Some(l) => format!("line {l}: nothing retained for it yet"),
                None => "no line retained yet".into(),
            });
        }
        for (name, view) in lines {
            rows.push(String::new());
            rows.extend(self.line_rows(name, view));
        }
        if let Some(permits) = &self.permits {
            rows.push(String::new());
            rows.extend(permit_rows(permits));
        }
        // When it does not fit, the last row says how much did not.
        let shown = if rows.len() > height {
            height.saturating_sub(1)
        } else {
            rows.len()
        };
        let mut out = String::new();
        for row in &rows[..shown] {
            let _ = writeln!(out, "{}", fit(row, width));
        }
        if shown < rows.len() && height > 0 {
            let more = format!("… {} more rows (--line L)", rows.len() - shown);
            let _ = writeln!(out, "{}", fit(&more, width));
        }
        out
    }

    /// Whether line `line`'s view lists MO `id`, running or ready.
    pub(crate) fn line_has(&self, line: &str, id: i64) -> bool {
        self.lines.get(line).is_some_and(|view| {
            ["running", "ready"]
                .iter()
                .flat_map(|key| view[*key].as_array().into_iter().flatten())
                .any(|entry| entry["id"].as_i64() == Some(id))
        })
    }

    fn gateway_rows(&self) -> Vec<String> {
        let Some(s) = &self.status else {
            return vec!["gateway: no status retained yet".into()];
        };
        let mut rows = vec![format!(
            "gateway {}  {}  since {}  linegate {}",
            text(&s["gateway"]),
            text(&s["state"]).to_uppercase(),
            clock_time(&s["started_at"]),
            text(&s["version"])
        )];
        let mut uplinks = String::new();
        if let Some(map) = s["uplink"].as_object() {
            for (source, u) in map {
                let last = &s["last_sync"][source];
                let sync = match last["ok"].as_bool() {
                    Some(ok) => format!(
                        "last sync {} {}",
                        clock_time(&last["at"]),
                        if ok { "ok" } else { "FAILED" }
                    ),
                    None => "no sync yet".into(),
                };
                let _ = write!(uplinks, "{source} {} ({sync})  ", text(&u["state"]));
            }
        }
        rows.push(uplinks.trim_end().to_string());
        let outbox = &s["outbox"]["odoo"];
        rows.push(format!(
            "store {}  to Odoo: {} pending, {} parked  wrote {}",
            text(&s["store"]["state"]),
            text(&outbox["pending"]),
            text(&outbox["parked"]),
            bytes(&s["written_bytes"])
        ));
        rows
    }

    fn line_rows(&self, name: &str, view: &Value) -> Vec<String> {
        let mut rows = vec![format!("LINE {name}")];
        let entries = |key: &str| view[key].as_array().cloned().unwrap_or_default();
        let running = entries("running");
        if running.is_empty() {
            rows.push("  running: nothing".into());
        }
        for r in &running {
            // The line's entry, completed by the MO's own topic (operator data, counts).
            let mo = r["id"].as_i64().and_then(|id| self.mos.get(&id)).cloned();
            let mo = mo.unwrap_or_else(|| Mo::from(&serde_json::json!({
                "name": r["name"], "product": {"name": r["product"]},
                "operator": {"auth_first": r["auth_first"], "leader_id": r["leader_id"], "date_start": r["date_start"]},
            })));
            rows.push(format!("  RUNNING {}  {}", mo.name, mo.product));
            rows.push(format!(
                "    leader {}  codes {}  produced {}  loss {}  since {}",
                mo.leader, mo.codes, mo.produced, mo.loss, mo.since
            ));
        }
        let ready = entries("ready");
        let names: Vec<String> = ready.iter().map(|r| text(&r["name"])).collect();
        rows.push(match names.len() {
            0 => "  ready: none".into(),
            n => format!("  ready ({n}): {}", names.join(", ")),
        });
        rows
    }
}

fn permit_rows(p: &Value) -> Vec<String> {
    let counts = &p["counts"];
    let mut rows = vec![format!(
        "PERMITS  expired {}  critical {}  warning {}  ok {}",
        text(&counts["expired"]),
        text(&counts["critical"]),
        text(&counts["warning"]),
        text(&counts["ok"])
    )];
    for permit in p["permits"].as_array().into_iter().flatten().take(3) {
        rows.push(format!(
            "  {} days  {}  {}",
            text(&permit["days_left"]),
            text(&permit["applicant"]),
            text(&permit["no_surat"])
        ));
    }
    rows
}

/// A field as text: "—" when absent or null.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) if s.is_empty() => "—".into(),
        Value::String(s) => s.chars().filter(|c| !c.is_control()).collect(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// An RFC 3339 time as `MM-DD HH:MM` (UTC), or the text as it came.
fn clock_time(v: &Value) -> String {
    let t = text(v);
    match (t.get(5..10), t.get(11..16)) {
        (Some(day), Some(time)) if t.len() >= 16 && t.as_bytes()[10] == b'T' => format!("{day} {time}"),
        _ => t,
    }
}

fn bytes(v: &Value) -> String {
    match v.as_u64() {
        Some(b) if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        Some(b) => format!("{:.0} KiB", b as f64 / 1024.0),
        None => "—".into(),
    }
}

/// `row` cut to `width` characters.
fn fit(row: &str, width: usize) -> String {
    if row.chars().count() <= width {
        return row.to_string();
    }
    let mut cut: String = row.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const P: &str = "linegate/gw-1";

    fn board() -> Board {
        let mut b = Board::default();
        let status = json!({"schema": 1, "state": "online", "gateway": "gw-1", "version": "0.1.0",
            "started_at": "2026-12-01T07:00:00Z", "uplink": {"odoo": {"state": "up"}},
            "last_sync": {"odoo": {"at": "2026-12-01T08:05:00Z", "ok": true}},
            "store": {"state": "ok"}, "outbox": {"odoo": {"pending": 2, "parked": 0}}, "written_bytes": 163_840});
        let line = json!({"schema": 1, "line": "A", "running": [{"id": 7, "name": "WH/MO/00007", "product": "Meja"}],
            "ready": [{"id": 8, "name": "WH/MO/00008"}, {"id": 9, "name": "WH/MO/00009"}]});
        let mo = json!({"schema": 1, "id": 7, "name": "WH/MO/00007", "product": {"id": 3, "name": "Meja"},
            "operator": {"auth_first": "000100", "auth_last": null, "leader_id": "0042",
            "date_start": "2026-12-01T08:00:00Z"}, "produced": null, "loss": null});
        for (topic, v) in [("status", status), ("line/A", line), ("mo/7", mo)] {
            b.apply(P, &format!("{P}/{topic}"), v.to_string().as_bytes()).unwrap();
        }
        b
    }

    #[test]
    fn the_board_shows_the_running_mo_from_its_line_and_its_own_topic() {
        let text = board().render(None, 80, 24);
        for part in [
            "gateway gw-1  ONLINE",
            "odoo up (last sync 12-01 08:05 ok)",
            "to Odoo: 2 pending, 0 parked  wrote 160 KiB",
            "LINE A",
            "RUNNING WH/MO/00007  Meja",
            "leader 0042  codes 000100  produced —  loss —  since 12-01 08:00",
            "ready (2): WH/MO/00008, WH/MO/00009",
        ] {
            assert!(text.contains(part), "{part:?} missing from\n{text}");
        }
        assert!(text.lines().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn a_cleared_topic_leaves_the_board_and_one_line_can_be_shown_alone() {
        let mut b = board();
        let other = json!({"line": "B", "running": [], "ready": []}).to_string();
        b.apply(P, &format!("{P}/line/B"), other.as_bytes()).unwrap();
        assert!(!b.render(Some("A"), 80, 24).contains("LINE B"));
        assert_eq!(b.apply(P, &format!("{P}/line/A"), b""), Some(Change::Line("A".into())));
        let text = b.render(None, 80, 24);
        assert!(text.contains("LINE B") && !text.contains("LINE A"), "{text}");
        assert_eq!(b.apply(P, "elsewhere/mo/1", b"{}"), None);
    }

    #[test]
    fn a_long_board_ends_with_what_did_not_fit() {
        let mut b = board();
        for k in 0..20 {
            let line = json!({"line": format!("L{k}"), "running": [], "ready": []}).to_string();
            b.apply(P, &format!("{P}/line/L{k}"), line.as_bytes()).unwrap();
        }
        let text = b.render(None, 80, 24);
        assert_eq!(text.lines().count(), 24);
        assert!(text.lines().last().unwrap().contains("more rows (--line L)"), "{text}");
    }

    proptest! {
        /// Whatever arrives on a display's topic, the board takes it and draws within bounds.
        #[test]
        fn fuzz_board_payloads(payload in proptest::collection::vec(any::<u8>(), 0..512),
                               which in 0usize..4, width in 1usize..120, height in 0usize..40) {
            let mut b = board();
            let topic = ["status", "line/A", "mo/7", "permits/expiring"][which];
            b.apply(P, &format!("{P}/{topic}"), &payload);
            let text = b.render(None, width, height);
            prop_assert!(text.lines().count() <= height);
            prop_assert!(text.lines().all(|l| l.chars().count() <= width));
        }
    }
}
