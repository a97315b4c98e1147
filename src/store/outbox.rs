//! SQL for the outbox: every durable outgoing message, queued in the transaction that causes it,
//! and left here until its receiver acknowledged it.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::{Db, StoreError};
use crate::mo::result::FloorResult;

/// The channels messages go out on.
pub(crate) const MQTT: &str = "mqtt";
pub(crate) const WEBHOOK: &str = "webhook";
/// Operator results for Odoo.
pub(crate) const ODOO: &str = "odoo";

/// Queues a message on `channel` (`mqtt`, `webhook`), due at once.
pub(crate) fn enqueue(tx: &Transaction, channel: &str, payload: &str, now: &str) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO outbox (channel, payload, created_at, next_at) VALUES (?1, ?2, ?3, ?3)";
    tx.prepare_cached(SQL)?.execute(params![channel, payload, now])?;
    Ok(())
}

/// Queues an operator result for Odoo, keyed by its MO: one MO's results go in order.
pub(crate) fn enqueue_result(tx: &Transaction, result: &FloorResult, now: &str) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO outbox (channel, payload, created_at, next_at, key, event_id) \
        VALUES (?1, ?2, ?3, ?3, ?4, ?5)";
    let payload = serde_json::to_string(result).expect("results serialize");
    tx.prepare_cached(SQL)?
        .execute(params![ODOO, payload, now, result.mo, result.event_id])?;
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

/// An operator result waiting for Odoo, as its delivery reads it.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) id: i64,
    pub(crate) payload: String,
    pub(crate) attempts: u32,
    /// The steps Odoo already has (a bit each).
    pub(crate) steps_done: u32,
    /// What Odoo made of it, as a step learnt it (the MO closed, its backorder).
    pub(crate) outcome: Option<String>,
}

/// When the outbox's times are read: `now`, by the gateway's clock. A `next_at` or `settle_at`
/// further ahead than any wait could set (`retry_horizon`, `settle_horizon`) was set by a
/// clock since put back: it is taken as passed, or that MO would wait for the clock to catch up.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    pub(crate) now: String,
    pub(crate) retry_horizon: String,
    pub(crate) settle_horizon: String,
}

/// The result at the head of each MO's queue that is due, oldest first: a parked head holds
/// its MO's queue back, and the other MOs go on.
pub(crate) fn odoo_heads(db: &Db, at: &Due, limit: u32) -> Result<Vec<Waiting>, StoreError> {
    const SQL: &str = "SELECT o.id, o.payload, o.attempts, o.steps_done, o.outcome FROM outbox o \
        WHERE o.channel = 'odoo' AND o.delivered_at IS NULL AND o.parked_at IS NULL \
        AND (o.next_at <= ?1 OR o.next_at > ?2) \
        AND (o.settle_at IS NULL OR o.settle_at <= ?1 OR o.settle_at > ?3) \
        AND o.id = (SELECT min(i.id) FROM outbox i WHERE i.channel = 'odoo' AND i.key = o.key \
                    AND i.delivered_at IS NULL) \
        ORDER BY o.id LIMIT ?4";
    let mut stmt = db.0.prepare_cached(SQL)?;
    let rows = stmt.query_map(params![at.now, at.retry_horizon, at.settle_horizon, limit], |r| {
        Ok(Waiting {
            id: r.get(0)?,
            payload: r.get(1)?,
            attempts: r.get(2)?,
            steps_done: r.get(3)?,
            outcome: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When the next head is due (RFC 3339), if one waits: its retry time, or when its unheard
/// call has surely settled, whichever is later.
pub(crate) fn odoo_next_due(db: &Db) -> Result<Option<String>, StoreError> {
    const SQL: &str = "SELECT min(max(o.next_at, coalesce(o.settle_at, o.next_at))) FROM outbox o \
        WHERE o.channel = 'odoo' AND o.delivered_at IS NULL AND o.parked_at IS NULL \
        AND o.id = (SELECT min(i.id) FROM outbox i WHERE i.channel = 'odoo' AND i.key = o.key \
                    AND i.delivered_at IS NULL)";
    Ok(db.0.prepare_cached(SQL)?.query_row([], |r| r.get(0))?)
}

/// Odoo is back (or the agent started): every waiting result is due now, whatever wait its
/// last failure earned it (not one whose call may still be settling). How many were waiting.
pub(crate) fn waive_waits(db: &Db, now: &str) -> Result<usize, StoreError> {
    const SQL: &str = "UPDATE outbox SET next_at = ?1 \
        WHERE channel = 'odoo' AND delivered_at IS NULL AND parked_at IS NULL AND next_at > ?1";
    Ok(db.0.prepare_cached(SQL)?.execute([now])?)
}

/// Records that Odoo has the steps `steps` of result `id` (a bit each).
pub(crate) fn steps_done(db: &Db, id: i64, steps: u32) -> Result<(), StoreError> {
    db.0.prepare_cached("UPDATE outbox SET steps_done = ?2 WHERE id = ?1")?
        .execute(params![id, steps])?;
    Ok(())
}

/// Records that Odoo has the steps `steps` of result `id`, and what it made of the result.
pub(crate) fn steps_done_with(db: &Db, id: i64, steps: u32, outcome: &str) -> Result<(), StoreError> {
    db.0.prepare_cached("UPDATE outbox SET steps_done = ?2, outcome = ?3 WHERE id = ?1")?
        .execute(params![id, steps, outcome])?;
    Ok(())
}

/// Counts an attempt at result `id` before it is made, and until when (`settle_at`) its calls
/// might still be running in Odoo if no answer is heard: one that a kill or a power cut
/// interrupts is known, and looked up in Odoo before it is made again.
///
/// Durable: a call to Odoo follows. Committed as the rest of the outbox's bookkeeping is
/// (without fsync), a power cut would take it back, the next start would take the result for
/// never tried, and post it again. Its fsync also makes every earlier commit durable (the log
/// is written in order): what the results before it recorded. One fsync per attempt, none
/// while nothing is due.
pub(crate) fn attempt(db: &mut Db, id: i64, settle_at: &str) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE outbox SET attempts = attempts + 1, settle_at = ?2 WHERE id = ?1";
    super::durable(&mut db.0, |tx| {
        tx.prepare_cached(SQL)?.execute(params![id, settle_at])?;
        Ok(())
    })
}

/// Odoo has every step of result `id` (its attempts were counted as they began).
pub(crate) fn result_delivered(db: &Db, id: i64, now: &str) -> Result<(), StoreError> {
    db.0.prepare_cached("UPDATE outbox SET delivered_at = ?2, last_error = NULL WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Result `id` failed in passing (its attempt already counted): due again at `next_at`. When
/// Odoo `answered`, nothing of the attempt can still be running there.
pub(crate) fn retry_at(db: &Db, id: i64, error: &str, next_at: &str, answered: bool) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE outbox SET last_error = ?2, next_at = ?3, \
        settle_at = CASE WHEN ?4 THEN NULL ELSE settle_at END WHERE id = ?1";
    db.0.prepare_cached(SQL)?
        .execute(params![id, error, next_at, answered])?;
    Ok(())
}

/// Sets result `id` aside for a person: it and the rest of its MO's queue wait.
pub(crate) fn park(db: &Db, id: i64, reason: &str, now: &str) -> Result<(), StoreError> {
    // Odoo answered (or nothing was sent): nothing of it can still be running there.
    db.0.prepare_cached(
        "UPDATE outbox SET parked_at = ?3, park_reason = ?2, last_error = ?2, settle_at = NULL WHERE id = ?1",
    )?
    .execute(params![id, reason, now])?;
    Ok(())
}

/// Sets result `id` and every later one of its MO aside for a person: none of them is this
/// gateway's to report (another gateway reports on the MO). Those behind a parked head are
/// never on their way to Odoo, so each can be dropped at once. How many were parked.
pub(crate) fn park_mo(db: &Db, id: i64, reason: &str, now: &str) -> Result<u64, StoreError> {
    const SQL: &str = "UPDATE outbox SET parked_at = ?3, park_reason = ?2, last_error = ?2, settle_at = NULL \
        WHERE channel = 'odoo' AND delivered_at IS NULL AND parked_at IS NULL AND id >= ?1 \
        AND key = (SELECT key FROM outbox WHERE id = ?1)";
    let parked = db.0.prepare_cached(SQL)?.execute(params![id, reason, now])?;
    Ok(parked as u64)
}

/// What the displays show of an MO's results not yet in Odoo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Upload {
    pub(crate) count: u64,
    /// When the oldest was queued (RFC 3339).
    pub(crate) oldest: String,
    /// Why the head waits for a person, when it does.
    pub(crate) parked: Option<String>,
}

/// [`Upload`] for each of `ids` that has results waiting.
pub(crate) fn uploads(db: &Db, ids: &[i64]) -> Result<HashMap<i64, Upload>, StoreError> {
    const SQL: &str = "SELECT count(*), min(created_at), max(park_reason) FROM outbox \
        WHERE channel = 'odoo' AND key = ?1 AND delivered_at IS NULL";
    let mut stmt = db.0.prepare_cached(SQL)?;
    let mut out = HashMap::new();
    for id in ids {
        let (count, oldest, parked): (i64, Option<String>, Option<String>) =
            stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if let (true, Some(oldest)) = (count > 0, oldest) {
            out.insert(
                *id,
                Upload {
                    count: count as u64,
                    oldest,
                    parked,
                },
            );
        }
    }
    Ok(out)
}

/// Results waiting for Odoo: how many, since when, how many parked, how many ever dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Backlog {
    pub(crate) pending: u64,
    pub(crate) oldest: Option<String>,
    pub(crate) parked: u64,
    pub(crate) dropped: u64,
}

pub(crate) fn odoo_backlog(db: &Db) -> Result<Backlog, StoreError> {
    const SQL: &str = "SELECT count(*), min(created_at), count(parked_at), \
        (SELECT coalesce(sum(count), 0) FROM outbox_dropped WHERE channel = 'odoo') FROM outbox \
        WHERE channel = 'odoo' AND delivered_at IS NULL";
    Ok(db.0.prepare_cached(SQL)?.query_row([], |r| {
        Ok(Backlog {
            pending: r.get::<_, i64>(0)? as u64,
            oldest: r.get(1)?,
            parked: r.get::<_, i64>(2)? as u64,
            dropped: r.get::<_, i64>(3)? as u64,
        })
    })?)
}

/// A result the bounds dropped, as the log keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Dropped {
    pub(crate) id: i64,
    pub(crate) mo: Option<i64>,
    pub(crate) payload: String,
    pub(crate) created_at: String,
}

/// Drops, oldest first and at most `batch` at a time, the results waiting since before
/// `cutoff` and those beyond the newest `max_pending`; counts them. Returns what it dropped.
///
/// The age is only told when `cutoff` comes from a synchronised clock, and only of results
/// recorded by one (`None`: no age bound now): a gateway that booted months behind, then
/// found the time, must not take a day's work for months old.
pub(crate) fn drop_over_bounds(
    db: &mut Db,
    max_pending: u32,
    cutoff: Option<&str>,
    now: &str,
    batch: u32,
) -> Result<Vec<Dropped>, StoreError> {
    const PICK: &str = "SELECT id, key, payload, created_at FROM outbox \
        WHERE channel = 'odoo' AND delivered_at IS NULL \
        AND ((created_at < ?1 AND json_extract(payload, '$.clock_synced') = 1) \
             OR id < (SELECT id FROM outbox WHERE channel = 'odoo' AND delivered_at IS NULL \
                      ORDER BY id DESC LIMIT 1 OFFSET ?2 - 1)) \
        ORDER BY id LIMIT ?3";
    let tx = db.0.transaction()?;
    let dropped: Vec<Dropped> = {
        let mut stmt = tx.prepare_cached(PICK)?;
        let rows = stmt.query_map(params![cutoff, max_pending, batch], |r| {
            Ok(Dropped {
                id: r.get(0)?,
                mo: r.get(1)?,
                payload: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    if !dropped.is_empty() {
        let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
        for d in &dropped {
            delete.execute([d.id])?;
        }
        drop(delete);
        count_dropped(&tx, dropped.len(), now)?;
    }
    tx.commit()?;
    Ok(dropped)
}

/// A result waiting for Odoo, as `linegate outbox list` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Listed {
    pub(crate) id: i64,
    pub(crate) mo: Option<i64>,
    pub(crate) event_id: Option<String>,
    pub(crate) payload: String,
    pub(crate) created_at: String,
    pub(crate) attempts: u32,
    pub(crate) next_at: String,
    pub(crate) last_error: Option<String>,
    pub(crate) parked: Option<String>,
    /// What Odoo made of it so far (an end's close and backorder), when a step learnt it.
    pub(crate) outcome: Option<String>,
}

/// Every result waiting for Odoo, oldest first.
pub(crate) fn results(db: &Db) -> Result<Vec<Listed>, StoreError> {
    const SQL: &str = "SELECT id, key, event_id, payload, created_at, attempts, next_at, last_error, park_reason, \
        outcome FROM outbox WHERE channel = 'odoo' AND delivered_at IS NULL ORDER BY id";
    let mut stmt = db.0.prepare_cached(SQL)?;
    let rows = stmt.query_map([], |r| {
        Ok(Listed {
            id: r.get(0)?,
            mo: r.get(1)?,
            event_id: r.get(2)?,
            payload: r.get(3)?,
            created_at: r.get(4)?,
            attempts: r.get(5)?,
            next_at: r.get(6)?,
            last_error: r.get(7)?,
            parked: r.get(8)?,
            outcome: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Parked results `ids` (every parked one when None) are due again at `now`; returns how many.
pub(crate) fn unpark(db: &Db, ids: Option<&[i64]>, now: &str) -> Result<u64, StoreError> {
    const SQL: &str = "UPDATE outbox SET parked_at = NULL, park_reason = NULL, next_at = ?2 \
        WHERE channel = 'odoo' AND delivered_at IS NULL AND parked_at IS NOT NULL AND (?1 IS NULL OR id = ?1)";
    let mut stmt = db.0.prepare_cached(SQL)?;
    let changed = match ids {
        None => stmt.execute(params![None::<i64>, now])?,
        Some(ids) => {
            let mut n = 0;
            for id in ids {
                n += stmt.execute(params![id, now])?;
            }
            n
        }
    };
    Ok(changed as u64)
}

/// What became of a drop asked by hand.
#[derive(Debug)]
pub(crate) enum DropOutcome {
    Dropped(Dropped),
    /// Waiting, not parked: it may be on its way to Odoo this very moment.
    NotParked,
    Missing,
}

/// Drops parked result `id` (counted, for the status); only a parked one: any other may be on
/// its way to Odoo.
pub(crate) fn drop_result(db: &mut Db, id: i64, now: &str) -> Result<DropOutcome, StoreError> {
    let tx = db.0.transaction()?;
    let found = tx
        .prepare_cached(
            "SELECT id, key, payload, created_at, parked_at IS NOT NULL FROM outbox \
             WHERE id = ?1 AND channel = 'odoo' AND delivered_at IS NULL",
        )?
        .query_row([id], |r| {
            let dropped = Dropped {
                id: r.get(0)?,
                mo: r.get(1)?,
                payload: r.get(2)?,
                created_at: r.get(3)?,
            };
            Ok((dropped, r.get::<_, bool>(4)?))
        })
        .optional()?;
    let outcome = match found {
        None => DropOutcome::Missing,
        Some((_, false)) => DropOutcome::NotParked,
        Some((dropped, true)) => {
            tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?.execute([id])?;
            count_dropped(&tx, 1, now)?;
            DropOutcome::Dropped(dropped)
        }
    };
    tx.commit()?;
    Ok(outcome)
}

fn count_dropped(tx: &Transaction, n: usize, now: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO outbox_dropped (channel, count, last_at) VALUES ('odoo', ?1, ?2) \
         ON CONFLICT (channel) DO UPDATE SET count = count + ?1, last_at = ?2",
    )?
    .execute(params![n as i64, now])?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mo::result::Happened;
    use crate::mo::Protected;

    fn result(mo: i64, n: u32) -> FloorResult {
        FloorResult {
            event_id: format!("lg-{mo:08}{n:08}"),
            happened: Happened::Registered,
            mo,
            name: format!("WH/MO/{mo:05}"),
            operator: None,
            station: "ws-1".into(),
            at: "2026-12-01T08:00:00Z".into(),
            clock_synced: true,
            protected: Protected::default(),
            target: 1.0,
        }
    }

    fn queue(db: &mut Db, results: &[(i64, u32, &str)]) {
        let tx = db.0.transaction().unwrap();
        for (mo, n, at) in results {
            enqueue_result(&tx, &result(*mo, *n), at).unwrap();
        }
        tx.commit().unwrap();
    }

    /// What is due at `now`, with the horizons an hour and a half ahead.
    fn due(now: &str) -> Due {
        let later =
            |t: &str| crate::clock::parse_rfc3339(t).map_or("9999".into(), |t| crate::clock::format_rfc3339(t + 5400));
        Due {
            now: now.into(),
            retry_horizon: later(now),
            settle_horizon: later(now),
        }
    }

    #[test]
    fn an_unanswered_call_holds_its_result_until_it_has_settled_and_a_clock_put_back_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = super::super::open(&dir.path().join("t.db")).unwrap();
        let t = "2026-12-01T08:00:00Z";
        queue(&mut db, &[(7, 1, t), (8, 1, t)]);
        let heads = |db: &Db, now: &str| -> Vec<i64> {
            let found = odoo_heads(db, &due(now), 50).unwrap();
            found
                .iter()
                .map(|w| serde_json::from_str::<FloorResult>(&w.payload).unwrap().mo)
                .collect()
        };
        let [seven, eight] = [0, 1].map(|k| odoo_heads(&db, &due(t), 50).unwrap()[k].id);
        // MO 7's call went unanswered: even with every wait waived, it is not looked up before
        // it has settled
        attempt(&mut db, seven, "2026-12-01T08:02:30Z").unwrap();
        retry_at(&db, seven, "timed out", "2026-12-01T09:00:00Z", false).unwrap();
        assert_eq!(waive_waits(&db, "2026-12-01T08:01:00Z").unwrap(), 1);
        let found: Vec<i64> = odoo_heads(&db, &due("2026-12-01T08:01:00Z"), 50)
            .unwrap()
            .iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(found, [eight]);
        assert_eq!(heads(&db, "2026-12-01T08:02:30Z"), [7, 8]);
        assert_eq!(odoo_next_due(&db).unwrap().as_deref(), Some(t), "MO 8 is due");
        // MO 8's failure was Odoo's answer: due at its retry time alone
        attempt(&mut db, eight, "2026-12-01T08:02:30Z").unwrap();
        retry_at(&db, eight, "409", "2026-12-01T08:00:10Z", true).unwrap();
        assert_eq!(heads(&db, "2026-12-01T08:00:10Z"), [8]);
        // A clock put back a year leaves waits far ahead: they are taken as passed
        retry_at(&db, eight, "409", "2027-12-01T08:00:10Z", true).unwrap();
        assert_eq!(heads(&db, "2026-12-01T08:00:11Z"), [8]);
    }

    #[test]
    fn each_mo_has_one_head_and_a_parked_head_holds_back_only_its_own_mo() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = super::super::open(&dir.path().join("t.db")).unwrap();
        let t = "2026-12-01T08:00:00Z";
        queue(&mut db, &[(7, 1, t), (8, 1, t), (7, 2, t), (8, 2, t)]);
        let heads = |db: &Db| -> Vec<i64> {
            odoo_heads(db, &due("2026-12-01T08:00:00Z"), 50)
                .unwrap()
                .iter()
                .map(|w| serde_json::from_str::<FloorResult>(&w.payload).unwrap().mo)
                .collect()
        };
        assert_eq!(heads(&db), [7, 8]);
        let first = odoo_heads(&db, &due(t), 50).unwrap()[0].id;
        park(&db, first, "the MO no longer exists in Odoo", t).unwrap();
        assert_eq!(heads(&db), [8]);
        assert_eq!(
            uploads(&db, &[7, 8, 9]).unwrap()[&7],
            Upload {
                count: 2,
                oldest: t.into(),
                parked: Some("the MO no longer exists in Odoo".into())
            }
        );
        let backlog = odoo_backlog(&db).unwrap();
        assert_eq!((backlog.pending, backlog.parked, backlog.dropped), (4, 1, 0));
    }

    #[test]
    fn an_mo_another_gateway_reports_on_parks_its_whole_queue_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = super::super::open(&dir.path().join("t.db")).unwrap();
        let t = "2026-12-01T08:00:00Z";
        queue(&mut db, &[(7, 1, t), (8, 1, t), (7, 2, t), (7, 3, t)]);
        let head = odoo_heads(&db, &due(t), 50).unwrap()[0].id;
        assert_eq!(
            park_mo(&db, head, "gateway gw-1 reported on this MO in Odoo first", t).unwrap(),
            3
        );
        let backlog = odoo_backlog(&db).unwrap();
        assert_eq!((backlog.pending, backlog.parked), (4, 3));
        // Each can be dropped at once; MO 8 goes on
        let last = head + 3;
        assert!(matches!(
            drop_result(&mut db, last, t).unwrap(),
            DropOutcome::Dropped(_)
        ));
        let heads = odoo_heads(&db, &due(t), 50).unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(serde_json::from_str::<FloorResult>(&heads[0].payload).unwrap().mo, 8);
    }

    #[test]
    fn the_bounds_drop_the_oldest_and_count_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = super::super::open(&dir.path().join("t.db")).unwrap();
        let old = "2026-01-01T00:00:00Z";
        let new = "2026-12-01T08:00:00Z";
        queue(
            &mut db,
            &[(1, 1, old), (2, 1, new), (3, 1, new), (4, 1, new), (5, 1, new)],
        );
        // Past the age, and beyond the newest three
        let cutoff = Some("2026-06-01T00:00:00Z");
        let dropped = drop_over_bounds(&mut db, 3, cutoff, new, 500).unwrap();
        assert_eq!(dropped.iter().map(|d| d.mo).collect::<Vec<_>>(), [Some(1), Some(2)]);
        let backlog = odoo_backlog(&db).unwrap();
        assert_eq!((backlog.pending, backlog.dropped), (3, 2));
        // Within them, nothing more
        assert!(drop_over_bounds(&mut db, 3, cutoff, new, 500).unwrap().is_empty());
        assert_eq!(odoo_backlog(&db).unwrap().dropped, 2);
    }

    #[test]
    fn a_result_recorded_by_a_clock_not_yet_synchronised_is_not_dropped_for_its_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = super::super::open(&dir.path().join("t.db")).unwrap();
        // Recorded by a gateway that booted months behind
        let tx = db.0.transaction().unwrap();
        let unsynced = FloorResult {
            clock_synced: false,
            ..result(1, 1)
        };
        enqueue_result(&tx, &unsynced, "2026-01-01T00:00:00Z").unwrap();
        enqueue_result(&tx, &result(2, 1), "2026-01-01T00:00:00Z").unwrap();
        tx.commit().unwrap();
        let new = "2026-12-01T08:00:00Z";
        // Without a synchronised clock now, no age at all; with one, only what a synchronised
        // clock dated
        assert!(drop_over_bounds(&mut db, 10, None, new, 500).unwrap().is_empty());
        let dropped = drop_over_bounds(&mut db, 10, Some("2026-06-01T00:00:00Z"), new, 500).unwrap();
        assert_eq!(dropped.iter().map(|d| d.mo).collect::<Vec<_>>(), [Some(2)]);
    }
}
