//! The backend conformance suite: the same cases against every [`ClusterStore`] backend.
//!
//! A [`Backend`] hands out [`Namespace`]s: fresh, empty data sets from which any number of
//! store objects can be opened (two objects on one namespace = two processes sharing the
//! embedded directory, or two agents on one etcd cluster). [`run_all`] runs every case
//! concurrently, each in its own namespace, and reports every failing case by name.
//!
//! Behaviour that differs by design is checked per [`ClusterStore::is_standalone`] (membership
//! on a standalone store) and per [`Namespace::external`]: where the membership is not the
//! store's (the pve store, whose membership is corosync's `.members`), the harness plays the
//! cluster, making nodes members, online or offline ([`ExternalMembership`]); the cases then
//! go through [`go_online`] and [`Live`], which do the same thing on every backend. Cases
//! compare memberships against the namespace's starting membership (a real `.members` always
//! lists the local node).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcluster_store::{
    ClusterStore, ConfigDigest, Expect, Member, MembershipHandle, NodeName, StoreError, StoreEvent,
    StoreSubscription, names,
};

/// A boxed, sendable future.
pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Membership decided outside the store (corosync for the pve store): the harness says who
/// is a member and who is online, as the cluster would.
pub trait ExternalMembership: Send + Sync {
    /// List `node` as a member, online or offline (added to the cluster, booted, shut down).
    fn set(&self, node: &NodeName, online: bool);
    /// Remove `node` from the membership (`pvecm delnode`).
    fn remove(&self, node: &NodeName);
}

/// Opens store objects on one fresh data set.
#[derive(Clone)]
pub struct Namespace {
    open: Arc<dyn Fn() -> BoxFut<Arc<dyn ClusterStore>> + Send + Sync>,
    external: Option<Arc<dyn ExternalMembership>>,
}

impl Namespace {
    /// A namespace whose stores `open` creates.
    pub fn new(open: impl Fn() -> BoxFut<Arc<dyn ClusterStore>> + Send + Sync + 'static) -> Self {
        Namespace {
            open: Arc::new(open),
            external: None,
        }
    }

    /// The same, with membership decided by `membership` rather than by `join`.
    pub fn with_external_membership(mut self, membership: Arc<dyn ExternalMembership>) -> Self {
        self.external = Some(membership);
        self
    }

    /// The external membership, if the store's membership is not its own.
    pub fn external(&self) -> Option<&Arc<dyn ExternalMembership>> {
        self.external.as_ref()
    }

    /// A new store object on this namespace's data.
    pub async fn open(&self) -> Arc<dyn ClusterStore> {
        (self.open)().await
    }
}

/// A node made an online member by [`go_online`].
pub struct Live {
    node: NodeName,
    handle: MembershipHandle,
    external: Option<Arc<dyn ExternalMembership>>,
}

/// Make `n` an online member however the backend decides membership: the cluster lists it
/// online (external membership), then it joins through `store` (whose handle keeps it online
/// where the store decides).
pub async fn go_online(
    ns: &Namespace,
    store: &dyn ClusterStore,
    n: &NodeName,
    ttl: Duration,
) -> Live {
    if let Some(ext) = ns.external() {
        ext.set(n, true);
    }
    let handle = store.join(n, ttl).await.unwrap();
    assert_eq!(handle.node(), n);
    Live {
        node: n.clone(),
        handle,
        external: ns.external().cloned(),
    }
}

impl Live {
    /// Whether the membership handle is alive.
    pub fn is_alive(&self) -> bool {
        self.handle.is_alive()
    }

    /// Leave cleanly: offline at once, still known.
    pub async fn leave(self) {
        self.handle.leave().await.unwrap();
        if let Some(ext) = &self.external {
            ext.set(&self.node, false);
        }
    }

    /// Crash: nothing keeps the node alive any more. A store-kept membership expires by its
    /// TTL; an external one notices after `ttl` (corosync's token timeout, played here).
    pub fn crash(self, ttl: Duration) {
        drop(self.handle);
        if let Some(ext) = self.external {
            let node = self.node;
            tokio::spawn(async move {
                tokio::time::sleep(ttl).await;
                ext.set(&node, false);
            });
        }
    }
}

/// A backend under test.
pub trait Backend: Send + Sync {
    /// A fresh, empty namespace for case `case`.
    fn namespace(&self, case: &str) -> Namespace;
}

type Case = fn(Namespace) -> BoxFut<()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), (|ns| Box::pin($name(ns))) as Case)),*]
    };
}

/// Every case, by name.
pub const CASES: &[(&str, Case)] = cases![
    describe_names_backend,
    kv_put_get_delete,
    kv_size_limits_write_nothing,
    names_are_validated,
    kv_value_persists_after_member_expires,
    members_join_leave,
    members_keepalive_then_ttl_expiry_after_drop,
    doc_create_read_cas,
    doc_conflict_leaves_document_unchanged,
    doc_concurrent_writers_exactly_one_wins,
    watch_delivers_events,
    second_instance_sees_writes_and_events,
    forget_node_removes_values_and_membership,
    forget_unknown_node_is_false,
];

/// Run every case concurrently against `backend`; panics listing the failed cases.
pub async fn run_all(backend_name: &str, backend: &dyn Backend) {
    let started = Instant::now();
    let mut running = Vec::new();
    for (name, case) in CASES {
        let ns = backend.namespace(name);
        let t0 = Instant::now();
        let handle = tokio::spawn(case(ns));
        running.push((name, t0, handle));
    }
    let mut failures = Vec::new();
    for (name, t0, handle) in running {
        match handle.await {
            Ok(()) => eprintln!(
                "[{backend_name}] {name}: ok ({:.2}s)",
                t0.elapsed().as_secs_f64()
            ),
            Err(e) => {
                let msg = match e.try_into_panic() {
                    Ok(p) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into()),
                    Err(e) => e.to_string(),
                };
                eprintln!("[{backend_name}] {name}: FAILED: {msg}");
                failures.push(format!("{name}: {msg}"));
            }
        }
    }
    eprintln!(
        "[{backend_name}] conformance: {} cases in {:.2}s",
        CASES.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "[{backend_name}] conformance failures:\n{}",
        failures.join("\n")
    );
}

// ---- helpers ----

/// A node name.
pub fn node(n: &str) -> NodeName {
    NodeName::new(n).unwrap()
}

/// Poll `check` every 50 ms until it returns true or `limit` passes; returns the time taken.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait for an event matching `want`, skipping others (including `Resync`).
pub async fn expect_event(sub: &mut StoreSubscription, limit: Duration, want: &StoreEvent) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, sub.recv()).await {
            Ok(Some(ev)) if &ev == want => return,
            Ok(Some(ev)) => seen.push(ev),
            Ok(None) => panic!("event stream closed while waiting for {want:?}; saw {seen:?}"),
            Err(_) => panic!("no {want:?} within {limit:?}; saw {seen:?}"),
        }
    }
}

/// Wait until every event in `want` was seen, in any order, skipping others.
pub async fn expect_events(sub: &mut StoreSubscription, limit: Duration, want: &[StoreEvent]) {
    let start = Instant::now();
    let mut missing: Vec<&StoreEvent> = want.iter().collect();
    let mut seen = Vec::new();
    while !missing.is_empty() {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, sub.recv()).await {
            Ok(Some(ev)) => {
                missing.retain(|w| **w != ev);
                seen.push(ev);
            }
            Ok(None) => panic!("event stream closed while waiting for {missing:?}; saw {seen:?}"),
            Err(_) => panic!("no {missing:?} within {limit:?}; saw {seen:?}"),
        }
    }
}

async fn online(store: &dyn ClusterStore, n: &NodeName) -> Option<bool> {
    store.members().await.unwrap().get(n).map(|m| m.online)
}

async fn members(store: &dyn ClusterStore) -> BTreeMap<NodeName, Member> {
    store.members().await.unwrap()
}

fn kv_event(key: &str, n: &NodeName) -> StoreEvent {
    StoreEvent::NodeKv {
        key: key.into(),
        node: n.clone(),
    }
}

fn doc_event(name: &str) -> StoreEvent {
    StoreEvent::Document { name: name.into() }
}

const EVENT_WAIT: Duration = Duration::from_secs(5);

// ---- cases ----

async fn describe_names_backend(ns: Namespace) {
    let store = ns.open().await;
    let d = store.describe();
    assert!(
        d.starts_with("embedded store ")
            || d.starts_with("pve store ")
            || d.starts_with("etcd store "),
        "{d}"
    );
}

async fn kv_put_get_delete(ns: Namespace) {
    let store = ns.open().await;
    let (a, b) = (node("node-a"), node("node-b.example.com"));
    assert!(store.get_all("multipath").await.unwrap().is_empty());
    assert_eq!(store.get("multipath", &a).await.unwrap(), None);

    store.put("multipath", &a, Some("{\"a\":1}")).await.unwrap();
    store.put("multipath", &b, Some("b-1")).await.unwrap();
    store
        .put("multipath-apply", &a, Some("apply-a"))
        .await
        .unwrap();
    let all = store.get_all("multipath").await.unwrap();
    assert_eq!(
        all,
        BTreeMap::from([
            (a.clone(), "{\"a\":1}".to_owned()),
            (b.clone(), "b-1".to_owned())
        ])
    );
    assert_eq!(
        store.get_all("multipath-apply").await.unwrap(),
        BTreeMap::from([(a.clone(), "apply-a".to_owned())])
    );
    assert_eq!(
        store.get("multipath", &b).await.unwrap().as_deref(),
        Some("b-1")
    );

    // Overwrite, idempotent rewrite, unicode and newlines byte-exact.
    let v = "ünïcode\nline 2\n\ttab \"quotes\" {}";
    store.put("multipath", &b, Some(v)).await.unwrap();
    store.put("multipath", &b, Some(v)).await.unwrap();
    assert_eq!(
        store.get("multipath", &b).await.unwrap().as_deref(),
        Some(v)
    );

    // Delete with None, and with "" (pmxcfs semantics); deleting twice is fine.
    store.put("multipath", &a, None).await.unwrap();
    store.put("multipath", &a, None).await.unwrap();
    store.put("multipath", &b, Some("")).await.unwrap();
    assert!(store.get_all("multipath").await.unwrap().is_empty());
    // Other keys untouched.
    assert_eq!(store.get_all("multipath-apply").await.unwrap().len(), 1);
    // Unknown keys are allowed.
    store.put("custom-key-1", &a, Some("x")).await.unwrap();
    assert_eq!(
        store.get("custom-key-1", &a).await.unwrap().as_deref(),
        Some("x")
    );
}

async fn kv_size_limits_write_nothing(ns: Namespace) {
    let store = ns.open().await;
    let a = node("a");
    let small = names::KV_SMALL_MAX_LEN;
    for key in [
        "multipath",
        "multipath-apply",
        "multipath-collect",
        "not-listed",
    ] {
        store.put(key, &a, Some("before")).await.unwrap();
        store.put(key, &a, Some(&"x".repeat(small))).await.unwrap();
        store.put(key, &a, Some("before")).await.unwrap();
        let err = store
            .put(key, &a, Some(&"x".repeat(32 * 1024)))
            .await
            .unwrap_err();
        match err {
            StoreError::ValueTooLarge { key: k, len, limit } => {
                assert_eq!((k.as_str(), len, limit), (key, 32 * 1024, small));
            }
            other => panic!("{key}: {other:?}"),
        }
        assert_eq!(
            store.get(key, &a).await.unwrap().as_deref(),
            Some("before"),
            "{key}"
        );
    }
    let detail = "multipath-detail";
    store
        .put(detail, &a, Some(&"d".repeat(names::KV_DETAIL_MAX_LEN)))
        .await
        .unwrap();
    let err = store
        .put(detail, &a, Some(&"e".repeat(names::KV_DETAIL_MAX_LEN + 1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ValueTooLarge { limit, .. } if limit == 1 << 20),
        "{err:?}"
    );
    let kept = store.get(detail, &a).await.unwrap().unwrap();
    assert!(kept.len() == names::KV_DETAIL_MAX_LEN && kept.starts_with('d'));
    // Several nodes with large detail values read back in one get_all.
    for i in 0..3 {
        store
            .put(
                detail,
                &node(&format!("n{i}")),
                Some(&format!("{i}").repeat(900_000)),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.get_all(detail).await.unwrap().len(), 4);

    // Documents: 1 MiB limit.
    let err = store
        .write_doc("big", &"x".repeat(names::DOC_MAX_LEN + 1), Expect::Any)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DocumentTooLarge { .. }),
        "{err:?}"
    );
    assert!(store.read_doc("big").await.unwrap().is_none());
    store
        .write_doc("big", &"x".repeat(names::DOC_MAX_LEN), Expect::Absent)
        .await
        .unwrap();
}

async fn names_are_validated(ns: Namespace) {
    let store = ns.open().await;
    let a = node("a");
    for bad in ["", "Multipath", "a/b", "a.b", "..", "x_y", &"k".repeat(65)] {
        let e = store.put(bad, &a, Some("v")).await.unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::InvalidName {
                    kind: "node KV key",
                    ..
                }
            ),
            "{bad:?}: {e:?}"
        );
        let e = store.get_all(bad).await.unwrap_err();
        assert!(
            matches!(e, StoreError::InvalidName { .. }),
            "{bad:?}: {e:?}"
        );
        let e = store.write_doc(bad, "x", Expect::Any).await.unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::InvalidName {
                    kind: "document name",
                    ..
                }
            ),
            "{bad:?}: {e:?}"
        );
        let e = store.read_doc(bad).await.unwrap_err();
        assert!(
            matches!(e, StoreError::InvalidName { .. }),
            "{bad:?}: {e:?}"
        );
        let e = store.delete_doc(bad, Expect::Any).await.unwrap_err();
        assert!(
            matches!(e, StoreError::InvalidName { .. }),
            "{bad:?}: {e:?}"
        );
    }
    store.put(&"k".repeat(64), &a, Some("v")).await.unwrap();
    store
        .write_doc(&"d".repeat(64), "v", Expect::Any)
        .await
        .unwrap();
}

async fn kv_value_persists_after_member_expires(ns: Namespace) {
    let store = ns.open().await;
    let a = node("gone-node");
    let live = go_online(&ns, &*store, &a, Duration::from_secs(2)).await;
    store
        .put("multipath", &a, Some("last words"))
        .await
        .unwrap();
    live.crash(Duration::from_secs(2)); // no leave
    if !store.is_standalone() {
        eventually(
            Duration::from_secs(8),
            "the dropped member to expire",
            || {
                let store = store.clone();
                let a = a.clone();
                async move { online(&*store, &a).await == Some(false) }
            },
        )
        .await;
    } else {
        assert!(store.members().await.unwrap().is_empty());
    }
    assert_eq!(
        store
            .get_all("multipath")
            .await
            .unwrap()
            .get(&a)
            .map(String::as_str),
        Some("last words")
    );
}

async fn members_join_leave(ns: Namespace) {
    let store = ns.open().await;
    let (a, b) = (node("pve1"), node("pve2"));
    if store.is_standalone() {
        let h = store.join(&a, Duration::from_secs(2)).await.unwrap();
        assert!(h.is_alive());
        assert_eq!(h.node(), &a);
        assert!(store.members().await.unwrap().is_empty());
        h.leave().await.unwrap();
        assert!(store.members().await.unwrap().is_empty());
        return;
    }
    let base = members(&*store).await;
    assert!(!base.contains_key(&a) && !base.contains_key(&b), "{base:?}");
    let other = ns.open().await; // a second agent
    let la = go_online(&ns, &*store, &a, Duration::from_secs(5)).await;
    let lb = go_online(&ns, &*other, &b, Duration::from_secs(5)).await;
    let m = members(&*store).await;
    assert_eq!(m.len(), base.len() + 2, "{m:?}");
    assert!(m[&a].online && m[&b].online, "{m:?}");
    la.leave().await;
    // Offline at once, still known.
    let m = members(&*store).await;
    assert!(!m[&a].online, "{m:?}");
    assert!(m[&b].online, "{m:?}");
    // Re-join after leave works.
    let la = go_online(&ns, &*store, &a, Duration::from_secs(5)).await;
    assert_eq!(online(&*store, &a).await, Some(true));
    la.leave().await;
    lb.leave().await;
    let m = members(&*other).await;
    assert!(!m[&a].online && !m[&b].online, "{m:?}");
    assert_eq!(m.len(), base.len() + 2, "{m:?}");
}

async fn members_keepalive_then_ttl_expiry_after_drop(ns: Namespace) {
    let store = ns.open().await;
    let a = node("crashy");
    let ttl = Duration::from_secs(2);
    let h = go_online(&ns, &*store, &a, ttl).await;
    if store.is_standalone() {
        h.crash(ttl);
        assert!(store.members().await.unwrap().is_empty());
        return;
    }
    // Kept alive well past the TTL.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(online(&*store, &a).await, Some(true));
    assert!(h.is_alive());
    h.crash(ttl);
    // Dropping does not revoke: still online right after.
    assert_eq!(online(&*store, &a).await, Some(true));
    let took = eventually(Duration::from_secs(8), "the TTL to expire", || {
        let store = store.clone();
        let a = a.clone();
        async move { online(&*store, &a).await == Some(false) }
    })
    .await;
    assert!(
        took >= Duration::from_millis(300),
        "went offline too early: {took:?}"
    );
}

async fn doc_create_read_cas(ns: Namespace) {
    let store = ns.open().await;
    let name = "multipath-config";
    assert!(store.read_doc(name).await.unwrap().is_none());

    let v1 = "defaults {\n  find_multipaths strict\n}\n";
    let d1 = store.write_doc(name, v1, Expect::Absent).await.unwrap();
    assert_eq!(d1, ConfigDigest::of(v1));
    assert_eq!(
        store.read_doc(name).await.unwrap(),
        Some((v1.to_owned(), d1))
    );

    // Create-only refuses an existing document.
    let e = store
        .write_doc(name, "other", Expect::Absent)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { doc } if doc == name),
        "{e:?}"
    );

    // CAS success.
    let v2 = "ünïcode ✓\r\nwindows line\n";
    let d2 = store.write_doc(name, v2, Expect::Digest(d1)).await.unwrap();
    assert_eq!(d2, ConfigDigest::of(v2));
    // Stale digest.
    let e = store
        .write_doc(name, "v3", Expect::Digest(d1))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(
        store.read_doc(name).await.unwrap(),
        Some((v2.to_owned(), d2))
    );

    // Rewriting the same content is a no-op success; Any overwrites.
    assert_eq!(
        store.write_doc(name, v2, Expect::Digest(d2)).await.unwrap(),
        d2
    );
    let d3 = store.write_doc(name, "v3", Expect::Any).await.unwrap();
    assert_eq!(store.read_doc(name).await.unwrap().unwrap().1, d3);

    // Digest of an absent document never matches.
    let e = store
        .write_doc("absent-doc", "x", Expect::Digest(d3))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert!(store.read_doc("absent-doc").await.unwrap().is_none());

    // Delete: wrong digest refused, right digest deletes, deleting nothing is fine.
    let e = store
        .delete_doc(name, Expect::Digest(d1))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    let e = store.delete_doc(name, Expect::Absent).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert!(store.delete_doc(name, Expect::Digest(d3)).await.unwrap());
    assert!(store.read_doc(name).await.unwrap().is_none());
    assert!(!store.delete_doc(name, Expect::Any).await.unwrap());
    assert!(!store.delete_doc(name, Expect::Absent).await.unwrap());
    // Empty documents exist (distinct from absent).
    let de = store.write_doc(name, "", Expect::Absent).await.unwrap();
    assert_eq!(
        store.read_doc(name).await.unwrap(),
        Some((String::new(), de))
    );
}

async fn doc_conflict_leaves_document_unchanged(ns: Namespace) {
    let store = ns.open().await;
    let name = "storage";
    let original: String = (0..2000).map(|i| format!("line {i} ✓\n")).collect();
    let d = store
        .write_doc(name, &original, Expect::Absent)
        .await
        .unwrap();
    let stale = ConfigDigest::of("something else");
    for attempt in [Expect::Absent, Expect::Digest(stale)] {
        let e = store
            .write_doc(name, "replacement", attempt)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
        let e = store.delete_doc(name, attempt).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    }
    let (content, digest) = store.read_doc(name).await.unwrap().unwrap();
    assert_eq!(content.as_bytes(), original.as_bytes());
    assert_eq!(digest, d);
}

async fn doc_concurrent_writers_exactly_one_wins(ns: Namespace) {
    let stores = [ns.open().await, ns.open().await];
    let name = "overrides";
    for round in 0..5 {
        let base = format!("base {round}\n");
        let d0 = stores[0].write_doc(name, &base, Expect::Any).await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..6 {
            let store = stores[w % 2].clone();
            let content = format!("writer {w} round {round}\n");
            tasks.push(tokio::spawn(async move {
                let r = store.write_doc(name, &content, Expect::Digest(d0)).await;
                (content, r)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (content, r) = t.await.unwrap();
            match r {
                Ok(d) => {
                    assert_eq!(d, ConfigDigest::of(&content));
                    winners.push(content);
                }
                Err(StoreError::Conflict { doc }) => assert_eq!(doc, name),
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (stored, _) = stores[1].read_doc(name).await.unwrap().unwrap();
        assert_eq!(stored, winners[0], "round {round}");
    }
    // Concurrent create-only: one creator.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = stores[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            store
                .write_doc("fresh", &format!("creator {w}"), Expect::Absent)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

async fn watch_delivers_events(ns: Namespace) {
    let store = ns.open().await;
    let mut sub = store.subscribe().await;
    let a = node("watcher-a");
    store.put("multipath", &a, Some("v1")).await.unwrap();
    expect_event(&mut sub, EVENT_WAIT, &kv_event("multipath", &a)).await;
    store.put("multipath", &a, None).await.unwrap();
    expect_event(&mut sub, EVENT_WAIT, &kv_event("multipath", &a)).await;
    let d = store
        .write_doc("watched", "1", Expect::Absent)
        .await
        .unwrap();
    expect_event(&mut sub, EVENT_WAIT, &doc_event("watched")).await;
    store
        .write_doc("watched", "2", Expect::Digest(d))
        .await
        .unwrap();
    expect_event(&mut sub, EVENT_WAIT, &doc_event("watched")).await;
    store.delete_doc("watched", Expect::Any).await.unwrap();
    expect_event(&mut sub, EVENT_WAIT, &doc_event("watched")).await;
    if !store.is_standalone() {
        let h = go_online(&ns, &*store, &a, Duration::from_secs(5)).await;
        expect_event(&mut sub, EVENT_WAIT, &StoreEvent::Members).await;
        h.leave().await;
        expect_event(&mut sub, EVENT_WAIT, &StoreEvent::Members).await;
    }
    // An unchanged rewrite announces nothing.
    store.put("multipath", &a, Some("same")).await.unwrap();
    expect_event(&mut sub, EVENT_WAIT, &kv_event("multipath", &a)).await;
    store.put("multipath", &a, Some("same")).await.unwrap();
    store
        .put("multipath-apply", &a, Some("marker"))
        .await
        .unwrap();
    // The next event for `a` is the marker, not a repeat of "multipath".
    loop {
        let ev = tokio::time::timeout(EVENT_WAIT, sub.recv())
            .await
            .expect("marker event")
            .expect("open stream");
        match ev {
            StoreEvent::Resync => continue,
            ev => {
                assert_eq!(
                    ev,
                    kv_event("multipath-apply", &a),
                    "unchanged put emitted an event"
                );
                break;
            }
        }
    }
}

async fn second_instance_sees_writes_and_events(ns: Namespace) {
    let writer = ns.open().await;
    let reader = ns.open().await;
    let mut sub = reader.subscribe().await;
    let a = node("shared-node");
    writer
        .put("multipath", &a, Some("from writer"))
        .await
        .unwrap();
    writer
        .write_doc("shared-doc", "content", Expect::Absent)
        .await
        .unwrap();
    expect_events(
        &mut sub,
        EVENT_WAIT,
        &[kv_event("multipath", &a), doc_event("shared-doc")],
    )
    .await;
    assert_eq!(
        reader.get("multipath", &a).await.unwrap().as_deref(),
        Some("from writer")
    );
    let (content, d) = reader.read_doc("shared-doc").await.unwrap().unwrap();
    assert_eq!(content, "content");
    // A CAS through the reader on what the writer wrote.
    reader
        .write_doc("shared-doc", "by reader", Expect::Digest(d))
        .await
        .unwrap();
    let e = writer
        .write_doc("shared-doc", "stale", Expect::Digest(d))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }));
    // Deletes are seen too.
    writer.put("multipath", &a, None).await.unwrap();
    expect_event(&mut sub, EVENT_WAIT, &kv_event("multipath", &a)).await;
    assert!(reader.get_all("multipath").await.unwrap().is_empty());
}

async fn forget_node_removes_values_and_membership(ns: Namespace) {
    let store = ns.open().await;
    let gone = node("node-1");
    // Names around the forgotten one: a suffix, a prefix, and an unrelated node.
    let others = [
        node("old-node-1"),
        node("node-10"),
        node("pve2.example.com"),
    ];
    // Every kind of value, including a key no code knows of: forgetting is not a fixed list.
    let keys = [
        "multipath",
        "multipath-detail",
        "multipath-apply",
        "multipath-collect",
        "custom-key-9",
    ];
    for key in keys {
        store
            .put(key, &gone, Some(&format!("{key} of the gone node")))
            .await
            .unwrap();
        for o in &others {
            store
                .put(key, o, Some(&format!("{key} of {o}")))
                .await
                .unwrap();
        }
    }
    let member_only = node("member-only");
    let base = members(&*store).await;
    let mut online_handles = Vec::new();
    if !store.is_standalone() {
        // The departed node joined once and left; another node joined and left without ever
        // putting a value; the others are online.
        for n in [&gone, &member_only] {
            go_online(&ns, &*store, n, Duration::from_secs(5))
                .await
                .leave()
                .await;
        }
        for o in &others {
            online_handles.push(go_online(&ns, &*store, o, Duration::from_secs(5)).await);
        }
        let m = members(&*store).await;
        assert_eq!(m.len(), base.len() + 5, "{m:?}");
        assert!(!m[&gone].online, "{m:?}");
    }

    let mut sub = store.subscribe().await;
    if let Some(ext) = ns.external() {
        // The membership is the cluster's: it forgets the node itself (`pvecm delnode`).
        ext.remove(&gone);
    }
    assert!(store.forget_node(&gone).await.unwrap());
    let mut want: Vec<StoreEvent> = keys.iter().map(|k| kv_event(k, &gone)).collect();
    if !store.is_standalone() {
        want.push(StoreEvent::Members);
    }
    expect_events(&mut sub, EVENT_WAIT, &want).await;

    // Gone everywhere, for this store object and another one (another process).
    let other_store = ns.open().await;
    for s in [&store, &other_store] {
        for key in keys {
            let all = s.get_all(key).await.unwrap();
            assert!(!all.contains_key(&gone), "{key}: {all:?}");
            assert_eq!(s.get(key, &gone).await.unwrap(), None, "{key}");
            // The others untouched.
            assert_eq!(all.len(), others.len(), "{key}: {all:?}");
            for o in &others {
                assert_eq!(all[o], format!("{key} of {o}"), "{key}");
            }
        }
        let m = s.members().await.unwrap();
        assert!(!m.contains_key(&gone), "{m:?}");
        if !s.is_standalone() {
            assert_eq!(m.len(), base.len() + 4, "{m:?}");
            assert!(others.iter().all(|o| m[o].online), "{m:?}");
            assert!(!m[&member_only].online, "{m:?}");
        }
    }

    // Forgetting again finds nothing.
    assert!(!store.forget_node(&gone).await.unwrap());
    // A node known only by its membership record.
    match ns.external() {
        None => assert_eq!(
            store.forget_node(&member_only).await.unwrap(),
            !store.is_standalone()
        ),
        Some(ext) => {
            // Nothing of it is the store's; its membership stays the cluster's business.
            assert!(!store.forget_node(&member_only).await.unwrap());
            assert!(members(&*store).await.contains_key(&member_only));
            ext.remove(&member_only);
        }
    }
    assert!(!store.members().await.unwrap().contains_key(&member_only));
    // The node can come back afterwards like a new one.
    store.put("multipath", &gone, Some("back")).await.unwrap();
    assert_eq!(
        store.get("multipath", &gone).await.unwrap().as_deref(),
        Some("back")
    );
    for h in online_handles {
        h.leave().await;
    }
}

async fn forget_unknown_node_is_false(ns: Namespace) {
    let store = ns.open().await;
    // An empty store, then one with someone else's data.
    assert!(!store.forget_node(&node("never-seen")).await.unwrap());
    let a = node("somebody");
    store.put("multipath", &a, Some("v")).await.unwrap();
    if !store.is_standalone() {
        go_online(&ns, &*store, &a, Duration::from_secs(5))
            .await
            .leave()
            .await;
    }
    assert!(!store.forget_node(&node("never-seen")).await.unwrap());
    assert_eq!(
        store.get("multipath", &a).await.unwrap().as_deref(),
        Some("v")
    );
    if !store.is_standalone() {
        assert!(store.members().await.unwrap().contains_key(&a));
    }
}
