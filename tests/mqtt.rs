//! linegate on a real mosquitto: what displays receive and what panels get back, with real
//! MQTT clients (rumqttc, and mosquitto_pub/sub speaking MQTT 3.1.1 as panel firmware does).

mod common;

use std::time::Duration;

use common::{config, mo_count, odoo_config, reader, sim, wait_until, Agent, Display, Mosquitto, Panel};
use linegate::config::MqttConfig;
use serde_json::{json, Value};

const GATEWAY: &str = "gw-test";
const PREFIX: &str = "linegate/gw-test";

/// The agent on `sim` and the broker at `port`.
async fn agent(sim: &linegate_sim::odoo::SimOdoo, port: u16, db: &std::path::Path) -> Agent {
    let mut config = config(odoo_config(sim), db);
    config.mqtt = Some(MqttConfig::new("127.0.0.1", port, GATEWAY));
    Agent::start_online(config, port, PREFIX).await
}

/// The `[mqtt]` section of a config file for the broker at `port`, as the agent's.
fn mqtt_section(port: u16) -> String {
    format!("[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\ngateway_id = \"{GATEWAY}\"\n")
}

fn mo_topic(id: i64) -> String {
    format!("{PREFIX}/mo/{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_runs_the_seed_flow_and_displays_follow() {
    // Given an agent with three MOs from Odoo, a display and a panel on the broker
    let broker = Mosquitto::start().await;
    let sim = sim(19, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let display = Display::start(broker.port(), PREFIX).await;
    let agent = agent(&sim, broker.port(), &db).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-1").await;
    display
        .wait(&mo_topic(1), "MO 1 on display", |v| v["phase"] == "waiting")
        .await;
    let status = display
        .wait(&format!("{PREFIX}/status"), "status online", |v| v["state"] == "online")
        .await;
    // (with the agent's wear on the card so far)
    assert!(status["written_bytes"].is_u64(), "{status}");

    // When the panel registers MO 1 by its name
    let reply = panel
        .send("register-mo", json!({"request_id": "r1", "operator": "ana", "mo": "WH/MO/00001", "auth_first": "000100", "roll_number": "R-7", "line": "L1"}))
        .await;
    // Then it gets ok, and the display shows it ready, on line L1's list
    assert_eq!(reply["ok"], true, "{reply}");
    display
        .wait(&mo_topic(1), "MO 1 ready", |v| {
            v["phase"] == "ready" && v["operator"]["auth_first"] == "000100"
        })
        .await;
    display
        .wait(&format!("{PREFIX}/line/L1"), "L1 lists MO 1 as ready", |v| {
            v["ready"][0]["id"] == 1
        })
        .await;

    // When production starts (leader id with leading zeros), then it runs on L1
    let reply = panel
        .send(
            "start-production",
            json!({"request_id": "r2", "operator": "ana", "mo": 1, "leader_id": "007", "line": "L1"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let shown = display
        .wait(&mo_topic(1), "MO 1 running", |v| v["phase"] == "running")
        .await;
    assert_eq!(shown["operator"]["leader_id"], "007");
    // (and who started it, from where)
    assert_eq!(shown["last_write"]["operator"], "ana", "{shown}");
    assert_eq!(shown["last_write"]["station"], "ws-1", "{shown}");
    display
        .wait(&format!("{PREFIX}/line/L1"), "L1 runs MO 1", |v| {
            v["running"][0]["id"] == 1
        })
        .await;

    // When Odoo changes MO 1's quantity and a sync runs, the display shows it, operator data intact
    sim.write_mo(
        1,
        serde_json::Map::from_iter([("product_qty".to_string(), json!(500.0))]),
    );
    let shown = display
        .wait(&mo_topic(1), "the synced quantity", |v| v["product_qty"] == 500.0)
        .await;
    assert_eq!(shown["operator"]["auth_first"], "000100");
    assert_eq!(shown["phase"], "running");

    // When MO 2 is registered and the line changes over to it at code 000400
    panel
        .send(
            "register-mo",
            json!({"request_id": "r3", "operator": "ana", "mo": 2, "auth_first": "000001", "roll_number": "R-8"}),
        )
        .await;
    let reply = panel
        .send(
            "changeover",
            json!({"request_id": "r4", "operator": "ana", "current_mo": 1, "next_mo": 2, "new_auth": "000400"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    // Then MO 1 finished at 000399 (300 produced), MO 2 runs from 000400 with MO 1's leader
    let one = display
        .wait(&mo_topic(1), "MO 1 finished", |v| v["phase"] == "finished")
        .await;
    assert_eq!(
        (one["operator"]["auth_last"].clone(), one["produced"].clone()),
        (json!("000399"), json!(300))
    );
    assert_eq!(one["loss"], 200.0);
    let two = display
        .wait(&mo_topic(2), "MO 2 running", |v| v["phase"] == "running")
        .await;
    assert_eq!(two["operator"]["auth_first"], "000400");
    assert_eq!(two["operator"]["leader_id"], "007");
    assert_eq!(two["operator"]["line"], "L1");
    display
        .wait(&format!("{PREFIX}/line/L1"), "L1 runs MO 2", |v| {
            v["running"][0]["id"] == 2
        })
        .await;

    // When production ends at code 000451
    let reply = panel
        .send(
            "end-production",
            json!({"request_id": "r5", "operator": "ana", "mo": "2", "authenticity": "000451"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let two = display
        .wait(&mo_topic(2), "MO 2 finished", |v| v["phase"] == "finished")
        .await;
    assert_eq!(
        (two["operator"]["auth_last"].clone(), two["produced"].clone()),
        (json!("000450"), json!(51))
    );
    display
        .wait(&format!("{PREFIX}/line/L1"), "L1 idle", |v| v["running"] == json!([]))
        .await;

    // And the queries answer from the store
    let reply = panel.send("mo-options", json!({"request_id": "q1"})).await;
    let ids: Vec<i64> = reply["result"]["mos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![3]);
    agent.stop().await;
    display
        .wait(&format!("{PREFIX}/status"), "status offline", |v| {
            v["state"] == "offline"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_id_gets_the_stored_reply_and_writes_nothing() {
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 2).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-2").await;

    // Given a registration that succeeded
    let body = json!({"request_id": "dup-1", "operator": "ana", "mo": 1, "auth_first": "5", "roll_number": "R"});
    let first = panel.send("register-mo", body.clone()).await;
    assert_eq!(first["ok"], true);
    let changed_at: String = reader(&db)
        .query_row("SELECT operator_updated_at FROM mo WHERE id = 1", [], |r| r.get(0))
        .unwrap();

    // When the panel sends it again (a retry after a lost reply)
    let count_before = panel.replies().len();
    panel.publish("register-mo", body.to_string()).await;
    wait_until("the second reply", Duration::from_secs(10), || {
        panel.replies().len() > count_before
    })
    .await;

    // Then the reply is the stored one (not "already_registered"), and nothing was written
    let second = panel.replies().last().cloned().unwrap();
    assert_eq!(second, first);
    let logged = common::count(&db, "SELECT count(*) FROM command_log WHERE request_id = 'dup-1'");
    assert_eq!(logged, 1);
    let still: String = reader(&db)
        .query_row("SELECT operator_updated_at FROM mo WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(still, changed_at);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_writes_nothing() {
    let broker = Mosquitto::start().await;
    let sim = sim(19, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 3).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-3").await;
    // MO 1 registered and running; MO 2 registered; MO 3 untouched.
    let ok = |v: Value| assert_eq!(v["ok"], true, "{v}");
    ok(panel
        .send(
            "register-mo",
            json!({"request_id": "s1", "operator": "a", "mo": 1, "auth_first": "100", "roll_number": "R"}),
        )
        .await);
    ok(panel
        .send(
            "start-production",
            json!({"request_id": "s2", "operator": "a", "mo": 1, "leader_id": "9"}),
        )
        .await);
    ok(panel
        .send(
            "register-mo",
            json!({"request_id": "s3", "operator": "a", "mo": 2, "mid_production": true}),
        )
        .await);
    let writes_before = common::count(&db, "SELECT count(*) FROM mo WHERE operator_updated_at IS NOT NULL");

    let long_ago = linegate::clock::format_rfc3339(linegate::clock::now_unix() - 3600);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "register-mo",
            json!({"operator": "a", "mo": 99, "auth_first": "1", "roll_number": "R"}),
            "unknown_mo",
        ),
        (
            "register-mo",
            json!({"operator": "a", "mo": "WH/MO/99999", "auth_first": "1", "roll_number": "R"}),
            "unknown_mo",
        ),
        (
            "register-mo",
            json!({"operator": "a", "mo": 2, "auth_first": "1", "roll_number": "R"}),
            "already_registered",
        ),
        (
            "register-mo",
            json!({"operator": "a", "mo": 1, "auth_first": "1", "roll_number": "R"}),
            "already_started",
        ),
        (
            "register-mo",
            json!({"operator": "a", "mo": 3, "auth_first": "12a", "roll_number": "R"}),
            "invalid_field",
        ),
        (
            "register-mo",
            json!({"operator": "a", "mo": 3, "roll_number": "R"}),
            "missing_field",
        ),
        (
            "register-mo",
            json!({"operator": "a", "mo": 3, "auth_first": "1", "roll_number": "R", "state": "done"}),
            "invalid_field",
        ),
        (
            "register-mo",
            json!({"operator": "a", "mo": 3, "auth_first": "1", "roll_number": "R", "sent_at": long_ago}),
            "stale",
        ),
        (
            "start-production",
            json!({"operator": "a", "mo": 3, "leader_id": "7"}),
            "not_ready",
        ),
        (
            "start-production",
            json!({"operator": "a", "mo": 1, "leader_id": "7"}),
            "already_started",
        ),
        (
            "start-production",
            json!({"operator": "a", "mo": 2, "leader_id": 7}),
            "invalid_field",
        ),
        (
            "changeover",
            json!({"operator": "a", "current_mo": 2, "next_mo": 3, "new_auth": "500"}),
            "not_running",
        ),
        (
            "changeover",
            json!({"operator": "a", "current_mo": 1, "next_mo": 3, "new_auth": "500"}),
            "not_ready",
        ),
        (
            "changeover",
            json!({"operator": "a", "current_mo": 1, "next_mo": 2, "new_auth": "050"}),
            "invalid_field",
        ),
        (
            "end-production",
            json!({"operator": "a", "mo": 2, "authenticity": "500"}),
            "not_running",
        ),
        (
            "end-production",
            json!({"operator": "a", "mo": 1, "authenticity": "0000"}),
            "invalid_field",
        ),
        (
            "end-production",
            json!({"mo": 1, "authenticity": "500"}),
            "missing_field",
        ),
        ("self-destruct", json!({"operator": "a"}), "unknown_action"),
    ];
    for (n, (action, mut body, code)) in cases.into_iter().enumerate() {
        let id = format!("bad-{n}");
        body["request_id"] = json!(id);
        let reply = panel.send(action, body.clone()).await;
        assert_eq!(reply["ok"], false, "{action} {body}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{action} {body}: {reply}");
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
    }
    // Malformed payloads: not JSON, not an object, too large.
    panel.publish("register-mo", "this is not json").await;
    panel
        .reply_where("invalid_json", |r| {
            r["error"]["code"] == "invalid_json" && r["request_id"].is_null()
        })
        .await;
    panel.publish("register-mo", "[1, 2]").await;
    panel.publish("register-mo", vec![b'x'; 64 * 1024]).await;
    panel
        .reply_where("too_large", |r| r["error"]["code"] == "too_large")
        .await;

    // A panel posing as the salvage's own station
    let squatter = Panel::start(broker.port(), PREFIX, "salvage").await;
    let reply = squatter
        .send(
            "register-mo",
            json!({"request_id": "restore x MO 3", "operator": "a", "mo": 3, "auth_first": "1", "roll_number": "R"}),
        )
        .await;
    assert_eq!(reply["error"]["code"], "reserved_station", "{reply}");

    // Then nothing was written by any of them, and the agent still answers
    let writes_after = common::count(&db, "SELECT count(*) FROM mo WHERE operator_updated_at IS NOT NULL");
    assert_eq!(writes_after, writes_before);
    let state: (Option<String>, Option<String>) = reader(&db)
        .query_row("SELECT auth_first, date_start FROM mo WHERE id = 3", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(state, (None, None));
    ok(panel.send("ready-mo", json!({"request_id": "after"})).await);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn displays_recover_after_a_broker_restart_without_persistence() {
    // Given displays showing state from a running agent
    let mut broker = Mosquitto::start().await;
    let sim = sim(19, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    let display = Display::start(broker.port(), PREFIX).await;
    display.wait(&mo_topic(5), "MO 5", |v| v["id"] == 5).await;

    // When the broker restarts and forgets every retained message
    broker.restart().await;
    display.forget();

    // Then the agent republishes everything from SQLite within seconds
    for id in 1..=5 {
        display.wait(&mo_topic(id), "MO republished", |v| v["id"] == id).await;
    }
    display
        .wait(&format!("{PREFIX}/status"), "status", |v| v["state"] == "online")
        .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_without_the_agents_subscription_still_gets_commands() {
    // Given a session the broker keeps under the agent's client id, but without its
    // subscription: what is left when the connection that made the session ends before its
    // SUBSCRIBE reaches the broker (a cut, or a twin taking the session over at once)
    use rumqttc::v5::{mqttbytes::v5::Packet, AsyncClient, Event, MqttOptions};
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let mut options = MqttOptions::new(format!("linegate-{GATEWAY}"), "127.0.0.1", broker.port());
    options.set_clean_start(false).set_session_expiry_interval(Some(3600));
    let (client, mut events) = AsyncClient::new(options, 8);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(events.poll().await, Ok(Event::Incoming(Packet::ConnAck(_)))) {}
    })
    .await
    .expect("the session's first connection");
    client.disconnect().await.unwrap();
    while events.poll().await.is_ok() {}

    // When the agent connects and resumes it
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&sim, broker.port(), &dir.path().join("linegate.db")).await;

    // Then it subscribes all the same: a panel's command is applied and answered
    let panel = Panel::start(broker.port(), PREFIX, "ws-1").await;
    let body = json!({"request_id": "resumed-1", "operator": "ana", "mo": 1, "auth_first": "5", "roll_number": "R"});
    let reply = panel.send("register-mo", body).await;
    assert_eq!(reply["ok"], true, "{reply}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_is_shown_at_once_and_an_idle_one_is_recorded_with_each_reconcile() {
    // Given an agent syncing every second from an Odoo where nothing changes, reconciling
    // hourly, and a display
    let broker = Mosquitto::start().await;
    let sim = sim(19, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let display = Display::start(broker.port(), PREFIX).await;
    let mut odoo = odoo_config(&sim);
    odoo.reconcile_interval = Duration::from_secs(3600);
    let mut config = config(odoo, &db);
    config.mqtt = Some(MqttConfig::new("127.0.0.1", broker.port(), GATEWAY));
    let agent = Agent::start(config).await;
    let status = format!("{PREFIX}/status");
    // (the sync times the display was shown, each once)
    let shown = || {
        let mut times: Vec<String> = Vec::new();
        for (topic, payload) in display.history.lock().unwrap().iter() {
            let v: Value = serde_json::from_str(payload).unwrap_or_default();
            match v["last_sync"]["odoo"]["at"].as_str() {
                Some(at) if *topic == status && times.last().map(String::as_str) != Some(at) => times.push(at.into()),
                _ => {}
            }
        }
        times
    };
    let runs = || common::count(&db, "SELECT count(*) FROM sync_run WHERE source = 'odoo'");

    // When four syncs have run
    wait_until("four syncs shown", Duration::from_secs(30), || shown().len() >= 4).await;
    // Then each was shown on the status topic, and the store recorded the first (it brought the
    // MOs) and the first idle one after it only
    assert_eq!(runs(), 2);

    // When Odoo changes an MO, and more syncs run
    sim.write_mo(
        2,
        serde_json::Map::from_iter([("product_qty".to_string(), json!(77.0))]),
    );
    display
        .wait(&mo_topic(2), "the change", |v| v["product_qty"] == 77.0)
        .await;
    let after = shown().len();
    wait_until("three more syncs shown", Duration::from_secs(30), || {
        shown().len() >= after + 3
    })
    .await;
    // Then the run that brought the change is recorded, and the first idle one after it
    assert_eq!(runs(), 4);

    // When the agent stops
    agent.stop().await;
    // Then the store has its newest run too: the one the display was shown last
    assert_eq!(runs(), 5);
    let newest: String = reader(&db)
        .query_row(
            "SELECT started_at FROM sync_run WHERE source = 'odoo' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(Some(&newest), shown().last());
}

/// mosquitto_pub / mosquitto_sub from Debian's package, MQTT 3.1.1, as small panel firmware.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_311_panel_drives_the_agent_with_mosquitto_clients() {
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 2).await;
    let port = broker.port().to_string();

    // Given a mosquitto_sub on the station's reply topic, whose lines we collect
    let reply_topic = format!("{PREFIX}/reply/ws-9");
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args([
            "-V",
            "mqttv311",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            &reply_topic,
            "-W",
            "30",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stdout = sub.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let pub_311 = |topic: &str, message: &str| {
        std::process::Command::new("mosquitto_pub")
            .args([
                "-V",
                "mqttv311",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                message,
            ])
            .status()
            .unwrap()
            .success()
    };
    // mosquitto_sub says nothing when it is subscribed; a probe it echoes back does.
    let subscribed = tokio::time::timeout(Duration::from_secs(10), async {
        while lines.lock().unwrap().is_empty() {
            pub_311(&reply_topic, "{\"probe\":true}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(subscribed.is_ok(), "mosquitto_sub never subscribed");

    // When a register-mo command is published with mosquitto_pub
    let command =
        json!({"request_id": "m311-1", "operator": "budi", "mo": 1, "auth_first": "000777", "roll_number": "R-1"});
    assert!(pub_311(&format!("{PREFIX}/cmd/ws-9/register-mo"), &command.to_string()));

    // Then mosquitto_sub receives the ok reply, and the MO is registered
    let reply = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["request_id"] == "m311-1")
    };
    wait_until("the reply through mosquitto_sub", Duration::from_secs(15), || {
        reply().is_some()
    })
    .await;
    assert_eq!(reply().unwrap()["ok"], true, "{:?}", reply());
    let _ = sub.kill();
    let _ = sub.wait();
    let display = Display::start(broker.port(), PREFIX).await;
    display
        .wait(&mo_topic(1), "MO 1 ready", |v| v["operator"]["auth_first"] == "000777")
        .await;
    agent.stop().await;
}

/// `linegate run` as a process, with a config for `sim` and the broker on `port`.
fn write_agent_config(dir: &std::path::Path, sim: &linegate_sim::odoo::SimOdoo, port: u16) -> std::path::PathBuf {
    let config = dir.join("linegate.toml");
    let text = format!(
        "[store]\npath = {:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key = {:?}\nsync_interval = \"1s\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {port}\ngateway_id = \"{GATEWAY}\"\n",
        dir.join("linegate.db"),
        sim.url(),
        sim.config().api_key
    );
    std::fs::write(&config, text).unwrap();
    // It holds the API key inline: only its owner may read it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    config
}

fn spawn_agent(config: &std::path::Path, failpoint: Option<&str>) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_linegate"));
    cmd.arg("--config").arg(config).arg("run").env("RUST_LOG", "warn");
    cmd.env_remove("LINEGATE_FAILPOINT").env_remove("LINEGATE_ODOO_API_KEY");
    if let Some(point) = failpoint {
        cmd.env("LINEGATE_FAILPOINT", point);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("linegate runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_receipt_and_reply_applies_the_command_exactly_once() {
    for point in ["command-before-commit", "command-after-commit"] {
        // Given an agent process that will die at `point` while handling its next command
        let broker = Mosquitto::start().await;
        let sim = sim(19, 2).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("linegate.db");
        let config = write_agent_config(dir.path(), &sim, broker.port());
        let mut agent = spawn_agent(&config, Some(point));
        let display = Display::start(broker.port(), PREFIX).await;
        display
            .wait(&mo_topic(2), "the agent's first publish", |v| v["id"] == 2)
            .await;
        let panel = Panel::start(broker.port(), PREFIX, "ws-k").await;

        // When a panel sends a registration and the agent dies handling it
        let command =
            json!({"request_id": "crash-1", "operator": "ana", "mo": 2, "auth_first": "000010", "roll_number": "R"});
        panel.publish("register-mo", command.to_string()).await;
        let died = tokio::task::spawn_blocking(move || agent.wait().unwrap())
            .await
            .unwrap();
        assert!(!died.success(), "{point}: the failpoint fired");
        let logged = common::count(&db, "SELECT count(*) FROM command_log");
        assert_eq!(logged, i64::from(point == "command-after-commit"), "{point}");

        // And the agent starts again (the broker kept its session and the unacknowledged command)
        let mut agent = spawn_agent(&config, None);

        // Then the panel gets its ok reply, and the command was applied exactly once
        let reply = panel.reply_for("crash-1").await;
        assert_eq!(reply["ok"], true, "{point}: {reply}");
        display
            .wait(&mo_topic(2), "MO 2 registered", |v| {
                v["operator"]["auth_first"] == "000010"
            })
            .await;
        assert_eq!(
            common::count(&db, "SELECT count(*) FROM command_log WHERE request_id = 'crash-1'"),
            1
        );
        let _ = agent.kill();
        let _ = agent.wait();
    }
}

/// Runs a shell command (openssl, mosquitto_passwd) and insists it succeeds.
fn sh(dir: &std::path::Path, script: &str) {
    let status = std::process::Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_connects_with_tls_a_client_certificate_and_a_password() {
    // Given a mosquitto whose second listener wants TLS, a client certificate and a password
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    sh(
        d,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=linegate-test-ca \
           -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
    );
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        sh(d, &format!(
            "openssl req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name} 2>/dev/null\n\
             printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage={usage}\\nsubjectAltName=IP:127.0.0.1\\n' > {name}.ext\n\
             openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.pem -days 2 -extfile {name}.ext 2>/dev/null"
        ));
    }
    sh(
        d,
        "mosquitto_passwd -c -b passwd gateway s3cret && chmod 0644 passwd *.key *.pem",
    );
    let plain = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = |f: &str| d.join(f).display().to_string();
    std::fs::write(
        d.join("mosquitto.conf"),
        format!(
            "per_listener_settings true\npersistence false\nlog_dest none\nset_tcp_nodelay true\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n\
             listener {tls} 127.0.0.1\nallow_anonymous false\npassword_file {}\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            p("passwd"), p("ca.pem"), p("server.pem"), p("server.key")
        ),
    )
    .unwrap();
    let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
        .unwrap();
    let mut broker = std::process::Command::new(binary)
        .arg("-c")
        .arg(d.join("mosquitto.conf"))
        .spawn()
        .unwrap();
    wait_until("the TLS listener", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", tls)).is_ok()
    })
    .await;

    // When the agent is configured for it (password in a private file)
    let sim = sim(19, 1).await;
    std::fs::write(d.join("mqtt-password"), "s3cret\n").unwrap();
    std::fs::set_permissions(d.join("mqtt-password"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = d.join("linegate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key = {:?}\n\
             [mqtt]\nhost = \"127.0.0.1\"\nport = {tls}\ngateway_id = \"{GATEWAY}\"\nusername = \"gateway\"\n\
             password_file = {:?}\nca_file = {:?}\nclient_cert_file = {:?}\nclient_key_file = {:?}\n",
            p("linegate.db"),
            sim.url(),
            sim.config().api_key,
            p("mqtt-password"),
            p("ca.pem"),
            p("client.pem"),
            p("client.key")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let display = Display::start(plain, PREFIX).await;
    let mut agent = spawn_agent(&config, None);

    // Then its state reaches a display on the plain listener: it got in
    display
        .wait(&format!("{PREFIX}/status"), "status online over TLS", |v| {
            v["state"] == "online"
        })
        .await;
    display.wait(&mo_topic(1), "MO 1 over TLS", |v| v["id"] == 1).await;
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = broker.kill();
    let _ = broker.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_with_an_unpublishable_response_topic_does_not_loop_the_agent() {
    // Given an agent and a panel
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 2).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-p").await;

    // When a command asks for its reply on an empty MQTT 5 response topic (the broker would
    // drop whoever publishes there)
    let (client, mut events) = {
        let options = rumqttc::v5::MqttOptions::new("poison-panel", "127.0.0.1", broker.port());
        rumqttc::v5::AsyncClient::new(options, 10)
    };
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let properties = rumqttc::v5::mqttbytes::v5::PublishProperties {
        response_topic: Some(String::new()),
        correlation_data: Some("c1".into()),
        ..Default::default()
    };
    let body = json!({"request_id": "poison", "operator": "a", "mo": 1, "auth_first": "1", "roll_number": "R"});
    client
        .publish_with_properties(
            format!("{PREFIX}/cmd/ws-p/register-mo"),
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            body.to_string(),
            properties,
        )
        .await
        .unwrap();

    // Then it is refused, not applied, and answered on the station's topic once, and the agent
    // stays up: a later command is answered too, and the poison one is never redelivered
    let reply = panel.reply_for("poison").await;
    assert_eq!(reply["error"]["code"], "bad_response_topic", "{reply}");
    let registered: bool = reader(&db)
        .query_row("SELECT ready_for_production FROM mo WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert!(!registered, "a refused command changes nothing");
    let after = panel.send("ready-mo", json!({"request_id": "after-poison"})).await;
    assert_eq!(after["ok"], true);
    let redelivered = tokio::time::timeout(Duration::from_secs(3), async {
        while panel.replies().iter().filter(|r| r["request_id"] == "poison").count() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        redelivered.is_err(),
        "the poison command came back: the agent reconnected"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_per_station_and_a_replay_answers_even_when_stale() {
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 2).await;
    let one = Panel::start(broker.port(), PREFIX, "ws-a").await;
    let two = Panel::start(broker.port(), PREFIX, "ws-b").await;

    // Given two panels that both count their request ids from 1
    let a = one
        .send(
            "register-mo",
            json!({"request_id": "1", "operator": "a", "mo": 1, "auth_first": "1", "roll_number": "R"}),
        )
        .await;
    let b = two
        .send(
            "register-mo",
            json!({"request_id": "1", "operator": "b", "mo": 2, "auth_first": "1", "roll_number": "R"}),
        )
        .await;
    // Then both commands were applied, each to its own MO
    assert_eq!((a["ok"].clone(), b["ok"].clone()), (json!(true), json!(true)));
    let log: Vec<String> = {
        let conn = reader(&db);
        let mut stmt = conn
            .prepare("SELECT station || ' ' || request_id || ' ' || action FROM command_log")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(b["result"]["mo"]["id"], 2, "{b} {log:?}");
    assert_eq!(
        common::count(&db, "SELECT count(*) FROM mo WHERE ready_for_production"),
        2
    );

    // When panel one repeats its command an hour later (its sent_at now stale)
    let stale = linegate::clock::format_rfc3339(linegate::clock::now_unix() - 3600);
    let again =
        json!({"request_id": "1", "operator": "a", "mo": 1, "auth_first": "1", "roll_number": "R", "sent_at": stale});
    let before = one.replies().len();
    one.publish("register-mo", again.to_string()).await;
    wait_until("the repeated reply", Duration::from_secs(10), || {
        one.replies().len() > before
    })
    .await;
    // Then it gets the first reply, not "stale": the command was applied
    assert_eq!(one.replies().last().unwrap(), &a);

    // When the same request id is reused for another action, it is refused
    let before = one.replies().len();
    one.publish(
        "start-production",
        json!({"request_id": "1", "operator": "a", "mo": 1, "leader_id": "7"}).to_string(),
    )
    .await;
    wait_until("the refusal", Duration::from_secs(10), || one.replies().len() > before).await;
    let reused = one.replies().last().cloned().unwrap();
    assert_eq!(reused["error"]["code"], "invalid_field", "{reused}");
    agent.stop().await;
}

/// `linegate watch` on `config` as a child process, its stdout's lines collected as they come.
struct Watch {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, Value)>>>,
}

impl Watch {
    fn start(config: &std::path::Path, args: &[&str]) -> Watch {
        use std::io::BufRead;
        let mut child = common::bin::linegate(config, &[&["watch"], args].concat())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("linegate watch runs");
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                sink.lock().unwrap().push((std::time::Instant::now(), value));
            }
        });
        Watch { child, lines }
    }

    /// When the first line that `check` accepts came, waiting for it until `deadline`.
    async fn seen(&self, what: &str, deadline: Duration, check: impl Fn(&Value) -> bool) -> std::time::Instant {
        let first = || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .find(|(_, v)| check(v))
                .map(|(at, _)| *at)
        };
        wait_until(what, deadline, || first().is_some()).await;
        first().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_json_shows_a_commands_effect_within_the_second() {
    // Given an agent with two MOs on a broker, and `linegate watch --json` on the same config
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    let mqtt = mqtt_section(broker.port());
    let config = common::bin::write_config(dir.path(), &sim, &mqtt);
    let mut watch = Watch::start(&config, &["--json"]);
    let mo_1 = format!("{PREFIX}/mo/1");
    watch
        .seen("the retained MO 1", Duration::from_secs(10), |v| {
            v["topic"] == mo_1.as_str()
        })
        .await;

    // When a panel registers MO 1
    let panel = Panel::start(broker.port(), PREFIX, "ws-w").await;
    let reply = panel
        .send(
            "register-mo",
            json!({"request_id": "w-1", "operator": "ana", "mo": 1, "auth_first": "000777", "roll_number": "R-9"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let replied = std::time::Instant::now();

    // Then the watch prints MO 1's new state, one JSON line, within the same second
    let shown = watch
        .seen("MO 1 registered", Duration::from_secs(1), |v| {
            v["topic"] == mo_1.as_str() && v["payload"]["operator"]["auth_first"] == "000777"
        })
        .await;
    assert!(shown.saturating_duration_since(replied) < Duration::from_secs(1));
    // And it stops cleanly on SIGTERM
    common::bin::sigterm(&watch.child);
    let status = tokio::task::spawn_blocking(move || watch.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    agent.stop().await;
}

#[tokio::test]
async fn watch_and_send_without_a_broker_configured_say_so() {
    let sim = sim(19, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::bin::write_config(dir.path(), &sim, "");
    for args in [&["watch"][..], &["send", "ws-1", "register-mo", "{}"]] {
        let out = common::bin::output(common::bin::linegate(&config, args)).await;
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", common::bin::text(&out));
        assert!(
            common::bin::text(&out).contains("no [mqtt] section"),
            "{args:?}: {}",
            common::bin::text(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_acts_as_a_panel_and_exits_by_the_reply() {
    // Given an agent with two MOs, a display, and `linegate send` on the agent's broker
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 2).await;
    let display = Display::start(broker.port(), PREFIX).await;
    let mqtt = mqtt_section(broker.port());
    let cli_dir = tempfile::tempdir().unwrap();
    let config = common::bin::write_config(cli_dir.path(), &sim, &mqtt);
    let send = |args: &[&str]| {
        let mut all = vec!["send"];
        all.extend_from_slice(args);
        common::bin::output(common::bin::linegate(&config, &all))
    };
    let reply = |out: &std::process::Output| -> Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", common::bin::text(out)))
    };

    // When it registers MO 1 (no request_id: one is made up), then exit 0 with the ok reply,
    // and the displays show MO 1 ready, registered from station ws-5
    let register = r#"{"operator":"budi","mo":1,"auth_first":"000100","roll_number":"R-1","line":"L1"}"#;
    let out = send(&["ws-5", "register-mo", register]).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::bin::text(&out));
    let first = reply(&out);
    assert_eq!(first["ok"], true, "{first}");
    assert!(first["request_id"].as_str().unwrap().starts_with("send-"), "{first}");
    let shown = display
        .wait(&mo_topic(1), "MO 1 ready", |v| v["phase"] == "ready")
        .await;
    assert_eq!(shown["last_write"]["station"], "ws-5", "{shown}");
    assert_eq!(shown["last_write"]["operator"], "budi", "{shown}");

    // When a command is refused, then exit 1, the reply on stdout and its code on stderr
    let out = send(&[
        "ws-5",
        "start-production",
        r#"{"request_id":"s2","operator":"budi","mo":2,"leader_id":"7"}"#,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", common::bin::text(&out));
    assert_eq!(reply(&out)["ok"], false);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused: not_ready"),
        "{}",
        common::bin::text(&out)
    );

    // When it is sent again with the same request_id, then the same reply, and nothing twice
    let start = r#"{"request_id":"s3","operator":"budi","mo":1,"leader_id":"7"}"#;
    let out = send(&["ws-5", "start-production", start]).await;
    let again = send(&["ws-5", "start-production", start]).await;
    assert_eq!(again.status.code(), Some(0), "{}", common::bin::text(&again));
    assert_eq!(reply(&out), reply(&again));
    let entries = common::count(&db, "SELECT count(*) FROM command_log WHERE station = 'ws-5'");
    assert_eq!(entries, 3, "register, the refusal, one start");

    // When the body is not a JSON object, then exit 64 and nothing reaches the agent
    let out = send(&["ws-5", "end-production", "mo=1"]).await;
    assert_eq!(out.status.code(), Some(64), "{}", common::bin::text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not JSON"),
        "{}",
        common::bin::text(&out)
    );

    // When no agent answers, then exit 75 after the timeout, saying so and naming the
    // request_id to send again (the broker keeps the command for the agent's return)
    agent.stop().await;
    let end = r#"{"request_id":"s4","operator":"budi","mo":1,"auth_last":"000101"}"#;
    let out = send(&["--timeout", "1", "ws-5", "end-production", end]).await;
    assert_eq!(out.status.code(), Some(75), "{}", common::bin::text(&out));
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        said.contains("no reply within 1 s") && said.contains("\"s4\""),
        "{said}"
    );
    assert_eq!(
        common::count(&db, "SELECT count(*) FROM command_log WHERE station = 'ws-5'"),
        3,
        "the bad body applied nothing"
    );

    // When the broker is away too, then exit 75 saying the command was not sent
    drop(broker);
    let out = send(&["--timeout", "1", "ws-5", "end-production", end]).await;
    assert_eq!(out.status.code(), Some(75), "{}", common::bin::text(&out));
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(said.contains("not sent within 1 s: the broker 127.0.0.1:"), "{said}");
}

/// A tmux server of this test's own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(session: &str, width: u16, height: u16) -> Tmux {
        let tmux = Tmux {
            socket: format!("linegate-test-{}-{session}", std::process::id()),
        };
        let (w, h) = (width.to_string(), height.to_string());
        tmux.run(&["new-session", "-d", "-s", session, "-x", &w, "-y", &h]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (apt-get install tmux)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn screen(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", session])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_in_a_terminal_shows_the_running_mo_and_follows_a_command() {
    // Given an agent whose MO 1 runs on line L1, and `linegate watch` typed into an 80×24
    // terminal
    let broker = Mosquitto::start().await;
    let sim = sim(19, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 3).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-t").await;
    let ok = |v: Value| assert_eq!(v["ok"], true, "{v}");
    ok(panel
        .send(
            "register-mo",
            json!({"request_id": "t1", "operator": "ana", "mo": 1, "auth_first": "000100", "roll_number": "R-1", "line": "L1"}),
        )
        .await);
    ok(panel
        .send(
            "start-production",
            json!({"request_id": "t2", "operator": "ana", "mo": 1, "leader_id": "0042"}),
        )
        .await);
    let mqtt = mqtt_section(broker.port());
    let config = common::bin::write_config(dir.path(), &sim, &mqtt);
    let tmux = Tmux::start("board", 80, 24);
    let typed = format!(
        "RUST_LOG=warn {} --config {} watch",
        env!("CARGO_BIN_EXE_linegate"),
        config.display()
    );
    tmux.run(&["send-keys", "-t", "board", &typed, "Enter"]);

    // Then the board shows the running MO with its operator, leader and codes
    let shows = |parts: &[&str]| {
        let screen = tmux.screen("board");
        parts.iter().all(|p| screen.contains(p))
    };
    let running = [
        "gateway gw-test  ONLINE",
        "LINE L1",
        "RUNNING WH/MO/00001",
        "by ana",
        "leader 0042  codes 000100",
    ];
    wait_until("the running MO on the board", Duration::from_secs(10), || {
        shows(&running)
    })
    .await;
    assert!(tmux.screen("board").lines().all(|l| l.chars().count() <= 80));

    // When a command lands: MO 2 registered for L1
    ok(panel
        .send(
            "register-mo",
            json!({"request_id": "t3", "operator": "ana", "mo": 2, "auth_first": "000200", "roll_number": "R-2", "line": "L1"}),
        )
        .await);

    // Then the board shows it ready, at once
    wait_until("MO 2 ready on the board", Duration::from_secs(5), || {
        shows(&["ready (1): WH/MO/00002"])
    })
    .await;
    drop(tmux);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_takes_the_terminals_own_size_and_redraws_when_it_is_resized() {
    // Given MO 1 running with a long product name, and `linegate watch` in a 120×40 terminal
    // whose shell exports neither COLUMNS nor LINES (no shell does)
    let broker = Mosquitto::start().await;
    let sim = sim(19, 0).await;
    let product = "[MLS-120] Meja Lipat Serbaguna Kayu Jati, Finishing Natural 120c".to_string();
    assert!(product.len() > 60 && product.len() <= 64, "{}", product.len());
    sim.create_mo(linegate_sim::odoo::NewMo {
        product: Some((9, product.clone())),
        qty: 4.0,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let agent = agent(&sim, broker.port(), &db).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 1).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-t").await;
    for (action, body) in [
        (
            "register-mo",
            json!({"request_id": "t1", "operator": "ana", "mo": 1, "auth_first": "1", "roll_number": "R", "line": "L1"}),
        ),
        (
            "start-production",
            json!({"request_id": "t2", "operator": "ana", "mo": 1, "leader_id": "7"}),
        ),
    ] {
        assert_eq!(panel.send(action, body).await["ok"], true, "{action}");
    }
    let config = common::bin::write_config(dir.path(), &sim, &mqtt_section(broker.port()));
    let tmux = Tmux::start("wide", 120, 40);
    let typed = format!(
        "env -u COLUMNS -u LINES RUST_LOG=warn {} --config {} watch",
        env!("CARGO_BIN_EXE_linegate"),
        config.display()
    );
    tmux.run(&["send-keys", "-t", "wide", &typed, "Enter"]);
    // Then the running MO's row, longer than 80 columns, is shown whole
    let whole = format!("RUNNING WH/MO/00001  {product}  by ana");
    assert!(whole.chars().count() > 90, "{whole}");
    wait_until("the whole row in 120 columns", Duration::from_secs(10), || {
        tmux.screen("wide").contains(&whole)
    })
    .await;
    // When the terminal is made 90×30
    tmux.run(&["resize-window", "-t", "wide", "-x", "90", "-y", "30"]);
    // Then the board is drawn again for 90 columns: the row cut to fit, with its ellipsis
    // (a terminal that only reflowed the old board would show the row's tail on a line of
    // its own instead)
    let cut: String = format!("  {whole}").chars().take(89).chain(['…']).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let screen = tmux.screen("wide");
        if screen.lines().any(|l| l.trim_end() == cut) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the board not redrawn for 90 columns, no line is {cut:?}:\n{screen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(tmux);
    agent.stop().await;
}
