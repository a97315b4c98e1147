//! `cargo bench --bench sync`: the Odoo sync figures the foundation issue asks for, measured on
//! the release binary (`linegate sync --once`, a child process, so its CPU time and peak RSS
//! are its own) against the simulated Odoo with 10,000 MOs and 20 ms per request.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use linegate::sim::odoo::{SimOdoo, SimOdooConfig};

const MOS: usize = 10_000;
const LATENCY: Duration = Duration::from_millis(20);
const CHANGED: i64 = 50;

struct Run {
    label: &'static str,
    wall: Duration,
    cpu: Duration,
    summary: String,
    requests: usize,
    picking_requests: usize,
    db_bytes: u64,
}

fn children_usage() -> (Duration, i64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own; RUSAGE_CHILDREN covers waited-for children.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime) + tv(usage.ru_stime), usage.ru_maxrss)
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
    let (cpu_before, _) = children_usage();
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linegate"));
    cmd.arg("--config")
        .arg(config)
        .args(["sync", "--once"])
        .env("RUST_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("linegate runs"))
        .await
        .unwrap();
    let wall = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (cpu_after, _) = children_usage();
    let requests = sim.requests();
    Run {
        label,
        wall,
        cpu: cpu_after - cpu_before,
        summary: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        requests: requests.len(),
        picking_requests: requests
            .iter()
            .filter(|r| r.model.as_deref() == Some("stock.picking"))
            .count(),
        db_bytes: db_bytes(dir),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = SimOdoo::start(SimOdooConfig::default()).await.expect("simulated Odoo");
    let ids = sim.seed(MOS);
    // Spread the write dates over the past hours, as a real plant's would be.
    for (k, id) in ids.iter().enumerate() {
        sim.backdate_write(*id, (MOS - k) as i64 * 3);
    }
    sim.set_latency(LATENCY);

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, &sim.config().api_key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("linegate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key_file = {:?}\n",
            dir.path().join("linegate.db"),
            sim.url(),
            key
        ),
    )
    .unwrap();

    let mut runs = vec![sync_once("first full sync", &config, dir.path(), &sim).await];
    for id in ids.iter().step_by(MOS / CHANGED as usize) {
        sim.set_state(*id, "progress");
    }
    runs.push(sync_once("incremental, 50 changed", &config, dir.path(), &sim).await);
    runs.push(sync_once("idle", &config, dir.path(), &sim).await);
    let (_, peak_rss_kib) = children_usage();

    println!(
        "linegate sync benchmark: {MOS} MOs, {} ms per request, page size 200",
        LATENCY.as_millis()
    );
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>8} {:>10}",
        "run", "wall s", "cpu s", "requests", "picking", "db bytes"
    );
    for r in &runs {
        println!(
            "{:<26} {:>9.2} {:>9.2} {:>9} {:>8} {:>10}",
            r.label,
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64(),
            r.requests,
            r.picking_requests,
            r.db_bytes
        );
    }
    println!(
        "peak RSS of the agent (largest run): {:.1} MiB",
        peak_rss_kib as f64 / 1024.0
    );
    for r in &runs {
        println!("{:<26} {}", r.label, r.summary);
    }
}
