//! `cargo bench --bench sicantik`: the SICANTIK figures the SICANTIK issue asks for — 500
//! permits, 150 ms per request, a limit of 10 requests/s: the first sync's wall time (the rate
//! bound for the expiry calls alone is 50 s; the original connector took about 75 s), the
//! observed peak request rate, and the requests the second run makes.

use std::time::{Duration, Instant};

use linegate::config::SicantikConfig;
use linegate::shutdown::Shutdown;
use linegate::store::Store;
use linegate::sync::sicantik::SicantikSync;
use linegate_sim::sicantik::{SimSicantik, SimSicantikConfig};

const PERMITS: usize = 500;
const LATENCY: Duration = Duration::from_millis(150);
const RATE: f64 = 10.0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = SimSicantik::start(SimSicantikConfig {
        latency: LATENCY,
        rate_limit: Some(RATE),
        ..Default::default()
    })
    .await
    .unwrap();
    let seeded = sim.seed(PERMITS);
    let real = seeded
        .iter()
        .filter(|p| !p.n_pemohon.is_empty() && p.n_pemohon != "0")
        .count();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("linegate.db")).unwrap();
    let mut config = SicantikConfig::new(sim.url());
    config.rate_limit = RATE;
    let mut sync = SicantikSync::new(&config, store).unwrap();

    let started = Instant::now();
    let first = sync.run(&Shutdown::never()).await.expect("first sync");
    let first_wall = started.elapsed();
    let requests = sim.requests();
    let details = requests
        .iter()
        .filter(|r| r.endpoint.starts_with("cekperizinan"))
        .count();
    let peak = sim.peak_rate(Duration::from_secs(1));
    let violations = sim.rate_violations();

    sim.reset_requests();
    let started = Instant::now();
    let second = sync.run(&Shutdown::never()).await.expect("second sync");
    let second_wall = started.elapsed();
    let second_details = sim
        .requests()
        .iter()
        .filter(|r| r.endpoint.starts_with("cekperizinan"))
        .count();

    println!(
        "linegate SICANTIK benchmark: {PERMITS} permits ({real} real), {} ms per request, limit {RATE}/s, concurrency {}",
        LATENCY.as_millis(),
        config.concurrency
    );
    println!(
        "first sync:  {:.1} s wall, {} requests ({} detail calls: {} found, {} unknown after both endpoints), {} reminders",
        first_wall.as_secs_f64(),
        first.requests,
        details,
        first.details,
        first.unknown,
        first.reminders
    );
    println!(
        "  rate bound for those requests at {RATE}/s: {:.1} s",
        first.requests as f64 / RATE
    );
    println!("  peak request rate over any 1 s window: {peak:.1}/s; requests over the limit: {violations}");
    println!(
        "second sync: {:.2} s wall, {} requests, {} detail calls",
        second_wall.as_secs_f64(),
        second.requests,
        second_details
    );
}
