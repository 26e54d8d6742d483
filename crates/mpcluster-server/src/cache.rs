//! The status cache: the cluster status is computed here, on store change events (debounced)
//! and on a timer (broadcasts age into staleness without any event), never per request.
//!
//! In Proxmox mode ([`CacheConfig::pve`]) a change of storage.cfg recomputes too.
//!
//! Entry point: [`StatusCache::spawn`]. Handlers read the latest [`StatusView`] from a
//! `watch` channel and send its pre-encoded bodies.
//!
//! With an in-process agent ([`CacheConfig::local_publish`]), the cache also knows whether
//! that agent's writes to the store work: while they fail, the local node goes into the
//! snapshot's `publish-errors` (its cells `unknown`, a `publish-error` in its issues), and a
//! change of that state recomputes at once.
//!
//! The nodes' per-path detail is part of the snapshot; the [`StatusEngine`] decodes a node's
//! detail only when its value changed, computes the root-cause hints from it and keeps each
//! hint's `since` across recomputations (also exported in the snapshot's `hint-since`).
//!
//! Each successful recomputation's duration goes into [`CacheConfig::metrics`]
//! (`mpcluster_status_recompute_duration_seconds`); the `/metrics` handler reads them from
//! [`StatusCache::metrics`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mpcluster_core::NodeName;
use mpcluster_core::snapshot::{PublishError, Snapshot};
use mpcluster_core::status::{Assembly, StatusEngine};
use mpcluster_store::{ClusterStore, StoreSubscription};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::chain;
use crate::metrics::Metrics;
use crate::routes::Data;
use mpcluster_config::pve::{PveMode, STORAGE_CFG_POLL};
use mpcluster_config::{read_snapshot, unix_now};

/// How the cache refreshes.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Recompute at least this often (ageing into staleness, detecting a lost store).
    pub refresh: Duration,
    /// After a change event, wait this long for more before recomputing.
    pub debounce: Duration,
    /// Staleness limit passed into the snapshot (`None` = the default 180 s).
    pub stale_after: Option<u64>,
    /// This node, for a standalone store.
    pub local_node: Option<NodeName>,
    /// The publishing health of `local_node`'s agent when it runs in this process
    /// (`mpcluster_agent::run::PublishHealth`'s receiver): `Some(failure)` while its writes to
    /// the store fail.
    pub local_publish: Option<watch::Receiver<Option<PublishError>>>,
    /// Proxmox mode: the expectations come from storage.cfg, and a change of that file
    /// recomputes at once (it is polled: pmxcfs tells nobody; see `mpcluster_config::pve`).
    pub pve: Option<PveMode>,
    /// Where recomputation times go (`serve` shares it with its instrumented store).
    pub metrics: Metrics,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            refresh: Duration::from_secs(5),
            debounce: Duration::from_millis(100),
            stale_after: None,
            local_node: None,
            local_publish: None,
            pve: None,
            metrics: Metrics::default(),
        }
    }
}

/// One computed status with everything handlers send, pre-encoded.
#[derive(Debug)]
pub struct StatusView {
    /// The snapshot the status was computed from (the last good one).
    pub snapshot: Arc<Snapshot>,
    /// The assembly (status, notes, node overview).
    pub assembly: Arc<Assembly>,
    /// Problems with stored documents.
    pub doc_notes: Vec<String>,
    /// When it was computed (unix s).
    pub computed_at: i64,
    /// Counts the successful recomputations of this cache (the same for a view re-sent with a
    /// store error): tells whether a picture is new.
    pub generation: u64,
    /// `{"data": {"luns", "nodes"}}`.
    pub status_body: Bytes,
    /// `status_body` gzip-compressed (computed once per recomputation, not per request; the
    /// matrix JSON compresses about tenfold, and its size is what bounds the request rate).
    pub status_body_gzip: Bytes,
    /// `{"data": [node overview...]}`.
    pub nodes_body: Bytes,
    /// Set when the latest refresh failed: the store's error. The rest is the last good state.
    pub store_error: Option<String>,
}

#[derive(Serialize)]
struct StaleStatus<'a> {
    #[serde(flatten)]
    status: &'a mpcluster_core::status::Status,
    stale: bool,
}

impl StatusView {
    /// The last good status marked `"stale": true`, for the 503 body.
    pub fn stale_status_json(&self) -> serde_json::Value {
        serde_json::to_value(StaleStatus {
            status: &self.assembly.status,
            stale: true,
        })
        .unwrap_or(serde_json::Value::Null)
    }
}

/// The handle handlers use: the latest view, or `None` before the first successful refresh.
#[derive(Debug, Clone)]
pub struct StatusCache {
    rx: watch::Receiver<Option<Arc<StatusView>>>,
    first_error: watch::Receiver<Option<String>>,
    metrics: Metrics,
}

impl StatusCache {
    /// The latest view (`None` until the store answered once).
    pub fn latest(&self) -> Option<Arc<StatusView>> {
        self.rx.borrow().clone()
    }

    /// Why there is no view yet (the store has not answered since start).
    pub fn startup_error(&self) -> Option<String> {
        self.first_error.borrow().clone()
    }

    /// The metrics this cache records into ([`CacheConfig::metrics`]).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Wait until a view computed at or after `after` (unix s) exists (tests, CLI).
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// Start the refresh task. It ends when the returned handle is aborted or the store's event
    /// channel closes.
    pub fn spawn(
        store: Arc<dyn ClusterStore>,
        config: CacheConfig,
    ) -> (StatusCache, JoinHandle<()>) {
        let (tx, rx) = watch::channel(None);
        let (err_tx, first_error) = watch::channel(None);
        let metrics = config.metrics.clone();
        let task = tokio::spawn(refresh_loop(store, config, tx, err_tx));
        (
            StatusCache {
                rx,
                first_error,
                metrics,
            },
            task,
        )
    }
}

fn encode<T: Serialize>(data: T) -> Bytes {
    // Encoding our own types into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(&Data { data }).unwrap_or_default())
}

/// gzip at the fastest level (the body is recompressed on every recomputation).
fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

/// Whether a store change can change the status. The recorder's lease renewals, sealed event
/// chunks and the notifier's outbox cannot (the log's head can: flapping comes from it).
fn affects_status(ev: &mpcluster_store::StoreEvent) -> bool {
    match ev {
        mpcluster_store::StoreEvent::Document { name } => {
            name != mpcluster_config::events::LEADER_DOC
                && !name.starts_with("events-")
                && !name.starts_with("notify-")
        }
        _ => true,
    }
}

async fn refresh_loop(
    store: Arc<dyn ClusterStore>,
    config: CacheConfig,
    tx: watch::Sender<Option<Arc<StatusView>>>,
    err_tx: watch::Sender<Option<String>>,
) {
    let mut events: StoreSubscription = store.subscribe().await;
    let mut engine = StatusEngine::default();
    let mut timer = tokio::time::interval(config.refresh);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error: Option<String> = None;
    let mut generation = 0u64;
    let mut publish = config.local_publish.clone();
    let mut storage_cfg = config
        .pve
        .as_ref()
        .map(|p| p.watch_storage_cfg(STORAGE_CFG_POLL));
    loop {
        let storage_cfg_changed = async {
            match storage_cfg.as_mut() {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        let publish_changed = async {
            match publish.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = timer.tick() => {}
            () = storage_cfg_changed => {}
            alive = publish_changed => {
                if !alive {
                    // The agent stopped (shutdown): keep its last state, stop listening.
                    publish = None;
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else {
                    tracing::info!("store event channel closed; status cache stops");
                    return;
                };
                if !affects_status(&ev) {
                    continue;
                }
                // Debounce: one recomputation for a burst of changes.
                tokio::time::sleep(config.debounce).await;
                while events.try_recv().is_some() {}
            }
        }
        let started = Instant::now();
        match read_snapshot(
            store.as_ref(),
            unix_now(),
            config.stale_after,
            config.local_node.as_ref(),
            config.pve.as_ref(),
        )
        .await
        {
            Ok(mut read) => {
                if let (Some(node), Some(rx)) = (&config.local_node, &config.local_publish)
                    && let Some(failure) = rx.borrow().clone()
                {
                    read.snapshot.publish_errors.insert(node.clone(), failure);
                }
                if last_error.take().is_some() {
                    tracing::info!(store = %store.describe(), "store reachable again");
                }
                let mut assembly = engine.assemble(&read.snapshot);
                // Unreadable documents are read as empty: the status says so, not only the log.
                assembly.status.problems = read.notes.clone();
                // Replays of the exported snapshot show the hints' `since` as kept here.
                read.snapshot.hint_since = engine.hint_since().clone();
                for note in &read.notes {
                    tracing::warn!("{note}");
                }
                let status_body = encode(&assembly.status);
                let view = StatusView {
                    status_body_gzip: gzip(&status_body),
                    status_body,
                    nodes_body: encode(&assembly.node_overview),
                    snapshot: Arc::new(read.snapshot),
                    assembly: Arc::new(assembly),
                    doc_notes: read.notes,
                    computed_at: unix_now(),
                    generation: {
                        generation += 1;
                        generation
                    },
                    store_error: None,
                };
                config.metrics.observe_recompute(started.elapsed());
                let _ = err_tx.send(None);
                let _ = tx.send(Some(Arc::new(view)));
            }
            Err(e) => {
                let message = chain(&e);
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, "status refresh failed");
                }
                last_error = Some(message.clone());
                let _ = err_tx.send(Some(message.clone()));
                let previous = tx.borrow().clone();
                if let Some(prev) = previous
                    && prev.store_error.as_deref() != Some(message.as_str())
                {
                    let view = StatusView {
                        snapshot: prev.snapshot.clone(),
                        assembly: prev.assembly.clone(),
                        doc_notes: prev.doc_notes.clone(),
                        computed_at: prev.computed_at,
                        generation: prev.generation,
                        status_body: prev.status_body.clone(),
                        status_body_gzip: prev.status_body_gzip.clone(),
                        nodes_body: prev.nodes_body.clone(),
                        store_error: Some(message),
                    };
                    let _ = tx.send(Some(Arc::new(view)));
                }
            }
        }
    }
}
