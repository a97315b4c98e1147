//! `cargo bench --bench sync`: the Odoo sync figures the foundation issue asks for, measured on
//! the release binary (`linegate sync --once`, a child process, so its CPU time and memory are
//! its own) against the simulated Odoo with 10,000 MOs (`BENCH_MOS` overrides) and 20 ms per
//! request.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use linegate_sim::odoo::{SimOdoo, SimOdooConfig};

mod common;
use common::run_watching_rss;

const LATENCY: Duration = Duration::from_millis(20);
const CHANGED: usize = 50;

fn mos() -> usize {
    std::env::var("BENCH_MOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

struct Run {
    label: &'static str,
    wall: Duration,
    agent_cpu: Duration,
    sim_cpu: Duration,
    peak_rss_kib: u64,
    requests: usize,
    picking_requests: usize,
    db_bytes: u64,
    summary: String,
}

/// CPU time of waited-for children (the agent), or of this process (the simulated Odoo).
#[allow(unsafe_code, reason = "getrusage(2) has no safe binding in std")]
fn cpu(who: libc::c_int) -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only fills the struct we own.
    unsafe { libc::getrusage(who, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn db_bytes(dir: &Path) -> u64 {
    ["linegate.db", "linegate.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

async fn sync_once(label: &'static str, config: &Path, dir: &Path, sim: &SimOdoo) -> Run {
    sim.reset_requests();
    let (agent_before, sim_before) = (cpu(libc::RUSAGE_CHILDREN), cpu(libc::RUSAGE_SELF));
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linegate"));
    cmd.arg("--config")
        .arg(config)
        .args(["sync", "--once"])
        .env("RUST_LOG", "warn");
    let (out, peak_rss_kib) = tokio::task::spawn_blocking(move || run_watching_rss(cmd))
        .await
        .unwrap();
    let wall = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let requests = sim.requests();
    Run {
        label,
        wall,
        agent_cpu: cpu(libc::RUSAGE_CHILDREN) - agent_before,
        sim_cpu: cpu(libc::RUSAGE_SELF) - sim_before,
        peak_rss_kib,
        requests: requests.len(),
        picking_requests: requests
            .iter()
            .filter(|r| r.model.as_deref() == Some("stock.picking"))
            .count(),
        db_bytes: db_bytes(dir),
        summary: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    }
}

/// Requests and MOs read by a running agent's idle interval with `n` MOs, none written in the
/// last minute (the simulated Odoo without latency: the figures are counts).
async fn idle_interval(n: usize) -> (u64, u64) {
    let sim = SimOdoo::start(SimOdooConfig::default()).await.expect("simulated Odoo");
    let ids = sim.seed(n);
    for (k, id) in ids.iter().enumerate() {
        sim.backdate_write(*id, (n - k) as i64 * 3 + 60);
    }
    let dir = tempfile::tempdir().unwrap();
    let store = linegate::store::Store::open(&dir.path().join("linegate.db")).unwrap();
    let config = sim.config();
    let mut odoo =
        linegate::config::OdooConfig::with_api_key(sim.url(), config.database.clone(), config.api_key.clone());
    odoo.max_response = 64 << 20;
    let mut sync = linegate::sync::odoo::OdooSync::new(&odoo, store, Duration::from_secs(30 * 86_400)).unwrap();
    let never = linegate::shutdown::Shutdown::never();
    sync.run(&never).await.expect("the first sync");
    let idle = sync.run(&never).await.expect("an idle sync");
    (idle.requests, idle.fetched)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mos = mos();
    let sim = SimOdoo::start(SimOdooConfig::default()).await.expect("simulated Odoo");
    let ids = sim.seed(mos);
    // Spread the write dates over the past hours, as a real plant's would be.
    for (k, id) in ids.iter().enumerate() {
        sim.backdate_write(*id, (mos - k) as i64 * 3);
    }
    sim.set_latency(LATENCY);

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, &sim.config().api_key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("linegate.toml");
    let db = dir.path().join("linegate.db");
    let toml = format!(
        "[store]\npath = {db:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key_file = {key:?}\n",
        sim.url()
    );
    std::fs::write(&config, toml).unwrap();

    let mut runs = vec![sync_once("first full sync", &config, dir.path(), &sim).await];
    for id in ids.iter().step_by((mos / CHANGED).max(1)).take(CHANGED) {
        sim.set_state(*id, "progress");
    }
    runs.push(sync_once("incremental, 50 changed", &config, dir.path(), &sim).await);
    runs.push(sync_once("idle", &config, dir.path(), &sim).await);
    // Minutes later (every write date moved back, as time passing does): the unchanged case.
    for id in &ids {
        sim.backdate_write(*id, 120);
    }
    runs.push(sync_once("unchanged, minutes later", &config, dir.path(), &sim).await);

    println!(
        "linegate sync benchmark: {mos} MOs, {} ms per request, page size 200",
        LATENCY.as_millis()
    );
    println!(
        "{:<24} {:>7} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "run", "wall s", "agent cpu", "sim cpu", "peak MiB", "requests", "picking", "db bytes"
    );
    for r in &runs {
        println!(
            "{:<24} {:>7.2} {:>9.2} {:>8.2} {:>8.1} {:>8} {:>7} {:>9}",
            r.label,
            r.wall.as_secs_f64(),
            r.agent_cpu.as_secs_f64(),
            r.sim_cpu.as_secs_f64(),
            r.peak_rss_kib as f64 / 1024.0,
            r.requests,
            r.picking_requests,
            r.db_bytes
        );
    }
    for r in &runs {
        println!("{:<24} {}", r.label, r.summary);
    }

    // A running agent's idle interval, between hourly reconciles, at three store sizes.
    for n in [500, 5_000, 50_000] {
        let (requests, read) = idle_interval(n).await;
        println!("idle interval, {n:>6} MOs: {requests} requests, {read} MOs read (floor: 1 request, 0 MOs)");
    }

    // The same, through the child's store: the one `sync --once` left.
    let store = linegate::store::Store::open(&db).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let odoo = linegate::config::Config::parse(&text).unwrap().odoo.unwrap();
    let mut sync = linegate::sync::odoo::OdooSync::new(&odoo, store, Duration::from_secs(30 * 86_400)).unwrap();
    let never = linegate::shutdown::Shutdown::never();
    sync.run(&never).await.expect("a first sync in this process");
    let idle = sync.run(&never).await.expect("an idle sync");
    println!(
        "{:<24} {} requests, rows written {}, {:.3} s (in a running agent, between reconciles)",
        "idle, steady state",
        idle.requests,
        idle.counts.inserted + idle.counts.updated,
        idle.duration.as_secs_f64()
    );
}
