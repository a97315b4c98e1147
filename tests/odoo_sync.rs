//! The Odoo sync as the floor relies on it: MOs arrive, operator data is never overwritten,
//! renames and departures keep what operators recorded, idle syncs write nothing, and the
//! agent rides out Odoo being down or refusing it. Against the simulated Odoo, with the
//! production client and a real SQLite file.

mod common;

use std::time::Duration;

use common::{config, mo_count, odoo_config, reader, sim, wait_until};
use linegate::command::{Commands, Limits, Request};
use linegate::lock::{sync_purpose, FileLock};
use linegate::mo::Protected;
use linegate::shutdown::{self, Shutdown};
use linegate::store::{self, Store};
use linegate::sync::odoo::OdooSync;
use linegate::sync::scheduler::Scheduler;
use linegate::sync::{Report, SyncError};
use linegate::uplink::Uplink;
use linegate_sim::odoo::{Fault, NewMo, SimOdoo, SimOdooConfig};
use serde_json::json;

const RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// A store in a temporary directory and a sync against `sim`, driven by the test.
struct Fixture {
    sim: SimOdoo,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    store: Store,
    sync: OdooSync,
}

impl Fixture {
    async fn new(sim: SimOdoo) -> Fixture {
        let odoo = odoo_config(&sim);
        Fixture::with(sim, odoo).await
    }

    async fn with(sim: SimOdoo, odoo: linegate::config::OdooConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("linegate.db");
        let store = Store::open(&db).unwrap();
        let sync = OdooSync::new(&odoo, store.clone(), RETENTION).unwrap();
        Fixture {
            sim,
            _dir: dir,
            db,
            store,
            sync,
        }
    }

    async fn sync(&mut self) -> Report {
        self.sync.run(&Shutdown::never()).await.expect("sync succeeds")
    }

    async fn row(&self, id: i64) -> linegate::mo::MoRow {
        self.store
            .call(move |c| store::mo::get(c, id))
            .await
            .unwrap()
            .expect("MO in the store")
    }

    /// A panel's command, as the command layer applies it, received `at` (RFC 3339).
    async fn command(&self, at: &str, action: &str, mut body: serde_json::Value) {
        let limits = Limits {
            max_age: Duration::from_secs(300),
            max_payload: 16 * 1024,
        };
        let commands = Commands::new(self.store.clone(), limits, tokio::sync::mpsc::channel(1).0);
        body["request_id"] = json!(format!("{action}-{at}-{}", body["mo"]));
        body["operator"] = json!("ana");
        let request = Request {
            station: "ws-1".into(),
            action: action.into(),
            payload: body.to_string().into_bytes(),
            received_unix: linegate::clock::parse_rfc3339(at).unwrap(),
        };
        let handled = commands.handle(request).await;
        assert!(handled.reply.ok, "{action} {body}: {:?}", handled.reply.error);
    }
}

#[tokio::test]
async fn a_new_mo_in_odoo_reaches_the_store_while_the_agent_runs() {
    // Given an agent running against an Odoo with 5 MOs
    let sim = sim(19, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let (trigger, shutdown) = shutdown::channel();
    let agent = tokio::spawn(linegate::app::run(config(odoo_config(&sim), &db), shutdown));
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 5).await;

    // When a planner creates an MO in Odoo
    let id = sim.create_mo(NewMo {
        qty: 12.0,
        origin: Some("SO/9001".into()),
        ..Default::default()
    });

    // Then the next scheduled sync brings it into the store, with Odoo's values
    wait_until("the new MO", Duration::from_secs(10), || mo_count(&db) == 6).await;
    let (name, qty, origin): (String, f64, String) = reader(&db)
        .query_row("SELECT name, product_qty, origin FROM mo WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((name.as_str(), qty, origin.as_str()), ("WH/MO/00006", 12.0, "SO/9001"));
    trigger.fire();
    agent.await.unwrap().unwrap();
}

#[tokio::test]
async fn operators_register_start_change_over_and_end_while_syncs_change_upstream_fields() {
    // Given two MOs synced from Odoo
    let mut f = Fixture::new(sim(19, 2).await).await;
    f.sync().await;
    let (current, next) = (1, 2);

    // When operators register the first MO and Odoo changes its quantity, then a sync runs
    let registered = Protected {
        auth_first: Some("000100".into()),
        roll_number: Some("R-7".into()),
        ready_for_production: true,
        ..Default::default()
    };
    f.command(
        "2026-11-22T08:00:00Z",
        "register-mo",
        json!({"mo": current, "auth_first": "000100", "roll_number": "R-7"}),
    )
    .await;
    f.sim.write_mo(
        current,
        serde_json::Map::from_iter([("product_qty".to_string(), json!(40.0))]),
    );
    f.sync().await;
    // Then the upstream change arrived and the operator's data is untouched
    let row = f.row(current).await;
    assert_eq!(row.upstream.product_qty, 40.0);
    assert_eq!(row.protected, registered);

    // When production starts, Odoo moves the MO to progress, and a sync runs
    let started = Protected {
        leader_id: Some("007".into()),
        date_start: Some("2026-11-22T08:01:00Z".into()),
        ..registered
    };
    f.command(
        "2026-11-22T08:01:00Z",
        "start-production",
        json!({"mo": current, "leader_id": "007"}),
    )
    .await;
    f.sim.set_state(current, "progress");
    f.sync().await;
    let row = f.row(current).await;
    assert_eq!(row.upstream.state, "progress");
    assert_eq!(row.protected, started);
    assert_eq!(row.phase.as_str(), "running");

    // When a changeover hands the line to the next MO, and Odoo renames things meanwhile
    let ended = Protected {
        auth_last: Some("000499".into()),
        date_finished: Some("2026-11-22T09:00:00Z".into()),
        ..started.clone()
    };
    let taken_over = Protected {
        auth_first: Some("000500".into()),
        roll_number: Some("R-8".into()),
        leader_id: Some("007".into()),
        ready_for_production: true,
        date_start: Some("2026-11-22T09:00:00Z".into()),
        ..Default::default()
    };
    f.command(
        "2026-11-22T08:30:00Z",
        "register-mo",
        json!({"mo": next, "auth_first": "000400", "roll_number": "R-1"}),
    )
    .await;
    f.command(
        "2026-11-22T09:00:00Z",
        "changeover",
        json!({"current_mo": current, "next_mo": next, "new_auth": "000500", "roll_number": "R-8"}),
    )
    .await;
    f.sim.write_mo(
        next,
        serde_json::Map::from_iter([("origin".to_string(), json!("SO/CHANGED"))]),
    );
    f.sync().await;
    assert_eq!(f.row(current).await.protected, ended);
    let row = f.row(next).await;
    assert_eq!(row.upstream.origin.as_deref(), Some("SO/CHANGED"));
    assert_eq!(row.protected, taken_over);

    // When the last MO ends and Odoo changes every upstream field it can, then two syncs run
    let finished = Protected {
        auth_last: Some("000999".into()),
        date_finished: Some("2026-11-22T10:00:00Z".into()),
        ..taken_over
    };
    f.command(
        "2026-11-22T10:00:00Z",
        "end-production",
        json!({"mo": next, "authenticity": "001000"}),
    )
    .await;
    f.sim.write_mo(
        next,
        serde_json::Map::from_iter([
            ("product_qty".to_string(), json!(77.0)),
            ("qty_producing".to_string(), json!(10.0)),
            ("date_deadline".to_string(), json!("2026-12-01 00:00:00")),
        ]),
    );
    f.sync().await;
    f.sync().await;
    // Then every protected value is the operator's last write
    assert_eq!(f.row(current).await.protected, ended);
    let row = f.row(next).await;
    assert_eq!(row.protected, finished);
    assert_eq!((row.upstream.product_qty, row.upstream.qty_producing), (77.0, 10.0));
    assert_eq!(row.upstream.date_deadline.as_deref(), Some("2026-12-01 00:00:00"));
    assert_eq!(row.phase.as_str(), "finished");
}

#[tokio::test]
async fn a_backorder_rename_keeps_the_operators_data_on_the_same_mo() {
    // Given an MO of 5 that operators started
    let sim = sim(19, 0).await;
    let id = sim.create_mo(NewMo {
        qty: 5.0,
        ..Default::default()
    });
    let mut f = Fixture::new(sim).await;
    f.sync().await;
    let started = Protected {
        auth_first: Some("1".into()),
        ready_for_production: true,
        leader_id: Some("007".into()),
        date_start: Some("2026-11-22T08:00:00Z".into()),
        ..Default::default()
    };
    f.command(
        "2026-11-22T07:59:00Z",
        "register-mo",
        json!({"mo": id, "auth_first": "1", "mid_production": true}),
    )
    .await;
    f.command(
        "2026-11-22T08:00:00Z",
        "start-production",
        json!({"mo": id, "leader_id": "007"}),
    )
    .await;

    // When Odoo marks 2 done with a backorder (renaming the MO) and a sync runs
    let backorder = f.sim.backorder(id, 2.0);
    let report = f.sync().await;

    // Then the MO keeps its id and operator data under its new name, and shows it left the domain
    let row = f.row(id).await;
    assert_eq!(row.upstream.name, "WH/MO/00001-001");
    assert_eq!(row.upstream.state, "done");
    assert_eq!(row.protected, started);
    assert!(row.gone_at.is_some());
    assert_eq!(report.gone, 1);
    // And the backorder is a new MO with the remaining quantity and no operator data
    let new = f.row(backorder).await;
    assert_eq!(
        (new.upstream.name.as_str(), new.upstream.product_qty),
        ("WH/MO/00001-002", 3.0)
    );
    assert_eq!(new.protected, Protected::default());
    // And the current name finds the right MO
    let by_name = f
        .store
        .call(|c| store::mo::get_by_name(c, "WH/MO/00001-001"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.upstream.id, id);
}

#[tokio::test]
async fn mos_that_leave_the_domain_keep_their_operator_data() {
    // Given three synced MOs, two of them with operator data
    let mut f = Fixture::new(sim(19, 3).await).await;
    f.sync().await;
    let data = Protected {
        auth_first: Some("42".into()),
        ready_for_production: true,
        ..Default::default()
    };
    for mo in [1, 2] {
        f.command(
            "2026-11-22T08:00:00Z",
            "register-mo",
            json!({"mo": mo, "auth_first": "42", "mid_production": true}),
        )
        .await;
    }

    // When one is cancelled and one deleted in Odoo, and a sync (with its reconcile) runs
    f.sim.set_state(1, "cancel");
    f.sim.delete_mo(2);
    let report = f.sync().await;

    // Then both are marked gone, not deleted, with their operator data; the cancel is visible
    assert_eq!(report.gone, 2);
    let cancelled = f.row(1).await;
    assert_eq!(cancelled.upstream.state, "cancel");
    assert_eq!(cancelled.protected, data);
    assert!(cancelled.gone_at.is_some());
    let deleted = f.row(2).await;
    assert_eq!(deleted.protected, data);
    assert!(deleted.gone_at.is_some());
    assert_eq!(mo_count(&f.db), 1);

    // When the cancelled MO is brought back into the domain
    f.sim.set_state(1, "confirmed");
    f.sync().await;
    // Then it is present again, operator data intact
    let back = f.row(1).await;
    assert_eq!((back.gone_at, back.protected), (None, data));
}

#[tokio::test]
async fn an_idle_sync_writes_nothing_to_the_database() {
    // Given a store synced with 300 MOs (two pages)
    let sim = sim(19, 300).await;
    let mut odoo = odoo_config(&sim);
    odoo.page_size = 200;
    let mut f = Fixture::with(sim, odoo).await;
    let first = f.sync().await;
    assert_eq!(first.counts.inserted, 300);
    let watcher = reader(&f.db);
    let data_version =
        |c: &rusqlite::Connection| -> i64 { c.query_row("PRAGMA data_version", [], |r| r.get(0)).unwrap() };
    let before = data_version(&watcher);
    // A later second than the first sync, so anything stamped with the time would differ.
    let first_second = linegate::clock::now_unix();
    wait_until("the next second", Duration::from_secs(2), || {
        linegate::clock::now_unix() > first_second
    })
    .await;

    // When a sync runs with nothing new in Odoo (it re-reads the overlap window and reconciles)
    let idle = f.sync().await;

    // Then nothing was inserted or updated, and no transaction committed anything at all
    assert_eq!((idle.counts.inserted, idle.counts.updated), (0, 0));
    assert_eq!(idle.counts.unchanged, idle.fetched);
    assert_eq!(data_version(&watcher), before, "the idle sync committed a write");
}

#[tokio::test]
async fn transfers_are_found_with_one_request_per_page() {
    // Given 450 MOs (three pages of 200), about half with an origin that has a delivery
    let sim = sim(19, 450).await;
    let mut odoo = odoo_config(&sim);
    odoo.page_size = 200;
    let mut f = Fixture::with(sim, odoo).await;

    // When the first sync runs
    let report = f.sync().await;

    // Then stock.picking was asked once per page, not once per MO
    let picking_calls = f
        .sim
        .requests()
        .iter()
        .filter(|r| r.model.as_deref() == Some("stock.picking"))
        .count();
    assert_eq!(report.fetched, 450);
    assert_eq!(picking_calls, 3, "{} requests in all", report.requests);
    // And an MO whose origin has a delivery got it; one named by a picking got that one
    let with_origin = f.row(2).await;
    assert_eq!(with_origin.upstream.origin.as_deref(), Some("SO/0001"));
    assert!(with_origin.upstream.transfer_name.is_some());
    let named = f.row(5).await;
    assert_eq!(named.upstream.origin, None);
    assert!(
        named.upstream.transfer_id.is_some(),
        "a picking's origin names WH/MO/00005"
    );
    // And an MO with neither has none
    assert_eq!(f.row(1).await.upstream.transfer_id, None);
}

#[tokio::test]
async fn a_row_committed_late_with_an_old_write_date_is_still_picked_up() {
    // Given a synced store
    let mut f = Fixture::new(sim(19, 10).await).await;
    f.sync().await;

    // When a long Odoo transaction commits a change stamped 30 s before rows already seen
    f.sim.write_mo(
        3,
        serde_json::Map::from_iter([("product_qty".to_string(), json!(99.0))]),
    );
    f.sim.backdate_write(3, 30);
    let report = f.sync().await;

    // Then the overlap window catches it
    assert_eq!(report.counts.updated, 1);
    assert_eq!(f.row(3).await.upstream.product_qty, 99.0);
}

/// The sync's stored state value `key`.
fn state(db: &std::path::Path, key: &str) -> Option<String> {
    reader(db)
        .query_row(
            "SELECT value FROM sync_state WHERE source = 'odoo' AND key = ?1",
            [key],
            |r| r.get(0),
        )
        .ok()
}

#[tokio::test]
async fn an_idle_interval_is_one_request_reading_no_mo_at_any_store_size() {
    for mos in [500, 5_000] {
        // Given a store synced with MOs last written ten minutes ago and more, and a
        // reconcile not due
        let sim = sim(19, mos).await;
        for id in sim.mo_ids() {
            sim.backdate_write(id, 600 + id);
        }
        let mut odoo = odoo_config(&sim);
        odoo.reconcile_interval = Duration::from_secs(3600);
        let mut f = Fixture::with(sim, odoo).await;
        assert_eq!(f.sync().await.fetched, mos as u64);

        // When the next interval finds nothing changed in Odoo
        f.sim.reset_requests();
        let idle = f.sync().await;

        // Then it asked once and read nothing: the pass before settled everything behind it
        assert_eq!((idle.requests, idle.fetched), (1, 0), "{mos} MOs: {idle}");
        assert_eq!(f.sim.requests().len(), 1);
    }
}

#[tokio::test]
async fn a_late_commit_stamped_at_the_settled_floor_is_caught_and_one_before_it_is_the_reconciles() {
    // Given a synced store whose MOs were written long ago, a reconcile not due, and the floor
    // the pass left: Odoo's time before it, less the overlap
    let sim = sim(19, 10).await;
    for id in sim.mo_ids() {
        sim.backdate_write(id, 600);
    }
    let mut odoo = odoo_config(&sim);
    odoo.reconcile_interval = Duration::from_secs(3600);
    let mut f = Fixture::with(sim, odoo).await;
    let before = linegate::clock::now_unix();
    f.sync().await;
    let after = linegate::clock::now_unix();
    let settled = state(&f.db, "settled").expect("the pass left its floor");
    let floor = linegate::clock::parse_odoo(&settled).unwrap();
    // (Odoo's time during the pass, less the whole overlap)
    assert!((before - 60..=after - 60).contains(&floor), "{settled}");

    // When two transactions that ran longer than the sync's pass commit: one stamped at the
    // floor (it began within the overlap of that pass), one stamped a second before it
    for (id, qty, stamp) in [(3, 99.0, floor), (4, 77.0, floor - 1)] {
        f.sim.write_mo(
            id,
            serde_json::Map::from_iter([("product_qty".to_string(), json!(qty))]),
        );
        let written = f.sim.mo(id).unwrap()["write_date"]
            .as_str()
            .map(str::to_string)
            .unwrap();
        f.sim
            .backdate_write(id, linegate::clock::parse_odoo(&written).unwrap() - stamp);
    }
    let report = f.sync().await;

    // Then the one at the floor is read by the incremental pass; the one before it, which a
    // transaction longer than the overlap would take, is left to the reconcile
    assert_eq!(report.counts.updated, 1, "{report}");
    assert_eq!(f.row(3).await.upstream.product_qty, 99.0);
    assert_ne!(f.row(4).await.upstream.product_qty, 77.0);
    let mut odoo = odoo_config(&f.sim);
    odoo.reconcile_interval = Duration::ZERO;
    let mut again = OdooSync::new(&odoo, f.store.clone(), RETENTION).unwrap();
    again.run(&Shutdown::never()).await.unwrap();
    assert_eq!(f.row(4).await.upstream.product_qty, 77.0);
}

#[tokio::test]
async fn a_date_header_ten_minutes_ahead_does_not_hide_a_change_from_the_next_pass() {
    // Given a synced store behind a proxy whose clock runs ten minutes ahead of Odoo's
    // database, MOs written long ago, and a reconcile not due
    let sim = sim(19, 10).await;
    for id in sim.mo_ids() {
        sim.backdate_write(id, 600);
    }
    sim.date_ahead(600);
    let mut odoo = odoo_config(&sim);
    odoo.reconcile_interval = Duration::from_secs(3600);
    let mut f = Fixture::with(sim, odoo).await;
    f.sync().await;

    // When an MO changes now (stamped by the database's clock)
    f.sim.write_mo(
        3,
        serde_json::Map::from_iter([("product_qty".to_string(), json!(99.0))]),
    );
    let report = f.sync().await;

    // Then the next pass reads it: the floor follows the gateway's clock, not the proxy's
    assert_eq!(report.counts.updated, 1, "{report}");
    assert_eq!(f.row(3).await.upstream.product_qty, 99.0);
}

#[tokio::test]
async fn a_change_committed_beyond_the_overlap_is_repaired_by_the_reconcile() {
    // Given a synced store
    let mut f = Fixture::new(sim(19, 10).await).await;
    f.sync().await;

    // When a change commits stamped 120 s back, beyond the incremental sync's overlap
    f.sim.write_mo(
        3,
        serde_json::Map::from_iter([("product_qty".to_string(), json!(99.0))]),
    );
    f.sim.backdate_write(3, 120);
    let report = f.sync().await;

    // Then the reconcile sees the write date differ and reads the MO again
    assert_eq!(report.counts.updated, 1);
    let row = f.row(3).await;
    assert_eq!(row.upstream.product_qty, 99.0);
    let upstream = f.sim.mo(3).unwrap();
    assert_eq!(row.upstream.write_date, upstream["write_date"].as_str().unwrap());
}

#[tokio::test]
async fn a_transfer_created_later_for_an_unchanged_mo_is_linked() {
    // Given an MO without a transfer, synced, whose write date is older than the overlap
    let sim = sim(19, 0).await;
    let old = sim.create_mo(NewMo {
        qty: 4.0,
        ..Default::default()
    });
    sim.backdate_write(old, 120);
    sim.create_mo(NewMo {
        qty: 1.0,
        ..Default::default()
    });
    let mut f = Fixture::new(sim).await;
    f.sync().await;
    assert_eq!(f.row(old).await.upstream.transfer_id, None);

    // When a delivery naming it is created in Odoo (the MO itself does not change), and a sync runs
    let picking = f.sim.create_picking("WH/MO/00001");
    f.sim.reset_requests();
    let report = f.sync().await;

    // Then the reconcile linked the transfer, with one stock.picking request for its page
    let row = f.row(old).await;
    assert_eq!(row.upstream.transfer_id, Some(picking));
    assert_eq!(row.upstream.transfer_name.as_deref(), Some("WH/OUT/00001"));
    assert_eq!(report.counts.updated, 1);
    let picking_calls = f
        .sim
        .requests()
        .iter()
        .filter(|r| r.model.as_deref() == Some("stock.picking"))
        .count();
    assert_eq!(
        picking_calls, 2,
        "one for the incremental page, one for the reconcile's"
    );

    // And the next sync finds nothing to change
    let again = f.sync().await;
    assert_eq!((again.counts.inserted, again.counts.updated), (0, 0));
}

#[tokio::test]
async fn odoo_saas_version_answers_are_understood() {
    for (version, expect) in [(18, "jsonrpc"), (19, "json2")] {
        // Given an Odoo SaaS, whose version_info says ["saas~18", 1, 0, "final", 0, "e"]
        let sim = SimOdoo::start(SimOdooConfig {
            version,
            saas: true,
            ..Default::default()
        })
        .await
        .unwrap();
        sim.seed(3);
        let mut f = Fixture::new(sim).await;

        // When the agent syncs
        let report = f.sync().await;

        // Then it took the major version from the string and used that version's API
        assert_eq!(report.counts.inserted, 3, "saas~{version}");
        let (_, major) = f.sync.client().api().await.unwrap();
        assert_eq!(major, version);
        let apis: Vec<&str> = f
            .sim
            .requests()
            .iter()
            .filter(|r| r.model.is_some())
            .map(|r| r.api)
            .collect();
        assert!(apis.iter().all(|a| *a == expect), "saas~{version}: {apis:?}");
    }
}

#[tokio::test]
async fn another_sync_holding_the_lock_does_not_report_the_uplink_down() {
    // Given a `linegate sync --once` holding the sync lock, and an uplink last seen up
    let sim = sim(19, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let store = Store::open(&db).unwrap();
    let sync = OdooSync::new(&odoo_config(&sim), store.clone(), RETENTION).unwrap();
    let lock = FileLock::try_acquire(&db, &sync_purpose("odoo"))
        .unwrap()
        .expect("the lock is free");
    let (uplink_tx, mut uplink) = tokio::sync::watch::channel(Uplink::Up);
    let (_sync_now, triggers) = tokio::sync::mpsc::channel(1);
    let (trigger, shutdown) = shutdown::channel();
    let scheduler = Scheduler {
        sync,
        store,
        db: db.clone(),
        interval: Duration::from_secs(3600),
        triggers,
        uplink: uplink_tx,
        changes: None,
        heart: linegate::heartbeat::Heart::detached("test"),
        runs: linegate::sync::runs::Runs::every_run(),
    };

    // When the agent's scheduler runs and finds the lock taken
    let task = tokio::spawn(scheduler.run(shutdown));

    // Then the uplink keeps its state: nothing is known to be wrong with Odoo
    let changed = tokio::time::timeout(Duration::from_secs(1), uplink.changed()).await;
    assert!(changed.is_err(), "the uplink became {:?}", *uplink.borrow());
    // And once the other sync is done, the scheduler runs its own soon, long before the interval
    drop(lock);
    let ok_runs = || common::count(&db, "SELECT count(*) FROM sync_run WHERE ok");
    wait_until("the scheduler's retried sync", Duration::from_secs(10), || {
        ok_runs() == 1
    })
    .await;
    assert_eq!(*uplink.borrow(), Uplink::Up);
    trigger.fire();
    task.await.unwrap();
}

#[tokio::test]
async fn passing_faults_are_retried_within_the_run() {
    // Given an Odoo whose proxy answers 503 twice
    let mut f = Fixture::new(sim(19, 4).await).await;
    f.sim.fail_next(2, Fault::Status503);
    // When a sync runs
    let report = f.sync().await;
    // Then it succeeded after retrying
    assert_eq!(report.counts.inserted, 4);
    assert_eq!(f.sim.requests().iter().filter(|r| r.status == 503).count(), 2);
}

#[tokio::test]
async fn a_captive_portal_or_a_cut_answer_is_retried_as_a_passing_fault() {
    // Given an Odoo behind a proxy that first answers 200 with a hotspot's login page, then
    // with Odoo's answer cut in half
    let mut f = Fixture::new(sim(19, 4).await).await;
    f.sim.fail_next(1, Fault::Html200);
    f.sim.fail_next(1, Fault::Truncated);
    // When a sync runs
    let report = f.sync().await;
    // Then it retried at once and succeeded, instead of waiting for the next interval
    assert_eq!(report.counts.inserted, 4);
    // And an HTML page every time is a transient failure, so the scheduler backs off briefly
    f.sim.fail_next(3, Fault::Html200);
    let err = f.sync.run(&Shutdown::never()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("not Odoo's"), "{err}");
}

#[tokio::test]
async fn a_huge_answer_is_refused_unread_with_the_key_to_raise() {
    // Given a gateway allowing answers of 1 MiB, and an Odoo that answers with 10 MB, saying so
    // up front or streaming it chunked with no length said
    let sim = sim(19, 4).await;
    let mut odoo = odoo_config(&sim);
    odoo.max_response = 1 << 20;
    let mut f = Fixture::with(sim, odoo).await;
    for fault in [Fault::Huge(10_000_000), Fault::HugeChunked(10_000_000)] {
        f.sim.fail_next(1, fault);
        // When a sync runs, then it fails at once, naming the setting, and is not retried as
        // if passing (the next answer would be as large)
        let err = f.sync.run(&Shutdown::never()).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("larger than odoo.max_response (1048576 bytes)"),
            "{fault:?}: {err}"
        );
        assert!(!err.is_transient(), "{fault:?}: {err}");
    }
    // And the next sync, with a normal answer, works
    assert_eq!(f.sync().await.counts.inserted, 4);
}

#[tokio::test]
async fn an_answer_that_trickles_in_times_out_instead_of_hanging() {
    // Given an Odoo whose answers come a byte every 50 ms, and a 1 s request timeout
    let sim = sim(19, 2).await;
    let mut odoo = odoo_config(&sim);
    odoo.request_timeout = Duration::from_secs(1);
    let mut f = Fixture::with(sim, odoo).await;
    f.sim.fail_next(3, Fault::Trickle(Duration::from_millis(50)));
    // When a sync runs, then it gives up with a timeout, a passing fault
    let err = f.sync.run(&Shutdown::never()).await.unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("did not answer within"),
        "{err}"
    );
}

#[tokio::test]
async fn every_supported_version_and_api_syncs() {
    struct Case {
        version: u32,
        api: &'static str,
        password: bool,
        expect: &'static str,
    }
    let cases = [
        Case {
            version: 16,
            api: "auto",
            password: true,
            expect: "jsonrpc",
        },
        Case {
            version: 17,
            api: "auto",
            password: false,
            expect: "jsonrpc",
        },
        Case {
            version: 18,
            api: "jsonrpc",
            password: false,
            expect: "jsonrpc",
        },
        Case {
            version: 19,
            api: "auto",
            password: false,
            expect: "json2",
        },
        Case {
            version: 19,
            api: "jsonrpc",
            password: true,
            expect: "jsonrpc",
        },
    ];
    for case in cases {
        // Given an Odoo of this version
        let sim = sim(case.version, 7).await;
        let mut odoo = odoo_config(&sim);
        odoo.api = serde_json::from_value(json!(case.api)).unwrap();
        if case.password {
            odoo.set_password(&sim.config().login, &sim.config().password);
        }
        let mut f = Fixture::with(sim, odoo).await;
        // When the agent syncs
        let report = f.sync().await;
        // Then every MO arrived, with the planned dates under this version's field names
        assert_eq!(report.counts.inserted, 7, "Odoo {} {}", case.version, case.api);
        let row = f.row(1).await;
        assert!(
            row.upstream.planned_start.is_some() && row.upstream.planned_finish.is_some(),
            "{}",
            case.version
        );
        let apis: Vec<&str> = f
            .sim
            .requests()
            .iter()
            .filter(|r| r.model.is_some())
            .map(|r| r.api)
            .collect();
        assert!(
            apis.iter().all(|a| *a == case.expect),
            "Odoo {}: {apis:?}",
            case.version
        );
    }
}

#[tokio::test]
async fn instance_fields_are_fetched_and_a_missing_one_is_named() {
    // Given an Odoo that has x_group_worker but not x_note
    let sim = SimOdoo::start(SimOdooConfig {
        custom_fields: vec!["x_group_worker".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut custom = serde_json::Map::new();
    custom.insert("x_group_worker".into(), json!("Group B"));
    sim.create_mo(NewMo {
        qty: 1.0,
        custom,
        ..Default::default()
    });
    let mut odoo = odoo_config(&sim);
    odoo.fields.group_worker = Some("x_group_worker".into());

    // When the configured field exists, it is synced
    let mut f = Fixture::with(sim, odoo.clone()).await;
    f.sync().await;
    assert_eq!(f.row(1).await.upstream.group_worker.as_deref(), Some("Group B"));

    // When a configured field does not exist, the sync fails naming the key and the field
    odoo.fields.note = Some("x_note".into());
    let mut sync = OdooSync::new(&odoo, f.store.clone(), RETENTION).unwrap();
    let err = sync.run(&Shutdown::never()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "odoo.fields.note: Odoo has no field `x_note` on mrp.production"
    );
    assert!(!err.is_transient(), "a missing field is not retried soon");
}

#[tokio::test]
async fn a_wrong_password_is_not_tried_again_at_once() {
    // Given an Odoo 17 and a wrong password
    let sim = sim(17, 3).await;
    let mut odoo = odoo_config(&sim);
    odoo.set_password(&sim.config().login, "wrong");
    let mut f = Fixture::with(sim, odoo).await;

    // When two syncs run back to back
    let first = f.sync.run(&Shutdown::never()).await.unwrap_err();
    let second = f.sync.run(&Shutdown::never()).await.unwrap_err();

    // Then both say the credentials were refused, but Odoo saw only one login attempt
    assert!(first.to_string().contains("refused the credentials"), "{first}");
    assert!(second.to_string().contains("not trying again"), "{second}");
    let logins = f
        .sim
        .requests()
        .iter()
        .filter(|r| r.method.as_deref() == Some("authenticate"))
        .count();
    assert_eq!(logins, 1);
}

#[tokio::test]
async fn a_wrong_key_is_reported_once_and_not_retried_in_a_loop() {
    // Given an agent whose API key Odoo no longer accepts, with a long interval
    let sim = sim(19, 3).await;
    sim.set_api_key("rotated-by-the-admin");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut odoo = odoo_config(&sim);
    odoo.sync_interval = Duration::from_secs(3600);
    let (trigger, shutdown) = shutdown::channel();
    let agent = tokio::spawn(linegate::app::run(config(odoo, &db), shutdown));

    // When the first sync has failed
    let failed = || common::count(&db, "SELECT count(*) FROM sync_run WHERE NOT ok");
    wait_until("the failed run", Duration::from_secs(10), || failed() == 1).await;

    // Then the run records a clear error, and no further request follows
    let error: String = reader(&db)
        .query_row("SELECT error FROM sync_run WHERE NOT ok", [], |r| r.get(0))
        .unwrap();
    assert!(
        error.contains("Odoo refused the credentials: Invalid apikey"),
        "{error}"
    );
    let requests = sim.requests().len();
    let more = tokio::time::timeout(Duration::from_secs(3), async {
        while sim.requests().len() == requests {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(more.is_err(), "the agent retried a refused key at once");
    trigger.fire();
    agent.await.unwrap().unwrap();
}

#[tokio::test]
async fn when_odoo_is_down_the_store_still_answers_and_sync_resumes_by_itself() {
    // Given a running agent with a synced store
    let sim = sim(19, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let (trigger, shutdown) = shutdown::channel();
    let agent = tokio::spawn(linegate::app::run(config(odoo_config(&sim), &db), shutdown));
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 4).await;

    // When Odoo goes down and a planner's MO waits there
    sim.set_down(true);
    let failed = || common::count(&db, "SELECT count(*) FROM sync_run WHERE NOT ok");
    wait_until("a failed run", Duration::from_secs(15), || failed() >= 1).await;
    let id = sim.create_mo(NewMo {
        qty: 3.0,
        ..Default::default()
    });

    // Then the store still answers from what it has
    let status = linegate::store::open(&db)
        .and_then(|db| store::sync::status(&db))
        .unwrap();
    assert_eq!(status.mos, 4);
    assert!(!status.sources[0].last.ok);

    // When Odoo comes back, the agent syncs by itself
    sim.set_down(false);
    wait_until("the MO made while Odoo was down", Duration::from_secs(20), || {
        common::count(&db, &format!("SELECT count(*) FROM mo WHERE id = {id}")) == 1
    })
    .await;
    trigger.fire();
    agent.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_mid_sync_leaves_only_whole_pages() {
    // Given a slow Odoo with 400 MOs, synced in pages of 50
    let sim = sim(19, 400).await;
    sim.set_latency(Duration::from_millis(40));
    let mut odoo = odoo_config(&sim);
    odoo.page_size = 50;
    let mut f = Fixture::with(sim, odoo).await;

    // When shutdown fires after the first pages have committed
    let (trigger, shutdown) = shutdown::channel();
    let db = f.db.clone();
    let run = tokio::spawn(async move {
        let outcome = f.sync.run(&shutdown).await;
        (outcome, f)
    });
    wait_until("the first page", Duration::from_secs(10), || mo_count(&db) >= 50).await;
    trigger.fire();
    let (outcome, mut f) = run.await.unwrap();

    // Then the run stopped early, and the store holds whole pages with a matching cursor
    assert!(matches!(outcome, Err(SyncError::Cancelled)), "{outcome:?}");
    let stored = mo_count(&db);
    assert!(stored < 400 && stored % 50 == 0, "{stored} MOs stored");
    let cursor: String = reader(&db)
        .query_row("SELECT value FROM sync_state WHERE key = 'cursor'", [], |r| r.get(0))
        .unwrap();
    let max_id = common::count(&db, "SELECT max(id) FROM mo");
    assert!(cursor.ends_with(&format!("|{max_id}")), "{cursor} vs {max_id}");
    // And the next run completes the store
    f.sim.set_latency(Duration::ZERO);
    f.sync().await;
    assert_eq!(mo_count(&db), 400);
}
