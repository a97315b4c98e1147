//! A disk that loses power: a directory (FUSE) that keeps every write in memory, as the page
//! cache does, and makes it durable only when its file is fsynced; on a cut, what was not is
//! gone. It is LazyFS's model, the one Jepsen uses, so that the agent's own binary, unchanged,
//! can be put through power cuts (a `kill -9` keeps the kernel's page cache: every write that
//! was never fsynced still reaches the disk).
//!
//! - A file's data (writes, truncations) is durable once that file is fsynced (`fsync` or
//!   `fdatasync`, which are the same here).
//! - A directory entry (a file or directory created, renamed, unlinked) is durable once its
//!   directory is fsynced: a file fsynced in a directory nobody fsynced is lost with its name.
//! - A cut ([`PowerCutDisk::cut`]) stops the disk at once: every later call fails (EIO) and
//!   changes nothing. [`PowerCutDisk::power_on`] then keeps the durable state and, in
//!   [`Cut::Torn`] mode, a random in-order prefix of the writes not yet durable, the last of
//!   them torn at a 512-byte sector boundary; [`Cut::Exact`] keeps nothing more.
//!
//! POSIX and flock locks are the kernel's own (the file system declares none of its own); the
//! kernel's page cache goes with the mount, which every power-on makes anew. Only root can
//! mount it (the tests run as root, as the README's test command says).

mod fuse;
mod model;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fuser::MountOption;

use fuse::PowerFs;
use model::{Disk, Tree};

/// What a cut keeps beyond what was fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Nothing: every write not yet durable is lost.
    Exact,
    /// A random in-order prefix of the writes not yet durable (`seed` chooses it), the first
    /// one left out torn at a sector boundary when it spans several: a disk that wrote back
    /// part of its cache, in order, when the power went.
    Torn { seed: u64 },
}

/// What a power-on kept of the writes that were not durable at the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// Operations (writes, truncations, directory changes) not durable at the cut.
    pub unsynced: usize,
    /// Of those, how many survived whole (always 0 in [`Cut::Exact`]).
    pub survived: usize,
    /// Bytes of a write that survived in part (torn), if one did.
    pub torn_bytes: Option<usize>,
}

/// What the processes did to the disk since it was mounted (or the counts were taken).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub writes: u64,
    pub bytes_written: u64,
    /// `fsync`/`fdatasync` calls, by the file's name.
    pub fsyncs: BTreeMap<String, u64>,
    /// Directory fsyncs.
    pub dir_fsyncs: u64,
}

impl Counts {
    /// Every file fsync, whatever the file.
    pub fn file_fsyncs(&self) -> u64 {
        self.fsyncs.values().sum()
    }
}

/// A mounted power-cut disk. Dropping it cuts the power and unmounts it.
pub struct PowerCutDisk {
    mountpoint: PathBuf,
    disk: Arc<Mutex<Disk>>,
    session: Option<fuser::BackgroundSession>,
}

impl PowerCutDisk {
    /// An empty disk, mounted on the existing empty directory `at`.
    pub fn mount(at: &Path) -> std::io::Result<PowerCutDisk> {
        let disk = Arc::new(Mutex::new(Disk::new(Tree::empty())));
        let mut this = PowerCutDisk {
            mountpoint: at.to_path_buf(),
            disk,
            session: None,
        };
        this.spawn()?;
        Ok(this)
    }

    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// The power goes: from now on every call fails and changes nothing. The processes using
    /// the disk are to be killed before [`PowerCutDisk::power_on`].
    pub fn cut(&self) {
        self.lock().off = true;
    }

    /// Whether the power is off (cut, or tripped by [`PowerCutDisk::cut_at_write`]).
    pub fn is_cut(&self) -> bool {
        self.lock().off
    }

    /// Cuts the power in the middle of the processes' work: just before the `nth` (from 1)
    /// write to a file named `name` from now on.
    pub fn cut_at_write(&self, name: &str, nth: u64) {
        self.lock().trip = Some((OsString::from(name), nth.max(1)));
    }

    /// Power back (cutting it first if it is on): what `cut` keeps of the writes that were
    /// not durable is added to what was, and the disk is mounted afresh with that alone. Every
    /// process that had a file open on it must be dead by now.
    pub fn power_on(&mut self, cut: Cut) -> std::io::Result<Kept> {
        self.cut();
        self.unmount();
        let kept = {
            let mut disk = self.lock();
            let (tree, kept) = disk.survivors(cut);
            let next_ino = disk.next_ino;
            let counts = std::mem::take(&mut disk.counts);
            let generation = disk.generation + 1;
            *disk = Disk::new(tree);
            disk.next_ino = next_ino;
            disk.counts = counts;
            disk.generation = generation;
            kept
        };
        self.spawn()?;
        Ok(kept)
    }

    /// What the processes did to the disk so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let generation = self.lock().generation;
        let fs = PowerFs {
            disk: self.disk.clone(),
            generation,
        };
        let mut config = fuser::Config::default();
        config.mount_options = vec![MountOption::FSName("powercut".into()), MountOption::RW];
        self.session = Some(fuser::spawn_mount(fs, &self.mountpoint, &config)?);
        Ok(())
    }

    fn unmount(&mut self) {
        if let Some(session) = self.session.take() {
            if session.umount_and_join().is_err() {
                // Busy (a file still open somewhere): detached now, gone when it is closed.
                // Its session answers nothing but EIO meanwhile (its generation is past).
                // (Or the unmount went through and only the session's end was untidy: then
                // there is nothing to detach.)
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.mountpoint)
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

impl Drop for PowerCutDisk {
    fn drop(&mut self) {
        self.cut();
        self.unmount();
    }
}

/// xorshift64: a torn cut's prefix, from its seed; and a test's own moments, from one seed
/// that repeats a run.
#[derive(Debug, Clone)]
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// From `from` to `from + span` milliseconds.
    pub fn millis(&mut self, from: u64, span: u64) -> Duration {
        Duration::from_millis(from + self.next_u64() % span.max(1))
    }
}
