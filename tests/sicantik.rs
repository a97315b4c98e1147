//! SICANTIK permits as the licensing office relies on them: everything listed and its expiry
//! fetched within the rate limit, nothing fetched twice, unknown numbers retried later, and
//! each reminder produced exactly once — across restarts and days the agent was off.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{reader, wait_until, Display, Mosquitto};
use linegate::config::{Config, MqttConfig, SicantikConfig, StoreConfig};
use linegate::shutdown::{self, Shutdown};
use linegate::store::Store;
use linegate::sync::sicantik::SicantikSync;
use linegate_sim::sicantik::{NewPermit, SicantikFault, SimSicantik, SimSicantikConfig};
use linegate_sim::webhook::Webhook;
use serde_json::Value;

const DAY: i64 = 86_400;

async fn sim(rate_limit: f64) -> SimSicantik {
    SimSicantik::start(SimSicantikConfig {
        rate_limit: Some(rate_limit),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(sim: &SimSicantik, rate_limit: f64) -> SicantikConfig {
    let mut config = SicantikConfig::new(sim.url());
    config.rate_limit = rate_limit;
    config.request_timeout = Duration::from_secs(5);
    config
}

/// A store in a temporary directory, a sync against `sim`, and a clock the test moves.
struct Fixture {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    store: Store,
    sync: SicantikSync,
    clock: Arc<AtomicI64>,
    config: SicantikConfig,
}

impl Fixture {
    fn new(config: SicantikConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("linegate.db");
        let store = Store::open(&db).unwrap();
        let clock = Arc::new(AtomicI64::new(linegate::clock::now_unix()));
        let mut fixture = Fixture {
            sync: Self::make(&config, &store, &clock),
            _dir: dir,
            db,
            store,
            clock,
            config,
        };
        fixture.sync.webhook = true;
        fixture
    }

    fn make(config: &SicantikConfig, store: &Store, clock: &Arc<AtomicI64>) -> SicantikSync {
        let mut sync = SicantikSync::new(config, store.clone()).unwrap();
        let now = clock.clone();
        sync.set_clock(Arc::new(move || now.load(Ordering::Relaxed)));
        sync.webhook = true;
        sync
    }

    /// The agent restarts: a new sync on the same store.
    fn restart(&mut self) {
        self.sync = Self::make(&self.config, &self.store, &self.clock);
    }

    fn advance_days(&self, days: i64) {
        self.clock.fetch_add(days * DAY, Ordering::Relaxed);
    }

    fn today_plus(&self, days: i64) -> String {
        common::regency_date(self.clock.load(Ordering::Relaxed), days)
    }

    async fn run(&mut self) -> linegate::sync::Report {
        self.sync.run(&Shutdown::never()).await.expect("the run succeeds")
    }

    fn count(&self, sql: &str) -> i64 {
        common::count(&self.db, sql)
    }

    /// Reminders queued for the webhook, as (permit, threshold).
    fn queued(&self) -> Vec<(String, u64)> {
        let conn = reader(&self.db);
        let mut stmt = conn
            .prepare("SELECT payload FROM outbox WHERE channel = 'webhook' ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(|p| {
            let v: Value = serde_json::from_str(&p.unwrap()).unwrap();
            (
                v["pendaftaran_id"].as_str().unwrap().to_string(),
                v["threshold"].as_u64().unwrap(),
            )
        })
        .collect()
    }
}

fn detail_calls(sim: &SimSicantik) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.endpoint.starts_with("cekperizinan"))
        .count()
}

fn permit(id: &str, received: &str, expiry: Option<String>) -> NewPermit {
    NewPermit {
        pendaftaran_id: id.into(),
        n_pemohon: "PT Sumber Rejeki".into(),
        n_perizinan: "IZIN USAHA INDUSTRI".into(),
        no_surat: format!("503.530.570/{}/DPMPPTSP-DS/11/2026/KK", &id[12..]),
        d_terima_berkas: received.into(),
        d_berlaku_izin: expiry,
        tgl_surat: received.into(),
        telp_pemohon: "0812-3456-7890".into(),
        a_pemohon: "Jl. Veteran 1, Kabanjahe".into(),
        has_company: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sync_takes_everything_within_the_rate_limit_and_the_second_lists_only() {
    // Given 300 permits (some junk, some without a company record) and a 50/s limit
    let sim = sim(50.0).await;
    let seeded = sim.seed(300);
    let mut f = Fixture::new(config(&sim, 50.0));
    let real: Vec<&NewPermit> = seeded
        .iter()
        .filter(|p| !p.n_pemohon.is_empty() && p.n_pemohon != "0")
        .collect();
    let without_company = real.iter().filter(|p| !p.has_company).count() as i64;

    // When the first sync runs
    let first = f.run().await;

    // Then every real permit is stored, junk skipped, each linked to its type
    assert_eq!(f.count("SELECT count(*) FROM permit"), real.len() as i64);
    assert_eq!(f.count("SELECT count(*) FROM permit WHERE permit_type_id IS NULL"), 0);
    assert_eq!(
        f.count("SELECT count(*) FROM permit_type"),
        sim.permit_types().len() as i64
    );
    // And the expiry is known for every permit with a company record; the others are kept
    assert_eq!(first.details as i64, real.len() as i64 - without_company);
    assert_eq!(
        f.count("SELECT count(*) FROM permit WHERE detail_state = 'unknown'"),
        without_company
    );
    let (id, expiry) = real
        .iter()
        .find(|p| p.has_company)
        .map(|p| (p.pendaftaran_id.clone(), p.d_berlaku_izin.clone()))
        .unwrap();
    let stored: (Option<String>, Option<String>) = reader(&f.db)
        .query_row(
            "SELECT expiry, phone FROM permit WHERE pendaftaran_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(stored.0, expiry);
    assert!(stored.1.unwrap().starts_with("+62"), "phone normalised");
    // And the server never saw more than the limit
    assert_eq!(
        sim.rate_violations(),
        0,
        "peak {:.1}/s",
        sim.peak_rate(Duration::from_secs(1))
    );

    // When a second run follows
    sim.reset_requests();
    let second = f.run().await;

    // Then it only lists (types and the first page): no expiry calls
    assert_eq!(detail_calls(&sim), 0);
    assert_eq!(
        second.requests,
        2,
        "{:?}",
        sim.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert_eq!(second.counts.inserted, 0);
}

#[tokio::test]
async fn new_permits_are_picked_up_by_an_incremental_run() {
    // Given a synced store of 150 permits (two pages)
    let sim = sim(200.0).await;
    sim.seed(150);
    let mut f = Fixture::new(config(&sim, 200.0));
    f.run().await;

    // When three permits are issued
    let today = f.today_plus(0);
    for n in 1..=3 {
        sim.add_permit(permit(
            &format!("99990000000000{n:02}"),
            &today,
            Some(f.today_plus(365)),
        ));
    }
    sim.reset_requests();
    let report = f.run().await;

    // Then the run reads on until a page holds nothing new (the second) and fetches their expiry only
    assert_eq!(report.counts.inserted, 3);
    assert_eq!(report.details, 3);
    assert_eq!(detail_calls(&sim), 3);
    let pages = sim
        .requests()
        .iter()
        .filter(|r| r.endpoint == "listpermohonanterbit")
        .count();
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn unknown_numbers_are_kept_and_retried_on_a_later_day_not_every_run() {
    // Given a permit SICANTIK lists but neither detail endpoint finds (no company record)
    let sim = sim(200.0).await;
    let mut f = Fixture::new(config(&sim, 200.0));
    let mut p = permit("0001000000000001", &f.today_plus(-10), Some(f.today_plus(200)));
    p.has_company = false;
    sim.add_permit(p);

    // When it is synced, it is kept as unknown after asking both endpoints
    let first = f.run().await;
    assert_eq!(first.unknown, 1);
    assert_eq!(detail_calls(&sim), 2);
    assert_eq!(f.count("SELECT count(*) FROM permit WHERE detail_state = 'unknown'"), 1);

    // When the next run comes the same day, it is not asked about
    sim.reset_requests();
    f.run().await;
    assert_eq!(detail_calls(&sim), 0);

    // When two days have passed, it is asked about again
    f.advance_days(2);
    sim.reset_requests();
    let later = f.run().await;
    assert_eq!(later.unknown, 1);
    assert_eq!(detail_calls(&sim), 2);
    assert_eq!(f.count("SELECT detail_attempts FROM permit"), 2);
}

#[tokio::test]
async fn each_reminder_goes_out_once_across_restarts_and_days_the_agent_was_off() {
    // Given a permit that expires in 100 days
    let sim = sim(200.0).await;
    let mut f = Fixture::new(config(&sim, 200.0));
    let id = "0002000000000002";
    sim.add_permit(permit(id, &f.today_plus(-30), Some(f.today_plus(100))));
    f.run().await;
    assert_eq!(f.queued(), vec![]);

    // When 15 days pass (85 left), the 90-day reminder goes out
    f.advance_days(15);
    assert_eq!(f.run().await.reminders, 1);
    // And a restart the same day sends nothing again
    f.restart();
    assert_eq!(f.run().await.reminders, 0);

    // When 35 more days pass (50 left), the 60-day one
    f.advance_days(35);
    f.run().await;

    // When the agent was off from 50 days left to 5 days left, the 30 and 7-day ones both go out
    f.restart();
    f.advance_days(45);
    assert_eq!(f.run().await.reminders, 2);
    assert_eq!(f.run().await.reminders, 0);
    let id = id.to_string();
    assert_eq!(
        f.queued(),
        vec![(id.clone(), 90), (id.clone(), 60), (id.clone(), 30), (id.clone(), 7)]
    );

    // When the permit is renewed for a year (seen at the next weekly recheck), its reminders
    // start afresh: none now, the 90-day one when that comes
    sim.set_expiry(&id, Some(&f.today_plus(365)));
    f.advance_days(8);
    f.run().await;
    let expiry: String = reader(&f.db)
        .query_row("SELECT expiry FROM permit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(expiry, f.today_plus(357));
    assert_eq!(f.queued().len(), 4);
    f.advance_days(270);
    assert_eq!(f.run().await.reminders, 1);
    assert_eq!(f.queued().last().cloned(), Some((id, 90)));
}

#[tokio::test]
async fn a_permit_first_seen_close_to_expiry_gets_one_timely_reminder() {
    // Given permits first seen 20 days and 3 days after their expiry
    let sim = sim(200.0).await;
    let mut f = Fixture::new(config(&sim, 200.0));
    sim.add_permit(permit("0003000000000001", &f.today_plus(-300), Some(f.today_plus(20))));
    sim.add_permit(permit("0003000000000002", &f.today_plus(-300), Some(f.today_plus(-3))));

    // When they are synced
    let report = f.run().await;

    // Then the one still valid gets its nearest reminder (30 days), not a burst of stale ones,
    // and the expired one none
    assert_eq!(report.reminders, 1);
    assert_eq!(f.queued(), vec![("0003000000000001".to_string(), 30)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_is_down_then_up_gets_each_reminder_once() {
    // Given two reminders queued, and a webhook that fails its first three requests
    let sim = sim(200.0).await;
    let mut f = Fixture::new(config(&sim, 200.0));
    sim.add_permit(permit("0004000000000001", &f.today_plus(-300), Some(f.today_plus(20))));
    sim.add_permit(permit("0004000000000002", &f.today_plus(-300), Some(f.today_plus(50))));
    f.run().await;
    assert_eq!(f.queued().len(), 2);
    let hook = Webhook::start(3).await.unwrap();

    // When the outbox is delivered
    let (trigger, shutdown) = shutdown::channel();
    let webhook = linegate::outbox::webhook::Webhook {
        store: f.store.clone(),
        url: hook.url(),
        timeout: Duration::from_secs(5),
        retry_min: Duration::from_millis(100),
        queued: tokio::sync::watch::channel(0).1,
    };
    let task = tokio::spawn(webhook.run(shutdown));

    // Then each reminder arrives once, and the outbox is empty
    wait_until("both reminders delivered", Duration::from_secs(20), || {
        hook.received().len() == 2
    })
    .await;
    wait_until("the outbox emptied", Duration::from_secs(5), || {
        f.count("SELECT count(*) FROM outbox WHERE delivered_at IS NULL") == 0
    })
    .await;
    let bodies: Vec<Value> = hook
        .received()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let mut ids: Vec<&str> = bodies.iter().map(|b| b["pendaftaran_id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["0004000000000001", "0004000000000002"]);
    assert_eq!(bodies[0]["phone"], "+6281234567890");
    trigger.fire();
    task.await.unwrap();
    assert_eq!(hook.received().len(), 2, "nothing delivered twice");
}

#[tokio::test]
async fn bodies_with_php_warnings_are_read_and_garbage_is_a_clear_error() {
    // Given a misconfigured server that prints PHP warnings before every answer
    let sim = SimSicantik::start(SimSicantikConfig {
        php_warnings: true,
        ..Default::default()
    })
    .await
    .unwrap();
    sim.seed(20);
    let mut f = Fixture::new(config(&sim, 200.0));
    // When synced, the permits are read all the same
    let report = f.run().await;
    assert!(report.counts.inserted > 0);

    // When the server answers garbage, as a PHP fatal error or a proxy would, to the permit
    // types and the listing, each asked three times (garbage is worth retrying)
    sim.fail_next(6, SicantikFault::Garbage);
    let err = f.sync.run(&Shutdown::never()).await.unwrap_err();
    // Then the run fails with a clear error, and the store is as it was
    assert!(err.to_string().contains("cannot be read"), "{err}");
    assert_eq!(f.count("SELECT count(*) FROM permit"), report.counts.inserted as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_page_larger_than_allowed_is_refused_with_the_key_to_raise() {
    // Given a gateway allowing SICANTIK answers of 4 KiB, and a listing page of 100 permits
    // (some 30 KB)
    let sim = sim(200.0).await;
    let real = sim
        .seed(150)
        .iter()
        .filter(|p| !p.n_pemohon.is_empty() && p.n_pemohon != "0")
        .count();
    let mut small = config(&sim, 200.0);
    small.max_response = 4 << 10;
    let mut f = Fixture::new(small);
    // When a sync runs, then it fails, naming the setting, and stores nothing half-read
    let err = f.sync.run(&Shutdown::never()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("on listpermohonanterbit is larger than sicantik.max_response (4096 bytes)"),
        "{err}"
    );
    assert_eq!(f.count("SELECT count(*) FROM permit"), 0);
    // And with the default allowance, the same listing is read whole
    f.config.max_response = SicantikConfig::new(sim.url()).max_response;
    f.restart();
    f.run().await;
    assert_eq!(f.count("SELECT count(*) FROM permit"), real as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn displays_get_reminders_and_the_expiring_summary_over_mqtt() {
    // Given an agent with SICANTIK and a broker, and a permit 20 days from expiry
    let broker = Mosquitto::start().await;
    let sim = sim(200.0).await;
    let today = linegate::clock::now_unix();
    let day = |d: i64| common::regency_date(today, d);
    sim.add_permit(permit("0005000000000001", &day(-100), Some(day(20))));
    sim.add_permit(permit("0005000000000002", &day(-100), Some(day(400))));
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        store: StoreConfig {
            path: dir.path().join("linegate.db"),
            retention_days: 30,
            ..Default::default()
        },
        odoo: None,
        mqtt: Some(MqttConfig::new("127.0.0.1", broker.port(), "gw-permits")),
        sicantik: Some(config(&sim, 200.0)),
        web: None,
        log: Default::default(),
    };
    let display = Display::start(broker.port(), "linegate/gw-permits").await;
    let (trigger, shutdown) = shutdown::channel();
    let agent = tokio::spawn(linegate::app::run(config, shutdown));

    // Then the display gets the reminder event and the retained summary
    let reminder = display
        .wait("linegate/gw-permits/permits/reminder", "the reminder", |v| {
            v["pendaftaran_id"] == "0005000000000001"
        })
        .await;
    assert_eq!(
        (reminder["threshold"].clone(), reminder["status"].clone()),
        (30.into(), "critical".into())
    );
    let summary = display
        .wait("linegate/gw-permits/permits/expiring", "the summary", |v| {
            v["counts"]["ok"] == 1
        })
        .await;
    assert_eq!(summary["counts"]["critical"], 1);
    assert_eq!(summary["permits"][0]["days_left"], 20);
    let status = display
        .wait("linegate/gw-permits/status", "status", |v| {
            v["last_sync"]["sicantik"]["ok"] == true
        })
        .await;
    assert_eq!(status["uplink"]["sicantik"]["state"], "up");
    assert_eq!(
        status["progress"]["sicantik"],
        serde_json::json!({"step": "expiry", "done": 2, "total": 2})
    );
    trigger.fire();
    agent.await.unwrap().unwrap();
}

#[tokio::test]
async fn reminders_go_out_while_sicantik_is_down() {
    // Given a stored permit 100 days from expiry
    let sim = sim(200.0).await;
    let mut f = Fixture::new(config(&sim, 200.0));
    sim.add_permit(permit("0006000000000001", &f.today_plus(-30), Some(f.today_plus(100))));
    f.run().await;

    // When SICANTIK is down on the day the 90-day threshold passes
    sim.set_down(true);
    f.advance_days(12);
    let err = f.sync.run(&Shutdown::never()).await.unwrap_err();

    // Then the run reports the outage, and the reminder went out all the same
    assert!(err.is_transient(), "{err}");
    assert_eq!(f.queued(), vec![("0006000000000001".to_string(), 90)]);
}

#[tokio::test]
async fn a_permit_found_without_an_expiry_date_is_asked_again_later() {
    // Given a permit whose detail has no expiry date yet
    let sim = sim(200.0).await;
    let mut f = Fixture::new(config(&sim, 200.0));
    sim.add_permit(permit("0007000000000001", &f.today_plus(-5), None));
    let first = f.run().await;
    assert_eq!((first.details, first.unknown), (0, 1));

    // When the office enters the date, and a few days pass
    sim.set_expiry("0007000000000001", Some(&f.today_plus(365)));
    f.advance_days(3);
    let later = f.run().await;

    // Then it was asked again and the expiry is known
    assert_eq!(later.details, 1);
    let expiry: String = reader(&f.db)
        .query_row("SELECT expiry FROM permit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(expiry, f.today_plus(362));
}
