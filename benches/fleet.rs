//! `cargo bench --bench fleet`: a plant of gateways (docs/fleet.md), with release agents as
//! child processes and real mosquittos.
//!
//! 1. Two gateways, each with `BENCH_MOS` (1,000) MOs, bridged to a plant broker with the
//!    shipped bridge: register-mo round trips (one at a time, 200 each) from a panel on the
//!    gateway's own broker and from a central panel on the plant broker, p50/p99; then the
//!    plant broker killed and restarted empty, and the time until the plant view has every MO
//!    of both gateways again.
//! 2. `BENCH_GATEWAYS` (100) idle gateways on one simulated Odoo (20 ms per request), syncing
//!    every `BENCH_INTERVAL` (30 s; the default is 300 s): Odoo requests per minute over
//!    `BENCH_SECONDS` (120) after a warm-up, the busiest second, and the same scaled to the
//!    default interval; then the same gateways taking `BENCH_RATE` (100) commands a minute
//!    between them, round robin, and what each command adds (its result for Odoo).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linegate_sim::mosquitto::{BrokerOptions, Mosquitto};
use linegate_sim::odoo::{SimOdoo, SimOdooConfig};
use rumqttc::v5::mqttbytes::QoS;
use serde_json::{json, Value};

mod common;
use common::{percentile, spawn_agent, Seen};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A config for gateway `gateway` on `sim`, its broker at `port` (none: no `[mqtt]`).
fn config(dir: &Path, sim: &SimOdoo, port: Option<u16>, gateway: &str, odoo: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mut text = format!(
        "[store]\npath = {:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key = {:?}\n{odoo}",
        dir.join("linegate.db"),
        sim.url(),
        sim.config().api_key,
    );
    if let Some(port) = port {
        text.push_str(&format!("[mqtt]\nport = {port}\ngateway_id = \"{gateway}\"\n"));
    }
    let path = dir.join("linegate.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

async fn sim(mos: usize) -> SimOdoo {
    let sim = SimOdoo::start(SimOdooConfig {
        latency: Duration::from_millis(20),
        ..Default::default()
    })
    .await
    .unwrap();
    sim.seed(mos);
    sim
}

/// Sequential register-mo round trips on `port` for MOs `mos`, from `station` of `gateway`.
async fn round_trips(port: u16, gateway: &str, station: &str, mos: std::ops::Range<i64>) -> Vec<Duration> {
    let seen: Seen = Default::default();
    let filter = format!("linegate/{gateway}/reply/{station}");
    let panel = common::client(port, &format!("bench-{station}"), filter, seen.clone()).await;
    let mut times = Vec::new();
    for mo in mos {
        let id = format!("{station}-{mo}");
        let body = json!({"request_id": id, "operator": "o", "mo": mo, "auth_first": "1", "roll_number": "R"});
        let sent = Instant::now();
        panel
            .publish(
                format!("linegate/{gateway}/cmd/{station}/register-mo"),
                QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .await
            .unwrap();
        let at = common::wait_for(&seen, &id, Duration::from_secs(10), |v| v["ok"] == true)
            .await
            .expect("a reply");
        times.push(at - sent);
    }
    times.sort();
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn plant(mos: usize) {
    let mut plant = Mosquitto::start_with(BrokerOptions {
        max_queued_messages: Some(50_000),
        ..Default::default()
    })
    .unwrap();
    let mut gateways = Vec::new();
    for gw in ["gw-1", "gw-2"] {
        let broker = Mosquitto::start_with(BrokerOptions {
            persistence: true,
            max_queued_messages: Some(50_000),
            extra: Some(linegate_sim::mosquitto::shipped_bridge(gw, plant.port, None)),
            ..Default::default()
        })
        .unwrap();
        let sim = sim(mos).await;
        let dir = tempfile::tempdir().unwrap();
        let agent = spawn_agent(&config(dir.path(), &sim, Some(broker.port), gw, ""));
        // The agent first: dropped (killed) before its broker.
        gateways.push((agent, broker, sim, dir));
    }
    // The plant view: the last payload of every topic, with when it came.
    let view: Seen = Default::default();
    let _view = common::client(plant.port, "bench-plant-view", "linegate/+/mo/+".into(), view.clone()).await;
    let all = 2 * mos;
    let started = Instant::now();
    while view.lock().unwrap().len() < all {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the plant view never filled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("plant of 2 gateways × {mos} MOs, bridged with the shipped example");
    println!(
        "  plant view filled from both gateways: {:.1} s after their start",
        started.elapsed().as_secs_f64()
    );

    let local = round_trips(gateways[0].1.port, "gw-1", "ws-1", 1..201).await;
    let central = round_trips(plant.port, "gw-1", "ws-9", 201..401).await;
    for (what, t) in [
        ("a panel on the gateway's broker", &local),
        ("a central panel on the plant broker", &central),
    ] {
        println!(
            "  register-mo round trip from {what}: p50 {:.2} ms, p99 {:.2} ms ({} commands)",
            ms(percentile(t, 0.5)),
            ms(percentile(t, 0.99)),
            t.len()
        );
    }

    // The plant broker restarted empty: how soon the bridges have refilled the view.
    tokio::task::block_in_place(|| plant.stop());
    view.lock().unwrap().clear();
    let restarted = Instant::now();
    tokio::task::block_in_place(|| plant.resume()).unwrap();
    let mut first = None;
    loop {
        let n = view.lock().unwrap().len();
        if n > 0 && first.is_none() {
            first = Some(restarted.elapsed());
        }
        if n >= all {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(120),
            "the plant view did not converge: {n} of {all}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let changed: HashMap<String, Value> = view
        .lock()
        .unwrap()
        .iter()
        .map(|(k, (_, v))| (k.clone(), v.clone()))
        .collect();
    let registered = changed.values().filter(|v| v["phase"] == "ready").count();
    println!(
        "  plant broker restarted empty: first MO back after {:.2} s, all {all} after {:.2} s ({registered} registered during the run, as the lines left them)",
        first.unwrap_or_default().as_secs_f64(),
        restarted.elapsed().as_secs_f64()
    );
}

/// Odoo requests in one window of `seconds`: per minute, the busiest second, and by call.
struct Load {
    per_minute: f64,
    busiest: usize,
    by_call: Vec<(String, usize)>,
}

async fn measure(sim: &SimOdoo, seconds: usize) -> Load {
    sim.reset_requests();
    let mut per_second = Vec::new();
    let mut last = 0;
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sim.requests().len();
        per_second.push(now - last);
        last = now;
    }
    let mut by_call: HashMap<String, usize> = HashMap::new();
    for r in sim.requests() {
        let call = format!(
            "{} {}",
            r.model.as_deref().unwrap_or(&r.path),
            r.method.as_deref().unwrap_or("")
        );
        *by_call.entry(call).or_default() += 1;
    }
    let mut by_call: Vec<_> = by_call.into_iter().collect();
    by_call.sort_by_key(|c| std::cmp::Reverse(c.1));
    Load {
        per_minute: last as f64 * 60.0 / seconds as f64,
        busiest: per_second.iter().copied().max().unwrap_or(0),
        by_call,
    }
}

fn calls(load: &Load) -> String {
    let calls: Vec<String> = load.by_call.iter().map(|(call, n)| format!("{call}: {n}")).collect();
    calls.join(", ")
}

/// `gateways` agents on one Odoo and one broker: idle, then taking `rate` commands a minute
/// between them (each a result for Odoo), each window `seconds` long.
async fn odoo_load(gateways: usize, interval: usize, seconds: usize, rate: usize) {
    // Each gateway its own line group, as docs/fleet.md has it: MOs OWN*i+1 ..= OWN*i+OWN.
    const OWN: usize = 3;
    let sim = Arc::new(sim(gateways * OWN).await);
    let broker = Mosquitto::start().unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..gateways).map(|_| tempfile::tempdir().unwrap()).collect();
    let agents: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let own: Vec<usize> = (OWN * i + 1..=OWN * (i + 1)).collect();
            // With the MO's progress too: a result's full cost (start it, close it).
            let odoo = format!(
                "sync_interval = \"{interval}s\"\nmo_domain = '[[\"id\", \"in\", {own:?}]]'\n[odoo.push]\nprogress = true\n"
            );
            spawn_agent(&config(d.path(), &sim, Some(broker.port), &format!("gw-{i}"), &odoo))
        })
        .collect();
    // Warm-up: every first sync, reconcile and first scheduled run (0.5-1.5 intervals) done.
    tokio::time::sleep(Duration::from_secs((2 * interval) as u64)).await;
    let idle = measure(&sim, seconds).await;
    println!("{gateways} idle gateways on one Odoo, syncing every {interval} s (jittered), over {seconds} s:");
    println!(
        "  {:.0} Odoo requests per minute ({:.2} per gateway; floor: one per interval, {:.0}); busiest second {}",
        idle.per_minute,
        idle.per_minute / gateways as f64,
        gateways as f64 * 60.0 / interval as f64,
        idle.busiest
    );
    println!(
        "  at the default 300 s interval: {:.0} requests per minute",
        idle.per_minute * interval as f64 / 300.0
    );
    println!("  by call: {}", calls(&idle));

    // Steady commands: one gateway after another runs one of its MOs through register, start
    // and end, so that every kind of result is in the window.
    let replies: Seen = Default::default();
    let panel = common::client(
        broker.port,
        "bench-fleet-panel",
        "linegate/+/reply/bench".into(),
        replies.clone(),
    )
    .await;
    let every = Duration::from_secs_f64(60.0 / rate.max(1) as f64);
    let driver = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        for k in 0usize.. {
            tick.tick().await;
            let (gateway, round) = ((k / 3) % gateways, k / (3 * gateways));
            let mo = (OWN * gateway + round % OWN + 1) as i64;
            let (action, fields) = match k % 3 {
                0 => ("register-mo", json!({"auth_first": "000100", "roll_number": "R-1"})),
                1 => ("start-production", json!({"leader_id": "0042"})),
                _ => ("end-production", json!({"authenticity": "000220"})),
            };
            let mut body = json!({"request_id": format!("b-{k}"), "operator": "o", "mo": mo});
            body.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            let topic = format!("linegate/gw-{gateway}/cmd/bench/{action}");
            let _ = panel.publish(topic, QoS::AtLeastOnce, false, body.to_string()).await;
        }
    });
    let steady = measure(&sim, seconds).await;
    driver.abort();
    let applied = replies
        .lock()
        .unwrap()
        .values()
        .filter(|(_, v)| v["ok"] == true)
        .count();
    // The results' own calls: all but the syncs' searches.
    let sync_calls = ["mrp.production search_read", "stock.picking search_read"];
    let results: usize = steady
        .by_call
        .iter()
        .filter(|(call, _)| !sync_calls.contains(&call.as_str()))
        .map(|(_, n)| n)
        .sum();
    let parked: i64 = dirs.iter().map(|d| common::parked(&d.path().join("linegate.db"))).sum();
    println!("the same gateways taking {rate} commands a minute between them, over {seconds} s ({applied} applied, {parked} results parked):");
    println!(
        "  {:.0} Odoo requests per minute; the results' own calls {:.2} per command; busiest second {}",
        steady.per_minute,
        results as f64 / applied.max(1) as f64,
        steady.busiest
    );
    println!("  by call: {}", calls(&steady));
    drop(agents);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    plant(env("BENCH_MOS", 1000)).await;
    odoo_load(
        env("BENCH_GATEWAYS", 100),
        env("BENCH_INTERVAL", 30),
        env("BENCH_SECONDS", 120),
        env("BENCH_RATE", 100),
    )
    .await;
}
