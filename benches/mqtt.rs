//! `cargo bench --bench mqtt`: the MQTT figures, through a real mosquitto on loopback, with the
//! release agent as a child process (its memory is its own): command round trips at 1 and 50
//! commands/s beside their floor measured in the same run (a bare echo through the same broker
//! plus a bare durable commit in the same directory, interleaved with the commands), the rate
//! at which p99 passes 50 ms, the time from a sync to the display's retained update, and the
//! agent's peak RSS with 10,000 MOs published (`BENCH_MOS` overrides; `BENCH_SECONDS`, 120,
//! how long the 1/s stream runs), and `linegate watch`'s with all of them retained.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linegate_sim::mosquitto::{BrokerOptions, Mosquitto};

mod common;
use common::floor::{self, Echo};
use common::{agent_config, display_and_panel, percentile, round_trips, spawn_agent, wait_for, Seen, PREFIX};
use linegate_sim::odoo::{SimOdoo, SimOdooConfig};
use rumqttc::v5::mqttbytes::QoS;
use serde_json::json;

fn mos() -> usize {
    std::env::var("BENCH_MOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn seconds() -> usize {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

/// Round trips at one rate, and the floor under them.
struct BesideFloor {
    agent: Vec<Duration>,
    echo: Vec<Duration>,
    commit: Vec<Duration>,
    floor: Vec<Duration>,
}

/// `count` commands at `rate`, with an echo a third of a period after each and a commit two
/// thirds after: the three streams share the machine's state (its idle CPU at 1/s) without
/// waiting on each other.
async fn beside_floor(
    panel: &rumqttc::v5::AsyncClient,
    replies: &Seen,
    echo: &Echo,
    dir: &std::path::Path,
    (rate, count, first_mo): (f64, usize, usize),
) -> BesideFloor {
    let start = Instant::now() + Duration::from_millis(100);
    let third = Duration::from_secs_f64(1.0 / rate / 3.0);
    let commits = floor::commits(dir, rate, count, start + 2 * third);
    let (agent, echoes) = tokio::join!(
        async {
            tokio::time::sleep_until(start.into()).await;
            round_trips(panel, replies, "b", rate, count, first_mo).await.all()
        },
        echo.trips("echo", rate, count, start + third)
    );
    let commits = commits.join().unwrap();
    let floor = floor::added(&echoes, &commits);
    let (mut echo, mut commit) = (echoes, commits);
    echo.sort();
    commit.sort();
    BesideFloor {
        agent,
        echo,
        commit,
        floor,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mos = mos();
    // As packaging/examples/mosquitto-linegate.conf sets it: room for a late display (and
    // `linegate watch`) to get every retained MO.
    let broker = Mosquitto::start_with(BrokerOptions {
        max_queued_messages: Some(20_000),
        ..Default::default()
    })
    .expect("mosquitto (apt-get install mosquitto)");
    let sim = SimOdoo::start(SimOdooConfig::default()).await.unwrap();
    let ids = sim.seed(mos);
    // Spread the write dates over the past hours, as a real plant's would be (an incremental
    // sync then reads what changed, not the whole fresh seed inside its overlap window).
    for (k, id) in ids.iter().enumerate() {
        sim.backdate_write(*id, (mos - k) as i64 * 3);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), &sim, broker.port, "sync_interval = \"1h\"\n");
    let (_display, seen, panel, replies) = display_and_panel(broker.port, "mo/#").await;

    let started = Instant::now();
    let agent = spawn_agent(&config);
    let status_file = format!("/proc/{}/status", agent.id());
    // The peak as the kernel counts it, and the sample nearest it, by kind.
    let peak = Arc::new(Mutex::new((0u64, common::Resident::default())));
    let sampler = {
        let peak = peak.clone();
        let status_file = status_file.clone();
        std::thread::spawn(move || loop {
            let (Some(hwm), Some(now)) = (common::vm_hwm_kib(&status_file), common::resident(&status_file)) else {
                return;
            };
            let mut p = peak.lock().unwrap();
            p.0 = p.0.max(hwm);
            if now.total > p.1.total {
                p.1 = now;
            }
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
    let settled = common::resident(&status_file).unwrap_or_default();

    let echo = Echo::start(broker.port).await;
    let slow = seconds();
    let one = beside_floor(&panel, &replies, &echo, dir.path(), (1.0, slow, 1)).await;
    let fifty = beside_floor(&panel, &replies, &echo, dir.path(), (50.0, 500, slow + 1)).await;
    let mut next_mo = slow + 501;
    let mut ramp = Vec::new();
    for rate in [100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0] {
        let count = (rate * 2.0) as usize;
        if next_mo + count > mos {
            break;
        }
        let trips = round_trips(&panel, &replies, "b", rate, count, next_mo).await;
        next_mo += count;
        // Unanswered commands (the broker's queue for the agent overflowed) end the ramp.
        let p99 = match trips.lost {
            0 => percentile(&trips.times, 0.99),
            _ => Duration::MAX,
        };
        let p50 = trips
            .times
            .first()
            .map_or(Duration::MAX, |_| percentile(&trips.times, 0.5));
        ramp.push((rate, p50, p99, trips.lost));
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
    let watch = tokio::task::spawn_blocking(move || watch_rss(&config, mos))
        .await
        .unwrap();

    drop(agent);
    let _ = sampler.join();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("linegate MQTT benchmark: {mos} MOs, mosquitto on loopback, register-mo commands (durable writes)");
    println!(
        "start to all {mos} MOs retained on the display: {:.2} s",
        all_published.as_secs_f64()
    );
    for (label, m) in [("1 command/s", &one), ("50 commands/s", &fifty)] {
        let p = |times: &[Duration], q| ms(percentile(times, q));
        println!(
            "round trip at {label:<14} p50 {:>6.2} ms  p99 {:>6.2} ms  ({} commands); floor p50 {:.2} ms  p99 {:.2} ms \
             (echo p99 {:.2} + commit p99 {:.2}); p99 over the floor {:+.2} ms (goal <= 2 ms)",
            p(&m.agent, 0.5),
            p(&m.agent, 0.99),
            m.agent.len(),
            p(&m.floor, 0.5),
            p(&m.floor, 0.99),
            p(&m.echo, 0.99),
            p(&m.commit, 0.99),
            p(&m.agent, 0.99) - p(&m.floor, 0.99),
        );
    }
    for (rate, p50, p99, lost) in &ramp {
        match lost {
            0 => println!(
                "round trip at {rate:>4} commands/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
                ms(*p50),
                ms(*p99)
            ),
            n => {
                println!("round trip at {rate:>4} commands/s  {n} commands unanswered (the broker's queue overflowed)")
            }
        }
    }
    let sustained = ramp
        .iter()
        .filter(|(_, _, p99, _)| *p99 <= Duration::from_millis(50))
        .map(|(r, _, _, _)| *r)
        .fold(50.0, f64::max);
    println!("highest rate tried with p99 <= 50 ms: {sustained} commands/s");
    println!(
        "sync-now to the display's retained update: median {:.1} ms, max {:.1} ms (5 runs)",
        ms(sync_to_display[2]),
        ms(sync_to_display[4])
    );
    let (hwm, at_peak) = *peak.lock().unwrap();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "agent peak RSS: {:.1} MiB (goal <= 15 MiB); at its highest sample {:.1} MiB: allocated (heap, stacks) {:.1}, \
         the binary's and libraries' pages {:.1}, shared (SQLite's WAL index) {:.1}",
        mib(hwm),
        mib(at_peak.total),
        mib(at_peak.anon),
        mib(at_peak.file),
        mib(at_peak.shmem)
    );
    println!(
        "once all {mos} MOs were retained: {:.1} MiB (allocated {:.1}, binary {:.1}, shared {:.1})",
        mib(settled.total),
        mib(settled.anon),
        mib(settled.file),
        mib(settled.shmem)
    );
    match watch {
        Some((kib, took)) => println!(
            "linegate watch with {mos} MOs retained: peak RSS {:.1} MiB, every MO shown {:.2} s after its start",
            mib(kib),
            took.as_secs_f64()
        ),
        None => println!("linegate watch did not show every retained MO within a minute"),
    }
}

/// `linegate watch --json` on `config` until it has printed `mos` retained MOs: its peak RSS
/// (KiB) and how long that took from its start; None if it did not within a minute.
fn watch_rss(config: &std::path::Path, mos: usize) -> Option<(u64, Duration)> {
    use std::io::BufRead;
    let binary = common::agent_binary();
    let started = Instant::now();
    let mut child = std::process::Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(["watch", "--json"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("linegate watch runs");
    let stdout = child.stdout.take().unwrap();
    let (done, shown) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut n = 0;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            n += usize::from(line.contains("/mo/"));
            if n == mos {
                let _ = done.send(started.elapsed());
            }
        }
    });
    let took = shown.recv_timeout(Duration::from_secs(60)).ok();
    let hwm = common::vm_hwm_kib(&format!("/proc/{}/status", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    Some((hwm?, took?))
}
