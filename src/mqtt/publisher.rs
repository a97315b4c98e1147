//! Retained state for the displays: every MO, every line, the gateway's status and the permits
//! summary, read from SQLite — all of it on every (re)connect, then what changed.

use std::collections::HashMap;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::AsyncClient;
use tokio::sync::watch;

use super::topics::Topic;
use super::{payload, Identity};
use crate::changes::{Change, Receiver as Changes};
use crate::heartbeat::{Heart, BEAT};
use crate::shutdown::Shutdown;
use crate::store::{self, Store};
use crate::sync::runs::Shown;
use crate::uplink::{LinkState, Uplink};

/// Days left change at the regency's midnight even when nothing else does: the permits summary
/// is recomputed this often and sent when it differs.
const PERMITS_EVERY: Duration = Duration::from_secs(300);
/// MOs read from the store and published at a time during a republish.
const REPUBLISH_CHUNK: usize = 500;

/// Publishes retained state for the displays.
pub(crate) struct Publisher {
    pub(crate) client: AsyncClient,
    pub(crate) store: Store,
    pub(crate) identity: Identity,
    /// From the sync and the command layer: what changed in the store.
    pub(crate) changes: Changes,
    /// From the link: a new connection means "republish everything".
    pub(crate) link: watch::Receiver<LinkState>,
    /// Each sync's uplink as its scheduler last saw it; shown in the status after every run.
    pub(crate) uplinks: Vec<(&'static str, watch::Receiver<Uplink>)>,
    /// What Odoo would refuse of the configured work, from the Odoo outbox's checks.
    pub(crate) refusals: watch::Receiver<crate::uplink::Refusals>,
    /// Each sync's newest run, from its scheduler (the store records an idle stretch only once
    /// per reconcile_interval).
    pub(crate) runs: Vec<Shown>,
    /// The regency's zone offset when SICANTIK is synced: permits' expiry summary.
    pub(crate) permits_zone: Option<i64>,
    /// Told to the link before DISCONNECT: that one is the goodbye.
    pub(crate) goodbye: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub(crate) heart: Heart,
}

/// What the displays were last sent, so that unchanged state is not sent again.
#[derive(Default)]
struct Published {
    /// What each line topic last carried.
    lines: HashMap<String, String>,
    status: Option<String>,
    permits: Option<String>,
    /// Each source's long step under way, as the status shows it.
    progress: serde_json::Map<String, serde_json::Value>,
    /// MOs purged while the broker was away: their retained topics still need clearing.
    purged_offline: Vec<i64>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("MQTT client: {0}")]
    Client(#[from] rumqttc::v5::ClientError),
    #[error("stopped by shutdown")]
    Stopped,
}

impl Publisher {
    /// Publishes until `shutdown`, then shows the last changes and says goodbye: `offline` on
    /// the status topic (the broker sends the last will only when we vanish) and DISCONNECT.
    pub(crate) async fn run(mut self, shutdown: Shutdown) {
        let mut published = Published::default();
        let mut store_health = self.store.health();
        let mut permits_tick = tokio::time::interval(PERMITS_EVERY);
        let mut pulse = tokio::time::interval(BEAT);
        loop {
            self.heart.beat();
            let outcome = tokio::select! {
                _ = pulse.tick() => Ok(()),
                changed = self.link.changed() => {
                    if changed.is_err() { return }
                    if !self.link.borrow().connected {
                        continue;
                    }
                    self.republish_all(&mut published, &shutdown).await
                }
                changes = self.changes.recv() => {
                    let mut outcome = Ok(());
                    for change in changes {
                        if !self.link.borrow().connected {
                            // Everything is republished on the next connect; purges and the
                            // progress of long steps (the status carries it) are remembered.
                            match change {
                                Change::Purged(ids) => published.purged_offline.extend(ids),
                                Change::Progress { source, step, done, total } => {
                                    published.progress.insert(source.to_string(), progress(step, done, total));
                                }
                                _ => {}
                            }
                            continue;
                        }
                        outcome = outcome.and(self.publish_change(change, &mut published).await);
                    }
                    outcome
                }
                // What Odoo refuses (and its mending) shows on the status at once.
                Ok(()) = self.refusals.changed() => {
                    if !self.link.borrow().connected {
                        continue;
                    }
                    self.publish_status(true, &mut published).await
                }
                // A full or read-only store (and its recovery) shows on the status at once.
                Ok(()) = store_health.changed() => {
                    if !self.link.borrow().connected {
                        continue;
                    }
                    self.publish_status(true, &mut published).await
                }
                _ = permits_tick.tick(), if self.permits_zone.is_some() => {
                    if !self.link.borrow().connected {
                        continue;
                    }
                    self.publish_permits(&mut published).await
                }
                _ = shutdown.wait() => break,
            };
            match outcome {
                Ok(()) => {}
                Err(PublishError::Stopped) => break,
                Err(e) => tracing::warn!(error = %e, "publishing retained state failed"),
            }
        }
        if self.link.borrow().connected {
            // Intake has stopped: what it changed last is shown before the goodbye, so the
            // displays keep the truth while the agent is away.
            for change in self.changes.take_now() {
                if let Err(e) = self.publish_change(change, &mut published).await {
                    tracing::warn!(error = %e, "last changes not shown");
                    break;
                }
            }
            let _ = self.publish_status(false, &mut published).await;
            self.goodbye.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = self.client.disconnect().await;
        }
    }

    async fn retained(&self, topic: Topic, payload: String) -> Result<(), rumqttc::v5::ClientError> {
        self.client
            .publish(topic.build(&self.identity.prefix), QoS::AtLeastOnce, true, payload)
            .await
    }

    /// Everything, after a (re)connect: the broker may have lost all of it. Stops between
    /// chunks on shutdown, so that a long republish does not hold up the goodbye.
    async fn republish_all(&self, published: &mut Published, shutdown: &Shutdown) -> Result<(), PublishError> {
        // Every line we ever showed is sent again; one with nothing left gets an empty view
        // instead of keeping a stale one.
        published.lines.values_mut().for_each(String::clear);
        published.status = None;
        published.permits = None;
        let purged = std::mem::take(&mut published.purged_offline);
        if let Err(e) = self.publish_change(Change::Purged(purged.clone()), published).await {
            published.purged_offline = purged;
            return Err(e);
        }
        self.publish_status(true, published).await?;
        let ids = self.store.call(|c| store::mo::all_ids(c)).await?;
        for chunk in ids.chunks(REPUBLISH_CHUNK) {
            if shutdown.is_set() {
                return Err(PublishError::Stopped);
            }
            self.publish_mos(chunk.to_vec()).await?;
        }
        self.publish_lines(published).await?;
        self.publish_permits(published).await?;
        tracing::info!(mos = ids.len(), "retained state republished");
        Ok(())
    }

    async fn publish_change(&self, change: Change, published: &mut Published) -> Result<(), PublishError> {
        match change {
            Change::Mos(ids) => {
                self.publish_mos(ids).await?;
                self.publish_lines(published).await?;
                // Results for Odoo queued or delivered with them: the status counts them.
                self.publish_status(true, published).await?;
            }
            Change::Purged(ids) => {
                for id in ids {
                    // An empty retained message clears the topic.
                    self.retained(Topic::Mo(id), String::new()).await?;
                }
                self.publish_lines(published).await?;
            }
            Change::Synced => self.publish_status(true, published).await?,
            Change::Permits => self.publish_permits(published).await?,
            Change::Progress {
                source,
                step,
                done,
                total,
            } => {
                published
                    .progress
                    .insert(source.to_string(), progress(step, done, total));
                self.publish_status(true, published).await?;
            }
        }
        Ok(())
    }

    /// The expiring-permits summary, when it changed.
    async fn publish_permits(&self, published: &mut Published) -> Result<(), PublishError> {
        let Some(zone) = self.permits_zone else { return Ok(()) };
        let permits = self.store.call(|c| store::permit::with_expiry(c)).await?;
        let today = crate::clock::today(crate::clock::now_unix(), zone);
        let summary = payload::expiring(&permits, today).to_string();
        if published.permits.as_ref() != Some(&summary) {
            self.retained(Topic::PermitsExpiring, summary.clone()).await?;
            published.permits = Some(summary);
        }
        Ok(())
    }

    async fn publish_mos(&self, ids: Vec<i64>) -> Result<(), PublishError> {
        let (rows, uploads) = self
            .store
            .call(move |c| Ok((store::mo::get_many(c, &ids)?, store::outbox::uploads(c, &ids)?)))
            .await?;
        for row in rows {
            let upload = uploads.get(&row.upstream.id);
            self.retained(Topic::Mo(row.upstream.id), payload::mo(&row, upload).to_string())
                .await?;
        }
        Ok(())
    }

    /// Every line's view; only those that changed are published. A line with nothing left
    /// gets an empty view rather than a stale one.
    async fn publish_lines(&self, published: &mut Published) -> Result<(), PublishError> {
        let views = self
            .store
            .call(|c| {
                let names = store::mo::lines(c)?;
                names
                    .into_iter()
                    .map(|l| Ok((l.clone(), store::mo::line_view(c, &l)?)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        let mut current: HashMap<String, String> = views
            .iter()
            .map(|(name, view)| (name.clone(), payload::line(name, view).to_string()))
            .collect();
        for name in published.lines.keys() {
            current
                .entry(name.clone())
                .or_insert_with(|| payload::line(name, &Default::default()).to_string());
        }
        for (name, text) in &current {
            if published.lines.get(name) != Some(text) {
                self.retained(Topic::Line(name.clone()), text.clone()).await?;
            }
        }
        published.lines = current;
        Ok(())
    }

    async fn publish_status(&self, online: bool, published: &mut Published) -> Result<(), PublishError> {
        let backlog = self.store.call(|c| store::outbox::odoo_backlog(c)).await?;
        let last = crate::sync::runs::newest(&self.runs);
        let uplinks: Vec<(&str, Uplink)> = self
            .uplinks
            .iter()
            .map(|(name, rx)| (*name, rx.borrow().clone()))
            .collect();
        let gateway = payload::Gateway {
            online,
            id: &self.identity.gateway,
            started_at: &self.identity.started_at,
            instance: &self.identity.instance,
        };
        let status = payload::status(
            gateway,
            &uplinks,
            &last,
            &published.progress,
            &self.store.health().borrow(),
            payload::ToOdoo {
                backlog: &backlog,
                refusals: &self.refusals.borrow(),
            },
            crate::wear::written_bytes(),
        )
        .to_string();
        if published.status.as_ref() != Some(&status) {
            self.retained(Topic::Status, status.clone()).await?;
            published.status = Some(status);
        }
        Ok(())
    }
}

/// A long step under way, as the status shows it.
fn progress(step: &str, done: u64, total: u64) -> serde_json::Value {
    serde_json::json!({"step": step, "done": done, "total": total})
}
