//! What the screens show, read from the broker as a display reads it: the gateway's status,
//! every line's view and the permits expiring — the retained topics, with the display
//! account, nothing published. Not the MOs' own topics: a line's view carries what its screens
//! show, and ten thousand retained MOs would be ten megabytes held for nothing.
//!
//! The latest state goes out on a `watch`: every open page takes the newest and skips what it
//! missed, so a burst of changes (a republish after a reconnect) costs a page one update.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::mqtt::topics::Topic;
use crate::shutdown::Shutdown;

/// Lines kept at most.
const MAX_LINES: usize = 1_000;
/// Larger payloads are not shown (a line's view of 200 ready MOs is about 60 KB).
const MAX_PAYLOAD: usize = 512 * 1024;
/// MOs of a line the index names (the rest are counted).
const INDEX_RUNNING: usize = 4;
/// After a reconnect, retained topics arrive right after the subscription is granted; a status
/// not heard again by then is no longer the broker's (a broker restarted without its store,
/// the agent away): the screens say the agent is not heard from. Lines are kept: the agent
/// sends every line again when it is back, an emptied one as empty, and until then the last
/// state is what a display should show.
const SETTLE: Duration = Duration::from_secs(3);
/// Between attempts while the broker cannot be reached: back within 2 s of its return.
const RETRY: Duration = Duration::from_millis(500);

/// Whether `linegate web` itself is connected to the broker, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) up: bool,
    /// Unix milliseconds.
    pub(crate) since: i64,
}

/// One line's view: the agent's payload as it came (compact JSON), and the index's brief.
#[derive(Debug, Clone)]
pub(crate) struct LineState {
    pub(crate) json: Arc<str>,
    pub(crate) brief: Arc<str>,
}

/// Everything the screens show, as the broker last said it.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) link: Link,
    pub(crate) status: Option<Arc<str>>,
    /// The connection the status was last heard on.
    status_epoch: u64,
    pub(crate) lines: BTreeMap<String, LineState>,
    /// Changes with every change of `lines` (the index shows them all).
    pub(crate) lines_version: u64,
    pub(crate) permits: Option<Arc<str>>,
}

impl Snapshot {
    pub(crate) fn new() -> Snapshot {
        Snapshot {
            link: Link {
                up: false,
                since: crate::clock::now_unix_ms(),
            },
            status: None,
            status_epoch: 0,
            lines: BTreeMap::new(),
            lines_version: 0,
            permits: None,
        }
    }
}

/// A payload as the screens get it: a JSON object, compact (so it fits one SSE data line), or
/// None for anything else.
fn compact(payload: &[u8]) -> Option<Arc<str>> {
    if payload.len() > MAX_PAYLOAD {
        return None;
    }
    let value: Value = serde_json::from_slice(payload).ok()?;
    value.is_object().then(|| Arc::from(value.to_string()))
}

/// The index's brief of a line: the running MOs' names and products, how many are ready.
fn brief(name: &str, line: &str) -> Arc<str> {
    let value: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    let list = |key: &str| value[key].as_array().cloned().unwrap_or_default();
    let running = list("running");
    let shown: Vec<Value> = running
        .iter()
        .take(INDEX_RUNNING)
        .map(|r| json!({"name": r["name"], "product": r["product"], "date_start": r["date_start"]}))
        .collect();
    Arc::from(
        json!({"line": name, "running": shown, "running_count": running.len(), "ready_count": list("ready").len()})
            .to_string(),
    )
}

/// Takes one message into `snap`; whether it changed anything.
pub(crate) fn apply(snap: &mut Snapshot, prefix: &str, topic: &str, payload: &[u8], epoch: u64) -> bool {
    let Some(topic) = Topic::parse(prefix, topic) else {
        return false;
    };
    let value = if payload.is_empty() { None } else { compact(payload) };
    if !payload.is_empty() && value.is_none() {
        tracing::debug!(?topic, "not a JSON object, or too large: not shown");
        return false;
    }
    // The same payload again (a republish after a reconnect) changes nothing a page shows.
    let same = |old: Option<&Arc<str>>| old.map(|o| &**o) == value.as_deref();
    match topic {
        Topic::Status => {
            snap.status_epoch = epoch;
            if same(snap.status.as_ref()) {
                return false;
            }
            snap.status = value;
        }
        Topic::PermitsExpiring => {
            if same(snap.permits.as_ref()) {
                return false;
            }
            snap.permits = value;
        }
        Topic::Line(name) => {
            if same(snap.lines.get(&name).map(|l| &l.json)) {
                return false;
            }
            match value {
                None => {
                    snap.lines.remove(&name);
                }
                Some(json) => {
                    if !snap.lines.contains_key(&name) && snap.lines.len() >= MAX_LINES {
                        tracing::warn!(line = %name, "more than {MAX_LINES} lines: not shown");
                        return false;
                    }
                    let brief = brief(&name, &json);
                    snap.lines.insert(name, LineState { json, brief });
                }
            }
            snap.lines_version += 1;
        }
        _ => return false,
    }
    true
}

/// Reads the broker until `shutdown`, publishing each new state on `tx`.
pub(crate) async fn run(options: MqttOptions, prefix: String, tx: watch::Sender<Arc<Snapshot>>, shutdown: Shutdown) {
    let (client, mut events) = AsyncClient::new(options, 16);
    let mut snap = Snapshot::new();
    let mut epoch = 0;
    // When lines not heard of since the last connect are dropped.
    let mut settle_at: Option<tokio::time::Instant> = None;
    let mut trouble: Option<String> = None;
    loop {
        let settle = async {
            match settle_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            event = events.poll() => event,
            () = settle => {
                settle_at = None;
                if snap.status_epoch != epoch && snap.status.is_some() {
                    snap.status = None;
                    tx.send_replace(Arc::new(snap.clone()));
                }
                continue;
            }
            _ = shutdown.wait() => return,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if trouble.take().is_some() {
                    tracing::info!("the broker is back");
                }
                epoch += 1;
                // No session: subscribe on every connect, and the broker sends what it retains.
                // QoS 0: it is state, the newest wins and a reconnect brings it all again.
                for topic in [Topic::Status, Topic::PermitsExpiring] {
                    let _ = client.try_subscribe(topic.build(&prefix), QoS::AtMostOnce);
                }
                let _ = client.try_subscribe(format!("{prefix}/line/+"), QoS::AtMostOnce);
                settle_at = Some(tokio::time::Instant::now() + SETTLE);
                snap.link = Link {
                    up: true,
                    since: crate::clock::now_unix_ms(),
                };
                tx.send_replace(Arc::new(snap.clone()));
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| !matches!(c, rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)))
                {
                    tracing::error!(codes = ?ack.return_codes,
                        "the broker refused the display account a subscription: check web.display_username and the ACL");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let topic = String::from_utf8_lossy(&p.topic);
                if apply(&mut snap, &prefix, &topic, &p.payload, epoch) {
                    tx.send_replace(Arc::new(snap.clone()));
                }
            }
            Ok(_) => {}
            Err(e) => {
                let why = e.to_string();
                if trouble.as_ref() != Some(&why) {
                    tracing::warn!(error = %why, "the broker cannot be reached; trying again");
                }
                trouble = Some(why);
                if snap.link.up {
                    snap.link = Link {
                        up: false,
                        since: crate::clock::now_unix_ms(),
                    };
                    tx.send_replace(Arc::new(snap.clone()));
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.wait() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "linegate/gw";

    #[test]
    fn lines_come_and_go_and_anything_but_a_json_object_is_not_shown() {
        let mut snap = Snapshot::new();
        let line = br#"{"line":"L1","running":[{"name":"WH/MO/1","product":"<b>Table</b>"}],"ready":[{},{}]}"#;
        assert!(apply(&mut snap, P, "linegate/gw/line/L1", line, 1));
        let brief: Value = serde_json::from_str(&snap.lines["L1"].brief).unwrap();
        assert_eq!(brief["running"][0]["product"], "<b>Table</b>");
        assert_eq!(
            (brief["running_count"].as_u64(), brief["ready_count"].as_u64()),
            (Some(1), Some(2))
        );
        // Pretty-printed JSON arrives compact: one SSE data line.
        assert!(apply(
            &mut snap,
            P,
            "linegate/gw/status",
            b"{\n \"state\": \"online\"\n}",
            1
        ));
        assert_eq!(snap.status.as_deref(), Some(r#"{"state":"online"}"#));
        for junk in [&b"not json"[..], b"[1,2]", b"\"text\"", &[0xff, 0xfe]] {
            assert!(!apply(&mut snap, P, "linegate/gw/status", junk, 1));
        }
        assert!(snap.status.is_some(), "junk clears nothing");
        assert!(!apply(&mut snap, P, "linegate/gw/mo/1", b"{}", 1), "MOs are not kept");
        assert!(!apply(&mut snap, P, "other/gw/line/L1", b"{}", 1));
        let version = snap.lines_version;
        assert!(
            apply(&mut snap, P, "linegate/gw/line/L1", b"", 1),
            "an empty payload clears"
        );
        assert!(snap.lines.is_empty());
        assert!(snap.lines_version > version);
    }

    #[test]
    fn the_same_payload_again_changes_nothing() {
        let mut snap = Snapshot::new();
        let line = br#"{"line":"L1","running":[],"ready":[]}"#;
        assert!(apply(&mut snap, P, "linegate/gw/line/L1", line, 1));
        let version = snap.lines_version;
        assert!(!apply(&mut snap, P, "linegate/gw/line/L1", line, 2), "a republish");
        assert_eq!(snap.lines_version, version);
        assert!(apply(&mut snap, P, "linegate/gw/status", br#"{"state":"online"}"#, 1));
        assert!(!apply(&mut snap, P, "linegate/gw/status", br#"{"state": "online"}"#, 2));
        assert_eq!(snap.status_epoch, 2, "heard again, though unchanged");
    }

    #[test]
    fn lines_are_bounded() {
        let mut snap = Snapshot::new();
        for n in 0..MAX_LINES + 5 {
            apply(&mut snap, P, &format!("linegate/gw/line/L{n}"), b"{}", 1);
        }
        assert_eq!(snap.lines.len(), MAX_LINES);
        assert!(
            apply(&mut snap, P, "linegate/gw/line/L0", br#"{"a":1}"#, 1),
            "a known line still changes"
        );
    }
}
