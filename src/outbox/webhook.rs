//! Delivers the outbox's webhook messages (reminders for a WhatsApp gateway, say): at least
//! once, each retried with backoff while the webhook fails it (later ones are tried
//! meanwhile: a reminder does not wait for another). A message leaves the outbox only when the
//! webhook answered 2xx. Idle, it sleeps until the next retry is due or something is queued.

use std::time::Duration;

use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::clock;
use crate::shutdown::Shutdown;
use crate::store::{outbox, Store};

/// Another process (`linegate sync --once`) may queue without ringing: look this often anyway.
const POLL: Duration = Duration::from_secs(300);
/// First retry after a failed delivery; it doubles up to [`RETRY_MAX`].
pub(crate) const RETRY_MIN: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(3600);
/// Messages read from the store at a time.
const BATCH: u32 = 20;

pub struct Webhook {
    pub store: Store,
    pub url: String,
    pub timeout: Duration,
    /// The first wait after a failure ([`RETRY_MIN`] in the agent; shorter in tests).
    pub retry_min: Duration,
    /// Rung by whoever queues (the SICANTIK sync).
    pub queued: watch::Receiver<u64>,
}

impl Webhook {
    pub async fn run(mut self, shutdown: Shutdown) {
        let http = crate::http::client(self.timeout);
        let backoff = Backoff::new(self.retry_min, RETRY_MAX);
        let mut last_error: Option<String> = None;
        // Until whoever rings is gone; polling goes on regardless.
        let mut ringing = true;
        loop {
            let now = clock::format_rfc3339(clock::now_unix());
            let due = match self
                .store
                .call(move |c| outbox::due(c, outbox::WEBHOOK, 0, &now, BATCH))
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    vec![]
                }
            };
            let full = due.len() == BATCH as usize;
            for (id, payload, attempts) in due {
                let post = http
                    .post(&self.url)
                    .header("Content-Type", "application/json")
                    .body(payload)
                    .send();
                // Shutdown does not wait for a slow webhook: the message stays due.
                let answer = tokio::select! {
                    answer = post => answer,
                    _ = shutdown.wait() => return,
                };
                let outcome = answer.map_err(|e| e.to_string()).and_then(|r| {
                    if r.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!("HTTP {}", r.status()))
                    }
                });
                let unix = clock::now_unix();
                let result = match outcome {
                    Ok(()) => {
                        last_error = None;
                        self.store
                            .call(move |c| outbox::delivered(c, id, &clock::format_rfc3339(unix)))
                            .await
                    }
                    Err(error) => {
                        if last_error.as_deref() != Some(&error) {
                            tracing::warn!(%error, "webhook delivery failed; retrying with backoff");
                            last_error = Some(error.clone());
                        }
                        let wait = backoff.delay(attempts.saturating_add(1));
                        let next = clock::format_rfc3339(unix.saturating_add(wait.as_secs().max(1) as i64));
                        self.store.call(move |c| outbox::failed(c, id, &error, &next)).await
                    }
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "cannot update the outbox");
                }
            }
            if full {
                continue;
            }
            let next_due = self
                .store
                .call(|c| outbox::next_due(c, outbox::WEBHOOK))
                .await
                .ok()
                .flatten()
                .and_then(|at| clock::parse_rfc3339(&at));
            let wait = next_due.map_or(POLL, |at| {
                let secs = at.saturating_sub(clock::now_unix()).clamp(0, POLL.as_secs() as i64);
                Duration::from_secs(secs as u64).max(Duration::from_millis(100))
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = self.queued.changed(), if ringing => ringing = changed.is_ok(),
                _ = shutdown.wait() => return,
            }
        }
    }
}
