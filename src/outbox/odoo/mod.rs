//! Operator results to Odoo: every result a command queued, in order per MO, exactly once,
//! whenever Odoo can be reached. A result is delivered step by step (a chatter note, the
//! instance's fields), each step recorded as Odoo takes it; before a step that may already
//! have reached Odoo (its answer lost, the agent killed) is tried again, Odoo is asked whether
//! it has it. A passing failure is retried with backoff; one that retrying cannot mend (no
//! rights, a validation error, the MO gone, a wizard) parks the result for a person, holding
//! back the rest of that MO's results while the other MOs go on.

use std::collections::HashMap;
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

pub(crate) mod owner;
pub(crate) mod preflight;
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
/// Produced over this many times the planned quantity, and over it by [`IMPLAUSIBLE_OVER`],
/// is taken for a mistyped sticker code (an extra digit or two), not for overproduction.
const IMPLAUSIBLE: f64 = 10.0;
const IMPLAUSIBLE_OVER: f64 = 10_000.0;

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
        let found = preflight::preflight(&self.client, &self.push)
            .await
            .map_err(|e| Round::Failing {
                error: e.to_string(),
                odoo: true,
            })?;
        let before: Vec<_> = checked.iter().flat_map(|c| c.found.refusals()).collect();
        let now: Vec<_> = found.refusals().collect();
        if checked.is_none() || before != now {
            for (step, why) in &now {
                tracing::error!(step, why, "results to Odoo: Odoo will refuse this step of [odoo.push]");
            }
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
        let mut left: Vec<Step> = self.steps().into_iter().filter(|s| done & *s as u32 == 0).collect();
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
            match step {
                Step::Chatter => self.note(result, uncertain).await?,
                Step::Fields => self.fields(result, &found.types).await?,
                Step::Progress => self.progress(result).await?,
                Step::TimeTracking => self.time_tracking(result, found.productive_loss, uncertain).await?,
            }
            done |= step as u32;
            // The last one is recorded with the delivery, one write less: a kill before that
            // leaves it as a kill right after the call would, looked up before it is sent again.
            if !left.is_empty() {
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

    fn steps(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.push.chatter {
            steps.push(Step::Chatter);
        }
        if !self.push.fields.mapped().is_empty() {
            steps.push(Step::Fields);
        }
        if self.push.progress {
            steps.push(Step::Progress);
        }
        if self.push.time_tracking {
            steps.push(Step::TimeTracking);
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

    /// The MO's state in Odoo follows the floor: started there when started here; on the end,
    /// the quantity made, then done (with a backorder for the rest). Read first, so that a
    /// step Odoo already has (its answer lost) is not made twice.
    async fn progress(&self, result: &FloorResult) -> Result<(), Failure> {
        let mo = result.mo;
        let state = |row: &Map<String, Value>| row.get("state").and_then(Value::as_str).unwrap_or_default().to_string();
        match result.happened {
            Happened::Registered => Ok(()),
            Happened::Started => {
                let row = self.read_mo(mo, &["state"]).await?;
                match state(&row).as_str() {
                    "confirmed" => {
                        let named = Map::from_iter([("ids".to_string(), json!([mo]))]);
                        // It answers nothing (JSON-2 `null`, JSON-RPC no `result`).
                        match self.once("mrp.production", "action_start", named).await? {
                            Value::Null | Value::Bool(true) => Ok(()),
                            other => Err(wizard("action_start", &other)),
                        }
                    }
                    "progress" | "to_close" | "done" => Ok(()),
                    other => Err(Failure::Park(format!(
                        "the MO is {other:?} in Odoo; it cannot be started there"
                    ))),
                }
            }
            Happened::Ended => {
                let row = self.read_mo(mo, &["state", "product_qty"]).await?;
                match state(&row).as_str() {
                    "done" => return Ok(()),
                    "confirmed" | "progress" | "to_close" => {}
                    other => {
                        return Err(Failure::Park(format!(
                            "the MO is {other:?} in Odoo; it cannot be closed there"
                        )))
                    }
                }
                let p = &result.protected;
                let Some(produced) = result.produced() else {
                    return Err(Failure::Park(match (&p.auth_first, &p.auth_last) {
                        (Some(first), Some(last)) => {
                            format!("the sticker codes {first} … {last} give no quantity produced")
                        }
                        _ => "no quantity produced is known (no sticker codes)".to_string(),
                    }));
                };
                let planned = row.get("product_qty").and_then(Value::as_f64).unwrap_or(0.0);
                // A code mistyped by a digit would close the MO with billions made: that is
                // for a person to look at, not for Odoo to book.
                if produced as f64 > (planned * IMPLAUSIBLE).max(planned + IMPLAUSIBLE_OVER) {
                    return Err(Failure::Park(format!(
                        "the sticker codes say {produced} made, where {planned} were planned: a person \
                         checks them, closes the MO in Odoo, and drops this result"
                    )));
                }
                let vals = json!({"qty_producing": produced as f64});
                let named = Map::from_iter([("ids".to_string(), json!([mo])), ("vals".to_string(), vals)]);
                match self.once("mrp.production", "write", named).await? {
                    Value::Bool(true) => {}
                    other => return Err(wizard("write", &other)),
                }
                // The quantity onto the MO's moves, as the form's "produce" does (it answers
                // nothing); both calls set, so repeating them changes nothing.
                let named = Map::from_iter([("ids".to_string(), json!([mo]))]);
                match self.once("mrp.production", "set_qty_producing", named).await? {
                    Value::Null | Value::Bool(true) => {}
                    other => return Err(wizard("set_qty_producing", &other)),
                }
                let mut named = Map::from_iter([("ids".to_string(), json!([mo]))]);
                if (produced as f64) < planned {
                    // Less than planned: close it and leave the rest in a backorder, as the
                    // wizard's "Create Backorder" does.
                    named.insert(
                        "context".into(),
                        json!({"skip_backorder": true, "mo_ids_to_backorder": [mo]}),
                    );
                }
                match self.once("mrp.production", "button_mark_done", named).await? {
                    Value::Bool(true) => Ok(()),
                    // A dict where `true` was expected is a wizard: nothing was done.
                    other => Err(wizard("button_mark_done", &other)),
                }
            }
        }
    }

    /// A time-tracking entry with the floor's start and end on the MO's first work order,
    /// unless Odoo has it already (found by the event id in its description).
    async fn time_tracking(&self, result: &FloorResult, loss: Option<i64>, uncertain: bool) -> Result<(), Failure> {
        let p = &result.protected;
        let (Happened::Ended, Some(start), Some(end)) = (result.happened, &p.date_start, &p.date_finished) else {
            return Ok(());
        };
        let row = self.read_mo(result.mo, &["workorder_ids", "company_id"]).await?;
        let Some(workorder) = row
            .get("workorder_ids")
            .and_then(Value::as_array)
            .and_then(|w| w.first())
            .and_then(Value::as_i64)
        else {
            // Nothing to attach it to.
            return Ok(());
        };
        if uncertain {
            let domain = json!([
                ["workorder_id", "=", workorder],
                ["description", "ilike", result.event_id]
            ]);
            let found = self.first_id("mrp.workcenter.productivity", &domain).await?;
            if found.is_some() {
                return Ok(());
            }
        }
        let many2one =
            |row: &Map<String, Value>, name: &str| row.get(name).and_then(|v| v.get(0)).and_then(Value::as_i64);
        let named = Map::from_iter([
            ("ids".to_string(), json!([workorder])),
            ("fields".to_string(), json!(["workcenter_id"])),
        ]);
        let workcenter = match self.ask("mrp.workorder", "read", named).await? {
            Value::Array(rows) => rows
                .first()
                .and_then(Value::as_object)
                .and_then(|r| many2one(r, "workcenter_id")),
            _ => None,
        };
        let Some(workcenter) = workcenter else {
            return Err(Failure::Park(format!(
                "work order {workorder} has no work center in Odoo"
            )));
        };
        let Some(loss) = loss else {
            return Err(Failure::Park(
                "Odoo has no productive loss type (mrp.workcenter.productivity.loss)".into(),
            ));
        };
        let odoo_time = |t: &str| clock::parse_rfc3339(t).map(clock::format_odoo);
        let (Some(start), Some(end)) = (odoo_time(start), odoo_time(end)) else {
            return Err(Failure::Park("the floor's start or end time cannot be read".into()));
        };
        let mut vals = json!({"workorder_id": workorder, "workcenter_id": workcenter, "production_id": result.mo,
            "loss_id": loss, "date_start": start, "date_end": end,
            "description": format!("linegate {} ({})", result.event_id, result.station)});
        if let Some(company) = many2one(&row, "company_id") {
            vals["company_id"] = json!(company);
        }
        let named = Map::from_iter([("vals_list".to_string(), json!([vals]))]);
        match self.once("mrp.workcenter.productivity", "create", named).await? {
            Value::Array(ids) if ids.len() == 1 && ids[0].is_i64() => Ok(()),
            other => Err(wizard("create", &other)),
        }
    }

    /// The chatter note, unless Odoo has it already (`uncertain`: an earlier try may have
    /// posted it).
    async fn note(&self, result: &FloorResult, uncertain: bool) -> Result<(), Failure> {
        if uncertain {
            let domain = json!([
                ["model", "=", "mrp.production"],
                ["res_id", "=", result.mo],
                ["body", "ilike", result.event_id]
            ]);
            let found = self.first_id("mail.message", &domain).await?;
            if found.is_some() {
                return Ok(());
            }
        }
        let named = Map::from_iter([
            ("ids".to_string(), json!([result.mo])),
            (
                "body".to_string(),
                json!(note(result, self.owners.as_ref().map(Owners::gateway))),
            ),
            ("message_type".to_string(), json!("comment")),
            ("subtype_xmlid".to_string(), json!("mail.mt_note")),
        ]);
        match self.once("mrp.production", "message_post", named).await? {
            // JSON-2 answers the new message's id in a list, /jsonrpc the id alone.
            Value::Number(_) => Ok(()),
            Value::Array(ids) if ids.len() == 1 && ids[0].is_i64() => Ok(()),
            other => Err(Failure::Park(format!(
                "message_post answered {} where a message id was expected",
                crate::http::snippet(&other.to_string())
            ))),
        }
    }

    /// The mapped operator values, written into the instance's fields.
    async fn fields(&self, result: &FloorResult, types: &HashMap<String, String>) -> Result<(), Failure> {
        let mapped = self.push.fields.mapped();
        // One missing when Odoo was last asked may have been added since (then a person
        // retried the parked result): asked again before parking on it.
        let fresh;
        let types = if mapped.iter().all(|(_, f)| types.contains_key(*f)) {
            types
        } else {
            let names: Vec<&str> = mapped.iter().map(|(_, f)| *f).collect();
            fresh = preflight::field_types(&self.client, &names).await.map_err(classify)?;
            &fresh
        };
        let mut vals = Map::new();
        for (key, field) in mapped {
            let Some(kind) = types.get(field) else {
                return Err(Failure::Park(format!(
                    "odoo.push.fields.{key}: Odoo has no field `{field}` on mrp.production"
                )));
            };
            vals.insert(field.to_string(), field_value(result, key, kind));
        }
        let named = Map::from_iter([
            ("ids".to_string(), json!([result.mo])),
            ("vals".to_string(), Value::Object(vals)),
        ]);
        match self.once("mrp.production", "write", named).await? {
            Value::Bool(true) => Ok(()),
            other => Err(Failure::Park(format!(
                "write answered {} where true was expected",
                crate::http::snippet(&other.to_string())
            ))),
        }
    }
}

/// An answer of another shape than the call promises: a wizard (an action dict) where `true`
/// or nothing was expected means Odoo did nothing and wants a person.
fn wizard(method: &str, answer: &Value) -> Failure {
    let name = answer.get("name").and_then(Value::as_str);
    match (answer.get("type").and_then(Value::as_str), name) {
        (Some(kind), Some(name)) if kind.starts_with("ir.actions") => Failure::Park(format!(
            "{method} opened a wizard in Odoo ({name:?}): a person must finish it there"
        )),
        _ => Failure::Park(format!(
            "{method} answered {} where success was expected",
            crate::http::snippet(&answer.to_string())
        )),
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

/// A mapped value in the shape of its Odoo field: datetimes as Odoo writes them (naive UTC),
/// numbers as numbers, text as text; an unset value is `false`, as Odoo's empty.
fn field_value(result: &FloorResult, key: &str, kind: &str) -> Value {
    let p = &result.protected;
    let text = |v: &Option<String>| v.clone().map_or(Value::Bool(false), Value::String);
    let time = |v: &Option<String>| {
        v.as_deref()
            .and_then(clock::parse_rfc3339)
            .map_or(Value::Bool(false), |t| json!(clock::format_odoo(t)))
    };
    let value = match key {
        "auth_first" => text(&p.auth_first),
        "auth_last" => text(&p.auth_last),
        "roll_number" => text(&p.roll_number),
        "leader_id" => text(&p.leader_id),
        "line" => text(&p.line),
        "operator" => text(&result.operator),
        "date_start" => time(&p.date_start),
        "date_finished" => time(&p.date_finished),
        "produced" => result.produced().map_or(Value::Bool(false), |n| json!(n)),
        _ => Value::Bool(false),
    };
    match (kind, value) {
        ("char" | "text", Value::Number(n)) => json!(n.to_string()),
        (_, value) => value,
    }
}

/// The chatter note of a result: plain lines, then the gateway's (see [`owner`]), and the
/// event id last (it finds the note again).
pub(crate) fn note(result: &FloorResult, gateway: Option<&str>) -> String {
    let p = &result.protected;
    let mut lines = vec![format!("linegate: {} {}", result.name, result.happened.as_str())];
    let mut who = Vec::new();
    if let Some(operator) = &result.operator {
        who.push(format!("operator {operator}"));
    }
    if let Some(leader) = &p.leader_id {
        who.push(format!("leader {leader}"));
    }
    who.push(format!("station {}", result.station));
    if let Some(line) = &p.line {
        who.push(format!("line {line}"));
    }
    lines.push(who.join(", "));
    let mut what = Vec::new();
    match (&p.auth_first, &p.auth_last) {
        (Some(first), Some(last)) => what.push(format!("stickers {first} to {last}")),
        (Some(first), None) => what.push(format!("first sticker {first}")),
        _ => {}
    }
    if let Some(roll) = &p.roll_number {
        what.push(format!("roll {roll}"));
    }
    if result.happened == Happened::Ended {
        if let Some(produced) = result.produced() {
            what.push(format!("produced {produced}"));
        }
        if let Some(loss) = result.loss() {
            what.push(format!("loss {loss}"));
        }
    }
    if !what.is_empty() {
        lines.push(what.join(", "));
    }
    let mut times = Vec::new();
    if let Some(start) = &p.date_start {
        times.push(format!("started {start}"));
    }
    if let Some(end) = &p.date_finished {
        times.push(format!("ended {end}"));
    }
    times.push(format!(
        "recorded {} (gateway clock {})",
        result.at,
        if result.clock_synced {
            "synchronised"
        } else {
            "NOT synchronised"
        }
    ));
    lines.push(times.join(", "));
    if let Some(gateway) = gateway {
        lines.push(owner::line(gateway));
    }
    lines.push(format!("event {}", result.event_id));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mo::Protected;

    fn ended() -> FloorResult {
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
    fn a_note_says_who_what_when_and_carries_the_event_id() {
        assert_eq!(
            note(&ended(), Some("gw-1")),
            "linegate: WH/MO/00007 ended\n\
             operator ana, leader 0042, station ws-1, line L1\n\
             stickers 000100 to 000219, roll R-7, produced 120, loss 5\n\
             started 2026-12-01T06:00:00Z, ended 2026-12-01T08:00:00Z, recorded 2026-12-01T08:00:00Z (gateway clock NOT synchronised)\n\
             [linegate gateway gw-1]\n\
             event lg-00112233aabbccdd"
        );
    }

    #[test]
    fn mapped_values_take_their_fields_shapes() {
        let r = ended();
        assert_eq!(field_value(&r, "date_start", "datetime"), json!("2026-12-01 06:00:00"));
        assert_eq!(field_value(&r, "produced", "integer"), json!(120));
        assert_eq!(field_value(&r, "produced", "char"), json!("120"));
        assert_eq!(field_value(&r, "leader_id", "char"), json!("0042"));
        let mut started = r.clone();
        started.protected.date_finished = None;
        started.protected.auth_last = None;
        assert_eq!(field_value(&started, "date_finished", "datetime"), json!(false));
        assert_eq!(field_value(&started, "produced", "integer"), json!(false));
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
