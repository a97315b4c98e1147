//! `cargo bench --bench wear`: what the agent writes to storage (the SD card's wear), as the
//! kernel counts it for the release agent (a child process: `/proc/<pid>/io`, `write_bytes`,
//! counted when pages are dirtied): per idle interval (500 MOs, nothing changed, a display on
//! the broker), per reconcile (what an idle hour adds: the reconcile's state and the idle
//! stretch's run record; measured with a second agent on the same store reconciling every 5 s),
//! an idle day from both at the defaults (264 intervals of 5 minutes and 24 reconciles), and per
//! applied register-mo command, alone (Odoo away) and with its delivery to Odoo, beside a bare
//! durable commit of one row in a store made the same way.

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

/// Bytes the process `pid` wrote to storage so far, as the agent counts its own.
fn written(pid: u32) -> u64 {
    linegate::wear::written_bytes_of(pid).expect("/proc/<pid>/io")
}

/// Sync runs the store at `db` has recorded.
fn runs_recorded(db: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    db.query_row("SELECT count(*) FROM sync_run", [], |r| r.get(0)).unwrap()
}

/// The floor under a command's cost: what this process writes for `count` bare durable
/// commits of one row the size of a command's log entry, in a store of its own in `dir` made
/// as the agent makes its own (WAL, 1 KiB pages, `synchronous = FULL`, SQLite's checkpoints).
fn bare_commits(dir: &std::path::Path, count: usize) -> f64 {
    let mut db = rusqlite::Connection::open(dir.join("floor.db")).unwrap();
    db.pragma_update(None, "page_size", 1024).unwrap();
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.pragma_update(None, "synchronous", "FULL").unwrap();
    db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        .unwrap();
    let before = written(std::process::id());
    for k in 0..count {
        let tx = db.transaction().unwrap();
        tx.execute("INSERT INTO t (body) VALUES (?1)", [format!("{k:0>300}")])
            .unwrap();
        tx.commit().unwrap();
    }
    (written(std::process::id()) - before) as f64 / count as f64
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
    let agent = spawn_agent(&config);
    let pid = agent.id();
    let limit = Duration::from_secs(60);
    wait_for(&seen, &format!("{PREFIX}/mo/{MOS}"), limit, |_| true)
        .await
        .expect("all MOs published");
    // Past the first minute, so that every interval is the idle one.
    tokio::time::sleep(Duration::from_secs(65)).await;
    let first_start = seen
        .lock()
        .unwrap()
        .get(&format!("{PREFIX}/status"))
        .and_then(|(_, v)| v["started_at"].as_str().map(String::from));

    // Idle: nothing changes, the syncs run every second.
    let (before, asked, recorded) = (written(pid), searches(&sim), runs_recorded(&db));
    tokio::time::sleep(IDLE).await;
    let intervals = (searches(&sim) - asked).max(1);
    let per_interval = (written(pid) - before) as f64 / intervals as f64;
    let recorded_idle = runs_recorded(&db) - recorded;

    // Commands with Odoo away: the command's own transaction.
    odoo_seen_down(&sim, &panel, &seen).await;
    let before = written(pid);
    round_trips(&panel, &replies, "alone", 20.0, COMMANDS, 1).await.all();
    let alone = (written(pid) - before) as f64 / COMMANDS as f64;

    // Odoo back: what the delivery of those results adds, then commands delivered as they come.
    sim.set_down(false);
    let before = written(pid);
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    while undelivered(&db, i64::MAX) > 0 && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivery = (written(pid) - before) as f64 / COMMANDS as f64;
    drop(agent);

    // The hourly part of an idle day, every 5 s: the same store, a second agent.
    let config = agent_config(
        dir.path(),
        &sim,
        broker.port,
        "sync_interval = \"1s\"\nreconcile_interval = \"5s\"\n",
    );
    let agent = spawn_agent(&config);
    let pid = agent.id();
    let status = format!("{PREFIX}/status");
    let started = std::time::Instant::now();
    wait_for(&seen, &status, limit, |v| {
        v["started_at"].as_str() != first_start.as_deref()
    })
    .await
    .expect("the second agent online");
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
    let (before, recorded) = (written(pid), runs_recorded(&db));
    tokio::time::sleep(IDLE).await;
    let reconciles = (runs_recorded(&db) - recorded).max(1);
    let per_reconcile = (written(pid) - before) as f64 / reconciles as f64;
    drop(agent);

    let floor = bare_commits(dir.path(), COMMANDS);

    let kib = |b: f64| b / 1024.0;
    println!("linegate wear benchmark: {MOS} MOs, a display and a panel on mosquitto, the agent's own writes");
    println!(
        "idle interval: {:.1} KiB ({intervals} intervals, {recorded_idle} runs recorded); per reconcile: {:.1} KiB \
         ({reconciles} reconciles, 5 s apart)",
        kib(per_interval),
        kib(per_reconcile)
    );
    println!(
        "an idle day at the defaults (264 intervals of 5 minutes and 24 hourly reconciles): {:.0} KiB \
         (goal <= 1024 KiB)",
        kib(per_interval * 264.0 + per_reconcile * 24.0)
    );
    println!(
        "per register-mo command: {:.1} KiB alone, {:.1} KiB with its delivery to Odoo (goal <= 8 KiB); \
         floor: {:.1} KiB for a bare durable commit of one 300-byte row",
        kib(alone),
        kib(alone + delivery),
        kib(floor)
    );
}
