//! The etcd backend ([`EtcdStore`]), for etcd v3 (tested against Debian's etcd 3.4).
//!
//! Key layout, all under `/mpcluster/<cluster>/`:
//!
//! ```text
//! /mpcluster/<cluster>/kv/<key>/<node>   node KV value (no lease: outlives the node)
//! /mpcluster/<cluster>/nodes/<node>      "known node" entry, written at join (no lease)
//! /mpcluster/<cluster>/members/<node>    online marker, bound to the node's lease
//! /mpcluster/<cluster>/docs/<name>       document content
//! ```
//!
//! A node is a member if `nodes/<node>` exists, online if `members/<node>` exists too.
//!
//! - Node KV: plain keys, not lease-bound, so a dead node's last value persists (pmxcfs
//!   semantics). A put of the stored value is a no-op (one transaction: compare value, put
//!   otherwise), so it causes no watch event.
//! - Membership: `join` grants a lease with the TTL and writes `nodes/<node>` (permanent) and
//!   `members/<node>` (lease-bound) in one transaction; a task keeps the lease alive every
//!   TTL/3 and re-joins with a new lease if the old one expired meanwhile. `leave` revokes the
//!   lease, deleting `members/<node>` at once.
//! - Documents: compare-and-swap on `mod_revision` in a transaction (absent = `create_revision
//!   == 0`) after checking the caller's [`Expect`] against the digest of the value read.
//! - Events: one watch on the cluster prefix, resumed after reconnects, which are announced as
//!   [`StoreEvent::Resync`].
//! - Failover: one client per endpoint; a request starts at the endpoint that last worked and
//!   moves on after transport errors, timeouts and "no leader", until
//!   [`EtcdOptions::request_timeout`] has passed ([`StoreError::Unavailable`]). Wrong
//!   credentials fail with [`StoreError::Auth`] and are not retried for a back-off period
//!   (1 s doubling to 60 s).
//!
//! Range reads are paginated (never `get_stream`, which etcd 3.4 lacks) and pinned to one
//! revision, so large `multipath-detail` sets do not hit gRPC message limits.

mod keys;
mod lease;
mod pool;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{
    Certificate, Compare, CompareOp, ConnectOptions, GetOptions, Identity, TlsOptions, Txn, TxnOp,
    TxnOpResponse,
};
use mpcluster_core::NodeName;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::Member;
use tokio::sync::broadcast;
use tracing::warn;

use crate::names::{check_doc_content, check_doc_name, check_kv_key, check_kv_value};
use crate::{
    ClusterStore, EVENT_CHANNEL_CAPACITY, EtcdOptions, EtcdSpec, Expect, MembershipHandle,
    StoreError, StoreEvent, StoreSubscription,
};
use keys::{Keys, prefix_end};
use pool::Pool;

/// Keys per page of a range read. With `multipath-detail` values up to 1 MiB a page stays
/// within [`MAX_MESSAGE`].
const PAGE: i64 = 16;
/// Largest gRPC message accepted from etcd.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Largest node KV value whose no-op check is done inside the put transaction (the value is
/// then sent twice; etcd's default request limit is 1.5 MiB).
const INLINE_COMPARE_MAX: usize = 64 * 1024;
/// Compare-and-swap rounds before giving up under constant contention (`Expect::Any`).
const CAS_ROUNDS: usize = 8;

/// The etcd store; see the [module docs](self). Cheap to clone (shared state).
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pool: Arc<Pool>,
    keys: Keys,
    describe: String,
    events: broadcast::Sender<StoreEvent>,
    watch: watch::WatchState,
    watch_started: AtomicBool,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("store", &self.inner.describe)
            .finish_non_exhaustive()
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| StoreError::io(path, e))
}

fn tls_options(store: &str, tls: &crate::EtcdTls) -> Result<TlsOptions, StoreError> {
    let mut out = TlsOptions::new();
    if let Some(ca) = &tls.ca_file {
        out = out.ca_certificate(Certificate::from_pem(read_file(ca)?));
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            out = out.identity(Identity::from_pem(read_file(cert)?, read_file(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::Config {
                store: store.to_owned(),
                problem: "a TLS client certificate needs both a certificate and a key file"
                    .to_owned(),
            });
        }
    }
    if let Some(d) = &tls.domain {
        out = out.domain_name(d.clone());
    }
    Ok(out)
}

impl EtcdStore {
    /// Prepare a store for `spec`. Reads TLS and password files but does not contact etcd:
    /// an unreachable etcd shows up as [`StoreError::Unavailable`] on the first call.
    /// Must be called within a Tokio runtime (background tasks run on it).
    pub async fn open(spec: &EtcdSpec, options: EtcdOptions) -> Result<EtcdStore, StoreError> {
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let urls: Vec<String> = spec
            .endpoints
            .iter()
            .map(|e| format!("{scheme}://{e}"))
            .collect();
        let describe = format!("etcd store {} (cluster '{}')", urls.join(","), spec.cluster);
        crate::names::check_name("cluster name", &spec.cluster)?;
        if urls.is_empty() {
            return Err(StoreError::Config {
                store: describe,
                problem: "no endpoints".to_owned(),
            });
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            // HTTP/2 pings find dead connections under a long-lived watch; etcd refuses
            // pings more often than every 5 s.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_require_leader(true);
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls_options(&describe, tls)?);
        }
        if let Some(auth) = &options.auth {
            let password = auth.password.resolve(&describe)?;
            connect = connect
                .with_user(auth.user.clone(), password.expose().to_owned())
                .with_auto_token_refresh(true);
        }
        let pool = Arc::new(Pool::new(describe.clone(), urls, connect, &options));
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        Ok(EtcdStore {
            inner: Arc::new(Inner {
                pool,
                keys: Keys::new(&spec.cluster),
                describe,
                events,
                watch: watch::WatchState::new(),
                watch_started: AtomicBool::new(false),
                runtime: tokio::runtime::Handle::current(),
            }),
        })
    }

    /// Every key/value under `prefix` at one revision, page by page.
    async fn range(&self, what: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let end = prefix_end(prefix);
        let mut start = prefix.as_bytes().to_vec();
        let mut revision = 0i64;
        let mut out = Vec::new();
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            let key = start.clone();
            let resp = self
                .inner
                .pool
                .call(what, |c| {
                    let (key, opts) = (key.clone(), opts.clone());
                    async move {
                        c.kv_client()
                            .max_decoding_message_size(MAX_MESSAGE)
                            .get(key, Some(opts))
                            .await
                    }
                })
                .await?
                .value;
            if revision == 0 {
                revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            for kv in resp.kvs() {
                let Ok(k) = kv.key_str() else { continue };
                out.push((k.to_owned(), kv.value().to_vec()));
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok(out),
            }
        }
    }

    /// The document's value and `mod_revision` (0 if absent).
    async fn get_doc_raw(&self, key: &str) -> Result<(Option<Vec<u8>>, i64), StoreError> {
        let resp = self
            .inner
            .pool
            .call("read document", |mut c| {
                let key = key.to_owned();
                async move { c.get(key, None).await }
            })
            .await?
            .value;
        Ok(match resp.kvs().first() {
            Some(kv) => (Some(kv.value().to_vec()), kv.mod_revision()),
            None => (None, 0),
        })
    }

    fn corrupt(&self, location: String, problem: &str) -> StoreError {
        StoreError::Corrupt {
            store: self.inner.describe.clone(),
            location,
            problem: problem.to_owned(),
        }
    }

    /// A transaction guarded by the document's `mod_revision` (or its absence).
    fn guarded(key: &str, mod_revision: i64, then: TxnOp) -> Txn {
        let cmp = if mod_revision == 0 {
            Compare::create_revision(key, CompareOp::Equal, 0)
        } else {
            Compare::mod_revision(key, CompareOp::Equal, mod_revision)
        };
        Txn::new().when([cmp]).and_then([then])
    }
}

#[async_trait::async_trait]
impl ClusterStore for EtcdStore {
    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    fn is_standalone(&self) -> bool {
        false
    }

    async fn put(&self, key: &str, node: &NodeName, value: Option<&str>) -> Result<(), StoreError> {
        check_kv_key(key)?;
        let value = value.filter(|v| !v.is_empty());
        if let Some(v) = value {
            check_kv_value(key, v)?;
        }
        let k = self.inner.keys.kv(key, node);
        match value {
            None => {
                self.inner
                    .pool
                    .call("delete node KV value", |mut c| {
                        let k = k.clone();
                        async move { c.delete(k, None).await }
                    })
                    .await?;
            }
            Some(v) if v.len() <= INLINE_COMPARE_MAX => {
                // Put unless the same value is stored (a missing key fails the value compare).
                let txn = Txn::new()
                    .when([Compare::value(k.as_str(), CompareOp::Equal, v)])
                    .or_else([TxnOp::put(k.as_str(), v, None)]);
                self.inner
                    .pool
                    .call("put node KV value", |mut c| {
                        let txn = txn.clone();
                        async move { c.txn(txn).await }
                    })
                    .await?;
            }
            Some(v) => {
                // Too big to send twice within etcd's request limit: read, then put if
                // different. A concurrent writer of the same node's value is not expected.
                if self.get(key, node).await?.as_deref() == Some(v) {
                    return Ok(());
                }
                self.inner
                    .pool
                    .call("put node KV value", |mut c| {
                        let (k, v) = (k.clone(), v.to_owned());
                        async move { c.put(k, v, None).await }
                    })
                    .await?;
            }
        }
        Ok(())
    }

    async fn get_all(&self, key: &str) -> Result<BTreeMap<NodeName, String>, StoreError> {
        check_kv_key(key)?;
        let prefix = self.inner.keys.kv_prefix(key);
        let mut out = BTreeMap::new();
        for (k, v) in self.range("read node KV values", &prefix).await? {
            let Some(node) = k.strip_prefix(&prefix).and_then(|n| NodeName::new(n).ok()) else {
                warn!(store = %self.inner.describe, key = %k, "skipping a node KV key with an invalid node name");
                continue;
            };
            match String::from_utf8(v) {
                Ok(v) => {
                    out.insert(node, v);
                }
                Err(_) => {
                    warn!(store = %self.inner.describe, key = %k, "skipping a node KV value that is not UTF-8")
                }
            }
        }
        Ok(out)
    }

    async fn get(&self, key: &str, node: &NodeName) -> Result<Option<String>, StoreError> {
        check_kv_key(key)?;
        let k = self.inner.keys.kv(key, node);
        let resp = self
            .inner
            .pool
            .call("read node KV value", |c| {
                let k = k.clone();
                async move {
                    c.kv_client()
                        .max_decoding_message_size(MAX_MESSAGE)
                        .get(k, None)
                        .await
                }
            })
            .await?
            .value;
        match resp.kvs().first() {
            None => Ok(None),
            Some(kv) => String::from_utf8(kv.value().to_vec())
                .map(Some)
                .map_err(|_| self.corrupt(k, "node KV value is not UTF-8")),
        }
    }

    async fn members(&self) -> Result<BTreeMap<NodeName, Member>, StoreError> {
        let nodes = self.inner.keys.nodes_prefix();
        let members = self.inner.keys.members_prefix();
        // One transaction: both lists from the same revision.
        let txn = Txn::new().and_then([
            TxnOp::get(
                nodes.as_str(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
            TxnOp::get(
                members.as_str(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
        ]);
        let resp = self
            .inner
            .pool
            .call("read members", |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?
            .value;
        let mut lists: Vec<BTreeSet<NodeName>> = Vec::new();
        for (op, prefix) in resp.op_responses().into_iter().zip([&nodes, &members]) {
            let mut set = BTreeSet::new();
            if let TxnOpResponse::Get(g) = op {
                for kv in g.kvs() {
                    if let Some(n) = kv
                        .key_str()
                        .ok()
                        .and_then(|k| k.strip_prefix(prefix.as_str()))
                        .and_then(|n| NodeName::new(n).ok())
                    {
                        set.insert(n);
                    }
                }
            }
            lists.push(set);
        }
        let online = lists.pop().unwrap_or_default();
        let known = lists.pop().unwrap_or_default();
        Ok(known
            .union(&online)
            .map(|n| {
                (
                    n.clone(),
                    Member {
                        online: online.contains(n),
                    },
                )
            })
            .collect())
    }

    async fn join(&self, node: &NodeName, ttl: Duration) -> Result<MembershipHandle, StoreError> {
        lease::join(
            self.inner.pool.clone(),
            self.inner.keys.clone(),
            node.clone(),
            ttl,
            &self.inner.runtime,
        )
        .await
    }

    async fn read_doc(&self, name: &str) -> Result<Option<(String, ConfigDigest)>, StoreError> {
        check_doc_name(name)?;
        let key = self.inner.keys.doc(name);
        let (value, _) = self.get_doc_raw(&key).await?;
        match value {
            None => Ok(None),
            Some(bytes) => {
                let digest = ConfigDigest::of_bytes(&bytes);
                let content = String::from_utf8(bytes)
                    .map_err(|_| self.corrupt(key, "document is not UTF-8"))?;
                Ok(Some((content, digest)))
            }
        }
    }

    async fn write_doc(
        &self,
        name: &str,
        content: &str,
        expected: Expect,
    ) -> Result<ConfigDigest, StoreError> {
        check_doc_name(name)?;
        check_doc_content(name, content)?;
        let key = self.inner.keys.doc(name);
        let digest = ConfigDigest::of(content);
        let mut maybe_applied = false;
        for _ in 0..CAS_ROUNDS {
            let (value, rev) = self.get_doc_raw(&key).await?;
            let current = value.as_deref().map(ConfigDigest::of_bytes);
            if maybe_applied && current == Some(digest) {
                // A retried transaction of ours went through after all.
                return Ok(digest);
            }
            expected.check(name, current.as_ref())?;
            if current == Some(digest) {
                return Ok(digest);
            }
            let txn = Self::guarded(&key, rev, TxnOp::put(key.as_str(), content, None));
            let out = self
                .inner
                .pool
                .call("write document", |mut c| {
                    let txn = txn.clone();
                    async move { c.txn(txn).await }
                })
                .await?;
            if out.value.succeeded() {
                return Ok(digest);
            }
            maybe_applied |= out.retried;
            // Changed between our read and the transaction: re-read and re-check.
        }
        Err(StoreError::Unavailable {
            store: self.inner.describe.clone(),
            reason: format!(
                "document '{name}' kept changing; gave up after {CAS_ROUNDS} compare-and-swap rounds"
            ),
            source: None,
        })
    }

    async fn delete_doc(&self, name: &str, expected: Expect) -> Result<bool, StoreError> {
        check_doc_name(name)?;
        let key = self.inner.keys.doc(name);
        let mut maybe_applied = false;
        for _ in 0..CAS_ROUNDS {
            let (value, rev) = self.get_doc_raw(&key).await?;
            let current = value.as_deref().map(ConfigDigest::of_bytes);
            if maybe_applied && current.is_none() {
                return Ok(true);
            }
            expected.check(name, current.as_ref())?;
            if current.is_none() {
                return Ok(false);
            }
            let txn = Self::guarded(&key, rev, TxnOp::delete(key.as_str(), None));
            let out = self
                .inner
                .pool
                .call("delete document", |mut c| {
                    let txn = txn.clone();
                    async move { c.txn(txn).await }
                })
                .await?;
            if out.value.succeeded() {
                return Ok(true);
            }
            maybe_applied |= out.retried;
        }
        Err(StoreError::Unavailable {
            store: self.inner.describe.clone(),
            reason: format!(
                "document '{name}' kept changing; gave up after {CAS_ROUNDS} compare-and-swap rounds"
            ),
            source: None,
        })
    }

    async fn subscribe(&self) -> StoreSubscription {
        let rx = self.inner.events.subscribe();
        if !self.inner.watch_started.swap(true, Ordering::SeqCst) {
            watch::spawn(&self.inner);
        }
        self.inner
            .watch
            .wait_connected(self.inner.pool.request_timeout())
            .await;
        StoreSubscription::new(rx)
    }
}
