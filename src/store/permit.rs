//! SQL for SICANTIK's permits and permit types, and their reminders (queued in the outbox in
//! the transaction that records them). It speaks in [`crate::permit`]'s types; the sync maps
//! SICANTIK's rows to them.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{Db, StoreError};
use crate::permit::{Detail, Expiring, Listed, PermitType, Reminder};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ListCounts {
    pub(crate) new: u64,
    pub(crate) changed: u64,
    pub(crate) unchanged: u64,
}

/// Permit types, by id. Returns how many were written (unchanged ones are not).
pub(crate) fn upsert_types(db: &mut Db, types: &[PermitType]) -> Result<u64, StoreError> {
    let conn = &mut db.0;
    const SQL: &str = "INSERT INTO permit_type (id, name, grp, sla_days, extra) VALUES (?1, ?2, ?3, ?4, ?5) \
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, grp = excluded.grp, sla_days = excluded.sla_days, \
        extra = excluded.extra WHERE name IS NOT excluded.name OR grp IS NOT excluded.grp \
        OR sla_days IS NOT excluded.sla_days OR extra IS NOT excluded.extra";
    let tx = conn.transaction()?;
    let mut written = 0;
    {
        let mut stmt = tx.prepare_cached(SQL)?;
        for t in types {
            let extra = serde_json::Value::Object(t.extra.clone()).to_string();
            written += stmt.execute(params![t.id, t.name, t.group, t.sla_days, extra])? as u64;
        }
    }
    tx.commit()?;
    Ok(written)
}

/// Listed permits in one transaction: new ones inserted, changed ones updated (a new permit
/// number means its detail must be fetched again), unchanged ones not written.
pub(crate) fn upsert_listed(db: &mut Db, listed: &[Listed], now: &str) -> Result<ListCounts, StoreError> {
    let conn = &mut db.0;
    const SQL: &str =
        "INSERT INTO permit (pendaftaran_id, no_surat, applicant, permit_name, permit_type_id, listed_at) \
        VALUES (?1, ?2, ?3, ?4, (SELECT id FROM permit_type WHERE name = ?4), ?5) \
        ON CONFLICT (pendaftaran_id) DO UPDATE SET no_surat = excluded.no_surat, applicant = excluded.applicant, \
        permit_name = excluded.permit_name, permit_type_id = excluded.permit_type_id, \
        detail_state = CASE WHEN permit.no_surat IS excluded.no_surat THEN permit.detail_state ELSE 'pending' END \
        WHERE permit.no_surat IS NOT excluded.no_surat OR permit.applicant IS NOT excluded.applicant \
        OR permit.permit_name IS NOT excluded.permit_name OR permit.permit_type_id IS NOT excluded.permit_type_id";
    let tx = conn.transaction()?;
    let mut counts = ListCounts::default();
    {
        let mut exists = tx.prepare_cached("SELECT 1 FROM permit WHERE pendaftaran_id = ?1")?;
        let mut stmt = tx.prepare_cached(SQL)?;
        for p in listed {
            let existed = exists.exists([&p.pendaftaran_id])?;
            let wrote = stmt.execute(params![p.pendaftaran_id, p.no_surat, p.applicant, p.permit_name, now])? > 0;
            match (existed, wrote) {
                (false, _) => counts.new += 1,
                (true, true) => counts.changed += 1,
                (true, false) => counts.unchanged += 1,
            }
        }
    }
    tx.commit()?;
    Ok(counts)
}

/// Permits whose detail to fetch now: never fetched, unknown and due for a retry, or close to
/// (or past) expiry and not checked since `recheck_before` (a renewal shows there).
pub(crate) fn due_for_detail(
    db: &Db,
    now: &str,
    soon: &str,
    recheck_before: &str,
    not_before: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let conn = &db.0;
    const SQL: &str = "SELECT pendaftaran_id, no_surat FROM permit WHERE detail_state = 'pending' \
        OR (detail_state = 'unknown' AND detail_retry_at <= ?1) \
        OR (detail_state = 'found' AND expiry <= ?2 AND expiry >= ?4 AND detail_at < ?3) ORDER BY pendaftaran_id";
    let mut stmt = conn.prepare_cached(SQL)?;
    let rows = stmt.query_map(params![now, soon, recheck_before, not_before], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Stores a found detail; returns whether the expiry changed. `today` (the regency's date) is
/// kept as the day a new expiry was learned: reminders due before it are not sent late.
pub(crate) fn set_detail(db: &mut Db, id: &str, d: &Detail, now: &str, today: &str) -> Result<bool, StoreError> {
    let conn = &mut db.0;
    const SQL: &str = "UPDATE permit SET detail_state = 'found', detail_attempts = 0, detail_retry_at = NULL, \
        detail_at = ?2, expiry_learned = CASE WHEN expiry IS ?3 THEN expiry_learned ELSE ?9 END, expiry = ?3, \
        issued = ?4, received = ?5, phone = ?6, address = ?7, company = ?8 WHERE pendaftaran_id = ?1";
    let tx = conn.transaction()?;
    let before: Option<Option<String>> = tx
        .query_row("SELECT expiry FROM permit WHERE pendaftaran_id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    tx.prepare_cached(SQL)?.execute(params![
        id, now, d.expiry, d.issued, d.received, d.phone, d.address, d.company, today
    ])?;
    tx.commit()?;
    Ok(before.is_some_and(|b| b != d.expiry))
}

/// Records that neither endpoint knows the permit; it is tried again after `retry_at`.
pub(crate) fn set_unknown(db: &Db, id: &str, now: &str, retry_at: &str) -> Result<(), StoreError> {
    let conn = &db.0;
    const SQL: &str = "UPDATE permit SET detail_state = 'unknown', detail_attempts = detail_attempts + 1, \
        detail_retry_at = ?3, detail_at = ?2 WHERE pendaftaran_id = ?1";
    conn.prepare_cached(SQL)?.execute(params![id, now, retry_at])?;
    Ok(())
}

pub(crate) fn detail_attempts(db: &Db, id: &str) -> Result<u32, StoreError> {
    let conn = &db.0;
    Ok(conn.query_row(
        "SELECT detail_attempts FROM permit WHERE pendaftaran_id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

pub(crate) fn with_expiry(db: &Db) -> Result<Vec<Expiring>, StoreError> {
    let conn = &db.0;
    const SQL: &str =
        "SELECT pendaftaran_id, no_surat, permit_name, applicant, phone, expiry, expiry_learned FROM permit \
        WHERE detail_state = 'found' AND expiry IS NOT NULL ORDER BY expiry, pendaftaran_id";
    let mut stmt = conn.prepare_cached(SQL)?;
    let rows = stmt.query_map([], |r| {
        Ok(Expiring {
            pendaftaran_id: r.get(0)?,
            no_surat: r.get(1)?,
            permit: r.get(2)?,
            applicant: r.get(3)?,
            phone: r.get(4)?,
            expiry: r.get(5)?,
            learned: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Thresholds already recorded, by (permit, expiry).
pub(crate) fn recorded_reminders(db: &Db) -> Result<HashMap<(String, String), Vec<u32>>, StoreError> {
    let conn = &db.0;
    let mut stmt = conn.prepare_cached("SELECT pendaftaran_id, expiry, threshold FROM permit_reminder")?;
    let mut out: HashMap<(String, String), Vec<u32>> = HashMap::new();
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?))
    })?;
    for row in rows {
        let (id, expiry, threshold) = row?;
        out.entry((id, expiry)).or_default().push(threshold);
    }
    Ok(out)
}

/// Records reminders and queues their messages, durably and in one transaction: a reminder is
/// produced exactly once, and what was produced is delivered at least once.
pub(crate) fn record_reminders(db: &mut Db, reminders: &[Reminder], now: &str) -> Result<u64, StoreError> {
    let conn = &mut db.0;
    const RECORD: &str = "INSERT OR IGNORE INTO permit_reminder (pendaftaran_id, expiry, threshold, created_at, sent) \
        VALUES (?1, ?2, ?3, ?4, ?5)";
    if reminders.is_empty() {
        return Ok(0);
    }
    super::durable(conn, |tx| {
        let mut produced = 0;
        for r in reminders {
            let fresh =
                tx.prepare_cached(RECORD)?
                    .execute(params![r.pendaftaran_id, r.expiry, r.threshold, now, r.sent])?
                    > 0;
            if fresh && r.sent {
                produced += 1;
                for (channel, payload) in &r.messages {
                    super::outbox::enqueue(tx, channel, payload, now)?;
                }
            }
        }
        Ok(produced)
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct PermitCounts {
    pub(crate) permits: u64,
    pub(crate) types: u64,
    pub(crate) expiry_known: u64,
    pub(crate) expiry_pending: u64,
    pub(crate) expiry_unknown: u64,
}

pub(crate) fn counts(db: &Db) -> Result<PermitCounts, StoreError> {
    let conn = &db.0;
    let count = |sql: &str| -> Result<u64, StoreError> { Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
    Ok(PermitCounts {
        permits: count("SELECT count(*) FROM permit")?,
        types: count("SELECT count(*) FROM permit_type")?,
        expiry_known: count("SELECT count(*) FROM permit WHERE detail_state = 'found'")?,
        expiry_pending: count("SELECT count(*) FROM permit WHERE detail_state = 'pending'")?,
        expiry_unknown: count("SELECT count(*) FROM permit WHERE detail_state = 'unknown'")?,
    })
}
