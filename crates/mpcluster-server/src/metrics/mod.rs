//! Prometheus metrics: `GET /metrics` in the text exposition format (version 0.0.4).
//!
//! Two kinds of series:
//!
//! - **The status** (`mpcluster_lun_*`, `mpcluster_node_*`, `mpcluster_status_*`): a view of
//!   the status cache's latest [`StatusView`], rendered on each scrape; a scrape never reads
//!   the store. States follow the enum pattern: one series per [`MapState`], 1 for the current
//!   state and 0 for the others.
//! - **What the server measures** ([`Metrics`]): status recomputation time (the cache records
//!   it), store request latency and errors per operation ([`InstrumentedStore`], the wrapper
//!   `serve` puts around its store), HTTP requests per route and status code
//!   ([`count_requests`]).
//!
//! Entry points: [`scrape`] (the handler), [`Metrics`], [`Scrape`] (the renderer).
//!
//! Memory: a scrape is rendered while it is sent, about [`CHUNK`] bytes at a time and
//! gzip-compressed on the fly when the client accepts it ([`Scrape::next_chunk`], the body
//! type [`ScrapeBody`]), so it holds the status it shows and one chunk, never the whole text
//! (about 45 MB at 64 nodes x 1000 LUNs: docs/PERFORMANCE.md). A slow reader costs no CPU
//! while it does not read. The text is not cached per status generation: the cache replaces
//! its view at least every 5 s, more often than Prometheus usually scrapes, and the node ages and
//! the server's own counters change with every scrape anyway.
//!
//! Hand-written rather than with the `prometheus-client` crate: nearly every series is a view
//! of the cached assembly rather than a value the code updates, so a registry would have to be
//! refilled with ~450 000 series per scrape (64 x 1000) or be given a custom `Collector`
//! against its encoder anyway, and that encoder writes the whole exposition into one `String`
//! (we stream it). What remains (a few histograms and counters on atomics, the format's
//! escaping) is short, and needs no dependency.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use flate2::write::GzEncoder;
use http_body::Frame;
use mpcluster_core::MapState;
use mpcluster_core::hints::HintKind;
use mpcluster_core::rollup::LunStatus;
use mpcluster_core::status::Assembly;
use mpcluster_store::ClusterStore;

use crate::AppState;
use crate::cache::StatusView;

mod store;
mod text;

pub use store::InstrumentedStore;
use store::{ERROR_KINDS, StoreOp};
pub use text::CONTENT_TYPE;
use text::{Kind, family, label, labels1, sample};

/// The path of the scrape.
pub const PATH: &str = "/metrics";

/// A scrape is produced in pieces of about this many bytes (uncompressed).
pub const CHUNK: usize = 64 * 1024;

/// Bucket bounds (seconds) of the store request histogram: a local file read to a slow etcd.
const STORE_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Bucket bounds (seconds) of the status recomputation histogram (tens of ms at 64 x 1000).
const RECOMPUTE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

// The metric names, with their help texts where they are written.
const LUN_STATE: &str = "mpcluster_lun_state";
const LUN_NODE_STATE: &str = "mpcluster_lun_node_state";
const LUN_NODE_PATHS_ACTIVE: &str = "mpcluster_lun_node_paths_active";
const LUN_NODE_PATHS: &str = "mpcluster_lun_node_paths";

// ---------------------------------------------------------------------------------------------
// What the server measures

/// A histogram of durations (Prometheus buckets are cumulative; these counts are not, they
/// are summed when rendered).
struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the `+Inf` one.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // The first bucket whose upper bound holds it (`le`: less than or equal).
        let i = self.bounds.partition_point(|b| *b < secs);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` samples (the family header is the caller's).
    fn render(&self, out: &mut Vec<u8>, name: &str, labels: &[u8]) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        let mut le = Vec::new();
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            le.clear();
            match self.bounds.get(i) {
                Some(b) => text::float(&mut le, *b),
                None => le.extend_from_slice(b"+Inf"),
            }
            let le = String::from_utf8_lossy(&le);
            sample(out, &bucket, labels, Some(("le", &le)), cumulative);
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        sample(out, &format!("{name}_sum"), labels, None, sum);
        sample(out, &format!("{name}_count"), labels, None, cumulative);
    }
}

/// HTTP request counts: route -> (method, status code) -> count. Bounded: routes are the
/// router's templates (plus `unmatched`), methods a fixed list (plus `other`).
type HttpCounts = BTreeMap<String, BTreeMap<(&'static str, u16), u64>>;

struct Inner {
    recompute: Histogram,
    /// Per [`StoreOp`].
    store_durations: Vec<Histogram>,
    /// Per [`StoreOp`], per [`ERROR_KINDS`] entry.
    store_errors: Vec<[AtomicU64; ERROR_KINDS.len()]>,
    http: Mutex<HttpCounts>,
    /// Events this server recorded, per [`EVENT_KINDS`] entry.
    events: [AtomicU64; EVENT_KINDS.len()],
    /// Failed attempts to record.
    event_errors: AtomicU64,
    /// Notification sends: (target, kind, result) -> count.
    notifications: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    /// Deliveries in the outbox, as this server's notifier last saw them.
    notifications_pending: AtomicU64,
}

/// The `kind` label of `mpcluster_events_recorded_total`.
const EVENT_KINDS: [&str; 2] = ["lun", "cell"];

/// What the server measures about itself: status recomputations, store requests, HTTP
/// requests. Cheap to clone (shared). The status cache owns one
/// ([`CacheConfig::metrics`](crate::cache::CacheConfig::metrics),
/// [`StatusCache::metrics`](crate::cache::StatusCache::metrics)); `serve` measures its store
/// with [`Metrics::instrument`].
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            inner: Arc::new(Inner {
                recompute: Histogram::new(&RECOMPUTE_BUCKETS),
                store_durations: StoreOp::ALL
                    .iter()
                    .map(|_| Histogram::new(&STORE_BUCKETS))
                    .collect(),
                store_errors: StoreOp::ALL
                    .iter()
                    .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                    .collect(),
                http: Mutex::new(BTreeMap::new()),
                events: std::array::from_fn(|_| AtomicU64::new(0)),
                event_errors: AtomicU64::new(0),
                notifications: Mutex::new(BTreeMap::new()),
                notifications_pending: AtomicU64::new(0),
            }),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The `method` label: the usual methods by name, anything else `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    /// `store`, measured into these metrics (every call's duration and error, per operation).
    pub fn instrument(&self, store: Arc<dyn ClusterStore>) -> Arc<dyn ClusterStore> {
        Arc::new(InstrumentedStore::new(store, self.clone()))
    }

    /// One successful status recomputation took `d`.
    pub fn observe_recompute(&self, d: Duration) {
        self.inner.recompute.observe(d);
    }

    /// Events this server recorded.
    pub fn count_events(&self, events: &[mpcluster_core::events::Event]) {
        use mpcluster_core::events::EventKind;
        for e in events {
            let i = match e.kind {
                EventKind::Lun { .. } => 0,
                EventKind::Cell { .. } => 1,
                // The audit trail is written by whoever edits, not by the recorder.
                EventKind::Config { .. } => continue,
            };
            self.inner.events[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An attempt to record events failed.
    pub fn count_event_error(&self) {
        self.inner.event_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// One store request: its duration and, if it failed, the index of its error kind.
    fn store_request(&self, op: StoreOp, d: Duration, error: Option<usize>) {
        if let Some(h) = self.inner.store_durations.get(op.index()) {
            h.observe(d);
        }
        if let Some(e) = error
            && let Some(c) = self
                .inner
                .store_errors
                .get(op.index())
                .and_then(|per| per.get(e))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One HTTP request answered.
    fn http_request(&self, route: &str, method: &'static str, code: u16) {
        let mut http = self
            .inner
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_route = match http.get_mut(route) {
            Some(m) => m,
            None => http.entry(route.to_owned()).or_default(),
        };
        *per_route.entry((method, code)).or_default() += 1;
    }

    /// One notification send to `target` of a message of `kind`: sent or failed.
    pub fn notification(&self, target: &str, kind: &str, sent: bool) {
        let mut n = self
            .inner
            .notifications
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = if sent { "sent" } else { "failed" };
        *n.entry((target.to_owned(), kind.to_owned(), result))
            .or_default() += 1;
    }

    /// The deliveries waiting in the notification outbox.
    pub fn set_notifications_pending(&self, n: u64) {
        self.inner.notifications_pending.store(n, Ordering::Relaxed);
    }

    /// The server's own families.
    fn render(&self, out: &mut Vec<u8>) {
        let name = "mpcluster_status_recompute_duration_seconds";
        family(
            out,
            name,
            Kind::Histogram,
            "Time to recompute the status (read the store, assemble the matrix, encode the API bodies), successful recomputations only.",
        );
        self.inner.recompute.render(out, name, b"");

        let name = "mpcluster_store_request_duration_seconds";
        family(
            out,
            name,
            Kind::Histogram,
            "Duration of this process's requests to the cluster store (the in-process agent's included), by operation.",
        );
        for (op, h) in StoreOp::ALL.iter().zip(&self.inner.store_durations) {
            h.render(out, name, &labels1("operation", op.as_str()));
        }

        let name = "mpcluster_store_request_errors_total";
        family(
            out,
            name,
            Kind::Counter,
            "Failed requests to the cluster store, by operation and error (conflict: a lost compare-and-swap; cancelled: the caller stopped waiting).",
        );
        for (op, errors) in StoreOp::ALL.iter().zip(&self.inner.store_errors) {
            let labels = labels1("operation", op.as_str());
            for (kind, count) in ERROR_KINDS.iter().zip(errors) {
                sample(
                    out,
                    name,
                    &labels,
                    Some(("error", kind)),
                    count.load(Ordering::Relaxed),
                );
            }
        }

        let name = "mpcluster_events_recorded_total";
        family(
            out,
            name,
            Kind::Counter,
            "Matrix changes this server recorded into the cluster's history while it was the recorder (lun: a LUN's cluster state; cell: a LUN x node cell).",
        );
        for (kind, count) in EVENT_KINDS.iter().zip(&self.inner.events) {
            sample(
                out,
                name,
                &labels1("kind", kind),
                None,
                count.load(Ordering::Relaxed),
            );
        }
        let name = "mpcluster_event_record_errors_total";
        family(
            out,
            name,
            Kind::Counter,
            "Failed attempts to record events (the store failed or the log was unreadable); the changes are recorded at the next successful attempt.",
        );
        sample(
            out,
            name,
            b"",
            None,
            self.inner.event_errors.load(Ordering::Relaxed),
        );

        let name = "mpcluster_notifications_total";
        family(
            out,
            name,
            Kind::Counter,
            "Notification sends by this server, by target, message kind (state, recovered, reminder, flapping, test) and result (sent, failed: each failed try counts).",
        );
        let notifications = self
            .inner
            .notifications
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for ((target, kind, result), count) in &notifications {
            let mut labels = labels1("target", target);
            label(&mut labels, "kind", kind);
            label(&mut labels, "result", result);
            sample(out, name, &labels, None, *count);
        }
        let name = "mpcluster_notifications_pending";
        family(
            out,
            name,
            Kind::Gauge,
            "Notification deliveries waiting in the outbox (sent or retried by the leading server), as this server last saw them.",
        );
        sample(
            out,
            name,
            b"",
            None,
            self.inner.notifications_pending.load(Ordering::Relaxed),
        );

        let name = "mpcluster_http_requests_total";
        family(
            out,
            name,
            Kind::Counter,
            "HTTP requests answered, by route (the router's path template, or 'unmatched'), method and status code.",
        );
        let http = self
            .inner
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (route, per) in &http {
            for ((method, code), count) in per {
                let mut labels = labels1("route", route);
                label(&mut labels, "method", method);
                label(&mut labels, "code", &code.to_string());
                sample(out, name, &labels, None, *count);
            }
        }
    }
}

/// The middleware counting HTTP requests ([`Metrics`]'s `mpcluster_http_requests_total`).
pub async fn count_requests(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = method_label(req.method());
    let resp = next.run(req).await;
    metrics.http_request(
        route.as_deref().unwrap_or("unmatched"),
        method,
        resp.status().as_u16(),
    );
    resp
}

// ---------------------------------------------------------------------------------------------
// The status series

/// The status families that are small: the status's own state and one series per node per
/// family.
fn render_status_head(
    out: &mut Vec<u8>,
    status: Option<(&Assembly, i64)>,
    refresh_failing: bool,
    now: i64,
) {
    family(
        out,
        "mpcluster_status_refresh_error",
        Kind::Gauge,
        "1 while the latest status refresh failed (the cluster store could not be read): the LUN and node series then show the last good status, computed at mpcluster_status_computed_timestamp_seconds.",
    );
    sample(
        out,
        "mpcluster_status_refresh_error",
        b"",
        None,
        refresh_failing,
    );
    let Some((assembly, computed_at)) = status else {
        return;
    };
    family(
        out,
        "mpcluster_status_computed_timestamp_seconds",
        Kind::Gauge,
        "When the status the LUN and node series show was computed (unix time).",
    );
    sample(
        out,
        "mpcluster_status_computed_timestamp_seconds",
        b"",
        None,
        u64::try_from(computed_at).unwrap_or(0),
    );

    let nodes = &assembly.node_overview;
    let labels: Vec<Vec<u8>> = nodes
        .iter()
        .map(|n| labels1("node", n.node.as_str()))
        .collect();
    let mut per_node = |name: &str, help: &str, value: &dyn Fn(usize) -> Option<u64>| {
        family(out, name, Kind::Gauge, help);
        for (i, l) in labels.iter().enumerate() {
            if let Some(v) = value(i) {
                sample(out, name, l, None, v);
            }
        }
    };
    per_node(
        "mpcluster_node_online",
        "1 if the node counts as online for the roll-up (a live member, or standalone, with a fresh broadcast), else 0.",
        &|i| Some(u64::from(nodes[i].online)),
    );
    per_node(
        "mpcluster_node_last_broadcast_age_seconds",
        "Seconds since the time in the node's last readable health broadcast (absent when it has none).",
        &|i| {
            nodes[i]
                .last_broadcast
                .map(|t| u64::try_from(now.saturating_sub(t)).unwrap_or(0))
        },
    );
    per_node(
        "mpcluster_node_maps",
        "Maps listed in the node's last readable health broadcast (absent when it has none).",
        &|i| nodes[i].maps.map(|m| m as u64),
    );
    per_node(
        "mpcluster_node_apply_error",
        "1 while the node reports that it could not apply the cluster multipath configuration.",
        &|i| Some(u64::from(nodes[i].issues.apply_error.is_some())),
    );
    per_node(
        "mpcluster_node_apply_waiting",
        "1 while the node holds its next apply until an admin accepts it (it would rename or drop maps).",
        &|i| Some(u64::from(nodes[i].issues.apply_waiting.is_some())),
    );
    per_node(
        "mpcluster_node_collect_error",
        "1 while the node reports that it could not collect its multipath state from multipathd.",
        &|i| Some(u64::from(nodes[i].issues.collect_error.is_some())),
    );

    // Root-cause hints: a count per kind (every kind, 0 included, for alert rules) and one
    // series per active hint.
    let hints = &assembly.status.hints;
    family(
        out,
        "mpcluster_hints",
        Kind::Gauge,
        "Active root-cause hints of each kind (target-side, host-side, under-pathed, size-mismatch, config-drift).",
    );
    for kind in HintKind::ALL {
        let count = hints.iter().filter(|h| h.kind == kind).count();
        sample(
            out,
            "mpcluster_hints",
            &labels1("kind", kind.as_str()),
            None,
            count as u64,
        );
    }
    family(
        out,
        "mpcluster_hint_since_timestamp_seconds",
        Kind::Gauge,
        "One series per active root-cause hint (its id, kind and severity; the sentence is in the status API): since when it has held (unix time).",
    );
    for h in hints {
        let mut l = Vec::new();
        label(&mut l, "id", &h.id);
        label(&mut l, "kind", h.kind.as_str());
        label(&mut l, "severity", h.severity.as_str());
        sample(
            out,
            "mpcluster_hint_since_timestamp_seconds",
            &l,
            None,
            u64::try_from(h.since).unwrap_or(0),
        );
    }

    // Flapping LUNs (node="") and cells: one series each while flapping.
    family(
        out,
        "mpcluster_flapping_since_timestamp_seconds",
        Kind::Gauge,
        "One series per flapping LUN (node=\"\") or cell (at least N changes within the window, until stable for the window): since when (unix time).",
    );
    for f in &assembly.status.flapping {
        let mut l = Vec::new();
        label(&mut l, "wwid", f.wwid.as_str());
        label(&mut l, "node", f.node.as_ref().map_or("", |n| n.as_str()));
        sample(
            out,
            "mpcluster_flapping_since_timestamp_seconds",
            &l,
            None,
            u64::try_from(f.since).unwrap_or(0),
        );
    }
}

/// The per-LUN families, in this order; each is written one LUN at a time.
const LUN_FAMILIES: [(&str, &str); 4] = [
    (
        LUN_STATE,
        "The LUN's cluster state (its cells rolled up): 1 for the current state, 0 for the others.",
    ),
    (
        LUN_NODE_STATE,
        "The LUN's state on one node (a cell of the matrix): 1 for the current state, 0 for the others.",
    ),
    (
        LUN_NODE_PATHS_ACTIVE,
        "Usable paths of the LUN on the node (where the node reported a count).",
    ),
    (
        LUN_NODE_PATHS,
        "All paths of the LUN on the node (where the node reported a count).",
    ),
];

/// Buffers reused from one LUN to the next.
#[derive(Default)]
struct LabelBufs {
    lun: Vec<u8>,
    cell: Vec<u8>,
}

/// One LUN's samples of the family `LUN_FAMILIES[family]`.
fn render_lun(out: &mut Vec<u8>, family: usize, lun: &LunStatus, bufs: &mut LabelBufs) {
    let LabelBufs { lun: labels, cell } = bufs;
    labels.clear();
    label(labels, "wwid", lun.wwid.as_str());
    if let Some(alias) = &lun.alias {
        label(labels, "alias", alias.as_str());
    }
    if family == 0 {
        for s in MapState::ALL {
            sample(
                out,
                LUN_STATE,
                labels,
                Some(("state", s.as_str())),
                lun.cluster_state == s,
            );
        }
        return;
    }
    for (node, c) in &lun.nodes {
        cell.clear();
        cell.extend_from_slice(labels);
        label(cell, "node", node.as_str());
        match family {
            1 => {
                for s in MapState::ALL {
                    sample(
                        out,
                        LUN_NODE_STATE,
                        cell,
                        Some(("state", s.as_str())),
                        c.state == s,
                    );
                }
            }
            2 => {
                if let Some(Some(n)) = c.paths_active {
                    sample(out, LUN_NODE_PATHS_ACTIVE, cell, None, n);
                }
            }
            _ => {
                if let Some(Some(n)) = c.paths_total {
                    sample(out, LUN_NODE_PATHS, cell, None, n);
                }
            }
        }
    }
}

/// Where the per-LUN part of a scrape stands.
struct LunCursor {
    assembly: Arc<Assembly>,
    /// Index into [`LUN_FAMILIES`].
    family: usize,
    /// The next LUN of that family.
    next: usize,
    bufs: LabelBufs,
}

/// One scrape, rendered piece by piece ([`Scrape::next_chunk`]): first the server's own
/// families, the status's state and the node families, then the per-LUN families one LUN at a
/// time.
pub struct Scrape {
    head: Option<Vec<u8>>,
    luns: Option<LunCursor>,
}

impl Scrape {
    /// A scrape of `metrics` and of `status` (`None` before the first status was computed),
    /// at `now` (unix s, for the node ages). `refresh_failing`: the latest status refresh
    /// failed (or, without a status, the store has not answered yet).
    pub fn new(
        metrics: &Metrics,
        status: Option<&StatusView>,
        refresh_failing: bool,
        now: i64,
    ) -> Scrape {
        let mut head = Vec::with_capacity(16 * 1024);
        family(
            &mut head,
            "mpcluster_build_info",
            Kind::Gauge,
            "Always 1; the version of this mpcluster server in the 'version' label.",
        );
        sample(
            &mut head,
            "mpcluster_build_info",
            &labels1("version", env!("CARGO_PKG_VERSION")),
            None,
            1u64,
        );
        metrics.render(&mut head);
        render_status_head(
            &mut head,
            status.map(|v| (&*v.assembly, v.computed_at)),
            refresh_failing,
            now,
        );
        Scrape {
            head: Some(head),
            luns: status.map(|v| LunCursor {
                assembly: v.assembly.clone(),
                family: 0,
                next: 0,
                bufs: LabelBufs::default(),
            }),
        }
    }

    /// Only the status series of `assembly` (computed at `now`), without the server's own:
    /// what dominates a scrape of a big cluster (the benchmark measures this).
    pub fn status_only(assembly: Arc<Assembly>, now: i64) -> Scrape {
        let mut head = Vec::new();
        render_status_head(&mut head, Some((&assembly, now)), false, now);
        Scrape {
            head: Some(head),
            luns: Some(LunCursor {
                assembly,
                family: 0,
                next: 0,
                bufs: LabelBufs::default(),
            }),
        }
    }

    /// The next piece of the text (about [`CHUNK`] bytes; more when one LUN's cells take
    /// more), `None` at the end.
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        let cursor = self.luns.as_mut()?;
        let mut out = Vec::with_capacity(CHUNK + CHUNK / 2);
        while out.len() < CHUNK && cursor.family < LUN_FAMILIES.len() {
            let luns = &cursor.assembly.status.luns;
            if cursor.next == 0 {
                let (name, help) = LUN_FAMILIES[cursor.family];
                family(&mut out, name, Kind::Gauge, help);
            }
            match luns.get(cursor.next) {
                Some(lun) => {
                    render_lun(&mut out, cursor.family, lun, &mut cursor.bufs);
                    cursor.next += 1;
                }
                None => {
                    cursor.family += 1;
                    cursor.next = 0;
                }
            }
        }
        if out.is_empty() {
            self.luns = None;
            return None;
        }
        Some(out)
    }

    /// The whole text at once (tests, benchmarks).
    pub fn into_text(mut self) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk() {
            all.extend_from_slice(&chunk);
        }
        all
    }
}

/// The body of a scrape: [`Scrape::next_chunk`] on each poll, gzip-compressed on the fly
/// (fastest level) when asked to.
pub struct ScrapeBody {
    scrape: Scrape,
    gzip: Option<GzEncoder<Vec<u8>>>,
    done: bool,
}

impl ScrapeBody {
    /// The body of `scrape`, gzip-compressed if `gzip`.
    pub fn new(scrape: Scrape, gzip: bool) -> ScrapeBody {
        ScrapeBody {
            scrape,
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), flate2::Compression::fast())),
            done: false,
        }
    }

    /// The next bytes to send, `None` at the end.
    pub fn next_bytes(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let Some(enc) = self.gzip.as_mut() else {
            let chunk = self.scrape.next_chunk();
            self.done = chunk.is_none();
            return chunk.map(Bytes::from);
        };
        // Feed chunks until the encoder gives something out (it buffers), or the end.
        while let Some(plain) = self.scrape.next_chunk() {
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(&plain);
            let compressed = std::mem::take(enc.get_mut());
            if !compressed.is_empty() {
                return Some(Bytes::from(compressed));
            }
        }
        self.done = true;
        let rest = self.gzip.take()?.finish().unwrap_or_default();
        (!rest.is_empty()).then(|| Bytes::from(rest))
    }
}

impl http_body::Body for ScrapeBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().next_bytes().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// `GET /metrics`: the Prometheus scrape (see the [module docs](self)). Needs a token with
/// `Sys.Audit` like every GET, unless the server was started with `--metrics-public`
/// ([`AppState::metrics_public`]). Answers 200 also while the store cannot be read
/// (`mpcluster_status_refresh_error 1`, the last good status) and before the first status
/// (only the server's own families).
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let view = state.cache.latest();
    let refresh_failing = match &view {
        Some(v) => v.store_error.is_some(),
        None => state.cache.startup_error().is_some(),
    };
    let scrape = Scrape::new(
        state.cache.metrics(),
        view.as_deref(),
        refresh_failing,
        mpcluster_config::unix_now(),
    );
    let gzip = crate::routes::status::accepts_gzip(&headers);
    let mut resp = Response::new(Body::new(ScrapeBody::new(scrape, gzip)));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(10)); // le="0.01" holds 0.01 itself
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(2));
        let mut out = Vec::new();
        h.render(&mut out, "x_seconds", br#"operation="put""#);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "x_seconds_bucket{operation=\"put\",le=\"0.01\"} 2\n\
             x_seconds_bucket{operation=\"put\",le=\"0.1\"} 3\n\
             x_seconds_bucket{operation=\"put\",le=\"+Inf\"} 4\n\
             x_seconds_sum{operation=\"put\"} 2.065\n\
             x_seconds_count{operation=\"put\"} 4\n"
        );
    }

    #[test]
    fn http_requests_are_counted_per_route_method_and_code() {
        let m = Metrics::default();
        m.http_request("/metrics", "GET", 200);
        m.http_request("/metrics", "GET", 200);
        m.http_request("/metrics", "GET", 401);
        m.http_request("unmatched", "other", 404);
        let mut out = Vec::new();
        m.render(&mut out);
        let text = String::from_utf8(out).unwrap();
        for line in [
            "mpcluster_http_requests_total{route=\"/metrics\",method=\"GET\",code=\"200\"} 2",
            "mpcluster_http_requests_total{route=\"/metrics\",method=\"GET\",code=\"401\"} 1",
            "mpcluster_http_requests_total{route=\"unmatched\",method=\"other\",code=\"404\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn store_errors_are_counted_per_operation_and_kind() {
        let m = Metrics::default();
        m.store_request(StoreOp::WriteDoc, Duration::from_millis(1), Some(1));
        m.store_request(StoreOp::WriteDoc, Duration::from_millis(1), None);
        m.store_request(
            StoreOp::ReadDoc,
            Duration::from_secs(3),
            Some(store::CANCELLED),
        );
        let mut out = Vec::new();
        m.render(&mut out);
        let text = String::from_utf8(out).unwrap();
        for line in [
            "mpcluster_store_request_errors_total{operation=\"write_doc\",error=\"conflict\"} 1",
            "mpcluster_store_request_errors_total{operation=\"write_doc\",error=\"unavailable\"} 0",
            "mpcluster_store_request_errors_total{operation=\"read_doc\",error=\"cancelled\"} 1",
            "mpcluster_store_request_duration_seconds_count{operation=\"write_doc\"} 2",
            "mpcluster_store_request_duration_seconds_bucket{operation=\"read_doc\",le=\"2.5\"} 0",
            "mpcluster_store_request_duration_seconds_bucket{operation=\"read_doc\",le=\"5\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
