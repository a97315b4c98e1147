//! The one module that talks to systemd. `READY=1` once the store is migrated and every task
//! is started; `WATCHDOG=1` only while every task has shown it is alive within its deadline
//! (and the store's thread answers),
//! so a wedged task gets the agent restarted; `STATUS=` a one-line summary for `systemctl
//! status`; `STOPPING=1` on shutdown. Outside systemd (no `NOTIFY_SOCKET`) all of it is a no-op.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::shutdown::Shutdown;
use crate::store::{self, Store};

/// A task that has not beaten for this long is wedged.
pub const DEADLINE: Duration = Duration::from_secs(90);
/// How often a waiting task beats anyway.
pub const BEAT: Duration = Duration::from_secs(10);
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// One task's pulse: it calls [`Heart::beat`] from its loop.
#[derive(Clone)]
pub struct Heart {
    name: &'static str,
    /// Milliseconds since `Health::start` at the last beat.
    last: Arc<AtomicU64>,
    start: Instant,
}

impl Heart {
    pub fn beat(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// A heart nobody watches (tests, one-shot commands).
    pub fn detached(name: &'static str) -> Heart {
        Heart {
            name,
            last: Arc::default(),
            start: Instant::now(),
        }
    }
}

#[derive(Default)]
pub struct Health {
    hearts: Mutex<Vec<Heart>>,
    start: Option<Instant>,
}

impl Health {
    pub fn new() -> Arc<Health> {
        Arc::new(Health {
            hearts: Mutex::default(),
            start: Some(Instant::now()),
        })
    }

    /// Registers a task; it starts out alive.
    pub fn heart(&self, name: &'static str) -> Heart {
        let heart = Heart {
            name,
            last: Arc::default(),
            start: self.start.unwrap_or_else(Instant::now),
        };
        heart.beat();
        self.hearts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(heart.clone());
        heart
    }

    /// Tasks that have not beaten within `deadline`.
    pub fn stale(&self, deadline: Duration) -> Vec<&'static str> {
        let now = self.start.unwrap_or_else(Instant::now).elapsed().as_millis() as u64;
        let hearts = self.hearts.lock().unwrap_or_else(|e| e.into_inner());
        hearts
            .iter()
            .filter(|h| now.saturating_sub(h.last.load(Ordering::Relaxed)) > deadline.as_millis() as u64)
            .map(|h| h.name)
            .collect()
    }
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Feeds systemd's watchdog while every task is alive, and keeps `STATUS=` current.
pub async fn watch(
    health: Arc<Health>,
    store: Store,
    broker: Option<tokio::sync::watch::Receiver<crate::mqtt::LinkState>>,
    shutdown: Shutdown,
) {
    let watchdog = sd_notify::watchdog_enabled();
    let period = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    let mut tick = tokio::time::interval(period);
    // None until the first status: an Instant in the past could underflow on a Pi just booted.
    let mut last_status: Option<Instant> = None;
    let mut reported: Vec<&'static str> = Vec::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let mut stale = health.stale(DEADLINE);
        // The store's thread answers a no-op within seconds, or it is wedged (a stuck disk).
        let store_alive = tokio::time::timeout(Duration::from_secs(10), store.call(|_| Ok(()))).await;
        if !matches!(store_alive, Ok(Ok(()))) {
            stale.push("store");
        }
        if stale.is_empty() {
            if watchdog.is_some() {
                notify(&[NotifyState::Watchdog]);
            }
        } else if stale != reported {
            tracing::error!(tasks = ?stale, "tasks stopped making progress; systemd's watchdog will restart the agent");
        }
        reported = stale;
        if last_status.is_none_or(|at| at.elapsed() >= STATUS_EVERY) {
            last_status = Some(Instant::now());
            let broker = broker.as_ref().map(|b| b.borrow().connected);
            match store.call(|c| store::sync::status(c)).await {
                Ok(status) => notify(&[NotifyState::Status(&summary(&status, broker))]),
                Err(e) => tracing::warn!(error = %e, "status unavailable"),
            }
        }
    }
}

/// `MOs 120 (3 running) · odoo ok 12:01:05 · sicantik ok 11:40:00 · broker up · outbox 0`
pub fn summary(status: &store::sync::Status, broker: Option<bool>) -> String {
    let running = status
        .by_phase
        .iter()
        .find(|(p, _)| p == "running")
        .map_or(0, |(_, n)| *n);
    let mut parts = vec![format!("MOs {} ({running} running)", status.mos)];
    for source in &status.sources {
        let time = source.last.started_at.get(11..19).unwrap_or(&source.last.started_at);
        let outcome = if source.last.ok { "ok" } else { "FAILED" };
        parts.push(format!("{} {outcome} {time}", source.source));
    }
    if let Some(up) = broker {
        parts.push(format!("broker {}", if up { "up" } else { "down" }));
    }
    let outbox: u64 = status.outbox.iter().map(|(_, n)| n).sum();
    parts.push(format!("outbox {outbox}"));
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heart_that_stops_beating_is_reported() {
        let health = Health::new();
        let alive = health.heart("alive");
        let _wedged = health.heart("wedged");
        assert!(health.stale(Duration::from_millis(50)).is_empty());
        std::thread::sleep(Duration::from_millis(80));
        alive.beat();
        assert_eq!(health.stale(Duration::from_millis(50)), vec!["wedged"]);
    }
}
