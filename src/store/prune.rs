//! Pruning what the store only needs for a while: answered commands (kept so a repeated one
//! gets its first reply) and delivered outbox messages. In small batches, so that no
//! transaction holds the store long and an SD card sees small writes.

use rusqlite::params;

use super::{Db, StoreError};

/// Rows deleted per transaction.
pub(crate) const BATCH: u32 = 500;

/// Deletes up to [`BATCH`] commands received before `cutoff` (RFC 3339), oldest first;
/// returns how many. The log is in arrival order, so the old ones are found at its head, read
/// in rowid order without an index on the time (which every command would have had to write);
/// entries stamped by a clock that was ahead stay until their time comes and hold back none.
pub(crate) fn commands(db: &mut Db, cutoff: &str) -> Result<u64, StoreError> {
    const SQL: &str = "DELETE FROM command_log WHERE id IN \
        (SELECT id FROM command_log WHERE received_at < ?1 ORDER BY id LIMIT ?2)";
    Ok(db.0.prepare_cached(SQL)?.execute(params![cutoff, BATCH])? as u64)
}

/// Deletes up to [`BATCH`] outbox messages delivered before `cutoff`; undelivered ones stay,
/// however old.
pub(crate) fn delivered(db: &mut Db, cutoff: &str) -> Result<u64, StoreError> {
    const SQL: &str = "DELETE FROM outbox WHERE id IN \
        (SELECT id FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?1 LIMIT ?2)";
    Ok(db.0.prepare_cached(SQL)?.execute(params![cutoff, BATCH])? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_answers_and_deliveries_go_in_batches_and_pending_messages_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = super::super::open(&dir.path().join("t.db")).unwrap();
        {
            let tx = db.0.transaction().unwrap();
            // (the first stamped by a clock that was years ahead)
            for i in 0..1201 {
                let at = match i {
                    0 => "2031-01-01T00:00:00Z",
                    1..=1100 => "2026-01-01T00:00:00Z",
                    _ => "2026-12-01T00:00:00Z",
                };
                tx.execute(
                    "INSERT INTO command_log (request_id, station, action, operator, received_at, clock_synced, ok, reply) \
                     VALUES (?1, 'ws', 'register-mo', 'o', ?2, 1, 1, '{}')",
                    params![format!("r{i}"), at],
                )
                .unwrap();
            }
            for (delivered, created) in [
                (Some("2026-01-02T00:00:00Z"), "2026-01-01T00:00:00Z"),
                (None, "2025-01-01T00:00:00Z"),
            ] {
                tx.execute(
                    "INSERT INTO outbox (channel, payload, created_at, next_at, delivered_at) VALUES ('mqtt', '{}', ?1, ?1, ?2)",
                    params![created, delivered],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let cutoff = "2026-06-01T00:00:00Z";
        // In batches, oldest first; the one from the future holds back none
        assert_eq!(commands(&mut db, cutoff).unwrap(), 500);
        assert_eq!(commands(&mut db, cutoff).unwrap(), 500);
        assert_eq!(commands(&mut db, cutoff).unwrap(), 100);
        assert_eq!(commands(&mut db, cutoff).unwrap(), 0);
        let left: i64 =
            db.0.query_row("SELECT count(*) FROM command_log", [], |r| r.get(0))
                .unwrap();
        assert_eq!(left, 101, "recent commands stay, and the one not due yet");
        assert_eq!(delivered(&mut db, cutoff).unwrap(), 1);
        let pending: i64 = db.0.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0)).unwrap();
        assert_eq!(pending, 1, "an undelivered message stays, however old");
    }
}
