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

mod fsutil;
mod poll;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mpcluster_core::NodeName;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::Member;
use tokio::sync::broadcast;
use tracing::warn;

use crate::names::{check_doc_content, check_doc_name, check_kv_key, check_kv_value};
use crate::{
    ClusterStore, EVENT_CHANNEL_CAPACITY, EmbeddedOptions, Expect, MembershipHandle, StoreError,
    StoreEvent, StoreSubscription,
};
use poll::{Entry, Fingerprint, Scan};

/// Subdirectory holding documents.
pub(crate) const DOCS_DIR: &str = "docs";
/// Subdirectory holding node KV values (`kv/<key>/<node>`).
pub(crate) const KV_DIR: &str = "kv";
/// The lock file for document compare-and-swap.
pub(crate) const LOCK_FILE: &str = ".lock";

/// The embedded store; see the [module docs](self). Cheap to clone (shared state).
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    describe: String,
    events: broadcast::Sender<StoreEvent>,
    /// Fingerprints as last seen (by this process's writes or the poller).
    known: Mutex<Known>,
    poller_started: AtomicBool,
    poll_interval: Duration,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// What the poller compares against.
struct Known {
    scan: Scan,
    /// Counts this process's own changes.
    generation: u64,
    /// Entries this process changed, with the generation of the change. A poll that started
    /// before such a change must not report (or undo) it.
    touched: HashMap<Entry, u64>,
}

impl Inner {
    fn known(&self) -> MutexGuard<'_, Known> {
        // The map is always consistent (single inserts/removals), so a poisoned lock is fine.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember `entry`'s new fingerprint (so the poller does not report this process's own
    /// write again) and announce the change.
    fn changed(&self, entry: Entry, fp: Option<Fingerprint>) {
        {
            let mut known = self.known();
            known.generation += 1;
            let generation = known.generation;
            known.touched.insert(entry.clone(), generation);
            match fp {
                Some(fp) => known.scan.insert(entry.clone(), fp),
                None => known.scan.remove(&entry),
            };
        }
        // No receivers is fine.
        let _ = self.events.send(entry.event());
    }

    fn kv_path(&self, key: &str, node: &NodeName) -> PathBuf {
        self.dir.join(KV_DIR).join(key).join(node.as_str())
    }

    fn doc_path(&self, name: &str) -> PathBuf {
        self.dir.join(DOCS_DIR).join(name)
    }
}

/// Run blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    store: &str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Unavailable {
            store: store.to_owned(),
            reason: "the runtime is shutting down".to_owned(),
            source: None,
        }),
    }
}

impl EmbeddedStore {
    /// Open (creating with mode 0700 if needed) the store in `dir`. Removes temp files left
    /// by crashed writers. Must be called within a Tokio runtime (the poller runs on it).
    pub async fn open(dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedStore, StoreError> {
        let describe = format!("embedded store {}", dir.display());
        let root = dir.to_path_buf();
        let scan = blocking(&describe, move || {
            fsutil::create_dir_private(&root)?;
            let docs = root.join(DOCS_DIR);
            let kv = root.join(KV_DIR);
            fsutil::create_dir_private(&docs)?;
            fsutil::create_dir_private(&kv)?;
            let mut removed = fsutil::remove_stale_temp_files(&docs)?;
            let keys = std::fs::read_dir(&kv).map_err(|e| StoreError::io(&kv, e))?;
            for key in keys {
                let key = key.map_err(|e| StoreError::io(&kv, e))?;
                if key.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    removed.extend(fsutil::remove_stale_temp_files(&key.path())?);
                }
            }
            for path in removed {
                warn!(path = %path.display(), "removed a temp file left by a crashed writer");
            }
            poll::scan(&root)
        })
        .await?;
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                describe,
                events,
                known: Mutex::new(Known {
                    scan,
                    generation: 0,
                    touched: HashMap::new(),
                }),
                poller_started: AtomicBool::new(false),
                poll_interval: options.poll_interval,
                runtime: tokio::runtime::Handle::current(),
            }),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn start_poller(&self) {
        if self.inner.poller_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let period = self.inner.poll_interval;
        self.inner.runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                // The task ends with the store.
                let Some(inner) = weak.upgrade() else { break };
                if inner.events.receiver_count() == 0 {
                    continue;
                }
                let root = inner.dir.clone();
                let started_at = inner.known().generation;
                match blocking(&inner.describe, move || poll::scan(&root)).await {
                    Ok(new) => {
                        let changed = {
                            let mut known = inner.known();
                            let mut changed = poll::diff(&known.scan, &new);
                            // Our own writes since the scan started are newer than the scan.
                            changed
                                .retain(|e| known.touched.get(e).is_none_or(|g| *g <= started_at));
                            for e in &changed {
                                match new.get(e) {
                                    Some(fp) => known.scan.insert(e.clone(), *fp),
                                    None => known.scan.remove(e),
                                };
                            }
                            known.touched.retain(|_, g| *g > started_at);
                            changed
                        };
                        for entry in changed {
                            let _ = inner.events.send(entry.event());
                        }
                    }
                    Err(e) => warn!(
                        store = %inner.describe,
                        error = &e as &dyn std::error::Error,
                        "polling for changes failed"
                    ),
                }
            }
        });
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
                None => fsutil::remove_durable(&path)?,
                Some(v) => {
                    if fsutil::read_optional(&path)?.as_deref() == Some(v.as_bytes()) {
                        false
                    } else {
                        if let Some(parent) = path.parent() {
                            fsutil::create_dir_private(parent)?;
                        }
                        fsutil::atomic_write(&path, v.as_bytes())?;
                        true
                    }
                }
            };
            if changed {
                inner.changed(entry, Fingerprint::of_path(&path)?);
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
                match String::from_utf8(bytes) {
                    Ok(v) => {
                        out.insert(node, v);
                    }
                    Err(_) => {
                        warn!(path = %path.display(), "skipping a node KV value that is not UTF-8")
                    }
                }
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
                if fsutil::remove_durable(&inner.kv_path(&name, &node))? {
                    inner.changed(Entry::Kv(name, node.clone()), None);
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
            let _lock = fsutil::DirLock::acquire(&inner.dir.join(LOCK_FILE))?;
            let current = fsutil::read_optional(&path)?.map(|b| ConfigDigest::of_bytes(&b));
            expected.check(&name, current.as_ref())?;
            let digest = ConfigDigest::of(&content);
            if current != Some(digest) {
                fsutil::atomic_write(&path, content.as_bytes())?;
                inner.changed(Entry::Doc(name), Fingerprint::of_path(&path)?);
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
            let _lock = fsutil::DirLock::acquire(&inner.dir.join(LOCK_FILE))?;
            let current = fsutil::read_optional(&path)?.map(|b| ConfigDigest::of_bytes(&b));
            expected.check(&name, current.as_ref())?;
            if current.is_none() {
                return Ok(false);
            }
            let removed = fsutil::remove_durable(&path)?;
            if removed {
                inner.changed(Entry::Doc(name), None);
            }
            Ok(removed)
        })
        .await
    }

    async fn subscribe(&self) -> StoreSubscription {
        let rx = self.inner.events.subscribe();
        self.start_poller();
        StoreSubscription::new(rx)
    }
}
