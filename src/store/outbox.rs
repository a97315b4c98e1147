//! SQL for the outbox: every durable outgoing message, queued in the transaction that causes it,
//! and left here until its receiver acknowledged it.

use rusqlite::{params, Transaction};

use super::{Db, StoreError};

/// The channels messages go out on.
pub(crate) const MQTT: &str = "mqtt";
pub(crate) const WEBHOOK: &str = "webhook";

/// Queues a message on `channel` (`mqtt`, `webhook`), due at once.
pub(crate) fn enqueue(tx: &Transaction, channel: &str, payload: &str, now: &str) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO outbox (channel, payload, created_at, next_at) VALUES (?1, ?2, ?3, ?3)";
    tx.prepare_cached(SQL)?.execute(params![channel, payload, now])?;
    Ok(())
}

/// Undelivered messages of a channel that are due, oldest first, from just past id `after`.
pub(crate) fn due(
    db: &Db,
    channel: &str,
    after: i64,
    now: &str,
    limit: u32,
) -> Result<Vec<(i64, String, u32)>, StoreError> {
    let conn = &db.0;
    const SQL: &str = "SELECT id, payload, attempts FROM outbox WHERE channel = ?1 AND delivered_at IS NULL \
        AND id > ?2 AND next_at <= ?3 ORDER BY id LIMIT ?4";
    let mut stmt = conn.prepare_cached(SQL)?;
    let rows = stmt.query_map(params![channel, after, now, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn delivered(db: &Db, id: i64, now: &str) -> Result<(), StoreError> {
    let conn = &db.0;
    conn.prepare_cached("UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

pub(crate) fn failed(db: &Db, id: i64, error: &str, next_at: &str) -> Result<(), StoreError> {
    let conn = &db.0;
    conn.prepare_cached("UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_at = ?3 WHERE id = ?1")?
        .execute(params![id, error, next_at])?;
    Ok(())
}

/// When the earliest undelivered message of a channel is due (RFC 3339), if there is one.
pub(crate) fn next_due(db: &Db, channel: &str) -> Result<Option<String>, StoreError> {
    const SQL: &str = "SELECT min(next_at) FROM outbox WHERE channel = ?1 AND delivered_at IS NULL";
    Ok(db.0.prepare_cached(SQL)?.query_row([channel], |r| r.get(0))?)
}

/// Messages not yet delivered, by channel.
pub(crate) fn depth(db: &Db) -> Result<Vec<(String, u64)>, StoreError> {
    let conn = &db.0;
    let mut stmt = conn.prepare_cached(
        "SELECT channel, count(*) FROM outbox WHERE delivered_at IS NULL GROUP BY channel ORDER BY channel",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
