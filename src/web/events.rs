//! The pages' live feed: server-sent events (an `EventSource` in the page reconnects by itself
//! after a restart of this server, of the gateway or a Wi-Fi drop). A stream sends the state
//! its page shows whenever that changes (`event: state`, one JSON object), and a `tick` every
//! few seconds, by which a page tells a silent link from a quiet line: no tick for a while, and
//! it shows "offline since" and opens a new stream.
//!
//! Every stream is bounded: a few messages queued at most (a page that stops reading is
//! dropped), and a lifetime after which the page's `EventSource` simply opens another.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;

use super::feed::{LineState, Snapshot};
use super::Web;

/// How often a stream says it is alive.
pub(crate) const TICK: Duration = Duration::from_secs(5);
/// A stream ends after this long (the page opens a new one at once).
const LIFETIME: Duration = Duration::from_secs(30 * 60);
/// A page that has not taken a message for this long is gone.
const STALL: Duration = Duration::from_secs(30);
/// Messages waiting for one page.
const QUEUE: usize = 4;

/// What a stream is about.
#[derive(Debug, Clone)]
pub(crate) enum View {
    /// Every line, the stations, the permits.
    Index,
    /// One line: its display, or the panel of a station on it.
    Line(String),
}

/// A response body fed by a task.
pub(crate) struct Stream(mpsc::Receiver<Bytes>);

impl http_body::Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// A new stream of `view`.
pub(crate) fn open(web: Arc<Web>, view: View) -> Stream {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(pump(web, view, tx));
    Stream(rx)
}

/// What a stream last sent, to send only what changed.
#[derive(Default)]
struct Sent {
    link: Option<super::feed::Link>,
    status: Option<Arc<str>>,
    line: Option<Arc<str>>,
    lines_version: Option<u64>,
    permits: Option<Arc<str>>,
}

fn same(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn raw(value: &Option<Arc<str>>) -> &str {
    value.as_deref().unwrap_or("null")
}

/// What every state message names besides the snapshot: the gateway, and (for the index) the
/// stations, as JSON.
struct Names<'a> {
    gateway: &'a str,
    stations: &'a str,
}

/// The state message for `view`, when anything it shows differs from `sent`.
fn compose(names: &Names<'_>, view: &View, snap: &Snapshot, sent: &mut Sent) -> Option<String> {
    let line = match view {
        View::Line(name) => snap.lines.get(name).map(|l: &LineState| l.json.clone()),
        View::Index => None,
    };
    let unchanged = sent.link == Some(snap.link)
        && same(&sent.status, &snap.status)
        && match view {
            View::Line(_) => same(&sent.line, &line),
            View::Index => sent.lines_version == Some(snap.lines_version) && same(&sent.permits, &snap.permits),
        };
    if unchanged {
        return None;
    }
    *sent = Sent {
        link: Some(snap.link),
        status: snap.status.clone(),
        line: line.clone(),
        lines_version: Some(snap.lines_version),
        permits: snap.permits.clone(),
    };
    // The pieces are JSON already (the feed made them compact): put together, not parsed again.
    let head = format!(
        r#"{{"gateway":{},"build":"{}","link":{{"up":{},"since":{}}},"now":{},"utc_offset":{},"status":{}"#,
        serde_json::Value::from(names.gateway),
        super::assets::build(),
        snap.link.up,
        snap.link.since,
        crate::clock::now_unix_ms(),
        crate::clock::local_offset(crate::clock::now_unix()),
        raw(&snap.status),
    );
    Some(match view {
        View::Line(_) => format!(r#"{head},"line":{}}}"#, raw(&line)),
        View::Index => {
            let lines: Vec<&str> = snap.lines.values().map(|l| &*l.brief).collect();
            format!(
                r#"{head},"lines":[{}],"stations":{},"permits":{}}}"#,
                lines.join(","),
                names.stations,
                raw(&snap.permits)
            )
        }
    })
}

async fn pump(web: Arc<Web>, view: View, tx: mpsc::Sender<Bytes>) {
    let send = |text: String| {
        let tx = tx.clone();
        async move {
            matches!(
                tokio::time::timeout(STALL, tx.send(Bytes::from(text))).await,
                Ok(Ok(()))
            )
        }
    };
    // The page's EventSource tries again this soon after the stream ends.
    if !send("retry: 1500\n\n".into()).await {
        return;
    }
    let mut feed = web.feed.clone();
    let mut sent = Sent::default();
    let stations = serde_json::to_string(&web.config.stations).unwrap_or_else(|_| "{}".into());
    let names = Names {
        gateway: &web.gateway,
        stations: &stations,
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = tokio::time::sleep(LIFETIME);
    tokio::pin!(end);
    loop {
        let snap = feed.borrow_and_update().clone();
        if let Some(state) = compose(&names, &view, &snap, &mut sent) {
            if !send(format!("event: state\ndata: {state}\n\n")).await {
                return;
            }
        }
        tokio::select! {
            changed = feed.changed() => if changed.is_err() { return },
            _ = tick.tick() => {
                let now = crate::clock::now_unix_ms();
                if !send(format!("event: tick\ndata: {{\"now\":{now}}}\n\n")).await {
                    return;
                }
            }
            () = &mut end => return,
            () = web.stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: Names<'static> = Names {
        gateway: "gw",
        stations: r#"{"ws-1":"L1"}"#,
    };

    fn take(snap: &mut Snapshot, topic: &str, payload: &str) {
        assert!(super::super::feed::apply(
            snap,
            "linegate/gw",
            topic,
            payload.as_bytes(),
            1
        ));
    }

    #[test]
    fn a_page_is_sent_what_it_shows_when_that_changes_and_nothing_else() {
        let mut snap = Snapshot::new();
        take(
            &mut snap,
            "linegate/gw/line/L1",
            r#"{"line":"L1","running":[],"ready":[]}"#,
        );
        let (l1, index) = (View::Line("L1".into()), View::Index);
        let (mut to_l1, mut to_index) = (Sent::default(), Sent::default());
        let first = compose(&NAMES, &l1, &snap, &mut to_l1).expect("the first state");
        let first: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["line"]["line"], "L1");
        assert_eq!(first["gateway"], "gw");
        assert!(compose(&NAMES, &index, &snap, &mut to_index).is_some());
        // Nothing new: nothing sent
        assert!(compose(&NAMES, &l1, &snap, &mut to_l1).is_none());
        // Another line changes: the index hears of it, L1's display does not
        take(
            &mut snap,
            "linegate/gw/line/L2",
            r#"{"line":"L2","running":[],"ready":[]}"#,
        );
        assert!(compose(&NAMES, &l1, &snap, &mut to_l1).is_none());
        let index_now: serde_json::Value =
            serde_json::from_str(&compose(&NAMES, &index, &snap, &mut to_index).unwrap()).unwrap();
        assert_eq!(index_now["lines"].as_array().map(Vec::len), Some(2));
        assert_eq!(index_now["stations"]["ws-1"], "L1");
        // The gateway's status changes: every page hears of it
        take(&mut snap, "linegate/gw/status", r#"{"state":"offline"}"#);
        let now: serde_json::Value = serde_json::from_str(&compose(&NAMES, &l1, &snap, &mut to_l1).unwrap()).unwrap();
        assert_eq!(now["status"]["state"], "offline");
        assert!(compose(&NAMES, &index, &snap, &mut to_index).is_some());
        // The link to the broker comes or goes: every page hears of it
        snap.link.up = !snap.link.up;
        assert!(compose(&NAMES, &l1, &snap, &mut to_l1).is_some());
    }
}
