//! What changed in the store, told to whoever shows it (the MQTT publisher) or sends it (the
//! outbox). Senders are the sync and the command layer; the channel is unbounded because a
//! sender must never wait on the displays, and what it carries is small (ids).

use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These MOs were written (inserted, updated, marked gone, or by an operator).
    Mos(Vec<i64>),
    /// These MOs were deleted from the store.
    Purged(Vec<i64>),
    /// A sync run ended and was recorded.
    Synced,
    /// Permits, their expiry dates or reminders changed.
    Permits,
    /// A long step of a sync is under way: `done` of `total` (equal when it ends).
    Progress {
        source: &'static str,
        step: &'static str,
        done: u64,
        total: u64,
    },
}

pub(crate) type Sender = mpsc::UnboundedSender<Change>;
pub(crate) type Receiver = mpsc::UnboundedReceiver<Change>;

pub(crate) fn channel() -> (Sender, Receiver) {
    mpsc::unbounded_channel()
}

/// Sends unless nobody listens (no broker configured, or shutting down).
pub(crate) fn tell(to: &Option<Sender>, change: Change) {
    if let Some(tx) = to {
        let _ = tx.send(change);
    }
}

/// Rung when messages were queued in the outbox, so its delivery tasks look at once instead of
/// on their next poll. Every ring is seen by every subscriber (a counter on a watch).
#[derive(Clone)]
pub(crate) struct Queued(std::sync::Arc<tokio::sync::watch::Sender<u64>>);

impl Default for Queued {
    fn default() -> Self {
        Queued(std::sync::Arc::new(tokio::sync::watch::channel(0).0))
    }
}

impl Queued {
    pub(crate) fn ring(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}
