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

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

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
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.mountpoint)
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

/// A file's bytes or a directory's entries.
#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<OsString, u64>),
}

/// A whole file system: nodes by inode number; the root is inode 1.
#[derive(Debug, Clone)]
struct Tree {
    nodes: HashMap<u64, Node>,
}

const ROOT: u64 = 1;

impl Tree {
    fn empty() -> Tree {
        Tree {
            nodes: HashMap::from([(ROOT, Node::Dir(BTreeMap::new()))]),
        }
    }

    fn dir(&mut self, ino: u64) -> &mut BTreeMap<OsString, u64> {
        let node = self.nodes.entry(ino).or_insert_with(|| Node::Dir(BTreeMap::new()));
        match node {
            Node::Dir(entries) => entries,
            Node::File(_) => unreachable!("inode {ino} is a file"),
        }
    }

    fn file(&mut self, ino: u64) -> &mut Vec<u8> {
        match self.nodes.entry(ino).or_insert_with(|| Node::File(Vec::new())) {
            Node::File(data) => data,
            Node::Dir(_) => unreachable!("inode {ino} is a directory"),
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Write { ino, offset, data } => {
                let file = self.file(*ino);
                let (start, end) = (*offset as usize, *offset as usize + data.len());
                if file.len() < end {
                    file.resize(end, 0);
                }
                file[start..end].copy_from_slice(data);
            }
            Op::SetLen { ino, len } => self.file(*ino).resize(*len as usize, 0),
            Op::Link { dir, name, ino, is_dir } => {
                if *is_dir {
                    self.dir(*ino);
                } else {
                    self.file(*ino);
                }
                self.dir(*dir).insert(name.clone(), *ino);
            }
            Op::Unlink { dir, name } => {
                self.dir(*dir).remove(name);
            }
            Op::Rename {
                from,
                name,
                to,
                new_name,
                ino,
            } => {
                let source = self.dir(*from);
                if source.get(name) == Some(ino) {
                    source.remove(name);
                }
                if !self.nodes.contains_key(ino) {
                    self.file(*ino);
                }
                self.dir(*to).insert(new_name.clone(), *ino);
            }
        }
    }

    /// Drops what no directory entry reaches from the root: a file fsynced whose name never was.
    fn collect_garbage(&mut self) {
        let mut reached = std::collections::HashSet::from([ROOT]);
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if let Some(Node::Dir(entries)) = self.nodes.get(&ino) {
                for child in entries.values() {
                    if reached.insert(*child) {
                        todo.push(*child);
                    }
                }
            }
        }
        self.nodes.retain(|ino, _| reached.contains(ino));
    }
}

/// One change, as the disk's cache holds it until it is durable.
#[derive(Debug, Clone)]
enum Op {
    Write {
        ino: u64,
        offset: u64,
        data: Vec<u8>,
    },
    SetLen {
        ino: u64,
        len: u64,
    },
    Link {
        dir: u64,
        name: OsString,
        ino: u64,
        is_dir: bool,
    },
    Unlink {
        dir: u64,
        name: OsString,
    },
    Rename {
        from: u64,
        name: OsString,
        to: u64,
        new_name: OsString,
        ino: u64,
    },
}

impl Op {
    /// The file whose data this changes.
    fn data_of(&self) -> Option<u64> {
        match self {
            Op::Write { ino, .. } | Op::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    /// Whether this changes directory `ino`'s entries.
    fn changes_dir(&self, ino: u64) -> bool {
        match self {
            Op::Link { dir, .. } | Op::Unlink { dir, .. } => *dir == ino,
            Op::Rename { from, to, .. } => *from == ino || *to == ino,
            _ => false,
        }
    }
}

struct Disk {
    /// What the processes see.
    live: Tree,
    /// What a cut keeps for certain.
    durable: Tree,
    /// The changes not yet durable, oldest first.
    pending: Vec<Op>,
    /// Each file's last name (for the counts and the trip).
    names: HashMap<u64, OsString>,
    next_ino: u64,
    off: bool,
    /// Mounts so far: a session of an earlier mount answers nothing.
    generation: u64,
    /// Cut the power before the nth write to the named file.
    trip: Option<(OsString, u64)>,
    counts: Counts,
}

impl Disk {
    fn new(tree: Tree) -> Disk {
        let next_ino = tree.nodes.keys().max().copied().unwrap_or(ROOT) + 1;
        let mut names = HashMap::new();
        for node in tree.nodes.values() {
            if let Node::Dir(entries) = node {
                for (name, ino) in entries {
                    names.insert(*ino, name.clone());
                }
            }
        }
        Disk {
            live: tree.clone(),
            durable: tree,
            pending: Vec::new(),
            names,
            next_ino,
            off: false,
            generation: 0,
            trip: None,
            counts: Counts::default(),
        }
    }

    fn change(&mut self, op: Op) {
        self.live.apply(&op);
        self.pending.push(op);
    }

    /// Makes the pending changes `which` selects durable, in their order.
    fn sync(&mut self, which: impl Fn(&Op) -> bool) {
        let (now, later): (Vec<Op>, Vec<Op>) = std::mem::take(&mut self.pending).into_iter().partition(which);
        for op in &now {
            self.durable.apply(op);
        }
        self.pending = later;
    }

    fn survivors(&self, cut: Cut) -> (Tree, Kept) {
        let mut tree = self.durable.clone();
        let mut kept = Kept {
            unsynced: self.pending.len(),
            survived: 0,
            torn_bytes: None,
        };
        if let Cut::Torn { seed } = cut {
            let mut random = Random::new(seed);
            let k = (random.next_u64() % (self.pending.len() as u64 + 1)) as usize;
            for op in &self.pending[..k] {
                tree.apply(op);
            }
            kept.survived = k;
            if let Some(Op::Write { ino, offset, data }) = self.pending.get(k) {
                // The sector boundaries inside the write: it may stop at any of them.
                let end = offset + data.len() as u64;
                let first = (offset / 512 + 1) * 512;
                let boundaries: Vec<u64> = (first..end).step_by(512).collect();
                if !boundaries.is_empty() {
                    let at = boundaries[(random.next_u64() % boundaries.len() as u64) as usize];
                    let part = (at - offset) as usize;
                    tree.apply(&Op::Write {
                        ino: *ino,
                        offset: *offset,
                        data: data[..part].to_vec(),
                    });
                    kept.torn_bytes = Some(part);
                }
            }
        }
        tree.collect_garbage();
        (tree, kept)
    }

    fn name(&self, ino: u64) -> String {
        self.names
            .get(&ino)
            .map_or_else(|| format!("inode {ino}"), |n| n.to_string_lossy().into_owned())
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

/// The FUSE side of one mount.
struct PowerFs {
    disk: Arc<Mutex<Disk>>,
    generation: u64,
}

const TTL: Duration = Duration::from_secs(1);

fn attr(ino: u64, node: &Node) -> FileAttr {
    let (kind, size, perm, nlink) = match node {
        Node::File(data) => (FileType::RegularFile, data.len() as u64, 0o644, 1),
        Node::Dir(_) => (FileType::Directory, 0, 0o755, 2),
    };
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: time,
        mtime: time,
        ctime: time,
        crtime: time,
        kind,
        perm,
        nlink,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl PowerFs {
    /// The disk, unless the power is off for this mount.
    fn on(&self) -> Result<MutexGuard<'_, Disk>, Errno> {
        let disk = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        if disk.off || disk.generation != self.generation {
            return Err(Errno::EIO);
        }
        Ok(disk)
    }

    fn entry(disk: &Disk, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        match disk.live.nodes.get(&parent) {
            Some(Node::Dir(entries)) => entries.get(name).copied().ok_or(Errno::ENOENT),
            Some(Node::File(_)) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn attr_of(disk: &Disk, ino: u64) -> Result<FileAttr, Errno> {
        disk.live.nodes.get(&ino).map(|n| attr(ino, n)).ok_or(Errno::ENOENT)
    }

    /// A new node named `name` in `parent`.
    fn make(&self, parent: u64, name: &OsStr, is_dir: bool) -> Result<FileAttr, Errno> {
        let mut disk = self.on()?;
        match Self::entry(&disk, parent, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(e) if e != Errno::ENOENT => return Err(e),
            Err(_) => {}
        }
        let ino = disk.next_ino;
        disk.next_ino += 1;
        disk.names.insert(ino, name.to_os_string());
        disk.change(Op::Link {
            dir: parent,
            name: name.to_os_string(),
            ino,
            is_dir,
        });
        Self::attr_of(&disk, ino)
    }

    /// Unlinks `name` from `parent`: a file, or an empty directory when `dir`.
    fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let mut disk = self.on()?;
        let ino = Self::entry(&disk, parent, name)?;
        match (disk.live.nodes.get(&ino), dir) {
            (Some(Node::File(_)), false) => {}
            (Some(Node::Dir(entries)), true) if entries.is_empty() => {}
            (Some(Node::Dir(_)), true) => return Err(Errno::ENOTEMPTY),
            (Some(Node::Dir(_)), false) => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENOTDIR),
        }
        disk.change(Op::Unlink {
            dir: parent,
            name: name.to_os_string(),
        });
        Ok(())
    }
}

impl Filesystem for PowerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self
            .on()
            .and_then(|disk| Self::entry(&disk, parent.0, name).and_then(|ino| Self::attr_of(&disk, ino)));
        match found {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.on().and_then(|disk| Self::attr_of(&disk, ino.0)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Owners, modes and times are not modelled: only the size is data.
        let done = self.on().and_then(|mut disk| {
            if let Some(len) = size {
                match disk.live.nodes.get(&ino.0) {
                    Some(Node::File(_)) => disk.change(Op::SetLen { ino: ino.0, len }),
                    Some(Node::Dir(_)) => return Err(Errno::EISDIR),
                    None => return Err(Errno::ENOENT),
                }
            }
            Self::attr_of(&disk, ino.0)
        });
        match done {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Regular files only (S_IFMT, S_IFREG).
        if mode & 0o170000 != 0o100000 {
            return reply.error(Errno::EPERM);
        }
        match self.make(parent.0, name, false) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, _mode: u32, _umask: u32, reply: ReplyEntry) {
        match self.make(parent.0, name, true) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.make(parent.0, name, false) {
            Ok(attr) => reply.created(&TTL, &attr, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let done = self.on().and_then(|mut disk| {
            if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                return Err(Errno::EINVAL);
            }
            let ino = Self::entry(&disk, parent.0, name)?;
            if let Ok(existing) = Self::entry(&disk, newparent.0, newname) {
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    return Err(Errno::EEXIST);
                }
                if matches!(disk.live.nodes.get(&existing), Some(Node::Dir(e)) if !e.is_empty()) {
                    return Err(Errno::ENOTEMPTY);
                }
            }
            disk.names.insert(ino, newname.to_os_string());
            disk.change(Op::Rename {
                from: parent.0,
                name: name.to_os_string(),
                to: newparent.0,
                new_name: newname.to_os_string(),
                ino,
            });
            Ok(())
        });
        match done {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.on().and_then(|disk| Self::attr_of(&disk, ino.0)) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let read = self.on().and_then(|disk| match disk.live.nodes.get(&ino.0) {
            Some(Node::File(data)) => {
                let start = (offset as usize).min(data.len());
                let end = (start + size as usize).min(data.len());
                Ok(data[start..end].to_vec())
            }
            Some(Node::Dir(_)) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        });
        match read {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let done = self.on().and_then(|mut disk| {
            if !matches!(disk.live.nodes.get(&ino.0), Some(Node::File(_))) {
                return Err(Errno::EBADF);
            }
            let d = &mut *disk;
            if let Some((name, left)) = d.trip.as_mut() {
                if d.names.get(&ino.0) == Some(name) {
                    *left -= 1;
                    if *left == 0 {
                        disk.trip = None;
                        disk.off = true;
                        return Err(Errno::EIO);
                    }
                }
            }
            disk.counts.writes += 1;
            disk.counts.bytes_written += data.len() as u64;
            disk.change(Op::Write {
                ino: ino.0,
                offset,
                data: data.to_vec(),
            });
            Ok(())
        });
        match done {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.on() {
            Ok(mut disk) => {
                let name = disk.name(ino.0);
                *disk.counts.fsyncs.entry(name).or_default() += 1;
                disk.sync(|op| op.data_of() == Some(ino.0));
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let listed = self.on().and_then(|disk| match disk.live.nodes.get(&ino.0) {
            Some(Node::Dir(entries)) => {
                let mut all = vec![
                    (ino.0, FileType::Directory, OsString::from(".")),
                    (ino.0, FileType::Directory, OsString::from("..")),
                ];
                for (name, child) in entries {
                    let kind = match disk.live.nodes.get(child) {
                        Some(Node::Dir(_)) => FileType::Directory,
                        _ => FileType::RegularFile,
                    };
                    all.push((*child, kind, name.clone()));
                }
                Ok(all)
            }
            Some(Node::File(_)) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        });
        match listed {
            Ok(all) => {
                for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.on() {
            Ok(mut disk) => {
                disk.counts.dir_fsyncs += 1;
                disk.sync(|op| op.changes_dir(ino.0));
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room: a full disk is another test's.
        reply.statfs(1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}
