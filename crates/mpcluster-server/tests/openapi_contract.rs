//! The API contract: every route the OpenAPI document lists is called for real (`app()` over
//! an embedded store, `oneshot`), in success and error cases, and every response body is
//! validated against the schema the document declares for that route and status (JSON Schema
//! 2020-12, the dialect of OpenAPI 3.1). The route list comes from the document: a route
//! without cases here fails the test, and so does a status the document declares for a route
//! that no case produced, or a status a route gave that the document does not declare.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use mpcluster_config::pve::PveMode;
use mpcluster_config::tokens::add_token;
use mpcluster_config::unix_now;
use mpcluster_core::NodeName;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::{Member, doc_names, kv_keys};
use mpcluster_core::tokens::{Privilege, TokenId};
use mpcluster_server::cache::{CacheConfig, StatusCache};
use mpcluster_server::{ApiDoc, AppState, BODY_LIMIT, app};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{
    ClusterStore, EmbeddedOptions, Expect, MembershipHandle, StoreError, StoreSubscription,
};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use utoipa::OpenApi as _;

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const W3: &str = "3600a098038303053453f463045727a03";
const W4: &str = "3600a098038303053453f463045727a04";
const GOOD_OVERRIDES: &str = "devices {\n\tdevice {\n\t\tvendor \"NETAPP\"\n\t\tproduct \"LUN.*\"\n\t\tno_path_retry queue\n\t}\n}\n";

/// A store that can be switched off: every call then fails as an unreachable store would.
struct Switch {
    inner: Arc<dyn ClusterStore>,
    down: AtomicBool,
}

impl Switch {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                store: self.inner.describe(),
                reason: "switched off by the test".to_owned(),
                source: None,
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ClusterStore for Switch {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn is_standalone(&self) -> bool {
        self.inner.is_standalone()
    }
    async fn put(&self, key: &str, node: &NodeName, value: Option<&str>) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put(key, node, value).await
    }
    async fn get_all(&self, key: &str) -> Result<BTreeMap<NodeName, String>, StoreError> {
        self.check()?;
        self.inner.get_all(key).await
    }
    async fn members(&self) -> Result<BTreeMap<NodeName, Member>, StoreError> {
        self.check()?;
        self.inner.members().await
    }
    async fn join(&self, node: &NodeName, ttl: Duration) -> Result<MembershipHandle, StoreError> {
        self.check()?;
        self.inner.join(node, ttl).await
    }
    async fn forget_node(&self, node: &NodeName) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.forget_node(node).await
    }
    async fn read_doc(&self, name: &str) -> Result<Option<(String, ConfigDigest)>, StoreError> {
        self.check()?;
        self.inner.read_doc(name).await
    }
    async fn write_doc(
        &self,
        name: &str,
        content: &str,
        expected: Expect,
    ) -> Result<ConfigDigest, StoreError> {
        self.check()?;
        self.inner.write_doc(name, content, expected).await
    }
    async fn delete_doc(&self, name: &str, expected: Expect) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.delete_doc(name, expected).await
    }
    async fn subscribe(&self) -> StoreSubscription {
        self.inner.subscribe().await
    }
}

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Admin,
    ReadOnly,
    WriteOnly,
}

/// One request and the status it must get.
#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    /// The path template of the OpenAPI document.
    route: &'static str,
    uri: String,
    who: Who,
    body: Option<Vec<u8>>,
    expect: u16,
}

fn case(method: &'static str, route: &'static str, uri: impl Into<String>, expect: u16) -> Case {
    Case {
        method,
        route,
        uri: uri.into(),
        who: Who::Admin,
        body: None,
        expect,
    }
}

impl Case {
    fn body(mut self, v: Value) -> Case {
        self.body = Some(v.to_string().into_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Case {
        self.body = Some(b.to_vec());
        self
    }
    fn by(mut self, who: Who) -> Case {
        self.who = who;
        self
    }
}

/// The document's JSON, and one validator per (route, method, status).
struct Contract {
    doc: Value,
    validators: BTreeMap<(String, String, String), jsonschema::Validator>,
}

impl Contract {
    fn new() -> Contract {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "OpenAPI 3.1 (JSON Schema 2020-12) expected"
        );
        let mut validators = BTreeMap::new();
        for (route, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                    continue;
                };
                for (status, response) in responses {
                    let schema = &response["content"]["application/json"]["schema"];
                    assert!(
                        schema.is_object(),
                        "{method} {route} {status}: no JSON schema declared"
                    );
                    // The response schema with the document's components beside it, so its
                    // `#/components/schemas/...` references resolve.
                    let mut root = schema.clone();
                    root["components"] = doc["components"].clone();
                    let v = jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft202012)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("{method} {route} {status}: {e}"));
                    validators.insert((route.clone(), method.to_uppercase(), status.clone()), v);
                }
            }
        }
        Contract { doc, validators }
    }

    /// Every (METHOD, route) of the document.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (route, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                    out.insert((method.to_uppercase(), route.clone()));
                }
            }
        }
        out
    }

    /// The statuses the document declares for an operation.
    fn declared(&self, method: &str, route: &str) -> BTreeSet<String> {
        self.validators
            .keys()
            .filter(|(r, m, _)| r == route && m == method)
            .map(|(_, _, s)| s.clone())
            .collect()
    }

    fn check(&self, c: &Case, status: StatusCode, body: &Value) {
        let what = format!("{} {} ({:?})", c.method, c.uri, c.who);
        assert_eq!(status.as_u16(), c.expect, "{what}: {body}");
        let key = (
            c.route.to_owned(),
            c.method.to_owned(),
            status.as_str().to_owned(),
        );
        let Some(v) = self.validators.get(&key) else {
            panic!("{what}: HTTP {status} is not declared in the OpenAPI document: {body}");
        };
        let errors: Vec<String> = v
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: HTTP {status} does not match its schema:\n  {}\nbody: {body}",
            errors.join("\n  ")
        );
    }
}

struct Env {
    app: Router,
    switch: Arc<Switch>,
    tokens: BTreeMap<&'static str, String>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Env {
    async fn call(&self, c: &Case) -> (StatusCode, Value) {
        let mut req = Request::builder().method(c.method).uri(&c.uri);
        let token = match c.who {
            Who::Nobody => None,
            Who::Admin => Some("admin"),
            Who::ReadOnly => Some("ro"),
            Who::WriteOnly => Some("wo"),
        };
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, &self.tokens[t]);
        }
        if let Some(b) = &c.body {
            req = req
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, b.len());
        }
        let req = req
            .body(Body::from(c.body.clone().unwrap_or_default()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{} {}: HTTP {status}, not JSON: {:?}",
                c.method,
                c.uri,
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, v)
    }

    /// Wait until `uri` answers `status` (the status cache follows the store).
    async fn wait_for(&self, uri: &str, status: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (s, b) = self.call(&case("GET", "", uri, status)).await;
            if s.as_u16() == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{uri} never answered {status}: {b}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn env() -> Env {
    env_with(None).await
}

/// [`env`], in Proxmox mode when `pve` is given.
async fn env_with(pve: Option<PveMode>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn ClusterStore> = Arc::new(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let switch = Arc::new(Switch {
        inner,
        down: AtomicBool::new(false),
    });
    let store: Arc<dyn ClusterStore> = switch.clone();
    let mut tokens = BTreeMap::new();
    for (id, privs) in [
        ("admin", &[Privilege::SysAudit, Privilege::SysModify][..]),
        ("ro", &[Privilege::SysAudit][..]),
        ("wo", &[Privilege::SysModify][..]),
    ] {
        let t = add_token(
            store.as_ref(),
            TokenId::new(id).unwrap(),
            privs.iter().copied().collect(),
            None,
            None,
        )
        .await
        .unwrap();
        tokens.insert(id, format!("Bearer {}", t.credential()));
    }
    let (cache, task) = StatusCache::spawn(
        store.clone(),
        CacheConfig {
            refresh: Duration::from_millis(200),
            debounce: Duration::from_millis(20),
            pve: pve.clone(),
            ..CacheConfig::default()
        },
    );
    Env {
        app: app(AppState {
            store,
            cache,
            pve,
            metrics_public: false,
        }),
        switch,
        tokens,
        task,
        _dir: dir,
    }
}

/// The cluster the cases address: W1 (aliased, consumed by LVM storage `vg` on `mp`) and W2
/// allow-listed; n1 with a fresh broadcast, an apply error and its multipath detail; n2 with a
/// stale broadcast (departed); n3 with a fresh one (online).
async fn seed(store: &dyn ClusterStore) {
    let now = unix_now();
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"defaults": {"polling-interval": 5},
                    "wwids": {W1: {"alias": "data", "no-path-retry": "queue"}, W2: {}}})
            .to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    store
        .write_doc(
            doc_names::STORAGE,
            &json!({"storages": [
                {"type": "multipath", "id": "mp", "nodes": ["n1", "n2", "n3"]},
                {"type": "lvm", "id": "vg", "vgname": "vg0", "base": format!("mp:{W1}")},
            ]})
            .to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    let node = |n: &str| NodeName::new(n).unwrap();
    let broadcast = |time: i64| {
        json!({"time": time, "maps": {
            W1: {"state": "optimal", "paths-active": 2, "paths-total": 2, "transport": "iscsi", "size": 1_073_741_824u64},
            W2: {"state": "degraded", "paths-active": 1, "paths-total": 2},
        }})
        .to_string()
    };
    store
        .put(kv_keys::HEALTH, &node("n1"), Some(&broadcast(now)))
        .await
        .unwrap();
    store
        .put(kv_keys::HEALTH, &node("n2"), Some(&broadcast(now - 3600)))
        .await
        .unwrap();
    store
        .put(kv_keys::HEALTH, &node("n3"), Some(&broadcast(now)))
        .await
        .unwrap();
    store
        .put(
            kv_keys::APPLY,
            &node("n1"),
            Some(&json!({"error": "cannot write conf.d", "time": now}).to_string()),
        )
        .await
        .unwrap();
    let detail = json!({"time": now, "errors": [], "maps": [{
        "name": "data", "wwid": W1, "sysfs": "dm-0", "size": 1_073_741_824u64,
        "state": "degraded", "paths-active": 1, "paths-total": 2, "transport": "iscsi",
        "path-groups": [{"group": 1, "state": "active", "pri": 50, "selector": "service-time 0",
            "marginal": false, "paths": [
                {"dev": "sdb", "dev-t": "8:16", "dm-st": "active", "chk-st": "ready", "usable": true, "marginal": false},
                {"dev": "sdc", "dm-st": "failed", "chk-st": "faulty", "usable": false, "marginal": false},
            ]}],
    }]});
    store
        .put(kv_keys::DETAIL, &node("n1"), Some(&detail.to_string()))
        .await
        .unwrap();
    // n1's next apply would rename a map nobody asked for: it waits; n3's changes nothing.
    let mut waiting = mpcluster_core::plan::ApplyPlan::new(
        now,
        vec![mpcluster_core::plan::Rename {
            wwid: mpcluster_core::Wwid::new(W2).unwrap(),
            from: "mpatha".into(),
            to: W2.into(),
            requested: false,
        }],
        vec![],
        vec![mpcluster_core::plan::FileChange {
            path: "/etc/multipath/conf.d/mpcluster.conf".into(),
            action: mpcluster_core::plan::FileAction::Write,
        }],
        vec![mpcluster_core::Wwid::new(W2).unwrap()],
        vec![],
    );
    waiting.set_waiting(true);
    store
        .put(kv_keys::PLAN, &node("n1"), Some(&waiting.encode()))
        .await
        .unwrap();
    let nothing = mpcluster_core::plan::ApplyPlan::new(now, vec![], vec![], vec![], vec![], vec![]);
    store
        .put(kv_keys::PLAN, &node("n3"), Some(&nothing.encode()))
        .await
        .unwrap();
}

const STATUS: &str = "/api2/json/cluster/multipath/status";
const SNAPSHOT: &str = "/api2/json/cluster/multipath/snapshot";
const NODES: &str = "/api2/json/cluster/nodes";
const NODE: &str = "/api2/json/cluster/nodes/{node}";
const DISKS: &str = "/api2/json/nodes/{node}/disks/multipath";
const CONFIG: &str = "/api2/json/cluster/multipath/config";
const WWIDS: &str = "/api2/json/cluster/multipath/wwids";
const WWID: &str = "/api2/json/cluster/multipath/wwids/{wwid}";
const OVERRIDES: &str = "/api2/json/cluster/multipath/overrides";
const STORAGES: &str = "/api2/json/storage";
const STORAGE: &str = "/api2/json/storage/{id}";
const PLAN: &str = "/api2/json/cluster/multipath/config/plan";
const ACCEPT: &str = "/api2/json/cluster/multipath/config/plan/{node}/accept";
const POLICY: &str = "/api2/json/cluster/multipath/config/accept";
const HEALTH: &str = "/health";
const PREFLIGHT: &str = "/api2/json/cluster/multipath/preflight";
const NOTIFY: &str = "/api2/json/cluster/multipath/notify";
const NOTIFY_ONE: &str = "/api2/json/cluster/multipath/notify/{id}";
const NOTIFY_TEST: &str = "/api2/json/cluster/multipath/notify/{id}/test";
const EVENTS: &str = "/api2/json/cluster/multipath/events";

/// The cases of each route that need its own data, in the order they run (writes change the
/// seeded cluster as they go).
fn specific_cases() -> Vec<Case> {
    let stale = ConfigDigest::of("stale").to_string();
    let disks = |n: &str| format!("/api2/json/nodes/{n}/disks/multipath");
    let wwid = |w: &str| format!("{WWIDS}/{w}");
    let storage = |s: &str| format!("{STORAGES}/{s}");
    let node = |n: &str| format!("{NODES}/{n}");
    let accept = |n: &str| format!("{PLAN}/{n}/accept");
    vec![
        case("GET", HEALTH, HEALTH, 200).by(Who::Nobody),
        case("GET", STATUS, STATUS, 200),
        case("GET", SNAPSHOT, SNAPSHOT, 200),
        case("POST", PREFLIGHT, PREFLIGHT, 200)
            .body(json!({"down": [{"node": "n1", "adapter": "host3"}], "min-paths": 1})),
        case("POST", PREFLIGHT, PREFLIGHT, 200)
            .body(json!({"down": [{"target": "10.0.0.1:3260"}]}))
            .by(Who::ReadOnly),
        case("POST", PREFLIGHT, PREFLIGHT, 400)
            .body(json!({"down": [{"target": "x", "node": "n1"}]})),
        case("POST", PREFLIGHT, PREFLIGHT, 400).body(json!({"down": [], "bogus": 1})),
        case("GET", NODES, NODES, 200),
        case("GET", DISKS, disks("n1"), 200),
        case("GET", DISKS, disks("bad%20name"), 400),
        case("GET", DISKS, disks("n9"), 404),
        // the defaults knobs
        case("GET", CONFIG, CONFIG, 200),
        case("PUT", CONFIG, CONFIG, 200)
            .body(json!({"fast-io-fail-tmo": 5, "delete": "polling-interval"})),
        case("PUT", CONFIG, CONFIG, 400).body(json!({"polling-interval": 0, "bogus": 1})),
        case("PUT", CONFIG, CONFIG, 400).raw(b"{"),
        case("PUT", CONFIG, CONFIG, 400).body(json!({"digest": 5, "delete": {"a": 1}})),
        case("PUT", CONFIG, CONFIG, 409).body(json!({"polling-interval": 6, "digest": stale})),
        // apply plans and their acceptance
        case("GET", PLAN, PLAN, 200),
        case("GET", PLAN, format!("{PLAN}?node=n1"), 200),
        case("GET", PLAN, format!("{PLAN}?node=n9"), 200),
        case("GET", PLAN, format!("{PLAN}?node=bad%20name"), 400),
        case("POST", ACCEPT, accept("n1"), 200),
        case("POST", ACCEPT, accept("n3"), 400),
        case("POST", ACCEPT, accept("n9"), 404),
        case("POST", ACCEPT, accept("bad%20name"), 400),
        case("PUT", POLICY, POLICY, 200).body(json!({"always": true})),
        case("PUT", POLICY, POLICY, 200).body(json!({"always": "0"})),
        case("PUT", POLICY, POLICY, 400).body(json!({"always": "maybe"})),
        case("PUT", POLICY, POLICY, 400).body(json!({"always": true, "x": 1})),
        // the allow-list
        case("GET", WWIDS, WWIDS, 200),
        case("POST", WWIDS, WWIDS, 200)
            .body(json!({"wwid": W3, "alias": "three", "rr-min-io-rq": 2})),
        case("POST", WWIDS, WWIDS, 400).body(json!({"wwid": "bad wwid", "alias": "x y"})),
        case("POST", WWIDS, WWIDS, 400).body(json!({"alias": "x"})),
        case("POST", WWIDS, WWIDS, 409).body(json!({"wwid": W4, "digest": stale})),
        case("GET", WWID, wwid(W1), 200),
        case("GET", WWID, wwid(W3), 200),
        case("GET", WWID, wwid("bad%20wwid"), 400),
        case("GET", WWID, wwid(W4), 404),
        case("PUT", WWID, wwid(W3), 200).body(json!({"alias": "tres", "delete": ["rr-min-io-rq"]})),
        case("PUT", WWID, wwid(W3), 400).body(json!({"alias": "x y", "failback": "never"})),
        case("PUT", WWID, wwid(W4), 404).body(json!({"alias": "four"})),
        case("PUT", WWID, wwid(W3), 409).body(json!({"alias": "b", "digest": stale})),
        case("DELETE", WWID, format!("{}?digest={stale}", wwid(W3)), 409),
        case("DELETE", WWID, wwid(W4), 404),
        case("DELETE", WWID, wwid(W3), 400).body(json!({"x": 1})),
        case("DELETE", WWID, wwid(W3), 200),
        // the overrides
        case("GET", OVERRIDES, OVERRIDES, 200),
        case("PUT", OVERRIDES, OVERRIDES, 200).body(json!({"content": GOOD_OVERRIDES})),
        case("GET", OVERRIDES, OVERRIDES, 200),
        case("PUT", OVERRIDES, OVERRIDES, 400).body(json!({"content": 5, "extra": 1})),
        case("PUT", OVERRIDES, OVERRIDES, 400)
            .body(json!({"content": "defaults {\n\tpolling_interval 1\n}\n"})),
        case("PUT", OVERRIDES, OVERRIDES, 409).body(json!({"content": "", "digest": stale})),
        // the storages
        case("GET", STORAGES, STORAGES, 200),
        case("GET", STORAGES, format!("{STORAGES}?type=lvm"), 200),
        case("POST", STORAGES, STORAGES, 200)
            .body(json!({"type": "multipath", "id": "mp2", "nodes": "n1,n3"})),
        case("POST", STORAGES, STORAGES, 400)
            .body(json!({"type": "lvm", "id": "bad id", "vgname": 5})),
        case("POST", STORAGES, STORAGES, 409)
            .body(json!({"type": "multipath", "id": "mp3", "digest": stale})),
        case("GET", STORAGE, storage("mp"), 200),
        case("GET", STORAGE, storage("vg"), 200),
        case("GET", STORAGE, storage("bad%20id"), 400),
        case("GET", STORAGE, storage("nope"), 404),
        case("PUT", STORAGE, storage("mp2"), 200).body(json!({"disable": 1, "delete": "nodes"})),
        case("PUT", STORAGE, storage("mp2"), 400).body(json!({"bogus": 1, "nodes": []})),
        case("PUT", STORAGE, storage("nope"), 404).body(json!({"disable": true})),
        case("PUT", STORAGE, storage("mp2"), 409).body(json!({"disable": false, "digest": stale})),
        case("DELETE", STORAGE, storage("mp"), 400),
        case("DELETE", STORAGE, storage("nope"), 404),
        case(
            "DELETE",
            STORAGE,
            format!("{}?digest={stale}", storage("mp2")),
            409,
        ),
        case("DELETE", STORAGE, storage("mp2"), 200),
        // forgetting nodes
        case("DELETE", NODE, node("n3"), 409),
        case("DELETE", NODE, node("bad%20name"), 400),
        case("DELETE", NODE, format!("{}?force=maybe", node("n3")), 400),
        case("DELETE", NODE, node("n9"), 404),
        case("DELETE", NODE, node("n2"), 200),
        case("DELETE", NODE, format!("{}?force=1", node("n3")), 200),
        // notification targets
        case("GET", NOTIFY, NOTIFY, 200),
        case("POST", NOTIFY, NOTIFY, 200)
            .body(json!({"type": "exec", "id": "page", "command": ["/bin/true"]})),
        case("POST", NOTIFY, NOTIFY, 200).body(json!({"type": "webhook", "id": "hook",
            "url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef"})),
        case("POST", NOTIFY, NOTIFY, 200).body(json!({"type": "smtp", "id": "mail",
            "server": "127.0.0.1", "port": 9, "security": "none", "from": "a@example.org",
            "to": "b@example.org, c@example.org", "username": "u", "password-file": "/nonexistent"})),
        case("POST", NOTIFY, NOTIFY, 400)
            .body(json!({"type": "smtp", "id": "Bad", "port": 0, "bogus": 1})),
        case("POST", NOTIFY, NOTIFY, 400)
            .body(json!({"type": "exec", "id": "page", "command": ["/bin/true"]})),
        case("POST", NOTIFY, NOTIFY, 409).body(json!({"type": "exec", "id": "p2",
            "command": ["/bin/true"], "digest": stale})),
        case("GET", NOTIFY, NOTIFY, 200),
        case("POST", NOTIFY_TEST, format!("{NOTIFY}/page/test"), 200),
        case("POST", NOTIFY_TEST, format!("{NOTIFY}/hook/test"), 200),
        case("POST", NOTIFY_TEST, format!("{NOTIFY}/nope/test"), 404),
        case("POST", NOTIFY_TEST, format!("{NOTIFY}/Bad%21/test"), 400),
        case("DELETE", NOTIFY_ONE, format!("{NOTIFY}/nope"), 404),
        case("DELETE", NOTIFY_ONE, format!("{NOTIFY}/Bad%21"), 400),
        case("DELETE", NOTIFY_ONE, format!("{NOTIFY}/page?digest={stale}"), 409),
        case("DELETE", NOTIFY_ONE, format!("{NOTIFY}/page"), 200),
        // the event history (the audit trail of the writes above)
        case("GET", EVENTS, EVENTS, 200),
        case(
            "GET",
            EVENTS,
            format!("{EVENTS}?kind=config&since=1h&limit=5"),
            200,
        ),
        case(
            "GET",
            EVENTS,
            format!("{EVENTS}?after=3&wwid={W1}&node=n1"),
            200,
        ),
        case(
            "GET",
            EVENTS,
            format!("{EVENTS}?since=yesterday&kind=all&limit=0"),
            400,
        ),
    ]
}

/// A request to a route that reaches its handler with existing data (for the cases every
/// route has: 401, 403, 413, 503).
fn generic(method: &'static str, route: &'static str) -> Case {
    let uri = route
        .replace("{node}", "n1")
        .replace("{wwid}", W1)
        .replace("{id}", "vg");
    let c = case(method, route, uri, 0);
    match (method, route) {
        ("PUT", CONFIG) => c.body(json!({"polling-interval": 7})),
        ("POST", WWIDS) => c.body(json!({"wwid": W4})),
        ("PUT", WWID) => c.body(json!({"alias": "renamed"})),
        ("PUT", OVERRIDES) => c.body(json!({"content": ""})),
        ("POST", STORAGES) => c.body(json!({"type": "multipath", "id": "mp4"})),
        ("PUT", STORAGE) => c.body(json!({"disable": true})),
        ("PUT", POLICY) => c.body(json!({"always": false})),
        ("POST", PREFLIGHT) => c.body(json!({"down": [{"target": "10.0.0.1"}]})),
        ("POST", NOTIFY) => c.body(json!({"type": "exec", "id": "gen", "command": ["/bin/true"]})),
        _ => c,
    }
}

fn route_of(doc_route: &str) -> &'static str {
    [
        STATUS,
        SNAPSHOT,
        NODES,
        NODE,
        DISKS,
        CONFIG,
        PLAN,
        ACCEPT,
        POLICY,
        WWIDS,
        WWID,
        OVERRIDES,
        STORAGES,
        STORAGE,
        HEALTH,
        PREFLIGHT,
        EVENTS,
        NOTIFY,
        NOTIFY_ONE,
        NOTIFY_TEST,
    ]
    .into_iter()
    .find(|r| *r == doc_route)
    .unwrap_or_else(|| panic!("{doc_route}: a route of the document without cases here: add them"))
}

fn method_of(m: &str) -> &'static str {
    ["GET", "PUT", "POST", "DELETE"]
        .into_iter()
        .find(|x| *x == m)
        .unwrap_or_else(|| panic!("{m}: no cases for this method"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_as_its_schema_says() {
    let contract = Contract::new();
    let e = env().await;
    seed(e.switch.inner.as_ref()).await;
    e.wait_for(STATUS, 200).await;

    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut run = |c: Case, status: StatusCode, body: Value| {
        contract.check(&c, status, &body);
        seen.insert((
            c.method.to_owned(),
            c.route.to_owned(),
            status.as_str().to_owned(),
        ));
    };

    for c in specific_cases() {
        let (s, b) = e.call(&c).await;
        run(c, s, b);
    }

    let operations: Vec<(&'static str, &'static str)> = contract
        .operations()
        .iter()
        .map(|(m, r)| (method_of(m), route_of(r)))
        .collect();
    let authenticated: Vec<_> = operations.iter().filter(|(_, r)| *r != HEALTH).collect();

    // Without a token, and without the privilege.
    for (m, r) in &authenticated {
        let c = generic(m, r).by(Who::Nobody);
        let (s, b) = e
            .call(&Case {
                expect: 401,
                ..c.clone()
            })
            .await;
        run(
            Case {
                expect: 401,
                ..c.clone()
            },
            s,
            b,
        );
        // The pre-flight changes nothing: a read-only token may ask.
        let who = if *m == "GET" || *r == PREFLIGHT {
            Who::WriteOnly
        } else {
            Who::ReadOnly
        };
        let c = Case {
            expect: 403,
            ..c.by(who)
        };
        let (s, b) = e.call(&c).await;
        run(c, s, b);
    }

    // Bodies over the limit.
    for (m, r) in authenticated.iter().filter(|(m, _)| *m != "GET") {
        let c = Case {
            expect: 413,
            ..generic(m, r).raw(&vec![b' '; BODY_LIMIT + 1])
        };
        let (s, b) = e.call(&c).await;
        run(c, s, b);
    }

    // The store unreachable: 503 everywhere (the status routes once the cache noticed; the
    // token checks use the tokens read last).
    e.switch.down.store(true, Ordering::SeqCst);
    e.wait_for(STATUS, 503).await;
    for (m, r) in &authenticated {
        let c = Case {
            expect: 503,
            ..generic(m, r)
        };
        let (s, b) = e.call(&c).await;
        run(c, s, b);
    }
    let health = case("GET", HEALTH, HEALTH, 200).by(Who::Nobody);
    let (s, b) = e.call(&health).await;
    assert_eq!(b["store"], "unavailable", "{b}");
    run(health, s, b);
    e.switch.down.store(false, Ordering::SeqCst);
    e.wait_for(STATUS, 200).await;

    // A stored document that cannot be read: 500 on the routes that read it.
    for (doc, route) in [
        (doc_names::CONFIG, CONFIG),
        (doc_names::OVERRIDES, OVERRIDES),
        (doc_names::STORAGE, STORAGES),
        (doc_names::ACCEPT, PLAN),
        (mpcluster_config::events::EVENTS_DOC, EVENTS),
    ] {
        let good = e.switch.inner.read_doc(doc).await.unwrap();
        e.switch
            .inner
            .write_doc(doc, "{not json", Expect::Any)
            .await
            .unwrap();
        let c = case("GET", route, route, 500);
        let (s, b) = e.call(&c).await;
        run(c, s, b);
        match good {
            Some((text, _)) => {
                e.switch
                    .inner
                    .write_doc(doc, &text, Expect::Any)
                    .await
                    .unwrap();
            }
            None => {
                e.switch.inner.delete_doc(doc, Expect::Any).await.unwrap();
            }
        }
    }

    // Unreadable notification targets: 500 on every notify route.
    e.switch
        .inner
        .write_doc(doc_names::NOTIFY_TARGETS, "{not json", Expect::Any)
        .await
        .unwrap();
    for c in [
        case("GET", NOTIFY, NOTIFY, 500),
        case("POST", NOTIFY, NOTIFY, 500)
            .body(json!({"type": "exec", "id": "x", "command": ["/bin/true"]})),
        case("DELETE", NOTIFY_ONE, format!("{NOTIFY}/hook"), 500),
        case("POST", NOTIFY_TEST, format!("{NOTIFY}/hook/test"), 500),
    ] {
        let (s, b) = e.call(&c).await;
        run(c, s, b);
    }

    // The tokens cannot be checked: 503 everywhere, and `/health` says why.
    e.switch
        .inner
        .write_doc(doc_names::TOKENS, "{not json", Expect::Any)
        .await
        .unwrap();
    // (After a store failure the last good tokens are used for a moment.)
    e.wait_for(CONFIG, 503).await;
    for (m, r) in &authenticated {
        let c = Case {
            expect: 503,
            ..generic(m, r)
        };
        let (s, b) = e.call(&c).await;
        run(c, s, b);
    }
    let health = case("GET", HEALTH, HEALTH, 200).by(Who::Nobody);
    let (s, b) = e.call(&health).await;
    assert_eq!(b["tokens"], "unreadable", "{b}");
    run(health, s, b);

    // Proxmox mode: the storages are storage.cfg's (with their lines), and every storage
    // write is refused (403) with the message pointing to pvesm.
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("storage.cfg"),
        format!(
            "iscsi: san\n\tportal 192.0.2.1\n\ttarget iqn.2003-01.org.example:san\n\n\
             lvm: data\n\tvgname vg_data\n\tbase san:0.0.1.scsi-{W1}\n\tshared 1\n"
        ),
    )
    .unwrap();
    let p = env_with(Some(PveMode::new(root.path()))).await;
    p.wait_for(STATUS, 200).await;
    let storage = |s: &str| format!("{STORAGES}/{s}");
    for c in [
        case("GET", STORAGES, STORAGES, 200),
        case("GET", STORAGE, storage("data"), 200),
        case("POST", STORAGES, STORAGES, 403).body(json!({"type": "multipath", "id": "x"})),
        case("PUT", STORAGE, storage("data"), 403).body(json!({"disable": true})),
        case("DELETE", STORAGE, storage("data"), 403),
    ] {
        let (s, b) = p.call(&c).await;
        if c.method == "GET" && c.route == STORAGES {
            assert_eq!(b["data"]["source"]["kind"], "pve", "{b}");
            assert_eq!(b["data"]["origins"]["data"]["line"], 5, "{b}");
            assert_eq!(b["data"]["origins"]["san"]["iscsi"], "san", "{b}");
        }
        if s == StatusCode::FORBIDDEN {
            let m = b["message"].as_str().unwrap();
            assert!(m.contains("pvesm") && m.contains("storage.cfg"), "{m}");
        }
        run(c, s, b);
    }

    // Every status the document declares was produced (and every one produced was declared,
    // checked above).
    let mut missing = Vec::new();
    for (m, r) in &operations {
        for status in contract.declared(m, r) {
            if !seen.contains(&((*m).to_owned(), (*r).to_owned(), status.clone())) {
                missing.push(format!("{m} {r} {status}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "declared but never produced by a case:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_validators_bite() {
    let contract = Contract::new();
    let v = |route: &str, method: &str, status: &str| {
        &contract.validators[&(route.to_owned(), method.to_owned(), status.to_owned())]
    };
    let row = |state: &str, active: Value| {
        json!({"data": {"luns": [{"wwid": W1, "cluster-state": state,
            "nodes": {"n1": {"state": "optimal", "paths-active": active, "paths-total": 2}}}],
            "nodes": {}}})
    };
    let status = v(STATUS, "GET", "200");
    assert!(status.is_valid(&row("optimal", json!(2))));
    assert!(status.is_valid(&row("optimal", Value::Null)));
    assert!(!status.is_valid(&row("fine", json!(2))));
    assert!(!status.is_valid(&row("optimal", json!("2"))));
    let written = v(CONFIG, "PUT", "200");
    assert!(written.is_valid(&json!({"data": {"digest": ConfigDigest::of("").to_string()}})));
    assert!(!written.is_valid(&json!({"data": {"digest": "abc"}})));
    assert!(!written.is_valid(&json!({"digest": ConfigDigest::of("").to_string()})));
    let error = v(CONFIG, "PUT", "400");
    assert!(error.is_valid(&json!({"data": null, "message": "m", "errors": {"a": "b"}})));
    assert!(!error.is_valid(&json!({"data": null, "message": "m", "errors": {"a": 1}})));
    assert!(!error.is_valid(&json!({"message": "m"})));
}

#[test]
fn operation_ids_are_unique() {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            }
        }
    }
    assert!(ids.len() >= 20, "{ids:?}");
}
