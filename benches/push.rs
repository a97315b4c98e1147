//! `cargo bench --bench push`: results back to Odoo. With Odoo away, the floor queues a
//! backlog of results (1,000 register-mo commands; `BENCH_BACKLOG` overrides); Odoo returns,
//! 20 ms away per request, and the release agent (a child process) drains it while a panel
//! goes on at 20 commands/s. Prints entries delivered per second beside the floor of one
//! request at a time, Odoo requests per entry, the time from Odoo's return to an empty
//! outbox, and the command round trip while it drains beside the same with nothing to drain.
//!
//! `BENCH_STEPS=chatter|progress|all` measures instead what each result costs Odoo under that
//! step configuration (a chatter note; and the MO's progress; and fields and time tracking
//! too): MOs run through register, start and end one after another with Odoo up, and the
//! requests each result caused are counted by call.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linegate_sim::mosquitto::Mosquitto;
use linegate_sim::odoo::{SimOdoo, SimOdooConfig};
use rumqttc::v5::AsyncClient;

mod common;
use common::{
    agent_config, display_and_panel, odoo_seen_down, percentile, round_trips, spawn_agent, undelivered, wait_for,
    PREFIX,
};

/// Per request, as a plant's Odoo across a WAN answers.
const LATENCY: Duration = Duration::from_millis(20);
/// The panel's pace while the backlog drains (and for the baseline).
const RATE: f64 = 20.0;

fn backlog() -> usize {
    std::env::var("BENCH_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn newest_result(db: &Path) -> i64 {
    let db = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    db.query_row(
        "SELECT coalesce(max(id), 0) FROM outbox WHERE channel = 'odoo'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Polls `condition` every 5 ms; when it first held.
async fn when(limit: Duration, mut condition: impl FnMut() -> bool) -> Option<Instant> {
    let give_up = Instant::now() + limit;
    while Instant::now() < give_up {
        if condition() {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Odoo's requests, counted by model and method.
fn by_call(sim: &SimOdoo) -> BTreeMap<String, usize> {
    let mut calls = BTreeMap::new();
    for r in sim.requests() {
        let call = match (&r.model, &r.method) {
            (Some(model), Some(method)) => format!("{model}.{method}"),
            _ => r.path.clone(),
        };
        *calls.entry(call).or_insert(0) += 1;
    }
    calls
}

/// The release agent on `sim` with `odoo` lines in its `[odoo]`, a display and a panel, once
/// the display has every one of the `mos` MOs.
async fn started(
    dir: &Path,
    sim: &SimOdoo,
    port: u16,
    odoo: &str,
    mos: usize,
) -> (common::Agent, AsyncClient, common::Seen, AsyncClient, common::Seen) {
    let config = agent_config(dir, sim, port, odoo);
    let (display, seen, panel, replies) = display_and_panel(port, "#").await;
    let agent = spawn_agent(&config);
    wait_for(&seen, &format!("{PREFIX}/mo/{mos}"), Duration::from_secs(120), |_| true)
        .await
        .expect("all MOs published");
    (agent, display, seen, panel, replies)
}

/// Calls by name and count, as the report lists them.
fn listed(calls: &BTreeMap<String, usize>) -> String {
    let listed: Vec<String> = calls.iter().map(|(call, n)| format!("{call} {n}")).collect();
    listed.join(", ")
}

/// Chatter notes made: by message_post before issue 20, as mail.message records since.
fn notes(calls: &BTreeMap<String, usize>) -> usize {
    ["mrp.production.message_post", "mail.message.create"]
        .iter()
        .filter_map(|call| calls.get(*call))
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Ok(steps) = std::env::var("BENCH_STEPS") {
        return per_result(&steps).await;
    }
    let backlog = backlog();
    let baseline = 200.min(backlog);
    // Enough MOs for the backlog and for the panel's commands while it drains.
    let mos = backlog + 4_000;
    let broker = Mosquitto::start().expect("mosquitto (apt-get install mosquitto)");
    let sim = SimOdoo::start(SimOdooConfig::default()).await.unwrap();
    let ids = sim.seed(mos);
    for (k, id) in ids.iter().enumerate() {
        sim.backdate_write(*id, (mos - k) as i64 * 3);
    }
    sim.set_latency(LATENCY);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let (agent, _display, seen, panel, replies) = started(dir.path(), &sim, broker.port, "", mos).await;
    let limit = Duration::from_secs(120);
    let status = format!("{PREFIX}/status");
    let odoo_is = |state: &'static str| move |v: &serde_json::Value| v["uplink"]["odoo"]["state"] == state;
    wait_for(&seen, &status, limit, odoo_is("up")).await.expect("Odoo up");

    // Odoo away, and found so by a sync asked for; then, with nothing to deliver, the baseline
    // (after a few unmeasured commands: the agent's first ones after its start)
    odoo_seen_down(&sim, &panel, &seen).await;
    let _warm = round_trips(&panel, &replies, "warm", RATE, 20, 1).await.all();
    let idle = round_trips(&panel, &replies, "idle", RATE, baseline - 20, 21)
        .await
        .all();
    let queued = round_trips(&panel, &replies, "queue", 500.0, backlog - baseline, baseline + 1)
        .await
        .all();
    drop(queued);
    let last = newest_result(&db);
    assert_eq!(undelivered(&db, last), backlog as i64, "the backlog is queued");

    // Odoo back, and the panel goes on meanwhile.
    sim.reset_requests();
    let returned = Instant::now();
    sim.set_down(false);
    let draining = Arc::new(AtomicBool::new(true));
    let during = {
        let (panel, replies, draining) = (panel.clone(), replies.clone(), draining.clone());
        tokio::spawn(async move {
            let mut times = Vec::new();
            let mut next = backlog + 1;
            // In slices of 2 s until the backlog is gone.
            while draining.load(Ordering::Relaxed) && next + 40 <= mos {
                times.extend(round_trips(&panel, &replies, "drain", RATE, 40, next).await.all());
                next += 40;
            }
            times.sort();
            times
        })
    };
    let up = wait_for(&seen, &status, limit, odoo_is("up"))
        .await
        .expect("Odoo seen up again");
    let posts_at_up = notes(&by_call(&sim));
    let drained = when(Duration::from_secs(600), || undelivered(&db, last) == 0)
        .await
        .expect("the backlog drained");
    let calls = by_call(&sim);
    draining.store(false, Ordering::Relaxed);
    let during = during.await.unwrap();
    let empty = when(limit, || undelivered(&db, i64::MAX) == 0)
        .await
        .expect("the outbox emptied");
    drop(agent);

    let posts = notes(&calls) - posts_at_up;
    let drain = drained.saturating_duration_since(up).as_secs_f64();
    let requests: usize = calls.values().sum();
    let delivered = notes(&calls);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "linegate push benchmark: a backlog of {backlog} results (chatter notes), Odoo {} ms away, \
         a panel at {RATE} commands/s",
        LATENCY.as_millis()
    );
    println!(
        "Odoo's return to the agent seeing it up: {:.2} s (the sync's retry while Odoo is down)",
        up.saturating_duration_since(returned).as_secs_f64()
    );
    println!(
        "draining: {:.0} entries/s ({posts} notes in {drain:.2} s); floor, four requests at a time: {:.0}/s",
        posts as f64 / drain,
        4.0 / LATENCY.as_secs_f64()
    );
    println!(
        "Odoo's return to the backlog delivered: {:.2} s; to an empty outbox (with the panel's \
         {} results since): {:.2} s",
        drained.saturating_duration_since(returned).as_secs_f64(),
        during.len(),
        empty.saturating_duration_since(returned).as_secs_f64()
    );
    println!(
        "Odoo requests per entry: {:.3} ({requests} requests for {delivered} entries: {})",
        requests as f64 / delivered as f64,
        listed(&calls)
    );
    for (label, times) in [("nothing to drain", &idle), ("while draining", &during)] {
        println!(
            "round trip at {RATE} commands/s, {label:<16}  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} commands)",
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.99)),
            times.len()
        );
    }
}

/// MOs run through register, start and end under `BENCH_STEPS`.
const STEP_MOS: usize = 50;

/// What one result costs Odoo under the step configuration `steps`, by call.
async fn per_result(steps: &str) {
    let (push, fields) = match steps {
        "chatter" => ("", false),
        "progress" => ("[odoo.push]\nprogress = true\n", false),
        "all" => (
            "[odoo.push]\nprogress = true\ntime_tracking = true\n[odoo.push.fields]\nroll_number = \"x_roll_number\"\n",
            true,
        ),
        other => panic!("BENCH_STEPS={other}: chatter, progress or all"),
    };
    let broker = Mosquitto::start().expect("mosquitto (apt-get install mosquitto)");
    let mut odoo = SimOdooConfig::default();
    if fields {
        odoo.custom_fields = vec!["x_roll_number".into()];
    }
    let sim = SimOdoo::start(odoo).await.unwrap();
    let mos = STEP_MOS + 1;
    for id in sim.seed(mos) {
        // (the floor makes 119 of them: an end below plan, closed with a backorder)
        sim.write_mo(id, serde_json::Map::from_iter([("product_qty".into(), 120.0.into())]));
        if fields {
            sim.add_workorder(id, 1);
        }
    }
    sim.set_latency(LATENCY);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    // The sync stays out of the count: it runs once, at start.
    let sync = "sync_interval = \"1h\"\nreconcile_interval = \"1h\"\n";
    let odoo = format!("{sync}{push}");
    let (agent, _display, _, panel, replies) = started(dir.path(), &sim, broker.port, &odoo, mos).await;
    let limit = Duration::from_secs(120);
    // The first MO warms up (the checks of what Odoo offers the steps are made at start).
    run_mos(&panel, &replies, 1..2).await;
    when(limit, || undelivered(&db, i64::MAX) == 0)
        .await
        .expect("warm-up delivered");
    sim.reset_requests();
    run_mos(&panel, &replies, 2..mos + 1).await;
    when(Duration::from_secs(600), || undelivered(&db, i64::MAX) == 0)
        .await
        .expect("every result delivered");
    drop(agent);
    let calls = by_call(&sim);
    let requests: usize = calls.values().sum();
    let results = 3 * STEP_MOS;
    println!(
        "BENCH_STEPS={steps}: {:.2} Odoo requests per result ({requests} for {results} results of {STEP_MOS} MOs: {})",
        requests as f64 / results as f64,
        listed(&calls)
    );
}

/// Registers, starts and ends each of `mos` (stickers 000100 to 000218: 119 made), waiting
/// for each reply.
async fn run_mos(panel: &AsyncClient, replies: &common::Seen, mos: std::ops::Range<usize>) {
    for mo in mos {
        let steps = [
            (
                "register-mo",
                serde_json::json!({"auth_first": "000100", "roll_number": "R-1"}),
            ),
            ("start-production", serde_json::json!({"leader_id": "0042"})),
            ("end-production", serde_json::json!({"authenticity": "000219"})),
        ];
        for (action, fields) in steps {
            let id = format!("steps-{mo}-{action}");
            let mut body = serde_json::json!({"request_id": id, "operator": "bench", "mo": mo});
            body.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            panel
                .publish(
                    format!("{PREFIX}/cmd/ws-1/{action}"),
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    body.to_string(),
                )
                .await
                .unwrap();
            let reply = wait_for(replies, &id, Duration::from_secs(10), |_| true).await;
            assert!(reply.is_some(), "no reply to {id}");
            let ok = replies.lock().unwrap()[&id].1["ok"] == true;
            assert!(ok, "{id} refused: {:?}", replies.lock().unwrap()[&id].1);
        }
    }
}
