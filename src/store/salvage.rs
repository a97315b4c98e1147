//! Reading operator data out of a damaged database that was kept aside: every MO with
//! something an operator recorded, as far as the file can still be read. Read-only; the damaged
//! file is never written.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::mo::{no_operator_data_sql, PROTECTED_COLUMNS};
use super::StoreError;
use crate::mo::Protected;

/// One MO's operator data, as the damaged file still holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Salvaged {
    pub id: i64,
    pub name: Option<String>,
    pub protected: Protected,
    pub operator: Option<String>,
    pub station: Option<String>,
    pub operator_updated_at: Option<String>,
}

/// What could be read, and where reading failed.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Salvage {
    pub mos: Vec<Salvaged>,
    pub damage: Vec<String>,
}

/// How far to jump past an id whose page cannot be read, at most.
const MAX_SKIP: i64 = 1 << 20;
/// After damage, the ids just past it are tried one by one (a point lookup may reach a sound
/// page that a range scan through the damaged one cannot), this many.
const ONE_BY_ONE: i64 = 256;

pub(crate) fn operator_data(path: &Path) -> Result<Salvage, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(open_err)?;
    let columns = PROTECTED_COLUMNS.join(", ");
    let sql = format!(
        "SELECT id, name, {columns}, operator, station, operator_updated_at FROM mo \
         WHERE id > ?1 AND NOT ({}) ORDER BY id LIMIT 1",
        no_operator_data_sql()
    );
    let point = format!(
        "SELECT id, name, {columns}, operator, station, operator_updated_at FROM mo WHERE id = ?1 AND NOT ({})",
        no_operator_data_sql()
    );
    let mut salvage = Salvage::default();
    let mut after = i64::MIN;
    let mut skip = 1;
    loop {
        match one(&conn, &sql, after) {
            Ok(Some(row)) => {
                after = row.id;
                skip = 1;
                salvage.mos.push(row);
            }
            Ok(None) => break,
            Err(e) => {
                // A damaged page: note it, try the next ids one by one, then step past the ids
                // it may hold, further each time.
                salvage.damage.push(format!("after MO {after}: {e}"));
                if skip > MAX_SKIP || salvage.damage.len() > 64 {
                    break;
                }
                let start = after.max(0);
                let mut unreadable = 0;
                for id in start.saturating_add(1)..=start.saturating_add(ONE_BY_ONE) {
                    match one(&conn, &point, id) {
                        Ok(Some(row)) => salvage.mos.push(row),
                        Ok(None) => {}
                        Err(_) => unreadable += 1,
                    }
                }
                if unreadable > 0 {
                    salvage.damage.push(format!(
                        "{unreadable} of MOs {}..={} unreadable one by one",
                        start.saturating_add(1),
                        start.saturating_add(ONE_BY_ONE)
                    ));
                }
                after = start.saturating_add(ONE_BY_ONE).max(after.saturating_add(skip));
                skip *= 4;
            }
        }
    }
    Ok(salvage)
}

/// The row `sql` finds for `key`, read leniently: a damaged file may hold a value of the wrong
/// type, which reads as text (or as nothing).
fn one(conn: &Connection, sql: &str, key: i64) -> rusqlite::Result<Option<Salvaged>> {
    conn.prepare_cached(sql)?
        .query_row([key], |r| {
            let text = |i: usize| -> rusqlite::Result<Option<String>> {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                    rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                })
            };
            let column = |name: &str| {
                2 + PROTECTED_COLUMNS
                    .iter()
                    .position(|c| *c == name)
                    .expect("a protected column")
            };
            let protected = Protected {
                auth_first: text(column("auth_first"))?,
                auth_last: text(column("auth_last"))?,
                leader_id: text(column("leader_id"))?,
                roll_number: text(column("roll_number"))?,
                ready_for_production: text(column("ready_for_production"))?
                    .is_some_and(|v| !matches!(v.trim(), "" | "0" | "0.0" | "false")),
                date_start: text(column("date_start"))?,
                date_finished: text(column("date_finished"))?,
                line: text(column("line"))?,
            };
            let n = PROTECTED_COLUMNS.len();
            Ok(Salvaged {
                id: r.get(0)?,
                name: text(1)?,
                protected,
                operator: text(2 + n)?,
                station: text(3 + n)?,
                operator_updated_at: text(4 + n)?,
            })
        })
        .optional()
}
