//! `cargo bench --bench faults`: the hardening issue's figures, on the release binary.
//!
//! - peak memory of `linegate sync --once` when Odoo's answer is 10 MB and 100 MB, beside a
//!   normal sync (the cap, odoo.max_response, is 8 MiB);
//! - with the broker away for a minute (persistence off, then on): the agent's connection
//!   attempts per minute, and the time from the broker's return until a fresh display sees
//!   the gateway online and every MO;
//! - rows the hourly pruning deletes per day at a steady 1 command/s.
//!
//! `BENCH_MOS` (default 1000) sets the MOs for the broker figures.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linegate_sim::mosquitto::{BrokerOptions, Mosquitto};
use linegate_sim::odoo::{Fault, SimOdoo, SimOdooConfig};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

const GATEWAY: &str = "bench-faults";
const PREFIX: &str = "linegate/bench-faults";

fn mos() -> usize {
    std::env::var("BENCH_MOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// A config for `sim` (and a broker, when given) in `dir`.
fn write_config(dir: &Path, sim: &SimOdoo, broker: Option<u16>) -> std::path::PathBuf {
    let key = dir.join("key");
    std::fs::write(&key, &sim.config().api_key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut toml = format!(
        "[store]\npath = {:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key_file = {key:?}\nrequest_timeout = \"5s\"\n",
        dir.join("linegate.db"),
        sim.url()
    );
    if let Some(port) = broker {
        toml.push_str(&format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\ngateway_id = \"{GATEWAY}\"\n"
        ));
    }
    let config = dir.join("linegate.toml");
    std::fs::write(&config, toml).unwrap();
    config
}

/// Peak RSS (MiB) of one `sync --once` while the simulated Odoo answers with `fault` once.
async fn sync_peak(fault: Option<Fault>) -> (f64, String) {
    let sim = SimOdoo::start(SimOdooConfig::default()).await.unwrap();
    sim.seed(200);
    if let Some(fault) = fault {
        // Every attempt the client makes within the run.
        sim.fail_next(3, fault);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, None);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linegate"));
    cmd.arg("--config")
        .arg(&config)
        .args(["sync", "--once", "odoo"])
        .env("RUST_LOG", "error");
    let (out, peak) = tokio::task::spawn_blocking(move || common::run_watching_rss(cmd))
        .await
        .unwrap();
    (
        peak as f64 / 1024.0,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Every retained topic under the prefix, as a fresh display sees it.
async fn display(port: u16) -> Arc<Mutex<std::collections::HashMap<String, String>>> {
    let seen = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let mut options = MqttOptions::new(
        format!("bench-display-{}", Instant::now().elapsed().as_nanos()),
        "127.0.0.1",
        port,
    );
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 100);
    let sink = seen.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(format!("{PREFIX}/#"), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).to_string();
                    sink.lock()
                        .unwrap()
                        .insert(topic, String::from_utf8_lossy(&p.payload).to_string());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    seen
}

/// The broker away for `away`: (connection attempts per minute, seconds from its return to a
/// fresh display seeing the gateway online and every MO).
async fn broker_outage(persistence: bool, away: Duration) -> (f64, f64) {
    let mos = mos();
    let mut broker = Mosquitto::start_with(BrokerOptions {
        persistence,
        ..Default::default()
    })
    .unwrap();
    let port = broker.port;
    let sim = SimOdoo::start(SimOdooConfig::default()).await.unwrap();
    sim.seed(mos);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, Some(port));
    let mut agent = Command::new(env!("CARGO_BIN_EXE_linegate"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let all_there = |seen: &Mutex<std::collections::HashMap<String, String>>| {
        let seen = seen.lock().unwrap();
        seen.get(&format!("{PREFIX}/status"))
            .is_some_and(|s| s.contains("\"online\""))
            && seen.keys().filter(|k| k.contains("/mo/")).count() >= mos
    };
    let first = display(port).await;
    let give_up = Instant::now() + Duration::from_secs(120);
    while !all_there(&first) && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if persistence {
        broker.terminate();
    } else {
        broker.stop();
    }
    // The port held, counting the agent's CONNECTs, while the broker is away.
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let stop = stop.clone();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut attempts = 0;
            let id = format!("linegate-{GATEWAY}");
            while !stop.load(Ordering::Relaxed) {
                if let Ok((mut conn, _)) = listener.accept() {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                    let mut buf = [0u8; 512];
                    let n = conn.read(&mut buf).unwrap_or(0);
                    if buf[..n].windows(id.len()).any(|w| w == id.as_bytes()) {
                        attempts += 1;
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            attempts
        })
    };
    tokio::time::sleep(away).await;
    stop.store(true, Ordering::Relaxed);
    let attempts = counter.join().unwrap();
    broker.resume().unwrap();
    let back = Instant::now();
    let fresh = display(port).await;
    while !all_there(&fresh) && back.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let converged = back.elapsed().as_secs_f64();
    let _ = agent.kill();
    let _ = agent.wait();
    (attempts as f64 * 60.0 / away.as_secs_f64(), converged)
}

/// Rows pruned per day at 1 command/s: two days of commands, one day kept.
async fn pruned_per_day() -> (u64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let store = linegate::store::Store::open(&db).unwrap();
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        let tx = conn.transaction().unwrap();
        let now = linegate::clock::now_unix();
        for s in 0..2 * 86_400 {
            tx.execute(
                "INSERT INTO command_log (request_id, station, action, operator, received_at, clock_synced, ok, reply) \
                 VALUES (?1, 'ws', 'register-mo', 'o', ?2, 1, 1, '{}')",
                rusqlite::params![format!("r{s}"), linegate::clock::format_rfc3339(now - 2 * 86_400 + s)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let housekeeping = linegate::housekeeping::Housekeeping {
        store,
        keep: Duration::from_secs(86_400),
        heart: linegate::heartbeat::Heart::detached("bench"),
    };
    let started = Instant::now();
    let (commands, _) = housekeeping
        .prune(&linegate::shutdown::Shutdown::never())
        .await
        .unwrap();
    (commands, started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("linegate fault figures (release binary)");
    let (normal, _) = sync_peak(None).await;
    let (ten, ten_out) = sync_peak(Some(Fault::Huge(10_000_000))).await;
    let (hundred, hundred_out) = sync_peak(Some(Fault::Huge(100_000_000))).await;
    println!("peak RSS, sync --once of 200 MOs:      {normal:6.1} MiB");
    println!("peak RSS, Odoo answering 10 MB:        {ten:6.1} MiB  ({ten_out})");
    println!("peak RSS, Odoo answering 100 MB:       {hundred:6.1} MiB  ({hundred_out})");

    for persistence in [false, true] {
        let (per_minute, converged) = broker_outage(persistence, Duration::from_secs(60)).await;
        println!(
            "broker away 60 s, persistence {:<5}: {per_minute:5.1} connection attempts/min; \
             {converged:5.2} s from its return to a fresh display seeing online and all {} MOs",
            persistence,
            mos()
        );
    }

    let (pruned, took) = pruned_per_day().await;
    println!("pruning at 1 command/s: {pruned} rows a day (in {took:.2} s, 500 a transaction)");
    println!("long forms: SOAK_KILLS=1000 cargo test --release --test faults kill_9; SOAK_CUTS=1000 cargo test --release --test powercut -- --nocapture; PROPTEST_CASES=1000000 cargo test --release --lib fuzz_");
}
