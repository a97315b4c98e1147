//! Shared by the integration tests: a simulated Odoo, a config pointing at it, and waiting on
//! conditions with deadlines (never bare sleeps).
#![allow(dead_code)]

pub(crate) mod bin;
pub(crate) mod browser;

use std::path::Path;
use std::time::Duration;

use linegate::config::{Config, OdooConfig, StoreConfig};
use linegate_sim::odoo::{SimOdoo, SimOdooConfig};
use rusqlite::Connection;

/// The `YYYY-MM-DD` date `days` after `unix` in SICANTIK's default zone (Asia/Jakarta, UTC+7),
/// where the agent counts a permit's days left: from 17:00 UTC the UTC date is a day behind.
pub(crate) fn regency_date(unix: i64, days: i64) -> String {
    const JAKARTA: i64 = 7 * 3600;
    linegate::clock::format_odoo(unix + JAKARTA + days * 86_400)[..10].to_string()
}

/// The agent in this process (`app::run`), stopped as SIGTERM would stop it.
pub(crate) struct Agent {
    trigger: linegate::shutdown::Trigger,
    task: tokio::task::JoinHandle<Result<(), linegate::app::AppError>>,
}

impl Agent {
    pub(crate) async fn start(config: Config) -> Agent {
        let (trigger, shutdown) = linegate::shutdown::channel();
        let task = tokio::spawn(linegate::app::run(config, shutdown));
        Agent { trigger, task }
    }

    /// Starts it and waits until it says, on the broker at `port`, that it is online: by then
    /// it is subscribed to the commands (it subscribes first), so none sent after is lost.
    pub(crate) async fn start_online(config: Config, port: u16, prefix: &str) -> Agent {
        let display = Display::start(port, prefix).await;
        let agent = Agent::start(config).await;
        display
            .wait(&format!("{prefix}/status"), "the agent online", |v| {
                v["state"] == "online"
            })
            .await;
        agent
    }

    /// Whether it has stopped on its own.
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// How it ended, once it has ([`Agent::is_finished`]).
    pub(crate) async fn outcome(self) -> Result<(), linegate::app::AppError> {
        self.task.await.unwrap()
    }

    /// Stops it and waits until it has, asserting that it stopped cleanly.
    pub(crate) async fn stop(self) {
        self.trigger.fire();
        self.task.await.unwrap().unwrap();
    }
}

pub(crate) async fn sim(version: u32, mos: usize) -> SimOdoo {
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
pub(crate) fn odoo_config(sim: &SimOdoo) -> OdooConfig {
    odoo_config_as(sim, &sim.config().api_key)
}

/// [`odoo_config`] with another user's API key.
pub(crate) fn odoo_config_as(sim: &SimOdoo, key: &str) -> OdooConfig {
    let mut odoo = OdooConfig::with_api_key(sim.url(), sim.config().database.clone(), key);
    odoo.login = Some(sim.config().login.clone());
    odoo.sync_interval = Duration::from_secs(1);
    odoo.reconcile_interval = Duration::ZERO;
    odoo.request_timeout = Duration::from_secs(5);
    // The simulated Odoo carries a call out at once or never (unless a test says otherwise):
    // an unanswered one has settled within a second.
    odoo.push.settle_time = Duration::from_secs(1);
    odoo
}

pub(crate) fn config(odoo: OdooConfig, db: &Path) -> Config {
    Config {
        store: StoreConfig {
            path: db.to_path_buf(),
            retention_days: 30,
            ..Default::default()
        },
        odoo: Some(odoo),
        mqtt: None,
        sicantik: None,
        web: None,
        log: Default::default(),
    }
}

/// Polls `condition` until it holds, failing the test after `deadline`.
pub(crate) async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
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
pub(crate) fn reader(db: &Path) -> Connection {
    let conn = Connection::open(db).expect("open db");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// A count from the agent's database: 0 while the database or its tables do not exist yet,
/// and a failing test for any other error (a count that hid one would pass vacuously).
pub(crate) fn count(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    let conn = reader(db);
    match conn.query_row(sql, [], |r| r.get(0)) {
        Ok(n) => n,
        Err(e) if e.to_string().contains("no such table") => 0,
        Err(e) => panic!("{sql}: {e}"),
    }
}

pub(crate) fn mo_count(db: &Path) -> i64 {
    count(db, "SELECT count(*) FROM mo WHERE gone_at IS NULL")
}

/// A real mosquitto from Debian's package (see linegate_sim::mosquitto).
pub(crate) struct Mosquitto(pub linegate_sim::mosquitto::Mosquitto);

impl Mosquitto {
    pub(crate) async fn start_with(options: linegate_sim::mosquitto::BrokerOptions) -> Mosquitto {
        let broker = tokio::task::spawn_blocking(move || linegate_sim::mosquitto::Mosquitto::start_with(options))
            .await
            .unwrap();
        Mosquitto(broker.expect("mosquitto starts (apt-get install mosquitto)"))
    }

    /// SIGTERM: with persistence, the broker saves retained messages and sessions.
    pub(crate) async fn terminate(&mut self) {
        tokio::task::block_in_place(|| self.0.terminate());
    }

    /// SIGKILL: nothing saved.
    pub(crate) async fn kill(&mut self) {
        tokio::task::block_in_place(|| self.0.stop());
    }

    pub(crate) fn log(&self) -> String {
        self.0.log()
    }

    pub(crate) async fn resume(&mut self) {
        tokio::task::block_in_place(|| self.0.resume()).expect("mosquitto starts again");
    }

    pub(crate) async fn start() -> Mosquitto {
        let broker = tokio::task::spawn_blocking(linegate_sim::mosquitto::Mosquitto::start)
            .await
            .unwrap();
        Mosquitto(broker.expect("mosquitto starts (apt-get install mosquitto)"))
    }

    pub(crate) fn port(&self) -> u16 {
        self.0.port
    }

    pub(crate) async fn restart(&mut self) {
        tokio::task::block_in_place(|| self.0.restart()).expect("mosquitto restarts");
    }
}

/// A real MQTT 5 client standing in for a line display: it keeps the last payload of every
/// topic under the gateway's prefix.
pub(crate) struct Display {
    /// The last payload on each topic.
    pub seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    /// Every message, in order (a later one on a topic does not hide an earlier one).
    pub history: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Display {
    pub(crate) async fn start(port: u16, prefix: &str) -> Display {
        Display::start_as(port, prefix, None).await
    }

    /// A display that logs in with `login` (user, password); subscribed once it returns, so
    /// that what it did not receive after that was not sent to it.
    pub(crate) async fn start_as(port: u16, prefix: &str, login: Option<(&str, &str)>) -> Display {
        use rumqttc::v5::mqttbytes::v5::Packet;
        use rumqttc::v5::{mqttbytes::QoS, AsyncClient, Event, MqttOptions};
        let id = format!("display-{}", std::process::id() as u64 * 1000 + rand_suffix());
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        let (client, mut events) = AsyncClient::new(options, 100);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let history = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let filter = format!("{prefix}/#");
        let store = seen.clone();
        let log = history.clone();
        let (subscribed, ready) = tokio::sync::oneshot::channel();
        let mut subscribed = Some(subscribed);
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(subscribed) = subscribed.take() {
                            let _ = subscribed.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic).to_string();
                        let payload = String::from_utf8_lossy(&p.payload).to_string();
                        log.lock().unwrap().push((topic.clone(), payload.clone()));
                        store.lock().unwrap().insert(topic, payload);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(15), ready)
            .await
            .expect("the display subscribed within 15 s")
            .expect("the display's task runs");
        Display {
            seen,
            history,
            _task: task,
        }
    }

    pub(crate) fn json(&self, topic: &str) -> Option<serde_json::Value> {
        self.seen
            .lock()
            .unwrap()
            .get(topic)
            .and_then(|p| serde_json::from_str(p).ok())
    }

    pub(crate) fn forget(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// Waits until `topic` carries JSON for which `check` holds, and returns it.
    pub(crate) async fn wait(
        &self,
        topic: &str,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_until(what, Duration::from_secs(15), || {
            self.json(topic).is_some_and(|v| check(&v))
        })
        .await;
        self.json(topic).unwrap()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A real MQTT 5 client standing in for a workstation panel.
pub(crate) struct Panel {
    client: rumqttc::v5::AsyncClient,
    prefix: String,
    station: String,
    replies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    /// Commands the broker acknowledged (PUBACK): it holds them.
    acked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Panel {
    pub(crate) async fn start(port: u16, prefix: &str, station: &str) -> Panel {
        Panel::start_as(port, prefix, station, None).await
    }

    /// A panel that logs in with `login` (user, password).
    pub(crate) async fn start_as(port: u16, prefix: &str, station: &str, login: Option<(&str, &str)>) -> Panel {
        use rumqttc::v5::mqttbytes::v5::Packet;
        use rumqttc::v5::{mqttbytes::QoS, AsyncClient, Event, MqttOptions};
        let mut options = MqttOptions::new(format!("panel-{station}-{}", rand_suffix()), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        let (client, mut events) = AsyncClient::new(options, 100);
        let replies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let filter = format!("{prefix}/reply/{station}");
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let sink = replies.clone();
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let acks = acked.clone();
        let sub_client = client.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub_client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(v) = serde_json::from_slice(&p.payload) {
                            sink.lock().unwrap().push(v);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .expect("panel subscribed")
            .unwrap();
        Panel {
            client,
            prefix: prefix.to_string(),
            station: station.to_string(),
            replies,
            acked,
            _task: task,
        }
    }

    /// Publishes raw bytes as a command.
    pub(crate) async fn publish(&self, action: &str, payload: impl Into<Vec<u8>>) {
        let topic = format!("{}/cmd/{}/{action}", self.prefix, self.station);
        self.client
            .publish(topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, false, payload.into())
            .await
            .unwrap();
    }

    /// Sends a command and waits for the reply with its request_id.
    pub(crate) async fn send(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        let id = body["request_id"]
            .as_str()
            .expect("tests give a request_id")
            .to_string();
        self.publish(action, body.to_string()).await;
        self.reply_for(&id).await
    }

    pub(crate) async fn reply_for(&self, request_id: &str) -> serde_json::Value {
        let found = || {
            self.replies
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|r| r["request_id"] == request_id)
                .cloned()
        };
        wait_until(&format!("the reply to {request_id}"), Duration::from_secs(15), || {
            found().is_some()
        })
        .await;
        found().unwrap()
    }

    /// Waits for the next reply that matches `check` (for payloads without a request_id).
    pub(crate) async fn reply_where(
        &self,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let found = || self.replies.lock().unwrap().iter().rev().find(|r| check(r)).cloned();
        wait_until(what, Duration::from_secs(15), || found().is_some()).await;
        found().unwrap()
    }

    /// How many of its commands the broker has acknowledged.
    pub(crate) fn acked(&self) -> usize {
        self.acked.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn replies(&self) -> Vec<serde_json::Value> {
        self.replies.lock().unwrap().clone()
    }
}
