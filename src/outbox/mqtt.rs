//! Reminder events on the broker: whatever the outbox holds for the `mqtt` channel, published
//! when the broker is connected, at once when something is queued, and on every reconnect.

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::AsyncClient;
use tokio::sync::watch;

use crate::clock;
use crate::heartbeat::{Heart, BEAT};
use crate::shutdown::Shutdown;
use crate::store::{self, Store, StoreError};
use crate::uplink::LinkState;

const CHANNEL: &str = "mqtt";
/// Another process (`linegate sync --once`) may queue without ringing: look this often anyway.
const POLL: Duration = Duration::from_secs(300);
/// Messages read from the store at a time.
const BATCH: u32 = 100;

pub(crate) struct MqttOutbox {
    pub(crate) store: Store,
    pub(crate) client: AsyncClient,
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
    #[error("MQTT client: {0}")]
    Client(#[from] rumqttc::v5::ClientError),
}

impl MqttOutbox {
    pub(crate) async fn run(mut self, shutdown: Shutdown) {
        let mut pulse = tokio::time::interval(BEAT);
        let mut poll = tokio::time::interval(POLL);
        loop {
            self.heart.beat();
            if self.link.borrow().connected {
                if let Err(e) = self.flush().await {
                    tracing::warn!(error = %e, "reminder events not published; trying again on reconnect");
                }
            }
            tokio::select! {
                changed = self.link.changed() => if changed.is_err() { return },
                _ = self.queued.changed() => {}
                _ = poll.tick() => {}
                _ = pulse.tick() => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Publishes every due event, oldest first.
    async fn flush(&self) -> Result<(), DeliveryError> {
        loop {
            let now = clock::format_rfc3339(clock::now_unix());
            let due = self
                .store
                .call(move |c| store::outbox::due(c, CHANNEL, &now, BATCH))
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            for (id, message, _) in due {
                self.client
                    .publish(self.topic.clone(), QoS::AtLeastOnce, false, message)
                    .await?;
                let now = clock::format_rfc3339(clock::now_unix());
                self.store.call(move |c| store::outbox::delivered(c, id, &now)).await?;
            }
        }
    }
}
