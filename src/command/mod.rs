//! The command layer: operators' actions from workstation panels, validated, applied exactly
//! once, answered. It is the only writer of protected columns, and it writes nothing else.
//! It knows nothing of MQTT: a [`Request`] comes in, a [`Handled`] goes out.
//!
//! [`parse`] reads what the panel sent, [`rules`] decides on the rows the store hands in, and
//! [`reply`] is what the panel gets; those three are pure. [`Commands`] runs them against the
//! store, in the command's own transaction.

pub(crate) mod parse;
pub(crate) mod reply;
pub(crate) mod rules;

use std::time::Duration;

use serde_json::json;

use crate::clock;
use crate::mo::result::{event_id, FloorResult, Happened};
use crate::mo::{MoRow, OperatorWrite};
use crate::store::{self, Store, StoreError};
use parse::{Checks, Command, Envelope, Query};
use reply::{refuse, summary, Refusal, Reply};

/// One command as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub station: String,
    pub action: String,
    pub payload: Vec<u8>,
    pub received_unix: i64,
}

/// The answer for the panel, and which MOs changed (for the displays).
#[derive(Debug, Clone)]
pub struct Handled {
    pub reply: Reply,
    pub(crate) changed: Vec<i64>,
    /// True when this request_id was answered before and nothing was written now.
    pub(crate) replayed: bool,
}

impl Handled {
    fn answer(reply: Reply) -> Handled {
        Handled {
            reply,
            changed: vec![],
            replayed: false,
        }
    }
}

/// Settings of the command layer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Commands older than this when they arrive are refused as stale.
    pub max_age: Duration,
    /// Larger payloads are refused unread.
    pub max_payload: usize,
}

pub struct Commands {
    store: Store,
    limits: Limits,
    /// To the sync scheduler, for `sync-now`; a full channel means a sync is already due.
    sync_now: tokio::sync::mpsc::Sender<()>,
    /// The gateway's id, when results go back to Odoo: each applied command queues them, and
    /// rings the delivery.
    report_as: Option<String>,
    results_queued: Option<crate::changes::Queued>,
}

impl Commands {
    pub fn new(store: Store, limits: Limits, sync_now: tokio::sync::mpsc::Sender<()>) -> Commands {
        Commands {
            store,
            limits,
            sync_now,
            report_as: None,
            results_queued: None,
        }
    }

    /// Every applied command queues what Odoo is to be told of it, in its own transaction, and
    /// rings `queued`; `gateway` makes the results' event ids this gateway's.
    pub(crate) fn report_to_odoo(mut self, gateway: &str, queued: crate::changes::Queued) -> Commands {
        self.report_as = Some(gateway.to_string());
        self.results_queued = Some(queued);
        self
    }

    pub async fn handle(&self, request: Request) -> Handled {
        let envelope = match parse::envelope(&request.action, &request.payload, self.limits.max_payload) {
            Ok(envelope) => envelope,
            Err(refused) => {
                return Handled::answer(Reply::refused(refused.request_id, &request.action, refused.refusal))
            }
        };
        let request_id = Some(envelope.request_id.clone());
        match self.handle_envelope(&request, &envelope).await {
            Ok(handled) => handled,
            Err(refusal) => Handled::answer(Reply::refused(request_id, &request.action, refusal)),
        }
    }

    /// A refusal before the command is looked at (by the transport: a response topic it may not
    /// use, say), with the request_id when the payload has a readable one. Nothing is written.
    pub(crate) fn refuse(&self, request: &Request, refusal: Refusal) -> Handled {
        let request_id = parse::envelope(&request.action, &request.payload, self.limits.max_payload)
            .ok()
            .map(|e| e.request_id);
        Handled::answer(Reply::refused(request_id, &request.action, refusal))
    }

    async fn handle_envelope(&self, request: &Request, envelope: &Envelope) -> Result<Handled, Refusal> {
        // The command log's restores are the salvage's alone: no panel may write as it.
        if request.station == SALVAGE_STATION {
            return Err(refuse(
                "reserved_station",
                format!("station {SALVAGE_STATION:?} is the gateway's own; use another name"),
            ));
        }
        if envelope.action.writes() {
            // Before any other check: a command already applied gets its reply again, even if
            // it is stale by now (the agent was down) or the rules changed since.
            if let Some(handled) = self.replay(request, envelope).await? {
                return Ok(handled);
            }
        }
        let clock_synced = clock::synchronized();
        let checks = Checks {
            max_age: i64::try_from(self.limits.max_age.as_secs()).unwrap_or(i64::MAX),
            clock_synced,
        };
        match parse::command(envelope, request.received_unix, checks)? {
            Command::Query(query) => self.query(query, envelope).await,
            Command::Write { operator, plan } => {
                let entry = store::command::LogEntry {
                    request_id: envelope.request_id.clone(),
                    station: request.station.clone(),
                    action: request.action.clone(),
                    operator: Some(operator),
                    received_at: clock::format_rfc3339(request.received_unix),
                    clock_synced,
                    log_refusal: true,
                };
                let refs = plan.refs();
                let report_as = self.report_as.clone();
                let outcome = self
                    .store
                    .call(move |db| {
                        store::command::exactly_once(db, &entry, &refs, |rows| {
                            let verdict = rules::decide(&plan, rows, &entry.received_at);
                            decided(&entry, verdict, rows, report_as.as_deref())
                        })
                    })
                    .await
                    .map_err(|e| store_refusal(&e))?;
                if let (true, Some(queued)) = (outcome.queued, &self.results_queued) {
                    queued.ring();
                }
                Ok(Handled {
                    reply: stored(&outcome.reply)?,
                    changed: outcome.changed,
                    replayed: outcome.replayed,
                })
            }
        }
    }

    /// The stored reply of a write command answered before, if this is one.
    async fn replay(&self, request: &Request, envelope: &Envelope) -> Result<Option<Handled>, Refusal> {
        let (station, rid) = (request.station.clone(), envelope.request_id.clone());
        let found = self
            .store
            .call(move |db| store::command::stored_reply(db, &station, &rid))
            .await
            .map_err(|e| store_refusal(&e))?;
        let Some((stored_action, reply)) = found else {
            return Ok(None);
        };
        if stored_action != request.action {
            return Err(refuse(
                "invalid_field",
                format!(
                    "request_id {:?} was used for {stored_action:?} already; use a new one",
                    envelope.request_id
                ),
            ));
        }
        Ok(Some(Handled {
            reply: stored(&reply)?,
            changed: vec![],
            replayed: true,
        }))
    }

    async fn query(&self, query: Query, envelope: &Envelope) -> Result<Handled, Refusal> {
        let ok = |result| {
            Handled::answer(Reply::ok(
                Some(envelope.request_id.clone()),
                envelope.action.name(),
                result,
            ))
        };
        match query {
            Query::SyncNow => {
                // A full channel means a sync is already requested: the answer is the same.
                let _ = self.sync_now.try_send(());
                Ok(ok(json!({"requested": true})))
            }
            Query::Phase { phase, line } => {
                let rows = self
                    .store
                    .call(move |db| store::mo::in_phase(db, phase, line.as_deref()))
                    .await
                    .map_err(|e| store_refusal(&e))?;
                Ok(ok(json!({"mos": rows.iter().map(summary).collect::<Vec<_>>()})))
            }
        }
    }
}

/// What `linegate salvage --restore` did with one salvaged MO.
#[derive(Debug, Clone)]
pub(crate) struct Restored {
    pub(crate) id: i64,
    /// Written now, or by an earlier restore from the same file (`before`).
    pub(crate) ok: bool,
    pub(crate) before: bool,
    /// Why not, when not.
    pub(crate) why_not: Option<String>,
}

/// The station the command log names for restores.
pub(crate) const SALVAGE_STATION: &str = "salvage";

/// Puts the operator data salvaged from the kept file `source` back into the store, as
/// commands: each MO in its own durable transaction, with a log entry that makes a second
/// restore from the same file write nothing, and only where [`rules::restore`] allows.
pub(crate) async fn restore(
    store: &Store,
    source: &str,
    mos: Vec<store::salvage::Salvaged>,
) -> Result<Vec<Restored>, StoreError> {
    let received_at = clock::format_rfc3339(clock::now_unix());
    let clock_synced = clock::synchronized();
    let mut restored = Vec::with_capacity(mos.len());
    for mo in mos {
        let entry = store::command::LogEntry {
            request_id: format!("restore {source} MO {}", mo.id),
            station: SALVAGE_STATION.into(),
            action: "restore".into(),
            operator: mo.operator.clone(),
            received_at: received_at.clone(),
            clock_synced,
            // Refused now (the MO not synced yet, newer work on it): another restore may try.
            log_refusal: false,
        };
        let id = mo.id;
        let outcome = store
            .call(move |db| {
                store::command::exactly_once(db, &entry, &[crate::mo::MoRef::Id(id)], |rows| {
                    // A restore puts back what may have reached Odoo before: it tells Odoo nothing.
                    let verdict = rules::restore(id, rows[0].as_ref(), mo.name.as_deref(), &mo.protected);
                    decided(&entry, verdict, rows, None)
                })
            })
            .await?;
        restored.push(match stored(&outcome.reply) {
            Ok(reply) => Restored {
                id,
                ok: reply.ok,
                before: outcome.replayed,
                why_not: reply.error.map(|e| e.message),
            },
            Err(refusal) => Restored {
                id,
                ok: false,
                before: outcome.replayed,
                why_not: Some(refusal.message),
            },
        });
    }
    Ok(restored)
}

/// A rule's verdict as the store commits it: the reply, and when accepted the writes and,
/// with `report_as` (the gateway's id), what Odoo is to be told of them.
fn decided(
    entry: &store::command::LogEntry,
    verdict: Result<rules::Decision, Refusal>,
    rows: &[Option<MoRow>],
    report_as: Option<&str>,
) -> store::command::Decided {
    let id = Some(entry.request_id.clone());
    match verdict {
        Ok(decision) => store::command::Decided {
            reply: Reply::ok(id, &entry.action, decision.result).to_json(),
            ok: true,
            results: report_as.map_or_else(Vec::new, |gateway| results(gateway, entry, rows, &decision.writes)),
            writes: decision.writes,
        },
        Err(refusal) => store::command::Decided {
            reply: Reply::refused(id, &entry.action, refusal).to_json(),
            ok: false,
            writes: vec![],
            results: vec![],
        },
    }
}

/// One result per MO whose writes added a mark (registered, started, ended).
fn results(
    gateway: &str,
    entry: &store::command::LogEntry,
    rows: &[Option<MoRow>],
    writes: &[OperatorWrite],
) -> Vec<FloorResult> {
    writes
        .iter()
        .filter_map(|write| {
            let row = rows.iter().flatten().find(|r| r.upstream.id == write.id)?;
            let happened = Happened::between(&row.protected, &write.protected)?;
            Some(FloorResult {
                event_id: event_id(gateway, &entry.station, &entry.request_id, write.id, happened),
                happened,
                mo: write.id,
                name: row.upstream.name.clone(),
                operator: entry.operator.clone(),
                station: entry.station.clone(),
                at: entry.received_at.clone(),
                clock_synced: entry.clock_synced,
                protected: write.protected.clone(),
                target: row.upstream.initial_qty_target.unwrap_or(row.upstream.product_qty),
            })
        })
        .collect()
}

/// A reply as the command log holds it.
fn stored(reply: &str) -> Result<Reply, Refusal> {
    serde_json::from_str(reply).map_err(|e| refuse("internal", format!("stored reply: {e}")))
}

/// `internal`: the one reply that is not final. Nothing of the command was stored, its reply
/// neither, so the same request_id may still be applied: sent again by the panel, or handed
/// over again by the broker when the agent stopped before acknowledging it (docs/mqtt.md).
fn store_refusal(e: &StoreError) -> Refusal {
    tracing::error!(error = %e, "command could not be stored");
    refuse(
        "internal",
        format!("the gateway could not store the command (nothing was applied; send it again with the same request_id): {e}"),
    )
}
