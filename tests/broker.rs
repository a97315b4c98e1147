//! The demo's embedded broker (linegate_sim::broker) serves what the agent and the panels rely
//! on, proven with real MQTT 5 and 3.1.1 clients: persistent sessions and their expiry, QoS 1
//! resent on resume, retained messages and a retained will, both protocols on one port. Then the
//! agent on it across a restart, and `linegate demo` with nothing installed, end to end.
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{config, odoo_config, sim, wait_until, Agent, Display, Panel};
use linegate::config::MqttConfig;
use linegate_sim::broker::EmbeddedBroker;
use rumqttc::v5::mqttbytes::v5::{ConnectProperties, LastWill, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use serde_json::{json, Value};

/// What an MQTT 5 client's event loop has seen: each message (topic, payload, retain, dup) and
/// whether the last CONNACK said the session was there.
#[derive(Default)]
struct Seen {
    messages: Vec<(String, String, bool, bool)>,
    session_present: Option<bool>,
    subscribed: bool,
    disconnected: bool,
}

/// An MQTT 5 client whose event loop runs until the returned task is aborted (which drops the
/// connection without a DISCONNECT, as a pulled cable or a killed process would).
fn v5_client(
    options: MqttOptions,
    subscribe: Option<&str>,
    ack: bool,
) -> (AsyncClient, Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    let mut options = options;
    // Acknowledged by `poll` when `ack` says so, as the agent does once a command is stored.
    options.set_manual_acks(true);
    let (client, events) = AsyncClient::new(options, 100);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let task = tokio::spawn(poll(
        client.clone(),
        events,
        subscribe.map(str::to_string),
        ack,
        seen.clone(),
    ));
    (client, seen, task)
}

async fn poll(
    client: AsyncClient,
    mut events: EventLoop,
    subscribe: Option<String>,
    ack: bool,
    seen: Arc<Mutex<Seen>>,
) {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(c))) => {
                seen.lock().unwrap().session_present = Some(c.session_present);
                if let Some(filter) = &subscribe {
                    let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => seen.lock().unwrap().subscribed = true,
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => seen.lock().unwrap().disconnected = true,
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let message = (
                    String::from_utf8_lossy(&p.topic).to_string(),
                    String::from_utf8_lossy(&p.payload).to_string(),
                    p.retain,
                    p.dup,
                );
                seen.lock().unwrap().messages.push(message);
                if ack {
                    let _ = client.try_ack(&p);
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    options
}

/// Options for a client that keeps its session for an hour after it goes, as the agent does.
fn persistent(id: &str, port: u16) -> MqttOptions {
    let mut options = options(id, port);
    options.set_clean_start(false);
    options.set_connect_properties(ConnectProperties {
        session_expiry_interval: Some(3600),
        ..ConnectProperties::new()
    });
    options
}

async fn wait_for(seen: &Arc<Mutex<Seen>>, what: &str, check: impl Fn(&Seen) -> bool) {
    wait_until(what, Duration::from_secs(10), || check(&seen.lock().unwrap())).await;
}

/// Publishes at QoS 1 from a client of its own and waits until the broker has it (PUBACK).
async fn publish_v5(port: u16, topic: &str, payload: &str, retain: bool) {
    let (client, mut events) = AsyncClient::new(options(&format!("pub-{}", std::process::id()), port), 10);
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::PubAck(_)) = events.poll().await.expect("the broker answers") {
                return;
            }
        }
    })
    .await
    .expect("the broker acknowledged the message");
}

/// Every (topic, payload) a client received, in order.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A 3.1.1 client (what older panels speak): subscribes to `filter`, collects what comes, and
/// says when the broker granted the subscription.
fn v311_client(id: &str, port: u16, filter: &str) -> (rumqttc::AsyncClient, Received, Arc<Mutex<bool>>) {
    use rumqttc::{Event, Packet};
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
    let messages = Arc::new(Mutex::new(Vec::new()));
    let subscribed = Arc::new(Mutex::new(false));
    let (sink, suback) = (messages.clone(), subscribed.clone());
    let (sub, filter) = (client.clone(), filter.to_string());
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = sub.try_subscribe(filter.clone(), rumqttc::QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => *suback.lock().unwrap() = true,
                Ok(Event::Incoming(Packet::Publish(p))) => sink
                    .lock()
                    .unwrap()
                    .push((p.topic.clone(), String::from_utf8_lossy(&p.payload).to_string())),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    (client, messages, subscribed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_311_and_5_clients_share_one_port_and_its_retained_messages() {
    let broker = EmbeddedBroker::start().await.unwrap();
    // Given a retained message from an MQTT 5 client
    publish_v5(broker.port, "plant/a", "from five", true).await;

    // When a 3.1.1 client subscribes, then it gets it; and what it publishes reaches a 5 client
    let (client, got, subscribed) = v311_client("old-panel", broker.port, "plant/#");
    wait_until(
        "the retained message at the 3.1.1 client",
        Duration::from_secs(10),
        || got.lock().unwrap().contains(&("plant/a".into(), "from five".into())),
    )
    .await;
    wait_until("the 3.1.1 subscription", Duration::from_secs(10), || {
        *subscribed.lock().unwrap()
    })
    .await;
    let (_five, seen, task) = v5_client(options("new-display", broker.port), Some("plant/#"), true);
    wait_for(&seen, "the 5 client's subscription", |s| s.subscribed).await;
    client
        .publish("plant/b", rumqttc::QoS::AtLeastOnce, true, "from three")
        .await
        .unwrap();
    wait_for(&seen, "the 3.1.1 message at the 5 client", |s| {
        s.messages.iter().any(|m| m.0 == "plant/b" && m.1 == "from three")
    })
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_gets_at_once_what_came_while_it_was_away() {
    let broker = EmbeddedBroker::start().await.unwrap();
    // Given a client with a session of an hour, subscribed at QoS 1, that disconnects cleanly
    let (client, seen, task) = v5_client(persistent("agent-like", broker.port), Some("cmd/#"), true);
    wait_for(&seen, "the subscription", |s| s.subscribed).await;
    assert_eq!(seen.lock().unwrap().session_present, Some(false), "a new session");
    client.disconnect().await.unwrap();
    wait_for(&seen, "the DISCONNECT sent", |s| s.disconnected).await;
    task.abort();

    // When a command is published while it is away
    publish_v5(broker.port, "cmd/ws-1/start", "queued", false).await;

    // Then on its return the session is there (no new subscribe) and the command arrives
    let (_client, seen, task) = v5_client(persistent("agent-like", broker.port), None, true);
    wait_for(&seen, "the queued command", |s| {
        s.messages.iter().any(|m| m.1 == "queued")
    })
    .await;
    assert_eq!(seen.lock().unwrap().session_present, Some(true));
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_qos1_message_is_sent_again_when_the_session_resumes() {
    let broker = EmbeddedBroker::start().await.unwrap();
    // Given a persistent client that receives a command but never acknowledges it, then drops
    // off without a DISCONNECT (a crash before the command was handled)
    let (_client, seen, task) = v5_client(persistent("crashy", broker.port), Some("cmd/#"), false);
    wait_for(&seen, "the subscription", |s| s.subscribed).await;
    publish_v5(broker.port, "cmd/ws-1/end", "once", false).await;
    wait_for(&seen, "the command, unacknowledged", |s| {
        s.messages.iter().any(|m| m.1 == "once")
    })
    .await;
    task.abort();

    // When it reconnects, then the broker sends it again, marked as a duplicate
    let (_client, seen, task) = v5_client(persistent("crashy", broker.port), None, true);
    wait_for(&seen, "the command again", |s| s.messages.iter().any(|m| m.1 == "once")).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.session_present, Some(true));
    assert!(
        seen.messages.iter().find(|m| m.1 == "once").unwrap().3,
        "resent with DUP set"
    );
    drop(seen);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_an_expiry_ends_when_its_client_goes() {
    // As MQTT 5 says (3.1.2.11.2): no Session Expiry Interval means 0, so nothing is kept.
    let broker = EmbeddedBroker::start().await.unwrap();
    let mut short = options("forgetful", broker.port);
    short.set_clean_start(false);
    let (client, seen, task) = v5_client(short.clone(), Some("cmd/#"), true);
    wait_for(&seen, "the subscription", |s| s.subscribed).await;
    client.disconnect().await.unwrap();
    wait_for(&seen, "the DISCONNECT sent", |s| s.disconnected).await;
    task.abort();
    publish_v5(broker.port, "cmd/ws-1/start", "lost", false).await;

    // A kept session's messages come right after the CONNACK, before the broker reads anything
    // more from the client: a sentinel subscribed to and sent after it comes after them.
    let (_client, seen, task) = v5_client(short, Some("sentinel"), true);
    wait_for(&seen, "the sentinel's subscription", |s| s.subscribed).await;
    publish_v5(broker.port, "sentinel", "x", false).await;
    wait_for(&seen, "the sentinel", |s| s.messages.iter().any(|m| m.0 == "sentinel")).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.session_present, Some(false));
    assert!(seen.messages.iter().all(|m| m.1 != "lost"), "{:?}", seen.messages);
    drop(seen);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_qos0_display_gets_every_one_of_12000_retained_mos() {
    // `linegate watch` subscribes at QoS 0; the broker must not drop retained messages that
    // do not fit one client's lane (mqtt5's default lane holds 10,000).
    let broker = EmbeddedBroker::start().await.unwrap();
    const MOS: usize = 12_000;
    let (client, mut events) = AsyncClient::new(options("publisher", broker.port), 100);
    let publisher = tokio::spawn(async move {
        let mut acked = 0;
        let mut sent = 0;
        while acked < MOS {
            // A window of 50 in flight, published from outside the event loop's own polling.
            while sent < MOS && sent - acked < 50 {
                client
                    .try_publish(
                        format!("lg/mo/{sent}"),
                        QoS::AtLeastOnce,
                        true,
                        format!("{{\"id\":{sent}}}"),
                    )
                    .unwrap();
                sent += 1;
            }
            if let Event::Incoming(Packet::PubAck(_)) = events.poll().await.expect("the broker answers") {
                acked += 1;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), publisher)
        .await
        .expect("12,000 retained within a minute")
        .unwrap();

    let (display, mut events) = AsyncClient::new(options("late-display", broker.port), 100);
    let got = tokio::time::timeout(Duration::from_secs(60), async move {
        let mut topics = std::collections::HashSet::new();
        loop {
            match events.poll().await.expect("the broker answers") {
                Event::Incoming(Packet::ConnAck(_)) => {
                    display.try_subscribe("lg/mo/+", QoS::AtMostOnce).unwrap();
                }
                Event::Incoming(Packet::Publish(p)) if p.retain => {
                    topics.insert(p.topic);
                    if topics.len() == MOS {
                        return topics.len();
                    }
                }
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(got, Ok(MOS), "a late QoS 0 subscriber missed retained MOs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_will_tells_late_subscribers_the_client_is_gone() {
    let broker = EmbeddedBroker::start().await.unwrap();
    // Given a client that says it is online, with a retained "offline" as its will
    let mut with_will = persistent("gateway-x", broker.port);
    with_will.set_last_will(LastWill::new("g/x/status", "offline", QoS::AtLeastOnce, true, None));
    let (client, seen, task) = v5_client(with_will, None, true);
    wait_for(&seen, "the connection", |s| s.session_present.is_some()).await;
    client
        .publish("g/x/status", QoS::AtLeastOnce, true, "online")
        .await
        .unwrap();
    let (_d, display, watching) = v5_client(options("display-x", broker.port), Some("g/#"), true);
    wait_for(&display, "online", |s| s.messages.iter().any(|m| m.1 == "online")).await;

    // When it drops off without a DISCONNECT
    task.abort();

    // Then the will reaches the display, and a display that comes later finds it retained
    wait_for(&display, "the will", |s| s.messages.iter().any(|m| m.1 == "offline")).await;
    let (_l, late, late_task) = v5_client(options("late-display", broker.port), Some("g/#"), true);
    wait_for(&late, "the retained will", |s| {
        s.messages
            .iter()
            .any(|m| m.0 == "g/x/status" && m.1 == "offline" && m.2)
    })
    .await;
    assert!(!late.lock().unwrap().messages.iter().any(|m| m.1 == "online"));
    watching.abort();
    late_task.abort();
}

const PREFIX: &str = "linegate/emb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_picks_up_commands_sent_while_it_restarted_on_the_embedded_broker() {
    // Given the agent on the embedded broker, with a panel and a display
    let broker = EmbeddedBroker::start().await.unwrap();
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut agent_config = config(odoo_config(&sim), &db);
    agent_config.mqtt = Some(MqttConfig::new("127.0.0.1", broker.port, "emb"));
    let agent = Agent::start_online(agent_config.clone(), broker.port, PREFIX).await;
    let panel = Panel::start(broker.port, PREFIX, "ws-1").await;
    let display = Display::start(broker.port, PREFIX).await;
    display
        .wait(&format!("{PREFIX}/mo/1"), "MO 1 shown", |v| v["phase"] == "waiting")
        .await;
    let reply = panel
        .send("register-mo", json!({"request_id": "e1", "operator": "ana", "mo": 1, "auth_first": "000100", "roll_number": "R-1", "line": "L1"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");

    // When the agent stops, and a command comes while it is away (the broker holds it)
    agent.stop().await;
    display
        .wait(&format!("{PREFIX}/status"), "the agent offline", |v| {
            v["state"] == "offline"
        })
        .await;
    let acked = panel.acked();
    panel
        .publish(
            "start-production",
            json!({"request_id": "e2", "operator": "ana", "mo": 1, "leader_id": "007"}).to_string(),
        )
        .await;
    wait_until("the broker holding the command", Duration::from_secs(10), || {
        panel.acked() > acked
    })
    .await;

    // Then the agent, started again, is back online, gets the command from its session and
    // applies it: the panel has its reply and the display the running MO
    let agent = Agent::start_online(agent_config, broker.port, PREFIX).await;
    let reply = panel.reply_for("e2").await;
    assert_eq!(reply["ok"], true, "{reply}");
    display
        .wait(&format!("{PREFIX}/mo/1"), "MO 1 running", |v| {
            v["phase"] == "running" && v["operator"]["leader_id"] == "007"
        })
        .await;
    agent.stop().await;
    broker.stop().await;
}

/// `linegate demo` as a newcomer runs it, on a machine without mosquitto (`--broker auto`,
/// the default, with mosquitto hidden): its stdout, line by line, as it comes. Killed when
/// dropped, so a failing test leaves no demo behind.
struct Demo {
    child: Option<std::process::Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    fn start(dir: &std::path::Path) -> Demo {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_linegate"))
            .args(["demo", "--interval", "1", "--mos", "5", "--seconds", "120"])
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .env("LINEGATE_MOSQUITTO", "")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("linegate demo starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Demo {
            child: Some(child),
            lines,
        }
    }

    fn printed(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The broker's port, from the line the demo prints about it.
    async fn port(&self) -> u16 {
        let find = || {
            self.lines.lock().unwrap().iter().find_map(|l| {
                let rest = l.strip_prefix("embedded MQTT broker")?;
                rest.split("127.0.0.1:").nth(1)?.split_whitespace().next()?.parse().ok()
            })
        };
        wait_until("the demo's broker line", Duration::from_secs(30), || find().is_some()).await;
        find().unwrap()
    }

    /// The printed line that contains `part`, as typed into a shell.
    fn line_with(&self, part: &str) -> String {
        let lines = self.lines.lock().unwrap();
        let line = lines.iter().find(|l| l.contains(part));
        line.unwrap_or_else(|| panic!("no line with {part:?} in\n{}", lines.join("\n")))
            .trim()
            .to_string()
    }

    /// Ctrl-C, and its exit status within 15 s.
    async fn interrupt(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        common::bin::signal(&child, libc::SIGINT);
        let give_up = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(tokio::time::Instant::now() < give_up, "the demo did not stop on Ctrl-C");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a line the demo printed, as a newcomer pastes it into a second terminal.
async fn pasted(line: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(line).env("RUST_LOG", "warn");
    common::bin::output(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_without_mosquitto_serves_its_printed_panel_a_311_panel_and_displays() {
    // Given `linegate demo` on a machine without mosquitto, in an empty directory
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    let port = demo.port().await;
    let printed = demo.printed();
    assert!(
        printed.contains("mosquitto: mosquitto is not installed; the demo brings its own broker"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "mosquitto_pub -h 127.0.0.1 -p {port} -t linegate/demo/cmd/ws-1/register-mo"
        )),
        "{printed}"
    );

    // And a 3.1.1 client on every topic of the demo's gateway
    let (panel, got, subscribed) = v311_client("panel-311", port, "linegate/demo/#");
    wait_until("the 3.1.1 subscription", Duration::from_secs(10), || {
        *subscribed.lock().unwrap()
    })
    .await;
    let last = |topic: &str| -> Option<Value> {
        got.lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(t, _)| t == topic)
            .and_then(|(_, p)| serde_json::from_str(p).ok())
    };
    wait_until("MOs 1 and 2 synced and shown", Duration::from_secs(30), || {
        ["1", "2"]
            .iter()
            .all(|id| last(&format!("linegate/demo/mo/{id}")).is_some_and(|v| v["phase"] == "waiting"))
    })
    .await;

    // When the two `send` lines it printed are pasted into a shell
    for action in ["send ws-1 register-mo", "send ws-1 start-production"] {
        let out = pasted(&demo.line_with(action)).await;
        assert!(out.status.success(), "{action}: {}", common::bin::text(&out));
    }
    // Then MO 1 runs on L1, started by ana from ws-1
    wait_until("MO 1 running on L1", Duration::from_secs(10), || {
        last("linegate/demo/mo/1").is_some_and(|v| {
            v["phase"] == "running" && v["operator"]["leader_id"] == "007" && v["last_write"]["operator"] == "ana"
        }) && last("linegate/demo/line/L1").is_some_and(|v| v["running"][0]["id"] == 1)
    })
    .await;

    // When the 3.1.1 panel registers and starts MO 2 on line L2
    let send = |action: &str, body: Value| {
        let panel = panel.clone();
        let topic = format!("linegate/demo/cmd/ws-2/{action}");
        async move {
            panel
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, body.to_string())
                .await
                .unwrap()
        }
    };
    send(
        "register-mo",
        json!({"request_id":"d1","operator":"budi","mo":2,"auth_first":"000500","roll_number":"R-2","line":"L2"}),
    )
    .await;
    wait_until("MO 2 ready", Duration::from_secs(10), || {
        last("linegate/demo/mo/2").is_some_and(|v| v["phase"] == "ready")
    })
    .await;
    send(
        "start-production",
        json!({"request_id":"d2","operator":"budi","mo":2,"leader_id":"011"}),
    )
    .await;

    // Then both replies are ok, and MO 2's retained state and line L2 show it running
    wait_until("MO 2 running on L2", Duration::from_secs(10), || {
        last("linegate/demo/mo/2").is_some_and(|v| v["phase"] == "running" && v["operator"]["leader_id"] == "011")
            && last("linegate/demo/line/L2").is_some_and(|v| v["running"][0]["id"] == 2)
    })
    .await;
    let replies: Vec<Value> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == "linegate/demo/reply/ws-2")
        .filter_map(|(_, p)| serde_json::from_str(p).ok())
        .collect();
    for id in ["d1", "d2"] {
        let reply = replies.iter().find(|r| r["request_id"] == id);
        assert!(reply.is_some_and(|r| r["ok"] == true), "{id}: {replies:?}");
    }

    // And a display that subscribes later gets the retained state from the broker
    let (_late, late, task) = v5_client(options("late", port), Some("linegate/demo/mo/2"), true);
    wait_for(&late, "MO 2 retained", |s| {
        s.messages.iter().any(|m| m.2 && m.1.contains("\"phase\":\"running\""))
    })
    .await;
    task.abort();

    // And Ctrl-C stops the demo cleanly, leaving no broker files behind
    let status = demo.interrupt().await;
    assert!(status.success(), "{status}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with("linegate-demo"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
