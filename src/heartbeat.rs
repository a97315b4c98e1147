//! Every long-running task's pulse, so a wedged one can be told apart from a quiet one: each
//! task beats from its loop, and [`Hearts::stale`] names those that stopped. `health` turns
//! that into systemd's watchdog; nothing here talks to systemd.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock (the system's, unless a test pauses it), so tests can let hours pass at once.
use tokio::time::Instant;

/// A task that has not beaten for this long is wedged.
pub(crate) const DEADLINE: Duration = Duration::from_secs(90);
/// How often a waiting task beats anyway.
pub(crate) const BEAT: Duration = Duration::from_secs(10);

/// One task's pulse: it calls [`Heart::beat`] from its loop.
#[derive(Clone)]
pub struct Heart {
    name: &'static str,
    /// Milliseconds since `start` at the last beat.
    last: Arc<AtomicU64>,
    start: Instant,
}

impl Heart {
    pub(crate) fn beat(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// A heart nobody watches (tests, one-shot commands).
    pub fn detached(name: &'static str) -> Heart {
        Heart {
            name,
            last: Arc::default(),
            start: Instant::now(),
        }
    }
}

/// The hearts of every task of one agent.
pub(crate) struct Hearts {
    hearts: Mutex<Vec<Heart>>,
    start: Instant,
}

impl Hearts {
    pub(crate) fn new() -> Arc<Hearts> {
        Arc::new(Hearts {
            hearts: Mutex::default(),
            start: Instant::now(),
        })
    }

    /// Registers a task; it starts out alive.
    pub(crate) fn heart(&self, name: &'static str) -> Heart {
        let heart = Heart {
            name,
            last: Arc::default(),
            start: self.start,
        };
        heart.beat();
        self.hearts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(heart.clone());
        heart
    }

    /// Tasks that have not beaten within `deadline`.
    pub(crate) fn stale(&self, deadline: Duration) -> Vec<&'static str> {
        let now = self.start.elapsed().as_millis() as u64;
        let hearts = self.hearts.lock().unwrap_or_else(|e| e.into_inner());
        hearts
            .iter()
            .filter(|h| now.saturating_sub(h.last.load(Ordering::Relaxed)) > deadline.as_millis() as u64)
            .map(|h| h.name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heart_that_stops_beating_is_reported() {
        let hearts = Hearts::new();
        let alive = hearts.heart("alive");
        let _wedged = hearts.heart("wedged");
        assert!(hearts.stale(Duration::from_millis(50)).is_empty());
        std::thread::sleep(Duration::from_millis(80));
        alive.beat();
        assert_eq!(hearts.stale(Duration::from_millis(50)), vec!["wedged"]);
    }
}
