//! The embedded store ([`EmbeddedStore`]): files in one directory, for a single host.
//!
//! Layout of the directory (created 0700; files 0600):
//!
//! ```text
//! DIR/
//!   .lock               flock(2) target serialising document compare-and-swap
//!   docs/<name>         document content, byte for byte
//!   kv/<key>/<node>     node KV value, byte for byte
//!   (.<file>.<pid>.<random>.tmp   in-flight writes; renamed over <file>)
//! ```
//!
//! Every write is crash-safe (temp file, `fsync`, `rename`, `fsync` of the directory), so
//! every process on the host (the daemon, a CLI) shares the same data.
//! Document compare-and-swap holds across processes by taking an exclusive `flock` on `.lock`
//! around read-compare-write. Readers take no lock: `rename` makes each file appear whole.
//!
//! The store is standalone: no membership ([`ClusterStore::members`] is empty).
//!
//! Events: this process's writes are announced at once; changes by other processes are found
//! by a polling task (started by the first [`ClusterStore::subscribe`], every
//! [`EmbeddedOptions::poll_interval`]) that compares file fingerprints (inode, size, mtime).
//! Temp files left by writers that died mid-write are removed when a store is opened.
//!
//! The file primitives and the polling are shared with the pve store (`crate::files`); the
//! `flock` lock ([`flock`]) is this store's own.

mod flock;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mpcluster_core::NodeName;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::Member;
use tracing::warn;

use crate::files::blocking;
use crate::files::fsutil::{self, TempStyle, WriteOptions};
use crate::files::watch::{self, Entry, Fingerprint, Scan, Watch};
use crate::names::{check_doc_content, check_doc_name, check_kv_key, check_kv_value, check_name};
use crate::{
    ClusterStore, EmbeddedOptions, Expect, MembershipHandle, StoreError, StoreSubscription,
};

/// Subdirectory holding documents.
pub(crate) const DOCS_DIR: &str = "docs";
/// Subdirectory holding node KV values (`kv/<key>/<node>`).
pub(crate) const KV_DIR: &str = "kv";
/// The lock file for document compare-and-swap.
pub(crate) const LOCK_FILE: &str = ".lock";

/// Hidden temp files, each write synced to disk.
const WRITE: WriteOptions = WriteOptions {
    style: TempStyle::Hidden,
    fsync: true,
};

/// The embedded store; see the [module docs](self). Cheap to clone (shared state).
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    describe: String,
    /// This process's writes and the poller's findings, as events.
    watch: Arc<Watch>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn kv_path(&self, key: &str, node: &NodeName) -> PathBuf {
        self.dir.join(KV_DIR).join(key).join(node.as_str())
    }

    fn doc_path(&self, name: &str) -> PathBuf {
        self.dir.join(DOCS_DIR).join(name)
    }
}

/// Fingerprint every document and node KV value under `root`.
fn scan(root: &Path) -> Result<Scan, StoreError> {
    let mut out = Scan::new();
    for (name, meta) in watch::list_files(&root.join(DOCS_DIR))? {
        if meta.is_file() && check_name("document name", &name).is_ok() {
            out.insert(Entry::Doc(name), Fingerprint::of(&meta));
        }
    }
    let kv = root.join(KV_DIR);
    for (key, meta) in watch::list_files(&kv)? {
        if !meta.is_dir() || check_name("node KV key", &key).is_err() {
            continue;
        }
        for (node, meta) in watch::list_files(&kv.join(&key))? {
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

impl EmbeddedStore {
    /// Open (creating with mode 0700 if needed) the store in `dir`. Removes temp files left
    /// by crashed writers. Must be called within a Tokio runtime (the poller runs on it).
    pub async fn open(dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedStore, StoreError> {
        let describe = format!("embedded store {}", dir.display());
        let root = dir.to_path_buf();
        let initial = blocking(&describe, move || {
            fsutil::create_dir_private(&root)?;
            let docs = root.join(DOCS_DIR);
            let kv = root.join(KV_DIR);
            fsutil::create_dir_private(&docs)?;
            fsutil::create_dir_private(&kv)?;
            let stale = fsutil::hidden_temp_of_dead_writer;
            let mut removed = fsutil::remove_stale_temp_files(&docs, stale)?;
            let keys = std::fs::read_dir(&kv).map_err(|e| StoreError::io(&kv, e))?;
            for key in keys {
                let key = key.map_err(|e| StoreError::io(&kv, e))?;
                if key.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    removed.extend(fsutil::remove_stale_temp_files(&key.path(), stale)?);
                }
            }
            for path in removed {
                warn!(path = %path.display(), "removed a temp file left by a crashed writer");
            }
            scan(&root)
        })
        .await?;
        let root = dir.to_path_buf();
        let watch = Watch::new(
            describe.clone(),
            options.poll_interval,
            initial,
            Arc::new(move || scan(&root)),
        );
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                describe,
                watch: Arc::new(watch),
            }),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

#[async_trait::async_trait]
impl ClusterStore for EmbeddedStore {
    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    fn is_standalone(&self) -> bool {
        true
    }

    async fn put(&self, key: &str, node: &NodeName, value: Option<&str>) -> Result<(), StoreError> {
        check_kv_key(key)?;
        let value = value.filter(|v| !v.is_empty()).map(str::to_owned);
        if let Some(v) = &value {
            check_kv_value(key, v)?;
        }
        let inner = self.inner.clone();
        let entry = Entry::Kv(key.to_owned(), node.clone());
        let path = inner.kv_path(key, node);
        blocking(&self.inner.describe, move || {
            let changed = match value {
                None => fsutil::remove_durable(&path, WRITE.fsync)?,
                Some(v) => {
                    if fsutil::read_optional(&path)?.as_deref() == Some(v.as_bytes()) {
                        false
                    } else {
                        if let Some(parent) = path.parent() {
                            fsutil::create_dir_private(parent)?;
                        }
                        fsutil::atomic_write(&path, v.as_bytes(), WRITE)?;
                        true
                    }
                }
            };
            if changed {
                inner.watch.changed(entry, Fingerprint::of_path(&path)?);
            }
            Ok(())
        })
        .await
    }

    async fn get_all(&self, key: &str) -> Result<BTreeMap<NodeName, String>, StoreError> {
        check_kv_key(key)?;
        let dir = self.inner.dir.join(KV_DIR).join(key);
        blocking(&self.inner.describe, move || {
            let mut out = BTreeMap::new();
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(StoreError::io(&dir, e)),
            };
            for entry in rd {
                let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let Ok(node) = NodeName::new(name) else {
                    continue;
                };
                let path = entry.path();
                // Gone between listing and reading: deleted meanwhile.
                let Some(bytes) = fsutil::read_optional(&path)? else {
                    continue;
                };
                // Kept, lossily decoded: the reader must see that the node's value is unreadable
                // (a broadcast error), not lose the node silently.
                let value = String::from_utf8(bytes).unwrap_or_else(|e| {
                    warn!(path = %path.display(), "a node KV value is not UTF-8");
                    String::from_utf8_lossy(e.as_bytes()).into_owned()
                });
                out.insert(node, value);
            }
            Ok(out)
        })
        .await
    }

    async fn get(&self, key: &str, node: &NodeName) -> Result<Option<String>, StoreError> {
        check_kv_key(key)?;
        let path = self.inner.kv_path(key, node);
        let store = self.inner.describe.clone();
        blocking(&self.inner.describe, move || {
            match fsutil::read_optional(&path)? {
                None => Ok(None),
                Some(b) => String::from_utf8(b)
                    .map(Some)
                    .map_err(|_| StoreError::Corrupt {
                        store,
                        location: path.display().to_string(),
                        problem: "node KV value is not UTF-8".to_owned(),
                    }),
            }
        })
        .await
    }

    async fn members(&self) -> Result<BTreeMap<NodeName, Member>, StoreError> {
        Ok(BTreeMap::new())
    }

    async fn join(&self, node: &NodeName, _ttl: Duration) -> Result<MembershipHandle, StoreError> {
        Ok(MembershipHandle::standalone(
            node.clone(),
            self.inner.describe.clone(),
        ))
    }

    async fn forget_node(&self, node: &NodeName) -> Result<bool, StoreError> {
        // No membership here: forgetting removes `kv/<key>/<node>` under every key, one
        // durable removal at a time (not atomic as a whole; forgetting again finishes).
        let inner = self.inner.clone();
        let node = node.clone();
        blocking(&self.inner.describe, move || {
            let kv = inner.dir.join(KV_DIR);
            let keys = match std::fs::read_dir(&kv) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(StoreError::io(&kv, e)),
            };
            let mut removed_any = false;
            for key in keys {
                let key = key.map_err(|e| StoreError::io(&kv, e))?;
                let Ok(name) = key.file_name().into_string() else {
                    continue;
                };
                if check_kv_key(&name).is_err() || !key.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                if fsutil::remove_durable(&inner.kv_path(&name, &node), WRITE.fsync)? {
                    inner.watch.changed(Entry::Kv(name, node.clone()), None);
                    removed_any = true;
                }
            }
            Ok(removed_any)
        })
        .await
    }

    async fn read_doc(&self, name: &str) -> Result<Option<(String, ConfigDigest)>, StoreError> {
        check_doc_name(name)?;
        let path = self.inner.doc_path(name);
        let store = self.inner.describe.clone();
        blocking(&self.inner.describe, move || {
            let Some(bytes) = fsutil::read_optional(&path)? else {
                return Ok(None);
            };
            let digest = ConfigDigest::of_bytes(&bytes);
            let content = String::from_utf8(bytes).map_err(|_| StoreError::Corrupt {
                store,
                location: path.display().to_string(),
                problem: "document is not UTF-8".to_owned(),
            })?;
            Ok(Some((content, digest)))
        })
        .await
    }

    async fn write_doc(
        &self,
        name: &str,
        content: &str,
        expected: Expect,
    ) -> Result<ConfigDigest, StoreError> {
        check_doc_name(name)?;
        check_doc_content(name, content)?;
        let inner = self.inner.clone();
        let name = name.to_owned();
        let content = content.to_owned();
        blocking(&self.inner.describe, move || {
            let path = inner.doc_path(&name);
            let _lock = flock::FileLock::acquire(&inner.dir.join(LOCK_FILE))?;
            let current = fsutil::read_optional(&path)?.map(|b| ConfigDigest::of_bytes(&b));
            expected.check(&name, current.as_ref())?;
            let digest = ConfigDigest::of(&content);
            if current != Some(digest) {
                fsutil::atomic_write(&path, content.as_bytes(), WRITE)?;
                inner
                    .watch
                    .changed(Entry::Doc(name), Fingerprint::of_path(&path)?);
            }
            Ok(digest)
        })
        .await
    }

    async fn delete_doc(&self, name: &str, expected: Expect) -> Result<bool, StoreError> {
        check_doc_name(name)?;
        let inner = self.inner.clone();
        let name = name.to_owned();
        blocking(&self.inner.describe, move || {
            let path = inner.doc_path(&name);
            let _lock = flock::FileLock::acquire(&inner.dir.join(LOCK_FILE))?;
            let current = fsutil::read_optional(&path)?.map(|b| ConfigDigest::of_bytes(&b));
            expected.check(&name, current.as_ref())?;
            if current.is_none() {
                return Ok(false);
            }
            let removed = fsutil::remove_durable(&path, WRITE.fsync)?;
            if removed {
                inner.watch.changed(Entry::Doc(name), None);
            }
            Ok(removed)
        })
        .await
    }

    async fn subscribe(&self) -> StoreSubscription {
        self.inner.watch.subscribe()
    }
}
