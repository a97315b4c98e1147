//! Delivers the outbox's webhook messages (reminders for a WhatsApp gateway, say): at least
//! once, oldest first, retried with backoff while the webhook is down. A message leaves the
//! outbox only when the webhook answered 2xx.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::clock;
use crate::shutdown::Shutdown;
use crate::store::{outbox, Store};

/// How often the outbox is looked at when nothing is waiting.
const POLL: Duration = Duration::from_secs(2);
/// First retry after a failed delivery; it doubles up to [`RETRY_MAX`].
pub(crate) const RETRY_MIN: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(3600);

pub async fn deliver(store: Store, url: String, timeout: Duration, retry_min: Duration, shutdown: Shutdown) {
    let http = crate::http::client(timeout);
    let backoff = Backoff::new(retry_min, RETRY_MAX);
    let mut last_error: Option<String> = None;
    loop {
        let now = clock::format_rfc3339(clock::now_unix());
        let due = match store.call(move |c| outbox::due(c, "webhook", &now, 20)).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                vec![]
            }
        };
        for (id, payload, attempts) in due {
            let outcome = http
                .post(&url)
                .header("Content-Type", "application/json")
                .body(payload)
                .send()
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| {
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
                    store
                        .call(move |c| outbox::delivered(c, id, &clock::format_rfc3339(unix)))
                        .await
                }
                Err(error) => {
                    if last_error.as_deref() != Some(&error) {
                        tracing::warn!(%error, "webhook delivery failed; retrying with backoff");
                        last_error = Some(error.clone());
                    }
                    let wait = backoff.delay(attempts.saturating_add(1));
                    let next = clock::format_rfc3339(unix + wait.as_secs().max(1) as i64);
                    store.call(move |c| outbox::failed(c, id, &error, &next)).await
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "cannot update the outbox");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL.min(retry_min)) => {}
            _ = shutdown.wait() => return,
        }
    }
}
