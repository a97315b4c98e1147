//! The floor's screens (`linegate web`) as the floor uses them: in a real Chromium, against a
//! real mosquitto with the shipped ACL (an account per station, a display account), the agent
//! and the simulated Odoo. What an operator does on a panel must land in the store and on the
//! line's display; what the panel may do is the broker's to decide.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::browser::{screens_dir, Browser, ENTER};
use common::{config, mo_count, odoo_config, reader, sim, wait_until, Agent, Display, Mosquitto, Panel};
use linegate::config::{Config, MqttConfig, WebConfig};
use linegate_sim::mosquitto::BrokerOptions;
use linegate_sim::odoo::{NewMo, SimOdoo};
use serde_json::json;

const GATEWAY: &str = "gw-web";
const PREFIX: &str = "linegate/gw-web";

/// The broker's accounts: the agent, a display, two stations.
fn accounts() -> Vec<(String, String)> {
    ["linegate", "display", "ws-1", "ws-2"]
        .map(|u| (u.to_string(), format!("{u}-secret")))
        .to_vec()
}

fn shipped_acl() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/mosquitto-linegate.acl");
    std::fs::read_to_string(path).unwrap().replace("line-gw-1", GATEWAY)
}

/// `linegate web` in this process, stopped as SIGTERM would stop it.
struct Web {
    trigger: linegate::shutdown::Trigger,
    task: tokio::task::JoinHandle<Result<(), linegate::web::WebError>>,
    url: String,
    config: Config,
}

impl Web {
    async fn start(config: Config) -> Web {
        let (trigger, shutdown) = linegate::shutdown::channel();
        let (tx, bound) = tokio::sync::oneshot::channel();
        let kept = config.clone();
        let task = tokio::spawn(async move { linegate::web::run(&config, shutdown, Some(tx)).await });
        let bound = tokio::time::timeout(Duration::from_secs(10), bound)
            .await
            .expect("linegate web listens within 10 s")
            .expect("linegate web starts");
        let mut config = kept;
        // Started again, it listens where it did.
        if let Some(web) = config.web.as_mut() {
            web.set_listen(bound.addr);
        }
        Web {
            trigger,
            task,
            url: format!("http://{}", bound.addr),
            config,
        }
    }

    /// Stops it; what it needs to start again where it was.
    async fn stop(self) -> Config {
        self.trigger.fire();
        self.task.await.unwrap().unwrap();
        self.config
    }
}

/// A gateway on a line: broker, Odoo, agent, screens.
struct Floor {
    broker: Mosquitto,
    _sim: SimOdoo,
    db: PathBuf,
    config: Config,
    agent: Option<Agent>,
    web: Option<Web>,
    /// Where the screens are.
    url: String,
    _dir: tempfile::TempDir,
}

impl Floor {
    async fn start(mos: usize, persistence: bool) -> Floor {
        Floor::start_with_acl(mos, persistence, shipped_acl()).await
    }

    async fn start_with_acl(mos: usize, persistence: bool, acl: String) -> Floor {
        let broker = Mosquitto::start_with(BrokerOptions {
            accounts: accounts(),
            acl: Some(acl),
            persistence,
            ..Default::default()
        })
        .await;
        let sim = sim(19, mos).await;
        Floor::with(broker, sim, mos).await
    }

    async fn with(broker: Mosquitto, sim: SimOdoo, mos: usize) -> Floor {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("linegate.db");
        let mut config = config(odoo_config(&sim), &db);
        let mut mqtt = MqttConfig::new("127.0.0.1", broker.port(), GATEWAY);
        mqtt.set_login("linegate", "linegate-secret");
        config.mqtt = Some(mqtt);
        let display = Display::start_as(broker.port(), PREFIX, Some(("display", "display-secret"))).await;
        let agent = Agent::start(config.clone()).await;
        display
            .wait(&format!("{PREFIX}/status"), "the agent online", |v| {
                v["state"] == "online"
            })
            .await;
        wait_until("the first sync", Duration::from_secs(15), || {
            mo_count(&db) == mos as i64
        })
        .await;
        // The screens log in as the display; the agent's own login is not theirs to use.
        let mut web = WebConfig::new(([127, 0, 0, 1], 0).into(), dir.path().join("web"));
        web.set_display_login("display", "display-secret");
        web.add_station("ws-1", "L1");
        web.add_station("ws-2", "L1");
        let mut web_config = config.clone();
        if let Some(m) = web_config.mqtt.as_mut() {
            m.set_login("nobody", "");
        }
        web_config.web = Some(web);
        let web = Web::start(web_config).await;
        Floor {
            broker,
            _sim: sim,
            db,
            config,
            agent: Some(agent),
            url: web.url.clone(),
            web: Some(web),
            _dir: dir,
        }
    }

    /// One protected column of an MO, as the store holds it.
    fn protected(&self, mo: i64, column: &str) -> Option<String> {
        reader(&self.db)
            .query_row(&format!("SELECT {column} FROM mo WHERE id = ?1"), [mo], |r| r.get(0))
            .unwrap()
    }

    /// How many commands `station` sent with `action`, as the agent logged them.
    fn commands(&self, station: &str, action: &str) -> i64 {
        reader(&self.db)
            .query_row(
                "SELECT count(*) FROM command_log WHERE station = ?1 AND action = ?2",
                [station, action],
                |r| r.get(0),
            )
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(agent) = self.agent.take() {
            agent.stop().await;
        }
        if let Some(web) = self.web.take() {
            web.stop().await;
        }
    }
}

/// An HTTP response, as a raw client read it.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// A header's value (the first of its name).
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One request on a connection of its own, as anything on the network may send it.
async fn http(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let host = url.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(host).await.unwrap();
    exchange(stream, host, method, path, headers, body).await
}

async fn exchange<S>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    // A connection the server closes at once (refused) answers nothing: status 0.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 15 s");
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// MO 1 registered for line L1 (with `roll`, by `operator`) and started, from ws-1's MQTT panel.
async fn running_on_l1(floor: &Floor, operator: &str, roll: &str) {
    let ws1 = Panel::start_as(floor.broker.port(), PREFIX, "ws-1", Some(("ws-1", "ws-1-secret"))).await;
    for (action, body) in [
        (
            "register-mo",
            json!({"request_id": "r1", "operator": operator, "mo": 1, "auth_first": "000100", "roll_number": roll, "line": "L1"}),
        ),
        (
            "start-production",
            json!({"request_id": "r2", "operator": "ana", "mo": 1, "leader_id": "007"}),
        ),
    ] {
        assert_eq!(ws1.send(action, body).await["ok"], true, "{action}");
    }
}

/// A browser signed in as `station`'s panel, with `operator` typed in.
async fn panel(floor: &Floor, station: &str, width: u32, height: u32) -> Browser {
    let b = Browser::start(width, height).await;
    b.goto(&format!("{}/panel/{station}", floor.url)).await;
    b.wait_for("#password").await;
    b.click("#password").await;
    b.type_keys(&format!("{station}-secret{ENTER}")).await;
    b.wait_for("#action-register").await;
    b
}

/// The operator's name typed into the panel's Operator field, as a shift starts.
async fn as_operator(b: &Browser, name: &str) {
    b.click("#operator").await;
    b.type_keys(&format!("{name}{ENTER}")).await;
}

async fn choose(b: &Browser, action: &str) {
    b.click(&format!("#action-{action}")).await;
    b.wait_for("#action-form").await;
}

/// Waits for the panel's reply message, and returns its text.
async fn reply(b: &Browser, kind: &str) -> String {
    b.wait_text(
        &format!("#message.{kind} .message-text"),
        &format!("a {kind} reply"),
        |t| !t.is_empty(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_flow_through_the_panel_lands_in_the_store_and_on_the_display() {
    // Given a gateway with four MOs, a TV showing line L1 and ws-1's tablet, signed in
    let floor = Floor::start(4, false).await;
    let tv = Browser::start(1920, 1080).await;
    tv.goto(&format!("{}/line/L1", floor.url)).await;
    tv.wait_text(".running .empty", "an empty line", |t| !t.is_empty())
        .await;
    let tablet = panel(&floor, "ws-1", 1024, 600).await;
    as_operator(&tablet, "ana").await;

    // When the operator registers MO 1: picks it from the waiting list, scans the first code
    // and the roll
    choose(&tablet, "register").await;
    tablet.click("#mo-list button[data-mo='1']").await;
    tablet.scan("000100").await;
    tablet.scan("R-1").await;
    // Then the reply says so in Indonesian, and the store holds what was typed
    let said = reply(&tablet, "ok").await;
    assert!(said.contains("WH/MO/00001 didaftarkan"), "{said}");
    assert_eq!(floor.protected(1, "auth_first").as_deref(), Some("000100"));
    assert_eq!(floor.protected(1, "roll_number").as_deref(), Some("R-1"));
    assert_eq!(floor.protected(1, "line").as_deref(), Some("L1"));
    // And the TV lists it as ready
    tv.wait_text(".ready li[data-mo='1'] .r-name", "MO 1 ready on the TV", |t| {
        t == "WH/MO/00001"
    })
    .await;

    // When MO 2 is registered by scanning its name instead, and MO 1 started with its leader
    tablet.click("#f-mo").await;
    tablet.scan("WH/MO/00002").await;
    tablet.scan("000600").await;
    tablet.scan("R-2").await;
    reply(&tablet, "ok").await;
    assert_eq!(floor.protected(2, "auth_first").as_deref(), Some("000600"));
    choose(&tablet, "start").await;
    tablet.click("#mo-list button[data-mo='1']").await;
    tablet.scan("007").await;
    let said = reply(&tablet, "ok").await;
    assert!(said.contains("WH/MO/00001 dimulai"), "{said}");
    // Then the TV shows MO 1 running: its product, operator, leader, codes and roll
    let card = ".mo-card[data-mo='1']";
    tv.wait_text(&format!("{card} .mo-name"), "MO 1 running on the TV", |t| {
        t == "WH/MO/00001"
    })
    .await;
    // (waited for: the page redraws as states come, and an element read in between is gone)
    tv.wait_text(
        card,
        "MO 1's card with its operator, leader, codes, roll, product",
        |shown| {
            ["ana", "007", "000100", "R-1", "Table"]
                .iter()
                .all(|e| shown.contains(e))
        },
    )
    .await;
    assert_eq!(floor.protected(1, "leader_id").as_deref(), Some("007"));
    tv.screenshot(&screens_dir().join("display-1920x1080.png")).await;
    tv.resize(1024, 600).await;
    tv.wait_until(
        "document.querySelector('.mo-card').getBoundingClientRect().bottom <= innerHeight \
         && document.querySelector('.ready li').getBoundingClientRect().bottom <= innerHeight \
         && document.documentElement.scrollWidth <= innerWidth",
        "the board whole on 1024x600",
    )
    .await;
    tv.screenshot(&screens_dir().join("display-1024x600.png")).await;

    // When the operator changes over from MO 1 (the only one running: picked already) to MO 2
    choose(&tablet, "changeover").await;
    tablet
        .wait_until(
            "document.getElementById('f-current_mo').value === 'WH/MO/00001'",
            "MO 1 picked",
        )
        .await;
    tablet.click("#mo-list button[data-mo='2']").await;
    tablet.scan("000700").await;
    // The roll is optional: Enter on it asks for the confirmation
    tablet.type_keys(&ENTER.to_string()).await;
    let question = tablet
        .wait_text("#confirm h2", "the confirmation", |t| !t.is_empty())
        .await;
    assert!(
        question.contains("WH/MO/00001") && question.contains("WH/MO/00002"),
        "{question}"
    );
    tablet
        .screenshot(&screens_dir().join("panel-1024x600-confirm.png"))
        .await;
    assert_eq!(floor.protected(1, "auth_last"), None, "nothing before the confirmation");
    tablet.type_keys(&ENTER.to_string()).await;
    // Then MO 1 ended at 000699 and MO 2 runs from 000700
    let said = reply(&tablet, "ok").await;
    assert!(said.contains("000699"), "{said}");
    assert_eq!(floor.protected(1, "auth_last").as_deref(), Some("000699"));
    assert_eq!(floor.protected(2, "auth_first").as_deref(), Some("000700"));
    tv.wait_text(".mo-card[data-mo='2'] .mo-name", "MO 2 running on the TV", |t| {
        t == "WH/MO/00002"
    })
    .await;

    // When the operator scans the "End Production" barcode, then the next unused code 000900,
    // confirming with Enter: the scanner alone
    tablet.scan("LG-END").await;
    tablet
        .wait_until(
            "document.getElementById('action-end').classList.contains('chosen')",
            "End chosen",
        )
        .await;
    tablet
        .wait_until("document.getElementById('f-mo').value === 'WH/MO/00002'", "MO 2 picked")
        .await;
    tablet
        .wait_until(
            "document.activeElement.id === 'f-authenticity'",
            "the code field focused",
        )
        .await;
    tablet.type_keys("000900").await;
    let hint = tablet
        .wait_text("#code-hint", "the last code used", |t| t.contains("000899"))
        .await;
    assert!(hint.contains("200"), "produced 000700..000899: {hint}");
    tablet.screenshot(&screens_dir().join("panel-1024x600.png")).await;
    tablet.type_keys(&ENTER.to_string()).await;
    tablet.wait_for("#confirm").await;
    tablet.type_keys(&ENTER.to_string()).await;
    let said = reply(&tablet, "ok").await;
    assert!(said.contains("000899") && said.contains("200"), "{said}");
    // Then the store has the end, and the TV shows nothing running, and what MO 2 made
    assert_eq!(floor.protected(2, "auth_last").as_deref(), Some("000899"));
    tv.wait_text(".running .empty", "nothing running on the TV", |t| !t.is_empty())
        .await;
    let ended = tv
        .wait_text("#ended[data-mo='2']", "MO 2 as the line's last ended", |t| {
            !t.is_empty()
        })
        .await;
    // (200 made of the 3 planned: a loss of -197)
    assert!(
        ended.contains("WH/MO/00002") && ended.contains("200") && ended.contains("-197"),
        "{ended}"
    );
    // And each write was sent once
    for (action, n) in [
        ("register-mo", 2),
        ("start-production", 1),
        ("changeover", 1),
        ("end-production", 1),
    ] {
        assert_eq!(floor.commands("ws-1", action), n, "{action}");
    }
    tablet.close().await;
    tv.close().await;
    floor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_shows_its_sentence_in_the_operators_language_and_in_english() {
    // Given ws-1's panel on a 1280x800 tablet
    let floor = Floor::start(3, false).await;
    let tablet = panel(&floor, "ws-1", 1280, 800).await;
    as_operator(&tablet, "ana").await;
    // When the operator starts MO 3, which nobody registered, by scanning its name
    choose(&tablet, "start").await;
    tablet.click("#f-mo").await;
    tablet.scan("WH/MO/00003").await;
    tablet.scan("42").await;
    // Then the panel says why in Indonesian, and nothing was written
    let said = reply(&tablet, "bad").await;
    assert_eq!(said, "MO ini belum didaftarkan. Daftarkan dulu.");
    assert_eq!(floor.protected(3, "leader_id"), None);
    tablet
        .screenshot(&screens_dir().join("panel-1280x800-refused.png"))
        .await;
    // And in English once the operator switches
    tablet.click("#lang").await;
    tablet
        .wait_text("#message.bad .message-text", "the English sentence", |t| {
            t == "This MO is not registered yet. Register it first."
        })
        .await;
    tablet
        .wait_text("#action-register", "the actions in English", |t| t == "Register MO")
        .await;
    tablet.close().await;
    floor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_tap_a_retry_after_a_blip_and_a_reload_are_applied_once() {
    // Given ws-1's panel, the operator's MO picked and its codes typed
    let mut floor = Floor::start(3, false).await;
    let tablet = panel(&floor, "ws-1", 1024, 600).await;
    as_operator(&tablet, "ana").await;
    choose(&tablet, "register").await;
    tablet.click("#mo-list button[data-mo='1']").await;
    tablet.type_keys("000100").await;
    tablet.click("#f-roll_number").await;
    tablet.type_keys("R-1").await;
    // When the send button is tapped twice in a row
    tablet
        .eval("const b = document.getElementById('send'); b.click(); b.click(); return true")
        .await;
    // Then it is applied once: one command, one reply
    let said = reply(&tablet, "ok").await;
    assert!(said.contains("didaftarkan"), "{said}");
    assert_eq!(floor.commands("ws-1", "register-mo"), 1);

    // When the broker vanishes just as the operator starts MO 1, and comes back later
    floor.broker.kill().await;
    choose(&tablet, "start").await;
    tablet.click("#f-mo").await;
    tablet.scan("WH/MO/00001").await;
    tablet.scan("007").await;
    tablet
        .wait_text("#message.pending .message-text", "the panel waiting for a reply", |t| {
            !t.is_empty()
        })
        .await;
    // and the page is loaded again meanwhile (an operator's refresh, a kiosk's restart)
    tablet.goto(&format!("{}/panel/ws-1", floor.url)).await;
    tablet
        .wait_text(
            "#message.pending .message-text",
            "the reloaded panel asking again",
            |t| !t.is_empty(),
        )
        .await;
    floor.broker.resume().await;
    // Then the panel keeps asking with the same request_id, and the start is applied once
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        if let Some(said) = tablet.text("#message.ok .message-text").await {
            assert!(said.contains("dimulai"), "{said}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reply 45 s after the broker's return"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(floor.commands("ws-1", "start-production"), 1);
    assert_eq!(floor.protected(1, "leader_id").as_deref(), Some("007"));
    tablet.close().await;
    floor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_acts_only_as_its_own_station_and_the_broker_decides() {
    // Given the screens, and a device that knows only ws-1's password
    let floor = Floor::start(2, false).await;
    let device = Browser::start(1024, 600).await;
    // When it tries to sign in as ws-2 with ws-1's password
    device.goto(&format!("{}/panel/ws-2", floor.url)).await;
    device.click("#password").await;
    device.type_keys(&format!("ws-1-secret{ENTER}")).await;
    // Then the broker refuses the login, and the panel says so
    let said = reply(&device, "bad").await;
    assert_eq!(said, "Kata sandi salah: broker tidak menerimanya.");
    assert!(
        device.text("#action-register").await.is_none(),
        "no actions without a session"
    );
    // When it signs in as ws-1, its session opens ws-1's panel, and nothing of ws-2's
    device.goto(&format!("{}/panel/ws-1", floor.url)).await;
    device.click("#password").await;
    device.type_keys(&format!("ws-1-secret{ENTER}")).await;
    device.wait_for("#action-register").await;
    let cookie = device.client.get_named_cookie("linegate_panel").await.unwrap();
    let post = |station: &str| {
        let body = json!({"action": "ready-mo", "command": {"request_id": format!("q-{station}")}}).to_string();
        let cookie = format!("linegate_panel={}", cookie.value());
        let url = floor.url.clone();
        let path = format!("/panel/{station}/command");
        async move {
            http(
                &url,
                "POST",
                &path,
                &[("content-type", "application/json"), ("cookie", &cookie)],
                &body,
            )
            .await
        }
    };
    let own = post("ws-1").await;
    assert_eq!(own.status, 200);
    assert_eq!(own.json()["ok"], true);
    let other = post("ws-2").await;
    assert_eq!(other.status, 401, "ws-1's session on ws-2's panel");
    // And the cookie is the station's alone: HttpOnly, SameSite=Strict, on its own path
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_eq!(cookie.path(), Some("/panel/ws-1"));
    device.close().await;
    floor.stop().await;
}

/// Whether the display's banner is up, and what it says.
async fn banner(b: &Browser) -> Option<String> {
    let shown = b.eval("return !document.getElementById('banner').hidden").await;
    match shown.as_bool() {
        Some(true) => b.text("#banner").await,
        _ => None,
    }
}

async fn wait_banner(b: &Browser, what: &str, check: impl Fn(Option<&str>) -> bool) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = banner(b).await;
        if check(now.as_deref()) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_keeps_the_last_state_under_a_banner_while_anything_is_away() {
    // Given MO 1 running on line L1, on a TV
    let mut floor = Floor::start(2, false).await;
    running_on_l1(&floor, "ana", "R-1").await;
    let tv = Browser::start(1920, 1080).await;
    tv.goto(&format!("{}/line/L1", floor.url)).await;
    let running = ".mo-card[data-mo='1'] .mo-name";
    tv.wait_text(running, "MO 1 running", |t| t == "WH/MO/00001").await;
    assert_eq!(banner(&tv).await, None);

    // When the agent stops (it says so: offline), the last state stays under the banner
    let agent = floor.agent.take().unwrap();
    agent.stop().await;
    let shown = wait_banner(&tv, "the agent's banner", |b| {
        b.is_some_and(|b| b.contains("agen linegate"))
    })
    .await;
    let shown = shown.unwrap();
    assert!(shown.starts_with("OFFLINE sejak "), "{shown}");
    let time = &shown["OFFLINE sejak ".len()..][..5];
    assert!(
        time.chars().nth(2) == Some(':') && time.replace(':', "").chars().all(|c| c.is_ascii_digit()),
        "{shown}"
    );
    tv.wait_text(running, "the last state under the banner", |t| t == "WH/MO/00001")
        .await;
    tv.screenshot(&screens_dir().join("display-offline-1920x1080.png"))
        .await;
    // And clears when it is back
    floor.agent = Some(Agent::start(floor.config.clone()).await);
    wait_banner(&tv, "the banner to clear", |b| b.is_none()).await;

    // When the broker dies (nobody says anything), and comes back
    floor.broker.kill().await;
    wait_banner(&tv, "the broker's banner", |b| b.is_some_and(|b| b.contains("broker"))).await;
    tv.wait_text(running, "the last state under the banner", |t| t == "WH/MO/00001")
        .await;
    floor.broker.resume().await;
    wait_banner(&tv, "the banner to clear", |b| b.is_none()).await;
    tv.wait_text(running, "MO 1 running again", |t| t == "WH/MO/00001")
        .await;

    // When the screens' own server restarts (the gateway rebooting, say), on the same port
    let config = floor.web.take().unwrap().stop().await;
    wait_banner(&tv, "the link's banner", |b| b.is_some_and(|b| b.contains("layar ini"))).await;
    floor.web = Some(Web::start(config).await);
    // Then the page finds it again by itself
    wait_banner(&tv, "the banner to clear", |b| b.is_none()).await;
    tv.wait_text(running, "MO 1 running again", |t| t == "WH/MO/00001")
        .await;
    tv.close().await;
    floor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_name_holding_markup_shows_as_text() {
    // Given an MO whose product name, in Odoo, is markup
    let broker = Mosquitto::start_with(BrokerOptions {
        accounts: accounts(),
        acl: Some(shipped_acl()),
        ..Default::default()
    })
    .await;
    let sim = sim(19, 0).await;
    let name = r#"<img src=x><b>Bold</b> Table & Co"#;
    sim.create_mo(NewMo {
        product: Some((77, name.to_string())),
        qty: 5.0,
        ..Default::default()
    });
    let floor = Floor::with(broker, sim, 1).await;
    running_on_l1(&floor, "<i>ana</i>", "<script>").await;
    // When the TV and the index show it
    let tv = Browser::start(1920, 1080).await;
    tv.goto(&format!("{}/line/L1", floor.url)).await;
    // Then it is text, as Odoo has it: no element made of it, no script run
    let shown = tv
        .wait_text(".mo-card .mo-product", "the product", |t| !t.is_empty())
        .await;
    assert_eq!(shown, name);
    tv.wait_text(".mo-card .field.roll .value", "the roll, as typed", |t| t == "<script>")
        .await;
    let made = tv
        .eval("return document.querySelectorAll('main img, main b, main i, main script').length")
        .await;
    assert_eq!(made, json!(0));
    tv.goto(&format!("{}/", floor.url)).await;
    let tile = tv.wait_text(".tile", "the line's tile", |t| t.contains("Bold")).await;
    assert!(tile.contains(name), "{tile}");
    tv.close().await;
    floor.stop().await;
}

/// The policy every answer carries: nothing from outside the gateway.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_policy_that_allows_nothing_from_outside() {
    let floor = Floor::start(1, false).await;
    for (path, status) in [
        ("/", 200),
        ("/line/L1", 200),
        ("/line/Lini%20Dua", 200),
        ("/panel/ws-1", 200),
        ("/static/app.css", 200),
        ("/static/panel.js", 200),
        ("/panel/ws-9", 404),
        ("/static/..%2FCargo.toml", 404),
        ("/static/../Cargo.toml", 404),
        ("/line/%00", 400),
        ("/line/%zz", 400),
        ("/nothing", 404),
    ] {
        let answer = http(&floor.url, "GET", path, &[], "").await;
        assert_eq!(answer.status, status, "{path}: {}", answer.head);
        assert_eq!(answer.header("content-security-policy").as_deref(), Some(CSP), "{path}");
        assert_eq!(
            answer.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(answer.header("x-frame-options").as_deref(), Some("DENY"), "{path}");
    }
    // A file the browser has is not sent again
    let css = http(&floor.url, "GET", "/static/app.css", &[], "").await;
    let tag = css.header("etag").unwrap();
    let again = http(&floor.url, "GET", "/static/app.css", &[("if-none-match", &tag)], "").await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // Every page is well under the 100 KB a page may cost
    for page in ["/", "/line/L1", "/panel/ws-1"] {
        let html = http(&floor.url, "GET", page, &[], "").await.body.len();
        let script = match page {
            "/" => "index.js",
            "/line/L1" => "line.js",
            _ => "panel.js",
        };
        let total = html
            + http(&floor.url, "GET", "/static/app.css", &[], "").await.body.len()
            + http(&floor.url, "GET", "/static/common.js", &[], "").await.body.len()
            + http(&floor.url, "GET", &format!("/static/{script}"), &[], "")
                .await
                .body
                .len();
        assert!(total < 100_000, "{page}: {total} bytes");
    }
    floor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_a_clear_refusal_and_change_nothing() {
    let floor = Floor::start(2, false).await;
    let json = ("content-type", "application/json");
    let sign_in = |headers: Vec<(&'static str, &'static str)>, body: String| {
        let url = floor.url.clone();
        async move { http(&url, "POST", "/panel/ws-1/sign-in", &headers, &body).await }
    };
    let wrong = json!({"password": "guess"}).to_string();
    // Not from the panel's own page: a form, another site, a cross-site fetch
    for (headers, why) in [
        (vec![("content-type", "application/x-www-form-urlencoded")], "a form"),
        (vec![json, ("origin", "http://evil.example")], "another origin"),
        (vec![json, ("sec-fetch-site", "cross-site")], "a cross-site fetch"),
    ] {
        let answer = sign_in(headers, wrong.clone()).await;
        assert_eq!(answer.status, 403, "{why}");
        assert_eq!(answer.json()["error"]["code"], "not_from_this_page", "{why}");
    }
    // Too large, not JSON, not an object
    let answer = sign_in(vec![json], format!("{{\"password\":\"{}\"}}", "x".repeat(9000))).await;
    assert_eq!(answer.status, 413);
    for body in ["password=1", "[1]", "\"x\""] {
        let answer = sign_in(vec![json], body.to_string()).await;
        assert_eq!(answer.status, 400, "{body}");
    }
    // Commands without a session, with a forged one, and a session's stream without one
    let command = json!({"action": "register-mo", "command": {"request_id": "x", "operator": "eve", "mo": 1, "auth_first": "1", "roll_number": "r"}}).to_string();
    for cookie in ["", "linegate_panel=AAAA", "linegate_panel=%%%"] {
        let answer = http(
            &floor.url,
            "POST",
            "/panel/ws-1/command",
            &[json, ("cookie", cookie)],
            &command,
        )
        .await;
        assert_eq!(answer.status, 401, "{cookie:?}");
        assert_eq!(answer.json()["error"]["code"], "signed_out");
    }
    assert_eq!(http(&floor.url, "GET", "/panel/ws-1/events", &[], "").await.status, 401);
    // A head larger than the bound is refused
    let huge = "x".repeat(20_000);
    let answer = http(&floor.url, "GET", "/", &[("x-filler", &huge)], "").await;
    assert!(answer.status == 431 || answer.status == 0, "{}", answer.head);
    // Right passwords cost nothing: ten tablets set up from one desk
    for n in 0..10 {
        let answer = sign_in(vec![json], json!({"password": "ws-1-secret"}).to_string()).await;
        assert_eq!(answer.status, 200, "sign-in {n}");
    }
    // Wrong passwords: the broker says no, and after five the device waits
    for n in 0..5 {
        let answer = sign_in(vec![json], wrong.clone()).await;
        assert_eq!(answer.status, 401, "attempt {n}");
        assert_eq!(answer.json()["error"]["code"], "wrong_password");
    }
    let answer = sign_in(vec![json], json!({"password": "ws-1-secret"}).to_string()).await;
    assert_eq!(answer.status, 429, "even the right one, for a minute");
    assert_eq!(answer.header("retry-after").as_deref(), Some("60"));
    // And nothing reached the agent
    assert_eq!(floor.commands("ws-1", "register-mo"), 0);
    assert_eq!(floor.protected(1, "auth_first"), None);
    floor.stop().await;
}

/// Reads `stream` into `seen` until `check` holds.
async fn read_until(stream: &mut tokio::net::TcpStream, seen: &mut String, what: &str, check: impl Fn(&str) -> bool) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 8192];
    while !check(seen) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}: {seen}"))
            .unwrap();
        assert!(n > 0, "the stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_s_stream_sends_each_change_and_ticks_between() {
    use tokio::io::AsyncWriteExt;
    // Given a line display's stream, open
    let floor = Floor::start(2, false).await;
    let host = floor.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    stream
        .write_all(format!("GET /events/line/L1 HTTP/1.1\r\nhost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = String::new();
    // (the server may answer before it has reached the broker: the state says so, then again)
    read_until(&mut stream, &mut seen, "a state with the broker reached", |s| {
        s.contains("event: state") && s.contains("\"link\":{\"up\":true")
    })
    .await;
    assert!(seen.contains("text/event-stream"), "{seen}");
    // When an MO is registered for the line
    let ws1 = Panel::start_as(floor.broker.port(), PREFIX, "ws-1", Some(("ws-1", "ws-1-secret"))).await;
    let body =
        json!({"request_id": "r1", "operator": "ana", "mo": 2, "auth_first": "1", "roll_number": "R", "line": "L1"});
    assert_eq!(ws1.send("register-mo", body).await["ok"], true);
    // Then the stream sends the line with it, and a tick follows
    read_until(&mut stream, &mut seen, "the line with MO 2", |s| {
        s.contains("WH/MO/00002")
    })
    .await;
    read_until(&mut stream, &mut seen, "a tick", |s| s.contains("event: tick")).await;
    floor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_pages_are_served_and_the_session_cookie_is_secure() {
    // Given a certificate for the gateway, made by a CA the tablets trust
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sh = |script: &str| {
        let status = std::process::Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(d)
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=floor-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
    );
    sh("openssl req -newkey rsa:2048 -nodes -keyout gw.key -out gw.csr -subj /CN=gateway 2>/dev/null\n\
        printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\nsubjectAltName=IP:127.0.0.1\\n' > gw.ext\n\
        openssl x509 -req -in gw.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out gw.pem -days 2 -extfile gw.ext 2>/dev/null");
    let mut floor = Floor::start(1, false).await;
    let config = floor.web.take().unwrap().stop().await;
    let mut config = config;
    let web = config.web.as_mut().unwrap();
    web.set_tls(d.join("gw.pem"), d.join("gw.key"));
    web.set_listen(([127, 0, 0, 1], 0).into());
    let server = Web::start(config).await;
    let host = server.url.trim_start_matches("http://").to_string();
    floor.web = Some(server);
    // When a tablet signs in over TLS
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(d.join("ca.pem")).unwrap();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let connect = || async {
        let tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        connector
            .connect(name, tcp)
            .await
            .expect("the gateway's certificate is trusted")
    };
    let page = exchange(connect().await, &host, "GET", "/panel/ws-1", &[], "").await;
    assert_eq!(page.status, 200);
    let body = json!({"password": "ws-1-secret"}).to_string();
    let signed = exchange(
        connect().await,
        &host,
        "POST",
        "/panel/ws-1/sign-in",
        &[("content-type", "application/json")],
        &body,
    )
    .await;
    // Then the session cookie is for TLS only, never for a script, never for another site
    assert_eq!(signed.status, 200, "{}", signed.body);
    let cookie = signed.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/panel/ws-1"] {
        assert!(cookie.contains(part), "{part}: {cookie}");
    }
    // And a plain connection gets nothing
    let plain = http(&format!("http://{host}"), "GET", "/", &[], "").await;
    assert_eq!(plain.status, 0);
    floor.stop().await;
}

/// A connection to `host` from the loopback address `from` (127.0.0.x: a device of its own).
async fn connect_from(from: [u8; 4], host: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((std::net::Ipv4Addr::from(from), 0).into()).unwrap();
    socket.connect(host.parse().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_bounds_are_told_to_come_back_and_served_once_one_ends() {
    use tokio::io::AsyncReadExt;
    // Given the screens serving 8 connections at most, so 2 per device
    let mut floor = Floor::start(1, false).await;
    let mut config = floor.web.take().unwrap().stop().await;
    config.web.as_mut().unwrap().set_max_connections(8);
    floor.web = Some(Web::start(config).await);
    let host = floor.url.trim_start_matches("http://").to_string();
    let ask = |from: [u8; 4]| {
        let host = host.clone();
        async move {
            let stream = connect_from(from, &host).await;
            // (not /healthz: its 503 says the broker is not reached yet)
            exchange(stream, &host, "GET", "/static/app.css", &[], "").await
        }
    };
    // When one device holds 2, its third is told to come back, and another device is served
    let mut held = vec![
        connect_from([127, 0, 0, 2], &host).await,
        connect_from([127, 0, 0, 2], &host).await,
    ];
    let third = ask([127, 0, 0, 2]).await;
    assert_eq!(third.status, 503, "{}", third.head);
    assert_eq!(third.header("retry-after").as_deref(), Some("5"));
    assert_eq!(ask([127, 0, 0, 3]).await.status, 200);
    // When three more devices hold 2 each (8 in all), a fifth device is told to come back
    for device in 3..=5 {
        for _ in 0..2 {
            held.push(connect_from([127, 0, 0, device], &host).await);
        }
    }
    assert_eq!(ask([127, 0, 0, 6]).await.status, 503);
    // And once one connection ends, it is served
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if ask([127, 0, 0, 6]).await.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection served after one ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (the idle ones are still open: the server closes them only after 30 s without a request)
    let mut buf = [0u8; 1];
    let still = tokio::time::timeout(Duration::from_millis(200), held[0].read(&mut buf)).await;
    assert!(still.is_err(), "an idle connection within its 30 s was closed");
    floor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_broker_refuses_a_station_the_panel_says_and_nothing_is_applied() {
    // Given a broker whose ACL lets the stations read their replies but send no command (the
    // line granting it left out, as a mistaken edit would)
    let acl = shipped_acl()
        .lines()
        .filter(|l| !l.starts_with("pattern write"))
        .collect::<Vec<_>>()
        .join("\n");
    let floor = Floor::start_with_acl(2, false, acl).await;
    let tablet = panel(&floor, "ws-1", 1024, 600).await;
    as_operator(&tablet, "ana").await;
    // When the operator registers MO 1, scanning its number
    choose(&tablet, "register").await;
    tablet.click("#f-mo").await;
    tablet.scan("WH/MO/00001").await;
    tablet.scan("000100").await;
    tablet.scan("R-1").await;
    // Then the broker's refusal is what the operator reads, and the store has nothing of it
    let said = reply(&tablet, "bad").await;
    assert_eq!(
        said,
        "Broker menolak perintah dari stasiun ini. Hubungi supervisor (ACL broker)."
    );
    assert_eq!(floor.protected(1, "auth_first"), None);
    assert_eq!(floor.commands("ws-1", "register-mo"), 0);
    tablet.close().await;
    floor.stop().await;
}
