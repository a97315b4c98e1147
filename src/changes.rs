//! What changed in the store, told to whoever shows it (the MQTT publisher) or sends it (the
//! outbox). Senders are the sync and the command layer, and a sender never waits on the
//! displays: changes are merged into one pending set (an MO changed twice is shown once), so
//! what waits is bounded by the MOs the store holds, however far the publisher falls behind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

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

/// Changes not yet taken, merged.
#[derive(Default)]
struct Pending {
    mos: BTreeSet<i64>,
    purged: BTreeSet<i64>,
    synced: bool,
    permits: bool,
    /// The latest progress per source.
    progress: BTreeMap<&'static str, (&'static str, u64, u64)>,
}

impl Pending {
    fn add(&mut self, change: Change) {
        match change {
            // The latest of a write and a purge of the same MO wins.
            Change::Mos(ids) => {
                for id in ids {
                    self.purged.remove(&id);
                    self.mos.insert(id);
                }
            }
            Change::Purged(ids) => {
                for id in ids {
                    self.mos.remove(&id);
                    self.purged.insert(id);
                }
            }
            Change::Synced => self.synced = true,
            Change::Permits => self.permits = true,
            Change::Progress {
                source,
                step,
                done,
                total,
            } => {
                self.progress.insert(source, (step, done, total));
            }
        }
    }

    fn take(&mut self) -> Vec<Change> {
        let p = std::mem::take(self);
        let mut changes = Vec::new();
        if !p.purged.is_empty() {
            changes.push(Change::Purged(p.purged.into_iter().collect()));
        }
        if !p.mos.is_empty() {
            changes.push(Change::Mos(p.mos.into_iter().collect()));
        }
        for (source, (step, done, total)) in p.progress {
            changes.push(Change::Progress {
                source,
                step,
                done,
                total,
            });
        }
        if p.synced {
            changes.push(Change::Synced);
        }
        if p.permits {
            changes.push(Change::Permits);
        }
        changes
    }
}

struct Shared {
    pending: Mutex<Pending>,
    /// A permit is kept when nobody waits, so no change is missed between two takes.
    wake: Notify,
}

#[derive(Clone)]
pub struct Sender(Arc<Shared>);

pub(crate) struct Receiver(Arc<Shared>);

pub(crate) fn channel() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        pending: Mutex::default(),
        wake: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl Sender {
    pub fn send(&self, change: Change) {
        self.0.pending.lock().unwrap_or_else(|e| e.into_inner()).add(change);
        self.0.wake.notify_one();
    }
}

impl Receiver {
    /// Takes what is pending now, without waiting.
    pub(crate) fn take_now(&mut self) -> Vec<Change> {
        self.0.pending.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Waits for changes, then takes all that are pending, merged (purges first).
    pub(crate) async fn recv(&mut self) -> Vec<Change> {
        loop {
            let changes = self.0.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
            if !changes.is_empty() {
                return changes;
            }
            self.0.wake.notified().await;
        }
    }
}

/// Sends unless nobody listens (no broker configured).
pub(crate) fn tell(to: &Option<Sender>, change: Change) {
    if let Some(tx) = to {
        tx.send(change);
    }
}

/// Rung when messages were queued in the outbox, so its delivery tasks look at once instead of
/// on their next poll. Every ring is seen by every subscriber (a counter on a watch).
#[derive(Clone)]
pub(crate) struct Queued(Arc<tokio::sync::watch::Sender<u64>>);

impl Default for Queued {
    fn default() -> Self {
        Queued(Arc::new(tokio::sync::watch::channel(0).0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn changes_merge_and_the_latest_of_write_and_purge_wins() {
        let (tx, mut rx) = channel();
        for _ in 0..1000 {
            tx.send(Change::Mos(vec![1, 2]));
        }
        tx.send(Change::Purged(vec![2, 3]));
        tx.send(Change::Mos(vec![3]));
        tx.send(Change::Synced);
        tx.send(Change::Synced);
        let progress = |done| Change::Progress {
            source: "sicantik",
            step: "expiry",
            done,
            total: 9,
        };
        tx.send(progress(1));
        tx.send(progress(5));
        assert_eq!(
            rx.recv().await,
            vec![
                Change::Purged(vec![2]),
                Change::Mos(vec![1, 3]),
                progress(5),
                Change::Synced
            ]
        );
        // Nothing left, and a change made while nobody waits is not missed.
        tx.send(Change::Permits);
        assert_eq!(rx.recv().await, vec![Change::Permits]);
    }
}
