//! What the displays see, folded from the retained topics, and drawn as a board for an 80×24
//! terminal. Everything here comes from the broker: payloads are read as JSON values and every
//! field is optional, so a display's view of a half-written or foreign payload is "—", never a
//! crash.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

use crate::mqtt::topics::Topic;

/// MOs kept at most (the retained MO topics of one gateway; any beyond are not shown).
const MAX_MOS: usize = 50_000;
/// Lines kept at most.
const MAX_LINES: usize = 1_000;
/// Running MOs and ready names kept per line (the counts stay whole).
const MAX_ENTRIES: usize = 20;
/// Characters kept of any one field.
const MAX_FIELD: usize = 64;

/// One MO, as much of it as the board shows.
#[derive(Debug, Clone, Default, PartialEq)]
struct Mo {
    /// The line it is registered for, if any.
    line: Option<String>,
    name: String,
    product: String,
    /// Who last acted on it from a panel.
    operator: String,
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
            line: operator["line"].as_str().map(|l| text(&Value::from(l))),
            name: text(&v["name"]),
            product: text(&v["product"]["name"]),
            operator: text(&v["last_write"]["operator"]),
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

/// One line's view, as much of it as the board shows.
#[derive(Debug, Clone, Default)]
struct LineView {
    /// (MO id, the line's own brief of it)
    running: Vec<(Option<i64>, Mo)>,
    running_count: usize,
    ready: Vec<(Option<i64>, String)>,
    ready_count: usize,
}

impl LineView {
    fn from(v: &Value) -> LineView {
        let entries = |key: &str| v[key].as_array().cloned().unwrap_or_default();
        let (running, ready) = (entries("running"), entries("ready"));
        LineView {
            running: running
                .iter()
                .take(MAX_ENTRIES)
                .map(|r| {
                    let brief = serde_json::json!({
                        "name": r["name"], "product": {"name": r["product"]},
                        "operator": {"auth_first": r["auth_first"], "leader_id": r["leader_id"], "date_start": r["date_start"]},
                        "last_write": r["last_write"],
                    });
                    (r["id"].as_i64(), Mo::from(&brief))
                })
                .collect(),
            running_count: running.len(),
            ready: ready
                .iter()
                .take(MAX_ENTRIES)
                .map(|r| (r["id"].as_i64(), text(&r["name"])))
                .collect(),
            ready_count: ready.len(),
        }
    }
}

/// The retained state of one gateway.
#[derive(Debug, Default)]
pub(crate) struct Board {
    status: Option<Value>,
    lines: BTreeMap<String, LineView>,
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
                        self.lines.insert(name.clone(), LineView::from(&v));
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
        let lines: Vec<(&String, &LineView)> = self
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

    /// Whether MO `id` is line `line`'s: registered for it, or listed in its view.
    pub(crate) fn on_line(&self, line: &str, id: i64) -> bool {
        let registered = self.mos.get(&id).is_some_and(|m| m.line.as_deref() == Some(line));
        let listed = self.lines.get(line).is_some_and(|view| {
            let running = view.running.iter().map(|(id, _)| id);
            running
                .chain(view.ready.iter().map(|(id, _)| id))
                .any(|i| *i == Some(id))
        });
        registered || listed
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

    fn line_rows(&self, name: &str, view: &LineView) -> Vec<String> {
        let mut rows = vec![format!("LINE {name}")];
        if view.running_count == 0 {
            rows.push("  running: nothing".into());
        }
        for (id, brief) in &view.running {
            // The line's entry, completed by the MO's own topic (operator data, counts).
            let mo = id.and_then(|id| self.mos.get(&id)).unwrap_or(brief);
            rows.push(format!("  RUNNING {}  {}  by {}", mo.name, mo.product, mo.operator));
            rows.push(format!(
                "    leader {}  codes {}  produced {}  loss {}  since {}",
                mo.leader, mo.codes, mo.produced, mo.loss, mo.since
            ));
        }
        if view.running_count > view.running.len() {
            rows.push(format!(
                "  … and {} more running",
                view.running_count - view.running.len()
            ));
        }
        let names: Vec<&str> = view.ready.iter().map(|(_, n)| n.as_str()).collect();
        rows.push(match view.ready_count {
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

/// A field as text, at most [`MAX_FIELD`] characters: "—" when absent or null.
fn text(v: &Value) -> String {
    let whole = match v {
        Value::Null => return "—".into(),
        Value::String(s) if s.is_empty() => return "—".into(),
        Value::String(s) => s.chars().take(MAX_FIELD).collect(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => "…".into(),
    };
    whole.chars().take(MAX_FIELD).collect()
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

/// `row` without control characters (nothing from the broker may drive the terminal: a
/// line's name comes from its topic), cut to `width` characters.
fn fit(row: &str, width: usize) -> String {
    let row: String = row.chars().filter(|c| !c.is_control()).collect();
    if row.chars().count() <= width {
        return row;
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
            "date_start": "2026-12-01T08:00:00Z"}, "produced": null, "loss": null,
            "last_write": {"operator": "ana", "station": "ws-1", "at": "2026-12-01T08:00:00Z", "clock_synced": true}});
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
            "RUNNING WH/MO/00007  Meja  by ana",
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

    #[test]
    fn nothing_from_the_broker_reaches_the_terminal_as_a_control_sequence() {
        let mut b = board();
        let line = json!({"line": "x", "running": [{"id": 1, "name": "\u{1b}[2J evil", "product": "p"}], "ready": []});
        b.apply(P, &format!("{P}/line/A2"), line.to_string().as_bytes())
            .unwrap();
        for raw in ["L\u{1b}[31m", "L%1B%5B31m"] {
            let topic = format!("{P}/line/{raw}");
            if b.apply(P, &topic, line.to_string().as_bytes()).is_some() {
                assert!(!b.render(None, 200, 60).contains('\u{1b}'), "{topic:?}");
            }
        }
        let text = b.render(None, 200, 60);
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(b.on_line("A", 7) && b.on_line("A", 8) && !b.on_line("A", 1));
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
