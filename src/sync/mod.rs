//! Keeping the store current with the upstreams: one run ([`odoo::OdooSync`]), the schedule
//! that repeats it ([`scheduler`]), under a lock (`crate::lock`) that keeps runs from
//! overlapping.

pub mod odoo;
pub mod runs;
pub mod scheduler;
pub mod sicantik;

use std::time::Duration;

use crate::clock;
use crate::odoo::OdooError;
use crate::store::mo::PageCounts;
use crate::store::sync::RunRecord;
use crate::store::StoreError;

/// What one run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub fetched: u64,
    pub counts: PageCounts,
    pub gone: u64,
    pub purged: u64,
    pub requests: u64,
    pub duration: Duration,
    /// SICANTIK: permit details found, permits no endpoint knows, reminders produced.
    pub details: u64,
    pub unknown: u64,
    pub reminders: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fetched {}, inserted {}, updated {}, unchanged {}, gone {}, purged {}",
            self.fetched, self.counts.inserted, self.counts.updated, self.counts.unchanged, self.gone, self.purged
        )?;
        if self.details + self.unknown + self.reminders > 0 {
            write!(
                f,
                ", details {}, unknown {}, reminders {}",
                self.details, self.unknown, self.reminders
            )?;
        }
        write!(f, ", {} requests, {:.2} s", self.requests, self.duration.as_secs_f64())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Odoo failed; `partial` is what the run committed before that.
    #[error("{error}")]
    Odoo { error: OdooError, partial: Box<Report> },
    /// SICANTIK failed; `partial` is what the run committed before that.
    #[error("{error}")]
    Sicantik {
        error: crate::sicantik::SicantikError,
        partial: Box<Report>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another sync is running")]
    Busy,
    /// The lock file beside the database cannot be made or locked (a read-only or full disk).
    #[error("cannot take the sync lock {}: {error}", path.display())]
    Lock {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("stopped by shutdown")]
    Cancelled,
}

impl SyncError {
    /// Worth trying again soon: Odoo or the link is down, or a passing fault.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Odoo { error, .. } => error.is_retryable(),
            SyncError::Sicantik { error, .. } => error.is_retryable(),
            SyncError::Busy => true,
            SyncError::Store(_) | SyncError::Lock { .. } | SyncError::Cancelled => false,
        }
    }
}

/// The record of a run for `sync_run`, from its outcome.
pub(crate) fn run_record(source: &str, started_unix: i64, outcome: &Result<Report, SyncError>) -> RunRecord {
    let (report, error) = match outcome {
        Ok(report) => (report.clone(), None),
        Err(SyncError::Odoo { error, partial }) => ((**partial).clone(), Some(error.to_string())),
        Err(SyncError::Sicantik { error, partial }) => ((**partial).clone(), Some(error.to_string())),
        Err(other) => (Report::default(), Some(other.to_string())),
    };
    RunRecord {
        source: source.to_string(),
        started_at: clock::format_rfc3339(started_unix),
        duration_ms: report.duration.as_millis() as u64,
        ok: error.is_none(),
        error,
        fetched: report.fetched,
        inserted: report.counts.inserted,
        updated: report.counts.updated,
        unchanged: report.counts.unchanged,
        gone: report.gone,
        purged: report.purged,
        requests: report.requests,
        details: report.details,
        unknown: report.unknown,
        reminders: report.reminders,
    }
}
