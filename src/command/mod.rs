//! The command layer: operators' actions from workstation panels, validated, applied exactly
//! once, answered. It is the only writer of protected columns, and it writes nothing else.
//! It knows nothing of MQTT: a [`Request`] comes in, a [`Handled`] goes out.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::clock;
use crate::mo::auth;
use crate::mo::{Audit, MoRow, Phase, Protected};
use crate::store::{self, Store, StoreError};

pub const SCHEMA: u32 = 1;

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
    pub changed: Vec<i64>,
    /// True when this request_id was answered before and nothing was written now.
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Reply {
    pub schema: u32,
    pub request_id: Option<String>,
    pub action: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReplyError {
    /// Stable, for panel firmware to switch on.
    pub code: String,
    /// For the operator.
    pub message: String,
}

/// A refusal: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    RegisterMo,
    StartProduction,
    Changeover,
    EndProduction,
    MoOptions,
    ReadyMo,
    RunningMo,
    SyncNow,
}

impl Action {
    fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "register-mo" => Action::RegisterMo,
            "start-production" => Action::StartProduction,
            "changeover" => Action::Changeover,
            "end-production" => Action::EndProduction,
            "mo-options" => Action::MoOptions,
            "ready-mo" => Action::ReadyMo,
            "running-mo" => Action::RunningMo,
            "sync-now" => Action::SyncNow,
            _ => return None,
        })
    }

    /// The fields this action takes, beyond the common ones.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Action::RegisterMo => &["mo", "auth_first", "roll_number", "line", "mid_production"],
            Action::StartProduction => &["mo", "leader_id", "line"],
            Action::Changeover => &["current_mo", "next_mo", "new_auth", "roll_number"],
            Action::EndProduction => &["mo", "authenticity", "roll_number"],
            Action::MoOptions | Action::ReadyMo | Action::RunningMo => &["line"],
            Action::SyncNow => &[],
        }
    }

    fn writes(self) -> bool {
        matches!(
            self,
            Action::RegisterMo | Action::StartProduction | Action::Changeover | Action::EndProduction
        )
    }
}

const COMMON_FIELDS: [&str; 4] = ["schema", "request_id", "operator", "sent_at"];

/// A command's payload, checked for shape: only known fields, of the right types.
struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn text(&self, name: &str) -> Result<Option<&'a str>, Refusal> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.as_str())),
            Some(Value::String(_)) => Err(refuse("invalid_field", format!("`{name}` is empty"))),
            Some(other) => Err(refuse(
                "invalid_field",
                format!("`{name}` must be a string, not {other}"),
            )),
        }
    }

    fn required_text(&self, name: &str) -> Result<&'a str, Refusal> {
        self.text(name)?
            .ok_or_else(|| refuse("missing_field", format!("`{name}` is required")))
    }

    fn code(&self, name: &str) -> Result<Option<&'a str>, Refusal> {
        match self.text(name)? {
            Some(code) if auth::is_code(code) => Ok(Some(code)),
            Some(code) => Err(refuse(
                "invalid_field",
                format!("`{name}` must be digits only, not {code:?}"),
            )),
            None => Ok(None),
        }
    }

    fn required_code(&self, name: &str) -> Result<&'a str, Refusal> {
        self.code(name)?
            .ok_or_else(|| refuse("missing_field", format!("`{name}` is required")))
    }

    fn flag(&self, name: &str) -> Result<bool, Refusal> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(refuse(
                "invalid_field",
                format!("`{name}` must be true or false, not {other}"),
            )),
        }
    }

    /// An MO by Odoo id (a number or digits) or by its current name.
    fn mo(&self, name: &str) -> Result<store::command::MoRef, Refusal> {
        match self.map.get(name) {
            Some(Value::Number(n)) => n
                .as_i64()
                .map(store::command::MoRef::Id)
                .ok_or_else(|| refuse("invalid_field", format!("`{name}`: {n}"))),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(match s.trim().parse::<i64>() {
                Ok(id) if s.trim().bytes().all(|b| b.is_ascii_digit()) => store::command::MoRef::Id(id),
                _ => store::command::MoRef::Name(s.trim().to_string()),
            }),
            None | Some(Value::Null) => Err(refuse("missing_field", format!("`{name}` is required"))),
            Some(other) => Err(refuse(
                "invalid_field",
                format!("`{name}` must be an MO id or name, not {other}"),
            )),
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
}

impl Commands {
    pub fn new(store: Store, limits: Limits, sync_now: tokio::sync::mpsc::Sender<()>) -> Commands {
        Commands {
            store,
            limits,
            sync_now,
        }
    }

    pub async fn handle(&self, request: Request) -> Handled {
        let mut request_id = None;
        match self.handle_inner(&request, &mut request_id).await {
            Ok(handled) => handled,
            Err(refusal) => Handled {
                reply: Reply {
                    schema: SCHEMA,
                    request_id,
                    action: request.action.clone(),
                    ok: false,
                    result: None,
                    error: Some(ReplyError {
                        code: refusal.code.into(),
                        message: refusal.message,
                    }),
                },
                changed: vec![],
                replayed: false,
            },
        }
    }

    async fn handle_inner(&self, request: &Request, request_id: &mut Option<String>) -> Result<Handled, Refusal> {
        if request.payload.len() > self.limits.max_payload {
            return Err(refuse(
                "too_large",
                format!(
                    "payload of {} bytes; at most {} are accepted",
                    request.payload.len(),
                    self.limits.max_payload
                ),
            ));
        }
        let value: Value = serde_json::from_slice(&request.payload)
            .map_err(|e| refuse("invalid_json", format!("the payload is not JSON: {e}")))?;
        let map = value
            .as_object()
            .ok_or_else(|| refuse("invalid_json", "the payload must be a JSON object"))?;
        let fields = Fields { map };
        *request_id = fields.text("request_id").ok().flatten().map(str::to_string);
        let action = Action::parse(&request.action)
            .ok_or_else(|| refuse("unknown_action", format!("no action {:?}", request.action)))?;
        let id = fields.required_text("request_id")?.to_string();
        if id.len() > 128 {
            return Err(refuse("invalid_field", "`request_id` is longer than 128 characters"));
        }
        if action.writes() {
            // Before any other check: a command already applied gets its reply again, even if
            // it is stale by now (the agent was down) or the rules changed since.
            let (station, rid) = (request.station.clone(), id.clone());
            let stored = self
                .store
                .call(move |c| store::command::stored_reply(c, &station, &rid))
                .await
                .map_err(|e| store_refusal(&e))?;
            if let Some((stored_action, reply)) = stored {
                if stored_action != request.action {
                    return Err(refuse(
                        "invalid_field",
                        format!("request_id {id:?} was used for {stored_action:?} already; use a new one"),
                    ));
                }
                let reply: Reply =
                    serde_json::from_str(&reply).map_err(|e| refuse("internal", format!("stored reply: {e}")))?;
                return Ok(Handled {
                    reply,
                    changed: vec![],
                    replayed: true,
                });
            }
        }
        if let Some(unknown) = map
            .keys()
            .find(|k| !COMMON_FIELDS.contains(&k.as_str()) && !action.fields().contains(&k.as_str()))
        {
            return Err(refuse(
                "invalid_field",
                format!("{:?} takes no field `{unknown}`", request.action),
            ));
        }
        if let Some(sent) = sent_at(map)? {
            let age = request.received_unix - sent;
            if age > self.limits.max_age.as_secs() as i64 {
                return Err(refuse(
                    "stale",
                    format!(
                        "sent {age} s ago; commands older than {} s are refused",
                        self.limits.max_age.as_secs()
                    ),
                ));
            }
        }
        if !action.writes() {
            return self.query(action, &fields, id).await;
        }
        let operator = fields.required_text("operator")?.to_string();
        let plan = plan(action, &fields)?;
        let audit = Audit {
            operator: Some(operator.clone()),
            station: request.station.clone(),
            at: clock::format_rfc3339(request.received_unix),
            clock_synced: clock::synchronized(),
        };
        let entry = store::command::LogEntry {
            request_id: id.clone(),
            station: request.station.clone(),
            action: request.action.clone(),
            operator: Some(operator),
            received_at: audit.at.clone(),
            clock_synced: audit.clock_synced,
        };
        let action_name = request.action.clone();
        let outcome = self
            .store
            .call(move |conn| {
                store::command::exactly_once(conn, &entry, |tx| {
                    let decided = apply(tx, &plan, &audit)?;
                    let reply = match &decided {
                        Ok((result, _)) => Reply {
                            schema: SCHEMA,
                            request_id: Some(entry.request_id.clone()),
                            action: action_name.clone(),
                            ok: true,
                            result: Some(result.clone()),
                            error: None,
                        },
                        Err(r) => Reply {
                            schema: SCHEMA,
                            request_id: Some(entry.request_id.clone()),
                            action: action_name.clone(),
                            ok: false,
                            result: None,
                            error: Some(ReplyError {
                                code: r.code.into(),
                                message: r.message.clone(),
                            }),
                        },
                    };
                    let changed = decided.map(|(_, changed)| changed).unwrap_or_default();
                    Ok((
                        serde_json::to_string(&reply).expect("replies serialize"),
                        reply.ok,
                        changed,
                    ))
                })
            })
            .await
            .map_err(|e| store_refusal(&e))?;
        let reply: Reply =
            serde_json::from_str(&outcome.reply).map_err(|e| refuse("internal", format!("stored reply: {e}")))?;
        Ok(Handled {
            reply,
            changed: outcome.changed,
            replayed: outcome.replayed,
        })
    }

    async fn query(&self, action: Action, fields: &Fields<'_>, request_id: String) -> Result<Handled, Refusal> {
        let ok = |result: Value| Handled {
            reply: Reply {
                schema: SCHEMA,
                request_id: Some(request_id.clone()),
                action: action_name(action).into(),
                ok: true,
                result: Some(result),
                error: None,
            },
            changed: vec![],
            replayed: false,
        };
        if action == Action::SyncNow {
            // A full channel means a sync is already requested: the answer is the same.
            let _ = self.sync_now.try_send(());
            return Ok(ok(json!({"requested": true})));
        }
        let phase = match action {
            Action::MoOptions => Phase::Waiting,
            Action::ReadyMo => Phase::Ready,
            _ => Phase::Running,
        };
        let line = fields.text("line")?.map(str::to_string);
        let rows = self
            .store
            .call(move |c| store::mo::in_phase(c, phase, line.as_deref()))
            .await
            .map_err(|e| store_refusal(&e))?;
        Ok(ok(json!({"mos": rows.iter().map(summary).collect::<Vec<_>>()})))
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::RegisterMo => "register-mo",
        Action::StartProduction => "start-production",
        Action::Changeover => "changeover",
        Action::EndProduction => "end-production",
        Action::MoOptions => "mo-options",
        Action::ReadyMo => "ready-mo",
        Action::RunningMo => "running-mo",
        Action::SyncNow => "sync-now",
    }
}

fn store_refusal(e: &StoreError) -> Refusal {
    tracing::error!(error = %e, "command could not be stored");
    refuse("internal", format!("the gateway could not store the command: {e}"))
}

/// `sent_at`: RFC 3339 (fractions and offsets too, as `toISOString()` writes it), or Unix
/// seconds.
fn sent_at(map: &Map<String, Value>) -> Result<Option<i64>, Refusal> {
    match map.get("sent_at") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(f as i64))
            .ok_or_else(|| refuse("invalid_field", "`sent_at` must be seconds")),
        Some(Value::String(s)) => clock::parse_rfc3339(s).map(Some).ok_or_else(|| {
            refuse(
                "invalid_field",
                format!("`sent_at` {s:?} is not a time like 2026-11-22T08:00:00Z"),
            )
        }),
        Some(other) => Err(refuse(
            "invalid_field",
            format!("`sent_at` must be a time, not {other}"),
        )),
    }
}

/// What a write command asks for, checked for shape before the store is touched.
#[derive(Debug, Clone)]
enum Plan {
    Register {
        mo: store::command::MoRef,
        auth_first: Option<String>,
        roll: Option<String>,
        line: Option<String>,
    },
    Start {
        mo: store::command::MoRef,
        leader: String,
        line: Option<String>,
    },
    Changeover {
        current: store::command::MoRef,
        next: store::command::MoRef,
        new_auth: String,
        roll: Option<String>,
    },
    End {
        mo: store::command::MoRef,
        authenticity: String,
        roll: Option<String>,
    },
}

fn plan(action: Action, f: &Fields) -> Result<Plan, Refusal> {
    let owned = |o: Option<&str>| o.map(str::to_string);
    Ok(match action {
        Action::RegisterMo => {
            let mid_production = f.flag("mid_production")?;
            let auth_first = owned(f.code("auth_first")?);
            if !mid_production && auth_first.is_none() {
                return Err(refuse(
                    "missing_field",
                    "`auth_first` is required (or `mid_production: true`)",
                ));
            }
            let roll = owned(f.text("roll_number")?);
            if !mid_production && roll.is_none() {
                return Err(refuse(
                    "missing_field",
                    "`roll_number` is required (or `mid_production: true`)",
                ));
            }
            Plan::Register {
                mo: f.mo("mo")?,
                auth_first,
                roll,
                line: owned(f.text("line")?),
            }
        }
        Action::StartProduction => Plan::Start {
            mo: f.mo("mo")?,
            leader: f.required_text("leader_id")?.into(),
            line: owned(f.text("line")?),
        },
        Action::Changeover => Plan::Changeover {
            current: f.mo("current_mo")?,
            next: f.mo("next_mo")?,
            new_auth: f.required_code("new_auth")?.into(),
            roll: owned(f.text("roll_number")?),
        },
        Action::EndProduction => Plan::End {
            mo: f.mo("mo")?,
            authenticity: f.required_code("authenticity")?.into(),
            roll: owned(f.text("roll_number")?),
        },
        _ => unreachable!("queries are not planned"),
    })
}

type Decided = Result<(Value, Vec<i64>), Refusal>;

/// Applies a plan inside the command's transaction. A refusal writes nothing.
fn apply(tx: &rusqlite::Transaction, plan: &Plan, audit: &Audit) -> Result<Decided, StoreError> {
    let find = |r: &store::command::MoRef| -> Result<Result<MoRow, Refusal>, StoreError> {
        Ok(store::command::find(tx, r)?.ok_or_else(|| refuse("unknown_mo", format!("no MO {r}"))))
    };
    let now = audit.at.clone();
    macro_rules! row {
        ($r:expr) => {
            match find($r)? {
                Ok(row) => row,
                Err(refusal) => return Ok(Err(refusal)),
            }
        };
    }
    macro_rules! check {
        ($cond:expr, $code:expr, $msg:expr) => {
            if !$cond {
                return Ok(Err(refuse($code, $msg)));
            }
        };
    }
    let write = |row: &MoRow, p: Protected| -> Result<(), StoreError> {
        store::mo::set_protected_in(tx, row.upstream.id, &p, audit)?;
        Ok(())
    };
    match plan {
        Plan::Register {
            mo,
            auth_first,
            roll,
            line,
        } => {
            let row = row!(mo);
            if let Err(refusal) = not_started(&row) {
                return Ok(Err(refusal));
            }
            check!(
                !row.protected.ready_for_production,
                "already_registered",
                format!("{} is already registered", row.upstream.name)
            );
            let p = Protected {
                ready_for_production: true,
                auth_first: auth_first.clone(),
                roll_number: roll.clone(),
                line: line.clone().or(row.protected.line.clone()),
                ..row.protected.clone()
            };
            write(&row, p.clone())?;
            Ok(Ok((json!({"mo": summary_of(&row, &p)}), vec![row.upstream.id])))
        }
        Plan::Start { mo, leader, line } => {
            let row = row!(mo);
            if let Err(refusal) = not_started(&row).and_then(|()| registered(&row)) {
                return Ok(Err(refusal));
            }
            let p = Protected {
                date_start: Some(now),
                leader_id: Some(leader.clone()),
                line: line.clone().or(row.protected.line.clone()),
                ..row.protected.clone()
            };
            write(&row, p.clone())?;
            Ok(Ok((json!({"mo": summary_of(&row, &p)}), vec![row.upstream.id])))
        }
        Plan::Changeover {
            current,
            next,
            new_auth,
            roll,
        } => {
            let cur = row!(current);
            let nxt = row!(next);
            check!(
                cur.upstream.id != nxt.upstream.id,
                "invalid_field",
                "current_mo and next_mo are the same MO"
            );
            check!(
                cur.phase == Phase::Running,
                "not_running",
                format!("{} is not running", cur.upstream.name)
            );
            if let Err(refusal) = not_started(&nxt).and_then(|()| registered(&nxt)) {
                return Ok(Err(refusal));
            }
            let last = match last_code("new_auth", new_auth, &cur) {
                Ok(last) => last,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let ended = Protected {
                auth_last: Some(last),
                date_finished: Some(now.clone()),
                ..cur.protected.clone()
            };
            let started = Protected {
                auth_first: Some(new_auth.clone()),
                date_start: Some(now),
                roll_number: roll.clone().or(nxt.protected.roll_number.clone()),
                leader_id: cur.protected.leader_id.clone(),
                line: cur.protected.line.clone().or(nxt.protected.line.clone()),
                ..nxt.protected.clone()
            };
            write(&cur, ended.clone())?;
            write(&nxt, started.clone())?;
            Ok(Ok((
                json!({"current": summary_of(&cur, &ended), "next": summary_of(&nxt, &started)}),
                vec![cur.upstream.id, nxt.upstream.id],
            )))
        }
        Plan::End { mo, authenticity, roll } => {
            let row = row!(mo);
            check!(
                row.phase == Phase::Running,
                "not_running",
                format!("{} is not running", row.upstream.name)
            );
            let last = match last_code("authenticity", authenticity, &row) {
                Ok(last) => last,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let p = Protected {
                auth_last: Some(last),
                date_finished: Some(now),
                roll_number: roll.clone().or(row.protected.roll_number.clone()),
                ..row.protected.clone()
            };
            write(&row, p.clone())?;
            Ok(Ok((json!({"mo": summary_of(&row, &p)}), vec![row.upstream.id])))
        }
    }
}

/// An MO an operator may still register or start: open in Odoo, not started on the floor.
fn not_started(row: &MoRow) -> Result<(), Refusal> {
    if row.gone_at.is_some() {
        return Err(refuse(
            "gone",
            format!("{} is no longer open in Odoo", row.upstream.name),
        ));
    }
    if row.protected.date_start.is_some() {
        return Err(refuse(
            "already_started",
            format!("{} has already started", row.upstream.name),
        ));
    }
    Ok(())
}

/// An MO registered for production (ready).
fn registered(row: &MoRow) -> Result<(), Refusal> {
    if !row.protected.ready_for_production {
        return Err(refuse(
            "not_ready",
            format!("{} is not registered yet", row.upstream.name),
        ));
    }
    Ok(())
}

/// The last code of a running MO, from the first code of what comes next (`field`): one less,
/// same width, and not below the MO's own first code.
fn last_code(field: &str, next: &str, row: &MoRow) -> Result<String, Refusal> {
    let last = auth::predecessor(next).ok_or_else(|| refuse("invalid_field", format!("`{field}` cannot be zero")))?;
    match &row.protected.auth_first {
        Some(first) if auth::compare(&last, first) == std::cmp::Ordering::Less => Err(refuse(
            "invalid_field",
            format!(
                "{field} {next} would end {} below its first code {first}",
                row.upstream.name
            ),
        )),
        _ => Ok(last),
    }
}

/// A refusal in place of a reply too large for the broker (a long list, say).
pub fn too_large_reply(reply: &Reply, max_packet: usize) -> String {
    let short = Reply {
        schema: SCHEMA,
        request_id: reply.request_id.clone(),
        action: reply.action.clone(),
        ok: false,
        result: None,
        error: Some(ReplyError {
            code: "too_large".into(),
            message: format!(
                "the reply is larger than the broker accepts ({max_packet} bytes); ask with a line filter"
            ),
        }),
    };
    serde_json::to_string(&short).expect("replies serialize")
}

/// What a panel needs to know of an MO.
pub fn summary(row: &MoRow) -> Value {
    summary_of(row, &row.protected)
}

fn summary_of(row: &MoRow, p: &Protected) -> Value {
    json!({
        "id": row.upstream.id,
        "name": row.upstream.name,
        "product": row.upstream.product_name,
        "product_qty": row.upstream.product_qty,
        "phase": p.phase().as_str(),
        "auth_first": p.auth_first,
        "auth_last": p.auth_last,
        "roll_number": p.roll_number,
        "leader_id": p.leader_id,
        "line": p.line,
        "date_start": p.date_start,
        "date_finished": p.date_finished,
    })
}
