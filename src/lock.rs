//! Advisory locks on files beside the database, so that two processes cannot do the same work
//! on one store: one agent per database (held for the agent's life), and one sync per source
//! at a time (held for one run; `linegate sync --once` typed beside a running agent waits its
//! turn instead of syncing in parallel).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases it (as does the process ending, however it ends).
pub struct FileLock {
    _file: File,
}

/// The lock file for `purpose` beside `db`: `linegate.db.<purpose>-lock`.
pub fn lock_path(db: &Path, purpose: &str) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{purpose}-lock"));
    db.with_file_name(name)
}

impl FileLock {
    /// Takes the lock, or returns None when another holder has it. A lock file that cannot be
    /// written (a read-only file system; one left by root) is locked read-only: a lock needs
    /// an open file, not a writable one.
    pub fn try_acquire(db: &Path, purpose: &str) -> std::io::Result<Option<FileLock>> {
        let path = lock_path(db, purpose);
        let opened = OpenOptions::new().create(true).truncate(false).write(true).open(&path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if matches!(e.kind(), ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied) => {
                OpenOptions::new().read(true).open(&path).map_err(|_| e)?
            }
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Writes this process's id into the lock file, for `linegate status` to find the agent
    /// (a read-only lock file keeps none).
    pub fn record_pid(&mut self) {
        use std::io::Write;
        let pid = std::process::id().to_string();
        let _ = self
            ._file
            .set_len(0)
            .and_then(|()| self._file.write_all(pid.as_bytes()));
    }
}

/// The process that holds `purpose`'s lock beside `db`, as it recorded itself, if it still runs.
pub fn holder_pid(db: &Path, purpose: &str) -> Option<u32> {
    let path = lock_path(db, purpose);
    let pid: u32 = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
    let file = File::open(&path).ok()?;
    // Still locked (by whoever wrote the id), and that process still there.
    let held = matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock));
    (held && Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
}

/// The lock one sync of `source` holds for its run.
pub fn sync_purpose(source: &str) -> String {
    format!("{source}.sync")
}

/// The lock the agent holds for its life.
pub const AGENT: &str = "agent";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = FileLock::try_acquire(&db, AGENT).unwrap();
        assert!(first.is_some());
        assert!(FileLock::try_acquire(&db, AGENT).unwrap().is_none());
        assert!(
            FileLock::try_acquire(&db, &sync_purpose("odoo")).unwrap().is_some(),
            "locks of other purposes are apart"
        );
        drop(first);
        assert!(FileLock::try_acquire(&db, AGENT).unwrap().is_some());
        assert_eq!(
            lock_path(&db, &sync_purpose("odoo")),
            dir.path().join("x.db.odoo.sync-lock")
        );
    }
}
