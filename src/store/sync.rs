//! SQL for the sync's own records: its cursors (`sync_state`) and its run history (`sync_run`),
//! and the summary `linegate status` prints, from a connection that cannot write.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::{Db, StoreError};

/// Sets a state value; writes nothing when the value is already stored.
pub(super) fn put_state(conn: &Connection, source: &str, key: &str, value: &str) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO sync_state (source, key, value) VALUES (?1, ?2, ?3) \
        ON CONFLICT (source, key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value";
    conn.prepare_cached(SQL)?.execute(params![source, key, value])?;
    Ok(())
}

/// Sets state values in one transaction; writes nothing for those already stored.
pub(crate) fn set_states(db: &mut Db, state: &[(&str, &str, String)]) -> Result<(), StoreError> {
    let tx = db.0.transaction()?;
    for (source, key, value) in state {
        put_state(&tx, source, key, value)?;
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn get_state(db: &Db, source: &str, key: &str) -> Result<Option<String>, StoreError> {
    let conn = &db.0;
    const SQL: &str = "SELECT value FROM sync_state WHERE source = ?1 AND key = ?2";
    Ok(conn
        .prepare_cached(SQL)?
        .query_row(params![source, key], |r| r.get(0))
        .optional()?)
}

/// One sync run, as recorded and reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub(crate) source: String,
    pub(crate) started_at: String,
    pub(crate) duration_ms: u64,
    pub ok: bool,
    pub(crate) error: Option<String>,
    pub(crate) fetched: u64,
    pub(crate) inserted: u64,
    pub(crate) updated: u64,
    pub(crate) unchanged: u64,
    pub(crate) gone: u64,
    pub(crate) purged: u64,
    pub(crate) requests: u64,
    /// SICANTIK: permit details found, permits no endpoint knows, reminders produced.
    pub(crate) details: u64,
    pub(crate) unknown: u64,
    pub(crate) reminders: u64,
}

impl RunRecord {
    /// A run that succeeded without changing anything in the store (an idle interval).
    pub(crate) fn changed_nothing(&self) -> bool {
        let counts = [
            self.inserted,
            self.updated,
            self.gone,
            self.purged,
            self.details,
            self.unknown,
            self.reminders,
        ];
        self.ok && counts.iter().all(|n| *n == 0)
    }
}

/// Runs kept per source; older ones are trimmed as new ones arrive.
const RUNS_KEPT: i64 = 200;

pub(crate) fn record_run(db: &mut Db, run: &RunRecord) -> Result<(), StoreError> {
    let conn = &mut db.0;
    const INSERT: &str = "INSERT INTO sync_run (source, started_at, duration_ms, ok, error, fetched, inserted, \
        updated, unchanged, gone, purged, requests, details, unknown, reminders) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
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
        run.requests as i64,
        run.details as i64,
        run.unknown as i64,
        run.reminders as i64
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
        details: r.get::<_, i64>(12)? as u64,
        unknown: r.get::<_, i64>(13)? as u64,
        reminders: r.get::<_, i64>(14)? as u64,
    })
}

const RUN_COLUMNS: &str =
    "source, started_at, duration_ms, ok, error, fetched, inserted, updated, unchanged, gone, purged, requests, \
     details, unknown, reminders";

/// The newest run per source, and the newest successful one.
pub(crate) fn last_runs(db: &Db) -> Result<Vec<SourceStatus>, StoreError> {
    let conn = &db.0;
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
    pub(crate) source: String,
    pub last: RunRecord,
    pub(crate) last_ok: Option<RunRecord>,
}

/// What `linegate status` shows, read from the store alone.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub(crate) schema_version: u32,
    pub mos: u64,
    pub(crate) gone: u64,
    pub(crate) by_state: Vec<(String, u64)>,
    pub(crate) by_phase: Vec<(String, u64)>,
    pub sources: Vec<SourceStatus>,
    pub(crate) permits: super::permit::PermitCounts,
    /// Messages waiting to go out, by channel.
    pub(crate) outbox: Vec<(String, u64)>,
    /// Operator results waiting for Odoo.
    pub(crate) to_odoo: super::outbox::Backlog,
}

pub fn status(db: &Db) -> Result<Status, StoreError> {
    let conn = &db.0;
    let count = |sql: &str| -> Result<u64, StoreError> { Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
    let grouped = |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    Ok(Status {
        schema_version: super::schema_version(db)?,
        mos: count("SELECT count(*) FROM mo WHERE gone_at IS NULL")?,
        gone: count("SELECT count(*) FROM mo WHERE gone_at IS NOT NULL")?,
        by_state: grouped("SELECT state, count(*) FROM mo WHERE gone_at IS NULL GROUP BY state ORDER BY state")?,
        by_phase: grouped(&format!(
            "SELECT {} AS phase, count(*) FROM mo WHERE gone_at IS NULL GROUP BY phase ORDER BY phase",
            super::mo::phase_case_sql()
        ))?,
        sources: last_runs(db)?,
        permits: super::permit::counts(db)?,
        outbox: super::outbox::depth(db)?,
        to_odoo: super::outbox::odoo_backlog(db)?,
    })
}

/// What systemd's one-line STATUS shows of the store: one pass over the MOs, the outbox from
/// its index (a full [`status`] every 30 s would hold up commands on a large store).
#[derive(Debug, Clone, Default)]
pub(crate) struct Brief {
    pub(crate) mos: u64,
    pub(crate) running: u64,
    /// Messages waiting to go out, other than results for Odoo.
    pub(crate) outbox: u64,
    pub(crate) to_odoo: super::outbox::Backlog,
}

pub(crate) fn brief(db: &Db) -> Result<Brief, StoreError> {
    let sql = format!(
        "SELECT count(*), coalesce(sum(({}) = 'running'), 0) FROM mo WHERE gone_at IS NULL",
        super::mo::phase_case_sql()
    );
    let (mos, running) =
        db.0.prepare_cached(&sql)?
            .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))?;
    let outbox = super::outbox::depth(db)?
        .into_iter()
        .filter(|(channel, _)| channel != "odoo")
        .map(|(_, n)| n)
        .sum();
    Ok(Brief {
        mos,
        running,
        outbox,
        to_odoo: super::outbox::odoo_backlog(db)?,
    })
}

/// Why a database cannot be read as it is, without changing it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadOnlyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the database at {path} has schema version {found}, older than this linegate's ({known}): \
         the agent migrates it when it starts"
    )]
    TooOld { path: PathBuf, found: u32, known: u32 },
}

/// Opens the database for reading only: no migration, no PRAGMA that writes, no file created.
/// Refuses a schema this binary does not know, newer or older, instead of misreading it.
pub(crate) fn open_read_only(path: &Path) -> Result<Db, ReadOnlyError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    // The agent may be committing a page; wait for it rather than fail.
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
    let db = Db(conn);
    let found = match super::schema_version(&db) {
        Ok(found) => found,
        // A WAL database on a read-only file system opens only as an immutable file.
        Err(_) if matches!(super::StoreHealth::inspect(path), super::StoreHealth::ReadOnly(_)) => {
            return Ok(super::open_immutable(path)?)
        }
        Err(e) => return Err(e.into()),
    };
    let known = super::SCHEMA_VERSION;
    let path = path.to_path_buf();
    if found > known {
        return Err(StoreError::TooNew { path, found, known }.into());
    }
    if found < known {
        return Err(ReadOnlyError::TooOld { path, found, known });
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mo::{Audit, Protected, UpstreamMo};

    fn mo(id: i64) -> UpstreamMo {
        UpstreamMo::example(id)
    }

    #[test]
    fn status_counts_phases_of_present_mos_only() {
        // Given a present MO and a running one that has left Odoo's domain
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::super::open(&dir.path().join("t.db")).unwrap();
        super::super::mo::apply_page(&mut conn, &[mo(1), mo(2)], &[], "t").unwrap();
        let running = Protected {
            date_start: Some("2026-11-22T08:00:00Z".into()),
            ..Default::default()
        };
        let audit = Audit {
            operator: None,
            station: "ws-1".into(),
            at: "t".into(),
            clock_synced: true,
        };
        super::super::durable(&mut conn.0, |tx| {
            super::super::mo::write_protected(tx, 2, &running, &audit)
        })
        .unwrap();
        super::super::mo::mark_gone(&mut conn, &std::collections::HashSet::from([1]), "g").unwrap();
        // When the status is read
        let status = status(&conn).unwrap();
        // Then every count leaves the gone MO out
        assert_eq!((status.mos, status.gone), (1, 1));
        assert_eq!(status.by_state, vec![("confirmed".to_string(), 1)]);
        assert_eq!(status.by_phase, vec![("waiting".to_string(), 1)]);
    }

    #[test]
    fn read_only_open_refuses_other_schema_versions_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = super::super::open(&path).unwrap();
        drop(conn);
        assert!(open_read_only(&path).is_ok());
        for version in [super::super::SCHEMA_VERSION - 1, super::super::SCHEMA_VERSION + 1] {
            // Given a database at another schema version
            Connection::open(&path)
                .unwrap()
                .pragma_update(None, "user_version", version)
                .unwrap();
            // When it is opened read-only, then the error names both versions
            let err = open_read_only(&path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("version {version}")) && err.contains(&super::super::SCHEMA_VERSION.to_string()),
                "{err}"
            );
            // And the database is as it was
            let found: u32 = Connection::open(&path)
                .unwrap()
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(found, version);
        }
    }
}
