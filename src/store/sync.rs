//! SQL for the sync's own records: its cursors (`sync_state`) and its run history (`sync_run`),
//! and the summary `linegate status` prints.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::StoreError;

/// Sets a state value; writes nothing when the value is already stored.
pub fn put_state(conn: &Connection, source: &str, key: &str, value: &str) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO sync_state (source, key, value) VALUES (?1, ?2, ?3) \
        ON CONFLICT (source, key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value";
    conn.prepare_cached(SQL)?.execute(params![source, key, value])?;
    Ok(())
}

pub fn get_state(conn: &Connection, source: &str, key: &str) -> Result<Option<String>, StoreError> {
    const SQL: &str = "SELECT value FROM sync_state WHERE source = ?1 AND key = ?2";
    Ok(conn
        .prepare_cached(SQL)?
        .query_row(params![source, key], |r| r.get(0))
        .optional()?)
}

/// One sync run, as recorded and reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub source: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub ok: bool,
    pub error: Option<String>,
    pub fetched: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub gone: u64,
    pub purged: u64,
    pub requests: u64,
}

/// Runs kept per source; older ones are trimmed as new ones arrive.
const RUNS_KEPT: i64 = 200;

pub fn record_run(conn: &mut Connection, run: &RunRecord) -> Result<(), StoreError> {
    const INSERT: &str = "INSERT INTO sync_run (source, started_at, duration_ms, ok, error, fetched, inserted, \
        updated, unchanged, gone, purged, requests) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
    const TRIM: &str = "DELETE FROM sync_run WHERE source = ?1 AND id <= \
        (SELECT id FROM sync_run WHERE source = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)";
    let tx = conn.transaction()?;
    tx.prepare_cached(INSERT)?.execute(params![
        run.source,
        run.started_at,
        run.duration_ms as i64,
        run.ok,
        run.error,
        run.fetched as i64,
        run.inserted as i64,
        run.updated as i64,
        run.unchanged as i64,
        run.gone as i64,
        run.purged as i64,
        run.requests as i64
    ])?;
    tx.prepare_cached(TRIM)?.execute(params![run.source, RUNS_KEPT])?;
    tx.commit()?;
    Ok(())
}

fn read_run(r: &rusqlite::Row) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        source: r.get(0)?,
        started_at: r.get(1)?,
        duration_ms: r.get::<_, i64>(2)? as u64,
        ok: r.get(3)?,
        error: r.get(4)?,
        fetched: r.get::<_, i64>(5)? as u64,
        inserted: r.get::<_, i64>(6)? as u64,
        updated: r.get::<_, i64>(7)? as u64,
        unchanged: r.get::<_, i64>(8)? as u64,
        gone: r.get::<_, i64>(9)? as u64,
        purged: r.get::<_, i64>(10)? as u64,
        requests: r.get::<_, i64>(11)? as u64,
    })
}

const RUN_COLUMNS: &str =
    "source, started_at, duration_ms, ok, error, fetched, inserted, updated, unchanged, gone, purged, requests";

/// The newest run per source, and the newest successful one.
pub fn last_runs(conn: &Connection) -> Result<Vec<SourceStatus>, StoreError> {
    let sources: Vec<String> = conn
        .prepare("SELECT DISTINCT source FROM sync_run ORDER BY source")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for source in sources {
        let last = conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM sync_run WHERE source = ?1 ORDER BY id DESC LIMIT 1"
            ))?
            .query_row([&source], read_run)?;
        let last_ok = conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM sync_run WHERE source = ?1 AND ok ORDER BY id DESC LIMIT 1"
            ))?
            .query_row([&source], read_run)
            .optional()?;
        out.push(SourceStatus { source, last, last_ok });
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    pub source: String,
    pub last: RunRecord,
    pub last_ok: Option<RunRecord>,
}

/// What `linegate status` shows, read from the store alone.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub schema_version: u32,
    pub mos: u64,
    pub gone: u64,
    pub by_state: Vec<(String, u64)>,
    pub by_phase: Vec<(String, u64)>,
    pub sources: Vec<SourceStatus>,
}

pub fn status(conn: &Connection) -> Result<Status, StoreError> {
    let count = |sql: &str| -> Result<u64, StoreError> { Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
    let grouped = |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    const PHASE: &str =
        "CASE WHEN date_finished IS NOT NULL THEN 'finished' WHEN date_start IS NOT NULL THEN 'running' \
        WHEN ready_for_production THEN 'ready' ELSE 'waiting' END";
    Ok(Status {
        schema_version: super::schema_version(conn)?,
        mos: count("SELECT count(*) FROM mo WHERE gone_at IS NULL")?,
        gone: count("SELECT count(*) FROM mo WHERE gone_at IS NOT NULL")?,
        by_state: grouped("SELECT state, count(*) FROM mo WHERE gone_at IS NULL GROUP BY state ORDER BY state")?,
        by_phase: grouped(&format!(
            "SELECT {PHASE} AS phase, count(*) FROM mo GROUP BY phase ORDER BY phase"
        ))?,
        sources: last_runs(conn)?,
    })
}
