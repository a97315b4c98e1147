//! Shared by the benchmarks: the agent run as a child process, its peak memory watched.
#![allow(dead_code)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};

/// The topic prefix of the benchmarks' agents (gateway_id "bench").
pub(crate) mod floor;

pub(crate) const PREFIX: &str = "linegate/bench";

/// Runs the agent to completion, sampling its peak RSS (VmHWM) from /proc. getrusage's
/// ru_maxrss is no use here: it counts this process's pages, shared with the child between
/// fork and exec.
pub(crate) fn run_watching_rss(mut cmd: Command) -> (Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("linegate runs");
    let status_file = format!("/proc/{}/status", child.id());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(vm_hwm_kib(&status_file).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        let out = child.wait_with_output().expect("linegate finishes");
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, watcher.join().unwrap())
    })
}

/// A process's peak resident memory so far (VmHWM, KiB), from its /proc/<pid>/status.
pub(crate) fn vm_hwm_kib(status_file: &str) -> Option<u64> {
    status_field(&std::fs::read_to_string(status_file).ok()?, "VmHWM:")
}

/// A `Name:   1234 kB` line of /proc/<pid>/status, in KiB.
fn status_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A process's resident memory by kind (KiB), from its /proc/<pid>/status.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resident {
    pub(crate) total: u64,
    /// The heap, stacks: what the agent allocates.
    pub(crate) anon: u64,
    /// The binary's and libraries' pages that were touched.
    pub(crate) file: u64,
    /// Shared memory: SQLite's WAL index.
    pub(crate) shmem: u64,
}

pub(crate) fn resident(status_file: &str) -> Option<Resident> {
    let text = std::fs::read_to_string(status_file).ok()?;
    Some(Resident {
        total: status_field(&text, "VmRSS:")?,
        anon: status_field(&text, "RssAnon:")?,
        file: status_field(&text, "RssFile:")?,
        shmem: status_field(&text, "RssShmem:")?,
    })
}

/// A private config in `dir` for an agent on `sim` and the broker on `port` (gateway "bench",
/// its database beside the config), with `odoo` lines added to its `[odoo]` section.
pub(crate) fn agent_config(dir: &Path, sim: &linegate_sim::odoo::SimOdoo, port: u16, odoo: &str) -> PathBuf {
    let config = dir.join("linegate.toml");
    let text = format!(
        "[store]\npath = {:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key = {:?}\n{odoo}\
         [mqtt]\nport = {port}\ngateway_id = \"bench\"\n",
        dir.join("linegate.db"),
        sim.url(),
        sim.config().api_key,
    );
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    config
}

/// The release agent, `linegate run` on `config`; killed when dropped, so that a benchmark
/// that fails leaves no agent behind (holding its output pipe open). `BENCH_AGENT` names
/// another binary, e.g. the package's (built `--no-default-features`: no simulators), and
/// the agent runs with the unit's `MALLOC_ARENA_MAX=2` unless the environment says otherwise.
pub(crate) fn spawn_agent(config: &Path) -> Agent {
    let binary = agent_binary();
    let arenas = std::env::var_os("MALLOC_ARENA_MAX").unwrap_or_else(|| "2".into());
    let child = Command::new(binary)
        .env("MALLOC_ARENA_MAX", arenas)
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("linegate runs");
    Agent(child)
}

/// The binary a benchmark runs: the bench build's, or the one `BENCH_AGENT` names.
pub(crate) fn agent_binary() -> std::ffi::OsString {
    std::env::var_os("BENCH_AGENT").unwrap_or_else(|| env!("CARGO_BIN_EXE_linegate").into())
}

pub(crate) struct Agent(Child);

impl Agent {
    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A display on `filter` and a panel on station ws-1's replies, each with what it received.
pub(crate) async fn display_and_panel(port: u16, filter: &str) -> (AsyncClient, Seen, AsyncClient, Seen) {
    let seen: Seen = Default::default();
    let display = client(port, "bench-display", format!("{PREFIX}/{filter}"), seen.clone()).await;
    let replies: Seen = Default::default();
    let panel = client(port, "bench-panel", format!("{PREFIX}/reply/ws-1"), replies.clone()).await;
    (display, seen, panel, replies)
}

/// Results for Odoo waiting for a person in the store at `db`.
pub(crate) fn parked(db: &Path) -> i64 {
    let db = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    db.query_row(
        "SELECT count(*) FROM outbox WHERE channel = 'odoo' AND parked_at IS NOT NULL",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Results not yet in Odoo in the store at `db`, among those with ids up to `last`
/// (`i64::MAX`: all).
pub(crate) fn undelivered(db: &Path, last: i64) -> i64 {
    let db = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    db.query_row(
        "SELECT count(*) FROM outbox WHERE channel = 'odoo' AND delivered_at IS NULL AND id <= ?1",
        [last],
        |r| r.get(0),
    )
    .unwrap()
}

/// Takes `sim` down and has the agent find it so at once (a panel's sync-now), as the status
/// topic `seen` by a display says.
pub(crate) async fn odoo_seen_down(sim: &linegate_sim::odoo::SimOdoo, panel: &AsyncClient, seen: &Seen) {
    sim.set_down(true);
    let sync_now = json!({"request_id": "sync-now"}).to_string();
    panel
        .publish(format!("{PREFIX}/cmd/ws-1/sync-now"), QoS::AtLeastOnce, false, sync_now)
        .await
        .unwrap();
    let status = format!("{PREFIX}/status");
    wait_for(seen, &status, Duration::from_secs(60), |v| {
        v["uplink"]["odoo"]["state"] == "down"
    })
    .await
    .expect("Odoo seen down");
}

/// Every message under the prefix, with when it arrived.
pub(crate) type Seen = Arc<Mutex<HashMap<String, (Instant, Value)>>>;

/// A client subscribed to `filter` that keeps every message it receives in `seen`.
pub(crate) async fn client(port: u16, name: &str, filter: String, seen: Seen) -> AsyncClient {
    subscriber(port, name, filter, move |_, p| {
        let now = Instant::now();
        let topic = String::from_utf8_lossy(&p.topic).to_string();
        let value: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
        // Replies are keyed by request_id, retained state by topic.
        let key = value
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or(topic);
        seen.lock().unwrap().insert(key, (now, value));
    })
    .await
}

/// A client subscribed to `filter` (QoS 1, TCP_NODELAY) that hands every message to
/// `on_publish` from its event loop; returns once the subscription is acknowledged.
pub(crate) async fn subscriber(
    port: u16,
    name: &str,
    filter: String,
    mut on_publish: impl FnMut(&AsyncClient, Publish) + Send + 'static,
) -> AsyncClient {
    let mut options = MqttOptions::new(name, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let (client, mut events) = AsyncClient::new(options, 10_000);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let own = client.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = own.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => on_publish(&own, p),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    ready_rx.await.expect("subscribed");
    client
}

pub(crate) async fn wait_for(
    seen: &Seen,
    key: &str,
    limit: Duration,
    check: impl Fn(&Value) -> bool,
) -> Option<Instant> {
    let give_up = Instant::now() + limit;
    while Instant::now() < give_up {
        if let Some((at, v)) = seen.lock().unwrap().get(key) {
            if check(v) {
                return Some(*at);
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Round trips of commands sent at a steady rate, sorted, and how many got no reply.
pub(crate) struct Trips {
    pub(crate) times: Vec<Duration>,
    pub(crate) lost: usize,
}

impl Trips {
    /// The round trips, every command answered.
    pub(crate) fn all(self) -> Vec<Duration> {
        assert_eq!(self.lost, 0, "commands without a reply");
        self.times
    }
}

/// Sends `count` register-mo commands at `rate` per second, from MO `first_mo` on (request ids
/// start with `tag`), and returns the round trips (publish → reply received); a command not
/// answered within 10 s of the last one sent is counted lost (a broker drops what overflows
/// its queue for a client that cannot keep up).
pub(crate) async fn round_trips(
    panel: &AsyncClient,
    replies: &Seen,
    tag: &str,
    rate: f64,
    count: usize,
    first_mo: usize,
) -> Trips {
    let mut sent = Vec::with_capacity(count);
    let started = Instant::now();
    for k in 0..count {
        let due = started + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let id = format!("{tag}-{rate}-{k}");
        let body =
            json!({"request_id": id, "operator": "bench", "mo": first_mo + k, "auth_first": "1", "roll_number": "R"});
        let at = Instant::now();
        panel
            .publish(
                format!("{PREFIX}/cmd/ws-1/register-mo"),
                QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .await
            .unwrap();
        sent.push((id, at));
    }
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut times = Vec::with_capacity(count);
    let mut lost = 0;
    for (id, at) in sent {
        let left = give_up.saturating_duration_since(Instant::now());
        wait_for(replies, &id, left, |_| true).await;
        // (one that came late, behind the deadline, counts with its time)
        match replies.lock().unwrap().get(&id) {
            Some((got, reply)) => {
                assert!(reply["ok"] == true, "{id} refused: {reply}");
                times.push(got.saturating_duration_since(at));
            }
            None => lost += 1,
        }
    }
    times.sort();
    Trips { times, lost }
}
