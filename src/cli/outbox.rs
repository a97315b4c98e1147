//! `linegate outbox`: the operator results waiting for Odoo, for the person who looks after
//! them — what waits and why, a retry once the reason is gone, a drop when Odoo must never get
//! one (asked twice, and logged in full).

use std::fmt::Write;

use super::{ConfigFile, EXIT_FAILURE};
use crate::mo::result::FloorResult;
use crate::store;
use crate::store::outbox::{DropOutcome, Listed};

/// Prints every result not yet in Odoo, oldest first.
pub async fn list(config: &ConfigFile, json: bool) -> u8 {
    let config = match config.config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let path = config.store.path.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<_, store::sync::ReadOnlyError> {
        let db = store::sync::open_read_only(&path)?;
        Ok(store::outbox::results(&db)?)
    })
    .await
    .expect("the outbox read does not panic");
    match read {
        Ok(results) if json => {
            println!("{}", serde_json::to_string_pretty(&results).expect("results serialize"));
            0
        }
        Ok(results) => {
            print!("{}", render(&results));
            0
        }
        Err(e) => {
            eprintln!("linegate: {e}");
            EXIT_FAILURE
        }
    }
}

fn render(results: &[Listed]) -> String {
    let mut out = String::new();
    if results.is_empty() {
        let _ = writeln!(out, "Odoo has every result.");
        return out;
    }
    for r in results {
        let what = serde_json::from_str::<FloorResult>(&r.payload)
            .map(|f| format!("{} {}", f.name, f.happened.as_str()))
            .unwrap_or_else(|_| "(unreadable)".into());
        let state = match (&r.parked, &r.last_error) {
            (Some(why), _) => format!("PARKED: {why}"),
            (None, Some(error)) => format!("retrying at {}: {error}", r.next_at),
            (None, None) => "waiting for Odoo".into(),
        };
        let _ = writeln!(
            out,
            "{:>6}  MO {:<6} {what:<32} queued {}  {} attempts  {state}",
            r.id,
            r.mo.map_or("?".into(), |m| m.to_string()),
            r.created_at,
            r.attempts
        );
    }
    let parked = results.iter().filter(|r| r.parked.is_some()).count();
    if parked > 0 {
        let _ = writeln!(
            out,
            "{parked} parked: mend the reason, then `linegate outbox retry ID` (or --all)"
        );
    }
    out
}

/// Makes parked results due again (`ids`; every parked one when None).
pub async fn retry(config: &ConfigFile, ids: Option<Vec<i64>>) -> u8 {
    let config = match config.config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let path = config.store.path.clone();
    let wanted = ids.as_ref().map(Vec::len);
    let done = tokio::task::spawn_blocking(move || -> Result<u64, store::StoreError> {
        let db = store::open(&path)?;
        let now = crate::clock::format_rfc3339(crate::clock::now_unix());
        store::outbox::unpark(&db, ids.as_deref(), &now)
    })
    .await
    .expect("the retry does not panic");
    match done {
        Ok(n) => {
            println!("{n} results due again; the agent tries them within a minute");
            if wanted.is_some_and(|w| w as u64 > n) {
                eprintln!("linegate: some of those ids are not parked results (see `linegate outbox list`)");
                return EXIT_FAILURE;
            }
            0
        }
        Err(e) => {
            eprintln!("linegate: {e}");
            EXIT_FAILURE
        }
    }
}

/// Drops one parked result, with `yes` only; it is logged in full and counted.
pub async fn drop(config: &ConfigFile, id: i64, yes: bool) -> u8 {
    let config = match config.config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    if !yes {
        eprintln!("linegate: dropping result {id} means Odoo never gets it; say --yes to drop it");
        return EXIT_FAILURE;
    }
    let path = config.store.path.clone();
    let dropped = tokio::task::spawn_blocking(move || -> Result<_, store::StoreError> {
        let mut db = store::open(&path)?;
        let now = crate::clock::format_rfc3339(crate::clock::now_unix());
        store::outbox::drop_result(&mut db, id, &now)
    })
    .await
    .expect("the drop does not panic");
    match dropped {
        Ok(DropOutcome::Dropped(d)) => {
            tracing::warn!(
                id,
                mo = d.mo,
                queued = d.created_at,
                result = d.payload,
                "a result for Odoo was dropped by hand"
            );
            println!("result {id} dropped: {}", d.payload);
            0
        }
        Ok(DropOutcome::NotParked) => {
            eprintln!(
                "linegate: result {id} is not parked: it may be on its way to Odoo now; only a parked \
                 result can be dropped"
            );
            EXIT_FAILURE
        }
        Ok(DropOutcome::Missing) => {
            eprintln!("linegate: no result {id} waits for Odoo (see `linegate outbox list`)");
            EXIT_FAILURE
        }
        Err(e) => {
            eprintln!("linegate: {e}");
            EXIT_FAILURE
        }
    }
}
