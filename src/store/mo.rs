//! SQL for the `mo` table. The sync writes through [`apply_page`], whose SQL is generated from
//! [`UPSTREAM_COLUMNS`] alone; operators write through [`write_protected`], whose SQL names
//! [`PROTECTED_COLUMNS`] alone and which only a command's transaction reaches. Neither can
//! reach the other's columns. Phases in SQL are rendered from `mo::PHASES`, the purge's "no
//! operator data" from `Protected::default()`.

use std::collections::HashSet;
use std::sync::OnceLock;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::{Db, StoreError};
use crate::mo::{Audit, Mark, MoRow, Phase, Protected, UpstreamMo, PHASES};

/// Every column the sync owns, besides the key `id`. The length ties it to [`upstream_values`].
pub(crate) const UPSTREAM_COLUMNS: [&str; 18] = [
    "name",
    "state",
    "product_id",
    "product_name",
    "uom",
    "product_qty",
    "qty_producing",
    "origin",
    "create_date",
    "write_date",
    "planned_start",
    "planned_finish",
    "date_deadline",
    "transfer_id",
    "transfer_name",
    "group_worker",
    "note",
    "initial_qty_target",
];

/// Upstream columns that keep their value when a sync finds none (the seed's COALESCE): a
/// transfer that is no longer found is still the MO's transfer.
const KEEP_WHEN_MISSING: [&str; 2] = ["transfer_id", "transfer_name"];

/// Every column operators own. Only [`write_protected`] writes them. The length ties it to
/// [`protected_values`].
pub(crate) const PROTECTED_COLUMNS: [&str; 8] = [
    "auth_first",
    "auth_last",
    "leader_id",
    "roll_number",
    "ready_for_production",
    "date_start",
    "date_finished",
    "line",
];

fn protected_values(p: &Protected) -> [Value; 8] {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    [
        text(&p.auth_first),
        text(&p.auth_last),
        text(&p.leader_id),
        text(&p.roll_number),
        Value::Integer(p.ready_for_production.into()),
        text(&p.date_start),
        text(&p.date_finished),
        text(&p.line),
    ]
}

/// SQL that holds for a row no operator has written to: every protected column as
/// `Protected::default()` leaves it.
pub(super) fn no_operator_data_sql() -> String {
    let unset = protected_values(&Protected::default());
    PROTECTED_COLUMNS
        .iter()
        .zip(unset)
        .map(|(c, v)| match v {
            Value::Null => format!("{c} IS NULL"),
            Value::Integer(n) => format!("{c} = {n}"),
            other => unreachable!("an unset protected column is NULL or a number, not {other:?}"),
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A mark as SQL over the protected columns.
fn mark_sql(mark: Mark) -> &'static str {
    match mark {
        Mark::Finished => "date_finished IS NOT NULL",
        Mark::Started => "date_start IS NOT NULL",
        Mark::Registered => "ready_for_production",
        Mark::None => "1",
    }
}

/// The rows in `phase`: its mark and none of the marks before it in [`PHASES`].
fn phase_sql(phase: Phase) -> String {
    let mut terms = Vec::new();
    for (mark, p) in PHASES {
        if p == phase {
            terms.push(mark_sql(mark).to_string());
            break;
        }
        terms.push(format!("NOT ({})", mark_sql(mark)));
    }
    terms.join(" AND ")
}

/// `CASE … END`: the phase of a row, by name.
pub(super) fn phase_case_sql() -> String {
    let whens: Vec<String> = PHASES
        .iter()
        .map(|(mark, phase)| format!("WHEN {} THEN '{}'", mark_sql(*mark), phase.as_str()))
        .collect();
    format!("CASE {} END", whens.join(" "))
}

/// Open MOs in `phase`, as panels and line displays list them: waiting and ready ones only
/// while Odoo still has them open; a running one until it ends on the floor.
fn open_in_phase_sql(phase: Phase) -> String {
    match phase {
        Phase::Waiting => format!("{} AND gone_at IS NULL", phase_sql(phase)),
        // Ready and running MOs are on the floor: the index of those (migration 0009) serves
        // their queries when its condition stands in them as it is written there.
        Phase::Ready => format!("{ON_FLOOR} AND {} AND gone_at IS NULL", phase_sql(phase)),
        Phase::Running => format!("{ON_FLOOR} AND {}", phase_sql(phase)),
        Phase::Finished => phase_sql(phase),
    }
}

/// Registered or running, not finished: the condition of the index `mo_on_floor`, word for word.
const ON_FLOOR: &str = "date_finished IS NULL AND (ready_for_production OR date_start IS NOT NULL)";

fn upstream_values(m: &UpstreamMo) -> [Value; 18] {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    [
        Value::Text(m.name.clone()),
        Value::Text(m.state.clone()),
        m.product_id.map_or(Value::Null, Value::Integer),
        text(&m.product_name),
        text(&m.uom),
        Value::Real(m.product_qty),
        Value::Real(m.qty_producing),
        text(&m.origin),
        text(&m.create_date),
        Value::Text(m.write_date.clone()),
        text(&m.planned_start),
        text(&m.planned_finish),
        text(&m.date_deadline),
        m.transfer_id.map_or(Value::Null, Value::Integer),
        text(&m.transfer_name),
        text(&m.group_worker),
        text(&m.note),
        m.initial_qty_target.map_or(Value::Null, Value::Real),
    ]
}

/// The sync's upsert. It updates a row only when an upstream value differs (or the MO comes
/// back into the domain), so an unchanged MO costs a read and no write.
fn upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let n = UPSTREAM_COLUMNS.len();
        let columns = UPSTREAM_COLUMNS.join(", ");
        let placeholders: Vec<String> = (2..=n + 1).map(|i| format!("?{i}")).collect();
        let new_value = |c: &str| {
            if KEEP_WHEN_MISSING.contains(&c) {
                format!("COALESCE(excluded.{c}, mo.{c})")
            } else {
                format!("excluded.{c}")
            }
        };
        let sets: Vec<String> = UPSTREAM_COLUMNS
            .iter()
            .map(|c| format!("{c} = {}", new_value(c)))
            .collect();
        let differs: Vec<String> = UPSTREAM_COLUMNS
            .iter()
            .map(|c| format!("mo.{c} IS NOT {}", new_value(c)))
            .collect();
        format!(
            "INSERT INTO mo (id, {columns}, synced_at) VALUES (?1, {}, ?{}) \
             ON CONFLICT (id) DO UPDATE SET {}, synced_at = excluded.synced_at, gone_at = NULL \
             WHERE {} OR mo.gone_at IS NOT NULL",
            placeholders.join(", "),
            n + 2,
            sets.join(", "),
            differs.join(" OR "),
        )
    })
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PageCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Ids of the MOs inserted or updated, for the displays.
    pub(crate) changed: Vec<i64>,
}

impl std::ops::AddAssign for PageCounts {
    fn add_assign(&mut self, o: PageCounts) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.changed.extend(o.changed);
    }
}

/// Writes one page of upstream MOs, plus the sync state that goes with it, in one transaction:
/// a page is either wholly applied with its cursor or not at all.
pub(crate) fn apply_page(
    db: &mut Db,
    rows: &[UpstreamMo],
    state: &[(&str, &str, String)],
    now: &str,
) -> Result<PageCounts, StoreError> {
    let conn = &mut db.0;
    let tx = conn.transaction()?;
    let mut counts = PageCounts::default();
    {
        let mut exists = tx.prepare_cached("SELECT 1 FROM mo WHERE id = ?1")?;
        let mut upsert = tx.prepare_cached(upsert_sql())?;
        for row in rows {
            let existed = exists.exists([row.id])?;
            let mut values = Vec::with_capacity(UPSTREAM_COLUMNS.len() + 2);
            values.push(Value::Integer(row.id));
            values.extend(upstream_values(row));
            values.push(Value::Text(now.to_string()));
            let changed = upsert.execute(rusqlite::params_from_iter(values))? > 0;
            match (existed, changed) {
                (false, _) => counts.inserted += 1,
                (true, true) => counts.updated += 1,
                (true, false) => counts.unchanged += 1,
            }
            if changed {
                counts.changed.push(row.id);
            }
        }
    }
    for (source, key, value) in state {
        super::sync::put_state(&tx, source, key, value)?;
    }
    tx.commit()?;
    Ok(counts)
}

/// Marks every MO not in `present` as gone (kept with its operator data), and returns their ids.
pub(crate) fn mark_gone(db: &mut Db, present: &HashSet<i64>, now: &str) -> Result<Vec<i64>, StoreError> {
    let conn = &mut db.0;
    let tx = conn.transaction()?;
    let gone: Vec<i64> = {
        let mut stmt = tx.prepare("SELECT id FROM mo WHERE gone_at IS NULL")?;
        let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        ids.filter(|id| id.as_ref().map_or(true, |id| !present.contains(id)))
            .collect::<Result<_, _>>()?
    };
    {
        let mut update = tx.prepare("UPDATE mo SET gone_at = ?2 WHERE id = ?1")?;
        for id in &gone {
            update.execute(params![id, now])?;
        }
    }
    tx.commit()?;
    Ok(gone)
}

/// (id, write_date) of every MO not marked gone: the reconcile compares them with Odoo's.
pub(crate) fn present_write_dates(db: &Db) -> Result<Vec<(i64, String)>, StoreError> {
    let conn = &db.0;
    const SQL: &str = "SELECT id, write_date FROM mo WHERE gone_at IS NULL ORDER BY id";
    let mut stmt = conn.prepare_cached(SQL)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Ids of MOs not marked gone that have no transfer yet: the reconcile looks for one.
pub(crate) fn present_without_transfer(db: &Db) -> Result<Vec<i64>, StoreError> {
    let conn = &db.0;
    const SQL: &str = "SELECT id FROM mo WHERE gone_at IS NULL AND transfer_id IS NULL ORDER BY id";
    let mut stmt = conn.prepare_cached(SQL)?;
    let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Deletes MOs gone before `cutoff` that hold no operator data or were finished before it.
pub(crate) fn purge(db: &mut Db, cutoff: &str) -> Result<Vec<i64>, StoreError> {
    let conn = &mut db.0;
    let sql = format!(
        "DELETE FROM mo WHERE gone_at IS NOT NULL AND gone_at < ?1 AND (({}) OR date_finished < ?1) RETURNING id",
        no_operator_data_sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let ids = stmt.query_map([cutoff], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Writes an MO's protected columns, with who wrote them; false when no such MO exists. Only
/// a command's own transaction calls this ([`super::command::exactly_once`]).
pub(super) fn write_protected(tx: &Transaction, id: i64, p: &Protected, audit: &Audit) -> Result<bool, StoreError> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let sets: Vec<String> = PROTECTED_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 2))
            .collect();
        let n = PROTECTED_COLUMNS.len();
        format!(
            "UPDATE mo SET {}, operator_updated_at = ?{}, operator = ?{}, station = ?{}, clock_synced = ?{} WHERE id = ?1",
            sets.join(", "),
            n + 2,
            n + 3,
            n + 4,
            n + 5
        )
    });
    let audit_values = [
        Value::Text(audit.at.clone()),
        audit.operator.clone().map_or(Value::Null, Value::Text),
        Value::Text(audit.station.clone()),
        Value::Integer(audit.clock_synced.into()),
    ];
    let values = std::iter::once(Value::Integer(id))
        .chain(protected_values(p))
        .chain(audit_values);
    let n = tx.prepare_cached(sql)?.execute(rusqlite::params_from_iter(values))?;
    Ok(n > 0)
}

const SELECT_ROW: &str = "SELECT id, name, state, product_id, product_name, uom, product_qty, qty_producing, \
    origin, create_date, write_date, planned_start, planned_finish, date_deadline, transfer_id, transfer_name, \
    group_worker, note, initial_qty_target, auth_first, auth_last, leader_id, roll_number, ready_for_production, \
    date_start, date_finished, synced_at, gone_at, line, operator, station, operator_updated_at, clock_synced FROM mo";

fn read_row(r: &Row) -> rusqlite::Result<MoRow> {
    let protected = Protected {
        auth_first: r.get(19)?,
        auth_last: r.get(20)?,
        leader_id: r.get(21)?,
        roll_number: r.get(22)?,
        ready_for_production: r.get(23)?,
        date_start: r.get(24)?,
        date_finished: r.get(25)?,
        line: r.get(28)?,
    };
    Ok(MoRow {
        upstream: UpstreamMo {
            id: r.get(0)?,
            name: r.get(1)?,
            state: r.get(2)?,
            product_id: r.get(3)?,
            product_name: r.get(4)?,
            uom: r.get(5)?,
            product_qty: r.get(6)?,
            qty_producing: r.get(7)?,
            origin: r.get(8)?,
            create_date: r.get(9)?,
            write_date: r.get(10)?,
            planned_start: r.get(11)?,
            planned_finish: r.get(12)?,
            date_deadline: r.get(13)?,
            transfer_id: r.get(14)?,
            transfer_name: r.get(15)?,
            group_worker: r.get(16)?,
            note: r.get(17)?,
            initial_qty_target: r.get(18)?,
        },
        phase: protected.phase(),
        protected,
        synced_at: r.get(26)?,
        gone_at: r.get(27)?,
        last_write: match (r.get::<_, Option<String>>(30)?, r.get::<_, Option<String>>(31)?) {
            (Some(station), Some(at)) => Some(Audit {
                operator: r.get(29)?,
                station,
                at,
                clock_synced: r.get::<_, Option<bool>>(32)?.unwrap_or(false),
            }),
            _ => None,
        },
    })
}

pub fn get(db: &Db, id: i64) -> Result<Option<MoRow>, StoreError> {
    row(&db.0, id)
}

pub(super) fn row(conn: &Connection, id: i64) -> Result<Option<MoRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_ROW} WHERE id = ?1"))?;
    Ok(stmt.query_row([id], read_row).optional()?)
}

/// The MO currently called `name` (names move on backorder; a gone MO may share an old name).
pub fn get_by_name(db: &Db, name: &str) -> Result<Option<MoRow>, StoreError> {
    row_by_name(&db.0, name)
}

pub(super) fn row_by_name(conn: &Connection, name: &str) -> Result<Option<MoRow>, StoreError> {
    let sql = format!("{SELECT_ROW} WHERE name = ?1 ORDER BY gone_at IS NOT NULL, id DESC LIMIT 1");
    Ok(conn.prepare_cached(&sql)?.query_row([name], read_row).optional()?)
}

/// Rows matching a `WHERE …` tail (with its ORDER BY / LIMIT), for the queries below.
fn select(conn: &Connection, tail: &str, params: impl rusqlite::Params) -> Result<Vec<MoRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_ROW} {tail}"))?;
    let rows = stmt.query_map(params, read_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn get_many(db: &Db, ids: &[i64]) -> Result<Vec<MoRow>, StoreError> {
    let conn = &db.0;
    let mut rows = Vec::with_capacity(ids.len());
    for &id in ids {
        rows.extend(row(conn, id)?);
    }
    Ok(rows)
}

pub(crate) fn all_ids(db: &Db) -> Result<Vec<i64>, StoreError> {
    let conn = &db.0;
    let mut stmt = conn.prepare_cached("SELECT id FROM mo ORDER BY id")?;
    let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Most MOs a list for a panel or a line display holds.
pub(crate) const LIST_LIMIT: u32 = 200;

/// MOs a line's view shows of those it ended last.
pub(crate) const ENDED_SHOWN: u32 = 3;
/// An ended MO on a line, as the index `mo_ended` has it, word for word.
const ENDED_ON_A_LINE: &str = "date_finished IS NOT NULL AND line IS NOT NULL";

/// Lines that have something running or registered for them, or ended something still in the
/// store.
pub(crate) fn lines(db: &Db) -> Result<Vec<String>, StoreError> {
    let conn = &db.0;
    let sql = format!(
        "SELECT line FROM mo WHERE {ON_FLOOR} AND line IS NOT NULL AND (({}) OR ({})) \
         UNION SELECT line FROM mo WHERE {ENDED_ON_A_LINE} ORDER BY line",
        open_in_phase_sql(Phase::Running),
        open_in_phase_sql(Phase::Ready)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let lines = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(lines)
}

/// What a line's display shows.
#[derive(Debug, Default)]
pub(crate) struct LineView {
    pub(crate) running: Vec<MoRow>,
    /// Registered for the line, or for no line.
    pub(crate) ready: Vec<MoRow>,
    /// The MOs it ended last, the last first.
    pub(crate) ended: Vec<MoRow>,
}

/// What runs on `line`, what is ready next for it (registered for it, or for no line), and
/// what it ended last.
pub(crate) fn line_view(db: &Db, line: &str) -> Result<LineView, StoreError> {
    let conn = &db.0;
    let running = select(
        conn,
        &format!(
            "WHERE line = ?1 AND {} ORDER BY date_start, id",
            open_in_phase_sql(Phase::Running)
        ),
        [line],
    )?;
    let ready = select(
        conn,
        &format!(
            "WHERE (line = ?1 OR line IS NULL) AND {} ORDER BY planned_start, id LIMIT {LIST_LIMIT}",
            open_in_phase_sql(Phase::Ready)
        ),
        [line],
    )?;
    let ended = select(
        conn,
        &format!("WHERE {ENDED_ON_A_LINE} AND line = ?1 ORDER BY date_finished DESC, id DESC LIMIT {ENDED_SHOWN}"),
        [line],
    )?;
    Ok(LineView { running, ready, ended })
}

/// Open MOs in a phase (waiting, ready or running), optionally for one line; at most
/// [`LIST_LIMIT`], the earliest planned first.
pub(crate) fn in_phase(db: &Db, phase: Phase, line: Option<&str>) -> Result<Vec<MoRow>, StoreError> {
    let conn = &db.0;
    let condition = open_in_phase_sql(phase);
    let line_filter = match (phase, line) {
        (_, None) => "?1 IS NULL",
        (Phase::Ready | Phase::Waiting, Some(_)) => "(line = ?1 OR line IS NULL)",
        (_, Some(_)) => "line = ?1",
    };
    select(
        conn,
        &format!("WHERE {condition} AND {line_filter} ORDER BY planned_start, id LIMIT {LIST_LIMIT}"),
        [line],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn conn() -> Db {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::configure(&conn).unwrap();
        super::super::migrate(&mut conn, std::path::Path::new(":memory:")).unwrap();
        Db(conn)
    }

    /// What a command's transaction writes.
    fn set_protected(db: &mut Db, id: i64, p: &Protected, audit: &Audit) -> Result<bool, StoreError> {
        super::super::durable(&mut db.0, |tx| write_protected(tx, id, p, audit))
    }

    fn audit() -> Audit {
        Audit {
            operator: Some("op".into()),
            station: "ws1".into(),
            at: "t".into(),
            clock_synced: true,
        }
    }

    fn upstream(id: i64, state: &str, write_date: &str) -> UpstreamMo {
        UpstreamMo {
            state: state.into(),
            write_date: write_date.into(),
            ..UpstreamMo::example(id)
        }
    }

    #[test]
    fn the_floors_lists_use_the_index_of_the_mos_on_the_floor() {
        let db = conn();
        let plan = |sql: &str| -> String {
            let mut stmt = db.0.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let line = "'L1'";
        for (what, sql) in [
            (
                "lines",
                format!(
                    "SELECT DISTINCT line FROM mo WHERE {ON_FLOOR} AND line IS NOT NULL AND (({}) OR ({}))",
                    open_in_phase_sql(Phase::Running),
                    open_in_phase_sql(Phase::Ready)
                ),
            ),
            (
                "running",
                format!(
                    "SELECT id FROM mo WHERE line = {line} AND {}",
                    open_in_phase_sql(Phase::Running)
                ),
            ),
            (
                "ready",
                format!(
                    "SELECT id FROM mo WHERE (line = {line} OR line IS NULL) AND {}",
                    open_in_phase_sql(Phase::Ready)
                ),
            ),
            (
                "ended",
                format!("SELECT id FROM mo WHERE {ENDED_ON_A_LINE} AND line = {line} ORDER BY date_finished DESC"),
            ),
            (
                "lines that ended",
                format!("SELECT line FROM mo WHERE {ENDED_ON_A_LINE}"),
            ),
        ] {
            let plan = plan(&sql);
            assert!(
                plan.contains("mo_on_floor") || plan.contains("mo_ended"),
                "{what}: {plan}"
            );
        }
    }

    #[test]
    fn sync_sql_names_no_protected_column() {
        let identifiers: Vec<&str> = upsert_sql()
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        for column in PROTECTED_COLUMNS.iter().chain(&["operator", "station", "clock_synced"]) {
            assert!(!identifiers.contains(column), "{column} in {}", upsert_sql());
            assert!(!UPSTREAM_COLUMNS.contains(column));
        }
    }

    #[test]
    fn unchanged_rows_are_not_rewritten() {
        let mut conn = conn();
        let rows = vec![
            upstream(1, "confirmed", "2026-11-22 01:00:00"),
            upstream(2, "confirmed", "2026-11-22 01:00:00"),
        ];
        let first = apply_page(&mut conn, &rows, &[], "t1").unwrap();
        assert_eq!(
            (first.inserted, first.updated, first.unchanged, first.changed),
            (2, 0, 0, vec![1, 2])
        );
        let before = conn.0.total_changes();
        let again = apply_page(&mut conn, &rows, &[], "t2").unwrap();
        assert_eq!(
            (again.inserted, again.updated, again.unchanged, again.changed),
            (0, 0, 2, vec![])
        );
        assert_eq!(conn.0.total_changes(), before, "an unchanged page must write nothing");
        assert_eq!(get(&conn, 1).unwrap().unwrap().synced_at, "t1");
    }

    #[test]
    fn transfer_is_kept_when_a_sync_finds_none() {
        let mut conn = conn();
        let mut row = upstream(1, "confirmed", "2026-11-22 01:00:00");
        row.transfer_id = Some(7);
        row.transfer_name = Some("WH/OUT/00007".into());
        apply_page(&mut conn, &[row.clone()], &[], "t1").unwrap();
        row.transfer_id = None;
        row.transfer_name = None;
        row.state = "progress".into();
        apply_page(&mut conn, &[row], &[], "t2").unwrap();
        let stored = get(&conn, 1).unwrap().unwrap();
        assert_eq!(stored.upstream.state, "progress");
        assert_eq!(stored.upstream.transfer_id, Some(7));
        assert_eq!(stored.upstream.transfer_name.as_deref(), Some("WH/OUT/00007"));
    }

    #[test]
    fn gone_rows_keep_operator_data_until_finished_and_old() {
        let mut conn = conn();
        apply_page(
            &mut conn,
            &[upstream(1, "confirmed", "a"), upstream(2, "confirmed", "a")],
            &[],
            "t",
        )
        .unwrap();
        let started = Protected {
            ready_for_production: true,
            date_start: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        };
        set_protected(&mut conn, 1, &started, &audit()).unwrap();
        let gone = mark_gone(&mut conn, &HashSet::new(), "2026-01-02T00:00:00Z").unwrap();
        assert_eq!(gone, vec![1, 2]);
        // Only the MO without operator data goes; the running one stays however old.
        assert_eq!(purge(&mut conn, "2026-02-01T00:00:00Z").unwrap(), vec![2]);
        let finished = Protected {
            date_finished: Some("2026-01-03T00:00:00Z".into()),
            ..started
        };
        set_protected(&mut conn, 1, &finished, &audit()).unwrap();
        assert_eq!(purge(&mut conn, "2026-01-02T12:00:00Z").unwrap(), Vec::<i64>::new());
        assert_eq!(purge(&mut conn, "2026-02-01T00:00:00Z").unwrap(), vec![1]);
    }

    #[test]
    fn a_gone_mo_that_returns_is_present_again() {
        let mut conn = conn();
        apply_page(&mut conn, &[upstream(1, "confirmed", "a")], &[], "t").unwrap();
        mark_gone(&mut conn, &HashSet::new(), "g").unwrap();
        assert!(get(&conn, 1).unwrap().unwrap().gone_at.is_some());
        let counts = apply_page(&mut conn, &[upstream(1, "confirmed", "a")], &[], "t2").unwrap();
        assert_eq!(counts.updated, 1);
        assert_eq!(get(&conn, 1).unwrap().unwrap().gone_at, None);
    }

    #[test]
    fn the_reconcile_sees_write_dates_and_missing_transfers_of_present_mos_only() {
        // Given two present MOs, one with a transfer, and a gone one
        let mut conn = conn();
        let mut linked = upstream(2, "confirmed", "b");
        linked.transfer_id = Some(7);
        let rows = [upstream(1, "confirmed", "a"), linked, upstream(3, "confirmed", "c")];
        apply_page(&mut conn, &rows, &[], "t").unwrap();
        mark_gone(&mut conn, &HashSet::from([1, 2]), "g").unwrap();
        // Then the gone one is in neither list, and only the one without a transfer needs one
        assert_eq!(
            present_write_dates(&conn).unwrap(),
            vec![(1, "a".to_string()), (2, "b".to_string())]
        );
        assert_eq!(present_without_transfer(&conn).unwrap(), vec![1]);
    }

    fn phase_in_sql(db: &Db, id: i64) -> String {
        db.0.query_row(
            &format!("SELECT {} FROM mo WHERE id = ?1", phase_case_sql()),
            [id],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Sync(Vec<(i64, u8)>),
        Operator(i64, Protected),
    }

    fn protected_strategy() -> impl Strategy<Value = Protected> {
        let text = || proptest::option::of("[0-9]{1,6}");
        (text(), text(), text(), text(), any::<bool>(), text(), text(), text()).prop_map(|(a, b, c, d, e, f, g, h)| {
            Protected {
                auth_first: a,
                auth_last: b,
                leader_id: c,
                roll_number: d,
                ready_for_production: e,
                date_start: f,
                date_finished: g,
                line: h,
            }
        })
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec((1i64..6, 0u8..4), 0..6).prop_map(Op::Sync),
            (1i64..6, protected_strategy()).prop_map(|(id, p)| Op::Operator(id, p)),
        ]
    }

    proptest! {
        /// The store's SQL and `Protected::phase` read the one phase table alike, and the
        /// purge's "no operator data" is exactly `Protected::default()`.
        #[test]
        fn phases_and_operator_data_mean_the_same_in_sql(p in protected_strategy()) {
            let mut db = conn();
            apply_page(&mut db, &[upstream(1, "confirmed", "a")], &[], "t").unwrap();
            set_protected(&mut db, 1, &p, &audit()).unwrap();
            prop_assert_eq!(phase_in_sql(&db, 1), p.phase().as_str());
            for phase in [Phase::Waiting, Phase::Ready, Phase::Running, Phase::Finished] {
                let listed = in_phase(&db, phase, None).unwrap().len() == 1;
                prop_assert_eq!(listed, p.phase() == phase, "{:?}", phase);
            }
            mark_gone(&mut db, &HashSet::new(), "2026-01-01T00:00:00Z").unwrap();
            // Gone long ago, with a finish (if any) after the cutoff: purged only without operator data.
            let purged = !purge(&mut db, "2026-01-02T00:00:00Z").unwrap().is_empty();
            let finished_before = p.date_finished.as_deref().is_some_and(|d| d < "2026-01-02T00:00:00Z");
            prop_assert_eq!(purged, p == Protected::default() || finished_before);
        }

        /// Whatever the interleaving of sync pages and operator writes, an MO's protected values
        /// are the ones its operator wrote last, and its upstream values the ones synced last.
        #[test]
        fn protected_values_are_always_the_operators_last_write(ops in proptest::collection::vec(op_strategy(), 1..40)) {
            let mut conn = conn();
            let states = ["confirmed", "progress", "to_close", "done"];
            let mut last_operator: std::collections::HashMap<i64, Protected> = Default::default();
            let mut last_state: std::collections::HashMap<i64, &str> = Default::default();
            for (n, op) in ops.iter().enumerate() {
                match op {
                    Op::Sync(batch) => {
                        let rows: Vec<UpstreamMo> = batch.iter().map(|&(id, s)| {
                            upstream(id, states[s as usize], &format!("2026-11-22 01:00:{:02}", n % 60))
                        }).collect();
                        apply_page(&mut conn, &rows, &[], "t").unwrap();
                        for &(id, s) in batch { last_state.insert(id, states[s as usize]); }
                    }
                    Op::Operator(id, p) => {
                        let exists = set_protected(&mut conn, *id, p, &audit()).unwrap();
                        prop_assert_eq!(exists, last_state.contains_key(id));
                        if exists { last_operator.insert(*id, p.clone()); }
                    }
                }
            }
            for (id, state) in last_state {
                let row = get(&conn, id).unwrap().unwrap();
                prop_assert_eq!(row.upstream.state.as_str(), state);
                prop_assert_eq!(row.protected, last_operator.get(&id).cloned().unwrap_or_default());
            }
        }
    }
}
