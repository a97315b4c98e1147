//! One shutdown signal for every task: the trigger is held by whoever decides to stop (main on
//! SIGTERM/SIGINT, a test), every task holds a [`Shutdown`] and watches it.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub struct Trigger(watch::Sender<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is triggered (or the trigger is dropped).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|set| *set).await;
    }

    /// A signal that never fires, for one-shot commands.
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        // Leaking the sender keeps `wait` pending forever instead of resolving on drop.
        std::mem::forget(tx);
        Shutdown(rx)
    }
}
