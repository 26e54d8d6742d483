//! The configuration API through `app()` (tower `oneshot`) against an embedded store in a temp
//! dir: CRUD of the multipath configuration, the allow-list, the overrides and the storages;
//! digests (stale and concurrent writers); hostile input through every field, which must be
//! refused with 400 and leave the stored documents byte-identical.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use mpcluster_config::CHANGED_MEANWHILE;
use mpcluster_core::NodeName;
use mpcluster_core::config::{MultipathConfig, Overrides, render_baseline, render_overrides};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::{Member, doc_names};
use mpcluster_server::cache::{CacheConfig, StatusCache};
use mpcluster_server::{AppState, app};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{
    ClusterStore, EmbeddedOptions, Expect, MembershipHandle, StoreError, StoreSubscription,
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const W3: &str = "36001405aa6d4bd1e9d1487bb1d1f4a2a";
const DOCS: [&str; 3] = [doc_names::CONFIG, doc_names::OVERRIDES, doc_names::STORAGE];

/// An app over an embedded store; the status cache task is stopped on drop.
struct Env {
    app: Router,
    store: Arc<dyn ClusterStore>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The API token every request of these tests carries (`Authorization` value, with
/// `Sys.Audit` and `Sys.Modify`) and the tokens document holding it.
fn test_token() -> &'static (String, String) {
    static TOKEN: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        use mpcluster_core::tokens::{Privilege, TokenEntry, TokenId, TokensDoc};
        let secret = mpcluster_config::tokens::new_secret();
        let mut doc = TokensDoc::default();
        doc.tokens.insert(
            TokenId::new("test").unwrap(),
            TokenEntry {
                privs: Privilege::ALL.into(),
                hash: mpcluster_config::tokens::hash_secret(&secret).unwrap(),
                created: 0,
                expire: None,
                comment: None,
            },
        );
        (format!("Bearer test:{secret}"), doc.to_json())
    })
}

/// An embedded store holding the test token.
async fn embedded(dir: &tempfile::TempDir) -> Arc<dyn ClusterStore> {
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    store
        .write_doc(doc_names::TOKENS, &test_token().1, Expect::Any)
        .await
        .unwrap();
    Arc::new(store)
}

/// Every request gets the test token.
async fn with_token(mut req: Request<Body>) -> Request<Body> {
    req.headers_mut().insert(
        axum::http::header::AUTHORIZATION,
        axum::http::HeaderValue::from_str(&test_token().0).unwrap(),
    );
    req
}

fn env_over(store: Arc<dyn ClusterStore>, dir: tempfile::TempDir) -> Env {
    let (cache, task) = StatusCache::spawn(store.clone(), CacheConfig::default());
    Env {
        app: app(AppState {
            store: store.clone(),
            cache,
            pve: None,
            metrics_public: false,
        })
        .layer(axum::middleware::map_request(with_token)),
        store,
        task,
        _dir: dir,
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(&dir).await;
    env_over(store, dir)
}

/// Percent-encode everything but unreserved characters (for hostile path segments).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn call_raw(app: &Router, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    // Replies stay small (nothing echoes a hostile input back at length); the OpenAPI
    // document is the one big reply.
    let limit = if uri == "/api2/openapi.json" {
        256 * 1024
    } else {
        64 * 1024
    };
    assert!(
        bytes.len() < limit,
        "{method} {uri}: reply of {} bytes",
        bytes.len()
    );
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{method} {uri}: not JSON: {bytes:?}"));
    (status, v)
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    call_raw(app, method, uri, bytes).await
}

async fn ok(app: &Router, method: &str, uri: &str, body: Option<Value>) -> Value {
    let (status, v) = call(app, method, uri, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{method} {uri} {body:?}: {v:#}");
    v["data"].clone()
}

fn digest_of(v: &Value) -> String {
    v["digest"].as_str().unwrap().to_owned()
}

/// The three documents exactly as stored.
async fn raw_docs(store: &dyn ClusterStore) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for d in DOCS {
        out.push(store.read_doc(d).await.unwrap().map(|(text, _)| text));
    }
    out
}

const CONFIG: &str = "/api2/json/cluster/multipath/config";
const WWIDS: &str = "/api2/json/cluster/multipath/wwids";
const OVERRIDES: &str = "/api2/json/cluster/multipath/overrides";
const STORAGE: &str = "/api2/json/storage";

const GOOD_OVERRIDES: &str = "devices {\n\tdevice {\n\t\tvendor \"NETAPP\"\n\t\tproduct \"LUN.*\"\n\t\tno_path_retry queue\n\t}\n}\n";

/// A config with defaults and an entry, overrides, and a multipath + LVM storage pair.
async fn seed(app: &Router) {
    ok(app, "PUT", CONFIG, Some(json!({"polling-interval": 5}))).await;
    ok(
        app,
        "POST",
        WWIDS,
        Some(json!({"wwid": W1, "alias": "data", "no-path-retry": "queue"})),
    )
    .await;
    ok(
        app,
        "PUT",
        OVERRIDES,
        Some(json!({"content": GOOD_OVERRIDES})),
    )
    .await;
    ok(
        app,
        "POST",
        STORAGE,
        Some(json!({"type": "multipath", "id": "mp", "nodes": "n1,n2"})),
    )
    .await;
    ok(
        app,
        "POST",
        STORAGE,
        Some(json!({"type": "lvm", "id": "vg", "vgname": "vg0", "base": format!("mp:{W1}")})),
    )
    .await;
}

#[tokio::test]
async fn config_knobs_get_put_delete() {
    let e = env().await;
    let v = ok(&e.app, "GET", CONFIG, None).await;
    assert_eq!(v["defaults"], json!({}));
    assert_eq!(digest_of(&v), ConfigDigest::of("").to_string());
    let pi = v["knobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "polling-interval")
        .unwrap();
    assert_eq!(pi["keyword"], "polling_interval");
    assert_eq!(pi["value-type"]["type"], "integer");
    assert!(pi["description"].as_str().unwrap().len() > 10);
    assert_eq!(v["fixed"]["find_multipaths"], "strict");

    let w = ok(
        &e.app,
        "PUT",
        CONFIG,
        Some(json!({"polling-interval": "5", "no-path-retry": "queue", "digest": digest_of(&v)})),
    )
    .await;
    let v = ok(&e.app, "GET", CONFIG, None).await;
    assert_eq!(v["digest"], w["digest"]);
    assert_eq!(
        v["defaults"],
        json!({"polling-interval": 5, "no-path-retry": "queue"})
    );
    // omitted knobs stay; delete as a comma string
    ok(
        &e.app,
        "PUT",
        CONFIG,
        Some(json!({"fast-io-fail-tmo": 5, "delete": "polling-interval"})),
    )
    .await;
    let v = ok(&e.app, "GET", CONFIG, None).await;
    assert_eq!(
        v["defaults"],
        json!({"no-path-retry": "queue", "fast-io-fail-tmo": 5})
    );
    // the stored document is the model's JSON
    let (text, _) = e.store.read_doc(doc_names::CONFIG).await.unwrap().unwrap();
    assert_eq!(
        MultipathConfig::from_json(&text).unwrap().to_json()["defaults"],
        v["defaults"]
    );

    let before = raw_docs(e.store.as_ref()).await;
    let (status, err) = call(
        &e.app,
        "PUT",
        CONFIG,
        Some(json!({"polling-interval": 0, "find-multipaths": "no", "bogus": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["data"], Value::Null);
    for f in [
        "defaults.polling-interval",
        "defaults.find-multipaths",
        "defaults.bogus",
    ] {
        assert!(err["errors"][f].is_string(), "{f}: {err:#}");
    }
    assert!(err["message"].as_str().unwrap().contains("(and 2 more)"));
    assert_eq!(raw_docs(e.store.as_ref()).await, before);
}

#[tokio::test]
async fn wwids_crud() {
    let e = env().await;
    let d0 = digest_of(&ok(&e.app, "GET", WWIDS, None).await);
    ok(
        &e.app,
        "POST",
        WWIDS,
        Some(json!({"wwid": W1, "alias": "data", "no-path-retry": "queue", "digest": d0})),
    )
    .await;
    ok(&e.app, "POST", WWIDS, Some(json!({"wwid": W2}))).await;
    let list = ok(&e.app, "GET", WWIDS, None).await;
    assert_eq!(
        list["wwids"],
        json!([
            {"wwid": W1, "alias": "data", "no-path-retry": "queue"},
            {"wwid": W2},
        ])
    );
    let one = ok(&e.app, "GET", &format!("{WWIDS}/{W1}"), None).await;
    assert_eq!(one["alias"], "data");
    assert_eq!(one["digest"], list["digest"]);

    ok(
        &e.app,
        "PUT",
        &format!("{WWIDS}/{W1}"),
        Some(
            json!({"alias": "data2", "rr-min-io-rq": 2, "delete": ["no-path-retry"],
                    "digest": one["digest"]}),
        ),
    )
    .await;
    let one = ok(&e.app, "GET", &format!("{WWIDS}/{W1}"), None).await;
    assert_eq!(one["alias"], "data2");
    assert_eq!(one["rr-min-io-rq"], 2);
    assert!(one.get("no-path-retry").is_none());
    // clearing the alias
    ok(
        &e.app,
        "PUT",
        &format!("{WWIDS}/{W1}"),
        Some(json!({"delete": "alias"})),
    )
    .await;
    let one = ok(&e.app, "GET", &format!("{WWIDS}/{W1}"), None).await;
    assert!(one.get("alias").is_none());

    // adding twice, per-LUN rules
    let (s, err) = call(&e.app, "POST", WWIDS, Some(json!({"wwid": W1}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(err["errors"]["wwid"].as_str().unwrap().contains("already"));
    let (s, err) = call(
        &e.app,
        "POST",
        WWIDS,
        Some(json!({"wwid": W3, "polling-interval": 5})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(err["errors"]["polling-interval"].is_string(), "{err:#}");
    let (s, err) = call(&e.app, "POST", WWIDS, Some(json!({"alias": "x"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(err["errors"]["wwid"], "required");
    let (s, err) = call(&e.app, "POST", WWIDS, Some(json!({"wwid": "defaults"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(err["errors"]["wwid"].as_str().unwrap().contains("reserved"));

    // delete with the digest in the query, then in the body
    let d = digest_of(&ok(&e.app, "GET", WWIDS, None).await);
    ok(&e.app, "DELETE", &format!("{WWIDS}/{W1}?digest={d}"), None).await;
    let d = digest_of(&ok(&e.app, "GET", WWIDS, None).await);
    ok(
        &e.app,
        "DELETE",
        &format!("{WWIDS}/{W2}"),
        Some(json!({"digest": d})),
    )
    .await;
    assert_eq!(ok(&e.app, "GET", WWIDS, None).await["wwids"], json!([]));
    for (m, body) in [
        ("GET", None),
        ("DELETE", None),
        ("PUT", Some(json!({"alias": "a"}))),
    ] {
        let (s, err) = call(&e.app, m, &format!("{WWIDS}/{W1}"), body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m}: {err:#}");
        assert!(err["message"].as_str().unwrap().contains(W1));
    }
}

#[tokio::test]
async fn bad_alias_is_reported_on_the_alias_field() {
    let e = env().await;
    seed(&e.app).await;
    let before = raw_docs(e.store.as_ref()).await;
    let cases = [
        (
            "POST",
            WWIDS.to_owned(),
            json!({"wwid": W2, "alias": "bad alias!"}),
        ),
        (
            "POST",
            WWIDS.to_owned(),
            json!({"wwid": W2, "alias": "data"}),
        ),
        ("POST", WWIDS.to_owned(), json!({"wwid": W2, "alias": W1})),
        ("POST", WWIDS.to_owned(), json!({"wwid": W2, "alias": ""})),
        ("POST", WWIDS.to_owned(), json!({"wwid": W2, "alias": 5})),
        ("PUT", format!("{WWIDS}/{W1}"), json!({"alias": "x y"})),
        (
            "PUT",
            format!("{WWIDS}/{W1}"),
            json!({"alias": "ok", "delete": ["alias"]}),
        ),
    ];
    for (m, uri, body) in cases {
        let (s, err) = call(&e.app, m, &uri, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {err:#}");
        assert!(err["errors"]["alias"].is_string(), "{body}: {err:#}");
        assert_eq!(err["errors"].as_object().unwrap().len(), 1, "{err:#}");
    }
    assert_eq!(raw_docs(e.store.as_ref()).await, before);
}

#[tokio::test]
async fn overrides_get_put() {
    let e = env().await;
    let v = ok(&e.app, "GET", OVERRIDES, None).await;
    assert_eq!(v["content"], "");
    ok(
        &e.app,
        "PUT",
        OVERRIDES,
        Some(json!({"content": GOOD_OVERRIDES, "digest": v["digest"]})),
    )
    .await;
    let v = ok(&e.app, "GET", OVERRIDES, None).await;
    assert_eq!(v["content"], GOOD_OVERRIDES);
    let (text, digest) = e
        .store
        .read_doc(doc_names::OVERRIDES)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(digest.to_string(), digest_of(&v));
    assert_eq!(
        Overrides::from_json(&text).unwrap().as_str(),
        GOOD_OVERRIDES
    );
    // the overrides digest is its own: a config change does not make it stale
    ok(&e.app, "PUT", CONFIG, Some(json!({"polling-interval": 7}))).await;
    ok(
        &e.app,
        "PUT",
        OVERRIDES,
        Some(json!({"content": "", "digest": v["digest"]})),
    )
    .await;
    let before = raw_docs(e.store.as_ref()).await;
    for body in [
        json!({"content": "defaults {\n\tpolling_interval 1\n}\n"}),
        json!({"content": 5}),
        json!({}),
        json!({"content": "", "extra": 1}),
    ] {
        let (s, err) = call(&e.app, "PUT", OVERRIDES, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(!err["errors"].as_object().unwrap().is_empty(), "{err:#}");
    }
    let (_, err) = call(
        &e.app,
        "PUT",
        OVERRIDES,
        Some(json!({"content": "devices {\n\tdevice {\n\t\tvendor X }\n\t}\n}\nblacklist {\n}\n"})),
    )
    .await;
    let msg = err["errors"]["content"].as_str().unwrap();
    assert!(msg.contains("line 3:") && msg.contains("line 6:"), "{msg}");
    assert_eq!(raw_docs(e.store.as_ref()).await, before);
}

#[tokio::test]
async fn storage_crud() {
    let e = env().await;
    let d0 = digest_of(&ok(&e.app, "GET", STORAGE, None).await);
    ok(
        &e.app,
        "POST",
        STORAGE,
        Some(json!({"type": "multipath", "id": "mp", "nodes": "n2,n1", "digest": d0})),
    )
    .await;
    ok(
        &e.app,
        "POST",
        STORAGE,
        Some(
            json!({"type": "lvm", "id": "vg", "vgname": "vg0", "base": format!("mp:{W1}"),
                    "nodes": ["n1"], "disable": 0}),
        ),
    )
    .await;
    let all = ok(&e.app, "GET", STORAGE, None).await;
    assert_eq!(
        all["storages"],
        json!([
            {"type": "multipath", "id": "mp", "nodes": ["n1", "n2"]},
            {"type": "lvm", "id": "vg", "vgname": "vg0", "base": format!("mp:{W1}"), "nodes": ["n1"]},
        ])
    );
    let lvm = ok(&e.app, "GET", &format!("{STORAGE}?type=lvm"), None).await;
    assert_eq!(lvm["storages"].as_array().unwrap().len(), 1);
    let vg = ok(&e.app, "GET", &format!("{STORAGE}/vg"), None).await;
    assert_eq!(vg["vgname"], "vg0");
    ok(
        &e.app,
        "PUT",
        &format!("{STORAGE}/vg"),
        Some(json!({"disable": true, "vgname": "vg1", "delete": "nodes", "digest": vg["digest"]})),
    )
    .await;
    let vg = ok(&e.app, "GET", &format!("{STORAGE}/vg"), None).await;
    assert_eq!(vg["disable"], true);
    assert_eq!(vg["vgname"], "vg1");
    assert!(vg.get("nodes").is_none());

    let before = raw_docs(e.store.as_ref()).await;
    // removing a base in use names its users
    let (s, err) = call(&e.app, "DELETE", &format!("{STORAGE}/mp"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let why = err["errors"]["id"].as_str().unwrap();
    assert!(why.contains("'vg'"), "{why}");
    // invalid definitions
    for (body, field) in [
        (
            json!({"type": "lvm", "id": "v2", "vgname": "v", "base": format!("nope:{W1}")}),
            "base",
        ),
        (
            json!({"type": "lvm", "id": "v2", "vgname": "v", "base": format!("vg:{W1}")}),
            "base",
        ),
        (json!({"type": "lvm", "id": "v2", "vgname": "v"}), "base"),
        (
            json!({"type": "lvm", "id": "v2", "base": format!("mp:{W1}")}),
            "vgname",
        ),
        (json!({"type": "iscsi", "id": "v2"}), "type"),
        (json!({"id": "v2"}), "type"),
        (json!({"type": "multipath", "id": "mp"}), "id"),
        (json!({"type": "multipath", "id": "m"}), "id"),
        (
            json!({"type": "multipath", "id": "m2", "nodes": ""}),
            "nodes",
        ),
        (
            json!({"type": "multipath", "id": "m2", "nodes": []}),
            "nodes",
        ),
        (
            json!({"type": "multipath", "id": "m2", "disable": "yes please"}),
            "disable",
        ),
        (
            json!({"type": "multipath", "id": "m2", "vgname": "v"}),
            "vgname",
        ),
    ] {
        let (s, err) = call(&e.app, "POST", STORAGE, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(err["errors"][field].is_string(), "{body}: {err:#}");
    }
    for (body, field) in [
        (json!({"type": "multipath"}), "type"),
        (json!({"id": "other"}), "id"),
        (json!({"delete": "vgname"}), "vgname"),
        (json!({"delete": "content"}), "content"),
        (json!({"base": format!("vg:{W1}")}), "base"),
    ] {
        let (s, err) = call(&e.app, "PUT", &format!("{STORAGE}/vg"), Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(err["errors"][field].is_string(), "{body}: {err:#}");
    }
    assert_eq!(raw_docs(e.store.as_ref()).await, before);
    for m in ["GET", "PUT", "DELETE"] {
        let (s, _) = call(&e.app, m, &format!("{STORAGE}/none"), Some(json!({}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m}");
    }

    ok(&e.app, "DELETE", &format!("{STORAGE}/vg"), None).await;
    let d = digest_of(&ok(&e.app, "GET", STORAGE, None).await);
    ok(&e.app, "DELETE", &format!("{STORAGE}/mp?digest={d}"), None).await;
    assert_eq!(
        ok(&e.app, "GET", STORAGE, None).await["storages"],
        json!([])
    );
}

#[tokio::test]
async fn stale_digest_is_409_naming_what_changed_and_writes_nothing() {
    let e = env().await;
    seed(&e.app).await;
    let stale_config = digest_of(&ok(&e.app, "GET", CONFIG, None).await);
    let stale_overrides = digest_of(&ok(&e.app, "GET", OVERRIDES, None).await);
    let stale_storage = digest_of(&ok(&e.app, "GET", STORAGE, None).await);
    // someone else changes every document
    ok(&e.app, "PUT", CONFIG, Some(json!({"polling-interval": 9}))).await;
    ok(&e.app, "PUT", OVERRIDES, Some(json!({"content": ""}))).await;
    ok(
        &e.app,
        "POST",
        STORAGE,
        Some(json!({"type": "multipath", "id": "mp2"})),
    )
    .await;
    let before = raw_docs(e.store.as_ref()).await;
    let wwid = format!("{WWIDS}/{W1}");
    // Each lost write says what the other writer changed (issue 16, part 4).
    let knob = "defaults knob polling-interval changed";
    let unknown = "no longer at the digest the request carries";
    let cases: Vec<(&str, String, Option<Value>, &str)> = vec![
        (
            "PUT",
            CONFIG.to_owned(),
            Some(json!({"polling-interval": 3, "digest": stale_config})),
            knob,
        ),
        (
            "POST",
            WWIDS.to_owned(),
            Some(json!({"wwid": W2, "digest": stale_config})),
            knob,
        ),
        (
            "PUT",
            wwid.clone(),
            Some(json!({"alias": "zz", "digest": stale_config})),
            knob,
        ),
        (
            "DELETE",
            format!("{wwid}?digest={stale_config}"),
            None,
            knob,
        ),
        (
            "DELETE",
            wwid.clone(),
            Some(json!({"digest": stale_config})),
            knob,
        ),
        (
            "PUT",
            OVERRIDES.to_owned(),
            Some(json!({"content": GOOD_OVERRIDES, "digest": stale_overrides})),
            "the overrides changed meanwhile: the devices / overrides text changed",
        ),
        (
            "POST",
            STORAGE.to_owned(),
            Some(json!({"type": "multipath", "id": "mp3", "digest": stale_storage})),
            "the storage definitions changed meanwhile: storage mp2 added",
        ),
        (
            "PUT",
            format!("{STORAGE}/mp"),
            Some(json!({"disable": true, "digest": stale_storage})),
            "storage mp2 added",
        ),
        (
            "DELETE",
            format!("{STORAGE}/mp2?digest={stale_storage}"),
            None,
            "storage mp2 added",
        ),
        // a digest from another document is just as stale
        (
            "PUT",
            CONFIG.to_owned(),
            Some(json!({"polling-interval": 3, "digest": stale_storage})),
            unknown,
        ),
        // "absent" is stale once the document exists: everything in it is new
        (
            "PUT",
            CONFIG.to_owned(),
            Some(json!({"polling-interval": 3, "digest": ConfigDigest::of("")})),
            "defaults knob polling-interval added",
        ),
    ];
    for (m, uri, body, names) in cases {
        let (s, err) = call(&e.app, m, &uri, body.clone()).await;
        assert_eq!(s, StatusCode::CONFLICT, "{m} {uri} {body:?}: {err:#}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.starts_with(CHANGED_MEANWHILE),
            "{m} {uri}: {message}"
        );
        assert!(
            message.starts_with("configuration changed meanwhile — reload and retry: "),
            "{message}"
        );
        assert!(
            message.contains(names),
            "{m} {uri}: {names:?} not in {message}"
        );
        assert_eq!(err["data"], Value::Null);
    }
    assert_eq!(raw_docs(e.store.as_ref()).await, before);
}

/// Two writers with the same digest, racing for real: exactly one wins each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_with_the_same_digest_exactly_one_wins() {
    let e = env().await;
    seed(&e.app).await;
    for round in 0..10u32 {
        let (uri_a, body_a, uri_b, body_b, get) = if round % 2 == 0 {
            let d = digest_of(&ok(&e.app, "GET", CONFIG, None).await);
            (
                CONFIG.to_owned(),
                json!({"polling-interval": 10 + round, "digest": d}),
                format!("{WWIDS}/{W1}"),
                json!({"alias": format!("b{round}"), "digest": d}),
                CONFIG,
            )
        } else {
            let d = digest_of(&ok(&e.app, "GET", STORAGE, None).await);
            (
                STORAGE.to_owned(),
                json!({"type": "multipath", "id": format!("a{round}"), "digest": d}),
                format!("{STORAGE}/mp"),
                json!({"disable": round % 4 == 1, "nodes": format!("n{round}"), "digest": d}),
                STORAGE,
            )
        };
        let method_a = if round % 2 == 0 { "PUT" } else { "POST" };
        let (a, b) = (e.app.clone(), e.app.clone());
        let ta = tokio::spawn(async move { call(&a, method_a, &uri_a, Some(body_a)).await });
        let tb = tokio::spawn(async move { call(&b, "PUT", &uri_b, Some(body_b)).await });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        let mut statuses = [ra.0, rb.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "round {round}: {ra:?} {rb:?}"
        );
        let loser = if ra.0 == StatusCode::CONFLICT {
            &ra.1
        } else {
            &rb.1
        };
        let message = loser["message"].as_str().unwrap();
        assert!(
            message.starts_with(CHANGED_MEANWHILE) && message.contains("by another writer"),
            "{message}"
        );
        let winner = if ra.0 == StatusCode::OK { &ra.1 } else { &rb.1 };
        assert_eq!(
            winner["data"]["digest"],
            ok(&e.app, "GET", get, None).await["digest"]
        );
    }
}

/// A store whose document writes wait until two are pending, so both racing requests have read
/// (and passed the digest check) before either writes: the compare-and-swap must decide.
struct Gate {
    inner: Arc<dyn ClusterStore>,
    barrier: tokio::sync::Barrier,
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl ClusterStore for Gate {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn is_standalone(&self) -> bool {
        self.inner.is_standalone()
    }

    fn put<'l0, 'l1, 'l2, 'l3, 'a>(
        &'l0 self,
        key: &'l1 str,
        node: &'l2 NodeName,
        value: Option<&'l3 str>,
    ) -> Fut<'a, Result<(), StoreError>>
    where
        'l0: 'a,
        'l1: 'a,
        'l2: 'a,
        'l3: 'a,
        Self: 'a,
    {
        self.inner.put(key, node, value)
    }

    fn get_all<'l0, 'l1, 'a>(
        &'l0 self,
        key: &'l1 str,
    ) -> Fut<'a, Result<std::collections::BTreeMap<NodeName, String>, StoreError>>
    where
        'l0: 'a,
        'l1: 'a,
        Self: 'a,
    {
        self.inner.get_all(key)
    }

    fn members<'l0, 'a>(
        &'l0 self,
    ) -> Fut<'a, Result<std::collections::BTreeMap<NodeName, Member>, StoreError>>
    where
        'l0: 'a,
        Self: 'a,
    {
        self.inner.members()
    }

    fn join<'l0, 'l1, 'a>(
        &'l0 self,
        node: &'l1 NodeName,
        ttl: Duration,
    ) -> Fut<'a, Result<MembershipHandle, StoreError>>
    where
        'l0: 'a,
        'l1: 'a,
        Self: 'a,
    {
        self.inner.join(node, ttl)
    }

    fn read_doc<'l0, 'l1, 'a>(
        &'l0 self,
        name: &'l1 str,
    ) -> Fut<'a, Result<Option<(String, ConfigDigest)>, StoreError>>
    where
        'l0: 'a,
        'l1: 'a,
        Self: 'a,
    {
        self.inner.read_doc(name)
    }

    fn write_doc<'l0, 'l1, 'l2, 'a>(
        &'l0 self,
        name: &'l1 str,
        content: &'l2 str,
        expected: Expect,
    ) -> Fut<'a, Result<ConfigDigest, StoreError>>
    where
        'l0: 'a,
        'l1: 'a,
        'l2: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            // The configuration documents only: the audit trail's event log, written after a
            // successful edit, is not part of the race under test.
            if !name.starts_with("events") {
                self.barrier.wait().await;
            }
            self.inner.write_doc(name, content, expected).await
        })
    }

    fn delete_doc<'l0, 'l1, 'a>(
        &'l0 self,
        name: &'l1 str,
        expected: Expect,
    ) -> Fut<'a, Result<bool, StoreError>>
    where
        'l0: 'a,
        'l1: 'a,
        Self: 'a,
    {
        self.inner.delete_doc(name, expected)
    }

    fn subscribe<'l0, 'a>(&'l0 self) -> Fut<'a, StoreSubscription>
    where
        'l0: 'a,
        Self: 'a,
    {
        self.inner.subscribe()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_decides_when_both_writers_passed_the_digest_check() {
    let dir = tempfile::tempdir().unwrap();
    let inner = embedded(&dir).await;
    // seed directly (the gate would hold single writes)
    {
        let plain = env_over(inner.clone(), tempfile::tempdir().unwrap());
        seed(&plain.app).await;
    }
    let gate: Arc<dyn ClusterStore> = Arc::new(Gate {
        inner,
        barrier: tokio::sync::Barrier::new(2),
    });
    let e = env_over(gate, dir);
    for (uri_a, body_a, uri_b, body_b) in [
        (
            CONFIG.to_owned(),
            json!({"polling-interval": 11}),
            format!("{WWIDS}/{W1}"),
            json!({"alias": "other"}),
        ),
        (
            format!("{STORAGE}/mp"),
            json!({"disable": true}),
            format!("{STORAGE}/vg"),
            json!({"vgname": "vg9"}),
        ),
        (
            OVERRIDES.to_owned(),
            json!({"content": ""}),
            OVERRIDES.to_owned(),
            json!({"content": "overrides {\n\tno_path_retry fail\n}\n"}),
        ),
    ] {
        let get = if uri_a.starts_with(STORAGE) {
            STORAGE
        } else if uri_a == OVERRIDES {
            OVERRIDES
        } else {
            CONFIG
        };
        let d = digest_of(&ok(&e.app, "GET", get, None).await);
        let before = raw_docs(e.store.as_ref()).await;
        let (mut body_a, mut body_b) = (body_a, body_b);
        body_a["digest"] = json!(d);
        body_b["digest"] = json!(d);
        let (a, b) = (e.app.clone(), e.app.clone());
        let ta = tokio::spawn(async move { call(&a, "PUT", &uri_a, Some(body_a)).await });
        let tb = tokio::spawn(async move { call(&b, "PUT", &uri_b, Some(body_b)).await });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        let mut statuses = [ra.0, rb.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "{ra:?} {rb:?}"
        );
        let loser = if ra.0 == StatusCode::CONFLICT {
            &ra.1
        } else {
            &rb.1
        };
        let message = loser["message"].as_str().unwrap();
        assert!(
            message.starts_with(CHANGED_MEANWHILE) && message.contains("by another writer"),
            "{message}"
        );
        // exactly one document changed, and it carries the winner's change only
        let after = raw_docs(e.store.as_ref()).await;
        let changed = before.iter().zip(&after).filter(|(x, y)| x != y).count();
        assert_eq!(changed, 1);
    }
}

/// Issue 16, part 4: writes without a digest mean "add this", not "replace this version": 20
/// parallel POSTs of 20 different WWIDs all succeed (each retried on the new document when
/// another one won the compare-and-swap), and so do parallel storage additions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_writes_without_a_digest_all_succeed() {
    let e = env().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = e.app.clone();
        tasks.push(tokio::spawn(async move {
            let wwid = format!("3600a098038303053453f46304572{i:04}");
            call(&app, "POST", WWIDS, Some(json!({"wwid": wwid}))).await
        }));
    }
    for i in 0..5 {
        let app = e.app.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"type": "multipath", "id": format!("par{i}")});
            call(&app, "POST", STORAGE, Some(body)).await
        }));
    }
    for t in tasks {
        let (s, b) = t.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let listed = ok(&e.app, "GET", WWIDS, None).await;
    assert_eq!(listed["wwids"].as_array().unwrap().len(), 20, "{listed}");
    let storages = ok(&e.app, "GET", STORAGE, None).await;
    assert_eq!(
        storages["storages"].as_array().unwrap().len(),
        5,
        "{storages}"
    );
}

/// Strings that try to break out of a value: quotes, newlines, CR, braces, comment characters,
/// a 10 KB string. All carry `INJ` so the rendered files can be searched for them.
fn hostile() -> Vec<String> {
    vec![
        "INJ\"x".to_owned(),
        "INJ\n\twwid .*".to_owned(),
        "INJ\r{".to_owned(),
        "INJ{".to_owned(),
        "INJ}".to_owned(),
        "INJ#x".to_owned(),
        "INJ!x".to_owned(),
        "INJ\n}\nblacklist {\n\twwid .*\n}".to_owned(),
        format!("INJ{}", "x".repeat(10 * 1024)),
    ]
}

/// Overrides texts that try to escape their sections or smuggle sections in.
fn hostile_overrides() -> Vec<String> {
    vec![
        "INJ".to_owned(),
        "devices {\n\tdevice {\n\t\tvendor INJ # }\n}\n".to_owned(),
        "devices {\n\tdevice {\n\t\tvendor INJ ! }\n}\n".to_owned(),
        "devices {\n\tdevice {\n\t\tvendor \"INJ\n\t}\n}\n".to_owned(),
        "devices {\n\tdevice {\n\t\tvendor INJ\r\n\t}\n}\n".to_owned(),
        "devices {\n\tdevice {\n\t\tvendor INJ }\n}\ndefaults {\n\tpolling_interval 1\n}\n"
            .to_owned(),
        "devices {\n}\n}\nblacklist {\n\twwid INJ\n}\n".to_owned(),
        "overrides {\n\tno_path_retry INJ\"x\"\n}\n".to_owned(),
        "devices {\n\tdevice {\n\t\tvendor INJ{x}\n\t}\n}\n".to_owned(),
        "multipaths {\n\tmultipath {\n\t\twwid INJ\n\t}\n}\n".to_owned(),
        format!(
            "devices {{\n\tdevice {{\n\t\tvendor \"INJ{}\"\n\t}}\n}}\n",
            "x".repeat(10 * 1024)
        ),
    ]
}

#[tokio::test]
async fn injection_through_every_field_is_refused_and_stores_nothing() {
    let e = env().await;
    seed(&e.app).await;
    let before = raw_docs(e.store.as_ref()).await;
    let mut requests: Vec<(&str, String, Value)> = Vec::new();
    for h in hostile() {
        let p = enc(&h);
        let lvm = |k: &str, v: &str| {
            let mut b =
                json!({"type": "lvm", "id": "s1", "vgname": "v", "base": format!("mp:{W1}")});
            b[k] = json!(v);
            b
        };
        requests.extend([
            ("PUT", CONFIG.to_owned(), json!({"polling-interval": h})),
            ("PUT", CONFIG.to_owned(), json!({"no-path-retry": h})),
            ("PUT", CONFIG.to_owned(), json!({"path-selector": h})),
            ("PUT", CONFIG.to_owned(), json!({ h.clone(): "5" })),
            ("PUT", CONFIG.to_owned(), json!({"delete": [h]})),
            (
                "PUT",
                CONFIG.to_owned(),
                json!({"polling-interval": 6, "digest": h}),
            ),
            ("POST", WWIDS.to_owned(), json!({"wwid": h})),
            ("POST", WWIDS.to_owned(), json!({"wwid": W2, "alias": h})),
            (
                "POST",
                WWIDS.to_owned(),
                json!({"wwid": W2, "no-path-retry": h}),
            ),
            (
                "POST",
                WWIDS.to_owned(),
                json!({"wwid": W2, h.clone(): "queue"}),
            ),
            ("PUT", format!("{WWIDS}/{W1}"), json!({"alias": h})),
            ("PUT", format!("{WWIDS}/{W1}"), json!({"failback": h})),
            ("PUT", format!("{WWIDS}/{W1}"), json!({"delete": [h]})),
            ("PUT", format!("{WWIDS}/{W1}"), json!({"wwid": h})),
            ("PUT", format!("{WWIDS}/{p}"), json!({"alias": "fine"})),
            ("DELETE", format!("{WWIDS}/{p}"), json!({})),
            ("DELETE", format!("{WWIDS}/{W1}"), json!({"digest": h})),
            ("DELETE", format!("{WWIDS}/{W1}?digest={p}"), json!({})),
            (
                "PUT",
                OVERRIDES.to_owned(),
                json!({"content": GOOD_OVERRIDES, "digest": h}),
            ),
            ("POST", STORAGE.to_owned(), json!({"type": h, "id": "s1"})),
            (
                "POST",
                STORAGE.to_owned(),
                json!({"type": "multipath", "id": h}),
            ),
            (
                "POST",
                STORAGE.to_owned(),
                json!({"type": "multipath", "id": "s1", "nodes": h}),
            ),
            (
                "POST",
                STORAGE.to_owned(),
                json!({"type": "multipath", "id": "s1", "nodes": [h]}),
            ),
            (
                "POST",
                STORAGE.to_owned(),
                json!({"type": "multipath", "id": "s1", "disable": h}),
            ),
            (
                "POST",
                STORAGE.to_owned(),
                json!({"type": "multipath", "id": "s1", h.clone(): 1}),
            ),
            ("POST", STORAGE.to_owned(), lvm("vgname", &h)),
            ("POST", STORAGE.to_owned(), lvm("base", &h)),
            ("POST", STORAGE.to_owned(), lvm("base", &format!("mp:{h}"))),
            (
                "POST",
                STORAGE.to_owned(),
                lvm("base", &format!("{h}:{W1}")),
            ),
            ("PUT", format!("{STORAGE}/vg"), json!({"nodes": h})),
            ("PUT", format!("{STORAGE}/vg"), json!({"vgname": h})),
            (
                "PUT",
                format!("{STORAGE}/vg"),
                json!({"base": format!("mp:{h}")}),
            ),
            ("PUT", format!("{STORAGE}/vg"), json!({"delete": [h]})),
            ("PUT", format!("{STORAGE}/{p}"), json!({"disable": true})),
            ("DELETE", format!("{STORAGE}/{p}"), json!({})),
        ]);
    }
    for o in hostile_overrides() {
        requests.push(("PUT", OVERRIDES.to_owned(), json!({"content": o})));
    }
    assert!(requests.len() > 300);
    for (m, uri, body) in &requests {
        let (s, err) = call(&e.app, m, uri, Some(body.clone())).await;
        let shown: String = format!("{m} {uri} {body}").chars().take(200).collect();
        assert_eq!(s, StatusCode::BAD_REQUEST, "{shown}: {err:#}");
        assert!(err["message"].is_string(), "{shown}");
        assert!(
            err["errors"].as_object().is_some_and(|e| !e.is_empty()),
            "{shown}: {err:#}"
        );
        assert_eq!(err["data"], Value::Null);
    }
    let after = raw_docs(e.store.as_ref()).await;
    assert_eq!(after, before);
    let cfg = MultipathConfig::from_json(after[0].as_deref().unwrap()).unwrap();
    let baseline = render_baseline(&cfg).unwrap().unwrap();
    assert!(baseline.contains("alias data"), "{baseline}");
    assert!(!baseline.contains("INJ"), "{baseline}");
    let overrides = Overrides::from_json(after[1].as_deref().unwrap()).unwrap();
    assert!(!render_overrides(&overrides).unwrap().contains("INJ"));
    assert!(!after[2].as_deref().unwrap().contains("INJ"));
}

#[tokio::test]
async fn malformed_requests_are_400_with_a_message() {
    let e = env().await;
    seed(&e.app).await;
    let before = raw_docs(e.store.as_ref()).await;
    for (uri, body) in [
        (CONFIG, b"{".to_vec()),
        (CONFIG, b"[1]".to_vec()),
        (CONFIG, b"\"x\"".to_vec()),
        (CONFIG, vec![0xff, 0xfe]),
        (OVERRIDES, b"null".to_vec()),
        (
            STORAGE,
            b"{\"type\": \"multipath\", \"id\": \"x1\"".to_vec(),
        ),
    ] {
        let method = if uri == STORAGE { "POST" } else { "PUT" };
        let (s, err) = call_raw(&e.app, method, uri, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} {body:?}");
        assert!(
            err["message"].as_str().unwrap().contains("request body"),
            "{err:#}"
        );
    }
    let (s, err) = call(
        &e.app,
        "PUT",
        CONFIG,
        Some(json!({"digest": 5, "delete": {"a": 1}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(err["errors"]["digest"].is_string() && err["errors"]["delete"].is_string());
    // a body over the limit
    let big = format!("{{\"content\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (s, _) = call_raw(&e.app, "PUT", OVERRIDES, big.into_bytes()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(raw_docs(e.store.as_ref()).await, before);
}

#[tokio::test]
async fn openapi_lists_the_configuration_paths() {
    let e = env().await;
    let (s, v) = call(&e.app, "GET", "/api2/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let paths = v["paths"].as_object().unwrap();
    for (p, methods) in [
        (CONFIG, &["get", "put"][..]),
        (WWIDS, &["get", "post"][..]),
        (
            "/api2/json/cluster/multipath/wwids/{wwid}",
            &["get", "put", "delete"][..],
        ),
        (OVERRIDES, &["get", "put"][..]),
        (STORAGE, &["get", "post"][..]),
        ("/api2/json/storage/{id}", &["get", "put", "delete"][..]),
    ] {
        for m in methods {
            assert!(paths[p][*m].is_object(), "{m} {p}");
        }
    }
}
