//! Reading operator data out of a damaged database that was kept aside: every MO with
//! something an operator recorded, as far as the file can still be read. Read-only; the damaged
//! file is never written.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::mo::{no_operator_data_sql, PROTECTED_COLUMNS};
use super::StoreError;

/// One MO's operator data, as the damaged file still holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Salvaged {
    pub id: i64,
    pub name: Option<String>,
    /// The protected columns by name.
    pub protected: serde_json::Map<String, serde_json::Value>,
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
    let mut salvage = Salvage::default();
    let mut after = i64::MIN;
    let mut skip = 1;
    loop {
        match next(&conn, &sql, after) {
            Ok(Some(row)) => {
                after = row.id;
                skip = 1;
                salvage.mos.push(row);
            }
            Ok(None) => break,
            Err(e) => {
                // A damaged page: note it and step past the ids it may hold, further each time.
                salvage.damage.push(format!("after MO {after}: {e}"));
                if skip > MAX_SKIP || salvage.damage.len() > 64 {
                    break;
                }
                after = after.saturating_add(skip).max(0);
                skip *= 4;
            }
        }
    }
    Ok(salvage)
}

fn next(conn: &Connection, sql: &str, after: i64) -> rusqlite::Result<Option<Salvaged>> {
    conn.prepare_cached(sql)?
        .query_row([after], |r| {
            let mut protected = serde_json::Map::new();
            for (i, column) in PROTECTED_COLUMNS.iter().enumerate() {
                let value = match r.get_ref(2 + i)? {
                    rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                    rusqlite::types::ValueRef::Integer(n) => n.into(),
                    rusqlite::types::ValueRef::Real(x) => x.into(),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).into_owned().into()
                    }
                };
                protected.insert(column.to_string(), value);
            }
            let n = PROTECTED_COLUMNS.len();
            Ok(Salvaged {
                id: r.get(0)?,
                name: r.get(1)?,
                protected,
                operator: r.get(2 + n)?,
                station: r.get(3 + n)?,
                operator_updated_at: r.get(4 + n)?,
            })
        })
        .optional()
}
