//! Whether the store can be written: `ok`, `read-only` or `full`, with the reason. The agent
//! learns it from its own writes (and, while unhealthy, from a small probe write that tells
//! when space has returned); `linegate status`, in another process, reads it off the file
//! system.

use std::path::Path;

use serde::Serialize;

/// Free space below this on the database's file system counts as full.
const LOW_SPACE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "kebab-case")]
pub enum StoreHealth {
    Ok,
    ReadOnly(String),
    Full(String),
}

impl StoreHealth {
    pub fn is_ok(&self) -> bool {
        *self == StoreHealth::Ok
    }

    /// `ok`, `read-only`, `full`.
    pub fn state(&self) -> &'static str {
        match self {
            StoreHealth::Ok => "ok",
            StoreHealth::ReadOnly(_) => "read-only",
            StoreHealth::Full(_) => "full",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            StoreHealth::Ok => None,
            StoreHealth::ReadOnly(r) | StoreHealth::Full(r) => Some(r),
        }
    }

    /// What a write's failure says of the store, if anything.
    pub(super) fn from_error(e: &rusqlite::Error, db: &Path) -> Option<StoreHealth> {
        match e.sqlite_error_code()? {
            // What a file system remounted read-only under an open file gives (EROFS on write),
            // and a directory that cannot take the journal: the file system tells which.
            rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen => {
                Some(StoreHealth::inspect(db)).filter(|h| !h.is_ok())
            }
            rusqlite::ErrorCode::DiskFull => Some(StoreHealth::Full(format!("{}: {}", space(db), e))),
            rusqlite::ErrorCode::ReadOnly => Some(match read_only(db) {
                Some(why) => StoreHealth::ReadOnly(why),
                None => StoreHealth::ReadOnly(format!("{}: {e}", db.display())),
            }),
            _ => None,
        }
    }

    /// The file system's view: can the database be written, is there space.
    pub fn inspect(db: &Path) -> StoreHealth {
        if let Some(why) = read_only(db) {
            return StoreHealth::ReadOnly(why);
        }
        match free_bytes(db) {
            Some(free) if free < LOW_SPACE => StoreHealth::Full(space(db)),
            _ => StoreHealth::Ok,
        }
    }
}

impl std::fmt::Display for StoreHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason() {
            None => f.write_str(self.state()),
            Some(reason) => write!(f, "{}: {reason}", self.state()),
        }
    }
}

/// "… KiB free on /var/lib/linegate"
fn space(db: &Path) -> String {
    let dir = directory(db);
    match free_bytes(db) {
        Some(free) => format!("{} KiB free on {}", free / 1024, dir.display()),
        None => format!("no space left on {}", dir.display()),
    }
}

fn directory(db: &Path) -> &Path {
    db.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[allow(clippy::unnecessary_cast, reason = "the fields are 32-bit on armhf")]
fn free_bytes(db: &Path) -> Option<u64> {
    let dir = std::ffi::CString::new(directory(db).as_os_str().as_encoded_bytes()).ok()?;
    statvfs(&dir).map(|s| s.f_bavail as u64 * s.f_frsize as u64)
}

/// Why the database cannot be written, when the file system says so.
fn read_only(db: &Path) -> Option<String> {
    let dir = std::ffi::CString::new(directory(db).as_os_str().as_encoded_bytes()).ok()?;
    if statvfs(&dir).is_some_and(|s| s.f_flag & libc::ST_RDONLY != 0) {
        return Some(format!("{} is on a read-only file system", directory(db).display()));
    }
    let writable =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).is_ok_and(|p| access_writable(&p));
    if db.exists() && !writable(db) {
        return Some(format!("{} is not writable", db.display()));
    }
    None
}

#[allow(unsafe_code, reason = "statvfs(3) has no safe binding in std")]
fn statvfs(path: &std::ffi::CStr) -> Option<libc::statvfs> {
    let mut out: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a struct we own.
    (unsafe { libc::statvfs(path.as_ptr(), &mut out) } == 0).then_some(out)
}

#[allow(unsafe_code, reason = "access(2) has no safe binding in std")]
fn access_writable(path: &std::ffi::CStr) -> bool {
    // SAFETY: a NUL-terminated path; access only reads it.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_with_space_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StoreHealth::inspect(&dir.path().join("linegate.db")), StoreHealth::Ok);
    }

    #[test]
    fn states_read_as_the_status_says_them() {
        let full = StoreHealth::Full("12 KiB free on /var/lib/linegate".into());
        assert_eq!(full.to_string(), "full: 12 KiB free on /var/lib/linegate");
        assert_eq!(
            serde_json::to_value(&full).unwrap(),
            serde_json::json!({"state": "full", "reason": "12 KiB free on /var/lib/linegate"})
        );
        assert_eq!(
            serde_json::to_value(StoreHealth::Ok).unwrap(),
            serde_json::json!({"state": "ok"})
        );
    }
}
