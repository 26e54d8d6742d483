//! Access control through `app()` (tower `oneshot`) over an embedded store: every route of the
//! OpenAPI document needs a token with the right privilege; 401/403 bodies; removal and expiry
//! take effect on the next request; hashes; oversized bodies.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use mpcluster_config::tokens::{add_token, bootstrap_admin, remove_token, verify_secret};
use mpcluster_config::unix_now;
use mpcluster_core::NodeName;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_core::tokens::{Privilege, TokenId, TokensDoc};
use mpcluster_server::auth::{INVALID_TOKEN, TOKEN_REQUIRED};
use mpcluster_server::cache::{CacheConfig, StatusCache};
use mpcluster_server::{ApiDoc, AppState, BODY_LIMIT, app};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use utoipa::OpenApi as _;

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const DOCS: [&str; 5] = [
    doc_names::ACCEPT,
    doc_names::CONFIG,
    doc_names::OVERRIDES,
    doc_names::STORAGE,
    doc_names::TOKENS,
];

struct Env {
    app: Router,
    store: Arc<dyn ClusterStore>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ClusterStore> = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let (cache, task) = StatusCache::spawn(
        store.clone(),
        CacheConfig {
            refresh: Duration::from_millis(200),
            ..CacheConfig::default()
        },
    );
    Env {
        app: app(AppState {
            store: store.clone(),
            cache,
            pve: None,
            metrics_public: false,
        }),
        store,
        task,
        dir,
    }
}

/// Add a token; its `Authorization: Bearer` value.
async fn token(store: &dyn ClusterStore, id: &str, privs: &[Privilege]) -> String {
    let t = add_token(
        store,
        TokenId::new(id).unwrap(),
        privs.iter().copied().collect(),
        None,
        None,
    )
    .await
    .unwrap();
    format!("Bearer {}", t.credential())
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    if let Some(b) = &body {
        req = req
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, b.len());
    }
    let req = req.body(Body::from(body.unwrap_or_default())).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{method} {uri}: HTTP {status}, not JSON: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, headers, v)
}

async fn raw_docs(store: &dyn ClusterStore) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for d in DOCS {
        out.push(store.read_doc(d).await.unwrap().map(|(t, _)| t));
    }
    out
}

/// Every (method, path template) of the OpenAPI document, and the document itself.
fn routes() -> Vec<(String, String)> {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let mut out = vec![("GET".to_owned(), "/api2/openapi.json".to_owned())];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ] {
            if item.get(method).is_some() {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// A concrete URI for a path template.
fn concrete(path: &str) -> String {
    path.replace("{node}", "n1")
        .replace("{wwid}", W1)
        .replace("{id}", "mp")
}

/// A valid body for each write route (applied in the order POST, PUT, DELETE on the seeded
/// store). A new write route must get one here.
fn write_body(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("PUT", "/api2/json/cluster/multipath/config") => Some(json!({"polling-interval": 7})),
        ("POST", "/api2/json/cluster/multipath/wwids") => Some(json!({"wwid": W2})),
        ("PUT", "/api2/json/cluster/multipath/wwids/{wwid}") => Some(json!({"alias": "renamed"})),
        ("PUT", "/api2/json/cluster/multipath/overrides") => Some(json!({"content": ""})),
        ("POST", "/api2/json/storage") => {
            Some(json!({"type": "multipath", "id": "mp2", "nodes": "n1"}))
        }
        ("PUT", "/api2/json/storage/{id}") => Some(json!({"disable": true})),
        ("POST", "/api2/json/cluster/multipath/config/plan/{node}/accept") => None,
        ("PUT", "/api2/json/cluster/multipath/config/accept") => Some(json!({"always": false})),
        ("POST", "/api2/json/cluster/multipath/preflight") => {
            Some(json!({"down": [{"target": "10.0.0.1"}]}))
        }
        ("POST", "/api2/json/cluster/multipath/notify") => {
            Some(json!({"type": "exec", "id": "mp", "command": ["/bin/true"]}))
        }
        ("POST", "/api2/json/cluster/multipath/notify/{id}/test") => None,
        ("DELETE", _) => None,
        _ => panic!("no request body for {method} {path}: add one to write_body()"),
    }
}

/// Needs only Sys.Audit: every GET, and the POSTs that change nothing (pre-flight).
fn is_read(method: &str, path: &str) -> bool {
    method == "GET" || mpcluster_server::auth::READ_ONLY_POSTS.contains(&path)
}

fn assert_401(what: &str, status: StatusCode, headers: &HeaderMap, body: &Value, msg: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["message"], msg, "{what}");
    assert_eq!(body["data"], Value::Null, "{what}");
    assert!(
        headers
            .get(header::WWW_AUTHENTICATE)
            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer")),
        "{what}: {headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_a_token_with_the_right_privilege() {
    let e = env().await;
    let admin = token(
        e.store.as_ref(),
        "admin",
        &[Privilege::SysAudit, Privilege::SysModify],
    )
    .await;
    let audit = token(e.store.as_ref(), "ro", &[Privilege::SysAudit]).await;
    let modify_only = token(e.store.as_ref(), "wo", &[Privilege::SysModify]).await;
    let wrong_secret = format!("Bearer admin:{}", "0".repeat(64));
    let unknown_id = format!("Bearer nobody:{}", "0".repeat(64));

    // Seed what the routes address: W1 allow-listed, storage "mp", node n1's detail.
    let (s, _, b) = call(
        &e.app,
        "POST",
        "/api2/json/cluster/multipath/wwids",
        Some(&admin),
        Some(json!({"wwid": W1}).to_string().into_bytes()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _, b) = call(
        &e.app,
        "POST",
        "/api2/json/storage",
        Some(&admin),
        Some(
            json!({"type": "multipath", "id": "mp", "nodes": "n1"})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    e.store
        .put(
            kv_keys::DETAIL,
            &NodeName::new("n1").unwrap(),
            Some(r#"{"time": 1, "maps": [], "errors": []}"#),
        )
        .await
        .unwrap();
    // ... and a plan of n1 that waits for an acceptance.
    let mut plan = mpcluster_core::plan::ApplyPlan::new(
        1,
        vec![mpcluster_core::plan::Rename {
            wwid: mpcluster_core::Wwid::new(W1).unwrap(),
            from: "mpatha".into(),
            to: W1.into(),
            requested: false,
        }],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    plan.set_waiting(true);
    e.store
        .put(
            kv_keys::PLAN,
            &NodeName::new("n1").unwrap(),
            Some(&plan.encode()),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(
        &e.app,
        "GET",
        "/api2/json/cluster/multipath/status",
        Some(&admin),
        None,
    )
    .await
    .0 != StatusCode::OK
    {
        assert!(Instant::now() < deadline, "the status cache never filled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut routes: Vec<(String, String)> = routes()
        .into_iter()
        .filter(|(_, p)| p != "/health")
        .collect();
    let order = |m: &str| {
        ["GET", "HEAD", "POST", "PUT", "DELETE"]
            .iter()
            .position(|x| *x == m)
    };
    routes.sort_by_key(|(m, p)| (order(m), p.clone()));
    let writes = routes.iter().filter(|(m, _)| m != "GET").count();
    assert!(routes.len() >= 15 && writes >= 8, "{routes:?}");

    // Denied: nothing may change.
    let before = raw_docs(e.store.as_ref()).await;
    for (method, path) in &routes {
        let uri = concrete(path);
        let body = (method != "GET")
            .then(|| write_body(method, path))
            .flatten()
            .map(|v| v.to_string().into_bytes());
        let what = format!("{method} {uri}");

        let (s, h, b) = call(&e.app, method, &uri, None, body.clone()).await;
        assert_401(
            &format!("{what} without a token"),
            s,
            &h,
            &b,
            TOKEN_REQUIRED,
        );
        let (s, h, b) = call(&e.app, method, &uri, Some(&unknown_id), body.clone()).await;
        assert_401(&format!("{what} unknown id"), s, &h, &b, INVALID_TOKEN);
        let (s2, h2, b2) = call(&e.app, method, &uri, Some(&wrong_secret), body.clone()).await;
        assert_401(&format!("{what} wrong secret"), s2, &h2, &b2, INVALID_TOKEN);
        assert_eq!(b, b2, "{what}: unknown id and wrong secret look the same");
        let (s, h, b) = call(
            &e.app,
            method,
            &uri,
            Some("Basic YWRtaW46eA=="),
            body.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what} Basic: {b}");
        assert!(h.contains_key(header::WWW_AUTHENTICATE));

        if is_read(method, path) {
            let (s, _, b) = call(&e.app, method, &uri, Some(&modify_only), body.clone()).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{what} without Sys.Audit: {b}");
            assert!(
                b["message"].as_str().unwrap().contains("Sys.Audit"),
                "{what}: {b}"
            );
        } else {
            let (s, _, b) = call(&e.app, method, &uri, Some(&audit), body.clone()).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{what} read-only: {b}");
            assert!(
                b["message"].as_str().unwrap().contains("Sys.Modify"),
                "{what}: {b}"
            );
            assert_eq!(b["data"], Value::Null);
        }
    }
    assert_eq!(
        raw_docs(e.store.as_ref()).await,
        before,
        "a refused request changed a document"
    );

    // Allowed: reads with a read-only token (Bearer and Proxmox forms), writes with admin.
    let audit_pve = format!(
        "PVEAPIToken={}",
        audit.trim_start_matches("Bearer ").replacen(':', "=", 1)
    );
    for (i, (method, path)) in routes.iter().enumerate() {
        let uri = concrete(path);
        let (s, _, b) = if is_read(method, path) {
            let auth = if i % 2 == 0 { &audit } else { &audit_pve };
            let body = (method != "GET")
                .then(|| write_body(method, path))
                .flatten()
                .map(|v| v.to_string().into_bytes());
            call(&e.app, method, &uri, Some(auth), body).await
        } else {
            let body = write_body(method, path).map(|v| v.to_string().into_bytes());
            call(&e.app, method, &uri, Some(&admin), body).await
        };
        assert!(s.is_success(), "{method} {uri}: HTTP {s} {b}");
    }

    // /health stays open.
    let (s, _, b) = call(&e.app, "GET", "/health", None, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_and_expired_tokens_stop_working_at_once() {
    let e = env().await;
    let status = "/api2/json/cluster/multipath/config";
    let ro = token(e.store.as_ref(), "ro", &[Privilege::SysAudit]).await;
    for _ in 0..3 {
        let (s, _, b) = call(&e.app, "GET", status, Some(&ro), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    // Removed through another handle on the same store (like the CLI in another process):
    // refused on the very next request although its verification is cached.
    let other = EmbeddedStore::open(e.dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    remove_token(&other, &TokenId::new("ro").unwrap())
        .await
        .unwrap();
    let (s, h, b) = call(&e.app, "GET", status, Some(&ro), None).await;
    assert_401("removed token", s, &h, &b, INVALID_TOKEN);

    // Added again under the same id: the old secret stays refused, the new one works.
    let ro2 = token(e.store.as_ref(), "ro", &[Privilege::SysAudit]).await;
    let (s, h, b) = call(&e.app, "GET", status, Some(&ro), None).await;
    assert_401("old secret of a re-added id", s, &h, &b, INVALID_TOKEN);
    let (s, _, b) = call(&e.app, "GET", status, Some(&ro2), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Expiry: works until the second it expires, refused from then on.
    let expire = unix_now() + 2;
    let t = add_token(
        e.store.as_ref(),
        TokenId::new("short").unwrap(),
        BTreeSet::from([Privilege::SysAudit]),
        Some(expire),
        None,
    )
    .await
    .unwrap();
    let short = format!("Bearer {}", t.credential());
    let (s, _, b) = call(&e.app, "GET", status, Some(&short), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    while unix_now() < expire {
        let (s, _, b) = call(&e.app, "GET", status, Some(&short), None).await;
        assert!(
            s == StatusCode::OK || unix_now() >= expire,
            "refused before expiry: {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, h, b) = call(&e.app, "GET", status, Some(&short), None).await;
    assert_401("expired token", s, &h, &b, INVALID_TOKEN);

    // An expiry edited into the past in the store counts at once too.
    let (text, digest) = e.store.read_doc(doc_names::TOKENS).await.unwrap().unwrap();
    let mut doc = TokensDoc::from_json(&text).unwrap();
    doc.tokens
        .get_mut(&TokenId::new("ro").unwrap())
        .unwrap()
        .expire = Some(unix_now() - 1);
    e.store
        .write_doc(doc_names::TOKENS, &doc.to_json(), Expect::Digest(digest))
        .await
        .unwrap();
    let (s, h, b) = call(&e.app, "GET", status, Some(&ro2), None).await;
    assert_401("expiry set in the past", s, &h, &b, INVALID_TOKEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_hashes_never_equal_the_secret() {
    let e = env().await;
    let mut secrets = Vec::new();
    for id in ["a", "b", "c"] {
        let t = add_token(
            e.store.as_ref(),
            TokenId::new(id).unwrap(),
            BTreeSet::from([Privilege::SysAudit]),
            None,
            Some("note".into()),
        )
        .await
        .unwrap();
        assert!(!format!("{t:?}").contains(&t.secret), "Debug hides it");
        secrets.push(t);
    }
    let (text, _) = e.store.read_doc(doc_names::TOKENS).await.unwrap().unwrap();
    let doc = TokensDoc::from_json(&text).unwrap();
    let mut hashes = BTreeSet::new();
    for t in &secrets {
        assert!(!text.contains(&t.secret), "a secret is stored in clear");
        let entry = &doc.tokens[&t.id];
        assert_ne!(entry.hash, t.secret);
        assert!(entry.hash.starts_with("$argon2id$"), "{}", entry.hash);
        assert!(verify_secret(&t.secret, &entry.hash));
        hashes.insert(entry.hash.clone());
    }
    assert_eq!(hashes.len(), 3);
    // The same id twice is refused and changes nothing.
    let before = raw_docs(e.store.as_ref()).await;
    let err = add_token(
        e.store.as_ref(),
        TokenId::new("a").unwrap(),
        BTreeSet::from([Privilege::SysAudit]),
        None,
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
    assert_eq!(raw_docs(e.store.as_ref()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_creates_one_admin_token_only_on_a_store_without_tokens() {
    let e = env().await;
    let (a, b) = tokio::join!(
        bootstrap_admin(e.store.as_ref()),
        bootstrap_admin(e.store.as_ref())
    );
    let created: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one of two racing servers creates it"
    );
    let admin = format!("Bearer {}", created[0].credential());
    let (s, _, b) = call(
        &e.app,
        "PUT",
        "/api2/json/cluster/multipath/config",
        Some(&admin),
        Some(br#"{"polling-interval": 9}"#.to_vec()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(bootstrap_admin(e.store.as_ref()).await.unwrap().is_none());
    // Every token removed: an empty document, which is not bootstrapped again.
    remove_token(e.store.as_ref(), &created[0].id)
        .await
        .unwrap();
    assert!(bootstrap_admin(e.store.as_ref()).await.unwrap().is_none());
    let (s, _, _) = call(&e.app, "GET", "/api2/openapi.json", Some(&admin), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_tokens_document_refuses_everyone() {
    let e = env().await;
    let admin = token(
        e.store.as_ref(),
        "admin",
        &[Privilege::SysAudit, Privilege::SysModify],
    )
    .await;
    e.store
        .write_doc(doc_names::TOKENS, "{not json", Expect::Any)
        .await
        .unwrap();
    // Issue 16, part 5: not a bare 500 but 503 naming the document, the store and the
    // problem, and `/health` says so too.
    let (s, _, b) = call(&e.app, "GET", "/api2/openapi.json", Some(&admin), None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    let message = b["message"].as_str().unwrap();
    for part in [
        "API tokens document 'tokens'",
        "embedded store",
        "cannot be read",
        "line 1",
        "repaired",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    let (s, _, h) = call(&e.app, "GET", "/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["tokens"], "unreadable", "{h}");
    assert!(
        h["tokens-error"]
            .as_str()
            .unwrap()
            .contains("API tokens document 'tokens'"),
        "{h}"
    );
    assert_eq!(h["store"], "reachable", "{h}");
    // Repaired: back to normal.
    e.store
        .write_doc(
            doc_names::TOKENS,
            &mpcluster_core::tokens::TokensDoc::default().to_json(),
            Expect::Any,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, _, h) = call(&e.app, "GET", "/health", None, None).await;
    assert_eq!(h["tokens"], "ok", "{h}");
    assert_eq!(h["tokens-error"], serde_json::Value::Null, "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_and_write_nothing() {
    let e = env().await;
    let admin = token(
        e.store.as_ref(),
        "admin",
        &[Privilege::SysAudit, Privilege::SysModify],
    )
    .await;
    let before = raw_docs(e.store.as_ref()).await;
    let big = format!(
        "{{\"polling-interval\": 5, \"x\": \"{}\"}}",
        "a".repeat(BODY_LIMIT)
    )
    .into_bytes();
    for uri in [
        "/api2/json/cluster/multipath/config",
        "/api2/json/cluster/multipath/overrides",
        "/api2/json/storage",
    ] {
        let method = if uri.ends_with("storage") {
            "POST"
        } else {
            "PUT"
        };
        // Declared length.
        let (s, _, b) = call(&e.app, method, uri, Some(&admin), Some(big.clone())).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{method} {uri}: {b}");
        assert!(b["message"].is_string(), "{b}");
        // Streamed without a length.
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = big
            .chunks(64 * 1024)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, &admin)
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap();
        let resp = e.app.clone().oneshot(req).await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {uri}"
        );
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v["message"].is_string(), "{v}");
        // Without a token: refused too.
        let (s, _, _) = call(&e.app, method, uri, None, Some(big.clone())).await;
        assert!(
            s == StatusCode::PAYLOAD_TOO_LARGE || s == StatusCode::UNAUTHORIZED,
            "{s}"
        );
    }
    assert_eq!(raw_docs(e.store.as_ref()).await, before, "nothing written");
}
