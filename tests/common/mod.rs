//! Shared by the integration tests: a simulated Odoo, a config pointing at it, and waiting on
//! conditions with deadlines (never bare sleeps).
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use linegate::config::{Config, OdooConfig, StoreConfig};
use linegate::sim::odoo::{SimOdoo, SimOdooConfig};
use rusqlite::Connection;

pub async fn sim(version: u32, mos: usize) -> SimOdoo {
    let sim = SimOdoo::start(SimOdooConfig {
        version,
        ..Default::default()
    })
    .await
    .expect("sim starts");
    sim.seed(mos);
    sim
}

/// Odoo settings for `sim`: its API key, a 1 s interval, a reconcile on every run.
pub fn odoo_config(sim: &SimOdoo) -> OdooConfig {
    let mut odoo = OdooConfig::with_api_key(sim.url(), sim.config().database.clone(), sim.config().api_key.clone());
    odoo.login = Some(sim.config().login.clone());
    odoo.sync_interval = Duration::from_secs(1);
    odoo.reconcile_interval = Duration::ZERO;
    odoo.request_timeout = Duration::from_secs(5);
    odoo
}

pub fn config(odoo: OdooConfig, db: &Path) -> Config {
    Config {
        store: StoreConfig {
            path: db.to_path_buf(),
            retention_days: 30,
        },
        odoo: Some(odoo),
    }
}

/// Polls `condition` until it holds, failing the test after `deadline`.
pub async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + deadline;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A reader's own connection to the agent's database, as another process would have.
pub fn reader(db: &Path) -> Connection {
    let conn = Connection::open(db).expect("open db");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

pub fn count(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    let conn = reader(db);
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

pub fn mo_count(db: &Path) -> i64 {
    count(db, "SELECT count(*) FROM mo WHERE gone_at IS NULL")
}
