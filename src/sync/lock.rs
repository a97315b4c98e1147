//! Keeps two syncs from running at once, also across processes (the agent and a
//! `linegate sync --once` typed by someone on the gateway): an advisory lock on a file beside
//! the database, held for the duration of one run.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

pub struct SyncLock {
    // Dropping the file releases the lock.
    _file: File,
}

/// One lock per source: Odoo and SICANTIK syncs do not wait for each other.
pub(crate) fn lock_path(db: &Path, source: &str) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{source}.sync-lock"));
    db.with_file_name(name)
}

impl SyncLock {
    /// Takes the lock, or returns None when another sync holds it.
    /// The Odoo sync's lock.
    pub fn try_acquire(db: &Path) -> std::io::Result<Option<SyncLock>> {
        SyncLock::try_acquire_for(db, "odoo")
    }

    pub(crate) fn try_acquire_for(db: &Path, source: &str) -> std::io::Result<Option<SyncLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(db, source))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SyncLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = super::SyncLock::try_acquire(&db).unwrap();
        assert!(first.is_some());
        assert!(super::SyncLock::try_acquire(&db).unwrap().is_none());
        drop(first);
        assert!(super::SyncLock::try_acquire(&db).unwrap().is_some());
    }
}
