//! `linegate watch`: what the line displays see, built only from the retained topics, as a
//! board redrawn as messages arrive (an 80×24 terminal is enough), or with `--json` one line
//! per change, for scripts. It is an MQTT client like any display: the same `[mqtt]` keys
//! (host, port, TLS, login), a client id of its own, no session, nothing published.

pub(crate) mod board;

use std::io::Write;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};
use serde_json::{json, Value};

use crate::config::{ConfigError, MqttConfig};
use crate::mqtt::topics::Topic;
use crate::shutdown::Shutdown;
use board::{Board, Change};

/// How often the board may be redrawn: a republish of thousands of MOs is one redraw, not
/// thousands.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Between attempts while the broker cannot be reached.
const RETRY: Duration = Duration::from_secs(1);

/// What to show.
#[derive(Debug, Clone, Default)]
pub struct WatchArgs {
    /// Only this line (and its MOs).
    pub line: Option<String>,
    /// One JSON object per change instead of the board.
    pub json: bool,
}

/// Watches until `shutdown`, writing to `out`.
pub async fn run(
    config: &MqttConfig,
    args: &WatchArgs,
    shutdown: Shutdown,
    mut out: impl Write,
) -> Result<(), ConfigError> {
    let prefix = config.topic_prefix();
    let options = crate::mqtt::options::sessionless(config, "watch")?;
    let (client, mut events) = AsyncClient::new(options, 16);
    let mut board = Board::default();
    let mut dirty = true;
    let mut trouble: Option<String> = None;
    let mut redraw = tokio::time::interval(REDRAW_EVERY);
    let (mut width, mut height) = terminal_size();
    // The terminal says when it is resized (SIGWINCH); the board is drawn anew for its size.
    let mut resized = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            Some(()) = async { match resized.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } }, if !args.json => {
                (width, height) = terminal_size();
                dirty = true;
                continue;
            }
            _ = redraw.tick(), if !args.json => {
                if dirty {
                    let mut screen = String::from("\x1b[H\x1b[2J");
                    if let Some(why) = &trouble {
                        screen.push_str(&format!("broker {}:{}: {why}\n", config.host, config.port));
                    }
                    let rows = height.saturating_sub(usize::from(trouble.is_some()));
                    screen.push_str(&board.render(args.line.as_deref(), width, rows));
                    let _ = out.write_all(screen.as_bytes()).and_then(|()| out.flush());
                    dirty = false;
                }
                continue;
            }
            _ = shutdown.wait() => return Ok(()),
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                trouble = None;
                dirty = true;
                // What the broker retains now, nothing older: a topic cleared while we were
                // away is not sent again.
                board = Board::default();
                // No session: every connect subscribes again, and the broker sends what it
                // retains. QoS 0: it is state, the newest wins and a reconnect brings it all
                // again, while at QoS 1 a broker queues only so many for one client (mosquitto:
                // 1,000 by default) and drops the rest of thousands of retained MOs.
                for topic in [Topic::Status, Topic::PermitsExpiring] {
                    let _ = client.try_subscribe(topic.build(&prefix), QoS::AtMostOnce);
                }
                // Lines first, so that `--line` knows them when their MOs come.
                for filter in ["line/+", "mo/+"] {
                    let _ = client.try_subscribe(format!("{prefix}/{filter}"), QoS::AtMostOnce);
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let topic = String::from_utf8_lossy(&p.topic).to_string();
                let Some(change) = board.apply(&prefix, &topic, &p.payload) else {
                    continue;
                };
                if !shown(&board, &change, args.line.as_deref()) {
                    continue;
                }
                if args.json {
                    let payload: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    let line = json!({"topic": topic, "payload": payload}).to_string();
                    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
                } else {
                    dirty = true;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let why = e.to_string();
                if args.json && trouble.as_ref() != Some(&why) {
                    tracing::warn!(error = %why, "the broker cannot be reached; trying again");
                }
                trouble = Some(why);
                dirty = true;
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.wait() => return Ok(()),
                }
            }
        }
    }
}

/// Whether a change concerns what `--line` asks for: the line itself, its MOs, the gateway.
fn shown(board: &Board, change: &Change, only: Option<&str>) -> bool {
    match (change, only) {
        (_, None) | (Change::Status, _) => true,
        (Change::Line(name), Some(l)) => name == l,
        (Change::Mo(id), Some(l)) => board.on_line(l, *id),
        (Change::Permits, Some(_)) => false,
    }
}

/// The terminal's size, as the terminal itself says (a shell does not export COLUMNS and
/// LINES to the programs it starts); else as the environment says; else 80×24.
fn terminal_size() -> (usize, usize) {
    if let Some(size) = window_size() {
        return size;
    }
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| (1..=1000).contains(n))
            .unwrap_or(default)
    };
    (var("COLUMNS", 80), var("LINES", 24))
}

/// The size of the terminal on standard output, when it is one.
#[allow(
    unsafe_code,
    reason = "TIOCGWINSZ has no safe binding; the ioctl only fills the struct"
)]
fn window_size() -> Option<(usize, usize)> {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let asked = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    let (columns, rows) = (usize::from(size.ws_col), usize::from(size.ws_row));
    (asked == 0 && (1..=1000).contains(&columns) && (1..=1000).contains(&rows)).then_some((columns, rows))
}
