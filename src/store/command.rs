//! SQL for the command layer: the command log that makes every command happen exactly once,
//! and the one way protected columns are written — inside a command's own durable transaction,
//! with its log entry, so every operator value has a command that wrote it.

use rusqlite::{params, Connection, OptionalExtension};

use super::{mo, Db, StoreError};
use crate::mo::{Audit, MoRow, Protected};

/// An MO as a panel names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MoRef {
    Id(i64),
    /// The current name; names change on backorder, so the newest holder wins.
    Name(String),
}

impl std::fmt::Display for MoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MoRef::Id(id) => write!(f, "with id {id}"),
            MoRef::Name(name) => write!(f, "named {name:?}"),
        }
    }
}

fn find(conn: &Connection, r: &MoRef) -> Result<Option<MoRow>, StoreError> {
    match r {
        MoRef::Id(id) => mo::row(conn, *id),
        MoRef::Name(name) => mo::row_by_name(conn, name),
    }
}

/// The command as logged, without its reply.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    pub(crate) request_id: String,
    pub(crate) station: String,
    pub(crate) action: String,
    pub(crate) operator: Option<String>,
    pub(crate) received_at: String,
    pub(crate) clock_synced: bool,
}

impl LogEntry {
    /// Who writes, from where and when: stamped on every MO the command writes.
    fn audit(&self) -> Audit {
        Audit {
            operator: self.operator.clone(),
            station: self.station.clone(),
            at: self.received_at.clone(),
            clock_synced: self.clock_synced,
        }
    }
}

/// An MO's protected values, as a command decided them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub(crate) id: i64,
    pub(crate) protected: Protected,
}

/// What a command decided, given the rows it names.
#[derive(Debug, Clone)]
pub(crate) struct Decided {
    /// The reply, as JSON text.
    pub(crate) reply: String,
    pub(crate) ok: bool,
    /// Nothing, when it is refused.
    pub(crate) writes: Vec<Write>,
}

pub(crate) struct Outcome {
    /// The reply, as JSON text.
    pub(crate) reply: String,
    /// The MOs written.
    pub(crate) changed: Vec<i64>,
    /// The request_id was seen before: this is the stored reply, and nothing was written.
    pub(crate) replayed: bool,
}

/// The action and reply stored for a station's request_id, if it was answered before.
pub(crate) fn stored_reply(db: &Db, station: &str, request_id: &str) -> Result<Option<(String, String)>, StoreError> {
    stored(&db.0, station, request_id)
}

fn stored(conn: &Connection, station: &str, request_id: &str) -> Result<Option<(String, String)>, StoreError> {
    const FIND: &str = "SELECT action, reply FROM command_log WHERE station = ?1 AND request_id = ?2";
    Ok(conn
        .prepare_cached(FIND)?
        .query_row([station, request_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Runs a command exactly once. Unless its request_id was answered before (then the stored
/// reply comes back and nothing is written), the MOs `refs` names are read, `decide` chooses
/// the reply and the writes from them, and the writes, the log entry and the reply are
/// committed in one durable transaction.
pub(crate) fn exactly_once(
    db: &mut Db,
    entry: &LogEntry,
    refs: &[MoRef],
    decide: impl FnOnce(&[Option<MoRow>]) -> Decided,
) -> Result<Outcome, StoreError> {
    const INSERT: &str = "INSERT INTO command_log (request_id, station, action, operator, received_at, \
        clock_synced, ok, reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    if let Some((_, reply)) = stored(&db.0, &entry.station, &entry.request_id)? {
        return Ok(Outcome {
            reply,
            changed: vec![],
            replayed: true,
        });
    }
    super::durable(&mut db.0, |tx| {
        let rows = refs.iter().map(|r| find(tx, r)).collect::<Result<Vec<_>, _>>()?;
        let decided = decide(&rows);
        let audit = entry.audit();
        for write in &decided.writes {
            mo::write_protected(tx, write.id, &write.protected, &audit)?;
        }
        tx.prepare_cached(INSERT)?.execute(params![
            entry.request_id,
            entry.station,
            entry.action,
            entry.operator,
            entry.received_at,
            entry.clock_synced,
            decided.ok,
            decided.reply
        ])?;
        Ok(Outcome {
            reply: decided.reply,
            changed: decided.writes.iter().map(|w| w.id).collect(),
            replayed: false,
        })
    })
}
