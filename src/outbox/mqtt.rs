//! Reminder events on the broker: whatever the outbox holds for the `mqtt` channel, published
//! when the broker is connected, at once when something is queued, and on every reconnect. A
//! message leaves the outbox only on the broker's PUBACK for it (the link tells), oldest first:
//! a crash before that sends it again, never loses it. One the broker refuses waits, with
//! backoff (a broker that drops the connection on a refusal must not see it on every
//! reconnect); the agent's start (after an ACL is mended, say) tries everything again at once.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Publish;
use rumqttc::v5::mqttbytes::QoS;
use tokio::sync::{mpsc, watch};

use crate::backoff::Backoff;
use crate::clock;
use crate::heartbeat::{Heart, BEAT};
use crate::mqtt::link::{publish_confirmed, NotConfirmed, Tracked};
use crate::shutdown::Shutdown;
use crate::store::{self, Store, StoreError};
use crate::uplink::LinkState;

/// Another process (`linegate sync --once`) may queue without ringing: look this often anyway.
const POLL: Duration = Duration::from_secs(300);
/// Messages read from the store at a time.
const BATCH: u32 = 100;
/// A message the broker refused (its ACL, a quota) is tried again after this, doubling.
const REFUSED_RETRY: Backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(3600));

/// Later than any `next_at`: on a new connection, everything undelivered is due.
const END_OF_TIME: &str = "9999-12-31T23:59:59Z";

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
    #[error(transparent)]
    NotConfirmed(#[from] NotConfirmed),
}

impl MqttOutbox {
    pub(crate) async fn run(mut self, shutdown: Shutdown) {
        let mut pulse = tokio::time::interval(BEAT);
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Until whoever rings is gone; polling goes on regardless.
        let mut ringing = true;
        // Until the first flush is through: everything undelivered is due then.
        let mut everything = true;
        loop {
            self.heart.beat();
            let mut next_due = None;
            if self.link.borrow().connected {
                match self.flush(everything, &shutdown).await {
                    Ok(next) => {
                        everything = false;
                        next_due = next;
                    }
                    Err(DeliveryError::NotConfirmed(NotConfirmed::Stopped)) => {}
                    Err(e) => tracing::warn!(error = %e, "reminder events not published; trying again later"),
                }
            }
            let retry = next_due.map_or(POLL, |at: i64| {
                let secs = at.saturating_sub(clock::now_unix()).clamp(0, POLL.as_secs() as i64);
                Duration::from_secs(secs as u64).max(Duration::from_millis(100))
            });
            let retry = tokio::time::sleep(retry);
            tokio::pin!(retry);
            // Only what may have brought something to send: a (re)connect, a ring, a refused
            // message due again, the slow poll.
            loop {
                tokio::select! {
                    changed = self.link.changed() => if changed.is_err() { return } else { break },
                    changed = self.queued.changed(), if ringing => {
                        ringing = changed.is_ok();
                        break;
                    }
                    _ = &mut retry => break,
                    _ = poll.tick() => break,
                    _ = pulse.tick() => self.heart.beat(),
                    _ = shutdown.wait() => return,
                }
            }
        }
    }

    /// Publishes every due event (or, on a new connection, `everything` undelivered), oldest
    /// first. One the broker refuses is tried again later, with backoff, and does not hold up
    /// the others. Returns when the next one left is due (unix seconds).
    async fn flush(&self, everything: bool, shutdown: &Shutdown) -> Result<Option<i64>, DeliveryError> {
        // Each message at most once per flush: a refused one is not due again until later.
        let mut after = 0;
        loop {
            let now = if everything {
                END_OF_TIME.to_string()
            } else {
                clock::format_rfc3339(clock::now_unix())
            };
            let due = self
                .store
                .call(move |c| store::outbox::due(c, store::outbox::MQTT, after, &now, BATCH))
                .await?;
            if due.is_empty() {
                let next = self
                    .store
                    .call(|c| store::outbox::next_due(c, store::outbox::MQTT))
                    .await?;
                return Ok(next.and_then(|at| clock::parse_rfc3339(&at)));
            }
            for (id, message, attempts) in due {
                after = id;
                let publish = Publish::new(self.topic.clone(), QoS::AtLeastOnce, message, None);
                match publish_confirmed(&self.link_tx, publish, &self.heart, shutdown).await {
                    Ok(()) => {
                        let now = clock::format_rfc3339(clock::now_unix());
                        self.store.call(move |c| store::outbox::delivered(c, id, &now)).await?;
                    }
                    Err(NotConfirmed::Refused(reason)) => {
                        let unix = clock::now_unix();
                        let wait = REFUSED_RETRY.delay(attempts.saturating_add(1)).as_secs() as i64;
                        let next = clock::format_rfc3339(unix.saturating_add(wait));
                        let error = format!("the broker refused it: {reason}");
                        tracing::warn!(id, %error, retry_at = next, "reminder event refused");
                        self.store
                            .call(move |c| store::outbox::failed(c, id, &error, &next))
                            .await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}
