//! The agent as a whole: reading this file tells the architecture. `run` opens the store,
//! starts one task per concern, and on shutdown stops them in order within a deadline.
//!
//! ```text
//!   Odoo ──HTTP──▶ sync::Scheduler ──pages──▶ Store (one SQLite owner thread)
//!                        ▲
//!                triggers (sync-now)
//! ```

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{Config, ConfigError};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use crate::sync::odoo::OdooSync;
use crate::sync::scheduler::{Scheduler, Uplink};

/// How long the tasks get to finish once shutdown is triggered.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("task {0} stopped on its own")]
    TaskDied(&'static str),
}

/// Runs the agent until `shutdown` fires or a task dies.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), AppError> {
    config.validate()?;
    config.validate_secrets()?;
    let store = Store::open(&config.store.path)?;
    let retention = Duration::from_secs(u64::from(config.store.retention_days) * 86_400);
    let mut tasks: JoinSet<&'static str> = JoinSet::new();

    // Held for the command layer's `sync-now`; the scheduler drains it.
    let (_sync_now, triggers) = mpsc::channel::<()>(1);
    let (uplink, _uplink_rx) = watch::channel(Uplink::Unknown);
    if let Some(odoo) = &config.odoo {
        let scheduler = Scheduler {
            sync: OdooSync::new(odoo, store.clone(), retention)?,
            store: store.clone(),
            db: config.store.path.clone(),
            interval: odoo.sync_interval,
            triggers,
            uplink,
        };
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            scheduler.run(shutdown).await;
            "odoo sync"
        });
    } else {
        tracing::warn!("no [odoo] section: the store is served as it is, nothing is synced");
    }
    tracing::info!(db = %config.store.path.display(), "linegate running");

    let died = tokio::select! {
        _ = shutdown.wait() => None,
        Some(Ok(name)) = tasks.join_next() => Some(name),
    };
    // Every task watches `shutdown`; a dead task means the rest must stop too.
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("tasks did not stop within {DRAIN_DEADLINE:?}; leaving them");
    }
    drop(store);
    match died {
        Some(name) if !shutdown.is_set() => Err(AppError::TaskDied(name)),
        _ => {
            tracing::info!("linegate stopped");
            Ok(())
        }
    }
}
