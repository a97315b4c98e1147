//! SQL for the command layer: the command log that makes every command happen exactly once,
//! and the one way protected columns are written — inside a command's own durable transaction,
//! with its log entry, so every operator value has a command that wrote it.

use rusqlite::{params, Connection, OptionalExtension};

use super::{mo, Db, StoreError};
use crate::mo::result::FloorResult;
use crate::mo::{Audit, MoRef, MoRow, OperatorWrite};

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
    /// Whether a refusal is logged too, so that a repeat gets the same one (a panel's
    /// command), or not, so that it can be tried again once the store allows it (a restore).
    pub(crate) log_refusal: bool,
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

/// What a command decided, given the rows it names.
#[derive(Debug, Clone)]
pub(crate) struct Decided {
    /// The reply, as JSON text.
    pub(crate) reply: String,
    pub(crate) ok: bool,
    /// Nothing, when it is refused.
    pub(crate) writes: Vec<OperatorWrite>,
    /// What Odoo is to be told of it, queued with it (nothing when results are not pushed).
    pub(crate) results: Vec<FloorResult>,
}

pub(crate) struct Outcome {
    /// The reply, as JSON text.
    pub(crate) reply: String,
    /// The MOs written.
    pub(crate) changed: Vec<i64>,
    /// Results for Odoo were queued with it.
    pub(crate) queued: bool,
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
            queued: false,
            replayed: true,
        });
    }
    super::durable(&mut db.0, |tx| {
        let rows = refs.iter().map(|r| find(tx, r)).collect::<Result<Vec<_>, _>>()?;
        let decided = decide(&rows);
        if !decided.ok && !entry.log_refusal {
            return Ok(Outcome {
                reply: decided.reply,
                changed: vec![],
                queued: false,
                replayed: false,
            });
        }
        let audit = entry.audit();
        for write in &decided.writes {
            mo::write_protected(tx, write.id, &write.protected, &audit)?;
        }
        for result in &decided.results {
            super::outbox::enqueue_result(tx, result, &entry.received_at)?;
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
            queued: !decided.results.is_empty(),
            replayed: false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mo::{Protected, UpstreamMo};

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = super::super::open(&dir.path().join("t.db")).unwrap();
        super::super::mo::apply_page(&mut db, &[UpstreamMo::example(1)], &[], "t").unwrap();
        (dir, db)
    }

    fn entry(request_id: &str) -> LogEntry {
        LogEntry {
            request_id: request_id.into(),
            station: "ws-1".into(),
            action: "register-mo".into(),
            operator: Some("ana".into()),
            received_at: "2026-11-22T08:00:00Z".into(),
            clock_synced: true,
            log_refusal: true,
        }
    }

    fn registered() -> Protected {
        Protected {
            ready_for_production: true,
            auth_first: Some("1".into()),
            ..Default::default()
        }
    }

    fn logged(db: &Db) -> Vec<(String, bool)> {
        let mut stmt =
            db.0.prepare("SELECT request_id, ok FROM command_log ORDER BY request_id")
                .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_command_writes_its_rows_and_its_log_entry_once_and_a_replay_writes_nothing() {
        // Given an MO
        let (_dir, mut db) = db();
        let write = |rows: &[Option<MoRow>]| {
            assert!(rows[0].is_some(), "the named MO is read in the transaction");
            Decided {
                reply: "{\"ok\":true}".into(),
                ok: true,
                writes: vec![OperatorWrite {
                    id: 1,
                    protected: registered(),
                }],
                results: vec![],
            }
        };
        // When a command writes it
        let first = exactly_once(&mut db, &entry("r1"), &[MoRef::Id(1)], write).unwrap();
        // Then the MO, its audit and the command log hold it
        assert_eq!((first.changed, first.replayed), (vec![1], false));
        let row = super::super::mo::get(&db, 1).unwrap().unwrap();
        assert_eq!(row.protected, registered());
        let operator: String =
            db.0.query_row("SELECT operator FROM mo WHERE id = 1", [], |r| r.get(0))
                .unwrap();
        assert_eq!(operator, "ana");
        // And the same request_id again returns the stored reply without deciding or writing
        let before = db.0.total_changes();
        let again = exactly_once(&mut db, &entry("r1"), &[MoRef::Id(1)], |_| panic!("decided twice")).unwrap();
        assert_eq!(
            (again.reply.as_str(), again.replayed, again.changed),
            ("{\"ok\":true}", true, vec![])
        );
        assert_eq!(db.0.total_changes(), before);
        assert_eq!(logged(&db), vec![("r1".to_string(), true)]);
    }

    #[test]
    fn a_refusal_is_logged_and_writes_no_row() {
        let (_dir, mut db) = db();
        let refused = |_: &[Option<MoRow>]| Decided {
            reply: "{\"ok\":false}".into(),
            ok: false,
            writes: vec![],
            results: vec![],
        };
        let outcome = exactly_once(&mut db, &entry("r2"), &[MoRef::Name("WH/MO/00001".into())], refused).unwrap();
        assert!(outcome.changed.is_empty());
        assert_eq!(
            super::super::mo::get(&db, 1).unwrap().unwrap().protected,
            Protected::default()
        );
        assert_eq!(logged(&db), vec![("r2".to_string(), false)]);
        // Unless the entry asks otherwise (a restore): then it may be decided again
        let retry = LogEntry {
            log_refusal: false,
            ..entry("r3")
        };
        exactly_once(&mut db, &retry, &[MoRef::Id(1)], refused).unwrap();
        let mut decided_again = false;
        exactly_once(&mut db, &retry, &[MoRef::Id(1)], |rows| {
            decided_again = true;
            refused(rows)
        })
        .unwrap();
        assert!(decided_again);
        assert_eq!(logged(&db), vec![("r2".to_string(), false)]);
    }

    #[test]
    fn writes_and_the_log_entry_commit_together_or_not_at_all() {
        // Given a command whose second write the database refuses (a trigger stands in for a
        // full disk or a failing card)
        let (_dir, mut db) = db();
        db.0.execute_batch("CREATE TRIGGER no_second BEFORE UPDATE ON mo WHEN NEW.auth_first = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END").unwrap();
        let decide = |_: &[Option<MoRow>]| Decided {
            reply: "{}".into(),
            ok: true,
            writes: vec![
                OperatorWrite {
                    id: 1,
                    protected: registered(),
                },
                OperatorWrite {
                    id: 1,
                    protected: Protected {
                        auth_first: Some("boom".into()),
                        ..registered()
                    },
                },
            ],
            results: vec![],
        };
        // When it fails half-way
        assert!(exactly_once(&mut db, &entry("r3"), &[MoRef::Id(1)], decide).is_err());
        // Then neither the first write nor the log entry is there
        assert_eq!(
            super::super::mo::get(&db, 1).unwrap().unwrap().protected,
            Protected::default()
        );
        assert!(logged(&db).is_empty());
    }

    #[test]
    fn commands_answered_before_the_log_was_reordered_are_still_answered_from_it() {
        // Given a store of schema 6, where the log was keyed by station and request_id
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &super::super::MIGRATIONS[..6] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 6).unwrap();
            for (request_id, at) in [("r2", "2026-11-22T07:00:00Z"), ("r1", "2026-11-21T07:00:00Z")] {
                conn.execute(
                    "INSERT INTO command_log (request_id, station, action, operator, received_at, clock_synced, ok, \
                     reply) VALUES (?1, 'ws-1', 'register-mo', 'ana', ?2, 1, 1, ?3)",
                    params![request_id, at, format!("{{\"request_id\":\"{request_id}\"}}")],
                )
                .unwrap();
            }
        }
        // When the agent opens it and a panel repeats one of them
        let mut db = super::super::open(&path).unwrap();
        let again = exactly_once(&mut db, &entry("r2"), &[MoRef::Id(1)], |_| {
            unreachable!("answered before")
        })
        .unwrap();
        // Then it gets the stored reply, and the log holds both in the order they came
        assert_eq!(
            (again.reply.as_str(), again.replayed),
            ("{\"request_id\":\"r2\"}", true)
        );
        let order: Vec<String> =
            db.0.prepare("SELECT request_id FROM command_log ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(order, ["r1", "r2"]);
    }
}
