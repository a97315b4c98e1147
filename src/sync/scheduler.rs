//! When syncs run: once at start, then every interval with jitter; never two at once; at once on
//! a trigger (`sync-now`); while Odoo is unreachable, retries that back off exponentially from
//! [`RETRY_MIN`] up to [`RETRY_MAX`], so a full sync runs within that long of the link's return.
//! A run that finds another sync holding the lock (`linegate sync --once`) says nothing about
//! the uplink: it leaves the uplink as it was and tries again after [`RETRY_MIN`].
//! Refusals (a wrong key, a missing field) wait for the normal interval: retrying them sooner
//! only adds load, and login attempts could trip Odoo's lockout.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::runs::Runs;
use super::{run_record, Report, SyncError};
use crate::backoff::{jitter, Backoff};
use crate::clock;
use crate::heartbeat::{Heart, BEAT};
use crate::lock::{self, FileLock};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::uplink::Uplink;

pub(crate) const RETRY_MIN: Duration = Duration::from_secs(2);
/// While Odoo is unreachable a retry costs one failed connection and the gateway has nothing
/// else to do with it, so the cap is what bounds how late the link's return is noticed.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(30);
/// Scheduled runs are spread by this fraction of the interval.
const SPREAD: f64 = 0.1;
/// The first scheduled run after the start's, and after an outage's end, comes anywhere within
/// one interval: gateways that all started together (a plant-wide power cut), or all found a
/// shared Odoo back at once, each take a phase of their own across the interval, where ±10 %
/// alone would keep them bunched in a few seconds, run after run.
fn phase(interval: Duration) -> Duration {
    jitter(interval / 2, 1.0)
}

/// Something the scheduler can sync.
pub trait Source: Send {
    /// Names it in logs, the run history and the lock file.
    fn name(&self) -> &'static str;
    /// One run; stops between requests when `shutdown` fires.
    fn run(&mut self, shutdown: &Shutdown) -> impl std::future::Future<Output = Result<Report, SyncError>> + Send;
    /// Counts the run's requests: while it rises the run is alive; when it stops rising the
    /// run is stuck (the watchdog's business).
    fn progress(&self) -> Arc<AtomicU64>;
}

/// Runs one sync under the cross-process lock and adds it to `runs`.
pub(crate) async fn run_once<S: Source>(
    sync: &mut S,
    store: &Store,
    db: &std::path::Path,
    runs: &mut Runs,
    shutdown: &Shutdown,
) -> Result<Report, SyncError> {
    let source = sync.name();
    let purpose = lock::sync_purpose(source);
    let Some(_lock) = FileLock::try_acquire(db, &purpose).map_err(|error| SyncError::Lock {
        path: lock::lock_path(db, &purpose),
        error,
    })?
    else {
        return Err(SyncError::Busy);
    };
    let started = clock::now_unix();
    let outcome = sync.run(shutdown).await;
    if !matches!(outcome, Err(SyncError::Cancelled)) {
        runs.add(store, started, run_record(source, started, &outcome)).await?;
    }
    outcome
}

pub struct Scheduler<S> {
    pub sync: S,
    pub store: Store,
    pub db: PathBuf,
    pub interval: Duration,
    /// From the command layer (`sync-now`); the scheduler holds the receiving end.
    pub triggers: mpsc::Receiver<()>,
    /// To whoever reports the uplink (the status topic); dropped with the scheduler.
    pub uplink: watch::Sender<Uplink>,
    /// To the displays: a run ended (the status topic shows the last sync).
    pub changes: Option<crate::changes::Sender>,
    /// Beats while the loop turns, for systemd's watchdog.
    pub heart: Heart,
    /// Its runs, shown and recorded.
    pub runs: Runs,
}

impl<S: Source> Scheduler<S> {
    pub async fn run(mut self, shutdown: Shutdown) {
        self.schedule(&shutdown).await;
        self.runs.flush(&self.store).await;
    }

    async fn schedule(&mut self, shutdown: &Shutdown) {
        let source = self.sync.name();
        // Retries while the upstream is unreachable never wait longer than a scheduled run.
        let mut retries = Backoff::new(RETRY_MIN, RETRY_MAX.min(self.interval)).retries();
        let mut last_refusal: Option<String> = None;
        // Whether the runs have their own phase yet (see [`phase`]).
        let mut phased = false;
        let mut pulse = tokio::time::interval(BEAT);
        loop {
            self.heart.beat();
            let progress = self.sync.progress();
            let mut seen = progress.load(Ordering::Relaxed);
            let run = run_once(&mut self.sync, &self.store, &self.db, &mut self.runs, shutdown);
            tokio::pin!(run);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut run => break outcome,
                    // A long run (SICANTIK's expiry dates) is alive while it sends requests;
                    // one that stopped sending (a stuck store, a bug) stops the heart.
                    _ = pulse.tick() => {
                        let now = progress.load(Ordering::Relaxed);
                        if now != seen {
                            seen = now;
                            self.heart.beat();
                        }
                    }
                    _ = shutdown.wait() => return,
                }
            };
            if !matches!(outcome, Err(SyncError::Cancelled | SyncError::Busy)) {
                crate::changes::tell(&self.changes, crate::changes::Change::Synced);
            }
            let delay = match &outcome {
                Ok(report) => {
                    if retries.failures() > 0 || last_refusal.is_some() {
                        tracing::info!(source, "upstream reachable again");
                    }
                    retries.reset();
                    last_refusal = None;
                    self.uplink.send_replace(Uplink::Up);
                    tracing::info!(source, %report, "sync done");
                    if std::mem::replace(&mut phased, true) {
                        jitter(self.interval, SPREAD)
                    } else {
                        phase(self.interval)
                    }
                }
                Err(SyncError::Cancelled) => return,
                // Another sync is doing the work; the uplink is as that one will find it.
                Err(SyncError::Busy) => {
                    tracing::info!(source, "another sync is running; trying again shortly");
                    jitter(RETRY_MIN.min(self.interval), 0.2)
                }
                // The store, not the upstream: the uplink is as it was, and the run is tried
                // again soon (the store's health says why, and when it recovers).
                Err(e @ (SyncError::Store(_) | SyncError::Lock { .. })) => {
                    let delay = retries.failed();
                    tracing::error!(source, error = %e, retry_in = ?delay, "sync cannot write the store");
                    delay
                }
                Err(e) if e.is_transient() => {
                    phased = false;
                    let delay = retries.failed();
                    let failures = retries.failures();
                    let error = e.to_string();
                    let since = match &*self.uplink.borrow() {
                        Uplink::Down { since, .. } => *since,
                        _ => clock::now_unix(),
                    };
                    self.uplink.send_replace(Uplink::Down {
                        since,
                        error: error.clone(),
                    });
                    tracing::warn!(source, %error, failures, retry_in = ?delay, "sync failed");
                    delay
                }
                Err(e) => {
                    let error = e.to_string();
                    // An operator must act; say so once, not every interval.
                    if last_refusal.as_deref() != Some(&error) {
                        tracing::error!(source, %error, "sync refused; retrying on the normal schedule");
                    }
                    last_refusal = Some(error.clone());
                    self.uplink.send_replace(Uplink::Refused { error });
                    jitter(self.interval, SPREAD)
                }
            };
            let wait = tokio::time::sleep(delay);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    Some(()) = self.triggers.recv() => {
                        tracing::info!(source, "sync requested");
                        break;
                    }
                    _ = pulse.tick() => self.heart.beat(),
                    _ = shutdown.wait() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::{Hearts, DEADLINE};

    /// A source whose run sends a request every `every` (never, when None), and never ends.
    struct Endless {
        every: Option<Duration>,
        requests: Arc<AtomicU64>,
    }

    impl Source for Endless {
        fn name(&self) -> &'static str {
            "endless"
        }

        fn progress(&self) -> Arc<AtomicU64> {
            self.requests.clone()
        }

        async fn run(&mut self, _: &Shutdown) -> Result<Report, SyncError> {
            loop {
                match self.every {
                    Some(every) => {
                        tokio::time::sleep(every).await;
                        self.requests.fetch_add(1, Ordering::Relaxed);
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        }
    }

    async fn stale_after(every: Option<Duration>) -> Vec<&'static str> {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let hearts = Hearts::new();
        let scheduler = Scheduler {
            sync: Endless {
                every,
                requests: Arc::default(),
            },
            store: Store::open(&db).unwrap(),
            db,
            interval: Duration::from_secs(300),
            triggers: mpsc::channel(1).1,
            uplink: watch::channel(Uplink::Unknown).0,
            changes: None,
            heart: hearts.heart("endless sync"),
            runs: Runs::every_run(),
        };
        let (_stop, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(scheduler.run(shutdown));
        tokio::time::sleep(DEADLINE * 2).await;
        task.abort();
        hearts.stale(DEADLINE)
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_stops_sending_requests_stops_the_heart() {
        assert_eq!(stale_after(None).await, ["endless sync"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_run_that_keeps_sending_requests_keeps_the_heart_beating() {
        assert!(stale_after(Some(Duration::from_secs(5))).await.is_empty());
    }
}
