//! Reminder events on the broker: whatever the outbox holds for the `mqtt` channel, published
//! when the broker is connected, at once when something is queued, and on every reconnect. A
//! message leaves the outbox only on the broker's PUBACK for it (the link tells), oldest first:
//! a crash before that sends it again, never loses it.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Publish;
use rumqttc::v5::mqttbytes::QoS;
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock;
use crate::heartbeat::{Heart, BEAT};
use crate::mqtt::link::Tracked;
use crate::shutdown::Shutdown;
use crate::store::{self, Store, StoreError};
use crate::uplink::LinkState;

/// Another process (`linegate sync --once`) may queue without ringing: look this often anyway.
const POLL: Duration = Duration::from_secs(300);
/// Messages read from the store at a time.
const BATCH: u32 = 100;

pub(crate) struct MqttOutbox {
    pub(crate) store: Store,
    /// To the link, which says when the broker acknowledged each one.
    pub(crate) link_tx: mpsc::Sender<Tracked>,
    /// Where the events go (`…/permits/reminder`).
    pub(crate) topic: String,
    /// From the link: publish only while connected, and again on every reconnect.
    pub(crate) link: watch::Receiver<LinkState>,
    /// Rung by whoever queues (the SICANTIK sync).
    pub(crate) queued: watch::Receiver<u64>,
    pub(crate) heart: Heart,
}

#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the MQTT link has stopped")]
    LinkGone,
    #[error("not acknowledged: {0}")]
    NotAcknowledged(String),
    #[error("stopped by shutdown")]
    Stopped,
}

impl MqttOutbox {
    pub(crate) async fn run(mut self, shutdown: Shutdown) {
        let mut pulse = tokio::time::interval(BEAT);
        let mut poll = tokio::time::interval(POLL);
        // Until whoever rings is gone; polling goes on regardless.
        let mut ringing = true;
        loop {
            self.heart.beat();
            if self.link.borrow().connected {
                match self.flush(&shutdown).await {
                    Ok(()) | Err(DeliveryError::Stopped) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "reminder events not published; trying again on reconnect or when more are queued")
                    }
                }
            }
            tokio::select! {
                changed = self.link.changed() => if changed.is_err() { return },
                changed = self.queued.changed(), if ringing => ringing = changed.is_ok(),
                _ = poll.tick() => {}
                _ = pulse.tick() => {
                    self.heart.beat();
                    continue;
                }
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Publishes every due event, oldest first.
    async fn flush(&self, shutdown: &Shutdown) -> Result<(), DeliveryError> {
        loop {
            let now = clock::format_rfc3339(clock::now_unix());
            let due = self
                .store
                .call(move |c| store::outbox::due(c, store::outbox::MQTT, &now, BATCH))
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            for (id, message, _) in due {
                let (done, acknowledged) = oneshot::channel();
                let publish = Publish::new(self.topic.clone(), QoS::AtLeastOnce, message, None);
                self.link_tx
                    .send(Tracked { publish, done })
                    .await
                    .map_err(|_| DeliveryError::LinkGone)?;
                // Until the broker answers; shutdown leaves the message for the next run.
                let answer = tokio::select! {
                    answer = acknowledged => answer,
                    _ = shutdown.wait() => return Err(DeliveryError::Stopped),
                };
                answer
                    .map_err(|_| DeliveryError::LinkGone)?
                    .map_err(DeliveryError::NotAcknowledged)?;
                let now = clock::format_rfc3339(clock::now_unix());
                self.store.call(move |c| store::outbox::delivered(c, id, &now)).await?;
            }
        }
    }
}
