//! Stopping: one signal for every task, and the agent's tasks in stages that stop in order.
//!
//! A [`Trigger`] is held by whoever decides to stop (main on SIGTERM/SIGINT, a test); every task
//! holds a [`Shutdown`] and watches it. [`Tasks`] runs the agent's tasks in stages: on stop,
//! each stage is told in turn and awaited before the next one is, within one deadline, so that
//! intake ends before the publisher says goodbye, and the publisher before the link that
//! carries its goodbye to the broker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct Shutdown(CancellationToken);

/// Fires the shutdown when told to, or when dropped.
pub struct Trigger(CancellationToken);

pub fn channel() -> (Trigger, Shutdown) {
    let token = CancellationToken::new();
    (Trigger(token.clone()), Shutdown(token))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.cancel();
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Shutdown {
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once shutdown is triggered.
    pub(crate) async fn wait(&self) {
        self.0.cancelled().await
    }

    /// A signal that never fires, for one-shot commands.
    pub fn never() -> Shutdown {
        Shutdown(CancellationToken::new())
    }
}

/// A stage of [`Tasks`], in the order stages were made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage(usize);

struct StageTasks {
    name: &'static str,
    token: CancellationToken,
    tracker: TaskTracker,
    /// Names of its tasks still running, for the report of those that did not stop.
    running: Arc<Mutex<Vec<&'static str>>>,
    /// To abort those that did not stop in time.
    handles: Vec<tokio::task::AbortHandle>,
}

/// Each stage after the one stopping is sure of this much of the deadline: a slow intake
/// cannot take the publisher's goodbye from it.
const RESERVED_PER_STAGE: Duration = Duration::from_millis(1500);

/// The agent's tasks, by stage.
pub(crate) struct Tasks {
    stages: Vec<StageTasks>,
    /// Every task says when it ends: before a stop, that means it died.
    ended_tx: mpsc::UnboundedSender<&'static str>,
    ended: mpsc::UnboundedReceiver<&'static str>,
}

impl Default for Tasks {
    fn default() -> Self {
        let (ended_tx, ended) = mpsc::unbounded_channel();
        Tasks {
            stages: Vec::new(),
            ended_tx,
            ended,
        }
    }
}

impl Tasks {
    /// A new stage, stopped after every stage made before it.
    pub(crate) fn stage(&mut self, name: &'static str) -> Stage {
        self.stages.push(StageTasks {
            name,
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            running: Arc::default(),
            handles: Vec::new(),
        });
        Stage(self.stages.len() - 1)
    }

    /// Runs `task` in `stage`; it gets the stage's shutdown signal.
    pub(crate) fn spawn<F>(&mut self, stage: Stage, name: &'static str, task: impl FnOnce(Shutdown) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let s = &mut self.stages[stage.0];
        let running = s.running.clone();
        running.lock().unwrap_or_else(|e| e.into_inner()).push(name);
        let ended = self.ended_tx.clone();
        let future = task(Shutdown(s.token.clone()));
        let handle = s.tracker.spawn(async move {
            // Said also when the task panics or is aborted: the guard runs as the future drops.
            let _said = EndGuard { name, running, ended };
            future.await;
        });
        s.handles.push(handle.abort_handle());
    }

    /// The first task that ended by itself (a task ends only when told to, or when it fails).
    pub(crate) async fn ended(&mut self) -> &'static str {
        self.ended.recv().await.unwrap_or("a task")
    }

    /// Stops every stage in order within `deadline`, each later stage sure of a share of it;
    /// the tasks that did not stop in time are named, and aborted.
    pub(crate) async fn stop(mut self, deadline: Duration) -> Vec<&'static str> {
        let until = tokio::time::Instant::now() + deadline;
        let mut late = Vec::new();
        let count = self.stages.len();
        for (i, stage) in self.stages.iter().enumerate() {
            stage.token.cancel();
            stage.tracker.close();
            // Until the time the stages after it reserve, but never less than half of what is left.
            let now = tokio::time::Instant::now();
            let reserved = RESERVED_PER_STAGE * u32::try_from(count - 1 - i).unwrap_or(u32::MAX);
            let half = now + until.saturating_duration_since(now) / 2;
            let budget = until.checked_sub(reserved).unwrap_or(now).max(half);
            if tokio::time::timeout_at(budget, stage.tracker.wait()).await.is_err() {
                let names = stage.running.lock().unwrap_or_else(|e| e.into_inner()).clone();
                tracing::warn!(stage = stage.name, tasks = ?names, "tasks did not stop in time; aborting them");
                stage.handles.iter().for_each(tokio::task::AbortHandle::abort);
                late.extend(names);
            }
        }
        self.stages.clear();
        late
    }
}

/// Tasks dropped without [`Tasks::stop`] (a start that failed half-way) stop at once.
impl Drop for Tasks {
    fn drop(&mut self) {
        for stage in &self.stages {
            stage.token.cancel();
            stage.handles.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }
}

struct EndGuard {
    name: &'static str,
    running: Arc<Mutex<Vec<&'static str>>>,
    ended: mpsc::UnboundedSender<&'static str>,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = running.iter().position(|n| *n == self.name) {
            running.remove(at);
        }
        let _ = self.ended.send(self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stages_stop_in_order_and_late_tasks_are_named() {
        // Given three stages; the second one's task records when it was told after the first ended
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Tasks::default();
        let (first, second, third) = (tasks.stage("first"), tasks.stage("second"), tasks.stage("third"));
        let log = order.clone();
        tasks.spawn(first, "intake", move |stop| async move {
            stop.wait().await;
            tokio::task::yield_now().await;
            log.lock().unwrap().push("intake stopped");
        });
        let log = order.clone();
        tasks.spawn(second, "publisher", move |stop| async move {
            stop.wait().await;
            log.lock().unwrap().push("publisher told");
        });
        tasks.spawn(third, "stuck", |_| std::future::pending());
        // When they are stopped
        let late = tasks.stop(Duration::from_millis(400)).await;
        // Then the first stage ended before the second was told, and the stuck task is named
        assert_eq!(*order.lock().unwrap(), ["intake stopped", "publisher told"]);
        assert_eq!(late, ["stuck"]);
    }

    #[tokio::test]
    async fn a_task_that_ends_by_itself_is_reported() {
        let mut tasks = Tasks::default();
        let stage = tasks.stage("only");
        tasks.spawn(stage, "quitter", |_| async {});
        tasks.spawn(stage, "waiter", |stop| async move { stop.wait().await });
        assert_eq!(tasks.ended().await, "quitter");
        assert!(tasks.stop(Duration::from_secs(1)).await.is_empty());
    }
}
