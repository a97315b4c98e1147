//! The run history as the agent keeps it. Every run is shown at once, from memory (the status
//! topic and systemd's STATUS watch [`Shown`]); the store records every run that failed or
//! changed something, but of a stretch of runs that changed nothing only the first and then
//! one a period (Odoo's `reconcile_interval`, an hour by default, so that the idle stretch
//! costs one write with the reconcile's; SICANTIK's [`IDLE_RECORDED_EVERY`]): a row each
//! interval, with its share of a checkpoint, was most of what an idle gateway wrote to its SD
//! card (2.5 MiB a day at the default interval). The newest run is recorded when the agent
//! stops, so `linegate status` is exact after a stop; while the agent runs it may show an idle
//! run up to a period ago.

use std::time::Duration;

use tokio::sync::watch;

use crate::clock;
use crate::store::sync::RunRecord;
use crate::store::{self, Store, StoreError};

/// How often a stretch of idle runs is recorded, unless the source says.
pub(crate) const IDLE_RECORDED_EVERY: Duration = Duration::from_secs(3_600);

/// The newest run of a source, as its scheduler last saw it (`None` before any run).
pub type Shown = watch::Receiver<Option<RunRecord>>;

/// Each source's newest run, for those that have run.
pub(crate) fn newest(shown: &[Shown]) -> Vec<RunRecord> {
    shown.iter().filter_map(|r| r.borrow().clone()).collect()
}

/// One source's runs on their way to the store.
pub struct Runs {
    /// When the newest recorded run started (unix), and whether it changed nothing.
    recorded: Option<(i64, bool)>,
    /// The newest run, when the store does not have it.
    unrecorded: Option<RunRecord>,
    shown: watch::Sender<Option<RunRecord>>,
    /// Seconds between two recorded runs of an idle stretch.
    period: i64,
}

impl Runs {
    /// For the agent's scheduler: `last` is the source's newest recorded run; an idle stretch
    /// is recorded every `period`.
    pub fn idle_every(period: Duration, last: Option<RunRecord>) -> (Runs, Shown) {
        let recorded = last
            .as_ref()
            .and_then(|r| Some((clock::parse_rfc3339(&r.started_at)?, r.changed_nothing())));
        let (shown, rx) = watch::channel(last);
        let runs = Runs {
            recorded,
            unrecorded: None,
            shown,
            period: i64::try_from(period.as_secs()).unwrap_or(i64::MAX),
        };
        (runs, rx)
    }

    /// For a one-off run (`linegate sync --once`): recorded whatever it did.
    pub fn every_run() -> Runs {
        Runs::idle_every(Duration::ZERO, None).0
    }

    /// Shows `run`, which started at `started` (unix), and records it if it is worth a write.
    pub(crate) async fn add(&mut self, store: &Store, started: i64, run: RunRecord) -> Result<(), StoreError> {
        self.shown.send_replace(Some(run.clone()));
        if worth_recording(self.recorded, self.period, started, &run) {
            self.unrecorded = None;
            let idle = run.changed_nothing();
            store.call(move |c| store::sync::record_run(c, &run)).await?;
            self.recorded = Some((started, idle));
        } else {
            self.unrecorded = Some(run);
        }
        Ok(())
    }

    /// Records the newest run if the store does not have it yet (on the way out).
    pub(crate) async fn flush(&mut self, store: &Store) {
        if let Some(run) = self.unrecorded.take() {
            if let Err(e) = store.call(move |c| store::sync::record_run(c, &run)).await {
                tracing::warn!(error = %e, "the last sync run is not recorded");
            }
        }
    }
}

/// A run is recorded unless it changed nothing and neither did the newest recorded one, which
/// started less than `period` before it (and not after it: a clock set back).
fn worth_recording(recorded: Option<(i64, bool)>, period: i64, started: i64, run: &RunRecord) -> bool {
    match recorded {
        Some((at, true)) if run.changed_nothing() => !(at..at.saturating_add(period)).contains(&started),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ok: bool, updated: u64) -> RunRecord {
        RunRecord {
            ok,
            updated,
            ..Default::default()
        }
    }

    #[test]
    fn idle_runs_are_recorded_first_and_then_hourly() {
        let idle = run(true, 0);
        let busy = run(true, 3);
        let failed = run(false, 0);
        // Nothing recorded yet, or the last recorded one did something: recorded.
        assert!(worth_recording(None, 3_600, 1_000, &idle));
        assert!(worth_recording(Some((900, false)), 3_600, 1_000, &idle));
        // An idle stretch: not again within the hour, then once.
        assert!(!worth_recording(Some((1_000, true)), 3_600, 1_300, &idle));
        assert!(!worth_recording(Some((1_000, true)), 3_600, 4_599, &idle));
        assert!(worth_recording(Some((1_000, true)), 3_600, 4_600, &idle));
        // A clock set back records at once.
        assert!(worth_recording(Some((1_000, true)), 3_600, 999, &idle));
        // Whatever changed something or failed is always recorded.
        assert!(worth_recording(Some((1_000, true)), 3_600, 1_001, &busy));
        assert!(worth_recording(Some((1_000, true)), 3_600, 1_001, &failed));
        assert!(worth_recording(Some((i64::MAX, true)), 3_600, i64::MIN, &idle));
        // A period of 0: every run.
        assert!(worth_recording(Some((1_000, true)), 0, 1_000, &idle));
    }
}
