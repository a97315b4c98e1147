//! The disk's state: what the processes see, what is durable, and the changes in between.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;

use super::{Counts, Cut, Kept, Random};

/// A file's bytes or a directory's entries.
#[derive(Debug, Clone)]
pub(super) enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<OsString, u64>),
}

/// A whole file system: nodes by inode number; the root is inode 1.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    pub(super) nodes: HashMap<u64, Node>,
}

pub(super) const ROOT: u64 = 1;

impl Tree {
    pub(super) fn empty() -> Tree {
        Tree {
            nodes: HashMap::from([(ROOT, Node::Dir(BTreeMap::new()))]),
        }
    }

    pub(super) fn dir(&mut self, ino: u64) -> &mut BTreeMap<OsString, u64> {
        let node = self.nodes.entry(ino).or_insert_with(|| Node::Dir(BTreeMap::new()));
        match node {
            Node::Dir(entries) => entries,
            Node::File(_) => unreachable!("inode {ino} is a file"),
        }
    }

    pub(super) fn file(&mut self, ino: u64) -> &mut Vec<u8> {
        match self.nodes.entry(ino).or_insert_with(|| Node::File(Vec::new())) {
            Node::File(data) => data,
            Node::Dir(_) => unreachable!("inode {ino} is a directory"),
        }
    }

    pub(super) fn apply(&mut self, op: &Op) {
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
    pub(super) fn collect_garbage(&mut self) {
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
pub(super) enum Op {
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
    pub(super) fn data_of(&self) -> Option<u64> {
        match self {
            Op::Write { ino, .. } | Op::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    /// Whether this changes directory `ino`'s entries.
    pub(super) fn changes_dir(&self, ino: u64) -> bool {
        match self {
            Op::Link { dir, .. } | Op::Unlink { dir, .. } => *dir == ino,
            Op::Rename { from, to, .. } => *from == ino || *to == ino,
            _ => false,
        }
    }
}

pub(super) struct Disk {
    /// What the processes see.
    pub(super) live: Tree,
    /// What a cut keeps for certain.
    pub(super) durable: Tree,
    /// The changes not yet durable, oldest first.
    pub(super) pending: Vec<Op>,
    /// Each file's last name (for the counts and the trip).
    pub(super) names: HashMap<u64, OsString>,
    pub(super) next_ino: u64,
    pub(super) off: bool,
    /// Mounts so far: a session of an earlier mount answers nothing.
    pub(super) generation: u64,
    /// Cut the power before the nth write to the named file.
    pub(super) trip: Option<(OsString, u64)>,
    pub(super) counts: Counts,
}

impl Disk {
    pub(super) fn new(tree: Tree) -> Disk {
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

    pub(super) fn change(&mut self, op: Op) {
        self.live.apply(&op);
        self.pending.push(op);
    }

    /// Makes the pending changes `which` selects durable, in their order.
    pub(super) fn sync(&mut self, which: impl Fn(&Op) -> bool) {
        let (now, later): (Vec<Op>, Vec<Op>) = std::mem::take(&mut self.pending).into_iter().partition(which);
        for op in &now {
            self.durable.apply(op);
        }
        self.pending = later;
    }

    pub(super) fn survivors(&self, cut: Cut) -> (Tree, Kept) {
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

    pub(super) fn name(&self, ino: u64) -> String {
        self.names
            .get(&ino)
            .map_or_else(|| format!("inode {ino}"), |n| n.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(ino: u64, offset: u64, data: &[u8]) -> Op {
        Op::Write {
            ino,
            offset,
            data: data.to_vec(),
        }
    }

    /// A disk on which file `f` (inode 2) was just created.
    fn with_file() -> Disk {
        let mut disk = Disk::new(Tree::empty());
        disk.change(Op::Link {
            dir: ROOT,
            name: "f".into(),
            ino: 2,
            is_dir: false,
        });
        disk
    }

    fn file(tree: &Tree, name: &str) -> Option<Vec<u8>> {
        let Some(Node::Dir(root)) = tree.nodes.get(&ROOT) else {
            panic!("no root")
        };
        let ino = root.get(&OsString::from(name))?;
        match tree.nodes.get(ino) {
            Some(Node::File(data)) => Some(data.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_file_fsynced_keeps_its_data_but_its_name_only_once_the_directory_is_fsynced() {
        let mut disk = with_file();
        disk.change(write(2, 0, b"data"));
        disk.sync(|op| op.data_of() == Some(2));
        assert_eq!(
            file(&disk.survivors(Cut::Exact).0, "f"),
            None,
            "the name was not synced"
        );
        disk.sync(|op| op.changes_dir(ROOT));
        disk.change(write(2, 4, b" more"));
        assert_eq!(file(&disk.survivors(Cut::Exact).0, "f").as_deref(), Some(&b"data"[..]));
        assert_eq!(file(&disk.live, "f").as_deref(), Some(&b"data more"[..]));
    }

    #[test]
    fn a_torn_cut_keeps_a_prefix_of_the_unsynced_writes_and_tears_the_next_at_a_sector() {
        let mut disk = with_file();
        disk.sync(|_| true);
        for k in 0..4u8 {
            disk.change(write(2, u64::from(k) * 1500, &[b'a' + k; 1500]));
        }
        for seed in 1..50 {
            let (tree, kept) = disk.survivors(Cut::Torn { seed });
            let data = file(&tree, "f").unwrap();
            let whole = kept.survived * 1500;
            assert_eq!(data.len(), whole + kept.torn_bytes.unwrap_or(0), "{kept:?}");
            if kept.torn_bytes.is_some() {
                assert_eq!(data.len() % 512, 0, "{kept:?}");
            }
            assert!(data.iter().enumerate().all(|(i, b)| *b == b'a' + (i / 1500) as u8));
        }
    }
}
