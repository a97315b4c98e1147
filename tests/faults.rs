//! The fault suite: what an independent probe did to linegate from the outside — as an operator,
//! an electrician and an attacker on the plant network — each as a test that held (or failed)
//! against the real parts: the binary, its SQLite file, a real mosquitto with the shipped ACL,
//! MQTT 5 panels, and the simulated Odoo misbehaving on demand. The long forms (a thousand
//! kills, a million fuzz cases) are `cargo bench --bench soak` (see the README).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::bin::{linegate, output, signal, text, write_config};
use common::{config, mo_count, odoo_config, reader, sim, wait_until, Display, Mosquitto, Panel};
use linegate::config::MqttConfig;
use linegate::shutdown;
use linegate_sim::mosquitto::BrokerOptions;
use serde_json::json;

const GATEWAY: &str = "gw-fault";
const PREFIX: &str = "linegate/gw-fault";

struct Agent {
    trigger: shutdown::Trigger,
    task: tokio::task::JoinHandle<Result<(), linegate::app::AppError>>,
}

impl Agent {
    async fn start(config: linegate::config::Config) -> Agent {
        let (trigger, shutdown) = shutdown::channel();
        let task = tokio::spawn(linegate::app::run(config, shutdown));
        Agent { trigger, task }
    }

    async fn stop(self) {
        self.trigger.fire();
        self.task.await.unwrap().unwrap();
    }
}

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
    // And nothing of a reply's shape reached the displays' topics or a command topic, and no
    // command was taken as station-b's
    let seen = display.seen.lock().unwrap().clone();
    for (topic, payload) in &seen {
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
    tokio::spawn(async move {
        while let Ok(event) = listener_events.poll().await {
            if let rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::Publish(p)) = event {
                let _ = tx.send(p);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // the subscription settles
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

    // Then only the stations' own commands were applied
    let applied: Vec<String> = {
        let conn = reader(&db);
        let mut stmt = conn
            .prepare("SELECT request_id FROM command_log ORDER BY request_id")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(applied, ["a-own", "b-own"]);
    // And A's account never read B's reply
    assert!(
        a_on_b.replies().iter().all(|r| r["request_id"] != "b-own"),
        "{:?}",
        a_on_b.replies()
    );
    assert!(b.replies().iter().all(|r| r["request_id"] != "a-own"));
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
            "UPDATE mo SET auth_first = '000100', ready_for_production = 1, operator = 'ana' WHERE id = 7",
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
}
