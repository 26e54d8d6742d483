//! Change detection for the file-backed stores: a [`Fingerprint`] of every stored item, the
//! diff between two [`Scan`]s as events, and [`Watch`], which announces this process's own
//! writes at once and finds everyone else's by polling.
//!
//! Polling, not inotify: the embedded store is shared by processes that each announce their
//! own writes, and on pmxcfs (FUSE without invalidations) inotify never reports writes made on
//! other nodes, so polling is the only way to see them.
//!
//! The backend supplies the scan (its layout) as a closure. Fingerprints come in two kinds:
//! [`Fingerprint::Stat`] (inode, size, mtime: every write replaces its file by `rename`, so the
//! inode changes on each write) and [`Fingerprint::Content`] (a digest: for small items whose
//! change must never be missed, and for generated files whose metadata says nothing).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mpcluster_core::NodeName;
use mpcluster_core::digest::ConfigDigest;
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::{blocking, fsutil};
use crate::{EVENT_CHANNEL_CAPACITY, StoreError, StoreEvent, StoreSubscription};

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Entry {
    /// A document.
    Doc(String),
    /// A node KV value: key, node.
    Kv(String, NodeName),
    /// The membership (pve: `.members`).
    Members,
}

impl Entry {
    pub(crate) fn event(&self) -> StoreEvent {
        match self {
            Entry::Doc(name) => StoreEvent::Document { name: name.clone() },
            Entry::Kv(key, node) => StoreEvent::NodeKv {
                key: key.clone(),
                node: node.clone(),
            },
            Entry::Members => StoreEvent::Members,
        }
    }
}

/// Identity of one version of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fingerprint {
    /// File metadata.
    Stat { ino: u64, size: u64, mtime_ns: i128 },
    /// A digest of the content (or of what it means).
    Content(ConfigDigest),
}

impl Fingerprint {
    pub(crate) fn of(meta: &fs::Metadata) -> Fingerprint {
        Fingerprint::Stat {
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }

    /// The metadata fingerprint of the file at `path`, `None` if it does not exist.
    pub(crate) fn of_path(path: &Path) -> Result<Option<Fingerprint>, StoreError> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(Fingerprint::of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// The content fingerprint of `bytes`.
    pub(crate) fn content(bytes: &[u8]) -> Fingerprint {
        Fingerprint::Content(ConfigDigest::of_bytes(bytes))
    }
}

/// Fingerprints of everything stored.
pub(crate) type Scan = HashMap<Entry, Fingerprint>;

/// A backend's scan of its whole data set (blocking).
pub(crate) type ScanFn = Arc<dyn Fn() -> Result<Scan, StoreError> + Send + Sync>;

/// The entries of one directory that may be stored items: no dot files, no temp files.
/// Callers check the names against their rules. Missing directory: empty.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<(String, fs::Metadata)>, StoreError> {
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

/// What the poller compares against.
struct Known {
    scan: Scan,
    /// Counts this process's own changes.
    generation: u64,
    /// Entries this process changed, with the generation of the change. A poll that started
    /// before such a change must not report (or undo) it.
    touched: HashMap<Entry, u64>,
}

/// The change feed of one store object: its own writes announced at once
/// ([`changed`](Self::changed)), everyone else's found by a polling task that the first
/// [`subscribe`](Self::subscribe) starts and that runs while anyone is subscribed. The task
/// ends with the `Watch`.
pub(crate) struct Watch {
    describe: String,
    events: broadcast::Sender<StoreEvent>,
    known: Mutex<Known>,
    poller_started: AtomicBool,
    poll_interval: Duration,
    runtime: tokio::runtime::Handle,
    scan: ScanFn,
}

impl Watch {
    /// A feed starting from `initial` (the scan made when the store was opened). Must be
    /// called within a Tokio runtime (the poller runs on it).
    pub(crate) fn new(
        describe: String,
        poll_interval: Duration,
        initial: Scan,
        scan: ScanFn,
    ) -> Watch {
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        Watch {
            describe,
            events,
            known: Mutex::new(Known {
                scan: initial,
                generation: 0,
                touched: HashMap::new(),
            }),
            poller_started: AtomicBool::new(false),
            poll_interval,
            runtime: tokio::runtime::Handle::current(),
            scan,
        }
    }

    fn known(&self) -> MutexGuard<'_, Known> {
        // The map is always consistent (single inserts/removals), so a poisoned lock is fine.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember `entry`'s new fingerprint (so the poller does not report this process's own
    /// write again) and announce the change.
    pub(crate) fn changed(&self, entry: Entry, fp: Option<Fingerprint>) {
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

    /// A new subscription; starts the poller on first use.
    pub(crate) fn subscribe(self: &Arc<Self>) -> StoreSubscription {
        let rx = self.events.subscribe();
        self.start_poller();
        StoreSubscription::new(rx)
    }

    fn start_poller(self: &Arc<Self>) {
        if self.poller_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        let period = self.poll_interval;
        self.runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut failing = false;
            loop {
                tick.tick().await;
                // The task ends with the store.
                let Some(watch) = weak.upgrade() else { break };
                if watch.events.receiver_count() == 0 {
                    continue;
                }
                let scan = watch.scan.clone();
                let started_at = watch.known().generation;
                match blocking(&watch.describe, move || scan()).await {
                    Ok(new) => {
                        if failing {
                            info!(store = %watch.describe, "polling for changes works again");
                            failing = false;
                        }
                        watch.apply(new, started_at);
                    }
                    // Once per outage, not once per poll.
                    Err(e) if !failing => {
                        failing = true;
                        warn!(
                            store = %watch.describe,
                            error = &e as &dyn std::error::Error,
                            "polling for changes failed; retrying"
                        );
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// Announce what changed between the known state and a scan that started at generation
    /// `started_at`.
    fn apply(&self, new: Scan, started_at: u64) {
        let changed = {
            let mut known = self.known();
            let mut changed = diff(&known.scan, &new);
            // Our own writes since the scan started are newer than the scan.
            changed.retain(|e| known.touched.get(e).is_none_or(|g| *g <= started_at));
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
            let _ = self.events.send(entry.event());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn node(n: &str) -> NodeName {
        NodeName::new(n).unwrap()
    }

    #[test]
    fn diff_reports_added_changed_removed_sorted() {
        let fp = |n: u8| Fingerprint::content(&[n]);
        let old = Scan::from([
            (Entry::Doc("a".into()), fp(1)),
            (Entry::Doc("b".into()), fp(1)),
            (Entry::Members, fp(1)),
        ]);
        let new = Scan::from([
            (Entry::Doc("a".into()), fp(1)),
            (Entry::Doc("b".into()), fp(2)),
            (Entry::Kv("k".into(), node("n")), fp(1)),
        ]);
        assert_eq!(
            diff(&old, &new),
            vec![
                Entry::Doc("b".into()),
                Entry::Kv("k".into(), node("n")),
                Entry::Members
            ]
        );
        assert_eq!(Entry::Members.event(), StoreEvent::Members);
    }

    #[tokio::test]
    async fn own_writes_are_not_reported_again_by_an_older_scan() {
        let watch = Arc::new(Watch::new(
            "test".into(),
            Duration::from_secs(3600),
            Scan::new(),
            Arc::new(|| Ok(Scan::new())),
        ));
        let mut sub = watch.subscribe();
        let e = Entry::Doc("d".into());
        let before = watch.known().generation;
        watch.changed(e.clone(), Some(Fingerprint::content(b"x")));
        assert_eq!(sub.try_recv(), Some(e.event()));
        // A scan that started before our write does not see it: neither a removal event nor
        // forgetting it.
        watch.apply(Scan::new(), before);
        assert_eq!(sub.try_recv(), None);
        // A later scan that does not find it reports the removal.
        let now = watch.known().generation;
        watch.apply(Scan::new(), now);
        assert_eq!(sub.try_recv(), Some(e.event()));
    }
}
