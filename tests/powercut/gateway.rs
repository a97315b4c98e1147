//! The agent's own binary with its store on a power-cut disk.

use std::path::PathBuf;

use linegate_sim::powercut::{Cut, Kept, PowerCutDisk};
use rusqlite::Connection;

use crate::common;

/// A power-cut disk on a directory of its own (the tests run as root, as the README says).
pub(crate) fn disk() -> (tempfile::TempDir, PowerCutDisk) {
    let dir = tempfile::tempdir().unwrap();
    let disk = PowerCutDisk::mount(dir.path())
        .expect("mounting the power-cut disk needs /dev/fuse and root: run the tests as the README says");
    (dir, disk)
}

pub(crate) const GATEWAY: &str = "gw-cut";
pub(crate) const PREFIX: &str = "linegate/gw-cut";

/// The agent's binary with its store on a power-cut disk; its config and Odoo key beside, on
/// a disk of their own that no cut touches.
pub(crate) struct Gateway {
    pub(crate) disk: PowerCutDisk,
    pub(crate) db: PathBuf,
    config: PathBuf,
    /// The agent's stderr, every run's.
    log: PathBuf,
    agent: Option<std::process::Child>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Gateway {
    /// `push`: the `[odoo.push]` table's lines.
    pub(crate) fn new(sim: &linegate_sim::odoo::SimOdoo, broker: u16, push: &str) -> Gateway {
        let (disk_dir, disk) = disk();
        let etc = tempfile::tempdir().unwrap();
        let db = disk.path().join("linegate.db");
        let key = etc.path().join("odoo-api-key");
        std::fs::write(&key, &sim.config().api_key).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let config = etc.path().join("linegate.toml");
        // (a delivery cut mid-call is looked up after a second, not Odoo's 150 s: the simulated
        // Odoo carries a call out at once, or never)
        std::fs::write(
            &config,
            format!(
                "[store]\npath = {db:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key_file = {key:?}\n\
                 request_timeout = \"5s\"\nsync_interval = \"1s\"\n[odoo.push]\nsettle_time = \"1s\"\n{push}\n\
                 [mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\ngateway_id = \"{GATEWAY}\"\n",
                sim.url()
            ),
        )
        .unwrap();
        Gateway {
            disk,
            db,
            config,
            log: std::env::var_os("SOAK_AGENT_LOG").map_or_else(|| etc.path().join("agent.log"), PathBuf::from),
            agent: None,
            _dirs: (disk_dir, etc),
        }
    }

    pub(crate) fn start(&mut self) {
        let mut cmd = common::bin::linegate(&self.config, &["run"]);
        // Every run's log, appended (SOAK_AGENT_LOG=FILE: there, at info, to see what a
        // failing soak did)
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        if std::env::var_os("SOAK_AGENT_LOG").is_some() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.stdout(std::process::Stdio::null()).stderr(log);
        let agent = cmd.spawn().unwrap();
        self.agent = Some(agent);
    }

    /// The power goes: the disk stops, the agent dies with it; then the power comes back.
    pub(crate) fn cut(&mut self, cut: Cut) -> Kept {
        self.disk.cut();
        if let Some(mut agent) = self.agent.take() {
            agent.kill().unwrap();
            agent.wait().unwrap();
        }
        self.disk.power_on(cut).unwrap()
    }

    /// A number from the store, read as another process would, while the agent runs (a reader
    /// of its own, read-only: it leaves the files as it found them).
    pub(crate) fn count(&self, sql: &str) -> i64 {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = match Connection::open_with_flags(&self.db, flags) {
            Ok(conn) => conn,
            Err(_) => return 0,
        };
        conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        match conn.query_row(sql, [], |r| r.get(0)) {
            Ok(n) => n,
            Err(e) if e.to_string().contains("no such table") => 0,
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    /// The first column of every row `sql` gives, as text (nothing while there is no store).
    pub(crate) fn texts(&self, sql: &str) -> Vec<String> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let Ok(conn) = Connection::open_with_flags(&self.db, flags) else {
            return Vec::new();
        };
        conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let mut stmt = match conn.prepare(sql) {
            Ok(stmt) => stmt,
            Err(e) if e.to_string().contains("no such table") => return Vec::new(),
            Err(e) => panic!("{sql}: {e}"),
        };
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// Waits until `online` holds, failing with what the agent said (and how it ended, if it
    /// did) when it does not within 30 s.
    pub(crate) async fn wait_online(&mut self, what: &str, mut online: impl FnMut() -> bool) {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !online() {
            let ended = self.agent.as_mut().and_then(|a| a.try_wait().unwrap());
            if ended.is_some() || std::time::Instant::now() > give_up {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "{what}: not online; the agent {ended:?}; its log ends:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// How often the agent found its store damaged and kept it aside, as its log says.
    pub(crate) fn kept_aside(&self) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.matches("the database is damaged: kept aside").count()
    }

    pub(crate) fn undelivered(&self) -> i64 {
        self.count("SELECT count(*) FROM outbox WHERE channel = 'odoo' AND delivered_at IS NULL")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
    }
}
