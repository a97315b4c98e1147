//! The FUSE side of one mount: each call on the disk's state, or EIO once the power is off.

use std::ffi::{OsStr, OsString};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::model::{Disk, Node, Op};

/// The FUSE side of one mount.
pub(super) struct PowerFs {
    pub(super) disk: Arc<Mutex<Disk>>,
    pub(super) generation: u64,
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
