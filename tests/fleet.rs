//! A plant, not a line: two gateways, each with its agent and its own mosquitto, bridged to one
//! plant broker with the shipped bridge example (packaging/examples/mosquitto-bridge.conf), as
//! docs/fleet.md lays it out. Three real mosquitto processes; the plant network between them is
//! a link the tests can cut.
mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{config, count, odoo_config, sim, wait_until, Agent, Display, Mosquitto, Panel};
use linegate::config::MqttConfig;
use linegate_sim::link::Link;
use linegate_sim::mosquitto::BrokerOptions;
use linegate_sim::odoo::SimOdoo;
use serde_json::{json, Value};

/// One gateway: its broker (bridged to the plant), its Odoo, its agent and database.
struct Gateway {
    id: String,
    broker: Mosquitto,
    link: Link,
    db: PathBuf,
    agent: Option<Agent>,
    _sim: SimOdoo,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start(id: &str, plant: &Mosquitto) -> Gateway {
        Gateway::start_as(id, plant, false).await
    }

    /// Its bridge logging in to the plant broker as `id` (`login`), or anonymous.
    async fn start_as(id: &str, plant: &Mosquitto, login: bool) -> Gateway {
        let link = Link::start(([127, 0, 0, 1], plant.port()).into()).await.unwrap();
        let broker = Mosquitto::start_with(BrokerOptions {
            persistence: true,
            extra: Some(linegate_sim::mosquitto::shipped_bridge(
                id,
                link.port,
                login.then(|| format!("{id}-secret")).as_deref(),
            )),
            ..Default::default()
        })
        .await;
        let sim = sim(19, 3).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("linegate.db");
        let mut agent_config = config(odoo_config(&sim), &db);
        agent_config.mqtt = Some(MqttConfig::new("127.0.0.1", broker.port(), id));
        let agent = Agent::start_online(agent_config, broker.port(), &prefix(id)).await;
        Gateway {
            id: id.to_string(),
            broker,
            link,
            db,
            agent: Some(agent),
            _sim: sim,
            _dir: dir,
        }
    }

    /// A panel on this gateway's own broker, at `station`.
    async fn local_panel(&self, station: &str) -> Panel {
        Panel::start(self.broker.port(), &prefix(&self.id), station).await
    }

    fn commands(&self) -> i64 {
        count(&self.db, "SELECT count(*) FROM command_log")
    }

    async fn stop(mut self) {
        self.agent.take().unwrap().stop().await;
    }
}

/// An agent's config with its store in `dir`, on `sim` and `broker`, as `gateway`.
fn agent_in(dir: &tempfile::TempDir, sim: &SimOdoo, broker: &Mosquitto, gateway: &str) -> linegate::config::Config {
    let mut c = config(odoo_config(sim), &dir.path().join("linegate.db"));
    c.mqtt = Some(MqttConfig::new("127.0.0.1", broker.port(), gateway));
    c
}

fn prefix(gateway: &str) -> String {
    format!("linegate/{gateway}")
}

fn register(request_id: &str, mo: i64, line: &str) -> Value {
    json!({"request_id": request_id, "operator": "ana", "mo": mo, "auth_first": "000100", "roll_number": "R-1", "line": line})
}

/// The plant broker (no persistence: a restart empties it) and a view of every line on it.
async fn plant() -> (Mosquitto, Display) {
    let broker = Mosquitto::start().await;
    let view = Display::start(broker.port(), "linegate").await;
    (broker, view)
}

/// Publishes `payload` retained at QoS 1 as a client of its own (`login`: user, password),
/// and waits for the broker's PUBACK: it has taken it, or refused it (an ACL), either way.
async fn publish_retained(port: u16, id: &str, login: Option<(&str, &str)>, topic: &str, payload: &Value) {
    use rumqttc::v5::{mqttbytes::v5::Packet, mqttbytes::QoS, AsyncClient, Event, MqttOptions};
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .publish(topic, QoS::AtLeastOnce, true, payload.to_string())
        .await
        .unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(events.poll().await, Ok(Event::Incoming(Packet::PubAck(_)))) {}
    })
    .await;
    assert!(answered.is_ok(), "the broker answered the publish on {topic}");
}

/// Waits until the plant view shows `gateway`'s MO `mo` in `phase`.
async fn shows(view: &Display, gateway: &str, mo: i64, phase: &str) {
    view.wait(
        &format!("linegate/{gateway}/mo/{mo}"),
        &format!("{gateway}'s MO {mo} {phase} on the plant view"),
        |v| v["phase"] == phase,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plant_sees_every_gateway_and_a_command_from_above_reaches_its_gateway_only() {
    // Given two gateways bridged to the plant broker, and a view of the plant
    let (plant, view) = plant().await;
    let one = Gateway::start("gw-1", &plant).await;
    let two = Gateway::start("gw-2", &plant).await;

    // Then the plant view has both gateways' retained state, and their bridges up
    for gw in ["gw-1", "gw-2"] {
        view.wait(&format!("linegate/{gw}/status"), "online", |v| {
            v["state"] == "online" && v["gateway"] == gw
        })
        .await;
        shows(&view, gw, 1, "waiting").await;
        view.wait(&format!("linegate/{gw}/bridge"), "the bridge up", |v| *v == 1)
            .await;
    }

    // When a central panel on the plant broker registers MO 1 at gateway 2's station ws-9
    let central = Panel::start(plant.port(), &prefix("gw-2"), "ws-9").await;
    let reply = central.send("register-mo", register("up-1", 1, "L1")).await;

    // Then gateway 2 applied it and its reply came back up; gateway 1 applied nothing
    assert_eq!(reply["ok"], true, "{reply}");
    shows(&view, "gw-2", 1, "ready").await;
    assert_eq!(two.commands(), 1);
    assert_eq!(one.commands(), 0);
    assert_eq!(view.json("linegate/gw-1/mo/1").unwrap()["phase"], "waiting");
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plant_network_outage_loses_nothing_either_way() {
    // Given two gateways bridged to the plant broker, and a central panel at gateway 1
    let (plant, view) = plant().await;
    let one = Gateway::start("gw-1", &plant).await;
    let two = Gateway::start("gw-2", &plant).await;
    shows(&view, "gw-1", 1, "waiting").await;
    let central = Panel::start(plant.port(), &prefix("gw-1"), "ws-9").await;

    // When gateway 1's link to the plant is cut
    one.link.cut();
    view.wait("linegate/gw-1/bridge", "the bridge down (its will)", |v| *v == 0)
        .await;

    // Then its line keeps taking commands on its own broker
    let local = one.local_panel("ws-1").await;
    let reply = local.send("register-mo", register("local-1", 1, "L1")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    // And a command sent from above meanwhile waits on the plant broker (it has it: PUBACK)
    central
        .publish("register-mo", register("up-2", 2, "L1").to_string())
        .await;
    wait_until("the plant broker holding the command", Duration::from_secs(10), || {
        central.acked() == 1
    })
    .await;
    assert_eq!(
        view.json("linegate/gw-1/mo/1").unwrap()["phase"],
        "waiting",
        "the plant saw nothing yet"
    );

    // When the link returns
    one.link.restore();

    // Then the plant sees what the line did, and the command from above is applied and answered
    view.wait("linegate/gw-1/bridge", "the bridge up again", |v| *v == 1)
        .await;
    shows(&view, "gw-1", 1, "ready").await;
    assert_eq!(central.reply_for("up-2").await["ok"], true);
    shows(&view, "gw-1", 2, "ready").await;
    assert_eq!(one.commands(), 2);
    assert_eq!(two.commands(), 0);
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_goes_up_waits_for_the_link_across_a_restart_of_the_gateways_broker() {
    // Given a gateway bridged to the plant, a plant view of everything, and the link cut
    let (plant, view) = plant().await;
    let mut one = Gateway::start("gw-1", &plant).await;
    shows(&view, "gw-1", 1, "waiting").await;
    one.link.cut();
    view.wait("linegate/gw-1/bridge", "the bridge down (its will)", |v| *v == 0)
        .await;

    // When the line registers MO 1 (its reply is not retained: only the bridge's queue keeps
    // it for the plant), and then the gateway's broker restarts as systemd restarts it
    let local = one.local_panel("ws-1").await;
    assert_eq!(local.send("register-mo", register("cut-1", 1, "L1")).await["ok"], true);
    one.broker.terminate().await;
    one.broker.resume().await;
    // (the agent is back on it: a command's round trip)
    let local = one.local_panel("ws-1").await;
    assert_eq!(local.send("register-mo", register("cut-2", 2, "L1")).await["ok"], true);
    let queued_at = view.history.lock().unwrap().len();

    // When the link returns
    one.link.restore();

    // Then the plant gets the reply made before the restart, and the line's state
    wait_until(
        "the reply from before the restart on the plant",
        Duration::from_secs(15),
        || {
            view.history.lock().unwrap()[queued_at..]
                .iter()
                .any(|(topic, payload)| topic == "linegate/gw-1/reply/ws-1" && payload.contains("\"cut-1\""))
        },
    )
    .await;
    shows(&view, "gw-1", 1, "ready").await;
    shows(&view, "gw-1", 2, "ready").await;
    one.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plant_broker_restart_leaves_the_lines_working_and_the_view_whole_again() {
    // Given two gateways bridged to the plant broker
    let (mut plant, view) = plant().await;
    let one = Gateway::start("gw-1", &plant).await;
    let two = Gateway::start("gw-2", &plant).await;
    for gw in ["gw-1", "gw-2"] {
        shows(&view, gw, 1, "waiting").await;
    }

    // When the plant broker goes down (losing everything it held)
    plant.kill().await;

    // Then both lines keep taking commands
    for gw in [&one, &two] {
        let local = gw.local_panel("ws-1").await;
        let reply = local
            .send("register-mo", register(&format!("{}-1", gw.id), 1, "L1"))
            .await;
        assert_eq!(reply["ok"], true, "{reply}");
    }

    // When it returns, then the plant view is whole again: both gateways online, their MOs as
    // the lines left them, with nothing republished by hand
    view.forget();
    plant.resume().await;
    for gw in ["gw-1", "gw-2"] {
        view.wait(&format!("linegate/{gw}/status"), "online", |v| v["state"] == "online")
            .await;
        shows(&view, gw, 1, "ready").await;
        shows(&view, gw, 2, "waiting").await;
    }
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_with_a_live_gateways_id_is_refused_and_the_first_keeps_its_line() {
    // Given gateway gw-1's agent live on its broker, as a display sees it
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start_online(agent_in(&dir, &sim, &broker, "gw-1"), broker.port(), &prefix("gw-1")).await;
    let display = Display::start(broker.port(), &prefix("gw-1")).await;
    let status = display
        .wait("linegate/gw-1/status", "gw-1 online", |v| v["state"] == "online")
        .await;
    let instance = status["instance"]
        .as_str()
        .expect("the status names its run")
        .to_string();

    // When a second `linegate run` starts with the same gateway_id, on a store of its own
    let other = tempfile::tempdir().unwrap();
    let mqtt = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\ngateway_id = \"gw-1\"\n",
        broker.port()
    );
    let file = common::bin::write_config(other.path(), &sim, &mqtt);
    let mut run = std::process::Command::new("timeout");
    run.arg("30")
        .arg(env!("CARGO_BIN_EXE_linegate"))
        .arg("--config")
        .arg(&file)
        .arg("run");
    run.env("RUST_LOG", "warn");
    let out = common::bin::output(run).await;

    // Then it refuses, exiting 78 (systemd does not restart it) and saying why
    assert_eq!(out.status.code(), Some(78), "{}", common::bin::text(&out));
    let said = common::bin::text(&out);
    assert!(
        said.contains("another linegate is live on the broker as gateway \"gw-1\""),
        "{said}"
    );
    // And the first keeps its line: its panel is answered, and then (a will from a lost
    // session would have come by now, ahead of the reply's effect on the display) its status
    // was never offline and is still its own
    let panel = Panel::start(broker.port(), &prefix("gw-1"), "ws-1").await;
    let reply = panel.send("register-mo", register("after-twin", 1, "L1")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    display
        .wait("linegate/gw-1/mo/1", "MO 1 ready on the display", |v| {
            v["phase"] == "ready"
        })
        .await;
    assert!(
        display
            .history
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == "linegate/gw-1/status")
            .all(|(_, p)| p.contains("\"online\"") && p.contains(&instance)),
        "{:?}",
        display.history.lock().unwrap()
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_status_left_by_a_crash_does_not_keep_the_gateway_from_starting() {
    // Given a retained `online` status of gw-7 whose agent is gone (killed before the broker
    // noticed: nobody answers under that id)
    let broker = Mosquitto::start().await;
    let stale = json!({"schema": 1, "state": "online", "gateway": "gw-7", "instance": "dead0000dead0000",
        "started_at": "2026-12-01T07:00:00Z"});
    publish_retained(broker.port(), "crashed-agent", None, "linegate/gw-7/status", &stale).await;

    // When its agent starts again, then it asks, gets no answer, and comes online
    let sim = sim(19, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start_online(agent_in(&dir, &sim, &broker, "gw-7"), broker.port(), &prefix("gw-7")).await;
    agent.stop().await;
}

/// The shipped plant ACL, its central panel at gateway gw-2.
fn shipped_plant_acl() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/examples/plant-linegate.acl"
    ))
    .unwrap()
    .replace("line-gw-2", "gw-2")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plant_acl_keeps_gateways_apart_and_central_panels_to_their_stations() {
    // Given the plant broker with the shipped plant ACL (its central panel at gateway gw-2),
    // accounts for two gateways' bridges, a dashboard and the central panel
    let acl = shipped_plant_acl();
    let accounts = ["gw-1", "gw-2", "dashboard", "hmi-1"].map(|u| (u.to_string(), format!("{u}-secret")));
    let plant = Mosquitto::start_with(BrokerOptions {
        accounts: accounts.to_vec(),
        acl: Some(acl),
        log: true,
        ..Default::default()
    })
    .await;
    let one = Gateway::start_as("gw-1", &plant, true).await;
    let two = Gateway::start_as("gw-2", &plant, true).await;

    // Then the dashboard sees both gateways through their bridges
    let dashboard = Display::start_as(plant.port(), "linegate", Some(("dashboard", "dashboard-secret"))).await;
    for gw in ["gw-1", "gw-2"] {
        shows(&dashboard, gw, 1, "waiting").await;
    }

    // When the central panel acts as gw-2's ws-9, then gw-2 applies it and its reply comes up
    let hmi = Some(("hmi-1", "hmi-1-secret"));
    let at_two = Panel::start_as(plant.port(), &prefix("gw-2"), "ws-9", hmi).await;
    assert_eq!(
        at_two.send("register-mo", register("hmi-ok", 1, "L1")).await["ok"],
        true
    );

    // When it tries gw-1's station ws-9, the dashboard tries to command, and gw-1's bridge
    // account tries gw-2's commands and state
    let at_one = Panel::start_as(plant.port(), &prefix("gw-1"), "ws-9", hmi).await;
    at_one
        .publish("register-mo", register("hmi-at-one", 1, "L1").to_string())
        .await;
    let dashboard_login = Some(("dashboard", "dashboard-secret"));
    let from_dashboard = Panel::start_as(plant.port(), &prefix("gw-2"), "ws-9", dashboard_login).await;
    from_dashboard
        .publish("register-mo", register("dashboard-cmd", 2, "L1").to_string())
        .await;
    let as_gw1 = Panel::start_as(plant.port(), &prefix("gw-2"), "ws-9", Some(("gw-1", "gw-1-secret"))).await;
    as_gw1
        .publish("register-mo", register("gw1-as-gw2", 2, "L1").to_string())
        .await;
    let forged = json!({"schema": 1, "id": 1, "name": "forged", "phase": "finished"});
    let gw1 = Some(("gw-1", "gw-1-secret"));
    publish_retained(plant.port(), "forger", gw1, "linegate/gw-2/mo/1", &forged).await;

    // Then the broker refused all four (the positive control: they reached it), nothing was
    // applied beyond the central panel's own command, and gw-2's state is its own
    wait_until("the plant broker refusing the four", Duration::from_secs(10), || {
        plant.log().matches("Denied PUBLISH from").count() >= 4
    })
    .await;
    // (and nothing of the bridges' own traffic)
    assert_eq!(plant.log().matches("Denied").count(), 4, "{}", plant.log());
    assert_eq!(one.commands(), 0);
    assert_eq!(two.commands(), 1);
    shows(&dashboard, "gw-2", 1, "ready").await;
    assert_ne!(dashboard.json("linegate/gw-2/mo/1").unwrap()["name"], "forged");
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_plant_acl_each_account_reads_only_its_own() {
    // Given the plant broker with the shipped ACL, and for the test an auditor who reads
    // everything and writes each account a sentinel (mosquitto grants every SUBSCRIBE and
    // filters what it delivers, so what matters is what arrives)
    let acl = format!(
        "pattern read linegate/sentinel/%u\n{}\nuser auditor\ntopic readwrite linegate/#\n",
        shipped_plant_acl()
    );
    let accounts = ["gw-1", "gw-2", "dashboard", "hmi-1", "auditor"].map(|u| (u.to_string(), format!("{u}-secret")));
    let plant = Mosquitto::start_with(BrokerOptions {
        accounts: accounts.to_vec(),
        acl: Some(acl),
        ..Default::default()
    })
    .await;
    let one = Gateway::start_as("gw-1", &plant, true).await;
    let two = Gateway::start_as("gw-2", &plant, true).await;
    let login = |user: &'static str| -> Option<(&str, &str)> {
        let password = match user {
            "gw-1" => "gw-1-secret",
            "dashboard" => "dashboard-secret",
            "hmi-1" => "hmi-1-secret",
            _ => "auditor-secret",
        };
        Some((user, password))
    };
    // Every account reads all of linegate/#, as far as the broker lets it
    let (dashboard, gw1, hmi, auditor) = (
        Display::start_as(plant.port(), "linegate", login("dashboard")).await,
        Display::start_as(plant.port(), "linegate", login("gw-1")).await,
        Display::start_as(plant.port(), "linegate", login("hmi-1")).await,
        Display::start_as(plant.port(), "linegate", login("auditor")).await,
    );

    // When the central panel commands gw-2's ws-9 and a panel on gw-2's own line its ws-1
    let central = Panel::start_as(plant.port(), &prefix("gw-2"), "ws-9", login("hmi-1")).await;
    assert_eq!(
        central.send("register-mo", register("hmi-1", 1, "L1")).await["ok"],
        true
    );
    let local = two.local_panel("ws-1").await;
    assert_eq!(
        local.send("register-mo", register("local-1", 2, "L1")).await["ok"],
        true
    );
    // and the auditor has seen all of it on the plant broker, then each account's sentinel
    // has reached it (what the broker had for it before is delivered by then)
    wait_until(
        "the auditor seeing the commands, replies and state",
        Duration::from_secs(15),
        || {
            ["cmd/ws-9/register-mo", "reply/ws-9", "reply/ws-1", "mo/1", "mo/2"]
                .iter()
                .all(|t| auditor.seen.lock().unwrap().contains_key(&format!("linegate/gw-2/{t}")))
        },
    )
    .await;
    for (user, view) in [("dashboard", &dashboard), ("gw-1", &gw1), ("hmi-1", &hmi)] {
        let sentinel = format!("linegate/sentinel/{user}");
        publish_retained(
            plant.port(),
            &format!("auditor-{user}"),
            login("auditor"),
            &sentinel,
            &json!({}),
        )
        .await;
        wait_until(&format!("{user}'s sentinel"), Duration::from_secs(10), || {
            view.seen.lock().unwrap().contains_key(&sentinel)
        })
        .await;
    }

    // Then the dashboard got every gateway's state, and no command or reply
    let topics =
        |view: &Display| -> Vec<String> { view.history.lock().unwrap().iter().map(|(t, _)| t.clone()).collect() };
    let seen = topics(&dashboard);
    assert!(
        seen.iter().any(|t| t == "linegate/gw-1/mo/1") && seen.iter().any(|t| t == "linegate/gw-2/mo/2"),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|t| t.contains("/cmd/") || t.contains("/reply/")),
        "{seen:?}"
    );
    // gw-1's account got its own link state, and nothing of gw-2's
    let seen = topics(&gw1);
    assert!(seen.iter().any(|t| t == "linegate/gw-1/bridge"), "{seen:?}");
    assert!(!seen.iter().any(|t| t.starts_with("linegate/gw-2/")), "{seen:?}");
    // The central panel's account got its own station's replies, not the line's, nor commands
    let seen = topics(&hmi);
    assert!(seen.iter().any(|t| t == "linegate/gw-2/reply/ws-9"), "{seen:?}");
    assert!(
        !seen.iter().any(|t| t.contains("/reply/ws-1") || t.contains("/cmd/")),
        "{seen:?}"
    );
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_started_at_once_under_one_id_settle_on_one() {
    // Given two agents started together under one gateway id (neither sees the other yet, so
    // both get past the probe), each with its own store
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = tokio::join!(
        Agent::start(agent_in(&a, &sim, &broker, "gw-5")),
        Agent::start(agent_in(&b, &sim, &broker, "gw-5"))
    );

    // Then within seconds one of them stops, refusing as the newer twin, and the other keeps
    // the line: online, and answering its panel (under one client id they took the session
    // from each other, at times before its subscription was made: 8 of 120 loaded runs were
    // deaf when the link subscribed only in a new session)
    wait_until("one of the twins stopping", Duration::from_secs(30), || {
        first.is_finished() || second.is_finished()
    })
    .await;
    let (stopped, kept) = if first.is_finished() {
        (first, second)
    } else {
        (second, first)
    };
    let why = stopped.outcome().await.expect_err("the twin refused");
    assert!(matches!(why, linegate::app::AppError::Twin(_)), "{why}");
    assert!(!kept.is_finished());
    let panel = Panel::start(broker.port(), &prefix("gw-5"), "ws-1").await;
    let reply = panel.send("register-mo", register("kept-1", 1, "L1")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    // And the retained status is the kept one's, online (not the will of the one that stopped)
    let late = Display::start(broker.port(), &prefix("gw-5")).await;
    late.wait("linegate/gw-5/status", "the kept agent's status", |v| {
        v["state"] == "online"
    })
    .await;
    kept.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_gateways_holding_one_mo_only_the_first_to_report_reaches_odoo() {
    // Given two gateways on one Odoo whose MO domains overlap: both hold MOs 1 and 2
    let broker = Mosquitto::start().await;
    let sim = sim(19, 2).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = Agent::start_online(agent_in(&a, &sim, &broker, "gw-1"), broker.port(), &prefix("gw-1")).await;
    let two = Agent::start_online(agent_in(&b, &sim, &broker, "gw-2"), broker.port(), &prefix("gw-2")).await;
    let (panel_1, panel_2) = (
        Panel::start(broker.port(), &prefix("gw-1"), "ws-1").await,
        Panel::start(broker.port(), &prefix("gw-2"), "ws-1").await,
    );
    let display_2 = Display::start(broker.port(), &prefix("gw-2")).await;
    let linegate_notes = |mo: i64| -> Vec<String> {
        sim.messages(mo)
            .iter()
            .filter_map(|m| m["body"].as_str().map(str::to_string))
            .filter(|b| b.contains("linegate: "))
            .collect()
    };

    // When gateway 1 registers MO 1 and its note is in Odoo, and then gateway 2 does too
    let reply = panel_1.send("register-mo", register("one-1", 1, "L1")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    wait_until("gateway 1's note", Duration::from_secs(15), || {
        linegate_notes(1).len() == 1
    })
    .await;
    let reply = panel_2.send("register-mo", register("two-1", 1, "L7")).await;
    assert_eq!(reply["ok"], true, "the floor works on regardless: {reply}");

    // Then gateway 2's result for MO 1 waits for a person, saying which gateway has the MO
    let shown = display_2
        .wait(&format!("{}/mo/1", prefix("gw-2")), "MO 1 parked", |v| {
            v["pending_upload"]["parked"].is_string()
        })
        .await;
    let reason = shown["pending_upload"]["parked"].as_str().unwrap();
    assert!(
        reason.contains("gateway gw-1 reported on this MO in Odoo first"),
        "{reason}"
    );
    assert!(reason.contains("odoo.mo_domain disjoint"), "{reason}");

    // And gateway 1 goes on reporting on MO 1, gateway 2 on an MO of its own alone
    let reply = panel_1
        .send(
            "start-production",
            json!({"request_id": "one-2", "operator": "ana", "mo": 1, "leader_id": "0042"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = panel_2.send("register-mo", register("two-2", 2, "L7")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    wait_until("both gateways' own notes", Duration::from_secs(15), || {
        linegate_notes(1).len() == 2 && linegate_notes(2).len() == 1
    })
    .await;
    // Odoo heard of MO 1 from gateway 1 only, and of MO 2 from gateway 2
    for note in linegate_notes(1) {
        assert!(note.contains("[linegate gateway gw-1]"), "{note}");
    }
    assert!(linegate_notes(2)[0].contains("[linegate gateway gw-2]"));
    one.stop().await;
    two.stop().await;
}
