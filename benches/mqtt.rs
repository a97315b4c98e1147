//! `cargo bench --bench mqtt`: the MQTT figures the MQTT issue asks for, through a real
//! mosquitto on loopback, with the release agent as a child process (its memory is its own):
//! command round trips at 1 and 50 commands/s, the rate at which p99 passes 50 ms, the time
//! from a sync to the display's retained update, and the agent's peak RSS with 10,000 MOs
//! published (`BENCH_MOS` overrides).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linegate_sim::mosquitto::Mosquitto;

mod common;
use linegate_sim::odoo::{SimOdoo, SimOdooConfig};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};

const PREFIX: &str = "linegate/bench";

fn mos() -> usize {
    std::env::var("BENCH_MOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Every message under the prefix, with when it arrived.
type Seen = Arc<Mutex<HashMap<String, (Instant, Value)>>>;

async fn client(port: u16, name: &str, filter: String, seen: Seen) -> AsyncClient {
    let mut options = MqttOptions::new(name, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let (client, mut events) = AsyncClient::new(options, 10_000);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let sub = client.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = sub.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let now = Instant::now();
                    let topic = String::from_utf8_lossy(&p.topic).to_string();
                    let value: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    // Replies are keyed by request_id, retained state by topic.
                    let key = value
                        .get("request_id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or(topic);
                    seen.lock().unwrap().insert(key, (now, value));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    ready_rx.await.expect("subscribed");
    client
}

async fn wait_for(seen: &Seen, key: &str, limit: Duration, check: impl Fn(&Value) -> bool) -> Option<Instant> {
    let give_up = Instant::now() + limit;
    while Instant::now() < give_up {
        if let Some((at, v)) = seen.lock().unwrap().get(key) {
            if check(v) {
                return Some(*at);
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends `count` register-mo commands at `rate` per second, from MO `first_mo` on, and
/// returns the sorted round trips (publish → reply received).
async fn round_trips(panel: &AsyncClient, replies: &Seen, rate: f64, count: usize, first_mo: usize) -> Vec<Duration> {
    let mut sent = Vec::with_capacity(count);
    let started = Instant::now();
    for k in 0..count {
        let due = started + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let id = format!("b-{rate}-{k}");
        let body =
            json!({"request_id": id, "operator": "bench", "mo": first_mo + k, "auth_first": "1", "roll_number": "R"});
        let at = Instant::now();
        panel
            .publish(
                format!("{PREFIX}/cmd/ws-1/register-mo"),
                QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .await
            .unwrap();
        sent.push((id, at));
    }
    let mut times = Vec::with_capacity(count);
    for (id, at) in sent {
        let got = wait_for(replies, &id, Duration::from_secs(30), |v| v["ok"] == true)
            .await
            .expect("a reply");
        times.push(got.saturating_duration_since(at));
    }
    times.sort();
    times
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mos = mos();
    let broker = Mosquitto::start().expect("mosquitto (apt-get install mosquitto)");
    let sim = SimOdoo::start(SimOdooConfig::default()).await.unwrap();
    let ids = sim.seed(mos);
    // Spread the write dates over the past hours, as a real plant's would be (an incremental
    // sync then reads what changed, not the whole fresh seed inside its overlap window).
    for (k, id) in ids.iter().enumerate() {
        sim.backdate_write(*id, (mos - k) as i64 * 3);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("linegate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[odoo]\nurl = {:?}\ndatabase = \"mes\"\napi_key = {:?}\nsync_interval = \"1h\"\n\
             [mqtt]\nport = {}\ngateway_id = \"bench\"\n",
            dir.path().join("linegate.db"),
            sim.url(),
            sim.config().api_key,
            broker.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();

    let seen: Seen = Default::default();
    let _display = client(broker.port, "bench-display", format!("{PREFIX}/mo/#"), seen.clone()).await;
    let replies: Seen = Default::default();
    let panel = client(
        broker.port,
        "bench-panel",
        format!("{PREFIX}/reply/ws-1"),
        replies.clone(),
    )
    .await;

    let started = Instant::now();
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_linegate"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("linegate runs");
    let status_file = format!("/proc/{}/status", agent.id());
    let peak = Arc::new(Mutex::new(0u64));
    let sampler = {
        let peak = peak.clone();
        std::thread::spawn(move || loop {
            let Some(hwm) = common::vm_hwm_kib(&status_file) else {
                return;
            };
            let mut p = peak.lock().unwrap();
            *p = (*p).max(hwm);
            drop(p);
            std::thread::sleep(Duration::from_millis(20));
        })
    };

    // First sync and every MO on the display.
    let limit = Duration::from_secs(120);
    let last = format!("{PREFIX}/mo/{mos}");
    wait_for(&seen, &last, limit, |_| true)
        .await
        .expect("all MOs published");
    let give_up = Instant::now() + limit;
    while seen.lock().unwrap().len() < mos && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_published = started.elapsed();

    let one = round_trips(&panel, &replies, 1.0, 10, 1).await;
    let fifty = round_trips(&panel, &replies, 50.0, 250, 11).await;
    let mut next_mo = 261;
    let mut ramp = Vec::new();
    for rate in [100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0] {
        let count = (rate * 2.0) as usize;
        if next_mo + count > mos {
            break;
        }
        let times = round_trips(&panel, &replies, rate, count, next_mo).await;
        next_mo += count;
        let p99 = percentile(&times, 0.99);
        ramp.push((rate, percentile(&times, 0.5), p99));
        if p99 > Duration::from_millis(50) {
            break;
        }
    }

    // A change in Odoo, a sync asked for at once, and the display's update.
    let mut sync_to_display = Vec::new();
    for k in 0..5 {
        let id = (mos - k) as i64;
        let qty = 1000.0 + k as f64;
        sim.write_mo(
            id,
            serde_json::Map::from_iter([("product_qty".to_string(), json!(qty))]),
        );
        let request = format!("sync-{k}");
        let at = Instant::now();
        let body = json!({"request_id": request});
        panel
            .publish(
                format!("{PREFIX}/cmd/ws-1/sync-now"),
                QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .await
            .unwrap();
        let topic = format!("{PREFIX}/mo/{id}");
        let shown = wait_for(&seen, &topic, Duration::from_secs(30), |v| v["product_qty"] == qty)
            .await
            .expect("update shown");
        sync_to_display.push(shown.saturating_duration_since(at));
    }
    sync_to_display.sort();

    let _ = agent.kill();
    let _ = agent.wait();
    let _ = sampler.join();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("linegate MQTT benchmark: {mos} MOs, mosquitto on loopback, register-mo commands (durable writes)");
    println!(
        "start to all {mos} MOs retained on the display: {:.2} s",
        all_published.as_secs_f64()
    );
    for (label, times) in [("1 command/s", &one), ("50 commands/s", &fifty)] {
        println!(
            "round trip at {label:<14} p50 {:>6.2} ms  p99 {:>6.2} ms  ({} commands)",
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.99)),
            times.len()
        );
    }
    for (rate, p50, p99) in &ramp {
        println!(
            "round trip at {rate:>4} commands/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            ms(*p50),
            ms(*p99)
        );
    }
    let sustained = ramp
        .iter()
        .filter(|(_, _, p99)| *p99 <= Duration::from_millis(50))
        .map(|(r, _, _)| *r)
        .fold(50.0, f64::max);
    println!("highest rate tried with p99 <= 50 ms: {sustained} commands/s");
    println!(
        "sync-now to the display's retained update: median {:.1} ms, max {:.1} ms (5 runs)",
        ms(sync_to_display[2]),
        ms(sync_to_display[4])
    );
    println!("agent peak RSS: {:.1} MiB", *peak.lock().unwrap() as f64 / 1024.0);
}
