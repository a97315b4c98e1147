//! SQL for the command layer: finding MOs as panels name them, the command log that makes
//! every command happen exactly once, and the lists panels ask for.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{mo, StoreError};
use crate::mo::MoRow;

/// An MO as a panel names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoRef {
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

pub fn find(conn: &Connection, r: &MoRef) -> Result<Option<MoRow>, StoreError> {
    match r {
        MoRef::Id(id) => mo::get(conn, *id),
        MoRef::Name(name) => mo::get_by_name(conn, name),
    }
}

/// The command as logged, without its reply.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub request_id: String,
    pub station: String,
    pub action: String,
    pub operator: Option<String>,
    pub received_at: String,
    pub clock_synced: bool,
}

pub struct Outcome {
    /// The reply, as JSON text.
    pub reply: String,
    pub changed: Vec<i64>,
    /// The request_id was seen before: this is the stored reply, and nothing was written.
    pub replayed: bool,
}

/// The action and reply stored for a station's request_id, if it was answered before.
pub fn stored_reply(
    conn: &Connection,
    station: &str,
    request_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    const FIND: &str = "SELECT action, reply FROM command_log WHERE station = ?1 AND request_id = ?2";
    Ok(conn
        .prepare_cached(FIND)?
        .query_row([station, request_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Runs `apply` and stores its reply in one durable transaction, unless `request_id` was
/// answered before, in which case the stored reply comes back and nothing is written.
/// `apply` returns (reply JSON, ok, changed MO ids).
pub fn exactly_once(
    conn: &mut Connection,
    entry: &LogEntry,
    apply: impl FnOnce(&Transaction) -> Result<(String, bool, Vec<i64>), StoreError>,
) -> Result<Outcome, StoreError> {
    if let Some((_, reply)) = stored_reply(conn, &entry.station, &entry.request_id)? {
        return Ok(Outcome {
            reply,
            changed: vec![],
            replayed: true,
        });
    }
    super::durable(conn, |tx| {
        const INSERT: &str = "INSERT INTO command_log (request_id, station, action, operator, received_at, \
            clock_synced, ok, reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        let (reply, ok, changed) = apply(tx)?;
        tx.prepare_cached(INSERT)?.execute(params![
            entry.request_id,
            entry.station,
            entry.action,
            entry.operator,
            entry.received_at,
            entry.clock_synced,
            ok,
            reply
        ])?;
        Ok(Outcome {
            reply,
            changed,
            replayed: false,
        })
    })
}
