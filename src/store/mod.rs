//! The store: one SQLite connection, owned by one thread, off the async workers. Everything else
//! talks to it through [`Store`], whose methods send a closure to that thread and await the
//! answer. Only this module and its children touch SQL. (A second thread and connection only
//! checkpoint the WAL, off the commit path: [`checkpoint`].)

mod checkpoint;
pub(crate) mod command;
pub mod health;
pub mod mo;
pub(crate) mod outbox;
pub(crate) mod permit;
pub mod prune;
pub(crate) mod salvage;
pub mod sync;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::oneshot;

pub use health::StoreHealth;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the database at {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("the database at {path} has schema version {found}, newer than this linegate knows ({known})")]
    TooNew { path: PathBuf, found: u32, known: u32 },
    #[error("the store has stopped")]
    Closed,
    #[error("the database at {path} is damaged: {detail}")]
    Damaged { path: PathBuf, detail: String },
}

/// SQLite's own words for a file that is not (or no longer) a sound database.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Migrations, embedded at build time; the position in this list is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_commands.sql"),
    include_str!("../../migrations/0003_permits.sql"),
    include_str!("../../migrations/0004_store_probe.sql"),
    include_str!("../../migrations/0005_odoo_outbox.sql"),
    include_str!("../../migrations/0006_outbox_settle.sql"),
    include_str!("../../migrations/0007_lean_command_writes.sql"),
    include_str!("../../migrations/0008_outbox_outcome.sql"),
    include_str!("../../migrations/0009_floor_index.sql"),
];

pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The database, as the store's own functions see it. Its connection never leaves this module:
/// whoever holds a `Db` can call the store's functions, not run SQL of its own.
#[derive(Debug)]
pub struct Db(Connection);

type Job = Box<dyn FnOnce(&mut Db) + Send>;

enum Message {
    Job(Job),
    /// Close the connection (SQLite checkpoints the WAL then) and end the thread.
    Close,
}

/// A handle on the store. Cloning it is cheap; the connection closes with [`Store::close`], or
/// when the last handle drops.
#[derive(Clone)]
pub struct Store {
    /// Into the owner thread; it exits when every handle is gone or one closes the store.
    jobs: std::sync::mpsc::Sender<Message>,
    /// The owner thread, joined by whoever closes the store.
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// Whether writes work, as the last ones found: set on the store's thread, watched by the
    /// status topic and systemd's STATUS.
    health: Arc<tokio::sync::watch::Sender<StoreHealth>>,
    path: Arc<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the database, migrates it, and starts its owner thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::start(open(path)?, path))
    }

    /// [`Store::open`], but a damaged database is kept aside and a fresh one started (the
    /// sync pulls Odoo's MOs again); returns where the damaged one went. Only the holder of the
    /// agent's lock may do this: nobody else has the file open for writing.
    pub fn open_or_start_afresh(path: &Path) -> Result<(Store, Option<PathBuf>), StoreError> {
        match open(path) {
            Ok(db) => Ok((Store::start(db, path), None)),
            Err(StoreError::Damaged { detail, .. }) => {
                let kept = keep_aside(path, crate::clock::now_unix()).map_err(|e| StoreError::Damaged {
                    path: path.to_path_buf(),
                    detail: format!("{detail}; it cannot be moved aside: {e}"),
                })?;
                tracing::error!(
                    db = %path.display(), kept = %kept.display(), %detail,
                    "the database is damaged: kept aside, starting a fresh one (operator data: linegate salvage)"
                );
                Ok((Store::start(open(path)?, path), Some(kept)))
            }
            Err(e) => Err(e),
        }
    }

    fn start(db: Db, path: &Path) -> Store {
        let health = if db.0.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            StoreHealth::ReadOnly(format!("{} was opened read-only: it cannot be written", path.display()))
        } else {
            StoreHealth::inspect(path)
        };
        if !health.is_ok() {
            tracing::error!(db = %path.display(), %health, "the store cannot be written; serving what it holds");
        }
        let mut db = db;
        let checkpointer = match health {
            StoreHealth::ReadOnly(_) => None,
            _ => checkpoint::Checkpointer::start(&mut db.0, path)
                .map_err(|e| tracing::warn!(error = %e, "no checkpoint thread; the store's commits checkpoint"))
                .ok(),
        };
        let (jobs, rx) = std::sync::mpsc::channel::<Message>();
        let thread = std::thread::Builder::new()
            .name("linegate-store".into())
            .spawn(move || {
                while let Ok(Message::Job(job)) = rx.recv() {
                    job(&mut db);
                }
                drop(db);
                if let Some(checkpointer) = checkpointer {
                    checkpointer.join();
                }
            })
            .expect("spawning the store thread");
        Store {
            jobs,
            thread: Arc::new(Mutex::new(Some(thread))),
            health: Arc::new(tokio::sync::watch::channel(health).0),
            path: Arc::new(path.to_path_buf()),
        }
    }

    /// Whether writes work, as the last ones found.
    pub fn health(&self) -> tokio::sync::watch::Receiver<StoreHealth> {
        self.health.subscribe()
    }

    /// While writes fail, tries a small one (only then: a healthy store is never written for
    /// this), so that the health turns `ok` by itself once space returns.
    pub(crate) async fn probe(&self) {
        if self.health.borrow().is_ok() {
            return;
        }
        const SQL: &str = "INSERT OR REPLACE INTO store_probe (id, at) VALUES (1, ?1)";
        let at = crate::clock::format_rfc3339(crate::clock::now_unix());
        let _ = self
            .call(move |db| {
                db.0.execute(SQL, [at])?;
                Ok(())
            })
            .await;
    }

    /// Finishes the work already sent, closes the connection and waits for the thread: a
    /// process that exits after this leaves a checkpointed WAL. Other handles get
    /// [`StoreError::Closed`] from then on.
    pub(crate) async fn close(self) {
        let _ = self.jobs.send(Message::Close);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Db) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let (health, path) = (self.health.clone(), self.path.clone());
        let job: Job = Box::new(move |db| {
            let written = db.0.total_changes();
            let result = f(db);
            // A write that failed for want of space or permission says so; one that went
            // through says the store is writable again.
            let now = match &result {
                Err(StoreError::Sqlite(e)) => StoreHealth::from_error(e, &path),
                // A write that fit in space already taken does not mean space returned: the
                // file system says whether it did.
                Ok(_) if db.0.total_changes() != written && !health.borrow().is_ok() => {
                    Some(StoreHealth::inspect(&path))
                }
                _ => None,
            };
            if let Some(now) = now {
                health.send_if_modified(|h| {
                    let changed = *h != now;
                    if changed {
                        match &now {
                            StoreHealth::Ok => tracing::info!(state = %now, "the store can be written again"),
                            _ => tracing::error!(state = %now, "the store cannot be written"),
                        }
                    }
                    *h = now;
                    changed
                });
            }
            // The caller may have gone (shutdown); the work is done and committed regardless.
            let _ = tx.send(result);
        });
        self.jobs.send(Message::Job(job)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Opens the database with linegate's settings and brings the schema up to date, for a caller
/// that works on it directly (`linegate status`, tests) instead of through a [`Store`].
pub fn open(path: &Path) -> Result<Db, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let open_err = |source: rusqlite::Error| {
        if is_damage(&source) {
            StoreError::Damaged {
                path: path.to_path_buf(),
                detail: source.to_string(),
            }
        } else {
            StoreError::Open {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut conn = match Connection::open(path) {
        Ok(conn) => conn,
        // A read-only file system (a card remounted read-only after errors): the store is
        // still served, read-only, so the displays keep what it holds.
        Err(e) if path.exists() && matches!(StoreHealth::inspect(path), StoreHealth::ReadOnly(_)) => {
            return open_immutable(path).map_err(|_| open_err(e))
        }
        Err(e) => return Err(open_err(e)),
    };
    // Switching a new database to WAL takes an exclusive lock that SQLite's busy handler does
    // not wait for; two processes opening at once (the agent and `linegate status`) retry here.
    let mut attempts = 0;
    while let Err(e) = configure(&conn) {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        attempts += 1;
        if !busy && path.exists() && matches!(StoreHealth::inspect(path), StoreHealth::ReadOnly(_)) {
            drop(conn);
            return open_immutable(path).map_err(|_| open_err(e));
        }
        if !busy || attempts >= 50 {
            return Err(open_err(e));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A page torn by a power cut or a failing SD card: found now, not mid-command. Reads the
    // whole file once (milliseconds at the sizes a gateway keeps); writes nothing.
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(open_err)?;
    if verdict != "ok" {
        return Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: verdict.lines().take(3).collect::<Vec<_>>().join("; "),
        });
    }
    migrate(&mut conn, path)?;
    Ok(Db(conn))
}

/// Moves a damaged database (with its WAL and shared-memory files) aside as
/// `<name>.damaged-<UTC time>`, so that a fresh one can take its place: operator data is never
/// deleted (`linegate salvage` reads what it still can). Returns where it went.
pub fn keep_aside(path: &Path, now_unix: i64) -> std::io::Result<PathBuf> {
    let stamp = crate::clock::format_rfc3339(now_unix).replace([':', '-'], "");
    let mut kept = path.as_os_str().to_os_string();
    kept.push(format!(".damaged-{stamp}"));
    let kept = PathBuf::from(kept);
    std::fs::rename(path, &kept)?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_os_string();
        from.push(suffix);
        let mut to = kept.as_os_str().to_os_string();
        to.push(suffix);
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(kept)
}

/// The database on a read-only file system. SQLite reads a WAL database read-only when its
/// `-wal` and `-shm` files are there; when they are not (a clean close before the remount), it
/// can only open the file as immutable — which is then exactly the database as last written.
/// Checked and refused if damaged or of another schema.
fn open_immutable(path: &Path) -> Result<Db, StoreError> {
    let err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let read_only = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let plain = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).and_then(|c| {
        c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))
            .map(|_| c)
    });
    let conn = match plain {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(db = %path.display(), error = %e, "read-only open failed; opening as immutable");
            let mut wal = path.as_os_str().to_os_string();
            wal.push("-wal");
            if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                tracing::error!(db = %path.display(), "the store's write-ahead log cannot be read on this read-only file system: the newest commits are not served");
            }
            Connection::open_with_flags(immutable_uri(path), read_only).map_err(err)?
        }
    };
    let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(err)?;
    if verdict != "ok" {
        return Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: verdict,
        });
    }
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    if found != SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    tracing::error!(db = %path.display(), "the database is on a read-only file system: served read-only until a restart finds it writable");
    Ok(Db(conn))
}

/// `file:<path>?immutable=1`, every byte of the path but unreserved ASCII and `/`
/// percent-encoded (SQLite decodes them back to the same bytes, UTF-8 or not).
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Per-connection settings. WAL with `synchronous = NORMAL` survives a crash of the agent at
/// any point; writes an acknowledgement depends on switch to FULL for their commit (see
/// [`durable`]), so the SD card is not fsynced for data the next sync would fetch again.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // First, so that the other settings wait for a lock held by another process.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // A new database only (an existing one keeps its size: changing it takes a VACUUM, a
    // rewrite of the whole file). A durable command dirties seven or eight pages (its MO, the
    // command log, the outbox, an index of each of the two, the header as the file grows),
    // each written to the WAL and later checkpointed: 1 KiB pages halve what that costs the
    // SD card against SQLite's 4 KiB default (`cargo bench --bench wear`). Rows stay within
    // a page.
    conn.pragma_update(None, "page_size", 1024)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        // IMMEDIATE, and the version read again inside: two processes starting at once (the
        // agent and `linegate status`) must not both apply a step.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > index as u32 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as u32 + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "database migrated");
    }
    Ok(())
}

/// Runs `f` in a transaction whose commit is fsynced before this returns: for writes that
/// someone is told have happened.
fn durable<R>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    let result = (|| {
        let tx = conn.transaction()?;
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    })();
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    result
}

/// The schema version of an open database.
pub(crate) fn schema_version(db: &Db) -> Result<u32, StoreError> {
    let conn = &db.0;
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_has_small_pages_and_an_existing_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |db: &Db| -> i64 { db.0.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap() };
        let new = open(&dir.path().join("new.db")).unwrap();
        assert_eq!(page_size(&new), 1024);
        // A store made before, with SQLite's default pages and a row in it
        let old = dir.path().join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('x')")
                .unwrap();
        }
        let db = open(&old).unwrap();
        assert_eq!(page_size(&db), 4096);
        let kept: String = db.0.query_row("SELECT v FROM kept", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, "x");
    }

    #[test]
    fn an_immutable_open_finds_a_path_with_any_characters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gudang Ü ?#%&=.db");
        drop(open(&path).unwrap());
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(immutable_uri(&path), flags).unwrap();
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn migrates_once_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = open(&path).unwrap();
        assert_eq!(schema_version(&db).unwrap(), SCHEMA_VERSION);
        drop(db);
        let db = open(&path).unwrap();
        assert_eq!(schema_version(&db).unwrap(), SCHEMA_VERSION);
        db.0.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(db);
        assert!(matches!(open(&path), Err(StoreError::TooNew { .. })));
    }
}
