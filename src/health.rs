//! The one module that talks to systemd. `READY=1` once the store is migrated and every task
//! is started; `WATCHDOG=1` only while every task has shown it is alive within its deadline
//! (and the store's thread answers),
//! so a wedged task gets the agent restarted; `STATUS=` a one-line summary for `systemctl
//! status`; `STOPPING=1` on shutdown. Outside systemd (no `NOTIFY_SOCKET`) all of it is a no-op.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::clock;
use crate::heartbeat::{Hearts, DEADLINE};
use crate::shutdown::Shutdown;
use crate::store::sync::RunRecord;
use crate::store::{self, Store, StoreHealth};
use crate::sync::runs::Shown;
use crate::uplink::LinkState;

const STATUS_EVERY: Duration = Duration::from_secs(30);
const PROBE_EVERY: Duration = Duration::from_secs(5);

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

pub(crate) fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub(crate) fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Feeds systemd's watchdog while every task is alive, and keeps `STATUS=` current.
pub(crate) async fn watch(
    hearts: Arc<Hearts>,
    store: Store,
    runs: Vec<Shown>,
    broker: Option<tokio::sync::watch::Receiver<LinkState>>,
    shutdown: Shutdown,
) {
    let under_systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
    let watchdog = sd_notify::watchdog_enabled();
    let period = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    let mut tick = tokio::time::interval(period);
    // None until the first status: an Instant in the past could underflow on a Pi just booted.
    let mut last_status: Option<Instant> = None;
    let mut reported: Vec<&'static str> = Vec::new();
    let mut health = store.health();
    let mut probe = tokio::time::interval(PROBE_EVERY);
    // Its branch sleeps while the store is healthy: no burst of missed ticks when it wakes.
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // While the store cannot be written, a small write now and then learns when it can
            // again; a healthy store is never probed.
            _ = probe.tick(), if !health.borrow_and_update().is_ok() => {
                store.probe().await;
                continue;
            }
            Ok(()) = health.changed() => continue,
            _ = shutdown.wait() => return,
        }
        let mut stale = hearts.stale(DEADLINE);
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
        // Outside systemd nobody reads it: the store is not asked.
        if under_systemd && last_status.is_none_or(|at| at.elapsed() >= STATUS_EVERY) {
            last_status = Some(Instant::now());
            let broker = broker.as_ref().map(|b| b.borrow().connected);
            match store.call(|c| store::sync::brief(c)).await {
                Ok(brief) => {
                    let runs = crate::sync::runs::newest(&runs);
                    let health = store.health().borrow().clone();
                    notify(&[NotifyState::Status(&summary(&brief, &runs, broker, &health))])
                }
                Err(e) => tracing::warn!(error = %e, "status unavailable"),
            }
        }
    }
}

/// An age as a person reads it at a glance: `40s`, `12m`, `5h`, `3d`.
fn short_age(secs: i64) -> String {
    match secs.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

/// `MOs 120 (3 running) · odoo ok 12:01:05 · sicantik ok 11:40:00 · broker up · outbox 0 ·
/// to Odoo 14, oldest 3h, 1 parked · wrote 1.2 MiB`
pub(crate) fn summary(
    brief: &store::sync::Brief,
    runs: &[RunRecord],
    broker: Option<bool>,
    health: &StoreHealth,
) -> String {
    let mut parts = vec![format!("MOs {} ({} running)", brief.mos, brief.running)];
    for run in runs {
        let time = run.started_at.get(11..19).unwrap_or(&run.started_at);
        let outcome = if run.ok { "ok" } else { "FAILED" };
        parts.push(format!("{} {outcome} {time}", run.source));
    }
    if let Some(up) = broker {
        parts.push(format!("broker {}", if up { "up" } else { "down" }));
    }
    parts.push(format!("outbox {}", brief.outbox));
    let to_odoo = &brief.to_odoo;
    if to_odoo.pending > 0 {
        let age = to_odoo
            .oldest
            .as_deref()
            .and_then(clock::parse_rfc3339)
            .map(|t| format!(", oldest {}", short_age(clock::now_unix().saturating_sub(t))))
            .unwrap_or_default();
        let parked = match to_odoo.parked {
            0 => String::new(),
            n => format!(", {n} parked"),
        };
        parts.push(format!("to Odoo {}{age}{parked}", to_odoo.pending));
    }
    if !health.is_ok() {
        parts.push(format!("store {health}"));
    }
    if let Some(written) = crate::wear::written_bytes() {
        parts.push(format!("wrote {}", crate::wear::human(written)));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::short_age;

    #[test]
    fn ages_read_at_a_glance() {
        let read: Vec<String> = [-5, 40, 119, 120, 7_199, 7_200, 172_799, 172_800, i64::MAX]
            .into_iter()
            .map(short_age)
            .collect();
        assert_eq!(
            read,
            ["0s", "40s", "119s", "2m", "119m", "2h", "47h", "2d", "106751991167300d"]
        );
    }
}
