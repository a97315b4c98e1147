//! `cargo bench --bench wear`: what the agent writes to storage (the SD card's wear), as the
//! kernel counts it for the release agent (a child process: `/proc/<pid>/io`, `write_bytes`,
//! counted when pages are dirtied): per idle interval (500 MOs, nothing changed, a display on
//! the broker), extrapolated to an idle day at the default 5-minute interval, and per applied
//! register-mo command, alone (Odoo away) and with its delivery to Odoo.

use std::time::Duration;

use linegate_sim::mosquitto::Mosquitto;
use linegate_sim::odoo::{SimOdoo, SimOdooConfig};

mod common;
use common::{
    agent_config, display_and_panel, odoo_seen_down, round_trips, spawn_agent, undelivered, wait_for, PREFIX,
};

const MOS: usize = 500;
const IDLE: Duration = Duration::from_secs(30);
const COMMANDS: usize = 200;

/// Bytes the process `pid` wrote to storage so far.
fn written(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/<pid>/io");
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("write_bytes").saturating_sub(field("cancelled_write_bytes"))
}

fn searches(sim: &SimOdoo) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.model.as_deref() == Some("mrp.production") && r.method.as_deref() == Some("search_read"))
        .count()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let broker = Mosquitto::start().expect("mosquitto (apt-get install mosquitto)");
    let sim = SimOdoo::start(SimOdooConfig::default()).await.unwrap();
    let ids = sim.seed(MOS);
    // Written long ago, as in a plant between shifts.
    for (k, id) in ids.iter().enumerate() {
        sim.backdate_write(*id, 600 + k as i64);
    }
    // (on the disk the tests run on, not a tmpfs: the kernel counts nothing written to memory)
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = dir.path().join("linegate.db");
    let config = agent_config(dir.path(), &sim, broker.port, "sync_interval = \"1s\"\n");
    let (_display, seen, panel, replies) = display_and_panel(broker.port, "#").await;
    let mut agent = spawn_agent(&config);
    let pid = agent.id();
    let limit = Duration::from_secs(60);
    wait_for(&seen, &format!("{PREFIX}/mo/{MOS}"), limit, |_| true)
        .await
        .expect("all MOs published");
    // Past the first minute, so that every interval is the idle one.
    tokio::time::sleep(Duration::from_secs(65)).await;

    // Idle: nothing changes, the syncs run every second.
    let (before, asked) = (written(pid), searches(&sim));
    tokio::time::sleep(IDLE).await;
    let intervals = (searches(&sim) - asked).max(1);
    let per_interval = (written(pid) - before) as f64 / intervals as f64;

    // Commands with Odoo away: the command's own transaction.
    odoo_seen_down(&sim, &panel, &seen).await;
    let before = written(pid);
    round_trips(&panel, &replies, "alone", 20.0, COMMANDS, 1).await;
    let alone = (written(pid) - before) as f64 / COMMANDS as f64;

    // Odoo back: what the delivery of those results adds, then commands delivered as they come.
    sim.set_down(false);
    let before = written(pid);
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    while undelivered(&db, i64::MAX) > 0 && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivery = (written(pid) - before) as f64 / COMMANDS as f64;
    let _ = agent.kill();
    let _ = agent.wait();

    let kib = |b: f64| b / 1024.0;
    println!("linegate wear benchmark: {MOS} MOs, a display and a panel on mosquitto, the agent's own writes");
    println!(
        "idle interval: {:.1} KiB ({intervals} intervals); an idle day at the 5-minute default: {:.0} KiB \
         (288 intervals; goal <= 1024 KiB)",
        kib(per_interval),
        kib(per_interval * 288.0)
    );
    println!(
        "per register-mo command: {:.1} KiB alone, {:.1} KiB with its delivery to Odoo (goal <= 8 KiB)",
        kib(alone),
        kib(alone + delivery)
    );
}
