//! Checkpoints off the commands' path. SQLite copies the WAL into the database in the commit
//! that takes the WAL past 1,000 pages (`wal_autocheckpoint`), so every hundred commands or so
//! one command waited for a thousand pages to be copied and the file fsynced, tens of
//! milliseconds on an SD card. Here that commit only tells a thread of its own, which
//! checkpoints on a connection of its own while the store goes on. Should it fall behind, the
//! commit that takes the WAL past [`BEHIND_PAGES`] checkpoints as SQLite would have.

use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use rusqlite::wal::CheckpointMode;
use rusqlite::Connection;

/// WAL pages past which the thread checkpoints (SQLite's own default).
const WAL_PAGES: c_int = 1000;
/// WAL pages past which the committing connection checkpoints itself.
const BEHIND_PAGES: c_int = 4 * WAL_PAGES;

/// The checkpoint thread. Its connection closes after the store's, so that it is the last
/// one: SQLite checkpoints the WAL when its last connection closes.
pub(super) struct Checkpointer {
    thread: JoinHandle<()>,
    wake: SyncSender<Wake>,
}

/// What the thread is woken for.
enum Wake {
    /// The WAL passed [`WAL_PAGES`].
    Poke,
    /// The store's connection has closed: close ours, the last.
    Stop,
}

impl Checkpointer {
    /// Has `conn` (the store's connection to `path`) tell a new thread when its WAL passes
    /// [`WAL_PAGES`]. The thread ends on [`Checkpointer::join`], after `conn` has closed.
    pub(super) fn start(conn: &mut Connection, path: &Path) -> std::io::Result<Checkpointer> {
        let (poke, pokes) = sync_channel::<Wake>(1);
        let wake = poke.clone();
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("linegate-checkpoint".into())
            .spawn(move || run(&path, &pokes))?;
        // (replaces SQLite's automatic checkpoint, which is a hook of the same kind)
        let hooked = conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: c_int| {
            if pages >= BEHIND_PAGES {
                // The commit is done whatever this finds: an error returned here would make
                // SQLite report the committed transaction as failed (as its own hook does, the
                // result is dropped). Busy: the thread is at it; the next commit tries again.
                if let Err(e) = wal.checkpoint() {
                    tracing::debug!(error = %e, "checkpoint on commit did not complete");
                }
            } else if pages >= WAL_PAGES {
                // Full: a poke is already waiting. Gone: the thread failed; the WAL then
                // grows to BEHIND_PAGES and is checkpointed here.
                let _ = poke.try_send(Wake::Poke);
            }
            Ok(())
        }));
        if let Err(e) = hooked {
            // Without the hook SQLite checkpoints by itself, as before; the thread, never
            // poked, only waits for the stop.
            tracing::warn!(error = %e, "checkpoints stay on the commit path");
        }
        Ok(Checkpointer { thread, wake })
    }

    /// Stops the thread once the store's connection has closed, and waits for it: its own
    /// connection, the last, checkpoints the WAL as it closes. Not on the hook's sender going
    /// away: that happens inside the store's close, and two connections closing at once each
    /// see the other still open, so neither checkpoints and the WAL stays behind.
    pub(super) fn join(self) {
        let _ = self.wake.send(Wake::Stop);
        let _ = self.thread.join();
    }
}

fn run(path: &Path, pokes: &Receiver<Wake>) {
    let mut conn: Option<Connection> = None;
    while let Ok(Wake::Poke) = pokes.recv() {
        if conn.is_none() {
            conn = match open(path) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the database to checkpoint it; the store's commits will");
                    continue;
                }
            };
        }
        if let Some(c) = &conn {
            // PASSIVE: whatever no reader still needs, without waiting for anyone.
            if let Err(e) = c.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
                tracing::warn!(error = %e, "checkpoint failed; trying again after the next commits");
            }
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // As the store's: the WAL synced before the copy, the database after it.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::Store;

    #[tokio::test]
    async fn the_wal_is_copied_into_the_database_by_the_thread_and_emptied_on_close() {
        // Given a store, and commits that take its WAL well past a thousand pages but short
        // of the point where the committing connection would checkpoint itself
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let before = size(&path);
        for batch in 0..20 {
            store
                .call(move |db| {
                    let tx = db.0.transaction()?;
                    tx.execute("CREATE TABLE IF NOT EXISTS filler (v TEXT)", [])?;
                    for k in 0..100 {
                        tx.execute("INSERT INTO filler (v) VALUES (?1)", [format!("{batch}-{k:0>900}")])?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await
                .unwrap();
        }
        // Then the thread copies it into the database meanwhile: at least what the WAL held
        // when it passed a thousand pages (how much more depends on when the thread ran; the
        // commits themselves copy nothing short of four thousand)
        let deadline = Instant::now() + Duration::from_secs(10);
        while size(&path) < before + 500_000 {
            assert!(Instant::now() < deadline, "not checkpointed: {} bytes", size(&path));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // And when the store closes, the last connection leaves no WAL behind
        store.close().await;
        assert_eq!(size(&path.with_extension("db-wal")), 0);
    }
}
