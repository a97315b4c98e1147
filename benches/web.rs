//! `cargo bench --bench web`: the floor's screens in a real Chromium, against the release
//! agent and the release `linegate web` as child processes (their memory is their own), on a
//! local mosquitto with 10,000 MOs retained (`BENCH_MOS`):
//!
//! - tap-to-display: from the operator's submit on a panel page (register-mo, one a second for
//!   `BENCH_SECONDS`, 60) to the line's display page having drawn the MO, p50 and p99, beside
//!   the MQTT round trip floor (a bare echo through the same broker) measured in the same run,
//!   interleaved;
//! - `linegate web`'s peak RSS with 10 panels and 10 displays open (`BENCH_PAGES`);
//! - each page's transferred bytes, as the browser counts them;
//! - the agent's peak RSS in the same run.
//!
//! Needs mosquitto, chromium and chromium-driver.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linegate_sim::mosquitto::{BrokerOptions, Mosquitto};
use linegate_sim::odoo::{SimOdoo, SimOdooConfig};
use serde_json::{json, Value};

// The tests' browser, shared: the bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/common/browser.rs"]
mod browser;
mod common;

use browser::{Browser, ENTER};
use common::floor::Echo;
use common::{agent_config, display_and_panel, percentile, spawn_agent, wait_for, PREFIX};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Samples a process's peak RSS (VmHWM, KiB) until dropped.
struct Peak {
    kib: Arc<Mutex<u64>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Peak {
    fn watch(pid: u32) -> Peak {
        let kib = Arc::new(Mutex::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (k, s) = (kib.clone(), stop.clone());
        std::thread::spawn(move || {
            let file = format!("/proc/{pid}/status");
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(now) = common::vm_hwm_kib(&file) {
                    let mut peak = k.lock().unwrap();
                    *peak = (*peak).max(now);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Peak { kib, stop }
    }

    fn mib(&self) -> f64 {
        *self.kib.lock().unwrap() as f64 / 1024.0
    }
}

impl Drop for Peak {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `linegate web` as a child process; killed when dropped.
struct WebProcess(std::process::Child);

impl Drop for WebProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Records, in the display page, when each MO first appears on the line as drawn (the frame
/// after the page took the change), by wrapping the page's own `draw`.
const WATCH_DISPLAY: &str = "
  window.__shown = {};
  const drawn = draw;
  window.draw = function () {
    drawn();
    const line = state && state.line;
    if (!line) return;
    const fresh = [...(line.ready || []), ...(line.running || [])].map((r) => r.id).filter((id) => !(id in __shown));
    if (fresh.length === 0) return;
    for (const id of fresh) __shown[id] = -1;
    requestAnimationFrame(() => { const at = performance.timeOrigin + performance.now(); for (const id of fresh) __shown[id] = at; });
  };
  return true;";

/// Fills the register form in the panel page as typing would, and taps send; the tap's time.
const SUBMIT: &str = "
  const [mo, code] = arguments;
  const fill = (id, v) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('input')); };
  fill('f-mo', String(mo)); fill('f-auth_first', code); fill('f-roll_number', 'R');
  const at = performance.timeOrigin + performance.now();
  document.getElementById('send').click();
  return at;";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mos = env_or("BENCH_MOS", 10_000);
    let seconds = env_or("BENCH_SECONDS", 60);
    let pages = env_or("BENCH_PAGES", 10);
    let broker = Mosquitto::start_with(BrokerOptions {
        max_queued_messages: Some(20_000),
        ..Default::default()
    })
    .expect("mosquitto (apt-get install mosquitto)");
    let sim = SimOdoo::start(SimOdooConfig::default()).await.unwrap();
    sim.seed(mos);
    let dir = tempfile::tempdir().unwrap();
    let stations: Vec<String> = (1..=pages).map(|k| format!("\"ws-{k}\" = \"L{k}\"")).collect();
    let web_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let odoo = "sync_interval = \"1h\"\n";
    let config = agent_config(dir.path(), &sim, broker.port, odoo);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        // Every page comes from this one machine, where a floor's come from a device each: the
        // quarter of the connections one device may hold must cover them all.
        "[web]\nlisten = \"127.0.0.1:{web_port}\"\nstate_dir = {:?}\nstations = {{ {} }}\nmax_connections = 256\n",
        dir.path().join("web"),
        stations.join(", ")
    ));
    std::fs::write(&config, text).unwrap();
    let (_display, seen, panel, replies) = display_and_panel(broker.port, "mo/#").await;
    let agent = spawn_agent(&config);
    let agent_peak = Peak::watch(agent.id());
    let last = format!("{PREFIX}/mo/{mos}");
    wait_for(&seen, &last, Duration::from_secs(180), |_| true)
        .await
        .expect("every MO retained");
    // Each line with some MOs ready, as a floor has them.
    let mut next_mo = 1;
    for k in 1..=pages {
        for _ in 0..20 {
            let id = format!("seed-{next_mo}");
            let body = json!({"request_id": id, "operator": "bench", "mo": next_mo, "auth_first": "1", "roll_number": "R", "line": format!("L{k}")});
            panel
                .publish(
                    format!("{PREFIX}/cmd/ws-1/register-mo"),
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    body.to_string(),
                )
                .await
                .unwrap();
            next_mo += 1;
        }
    }
    wait_for(
        &replies,
        &format!("seed-{}", next_mo - 1),
        Duration::from_secs(60),
        |_| true,
    )
    .await
    .expect("the lines filled");

    let web = WebProcess(
        std::process::Command::new(common::agent_binary())
            .env("MALLOC_ARENA_MAX", "2")
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(&config)
            .arg("web")
            .spawn()
            .expect("linegate web runs"),
    );
    let web_peak = Peak::watch(web.0.id());
    let url = format!("http://127.0.0.1:{web_port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", web_port)).is_err() {
        assert!(Instant::now() < deadline, "linegate web did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The measured pair: a TV on line L1 and ws-1's tablet, each a browser of its own (both in
    // front: a hidden tab's timers are throttled).
    let tv = Browser::start(1920, 1080).await;
    tv.goto(&format!("{url}/line/L1")).await;
    tv.wait_for(".ready li").await;
    let tv_bytes = page_bytes(&tv).await;
    tv.eval(WATCH_DISPLAY).await;
    let tablet = Browser::start(1024, 600).await;
    tablet.goto(&format!("{url}/panel/ws-1")).await;
    tablet.click("#password").await;
    tablet.type_keys(&format!("any{ENTER}")).await;
    tablet.wait_for("#action-register").await;
    tablet.click("#operator").await;
    tablet.type_keys("bench").await;
    tablet.click("#action-register").await;
    tablet.wait_for("#f-mo").await;
    let panel_bytes = page_bytes(&tablet).await;

    // The rest of the floor: displays and panels, each a visible window, four to a browser (a
    // browser keeps six connections to one server, and each page holds one open).
    let index = Browser::start(1280, 800).await;
    index.goto(&format!("{url}/")).await;
    index.wait_for(".tile").await;
    let index_bytes = page_bytes(&index).await;
    let rest: Vec<String> = (2..=pages)
        .flat_map(|k| [format!("/line/L{k}"), format!("/panel/ws-{k}")])
        .collect();
    let mut floor = vec![index];
    for chunk in rest.chunks(4) {
        let b = Browser::start(1280, 800).await;
        for (n, path) in chunk.iter().enumerate() {
            if n > 0 {
                let window = b.client.new_window(false).await.unwrap();
                b.client.switch_to_window(window.handle).await.unwrap();
            }
            b.goto(&format!("{url}{path}")).await;
            if path.starts_with("/panel") {
                b.click("#password").await;
                b.type_keys(&format!("any{ENTER}")).await;
                b.wait_for("#action-register").await;
            } else {
                b.wait_for(".ready li").await;
            }
        }
        floor.push(b);
    }

    // When each MO first shows in line L1's retained view, as an MQTT display sees it: splits
    // the time into the agent's part and the screens'.
    let on_line: Arc<Mutex<std::collections::HashMap<i64, f64>>> = Arc::default();
    let _line_watch = {
        let on_line = on_line.clone();
        common::subscriber(broker.port, "bench-line", format!("{PREFIX}/line/L1"), move |_, p| {
            let now = epoch_ms();
            let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
            let mut seen = on_line.lock().unwrap();
            for r in v["ready"].as_array().into_iter().flatten() {
                if let Some(id) = r["id"].as_i64() {
                    seen.entry(id).or_insert(now);
                }
            }
        })
        .await
    };

    // When the agent's reply to each of the tablet's commands reaches the broker's subscribers.
    let replied: Arc<Mutex<std::collections::HashMap<i64, f64>>> = Arc::default();
    let _reply_watch = {
        let replied = replied.clone();
        common::subscriber(
            broker.port,
            "bench-replies",
            format!("{PREFIX}/reply/ws-1"),
            move |_, p| {
                let now = epoch_ms();
                let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                if let Some(id) = v["result"]["mo"]["id"].as_i64() {
                    replied.lock().unwrap().entry(id).or_insert(now);
                }
            },
        )
        .await
    };

    // One register-mo a second from the tablet, an echo through the broker a third of a second
    // after each.
    let echo = Echo::start(broker.port).await;
    let started = Instant::now() + Duration::from_millis(200);
    let (taps, echoes, agent_trips) = tokio::join!(
        async {
            let mut taps = Vec::new();
            for k in 0..seconds {
                tokio::time::sleep_until((started + Duration::from_secs(k as u64)).into()).await;
                let mo = next_mo + k;
                let at = tablet
                    .client
                    .execute(SUBMIT, vec![json!(mo), json!(format!("{:06}", 100 + k))])
                    .await
                    .unwrap();
                taps.push((mo, at.as_f64().unwrap()));
                // The panel shows the reply before the next tap.
                tablet
                    .wait_until(
                        "document.querySelector('#message.ok') && document.getElementById('f-mo').value === ''",
                        "the reply",
                    )
                    .await;
            }
            taps
        },
        echo.trips("echo", 1.0, seconds, started + Duration::from_millis(333)),
        async {
            // The agent's own round trip for the same command, from an MQTT panel.
            tokio::time::sleep_until((started + Duration::from_millis(666)).into()).await;
            common::round_trips(&panel, &replies, "mqtt", 1.0, seconds, next_mo + seconds).await
        },
    );
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut shown: Value = Value::Null;
    while Instant::now() < give_up {
        shown = tv.eval("return window.__shown").await;
        if taps
            .iter()
            .all(|(mo, _)| shown[mo.to_string()].as_f64().is_some_and(|t| t > 0.0))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let since = |from: f64, to: f64| Duration::from_secs_f64(((to - from) / 1000.0).max(0.0));
    let on_line = on_line.lock().unwrap().clone();
    let mut tap_to_display = Vec::new();
    let (mut tap_to_topic, mut topic_to_display) = (Vec::new(), Vec::new());
    let replied = replied.lock().unwrap().clone();
    let mut tap_to_reply = Vec::new();
    for (mo, at) in &taps {
        let Some(drawn) = shown[mo.to_string()].as_f64().filter(|t| *t > 0.0) else {
            continue;
        };
        tap_to_display.push(since(*at, drawn));
        if let Some(reply) = replied.get(&(*mo as i64)) {
            tap_to_reply.push(since(*at, *reply));
        }
        if let Some(published) = on_line.get(&(*mo as i64)) {
            tap_to_topic.push(since(*at, *published));
            topic_to_display.push(since(*published, drawn));
        }
    }
    tap_to_display.sort();
    tap_to_topic.sort();
    tap_to_reply.sort();
    topic_to_display.sort();
    let mut echoes = echoes;
    echoes.sort();
    let web_mib = web_peak.mib();
    let web_now = common::resident(&format!("/proc/{}/status", web.0.id())).unwrap_or_default();
    drop(web);
    drop(agent);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("linegate web benchmark: {mos} MOs retained, {pages} lines of 20 ready MOs, mosquitto on loopback, Chromium headless");
    println!(
        "tap-to-display (panel submit → the display has drawn the MO) at 1 command/s: p50 {:.1} ms  p99 {:.1} ms  ({} of {} shown; goal p99 <= 150 ms)",
        ms(percentile(&tap_to_display, 0.5)),
        ms(percentile(&tap_to_display, 0.99)),
        tap_to_display.len(),
        taps.len()
    );
    println!(
        "  of which: tap → the agent's reply on the broker p50 {:.1} ms  p99 {:.1} ms; tap → the line's retained \
         topic p50 {:.1} ms  p99 {:.1} ms; topic → drawn on the display p50 {:.1} ms  p99 {:.1} ms",
        ms(percentile(&tap_to_reply, 0.5)),
        ms(percentile(&tap_to_reply, 0.99)),
        ms(percentile(&tap_to_topic, 0.5)),
        ms(percentile(&tap_to_topic, 0.99)),
        ms(percentile(&topic_to_display, 0.5)),
        ms(percentile(&topic_to_display, 0.99))
    );
    println!(
        "MQTT round trip floor in the same run (bare echo, QoS 1): p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&echoes, 0.5)),
        ms(percentile(&echoes, 0.99))
    );
    println!(
        "the agent's own round trip for register-mo over MQTT in the same run (publish → reply): p50 {:.1} ms  p99 {:.1} ms \
         ({} unanswered within 10 s)",
        ms(percentile(&agent_trips.times, 0.5)),
        ms(percentile(&agent_trips.times, 0.99)),
        agent_trips.lost
    );
    println!(
        "linegate web peak RSS with {pages} panels and {pages} displays open: {web_mib:.1} MiB (goal <= 12 MiB); \
         at the end {:.1} MiB: allocated (heap, stacks) {:.1}, the binary's and libraries' pages {:.1}",
        web_now.total as f64 / 1024.0,
        web_now.anon as f64 / 1024.0,
        web_now.file as f64 / 1024.0
    );
    println!("agent peak RSS in the same run: {:.1} MiB", agent_peak.mib());
    for (page, bytes) in [
        ("line display", tv_bytes),
        ("panel", panel_bytes),
        ("index", index_bytes),
    ] {
        println!("{page}: {bytes} bytes transferred (goal <= 100 KB)");
    }
}

/// Wall-clock milliseconds, as the pages count them (`performance.timeOrigin + now()`).
fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// What the page cost the network, as the browser counts it (headers included).
async fn page_bytes(b: &Browser) -> u64 {
    let total = b
        .eval(
            "const n = performance.getEntriesByType('navigation')[0];
             return performance.getEntriesByType('resource').reduce((s, r) => s + r.transferSize, n ? n.transferSize : 0);",
        )
        .await;
    total.as_u64().unwrap_or(0)
}
