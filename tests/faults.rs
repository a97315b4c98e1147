//! The fault suite: what an independent probe did to linegate from the outside — as an operator,
//! an electrician and an attacker on the plant network — each as a test that held (or failed)
//! against the real parts: the binary, its SQLite file, a real mosquitto with the shipped ACL,
//! MQTT 5 panels, and the simulated Odoo misbehaving on demand. The long forms (a thousand
//! kills, a million fuzz cases) are the README's soak commands (`SOAK_KILLS=1000 …`,
//! `PROPTEST_CASES=1000000 …`); the figures are `cargo bench --bench faults`.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::bin::{linegate, output, signal, text, write_config};
use common::{config, mo_count, odoo_config, reader, sim, wait_until, Agent, Display, Mosquitto, Panel};
use linegate::config::MqttConfig;
use linegate_sim::mosquitto::BrokerOptions;
use serde_json::json;

const GATEWAY: &str = "gw-fault";
const PREFIX: &str = "linegate/gw-fault";

fn mqtt(port: u16) -> MqttConfig {
    MqttConfig::new("127.0.0.1", port, GATEWAY)
}

// --- Security ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_topic_outside_the_stations_replies_is_refused_and_nothing_is_published_there() {
    // Given an agent, a display on everything under the prefix, and an MQTT 5 panel
    let broker = Mosquitto::start().await;
    let sim = sim(19, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut config = config(odoo_config(&sim), &db);
    config.mqtt = Some(mqtt(broker.port()));
    let agent = Agent::start(config).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 6).await;
    let display = Display::start(broker.port(), PREFIX).await;
    let panel = Panel::start(broker.port(), PREFIX, "station-a").await;
    display
        .wait(&format!("{PREFIX}/status"), "online", |v| v["state"] == "online")
        .await;
    let (client, mut events) = {
        let options = rumqttc::v5::MqttOptions::new("deputy", "127.0.0.1", broker.port());
        rumqttc::v5::AsyncClient::new(options, 10)
    };
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let ask = |id: &str, mo: i64, response_topic: &str| {
        let properties = rumqttc::v5::mqttbytes::v5::PublishProperties {
            response_topic: Some(response_topic.to_string()),
            correlation_data: Some(id.to_string().into()),
            ..Default::default()
        };
        let body = json!({"request_id": id, "operator": "o", "mo": mo, "auth_first": "1", "roll_number": "R"});
        client.publish_with_properties(
            format!("{PREFIX}/cmd/station-a/register-mo"),
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            body.to_string(),
            properties,
        )
    };

    // When a panel asks for replies on the displays' topics and on another station's commands
    let hostile = [
        ("d1", 1, format!("{PREFIX}/status")),
        ("d2", 2, format!("{PREFIX}/line/L1")),
        ("d3", 3, format!("{PREFIX}/mo/5")),
        ("d4", 4, format!("{PREFIX}/cmd/station-b/register-mo")),
        ("d5", 5, format!("{PREFIX}/reply/station-b")),
    ];
    for (id, mo, topic) in &hostile {
        ask(id, *mo, topic).await.unwrap();
    }
    // Then each gets bad_response_topic on the station's own reply topic and is not applied
    for (id, mo, topic) in &hostile {
        let reply = panel.reply_for(id).await;
        assert_eq!(reply["error"]["code"], "bad_response_topic", "{topic}: {reply}");
        let ready: bool = reader(&db)
            .query_row("SELECT ready_for_production FROM mo WHERE id = ?1", [mo], |r| r.get(0))
            .unwrap();
        assert!(!ready, "MO {mo} was registered through {topic}");
    }
    // When it asks within its own reply space, then the answer goes there with its correlation
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (listener, mut listener_events) = {
        let options = rumqttc::v5::MqttOptions::new("own-replies", "127.0.0.1", broker.port());
        rumqttc::v5::AsyncClient::new(options, 10)
    };
    listener
        .subscribe(
            format!("{PREFIX}/reply/station-a/panel-1"),
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        while let Ok(event) = listener_events.poll().await {
            match event {
                rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::SubAck(_)) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::Publish(p)) => {
                    let _ = tx.send(p);
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .expect("the listener subscribed")
        .unwrap();
    ask("ok1", 6, &format!("{PREFIX}/reply/station-a/panel-1"))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let correlation = answer.properties.and_then(|p| p.correlation_data);
    assert_eq!(correlation.as_deref(), Some(&b"ok1"[..]));
    assert_eq!(panel.reply_for("ok1").await["ok"], true);
    // And nothing of a reply's shape reached the displays' topics or a command topic, and no
    // command was taken as station-b's
    // (checked once the display has the last reply: the agent answers in order, so every
    // earlier publish of its has reached the display by then)
    wait_until("the display seeing the last reply", Duration::from_secs(10), || {
        display
            .history
            .lock()
            .unwrap()
            .iter()
            .any(|(t, p)| t.ends_with("/reply/station-a/panel-1") && p.contains("ok1"))
    })
    .await;
    let history = display.history.lock().unwrap().clone();
    for (topic, payload) in &history {
        let reply = serde_json::from_str::<serde_json::Value>(payload).is_ok_and(|v| v.get("ok").is_some());
        assert!(
            !reply || topic.contains("/reply/station-a"),
            "{topic} carried a reply: {payload}"
        );
        assert!(!topic.contains("station-b"), "{topic} was published to: {payload}");
    }
    let station_b: i64 = reader(&db)
        .query_row(
            "SELECT count(*) FROM command_log WHERE station = 'station-b'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(station_b, 0);

    agent.stop().await;
}

/// The shipped ACL, for this test's gateway.
fn shipped_acl() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/mosquitto-linegate.acl");
    std::fs::read_to_string(path).unwrap().replace("line-gw-1", GATEWAY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_acl_keeps_stations_apart_and_displays_from_commanding() {
    // Given mosquitto with the shipped ACL and an account each for the agent, two stations and
    // a display
    let accounts = ["linegate", "ws-a", "ws-b", "display"].map(|u| (u.to_string(), format!("{u}-secret")));
    let broker = Mosquitto::start_with(BrokerOptions {
        accounts: accounts.to_vec(),
        acl: Some(shipped_acl()),
        log: true,
        ..Default::default()
    })
    .await;
    let sim = sim(19, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut config = config(odoo_config(&sim), &db);
    let mut m = mqtt(broker.port());
    m.set_login("linegate", "linegate-secret");
    config.mqtt = Some(m);
    let agent = Agent::start(config).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 4).await;
    let a = Panel::start_as(broker.port(), PREFIX, "ws-a", Some(("ws-a", "ws-a-secret"))).await;
    let b = Panel::start_as(broker.port(), PREFIX, "ws-b", Some(("ws-b", "ws-b-secret"))).await;
    // Station A's account listening on B's replies, and a display posing as both
    let a_on_b = Panel::start_as(broker.port(), PREFIX, "ws-b", Some(("ws-a", "ws-a-secret"))).await;
    let display_as_a = Panel::start_as(broker.port(), PREFIX, "ws-a", Some(("display", "display-secret"))).await;
    let display_as_itself =
        Panel::start_as(broker.port(), PREFIX, "display", Some(("display", "display-secret"))).await;
    let display = Display::start_as(broker.port(), PREFIX, Some(("display", "display-secret"))).await;
    display
        .wait(&format!("{PREFIX}/mo/1"), "the display reads state", |v| v["id"] == 1)
        .await;

    // When A commands as A, as B, and the display commands as A and as itself
    let register =
        |id: &str, mo: i64| json!({"request_id": id, "operator": "o", "mo": mo, "auth_first": "1", "roll_number": "R"});
    assert_eq!(a.send("register-mo", register("a-own", 1)).await["ok"], true);
    a_on_b.publish("register-mo", register("a-as-b", 2).to_string()).await;
    display_as_a
        .publish("register-mo", register("display-as-a", 3).to_string())
        .await;
    display_as_itself
        .publish("register-mo", register("display-itself", 4).to_string())
        .await;
    // And B, after them, commands as B
    assert_eq!(b.send("register-mo", register("b-own", 2)).await["ok"], true);

    // Then the broker refused the three others (the positive control: they were sent and
    // reached it; an ACL that let them through would fail here, not pass quietly)
    wait_until("the broker refusing the three", Duration::from_secs(10), || {
        broker.log().matches("Denied PUBLISH from panel-").count() == 3
    })
    .await;
    // And only the stations' own commands were applied
    let applied: Vec<String> = {
        let conn = reader(&db);
        let mut stmt = conn
            .prepare("SELECT request_id FROM command_log ORDER BY request_id")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(applied, ["a-own", "b-own"]);
    // And A's account never read B's reply: the broker sent it to one client, B
    assert!(
        a_on_b.replies().iter().all(|r| r["request_id"] != "b-own"),
        "{:?}",
        a_on_b.replies()
    );
    let log = broker.log();
    let reply_b = format!("'{PREFIX}/reply/ws-b'");
    let recipients: std::collections::HashSet<&str> = log
        .lines()
        .filter(|l| l.contains(&reply_b))
        .filter_map(|l| l.split("Sending PUBLISH to ").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(recipients.len(), 1, "B's reply went to {recipients:?}");
    assert!(b.replies().iter().all(|r| r["request_id"] != "a-own"));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_logged_in_as_one_station_cannot_act_as_another() {
    // Given mosquitto with the shipped ACL, the agent, and `linegate send` logged in as ws-a
    let accounts = ["linegate", "ws-a"].map(|u| (u.to_string(), format!("{u}-secret")));
    let broker = Mosquitto::start_with(BrokerOptions {
        accounts: accounts.to_vec(),
        acl: Some(shipped_acl()),
        ..Default::default()
    })
    .await;
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut agent_config = config(odoo_config(&sim), &db);
    let mut m = mqtt(broker.port());
    m.set_login("linegate", "linegate-secret");
    agent_config.mqtt = Some(m);
    let agent = Agent::start(agent_config).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 2).await;
    // Online: subscribed to its commands (a station may read the status)
    Display::start_as(broker.port(), PREFIX, Some(("ws-a", "ws-a-secret")))
        .await
        .wait(&format!("{PREFIX}/status"), "the agent online", |v| {
            v["state"] == "online"
        })
        .await;
    let cli = tempfile::tempdir().unwrap();
    let password = cli.path().join("mqtt-password");
    std::fs::write(&password, "ws-a-secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mqtt_section = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\ngateway_id = \"{GATEWAY}\"\nusername = \"ws-a\"\npassword_file = {:?}\n",
        broker.port(),
        password
    );
    let file = write_config(cli.path(), &sim, &mqtt_section);
    let register = |id: &str, mo: i64| {
        format!(r#"{{"request_id":"{id}","operator":"o","mo":{mo},"auth_first":"1","roll_number":"R"}}"#)
    };

    // When it sends as its own station, then the command is applied (the positive control)
    let own = output(linegate(&file, &["send", "ws-a", "register-mo", &register("a-own", 1)])).await;
    assert_eq!(own.status.code(), Some(0), "{}", text(&own));

    // When it sends as ws-b, then the broker refuses it, it exits 1 saying so, and the agent
    // applied nothing
    let other = output(linegate(
        &file,
        &["send", "ws-b", "register-mo", &register("a-as-b", 2)],
    ))
    .await;
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(text(&other).contains("the broker refused"), "{}", text(&other));
    let applied: Vec<String> = {
        let conn = reader(&db);
        let mut stmt = conn.prepare("SELECT request_id FROM command_log").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(applied, ["a-own"]);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_database_refuses_to_start() {
    // Given `linegate run` on a database
    let sim = sim(19, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "");
    let db = dir.path().join("linegate.db");
    let mut first = linegate(&config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the first agent's sync", Duration::from_secs(15), || mo_count(&db) == 3).await;

    // When a second one is started with the same configuration
    let second = output(linegate(&config, &["run"])).await;

    // Then it exits non-zero at once, saying why, and the first runs on
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        text(&second).contains("another linegate is running on") && text(&second).contains("agent-lock"),
        "{}",
        text(&second)
    );
    assert!(first.try_wait().unwrap().is_none(), "the first agent stopped");
    // And `sync --once` beside it still works (it takes the sync's lock, not the agent's)
    let once = output(linegate(&config, &["sync", "--once"])).await;
    assert!(matches!(once.status.code(), Some(0 | 1)), "{}", text(&once));
    first.kill().unwrap();
    first.wait().unwrap();
}

// --- Bad input -----------------------------------------------------------------------------

#[test]
fn check_config_reads_a_pipe_once_and_says_when_there_is_nothing_to_do() {
    // Given a configuration given on standard input
    let dir = tempfile::tempdir().unwrap();
    let text_of = |cmd: &mut std::process::Command, input: &str| {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let good = format!(
        "[store]\npath = {:?}\n[mqtt]\nhost = \"127.0.0.1\"\ngateway_id = \"gw\"\n",
        dir.path().join("x.db")
    );
    // When it is checked, then it is read once and found ok
    let out = text_of(&mut linegate(Path::new("/dev/stdin"), &["check-config"]), &good);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // And an empty file, or one with no source and no broker, is refused saying what is missing
    for nothing in [
        String::new(),
        format!("[store]\npath = {:?}\n", dir.path().join("x.db")),
    ] {
        let out = text_of(&mut linegate(Path::new("/dev/stdin"), &["check-config"]), &nothing);
        assert_eq!(out.status.code(), Some(78), "{nothing:?}: {}", text(&out));
        assert!(text(&out).contains("nothing to do"), "{}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_sync_once_stops_between_pages_with_the_signals_code() {
    // Given a slow Odoo with 2000 MOs, synced in pages of 100 by `sync --once`
    let sim = sim(19, 2000).await;
    sim.set_latency(Duration::from_millis(30));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, "page_size = 100\n");
    let db = dir.path().join("linegate.db");
    let child = linegate(&config, &["sync", "--once", "odoo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("some pages", Duration::from_secs(30), || mo_count(&db) >= 300).await;

    // When SIGTERM (and, in another run, SIGINT) arrives mid-run
    signal(&child, libc::SIGTERM);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();

    // Then it exits 143 (128 + SIGTERM), saying it stopped, with whole pages and an empty WAL
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    assert!(text(&out).contains("odoo: stopped"), "{}", text(&out));
    let stored = mo_count(&db);
    assert!(stored % 100 == 0 && stored < 2000, "{stored} MOs");
    let wal = dir.path().join("linegate.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the store was closed"
    );
    let check: String = reader(&db)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let child = linegate(&config, &["sync", "--once", "odoo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("more pages", Duration::from_secs(30), || mo_count(&db) >= stored + 200).await;
    signal(&child, libc::SIGINT);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
}

// --- Faults --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_is_kept_aside_and_the_agent_starts_afresh() {
    // Given a store with operator data, then damaged (a torn write in the middle of the file)
    let sim = sim(19, 300).await;
    let dir = tempfile::tempdir().unwrap();
    let config_file = write_config(dir.path(), &sim, "");
    let db = dir.path().join("linegate.db");
    let out = output(linegate(&config_file, &["sync", "--once", "odoo"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    reader(&db)
        .execute(
            "UPDATE mo SET auth_first = '000100', ready_for_production = 1, operator = 'ana' WHERE id IN (7, 8)",
            [],
        )
        .unwrap();
    // An index's page torn (as a power cut mid-write leaves it): the MOs' own rows are intact.
    let (page_size, index_root): (i64, i64) = {
        let conn = reader(&db);
        let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let root = conn
            .query_row("SELECT rootpage FROM sqlite_schema WHERE name = 'mo_name'", [], |r| {
                r.get(0)
            })
            .unwrap();
        (page_size, root)
    };
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        // Pages count from 1; the page's header and cell pointers, overwritten.
        file.seek(SeekFrom::Start(((index_root - 1) * page_size) as u64))
            .unwrap();
        file.write_all(&[0xAB; 512]).unwrap();
    }
    let damaged = std::fs::read(&db).unwrap();

    // When the agent starts
    let mut child = linegate(&config_file, &["run"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Then it keeps the damaged file aside, starts a fresh store and pulls Odoo's MOs again
    let kept_aside = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(".damaged-"))
    };
    wait_until("the damaged store kept aside", Duration::from_secs(20), kept_aside).await;
    wait_until("a fresh store, synced", Duration::from_secs(20), || {
        mo_count(&db) == 300
    })
    .await;
    let kept_file = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.to_string_lossy();
                name.contains("linegate.db.damaged-") && !name.ends_with("-wal") && !name.ends_with("-shm")
            })
            .unwrap()
    };
    // (Restoring beside the running agent is refused: a panel's command could meet it.)
    let beside = output(linegate(
        &config_file,
        &["salvage", "--restore", kept_file().to_str().unwrap()],
    ))
    .await;
    assert_eq!(beside.status.code(), Some(1), "{}", text(&beside));
    assert!(text(&beside).contains("the agent is running"), "{}", text(&beside));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(text(&out).contains("the database is damaged"), "{}", text(&out));
    // And the damaged file is kept, byte for byte, beside it
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("linegate.db.damaged-") && !p.to_string_lossy().ends_with("-wal"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), damaged);
    // And `linegate salvage` reads the operator data out of it
    let out = output(linegate(&config_file, &["salvage", kept[0].to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.contains("\"id\":7") && l.contains("000100")),
        "{}",
        text(&out)
    );

    // When an operator has registered MO 8 on the fresh store since, and `salvage --restore`
    // runs with the agent stopped
    reader(&db)
        .execute(
            "UPDATE mo SET auth_first = '000900', ready_for_production = 1, operator = 'budi' WHERE id = 8",
            [],
        )
        .unwrap();
    let restore = || linegate(&config_file, &["salvage", "--restore", kept[0].to_str().unwrap()]);
    let out = output(restore()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Then MO 7 has its operator data back, recorded as the salvage's doing, and MO 8 keeps
    // the newer registration
    let (auth, ready, operator): (String, bool, String) = reader(&db)
        .query_row(
            "SELECT auth_first, ready_for_production, operator FROM mo WHERE id = 7",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((auth.as_str(), ready, operator.as_str()), ("000100", true, "ana"));
    let auth_8: String = reader(&db)
        .query_row("SELECT auth_first FROM mo WHERE id = 8", [], |r| r.get(0))
        .unwrap();
    assert_eq!(auth_8, "000900");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("MO 7: restored"), "{}", text(&out));
    assert!(stdout.contains("MO 8: kept as it is"), "{}", text(&out));
    // (the refusal is not logged: a later restore may try MO 8 again)
    assert_eq!(
        common::count(&db, "SELECT count(*) FROM command_log WHERE station = 'salvage'"),
        1
    );
    // And a second restore from the same file writes nothing
    let again = output(restore()).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("MO 7: restored before"),
        "{}",
        text(&again)
    );
    assert!(text(&again).contains("0 of 2 MOs restored"), "{}", text(&again));
}

/// A small tmpfs of our own (the tests run as root, as the README's test command says), so that
/// a full or read-only disk is real, not simulated.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root: run the tests as the README says"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }

    /// Fills the file system with a file of zeros until it is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `linegate status --json` for a config that names `db`, as JSON.
async fn status_json(db: &Path, dir: &Path) -> serde_json::Value {
    let file = dir.join("status.toml");
    std::fs::write(&file, format!("[store]\npath = {db:?}\n")).unwrap();
    let out = output(linegate(&file, &["status", "--json"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_commands_says_so_everywhere_and_recovers_by_itself() {
    // Given an agent whose store is on a small file system, a display and a panel
    let disk = Tmpfs::mount("3m");
    let broker = Mosquitto::start().await;
    let sim = sim(19, 20).await;
    let db = disk.path().join("linegate.db");
    let mut config = config(odoo_config(&sim), &db);
    config.mqtt = Some(mqtt(broker.port()));
    let agent = Agent::start(config).await;
    wait_until("the first sync", Duration::from_secs(10), || mo_count(&db) == 20).await;
    let display = Display::start(broker.port(), PREFIX).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-1").await;
    let status_topic = format!("{PREFIX}/status");
    display
        .wait(&status_topic, "online, store ok", |v| {
            v["state"] == "online" && v["store"]["state"] == "ok"
        })
        .await;

    // When the disk fills up and operators go on registering MOs
    let filler = disk.fill();
    let mut accepted = Vec::new();
    let mut refused = None;
    for mo in 1..=20 {
        let id = format!("full-{mo}");
        let reply = panel
            .send(
                "register-mo",
                json!({"request_id": id, "operator": "o", "mo": mo, "auth_first": "1", "roll_number": "R"}),
            )
            .await;
        if reply["ok"] == true {
            accepted.push(mo);
        } else {
            refused = Some(reply);
            break;
        }
    }
    // Then a write the disk cannot take is refused with `internal` (never acknowledged as done)
    let refused = refused.expect("a full disk refused no write");
    assert_eq!(refused["error"]["code"], "internal", "{refused}");
    // And the status topic, `status --json` and the reason say the store is full
    let status = display
        .wait(&status_topic, "store full", |v| v["store"]["state"] == "full")
        .await;
    assert!(status["store"]["reason"].as_str().unwrap().contains("free"), "{status}");
    assert_eq!(status["state"], "online", "the agent serves on");
    assert_eq!(
        status_json(&db, disk.path().parent().unwrap()).await["store"]["state"],
        "full"
    );

    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send it again with the same request_id"),
        "{refused}"
    );

    // When space returns
    std::fs::remove_file(filler).unwrap();
    // Then the store says ok by itself, and commands are applied again
    display
        .wait(&status_topic, "store ok again", |v| v["store"]["state"] == "ok")
        .await;
    // And the refused command, sent again with its request_id, is applied: `internal` was not
    // a final reply (docs/mqtt.md); and from then on its reply is that one
    let resend = || async {
        let id = refused["request_id"].clone();
        let seen = |p: &Panel| p.replies().iter().filter(|r| r["request_id"] == id).count();
        let before = seen(&panel);
        let body =
            json!({"request_id": id, "operator": "o", "mo": accepted.len() + 1, "auth_first": "1", "roll_number": "R"});
        panel.publish("register-mo", body.to_string()).await;
        wait_until("the reply to the resent command", Duration::from_secs(10), || {
            seen(&panel) > before
        })
        .await;
        panel
            .replies()
            .into_iter()
            .rev()
            .find(|r| r["request_id"] == id)
            .unwrap()
    };
    let again = resend().await;
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(resend().await, again);
    let reply = panel
        .send(
            "register-mo",
            json!({"request_id": "after-full", "operator": "o", "mo": 20, "auth_first": "1", "roll_number": "R"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    // And every write acknowledged while the disk filled is in the store
    for mo in accepted {
        let ready: bool = reader(&db)
            .query_row("SELECT ready_for_production FROM mo WHERE id = ?1", [mo], |r| r.get(0))
            .unwrap();
        assert!(ready, "MO {mo} was acknowledged but is not registered");
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_is_served_and_said_to_be_read_only() {
    // Given a store made by a sync, on a file system then remounted read-only
    let disk = Tmpfs::mount("8m");
    let sim = sim(19, 5).await;
    let config_file = write_config(disk.path(), &sim, "");
    let db = disk.path().join("linegate.db");
    let out = output(linegate(&config_file, &["sync", "--once", "odoo"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    disk.remount("ro");

    // When the agent starts on it with a broker
    let broker = Mosquitto::start().await;
    let mut config = config(odoo_config(&sim), &db);
    config.mqtt = Some(mqtt(broker.port()));
    let display = Display::start(broker.port(), PREFIX).await;
    let agent = Agent::start(config).await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-1").await;

    // Then the displays get the MOs it holds, and the status says read-only, with the reason,
    // not an Odoo failure
    display.wait(&format!("{PREFIX}/mo/5"), "MO 5", |v| v["id"] == 5).await;
    let status = display
        .wait(&format!("{PREFIX}/status"), "store read-only", |v| {
            v["store"]["state"] == "read-only"
        })
        .await;
    assert!(
        status["store"]["reason"].as_str().unwrap().contains("read-only"),
        "{status}"
    );
    // (Odoo itself is fine: reading from it works, only storing fails.)
    assert!(
        ["unknown", "up"].contains(&status["uplink"]["odoo"]["state"].as_str().unwrap()),
        "{status}"
    );
    // And a command is refused, and `status --json` says read-only too
    let reply = panel
        .send(
            "register-mo",
            json!({"request_id": "ro-1", "operator": "o", "mo": 1, "auth_first": "1", "roll_number": "R"}),
        )
        .await;
    assert_eq!(reply["error"]["code"], "internal", "{reply}");
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(status_json(&db, dir.path()).await["store"]["state"], "read-only");
    agent.stop().await;
    disk.remount("rw");
}

/// Counts the MQTT connections `client_id` makes to `port` while it is held (from the CONNECT
/// each sends), answering none of them.
fn count_attempts(
    port: u16,
    client_id: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    use std::io::Read;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the broker's port is free");
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut attempts = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                    let mut connect = [0u8; 512];
                    let n = conn.read(&mut connect).unwrap_or(0);
                    if connect[..n].windows(client_id.len()).any(|w| w == client_id.as_bytes()) {
                        attempts += 1;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        attempts
    })
}

async fn broker_away_and_back(persistence: bool) {
    // Given an agent with 50 MOs on a broker
    let mut broker = Mosquitto::start_with(BrokerOptions {
        persistence,
        ..Default::default()
    })
    .await;
    let port = broker.port();
    let sim = sim(19, 50).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut config = config(odoo_config(&sim), &db);
    config.mqtt = Some(mqtt(port));
    let agent = Agent::start(config).await;
    let display = Display::start(port, PREFIX).await;
    display
        .wait(&format!("{PREFIX}/mo/50"), "MO 50", |v| v["id"] == 50)
        .await;

    // When the broker is away for 10 s (its port answering nothing)
    if persistence {
        broker.terminate().await;
    } else {
        broker.kill().await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = count_attempts(port, "linegate-gw-fault", stop.clone());
    tokio::time::sleep(Duration::from_secs(10)).await; // the outage itself
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let attempts = counter.join().unwrap();
    broker.resume().await;

    // Then the agent kept trying, without a storm (its backoff tops out at 1.6 s)
    assert!((3..=25).contains(&attempts), "{attempts} connection attempts in 10 s");
    // And a display that comes fresh sees the gateway online and every MO
    let fresh = Display::start(port, PREFIX).await;
    fresh
        .wait(&format!("{PREFIX}/status"), "online again", |v| v["state"] == "online")
        .await;
    fresh
        .wait(&format!("{PREFIX}/mo/50"), "MO 50 again", |v| v["id"] == 50)
        .await;
    eprintln!("persistence {persistence}: {attempts} attempts in 10 s");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_gone_and_back_without_persistence_gets_everything_again() {
    broker_away_and_back(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_gone_and_back_with_persistence_gets_everything_again() {
    broker_away_and_back(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_during_a_republish_of_thousands_of_mos_are_all_acknowledged() {
    // Given an agent with 3000 MOs on a broker
    let mut broker = Mosquitto::start().await;
    let sim = sim(19, 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut config = config(odoo_config(&sim), &db);
    config.mqtt = Some(mqtt(broker.port()));
    let agent = Agent::start(config).await;
    wait_until("the first sync", Duration::from_secs(30), || mo_count(&db) == 3000).await;

    // When the broker restarts empty (the agent republishes every MO) and, once the agent is
    // back on it, a panel sends 100 queries into that republish
    broker.restart().await;
    let display = Display::start(broker.port(), PREFIX).await;
    display
        .wait(&format!("{PREFIX}/status"), "the agent back", |v| {
            v["state"] == "online"
        })
        .await;
    let panel = Panel::start(broker.port(), PREFIX, "ws-r").await;
    for i in 0..100 {
        panel
            .publish("running-mo", json!({"request_id": format!("q{i}")}).to_string())
            .await;
    }
    // Then every one is answered: no acknowledgement was lost, so the broker never stopped
    // handing commands over
    for i in 0..100 {
        let reply = panel.reply_for(&format!("q{i}")).await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
    // And a write after them is applied too
    let reply = panel
        .send(
            "register-mo",
            json!({"request_id": "w1", "operator": "o", "mo": 1, "auth_first": "1", "roll_number": "R"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_queued_in_the_agents_session_across_a_broker_restart_are_applied_once_and_shown() {
    // Given an agent with 500 MOs on a broker that keeps sessions across its restarts
    let mut broker = Mosquitto::start_with(BrokerOptions {
        persistence: true,
        ..Default::default()
    })
    .await;
    let port = broker.port();
    let sim = sim(19, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut config = config(odoo_config(&sim), &db);
    config.mqtt = Some(mqtt(port));
    let agent = Agent::start(config.clone()).await;
    let display = Display::start(port, PREFIX).await;
    display
        .wait(&format!("{PREFIX}/mo/500"), "MO 500", |v| v["id"] == 500)
        .await;

    // When the agent is away, a panel registers 20 MOs (the broker queues them in the agent's
    // session), the broker restarts from its saved state, and the agent comes back: the queued
    // commands arrive as soon as it connects, while its republish of 500 MOs is under way
    agent.stop().await;
    let panel = Panel::start(port, PREFIX, "ws-q").await;
    let register = |i: i64| json!({"request_id": format!("q{i}"), "operator": "o", "mo": i * 25, "auth_first": "1", "roll_number": "R"});
    for i in 1..=20 {
        panel.publish("register-mo", register(i).to_string()).await;
    }
    wait_until("the broker holding the commands", Duration::from_secs(10), || {
        panel.acked() == 20
    })
    .await;
    broker.terminate().await;
    broker.resume().await;
    let panel = Panel::start(port, PREFIX, "ws-q").await;
    let agent = Agent::start(config).await;

    // Then every queued command is applied once and answered
    for i in 1..=20 {
        let reply = panel.reply_for(&format!("q{i}")).await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
    assert_eq!(common::count(&db, "SELECT count(*) FROM command_log"), 20);
    // And a display that comes fresh ends with every registered MO as registered, not with
    // the republish's older view of it
    let fresh = Display::start(port, PREFIX).await;
    for i in 1..=20 {
        fresh
            .wait(&format!("{PREFIX}/mo/{}", i * 25), "registered", |v| {
                v["operator"]["ready_for_production"] == true
            })
            .await;
    }
    fresh
        .wait(&format!("{PREFIX}/mo/500"), "MO 500", |v| v["id"] == 500)
        .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_leaves_the_outbox_only_on_the_brokers_acknowledgement() {
    use linegate_sim::sicantik::{NewPermit, SimSicantik, SimSicantikConfig};
    // Given a permit 20 days from expiry, and a broker whose ACL refuses the agent the
    // reminder topic (it answers the publish with PUBACK "not authorized")
    let permits = SimSicantik::start(SimSicantikConfig {
        rate_limit: Some(200.0),
        ..Default::default()
    })
    .await
    .unwrap();
    let day = |d: i64| common::regency_date(linegate::clock::now_unix(), d);
    permits.add_permit(NewPermit {
        pendaftaran_id: "0007000000000001".into(),
        n_pemohon: "PT Sumber Rejeki".into(),
        n_perizinan: "IZIN USAHA INDUSTRI".into(),
        no_surat: "503.530.570/1/DPMPPTSP-DS/11/2026/KK".into(),
        d_terima_berkas: day(-100),
        d_berlaku_izin: Some(day(20)),
        tgl_surat: day(-100),
        telp_pemohon: "0812-3456-7890".into(),
        a_pemohon: "Jl. Veteran 1".into(),
        has_company: true,
    });
    let everything_but_reminders = format!(
        "user linegate\n{}\nuser display\ntopic read {PREFIX}/#\n",
        ["status", "mo/#", "line/#", "permits/expiring", "cmd/#", "reply/#"]
            .map(|t| format!("topic readwrite {PREFIX}/{t}"))
            .join("\n")
    );
    let accounts = vec![
        ("linegate".to_string(), "l".to_string()),
        ("display".to_string(), "d".to_string()),
    ];
    let mut broker = Mosquitto::start_with(BrokerOptions {
        accounts: accounts.clone(),
        acl: Some(everything_but_reminders),
        log: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut sicantik = linegate::config::SicantikConfig::new(permits.url());
    sicantik.rate_limit = 200.0;
    let mut m = mqtt(broker.port());
    m.set_login("linegate", "l");
    let config = linegate::config::Config {
        store: linegate::config::StoreConfig {
            path: db.clone(),
            ..Default::default()
        },
        odoo: None,
        mqtt: Some(m),
        sicantik: Some(sicantik),
        web: None,
        log: Default::default(),
    };
    let agent = Agent::start(config).await;
    let display = Display::start_as(broker.port(), PREFIX, Some(("display", "d"))).await;
    let undelivered = || {
        common::count(
            &db,
            "SELECT count(*) FROM outbox WHERE channel = 'mqtt' AND delivered_at IS NULL",
        )
    };

    // When the reminder is produced and published, then the broker's refusal keeps it queued
    display
        .wait(&format!("{PREFIX}/permits/expiring"), "the summary", |v| {
            v["counts"]["critical"] == 1
        })
        .await;
    wait_until("the reminder queued", Duration::from_secs(10), || undelivered() == 1).await;
    wait_until("the broker refusing it", Duration::from_secs(10), || {
        broker.log().contains("Denied PUBLISH") && broker.log().contains("permits/reminder")
    })
    .await;
    wait_until("the refusal recorded", Duration::from_secs(10), || {
        common::count(
            &db,
            "SELECT count(*) FROM outbox WHERE channel = 'mqtt' AND attempts >= 1 \
             AND last_error LIKE '%refused%' AND next_at > created_at",
        ) == 1
    })
    .await;
    assert_eq!(undelivered(), 1, "a refused reminder was marked delivered");
    assert!(display.json(&format!("{PREFIX}/permits/reminder")).is_none());

    // When the agent restarts on a broker that lets it through (its ACL mended)
    agent.stop().await;
    broker.kill().await;
    let open = format!("user linegate\ntopic readwrite {PREFIX}/#\nuser display\ntopic read {PREFIX}/#\n");
    let mended = Mosquitto::start_with(BrokerOptions {
        accounts,
        acl: Some(open),
        ..Default::default()
    })
    .await;
    let mut m = mqtt(mended.port());
    m.set_login("linegate", "l");
    let config = linegate::config::Config {
        store: linegate::config::StoreConfig {
            path: db.clone(),
            ..Default::default()
        },
        odoo: None,
        mqtt: Some(m),
        sicantik: Some(linegate::config::SicantikConfig::new(permits.url())),
        web: None,
        log: Default::default(),
    };
    let display = Display::start_as(mended.port(), PREFIX, Some(("display", "d"))).await;
    let agent = Agent::start(config).await;
    // Then it goes out once, and only then leaves the outbox
    display
        .wait(&format!("{PREFIX}/permits/reminder"), "the reminder", |v| {
            v["pendaftaran_id"] == "0007000000000001"
        })
        .await;
    wait_until("the reminder delivered", Duration::from_secs(10), || undelivered() == 0).await;
    agent.stop().await;
}

/// The kill -9 stream: `kills` times, the agent is killed at a random moment while a panel
/// sends `commands` register commands, and started again; returns (kills, commands acknowledged).
async fn kill_stream(kills: usize, commands: usize) -> (usize, usize) {
    // Given an agent process on a broker, with as many MOs as commands to come
    let broker = Mosquitto::start().await;
    let sim = sim(19, commands).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let config = write_config(
        dir.path(),
        &sim,
        // (a delivery killed mid-call is looked up again after a second, not Odoo's 150 s:
        // the simulated Odoo carries a call out at once, or never)
        &format!(
            "[odoo.push]\nsettle_time = \"1s\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\ngateway_id = \"{GATEWAY}\"\n",
            broker.port()
        ),
    );
    let start = || {
        linegate(&config, &["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut agent = start();
    wait_until("the first sync", Duration::from_secs(30), || {
        mo_count(&db) == commands as i64
    })
    .await;
    let display = Display::start(broker.port(), PREFIX).await;
    display
        .wait(&format!("{PREFIX}/status"), "online", |v| v["state"] == "online")
        .await;
    let panel = std::sync::Arc::new(Panel::start(broker.port(), PREFIX, "ws-k").await);

    // When the panel sends its commands at a steady pace while the agent is killed and restarted
    let sender = panel.clone();
    let pace = Duration::from_millis(20);
    let sending = tokio::spawn(async move {
        for mo in 1..=commands {
            let body = json!({"request_id": format!("k{mo}"), "operator": "o", "mo": mo, "mid_production": true});
            sender.publish("register-mo", body.to_string()).await;
            tokio::time::sleep(pace).await; // the panel's pace, not a wait for a condition
        }
    });
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // A random moment: while it starts, syncs, republishes or applies commands.
        tokio::time::sleep(Duration::from_millis(30 + seed % 250)).await;
        agent.kill().unwrap();
        agent.wait().unwrap();
        agent = start();
    }
    sending.await.unwrap();

    // Then every command is applied exactly once and the database is sound
    let all = commands as i64;
    wait_until("every command applied", Duration::from_secs(60), || {
        common::count(&db, "SELECT count(*) FROM command_log WHERE station = 'ws-k'") == all
    })
    .await;
    // And the panel has a reply for every one (a reply lost with the agent comes again when
    // the broker hands the unacknowledged command over to the next run)
    let answered = || {
        panel
            .replies()
            .iter()
            .filter(|r| r["ok"] == true)
            .map(|r| r["request_id"].to_string())
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    wait_until("a reply to every command", Duration::from_secs(30), || {
        answered() == commands
    })
    .await;
    // And Odoo got every result once, though deliveries were killed mid-call too
    wait_until("every result in Odoo", Duration::from_secs(60), || {
        common::count(
            &db,
            "SELECT count(*) FROM outbox WHERE channel = 'odoo' AND delivered_at IS NULL",
        ) == 0
    })
    .await;
    for mo in 1..=commands as i64 {
        let notes = sim
            .messages(mo)
            .iter()
            .filter(|m| m["body"].as_str().is_some_and(|b| b.contains("linegate: ")))
            .count();
        assert_eq!(notes, 1, "MO {mo}: {:?}", sim.messages(mo));
    }
    agent.kill().unwrap();
    agent.wait().unwrap();
    let conn = reader(&db);
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let registered: i64 = conn
        .query_row("SELECT count(*) FROM mo WHERE ready_for_production", [], |r| r.get(0))
        .unwrap();
    assert_eq!(registered, all, "every MO registered once: none lost");
    let refused: i64 = conn
        .query_row("SELECT count(*) FROM command_log WHERE NOT ok", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        refused, 0,
        "no command applied twice (a second register would be refused)"
    );
    let acknowledged = panel
        .replies()
        .iter()
        .filter(|r| r["ok"] == true)
        .map(|r| r["request_id"].clone())
        .collect::<std::collections::HashSet<_>>()
        .len();
    (kills, acknowledged)
}

/// 50 kills here; the soak runs 1,000 and more: `SOAK_KILLS=1000 cargo test --release --test
/// faults kill_9` (see the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9s_during_a_command_stream_lose_and_double_nothing() {
    let kills = std::env::var("SOAK_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(50);
    let commands = (kills * 6).max(300);
    let (kills, acknowledged) = kill_stream(kills, commands).await;
    eprintln!("soak: {kills} kills, {commands} commands, {acknowledged} answered to the panel, 0 lost, 0 doubled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_republish_still_says_offline() {
    // Given an agent republishing 3000 MOs to a broker that lost them
    let mut broker = Mosquitto::start().await;
    let sim = sim(19, 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut config = config(odoo_config(&sim), &db);
    config.mqtt = Some(mqtt(broker.port()));
    let agent = Agent::start(config).await;
    wait_until("the first sync", Duration::from_secs(30), || mo_count(&db) == 3000).await;
    broker.restart().await;
    let display = Display::start(broker.port(), PREFIX).await;
    let status = format!("{PREFIX}/status");
    display
        .wait(&status, "the agent back", |v| v["state"] == "online")
        .await;

    // When it is told to stop, mid-republish
    agent.stop().await;

    // Then its own goodbye reached the displays (not the broker's last will)
    let goodbye = display.wait(&status, "offline", |v| v["state"] == "offline").await;
    assert!(
        goodbye.get("reason").is_none(),
        "the last will, not a goodbye: {goodbye}"
    );
}
