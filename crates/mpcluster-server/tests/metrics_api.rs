//! `GET /metrics` through `app()` (tower `oneshot`) over an embedded store measured by the
//! instrumented store wrapper, as `serve` runs it: the status as series (enum pattern, path
//! counts, node series), the server's own families, access (Sys.Audit, or open with
//! `metrics_public`), gzip, and the chunked rendering on a synthetic 16 x 256 status.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use mpcluster_config::tokens::add_token;
use mpcluster_config::unix_now;
use mpcluster_core::NodeName;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_core::tokens::{Privilege, TokenId};
use mpcluster_server::cache::{CacheConfig, StatusCache};
use mpcluster_server::metrics::{CHUNK, Metrics, Scrape};
use mpcluster_server::{AppState, app};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};
use serde_json::json;
use tower::ServiceExt as _;

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const STATES: [&str; 5] = ["unknown", "optimal", "degraded", "missing", "failed"];

struct Env {
    app: Router,
    public: Router,
    audit: String,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// n1 fresh (W1 optimal 2/2, W2 degraded 1/2, an apply error); n2 stale (offline, an hour
/// old). W1 aliased `data`.
async fn seed(store: &dyn ClusterStore) {
    let now = unix_now();
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"wwids": {W1: {"alias": "data"}, W2: {}}}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    let node = |n: &str| NodeName::new(n).unwrap();
    let broadcast = |time: i64| {
        json!({"time": time, "maps": {
            W1: {"state": "optimal", "paths-active": 2, "paths-total": 2},
            W2: {"state": "degraded", "paths-active": 1, "paths-total": 2},
        }})
        .to_string()
    };
    for (n, t) in [("n1", now), ("n2", now - 3600)] {
        store
            .put(kv_keys::HEALTH, &node(n), Some(&broadcast(t)))
            .await
            .unwrap();
    }
    store
        .put(
            kv_keys::APPLY,
            &node("n1"),
            Some(&json!({"error": "cannot write conf.d", "time": now}).to_string()),
        )
        .await
        .unwrap();
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::default();
    let store = metrics.instrument(Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    ));
    seed(store.as_ref()).await;
    let t = add_token(
        store.as_ref(),
        TokenId::new("monitoring").unwrap(),
        [Privilege::SysAudit].into_iter().collect(),
        None,
        None,
    )
    .await
    .unwrap();
    let (cache, task) = StatusCache::spawn(
        store.clone(),
        CacheConfig {
            refresh: Duration::from_millis(200),
            metrics,
            ..CacheConfig::default()
        },
    );
    let state = |metrics_public| AppState {
        store: store.clone(),
        cache: cache.clone(),
        pve: None,
        metrics_public,
    };
    Env {
        app: app(state(false)),
        public: app(state(true)),
        audit: format!("Bearer {}", t.credential()),
        task,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    content_encoding: Option<String>,
    body: Vec<u8>,
}

async fn get(app: &Router, uri: &str, auth: Option<&str>, gzip: bool) -> Answer {
    let mut req = Request::builder().uri(uri);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    if gzip {
        req = req.header(header::ACCEPT_ENCODING, "gzip");
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let header = |h| {
        resp.headers()
            .get(h)
            .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: resp.status(),
        content_type: header(header::CONTENT_TYPE),
        content_encoding: header(header::CONTENT_ENCODING),
        body: resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    }
}

/// The samples of a scrape, `name{labels}` -> value, after checking the text's structure:
/// every sample belongs to the family whose `# HELP`/`# TYPE` came last (no family is split or
/// declared twice), and no series repeats.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut declared = BTreeSet::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(declared.insert(name.to_owned()), "{name} declared twice");
            current = Some((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        let (family, kind) = current.as_ref().unwrap();
        let ok = match kind.as_str() {
            "histogram" => [
                format!("{family}_bucket"),
                format!("{family}_sum"),
                format!("{family}_count"),
            ]
            .contains(&name.to_owned()),
            _ => name == family,
        };
        assert!(ok, "{name} outside its family ({family})");
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        assert!(
            out.insert(series.to_owned(), value).is_none(),
            "{series} twice"
        );
    }
    out
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in the scrape"))
}

/// Scrape until the status is in it.
async fn scrape_status(app: &Router, auth: Option<&str>) -> (Answer, BTreeMap<String, f64>) {
    for _ in 0..100 {
        let a = get(app, "/metrics", auth, false).await;
        assert_eq!(a.status, StatusCode::OK);
        let s = samples(std::str::from_utf8(&a.body).unwrap());
        if s.contains_key("mpcluster_status_computed_timestamp_seconds") {
            return (a, s);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the status never showed up in /metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_as_series() {
    let env = env().await;
    let (answer, s) = scrape_status(&env.app, Some(&env.audit)).await;
    assert_eq!(
        answer.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(answer.content_encoding, None);

    // The enum pattern: one series per state, the current one 1.
    let lun = |wwid: &str, alias: Option<&str>| match alias {
        Some(a) => format!("wwid=\"{wwid}\",alias=\"{a}\""),
        None => format!("wwid=\"{wwid}\""),
    };
    for (l, current) in [
        (lun(W1, Some("data")), "optimal"),
        (lun(W2, None), "degraded"),
    ] {
        for st in STATES {
            let series = format!("mpcluster_lun_state{{{l},state=\"{st}\"}}");
            assert_eq!(value(&s, &series), f64::from(st == current), "{series}");
        }
    }
    // Cells: n1 reports, n2 is offline (unknown, no path counts).
    let cell = |l: &str, node: &str, st: &str| {
        format!("mpcluster_lun_node_state{{{l},node=\"{node}\",state=\"{st}\"}}")
    };
    assert_eq!(value(&s, &cell(&lun(W2, None), "n1", "degraded")), 1.0);
    assert_eq!(value(&s, &cell(&lun(W2, None), "n1", "optimal")), 0.0);
    assert_eq!(
        value(&s, &cell(&lun(W1, Some("data")), "n2", "unknown")),
        1.0
    );
    let w2n1 = format!("{},node=\"n1\"", lun(W2, None));
    assert_eq!(
        value(&s, &format!("mpcluster_lun_node_paths_active{{{w2n1}}}")),
        1.0
    );
    assert_eq!(
        value(&s, &format!("mpcluster_lun_node_paths{{{w2n1}}}")),
        2.0
    );
    assert!(!s.contains_key(&format!(
        "mpcluster_lun_node_paths_active{{{},node=\"n2\"}}",
        lun(W2, None)
    )));
    let cells = s
        .keys()
        .filter(|k| k.starts_with("mpcluster_lun_node_state{"))
        .count();
    assert_eq!(cells, 2 * 2 * STATES.len(), "2 LUNs x 2 nodes x 5 states");

    // Nodes.
    assert_eq!(value(&s, "mpcluster_node_online{node=\"n1\"}"), 1.0);
    assert_eq!(value(&s, "mpcluster_node_online{node=\"n2\"}"), 0.0);
    let age = value(&s, "mpcluster_node_last_broadcast_age_seconds{node=\"n2\"}");
    assert!((3600.0..3700.0).contains(&age), "{age}");
    assert!(value(&s, "mpcluster_node_last_broadcast_age_seconds{node=\"n1\"}") < 60.0);
    assert_eq!(value(&s, "mpcluster_node_apply_error{node=\"n1\"}"), 1.0);
    assert_eq!(value(&s, "mpcluster_node_apply_error{node=\"n2\"}"), 0.0);
    assert_eq!(value(&s, "mpcluster_node_collect_error{node=\"n1\"}"), 0.0);
    assert_eq!(value(&s, "mpcluster_node_apply_waiting{node=\"n1\"}"), 0.0);
    assert_eq!(value(&s, "mpcluster_node_maps{node=\"n1\"}"), 2.0);

    // Hints: n1's failed apply is a config-drift hint; every other kind is counted as 0.
    assert_eq!(value(&s, "mpcluster_hints{kind=\"config-drift\"}"), 1.0);
    assert_eq!(value(&s, "mpcluster_hints{kind=\"target-side\"}"), 0.0);
    let hint_series: Vec<&String> = s
        .keys()
        .filter(|k| k.starts_with("mpcluster_hint_since_timestamp_seconds{"))
        .collect();
    assert_eq!(hint_series.len(), 1, "{hint_series:?}");
    assert!(
        hint_series[0].contains("kind=\"config-drift\""),
        "{hint_series:?}"
    );
    assert!((value(&s, hint_series[0]) - unix_now() as f64).abs() < 120.0);

    // The server's own.
    assert_eq!(value(&s, "mpcluster_status_refresh_error"), 0.0);
    let computed = value(&s, "mpcluster_status_computed_timestamp_seconds");
    assert!((computed - unix_now() as f64).abs() < 60.0, "{computed}");
    assert!(value(&s, "mpcluster_status_recompute_duration_seconds_count") >= 1.0);
    assert_eq!(
        value(
            &s,
            "mpcluster_status_recompute_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        value(&s, "mpcluster_status_recompute_duration_seconds_count")
    );
    // The seeding, the cache and the token checks went through the instrumented store.
    for op in ["put", "write_doc", "read_doc", "get_all", "subscribe"] {
        let n = value(
            &s,
            &format!("mpcluster_store_request_duration_seconds_count{{operation=\"{op}\"}}"),
        );
        assert!(n >= 1.0, "{op}: {n}");
    }
    assert_eq!(
        value(
            &s,
            "mpcluster_store_request_errors_total{operation=\"read_doc\",error=\"unavailable\"}"
        ),
        0.0
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(
            &s,
            &format!("mpcluster_build_info{{version=\"{version}\"}}")
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_and_http_counters() {
    let env = env().await;
    // A token is needed, as for every GET; none: 401.
    let a = get(&env.app, "/metrics", None, false).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = get(&env.app, "/metrics", Some("Bearer monitoring:wrong"), false).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Public: /metrics without a token, and nothing else opens.
    let (_, s) = scrape_status(&env.public, None).await;
    assert_eq!(value(&s, "mpcluster_node_online{node=\"n1\"}"), 1.0);
    let a = get(
        &env.public,
        "/api2/json/cluster/multipath/status",
        None,
        false,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Both apps count into the same metrics (one cache); the refusals are there.
    let (_, s) = scrape_status(&env.app, Some(&env.audit)).await;
    assert!(
        value(
            &s,
            "mpcluster_http_requests_total{route=\"/metrics\",method=\"GET\",code=\"401\"}"
        ) >= 2.0
    );
    assert!(
        value(
            &s,
            "mpcluster_http_requests_total{route=\"/api2/json/cluster/multipath/status\",method=\"GET\",code=\"401\"}"
        ) >= 1.0
    );
    let a = get(&env.app, "/no/such/route", Some(&env.audit), false).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let (_, s) = scrape_status(&env.app, Some(&env.audit)).await;
    assert_eq!(
        value(
            &s,
            "mpcluster_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"}"
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_when_accepted() {
    let env = env().await;
    let (plain, _) = scrape_status(&env.app, Some(&env.audit)).await;
    let a = get(&env.app, "/metrics", Some(&env.audit), true).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_encoding.as_deref(), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&a.body[..])
        .read_to_string(&mut text)
        .unwrap();
    // The status series are the same (the server's own counters moved meanwhile).
    let lun_lines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("mpcluster_lun_"))
            .map(str::to_owned)
            .collect()
    };
    let plain = String::from_utf8(plain.body).unwrap();
    assert!(!lun_lines(&plain).is_empty());
    assert_eq!(lun_lines(&text), lun_lines(&plain));
}

/// A status bigger than a chunk comes in several, which together are the whole text, and
/// every cell has exactly one current state.
#[test]
fn chunked_rendering_of_a_bigger_status() {
    use mpcluster_core::status::assemble;
    use mpcluster_core::synthetic::{SyntheticSpec, synthetic_snapshot};

    let snap = synthetic_snapshot(SyntheticSpec::new(16, 256));
    let assembly = Arc::new(assemble(&snap));
    let mut scrape = Scrape::status_only(assembly.clone(), snap.now);
    let mut chunks = Vec::new();
    while let Some(c) = scrape.next_chunk() {
        chunks.push(c);
    }
    assert!(chunks.len() > 10, "{} chunks", chunks.len());
    assert!(chunks.iter().all(|c| c.len() < 2 * CHUNK));
    let whole: Vec<u8> = chunks.concat();
    assert_eq!(
        whole,
        Scrape::status_only(assembly.clone(), snap.now).into_text()
    );
    let s = samples(std::str::from_utf8(&whole).unwrap());
    let mut current: BTreeMap<String, f64> = BTreeMap::new();
    for (series, v) in &s {
        if let Some(rest) = series.strip_prefix("mpcluster_lun_node_state{") {
            let cell = rest.split(",state=").next().unwrap().to_owned();
            *current.entry(cell).or_default() += v;
        }
    }
    assert_eq!(current.len(), 16 * 256);
    assert!(current.values().all(|n| *n == 1.0));
    assert_eq!(
        s.keys()
            .filter(|k| k.starts_with("mpcluster_lun_state{"))
            .count(),
        256 * STATES.len()
    );
}
