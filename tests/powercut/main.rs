//! Power cuts: the agent's store on a disk that keeps every write in memory until its file is
//! fsynced and loses the rest when the power goes (linegate_sim::powercut, LazyFS's model).
//! A `kill -9` keeps the kernel's page cache; a power cut does not. First the disk itself is
//! proven, on files and on bare SQLite; then the agent's own binary is put through cuts, one
//! at a time (each bug the soak found, reproduced) and as a soak (soak.rs).

#[path = "../common/mod.rs"]
mod common;
mod gateway;
mod soak;

use std::path::Path;
use std::time::Duration;

use common::{Display, Mosquitto, Panel};
use gateway::{disk, Gateway, PREFIX};
use linegate_sim::odoo::SimOdoo;
use linegate_sim::powercut::{Cut, PowerCutDisk};
use rusqlite::Connection;

fn fsync_dir(dir: &Path) {
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}

// --- The disk itself ------------------------------------------------------------------------

#[test]
fn a_cut_keeps_what_was_fsynced_and_a_name_only_once_its_directory_was() {
    use std::io::Write;
    // Given a file written and fsynced, in a directory never fsynced, and one whose directory was
    let (_dir, mut disk) = disk();
    let root = disk.path().to_path_buf();
    std::fs::create_dir(root.join("d")).unwrap();
    fsync_dir(&root);
    let unnamed = root.join("d/unnamed");
    let mut f = std::fs::File::create(&unnamed).unwrap();
    f.write_all(b"synced").unwrap();
    f.sync_all().unwrap();
    drop(f);
    let named = root.join("named");
    let mut f = std::fs::File::create(&named).unwrap();
    fsync_dir(&root);
    f.write_all(b"first").unwrap();
    f.sync_all().unwrap();
    // and after that, writes never fsynced: more data, a rename, a new file
    f.write_all(b" second").unwrap();
    drop(f);
    std::fs::write(root.join("d/late"), b"late").unwrap();
    std::fs::rename(&named, root.join("renamed")).unwrap();
    assert_eq!(std::fs::read(root.join("renamed")).unwrap(), b"first second");

    // When the power goes
    let kept = disk.power_on(Cut::Exact).unwrap();

    // Then what was fsynced is there under its durable name, and nothing else
    assert!(kept.unsynced > 0, "{kept:?}");
    assert_eq!(std::fs::read(&named).unwrap(), b"first");
    assert!(!root.join("renamed").exists());
    assert!(root.join("d").is_dir(), "the directory's own name was synced");
    assert!(!unnamed.exists(), "a file fsynced is lost while its directory is not");
    assert!(!root.join("d/late").exists());

    // And a rename is durable once its directory is fsynced
    std::fs::rename(&named, root.join("renamed")).unwrap();
    fsync_dir(&root);
    disk.power_on(Cut::Exact).unwrap();
    assert_eq!(std::fs::read(root.join("renamed")).unwrap(), b"first");
    assert!(!named.exists());
}

#[test]
fn a_torn_cut_keeps_an_in_order_prefix_of_the_unsynced_writes() {
    use std::io::Write;
    let mut prefixes = std::collections::BTreeSet::new();
    let (_dir, mut disk) = disk();
    let path = disk.path().join("f");
    for seed in 1..=40u64 {
        // Given a durable empty file, then eight unsynced writes of 1000 bytes each
        let mut f = std::fs::File::create(&path).unwrap();
        f.sync_all().unwrap();
        fsync_dir(disk.path());
        for k in 0..8u8 {
            f.write_all(&[b'a' + k; 1000]).unwrap();
        }
        drop(f);

        // When the power goes, torn
        let kept = disk.power_on(Cut::Torn { seed }).unwrap();

        // Then the file holds a prefix of what was written, in order (the kernel hands a write
        // that crosses a page over as two), the last part torn at a sector boundary
        let data = std::fs::read(&path).unwrap();
        assert!(data.len() <= 8000, "{kept:?}");
        for (i, b) in data.iter().enumerate() {
            assert_eq!(*b, b'a' + (i / 1000) as u8, "byte {i} out of order");
        }
        if kept.torn_bytes.is_some() {
            assert_eq!(data.len() % 512, 0, "torn at a sector boundary: {kept:?}");
        }
        prefixes.insert(data.len());
    }
    // And the seeds choose different prefixes, none and all included
    assert!(prefixes.len() > 5, "{prefixes:?}");
    assert!(prefixes.contains(&0) || prefixes.contains(&8000), "{prefixes:?}");
}

// --- Bare SQLite on it ----------------------------------------------------------------------

/// Commits `n` rows one transaction each on a new WAL database at `synchronous`, then cuts the
/// power; returns how many rows the database holds after, and its integrity check.
fn commits_kept(disk: &mut PowerCutDisk, synchronous: &str, n: i64, cut: Cut) -> (i64, String) {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let db = disk.path().join(format!("bare-{synchronous}-{run}.db"));
    let conn = Connection::open(&db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", synchronous).unwrap();
    conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
    for v in 0..n {
        // Each commit returned: an application would now tell someone it happened.
        conn.execute("INSERT INTO t (v) VALUES (?1)", [v]).unwrap();
    }
    // The power goes under the open connection (its close then writes nothing)
    disk.cut();
    drop(conn);
    disk.power_on(cut).unwrap();
    let conn = Connection::open(&db).unwrap();
    let kept = match conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)) {
        Ok(n) => n,
        Err(e) if e.to_string().contains("no such table") => 0,
        Err(e) => panic!("{synchronous}: {e}"),
    };
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    (kept, check)
}

#[test]
fn sqlite_wal_with_synchronous_full_keeps_every_commit_and_normal_and_off_lose_them() {
    let (_dir, mut disk) = disk();
    for cut in [Cut::Exact, Cut::Torn { seed: 7 }, Cut::Torn { seed: 11 }] {
        // FULL: every commit that returned survives
        assert_eq!(commits_kept(&mut disk, "FULL", 50, cut), (50, "ok".into()), "{cut:?}");
    }
    // NORMAL and OFF: commits that returned are gone after an exact cut
    for synchronous in ["NORMAL", "OFF"] {
        let (kept, check) = commits_kept(&mut disk, synchronous, 50, Cut::Exact);
        assert!(kept < 50, "{synchronous} kept all {kept} commits");
        assert_eq!(check, "ok");
    }
}

// --- The agent on it ------------------------------------------------------------------------

/// linegate's chatter notes on `mo`.
fn notes(sim: &SimOdoo, mo: i64) -> Vec<String> {
    sim.messages(mo)
        .iter()
        .filter_map(|m| m["body"].as_str())
        .filter(|b| b.contains("linegate: "))
        .map(str::to_string)
        .collect()
}

/// A broker, the simulated Odoo with `mos` MOs as `prepare` leaves it, the agent on a
/// power-cut disk with `push` as its `[odoo.push]` lines (online), and a panel.
async fn floor(mos: usize, prepare: impl FnOnce(&SimOdoo), push: &str) -> (Mosquitto, SimOdoo, Gateway, Panel) {
    let broker = Mosquitto::start().await;
    let sim = common::sim(19, mos).await;
    prepare(&sim);
    let mut gw = Gateway::new(&sim, broker.port(), push);
    let display = Display::start(broker.port(), PREFIX).await;
    gw.start();
    display
        .wait(&format!("{PREFIX}/status"), "online", |v| v["state"] == "online")
        .await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-1").await;
    (broker, sim, gw, panel)
}

/// Waits until the store holds `n` results for Odoo, each delivered.
async fn settled(gw: &Gateway, n: i64) {
    common::wait_until("the results settled", Duration::from_secs(20), || {
        gw.count("SELECT count(*) FROM outbox WHERE channel = 'odoo' AND delivered_at IS NOT NULL") == n
            && gw.undelivered() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_in_odoo_before_a_cut_is_not_posted_again_after_it() {
    // Given the agent on a power-cut disk, a panel, and a simulated Odoo taking notes
    let (_broker, sim, mut gw, panel) = floor(2, |_| {}, "").await;

    // When an MO is registered, its note reaches Odoo and the agent has taken it as delivered
    let reply = panel
        .send(
            "register-mo",
            serde_json::json!({"request_id": "r1", "operator": "ana", "mo": 1, "auth_first": "000100", "roll_number": "R-1"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    common::wait_until("the note in Odoo", Duration::from_secs(15), || {
        notes(&sim, 1).len() == 1
    })
    .await;
    settled(&gw, 1).await;
    // and then the power goes on a quiet line (no command since to flush the log)
    gw.cut(Cut::Exact);

    // Then, started again, the agent knows the note may be in Odoo, finds it, and posts none
    gw.start();
    settled(&gw, 1).await;
    assert_eq!(notes(&sim, 1).len(), 1, "{:#?}", notes(&sim, 1));
    // And the command the panel was told of survived the cut
    assert_eq!(
        gw.count("SELECT count(*) FROM command_log WHERE request_id = 'r1' AND ok"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_step_of_a_result_in_odoo_before_a_cut_is_made_again_after_it() {
    // Given the agent on a power-cut disk with every step of [odoo.push] on, and an MO with a
    // work order in Odoo
    let prepare = |sim: &SimOdoo| {
        sim.add_custom_field("x_roll");
        sim.add_workorder(1, 1).unwrap();
    };
    let push = "progress = true\ntime_tracking = true\n[odoo.push.fields]\nroll_number = \"x_roll\"";
    let (_broker, sim, mut gw, panel) = floor(1, prepare, push).await;

    // When the MO is registered, started and ended, and every step of its end is in Odoo
    let steps = [
        (
            "register-mo",
            serde_json::json!({"auth_first": "000100", "roll_number": "R-1"}),
        ),
        ("start-production", serde_json::json!({"leader_id": "0042"})),
        ("end-production", serde_json::json!({"authenticity": "000150"})),
    ];
    for (n, (action, fields)) in steps.into_iter().enumerate() {
        let mut body = serde_json::json!({"request_id": format!("s{n}"), "operator": "ana", "mo": 1});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        assert_eq!(panel.send(action, body).await["ok"], true, "{action}");
    }
    settled(&gw, 3).await;
    // (the floor's time row; Odoo's close books its estimate on any other work order)
    let floors = |sim: &SimOdoo| {
        let rows = sim.productivity();
        let estimate = |r: &&serde_json::Value| {
            r["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Time Tracking:"))
        };
        rows.iter().filter(|r| !estimate(r)).count()
    };
    assert_eq!(floors(&sim), 1, "{:#?}", sim.productivity());
    let rows = sim.productivity().len();
    // and then the power goes
    gw.cut(Cut::Exact);

    // Then, started again, each step is in Odoo once: note, time tracking, the MO closed once
    gw.start();
    settled(&gw, 3).await;
    assert_eq!(notes(&sim, 1).len(), 3, "{:#?}", notes(&sim, 1));
    assert_eq!(floors(&sim), 1, "{:#?}", sim.productivity());
    assert_eq!(sim.productivity().len(), rows, "{:#?}", sim.productivity());
    let closed = sim
        .requests()
        .iter()
        .filter(|r| r.method.as_deref() == Some("button_mark_done") && r.status == 200)
        .count();
    assert_eq!(closed, 1);
    assert_eq!(sim.mo(1).unwrap()["x_roll"], "R-1");
}

/// Eight cuts here (a checkpoint among them; well under a minute); the soak runs a thousand:
/// `SOAK_CUTS=1000 cargo test --release --test powercut -- --nocapture` (see the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_during_command_streams_lose_and_double_nothing() {
    let cuts: usize = std::env::var("SOAK_CUTS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(8);
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(0x2545_F491_4F6C_DD1D);
    let figures = soak::soak(cuts, seed).await;
    figures.print();
    figures.assert_goals();
}
