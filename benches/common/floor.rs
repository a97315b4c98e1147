//! The physical floor under a command's round trip, measured beside it: a bare echo through
//! the same broker (two idle clients, the request and its reply both QoS 1, as the panel and
//! the agent use them) and a bare durable commit (WAL, `synchronous = FULL`, one small row) in
//! the same directory as the agent's database.

use std::path::Path;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::AsyncClient;
use serde_json::json;

use super::{client, subscriber, wait_for, Seen};

const REQUEST: &str = "bench-echo/request";
const REPLY: &str = "bench-echo/reply";

/// An echo through the broker on `port`: what comes in on the request topic goes back out on
/// the reply topic from the echo's event loop, at once.
pub(crate) struct Echo {
    asker: AsyncClient,
    replies: Seen,
    _echo: AsyncClient,
}

impl Echo {
    pub(crate) async fn start(port: u16) -> Echo {
        let echo = subscriber(port, "bench-echo", REQUEST.to_string(), |own, p| {
            let _ = own.try_publish(REPLY, QoS::AtLeastOnce, false, p.payload);
        })
        .await;
        let replies = Seen::default();
        let asker = client(port, "bench-asker", REPLY.to_string(), replies.clone()).await;
        Echo {
            asker,
            replies,
            _echo: echo,
        }
    }

    /// `count` echoes at `rate` per second from `start` on; their round trips in the order sent.
    pub(crate) async fn trips(&self, tag: &str, rate: f64, count: usize, start: Instant) -> Vec<Duration> {
        let started = start;
        let mut times = Vec::with_capacity(count);
        for k in 0..count {
            tokio::time::sleep_until((started + Duration::from_secs_f64(k as f64 / rate)).into()).await;
            let id = format!("{tag}-{rate}-{k}");
            let at = Instant::now();
            let body = json!({"request_id": id}).to_string();
            self.asker
                .publish(REQUEST, QoS::AtLeastOnce, false, body)
                .await
                .unwrap();
            let got = wait_for(&self.replies, &id, Duration::from_secs(10), |_| true)
                .await
                .expect("an echo");
            times.push(got.saturating_duration_since(at));
        }
        times
    }
}

/// `count` durable commits at `rate` per second from `start` on, in a database of their own in
/// `dir`, on a thread of their own; their times in the order made.
pub(crate) fn commits(dir: &Path, rate: f64, count: usize, start: Instant) -> std::thread::JoinHandle<Vec<Duration>> {
    let path = dir.join("floor.db");
    std::thread::spawn(move || {
        let mut db = rusqlite::Connection::open(path).unwrap();
        db.pragma_update(None, "journal_mode", "WAL").unwrap();
        db.pragma_update(None, "synchronous", "FULL").unwrap();
        db.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, at TEXT, body TEXT)")
            .unwrap();
        let started = start;
        let mut times = Vec::with_capacity(count);
        for k in 0..count {
            let due = started + Duration::from_secs_f64(k as f64 / rate);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let at = Instant::now();
            let tx = db.transaction().unwrap();
            tx.execute(
                "INSERT INTO t (at, body) VALUES (datetime('now'), ?1)",
                [format!("commit {k}")],
            )
            .unwrap();
            tx.commit().unwrap();
            times.push(at.elapsed());
        }
        times
    })
}

/// The floor, sample by sample: an echo and a commit made at the same moment of the schedule,
/// added; sorted.
pub(crate) fn added(echoes: &[Duration], commits: &[Duration]) -> Vec<Duration> {
    let mut sum: Vec<Duration> = echoes.iter().zip(commits).map(|(e, c)| *e + *c).collect();
    sum.sort();
    sum
}
