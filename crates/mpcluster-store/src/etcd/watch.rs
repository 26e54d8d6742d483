//! The etcd change feed: one watch on the cluster prefix, turned into [`StoreEvent`]s.
//!
//! Started by the first `subscribe()`. When the stream breaks (member killed, leader lost,
//! compaction) it is re-opened through the endpoint pool, resuming after the last revision
//! seen, and subscribers get [`StoreEvent::Resync`]. The task ends when the store is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::Inner;
use super::keys::Keys;
use super::pool::Pool;
use super::rpc::pb::etcdserverpb::WatchCreateRequest;
use super::rpc::prefix_range;
use crate::StoreEvent;

/// Warn about a broken feed at most this often (debug otherwise).
const WARN_EVERY: Duration = Duration::from_secs(30);
const PAUSE_MIN: Duration = Duration::from_millis(100);
const PAUSE_MAX: Duration = Duration::from_secs(2);

/// The store's side of the watch task.
pub(crate) struct WatchState {
    shared: Arc<Shared>,
    /// Dropped with the store, which ends the task.
    stop: watch::Sender<()>,
}

struct Shared {
    /// Whether a watch stream is currently established.
    connected: watch::Sender<bool>,
    /// Someone subscribed while no stream was established: announce `Resync` once it is.
    missed: AtomicBool,
}

impl WatchState {
    pub(crate) fn new() -> WatchState {
        WatchState {
            shared: Arc::new(Shared {
                connected: watch::channel(false).0,
                missed: AtomicBool::new(false),
            }),
            stop: watch::channel(()).0,
        }
    }

    /// Wait until a stream is established, at most `limit`. If it is not, the next
    /// established stream announces `Resync`.
    pub(crate) async fn wait_connected(&self, limit: Duration) {
        let mut rx = self.shared.connected.subscribe();
        let ok = matches!(
            tokio::time::timeout(limit, rx.wait_for(|c| *c)).await,
            Ok(Ok(_))
        );
        if !ok {
            self.shared.missed.store(true, Ordering::SeqCst);
        }
    }
}

/// Start the watch task for `inner`.
pub(crate) fn spawn(inner: &Inner) {
    let task = Task {
        pool: inner.pool.clone(),
        keys: inner.keys.clone(),
        events: inner.events.clone(),
        shared: inner.watch.shared.clone(),
        stop: inner.watch.stop.subscribe(),
    };
    inner.runtime.spawn(task.run());
}

struct Task {
    pool: Arc<Pool>,
    keys: Keys,
    events: broadcast::Sender<StoreEvent>,
    shared: Arc<Shared>,
    stop: watch::Receiver<()>,
}

impl Task {
    fn send(&self, ev: StoreEvent) {
        // No receivers is fine.
        let _ = self.events.send(ev);
    }

    async fn run(mut self) {
        let prefix = self.keys.root().to_owned();
        // Next revision to watch from; 0 = from now.
        let mut next_rev: i64 = 0;
        let mut established: u64 = 0;
        let mut pause = PAUSE_MIN;
        let mut last_warn: Option<Instant> = None;
        loop {
            let (key, range_end) = prefix_range(&prefix);
            let create = WatchCreateRequest {
                key,
                range_end,
                start_revision: next_rev,
                progress_notify: true,
                fragment: true,
                ..WatchCreateRequest::default()
            };
            let opened = tokio::select! {
                _ = self.stop.changed() => return,
                r = self.pool.call("watch", |c| {
                    let create = create.clone();
                    async move { c.watch(create).await }
                }) => r,
            };
            let mut stream = match opened {
                Ok(o) => o.value,
                Err(e) => {
                    if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                        warn!(
                            error = &e as &dyn std::error::Error,
                            "change feed down; retrying"
                        );
                        last_warn = Some(Instant::now());
                    } else {
                        debug!(error = %e, "change feed still down");
                    }
                    tokio::select! {
                        _ = self.stop.changed() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(PAUSE_MAX);
                    continue;
                }
            };
            pause = PAUSE_MIN;
            loop {
                let msg = tokio::select! {
                    _ = self.stop.changed() => return,
                    m = stream.message() => m,
                };
                let resp = match msg {
                    Ok(Some(resp)) => resp,
                    Ok(None) => {
                        debug!("change feed stream ended; reconnecting");
                        break;
                    }
                    Err(e) => {
                        debug!(error = %e, "change feed stream failed; reconnecting");
                        break;
                    }
                };
                if resp.canceled {
                    if resp.compact_revision > 0 {
                        // History is gone: start from now; subscribers re-read on Resync.
                        next_rev = 0;
                    }
                    warn!(
                        reason = resp.cancel_reason.as_str(),
                        "etcd canceled the change feed; reconnecting"
                    );
                    break;
                }
                if resp.created {
                    if next_rev == 0
                        && let Some(h) = &resp.header
                    {
                        next_rev = h.revision + 1;
                    }
                    if established > 0 || self.shared.missed.swap(false, Ordering::SeqCst) {
                        self.send(StoreEvent::Resync);
                    }
                    established += 1;
                    last_warn = None;
                    self.shared.connected.send_replace(true);
                    continue;
                }
                let evs = &resp.events;
                if evs.is_empty() {
                    // Progress notification: everything up to the header revision was sent.
                    if let Some(h) = &resp.header {
                        next_rev = next_rev.max(h.revision + 1);
                    }
                }
                let mut last: Option<StoreEvent> = None;
                for ev in evs {
                    let Some(kv) = &ev.kv else { continue };
                    next_rev = next_rev.max(kv.mod_revision + 1);
                    if let Some(e) = self.keys.event_for(&kv.key)
                        && last.as_ref() != Some(&e)
                    {
                        self.send(e.clone());
                        last = Some(e);
                    }
                }
            }
            self.shared.connected.send_replace(false);
            tokio::select! {
                _ = self.stop.changed() => return,
                _ = tokio::time::sleep(PAUSE_MIN) => {}
            }
        }
    }
}
