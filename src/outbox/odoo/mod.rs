//! Operator results to Odoo: every result a command queued, in order per MO, exactly once,
//! whenever Odoo can be reached. A result is delivered step by step, each in its own file (a
//! chatter note: [`chatter`]; the instance's fields: [`fields`]; the MO's progress:
//! [`progress`]; time tracking: [`time_tracking`]), each step recorded as Odoo takes it;
//! before a step that may already have reached Odoo (its answer lost, the agent killed) is
//! tried again, Odoo is asked whether it has it. A passing failure is retried with backoff; one
//! that retrying cannot mend (no rights, a validation error, the MO gone or closed before the
//! floor's end, a wizard) parks the result for a person, holding back the rest of that MO's
//! results while the other MOs go on.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::changes::{self, Change};
use crate::clock;
use crate::config::PushConfig;
use crate::heartbeat::{Heart, BEAT};
use crate::mo::result::{FloorResult, Happened};
use crate::odoo::{OdooClient, OdooError};
use crate::shutdown::Shutdown;
use crate::store::{self, Store, StoreError};
use crate::uplink::Uplink;

mod chatter;
mod fields;
pub(crate) mod owner;
pub(crate) mod preflight;
mod progress;
mod time_tracking;
use owner::Owners;
use preflight::Preflight;

/// Results read from the store at a time.
const BATCH: u32 = 50;
/// Another process may queue without ringing; and due retries are found this often at most.
const POLL: Duration = Duration::from_secs(60);
/// While Odoo fails, the next round waits this long, doubling.
const ROUND_RETRY: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(300));
/// How often the bounds (`max_pending`, `max_age`) are applied, at most.
const BOUNDS_EVERY: Duration = Duration::from_secs(60);
/// Results dropped per transaction when over the bounds.
const DROP_BATCH: u32 = 500;
/// A result whose step failed in passing is tried again after this, doubling.
const RESULT_RETRY: Backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(3600));

/// Longer than any wait [`RESULT_RETRY`] sets (its longest, with jitter): a `next_at` further
/// ahead was set by a clock since put back.
const RETRY_HORIZON: i64 = 2 * 3600;

/// What Odoo offered the steps is asked again after this long, when there is work.
const CHECK_EVERY: Duration = Duration::from_secs(3600);

/// What Odoo offered the steps, and when it was asked.
struct Checked {
    found: Preflight,
    at: std::time::Instant,
}

/// The steps of a delivery, a bit each in the outbox's `steps_done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Chatter = 1,
    Fields = 2,
    Progress = 4,
    TimeTracking = 8,
}

pub(crate) struct OdooOutbox {
    pub(crate) store: Store,
    pub(crate) client: OdooClient,
    pub(crate) push: PushConfig,
    /// The Odoo uplink as the sync last saw it: nothing is tried while it is known down.
    pub(crate) uplink: watch::Receiver<Uplink>,
    /// Asks the Odoo sync to run now (its sync-now), when a delivery failed in passing.
    pub(crate) check_uplink: tokio::sync::mpsc::Sender<()>,
    /// Rung by the command server when it queued results.
    pub(crate) queued: watch::Receiver<u64>,
    /// To the displays: an MO whose results went up (or parked) is shown again.
    pub(crate) changes: Option<changes::Sender>,
    pub(crate) heart: Heart,
    /// To the status topic: what Odoo would refuse of the sync and the steps, at each check.
    pub(crate) refusals: watch::Sender<crate::uplink::Refusals>,
    /// This gateway, named in its notes; an MO another gateway's note names first is not
    /// reported on (see [`owner`]).
    pub(crate) owners: Option<Owners>,
}

/// Why a result did not go up this time.
#[derive(Debug)]
enum Failure {
    /// Passing: the link, a timeout, a busy server. Tried again with backoff.
    Retry(OdooError),
    /// Needs a person: tried again only when `linegate outbox retry` says so.
    Park(String),
    /// Another gateway reports on the MO: this result and the rest of the MO's queue wait for
    /// a person (see [`owner`]).
    NotOurs(String),
}

enum Round {
    /// Nothing due; the next result is due at this time (unix), if one waits.
    Idle(Option<i64>),
    /// A batch went through; more may be due.
    More,
    /// Odoo (`odoo`) or the store failed in passing: the round stopped.
    Failing { error: String, odoo: bool },
}

impl Round {
    fn failing_store(error: String) -> Round {
        Round::Failing { error, odoo: false }
    }
}

impl OdooOutbox {
    pub(crate) async fn run(mut self, shutdown: Shutdown) {
        let mut pulse = tokio::time::interval(BEAT);
        let mut retries = ROUND_RETRY.retries();
        let mut ringing = true;
        let mut last_error: Option<String> = None;
        // What Odoo offers the steps: asked at start, when Odoo returns, and at least hourly
        // while there is something to deliver.
        let mut checked: Option<Checked> = None;
        // At start and whenever Odoo comes back, every result is due at once, whatever wait
        // its last failure earned it.
        let mut everything = true;
        let mut bounded_at: Option<std::time::Instant> = None;
        loop {
            self.heart.beat();
            if bounded_at.is_none_or(|at| at.elapsed() >= BOUNDS_EVERY) {
                bounded_at = Some(std::time::Instant::now());
                self.bound(&shutdown).await;
            }
            let down = matches!(*self.uplink.borrow(), Uplink::Down { .. });
            let wait = if down {
                everything = true;
                // Odoo may come back changed.
                checked = None;
                POLL
            } else {
                // Once, when the drain begins: a result that failed during it keeps its wait,
                // or a conflicting MO would be tried again at once, round after round.
                if everything {
                    let now = clock::format_rfc3339(clock::now_unix());
                    match self.store.call(move |db| store::outbox::waive_waits(db, &now)).await {
                        Ok(_) => everything = false,
                        Err(e) => tracing::warn!(error = %e, "the outbox's waits could not be waived"),
                    }
                }
                let round = tokio::select! {
                    round = self.round(&mut checked) => round,
                    _ = shutdown.wait() => return,
                };
                match round {
                    Round::More => {
                        retries.reset();
                        continue;
                    }
                    Round::Idle(next) => {
                        retries.reset();
                        last_error = None;
                        next.map_or(POLL, |at| {
                            let secs = at.saturating_sub(clock::now_unix()).clamp(0, POLL.as_secs() as i64);
                            Duration::from_secs(secs as u64).max(Duration::from_millis(100))
                        })
                    }
                    Round::Failing { error, odoo } => {
                        // Odoo failing here may be Odoo gone: the sync, which judges the
                        // uplink, looks now; when it finds Odoo down, nothing is tried until
                        // it finds it back, and then everything is.
                        if odoo && matches!(*self.uplink.borrow(), Uplink::Up) {
                            let _ = self.check_uplink.try_send(());
                        }
                        if last_error.as_deref() != Some(&error) {
                            tracing::warn!(%error, "results not delivered to Odoo; retrying with backoff");
                            last_error = Some(error);
                        }
                        retries.failed()
                    }
                }
            };
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    changed = self.queued.changed(), if ringing => {
                        ringing = changed.is_ok();
                        break;
                    }
                    // Odoo back (or newly down): at once.
                    changed = self.uplink.changed() => if changed.is_err() { return } else { break },
                    _ = pulse.tick() => self.heart.beat(),
                    _ = shutdown.wait() => return,
                }
            }
        }
    }

    /// Drops what is past `max_age` or beyond `max_pending`, oldest first, each one logged in
    /// full (the journal keeps what Odoo never got) and counted for the status.
    async fn bound(&self, shutdown: &Shutdown) {
        let max_pending = self.push.max_pending;
        let age = i64::try_from(self.push.max_age.as_secs()).unwrap_or(i64::MAX);
        while !shutdown.is_set() {
            let unix = clock::now_unix();
            let cutoff = clock::synchronized().then(|| clock::format_rfc3339(unix.saturating_sub(age)));
            let now = clock::format_rfc3339(unix);
            let dropped = self
                .store
                .call(move |db| store::outbox::drop_over_bounds(db, max_pending, cutoff.as_deref(), &now, DROP_BATCH))
                .await;
            let dropped = match dropped {
                Ok(dropped) => dropped,
                Err(e) => {
                    tracing::warn!(error = %e, "the outbox's bounds could not be applied");
                    return;
                }
            };
            for d in &dropped {
                tracing::error!(
                    id = d.id,
                    mo = d.mo,
                    queued = d.created_at,
                    result = d.payload,
                    "a result for Odoo was dropped: past odoo.push.max_age or beyond max_pending"
                );
            }
            if let Some(changes) = &self.changes {
                let mos: Vec<i64> = dropped.iter().filter_map(|d| d.mo).collect();
                if !mos.is_empty() {
                    changes.send(Change::Mos(mos));
                }
            }
            self.heart.beat();
            if dropped.len() < DROP_BATCH as usize {
                return;
            }
        }
    }

    /// Delivers the due heads of the MOs' queues, oldest first.
    async fn round(&self, checked: &mut Option<Checked>) -> Round {
        if checked.is_none() {
            if let Err(stop) = self.check(checked).await {
                return stop;
            }
        }
        let unix = clock::now_unix();
        let now = clock::format_rfc3339(unix);
        let settle = i64::try_from(self.push.settle_time.as_secs()).unwrap_or(i64::MAX);
        let at = store::outbox::Due {
            now,
            retry_horizon: clock::format_rfc3339(unix.saturating_add(RETRY_HORIZON)),
            settle_horizon: clock::format_rfc3339(unix.saturating_add(settle).saturating_add(60)),
        };
        let heads = match self
            .store
            .call(move |db| store::outbox::odoo_heads(db, &at, BATCH))
            .await
        {
            Ok(heads) => heads,
            Err(e) => return Round::failing_store(format!("the outbox cannot be read: {e}")),
        };
        if heads.is_empty() {
            let next = self.store.call(|db| store::outbox::odoo_next_due(db)).await;
            return Round::Idle(next.ok().flatten().and_then(|at| clock::parse_rfc3339(&at)));
        }
        if checked.as_ref().is_none_or(|c| c.at.elapsed() >= CHECK_EVERY) {
            if let Err(stop) = self.check(checked).await {
                return stop;
            }
        }
        let Some(Checked { found, .. }) = checked.as_ref() else {
            unreachable!("checked just now")
        };
        // Each MO's head is its own: four lanes take them in turn, oldest first, so that a
        // slow answer for one MO holds up no other (and a backlog drains four at a time,
        // which a plant's Odoo serves without queueing).
        let heads = std::sync::Mutex::new(std::collections::VecDeque::from(heads));
        let stopped = std::sync::Mutex::new(None);
        let lane = || async {
            loop {
                if stopped.lock().unwrap().is_some() {
                    return;
                }
                let Some(head) = heads.lock().unwrap().pop_front() else {
                    return;
                };
                if let Some(stop) = self.settle(head, found).await {
                    stopped.lock().unwrap().get_or_insert(stop);
                    return;
                }
            }
        };
        tokio::join!(lane(), lane(), lane(), lane());
        stopped.into_inner().unwrap().unwrap_or(Round::More)
    }

    /// Delivers one result and records what became of it; the round stops on what it returns.
    async fn settle(&self, head: store::outbox::Waiting, found: &Preflight) -> Option<Round> {
        self.heart.beat();
        let id = head.id;
        let (outcome, mo) = match serde_json::from_str::<FloorResult>(&head.payload) {
            Ok(result) => (self.deliver(&head, &result, found).await, Some(result.mo)),
            Err(e) => (
                Err(Failure::Park(format!("the queued result cannot be read: {e}"))),
                None,
            ),
        };
        let unix = clock::now_unix();
        let now = clock::format_rfc3339(unix);
        let recorded = match &outcome {
            Ok(()) => {
                self.store
                    .call(move |db| store::outbox::result_delivered(db, id, &now))
                    .await
            }
            Err(Failure::Park(reason)) => {
                tracing::warn!(id, mo, reason, "a result for Odoo waits for a person (linegate outbox)");
                let reason = reason.clone();
                self.store
                    .call(move |db| store::outbox::park(db, id, &reason, &now))
                    .await
            }
            Err(Failure::NotOurs(reason)) => {
                tracing::error!(id, mo, reason, "results for Odoo wait for a person (linegate outbox)");
                let reason = reason.clone();
                self.store
                    .call(move |db| store::outbox::park_mo(db, id, &reason, &now).map(|_| ()))
                    .await
            }
            Err(Failure::Retry(e)) => {
                let wait = RESULT_RETRY.delay(head.attempts.saturating_add(1)).as_secs() as i64;
                let next = clock::format_rfc3339(unix.saturating_add(wait));
                let error = e.to_string();
                let answered = !unheard(e);
                self.store
                    .call(move |db| store::outbox::retry_at(db, id, &error, &next, answered))
                    .await
            }
        };
        if let Err(e) = recorded {
            return Some(Round::failing_store(format!("the outbox cannot be written: {e}")));
        }
        if let (Some(changes), Some(mo)) = (&self.changes, mo) {
            changes.send(Change::Mos(vec![mo]));
        }
        match outcome {
            // A conflict on this MO's rows is this MO's: the others go on.
            Err(Failure::Retry(e)) if !conflict(&e) => Some(Round::Failing {
                error: e.to_string(),
                odoo: true,
            }),
            _ => None,
        }
    }

    /// Asks Odoo what it offers the steps; says at once what it will refuse (the results
    /// that need it park on it, with the same words, until a person retries them).
    async fn check(&self, checked: &mut Option<Checked>) -> Result<(), Round> {
        let found = preflight::preflight(&self.client, Some(&self.push))
            .await
            .map_err(|e| Round::Failing {
                error: e.to_string(),
                odoo: true,
            })?;
        let before: Vec<_> = checked.iter().flat_map(|c| c.found.refusals()).collect();
        let now: Vec<_> = found.refusals().collect();
        if checked.is_none() || before != now {
            for (step, why) in &now {
                tracing::error!(step, why, "Odoo will refuse this part of the configured work: the API user's rights or Odoo's setup must change");
            }
            let shown = now.iter().map(|(step, why)| (step.to_string(), why.to_string()));
            self.refusals.send_replace(Some(shown.collect()));
            if now.is_empty() {
                let steps: Vec<_> = found.checks.iter().map(|c| c.step).collect();
                tracing::info!(
                    steps = steps.join(", "),
                    "results to Odoo: every configured step checked"
                );
            }
        }
        *checked = Some(Checked {
            found,
            at: std::time::Instant::now(),
        });
        Ok(())
    }

    /// The configured steps Odoo does not have yet, each recorded as it takes it.
    async fn deliver(
        &self,
        head: &store::outbox::Waiting,
        result: &FloorResult,
        found: &Preflight,
    ) -> Result<(), Failure> {
        // An attempt before this one may have reached Odoo with the step it was on: counted
        // before trying, so that a kill mid-call is known at the next start.
        let id = head.id;
        let earlier = head.attempts > 0;
        let mut done = head.steps_done;
        let mut outcome = head.outcome.clone();
        let mut left: Vec<Step> = self
            .steps(result)
            .into_iter()
            .filter(|s| done & *s as u32 == 0)
            .collect();
        left.reverse();
        // Before this result's note (once it is in, the result is this gateway's to finish),
        // and before the attempt is counted: the check only reads, so a timeout in it leaves
        // nothing to settle in Odoo.
        if let Some(owners) = self.owners.as_ref().filter(|_| left.contains(&Step::Chatter)) {
            owners.check(&self.client, result.mo).await?;
        }
        let settle = i64::try_from(self.push.settle_time.as_secs()).unwrap_or(i64::MAX);
        let settle_at = clock::format_rfc3339(clock::now_unix().saturating_add(settle));
        self.store
            .call(move |db| store::outbox::attempt(db, id, &settle_at))
            .await
            .map_err(stored)?;
        // After an earlier attempt, any step not recorded as done may be in Odoo: a kill leaves
        // only the step it was on unrecorded, but a power cut takes back every step recorded
        // since that attempt's (durable) count. So each is looked up before it is made again.
        let uncertain = earlier;
        while let Some(step) = left.pop() {
            let mut learnt = None;
            match step {
                Step::Chatter => {
                    self.note(result, found.note_subtype, outcome.as_deref(), uncertain)
                        .await?
                }
                Step::Fields => self.fields(result, &found.types).await?,
                Step::Progress => learnt = self.progress(result, id).await?,
                Step::TimeTracking => self.time_tracking(result, found.productive_loss, uncertain).await?,
            }
            done |= step as u32;
            if let Some(learnt) = learnt {
                // What Odoo made of it is the result's record, and the note's, whenever made.
                let kept = learnt.clone();
                self.store
                    .call(move |db| store::outbox::steps_done_with(db, id, done, &kept))
                    .await
                    .map_err(stored)?;
                outcome = Some(learnt);
            } else if !left.is_empty() {
                // The last one is recorded with the delivery, one write less: a kill before that
                // leaves it as a kill right after the call would, looked up before it is sent
                // again.
                self.store
                    .call(move |db| store::outbox::steps_done(db, id, done))
                    .await
                    .map_err(stored)?;
            }
        }
        Ok(())
    }

    /// A call that must not run twice: the caller has looked first (see [`OdooClient::call_once`]).
    async fn once(&self, model: &str, method: &str, named: Map<String, Value>) -> Result<Value, Failure> {
        self.client.call_once(model, method, named).await.map_err(classify)
    }

    /// The first record of `model` that `domain` matches, if any.
    async fn first_id(&self, model: &str, domain: &Value) -> Result<Option<i64>, Failure> {
        let found = self
            .client
            .search_read(model, domain, &["id".to_string()], "id asc", Some(1))
            .await
            .map_err(classify)?;
        Ok(found.first().and_then(|r| r.get("id")).and_then(Value::as_i64))
    }

    /// A call that only reads, retried as the client retries.
    async fn ask(&self, model: &str, method: &str, named: Map<String, Value>) -> Result<Value, Failure> {
        self.client.call(model, method, named).await.map_err(classify)
    }

    /// The configured steps of `result`, in the order they are taken. The note comes first:
    /// it is the floor's record in Odoo even when a later step waits for a person; but the
    /// note of an end the MO's progress closes comes last, to say what Odoo made of it (its
    /// new name, its backorder). Time tracking comes before the close: mark-done books its
    /// expected duration on every work order without time, and the floor's real time booked
    /// after it would add to that estimate.
    fn steps(&self, result: &FloorResult) -> Vec<Step> {
        let note_last = self.push.progress && result.happened == Happened::Ended;
        let mut steps = Vec::new();
        if self.push.chatter && !note_last {
            steps.push(Step::Chatter);
        }
        if !self.push.fields.mapped().is_empty() {
            steps.push(Step::Fields);
        }
        if self.push.time_tracking {
            steps.push(Step::TimeTracking);
        }
        if self.push.progress {
            steps.push(Step::Progress);
        }
        if self.push.chatter && note_last {
            steps.push(Step::Chatter);
        }
        steps
    }

    /// The MO's fields `names`, as Odoo has them now.
    async fn read_mo(&self, mo: i64, names: &[&str]) -> Result<Map<String, Value>, Failure> {
        let named = Map::from_iter([("ids".to_string(), json!([mo])), ("fields".to_string(), json!(names))]);
        match self.ask("mrp.production", "read", named).await? {
            Value::Array(mut rows) if !rows.is_empty() => match rows.swap_remove(0) {
                Value::Object(row) => Ok(row),
                other => Err(Failure::Park(format!("read answered {other}"))),
            },
            // `read` leaves out records that do not exist.
            _ => Err(Failure::Park("the MO no longer exists in Odoo".into())),
        }
    }
}

/// The store failing under a delivery: the round stops and tries again.
fn stored(e: StoreError) -> Failure {
    Failure::Retry(OdooError::Unsupported(format!("the outbox cannot be written: {e}")))
}

/// What retrying can mend and what it cannot.
fn classify(e: OdooError) -> Failure {
    match &e {
        e if e.is_retryable() => Failure::Retry(e.clone()),
        // The credentials: not this result's fault; the sync shows the uplink refused.
        OdooError::AccessDenied(_) => Failure::Retry(e.clone()),
        OdooError::Rpc { name, .. } if name.ends_with("MissingError") => {
            Failure::Park(format!("the MO no longer exists in Odoo: {}", one_line(&e)))
        }
        _ => Failure::Park(one_line(&e)),
    }
}

/// A passing failure of one record's transaction (another one held its rows): the same call
/// for another MO is not concerned. Everything else passing (the link, a timeout, the
/// database gone) is taken as Odoo's as a whole.
fn conflict(e: &OdooError) -> bool {
    matches!(e, OdooError::Rpc { name, retryable: true, .. } if [
        "psycopg2.extensions.TransactionRollbackError",
        "psycopg2.errors.SerializationFailure",
        "psycopg2.errors.LockNotAvailable",
        "psycopg2.errors.DeadlockDetected",
    ].contains(&name.as_str()))
}

/// Whether a call that failed so may have been carried out, or may still be running, in Odoo:
/// no answer came back after the request went out. Odoo's own errors, a proxy's 502 or 503 and
/// a connection never made mean it did nothing.
fn unheard(e: &OdooError) -> bool {
    matches!(
        e,
        OdooError::Timeout(_) | OdooError::Transport(_) | OdooError::Unavailable { status: 504, .. }
    )
}

/// An error on one line, for a parked reason (systemd's STATUS, a display's line): Odoo's
/// messages run over several (an AccessError lists the groups that would be allowed).
fn one_line(e: &OdooError) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::mo::result::Happened;
    use crate::mo::Protected;

    /// An ended MO's result, 120 made of 125.
    pub(crate) fn ended() -> FloorResult {
        FloorResult {
            event_id: "lg-00112233aabbccdd".into(),
            happened: Happened::Ended,
            mo: 7,
            name: "WH/MO/00007".into(),
            operator: Some("ana".into()),
            station: "ws-1".into(),
            at: "2026-12-01T08:00:00Z".into(),
            clock_synced: false,
            protected: Protected {
                ready_for_production: true,
                auth_first: Some("000100".into()),
                auth_last: Some("000219".into()),
                roll_number: Some("R-7".into()),
                leader_id: Some("0042".into()),
                line: Some("L1".into()),
                date_start: Some("2026-12-01T06:00:00Z".into()),
                date_finished: Some("2026-12-01T08:00:00Z".into()),
            },
            target: 125.0,
        }
    }

    #[test]
    fn what_retrying_cannot_mend_parks() {
        let rpc = |name: &str, retryable| OdooError::Rpc {
            name: name.into(),
            message: "m".into(),
            retryable,
        };
        assert!(matches!(
            classify(OdooError::Timeout(Duration::from_secs(1))),
            Failure::Retry(_)
        ));
        assert!(matches!(
            classify(OdooError::AccessDenied("k".into())),
            Failure::Retry(_)
        ));
        assert!(matches!(
            classify(rpc("psycopg2.errors.SerializationFailure", true)),
            Failure::Retry(_)
        ));
        assert!(matches!(
            classify(OdooError::AccessError("no".into())),
            Failure::Park(_)
        ));
        assert!(matches!(
            classify(rpc("odoo.exceptions.ValidationError", false)),
            Failure::Park(_)
        ));
        let Failure::Park(why) = classify(rpc("odoo.exceptions.MissingError", false)) else {
            panic!("a missing MO parks")
        };
        assert!(why.contains("no longer exists"), "{why}");
    }

    #[test]
    fn a_row_conflict_holds_up_only_its_mo_and_an_unanswered_call_must_settle() {
        let rpc = |name: &str| OdooError::Rpc {
            name: name.into(),
            message: "could not serialize access due to concurrent update".into(),
            retryable: true,
        };
        assert!(conflict(&rpc("psycopg2.errors.SerializationFailure")));
        assert!(
            !conflict(&rpc("psycopg2.OperationalError")),
            "the database gone is everyone's"
        );
        assert!(!conflict(&OdooError::Timeout(Duration::from_secs(30))));
        assert!(unheard(&OdooError::Timeout(Duration::from_secs(30))));
        assert!(unheard(&OdooError::Transport("connection reset".into())));
        assert!(
            !unheard(&OdooError::Unreached("connection refused".into())),
            "nothing was sent"
        );
        assert!(!unheard(&rpc("psycopg2.errors.SerializationFailure")), "Odoo answered");
        let gateway_timeout = OdooError::Unavailable {
            status: 504,
            detail: "proxy gave up".into(),
        };
        assert!(unheard(&gateway_timeout), "the proxy gave up, Odoo may not have");
    }
}
