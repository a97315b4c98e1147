//! `cargo bench --bench demo`: how long a newcomer waits, from starting `linegate demo` on a
//! fresh database to the first retained MO a display receives, with the embedded broker and
//! with mosquitto (when installed); `BENCH_RUNS` (5) runs of each. `BENCH_AGENT` names the
//! binary (`cargo run` runs target/debug/linegate; the default is the bench build's).

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

/// One demo from its start to the first retained MO on a display: (to the broker's line on
/// stdout, to the MO).
async fn first_mo(broker: &str) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // Absolute: the demo runs in a directory of its own.
    let binary = std::path::absolute(common::agent_binary()).unwrap();
    let mut child = Command::new(binary)
        .args(["demo", "--broker", broker, "--seconds", "60"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("linegate demo starts");
    let stdout = child.stdout.take().unwrap();
    // Killed if this run fails, so no demo outlives the benchmark.
    let _demo = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let port = line
                .split("127.0.0.1:")
                .nth(1)
                .filter(|_| line.contains("broker") || line.starts_with("mosquitto on"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u16>().ok());
            if let Some(port) = port {
                let _ = tx.send(port);
            }
        }
    });
    let port = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the demo names its broker");
    let to_broker = started.elapsed();
    let mut options = MqttOptions::new("bench-first-mo", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 10);
    let to_mo = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe("linegate/demo/mo/+", QoS::AtMostOnce);
                }
                Ok(Event::Incoming(Packet::Publish(_))) => return started.elapsed(),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await
    .expect("an MO within 30 s");
    (to_broker, to_mo)
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize);
    let mosquitto = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    println!(
        "linegate demo, fresh database, {runs} runs each (binary {:?})",
        common::agent_binary()
    );
    for broker in ["embedded", "mosquitto"] {
        if broker == "mosquitto" && !mosquitto {
            println!("  mosquitto: not installed, not measured");
            continue;
        }
        let mut broker_times = Vec::new();
        let mut mo_times = Vec::new();
        for _ in 0..runs {
            let (b, m) = first_mo(broker).await;
            broker_times.push(b);
            mo_times.push(m);
        }
        broker_times.sort();
        mo_times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {broker:9}  start to broker up: median {:.0} ms; to the first retained MO: median {:.0} ms (min {:.0}, max {:.0})",
            ms(common::percentile(&broker_times, 0.5)),
            ms(common::percentile(&mo_times, 0.5)),
            ms(mo_times[0]),
            ms(*mo_times.last().unwrap())
        );
    }
}
