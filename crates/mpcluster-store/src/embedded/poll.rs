//! Change detection across processes for the embedded store: a cheap fingerprint of every
//! stored file (inode, size, mtime) and the diff between two fingerprints as events.
//!
//! Every write replaces its file by `rename`, so the inode changes on each write; size and
//! mtime catch the rest. Blocking; run from `spawn_blocking`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use mpcluster_core::NodeName;

use super::{DOCS_DIR, KV_DIR, fsutil};
use crate::names::check_name;
use crate::{StoreError, StoreEvent};

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Entry {
    /// `docs/<name>`
    Doc(String),
    /// `kv/<key>/<node>`
    Kv(String, NodeName),
}

impl Entry {
    pub(crate) fn event(&self) -> StoreEvent {
        match self {
            Entry::Doc(name) => StoreEvent::Document { name: name.clone() },
            Entry::Kv(key, node) => StoreEvent::NodeKv {
                key: key.clone(),
                node: node.clone(),
            },
        }
    }
}

/// Identity of one file version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Fingerprint {
    pub(crate) fn of(meta: &fs::Metadata) -> Fingerprint {
        Fingerprint {
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }

    /// The fingerprint of the file at `path`, `None` if it does not exist.
    pub(crate) fn of_path(path: &Path) -> Result<Option<Fingerprint>, StoreError> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(Fingerprint::of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }
}

/// Fingerprints of everything stored.
pub(crate) type Scan = HashMap<Entry, Fingerprint>;

/// The stored files of one directory (`docs/` or `kv/<key>/`): valid names, no temp files.
fn list_files(dir: &Path) -> Result<Vec<(String, fs::Metadata)>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || fsutil::is_temp_name(&name) {
            continue;
        }
        // The file may vanish between listing and stat (a concurrent delete).
        let meta = match fs::symlink_metadata(entry.path()) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(entry.path(), e)),
        };
        out.push((name, meta));
    }
    Ok(out)
}

/// Fingerprint every document and node KV value under `root`.
pub(crate) fn scan(root: &Path) -> Result<Scan, StoreError> {
    let mut out = Scan::new();
    for (name, meta) in list_files(&root.join(DOCS_DIR))? {
        if meta.is_file() && check_name("document name", &name).is_ok() {
            out.insert(Entry::Doc(name), Fingerprint::of(&meta));
        }
    }
    let kv = root.join(KV_DIR);
    for (key, meta) in list_files(&kv)? {
        if !meta.is_dir() || check_name("node KV key", &key).is_err() {
            continue;
        }
        for (node, meta) in list_files(&kv.join(&key))? {
            let Ok(node) = NodeName::new(node) else {
                continue;
            };
            if meta.is_file() {
                out.insert(Entry::Kv(key.clone(), node), Fingerprint::of(&meta));
            }
        }
    }
    Ok(out)
}

/// The entries that differ between `old` and `new` (added, changed, removed), sorted.
pub(crate) fn diff(old: &Scan, new: &Scan) -> Vec<Entry> {
    let mut changed: Vec<Entry> = new
        .iter()
        .filter(|(e, fp)| old.get(*e) != Some(*fp))
        .map(|(e, _)| e.clone())
        .collect();
    changed.extend(old.keys().filter(|e| !new.contains_key(*e)).cloned());
    changed.sort();
    changed
}
