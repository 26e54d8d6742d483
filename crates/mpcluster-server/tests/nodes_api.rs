//! `DELETE /api2/json/cluster/nodes/{node}` through `app()` over an embedded store: an online
//! node is refused (409) unless forced, an unknown one is 404, and a removed node's column
//! leaves the matrix (the status cache recomputes on the store's events).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

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
use mpcluster_server::{AppState, app};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const W1: &str = "3600a098038303053453f463045727a01";
const STATUS: &str = "/api2/json/cluster/multipath/status";

async fn call(app: &Router, auth: &str, method: &str, uri: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, auth)
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The nodes with a cell in W1's row.
fn columns(status: &Value) -> Vec<String> {
    status["data"]["luns"]
        .as_array()
        .and_then(|l| l.iter().find(|r| r["wwid"] == W1))
        .and_then(|r| r["nodes"].as_object())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default()
}

async fn wait_columns(app: &Router, auth: &str, want: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, v) = call(app, auth, "GET", STATUS).await;
        if s == StatusCode::OK && columns(&v) == want {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "columns never became {want:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ClusterStore> = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let admin = add_token(
        store.as_ref(),
        TokenId::new("admin").unwrap(),
        Privilege::ALL.into(),
        None,
        None,
    )
    .await
    .unwrap();
    let auth = format!("Bearer {}", admin.credential());
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"wwids": {W1: {}}}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    let now = unix_now();
    let broadcast = |t: i64| {
        json!({"time": t, "maps": {W1: {"state": "optimal", "paths-active": 2, "paths-total": 2}}})
            .to_string()
    };
    for (node, time) in [("n1", now), ("n2", now - 3600)] {
        store
            .put(
                kv_keys::HEALTH,
                &NodeName::new(node).unwrap(),
                Some(&broadcast(time)),
            )
            .await
            .unwrap();
    }
    let (cache, task) = StatusCache::spawn(
        store.clone(),
        CacheConfig {
            refresh: Duration::from_millis(200),
            ..CacheConfig::default()
        },
    );
    let app = app(AppState {
        store: store.clone(),
        cache,
        pve: None,
        metrics_public: false,
    });
    let s = wait_columns(&app, &auth, &["n1", "n2"]).await;
    assert_eq!(s["data"]["luns"][0]["nodes"]["n2"]["state"], "unknown");

    // Online: refused, nothing removed.
    let (s, v) = call(&app, &auth, "DELETE", "/api2/json/cluster/nodes/n1").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.starts_with("node n1 is online (last broadcast ")
            && msg.ends_with(" s ago); stop its agent first, or force"),
        "{msg}"
    );
    assert_eq!(v["data"], Value::Null);

    // Unknown, invalid.
    let (s, v) = call(&app, &auth, "DELETE", "/api2/json/cluster/nodes/n9").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("nothing is known about node 'n9'"),
        "{v}"
    );
    let (s, v) = call(
        &app,
        &auth,
        "DELETE",
        "/api2/json/cluster/nodes/bad%20name?force=perhaps",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["errors"]["node"].is_string() && v["errors"]["force"].is_string(),
        "{v}"
    );

    // The departed node goes, and its column with it.
    let (s, v) = call(&app, &auth, "DELETE", "/api2/json/cluster/nodes/n2").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"], json!({"node": "n2", "was-online": false}));
    wait_columns(&app, &auth, &["n1"]).await;
    let (_, nodes) = call(&app, &auth, "GET", "/api2/json/cluster/nodes").await;
    let names: Vec<&str> = nodes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n1"]);
    let (s, _) = call(&app, &auth, "DELETE", "/api2/json/cluster/nodes/n2").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "removed already");

    // Forced.
    let (s, v) = call(&app, &auth, "DELETE", "/api2/json/cluster/nodes/n1?force=1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"], json!({"node": "n1", "was-online": true}));
    wait_columns(&app, &auth, &[]).await;
    task.abort();
}
