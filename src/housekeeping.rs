//! Keeps the store's logs bounded over years on one SD card: every hour, answered commands and
//! delivered outbox messages older than `[store] log_retention_days` are deleted, a batch at a
//! time (undelivered messages stay however old). What waits for Odoo or a webhook is never
//! pruned; MOs have their own retention, kept by the sync's reconcile.

use std::time::Duration;

use crate::clock;
use crate::heartbeat::{Heart, BEAT};
use crate::shutdown::Shutdown;
use crate::store::{prune, Store, StoreError};

const EVERY: Duration = Duration::from_secs(3600);

pub struct Housekeeping {
    pub store: Store,
    pub keep: Duration,
    pub heart: Heart,
}

impl Housekeeping {
    pub async fn run(self, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(EVERY);
        let mut pulse = tokio::time::interval(BEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = pulse.tick() => {
                    self.heart.beat();
                    continue;
                }
                _ = shutdown.wait() => return,
            }
            match self.prune(&shutdown).await {
                Ok((0, 0)) => {}
                Ok((commands, messages)) => tracing::info!(commands, messages, "old log rows pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning the logs failed; trying again in an hour"),
            }
        }
    }

    /// Prunes until nothing older than the retention is left; returns (commands, messages).
    pub async fn prune(&self, shutdown: &Shutdown) -> Result<(u64, u64), StoreError> {
        let cutoff = clock::format_rfc3339(clock::now_unix().saturating_sub(self.keep.as_secs() as i64));
        let mut total = (0, 0);
        while !shutdown.is_set() {
            let cut = cutoff.clone();
            let (commands, messages) = self
                .store
                .call(move |db| Ok((prune::commands(db, &cut)?, prune::delivered(db, &cut)?)))
                .await?;
            total = (total.0 + commands, total.1 + messages);
            self.heart.beat();
            if commands < u64::from(prune::BATCH) && messages < u64::from(prune::BATCH) {
                break;
            }
        }
        Ok(total)
    }
}
