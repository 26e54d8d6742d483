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
//! - Forgetting a node: one transaction deletes `nodes/<node>`, `members/<node>` and every
//!   `kv/<key>/<node>` found by listing the node KV keys, guarded by "no node KV key modified
//!   since the listing's revision" (listed again if that fails). No lease is revoked.
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
//! Range reads are paginated (never range streaming, which etcd 3.4 lacks) and pinned to one
//! revision, so large `multipath-detail` sets do not hit gRPC message limits.
//!
//! The gRPC client is our own (`rpc.rs`): stubs generated at build time from trimmed etcd
//! protos, without `protoc`.

mod keys;
mod lease;
mod pool;
pub(crate) mod rpc;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mpcluster_core::NodeName;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::Member;
use tokio::sync::broadcast;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tracing::warn;

use crate::names::{check_doc_content, check_doc_name, check_kv_key, check_kv_value};
use crate::{
    ClusterStore, EVENT_CHANNEL_CAPACITY, EtcdOptions, EtcdSpec, Expect, MembershipHandle,
    StoreError, StoreEvent, StoreSubscription,
};
use keys::Keys;
use pool::Pool;
use rpc::pb::etcdserverpb::{
    DeleteRangeRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest, TxnResponse,
    response_op,
};
use rpc::{ClientOptions, prefix_range};

/// Keys per page of a range read. With `multipath-detail` values up to 1 MiB a page stays
/// within [`rpc::MAX_MESSAGE`].
const PAGE: i64 = 16;
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

/// What one round of [`EtcdStore::cas`] decided from its read.
enum CasStep<T, S> {
    /// Finished without a transaction: nothing to change, or a retried transaction of ours
    /// turned out to have been applied.
    Done(T),
    /// Send this transaction, guarded by what the round read; `S` is what interpreting its
    /// result needs from that read.
    Txn(TxnRequest, S),
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

/// The client TLS settings for `tls` (reads the PEM files).
pub(crate) fn tls_config(store: &str, tls: &crate::EtcdTls) -> Result<ClientTlsConfig, StoreError> {
    let mut out = ClientTlsConfig::new();
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
        let mut client = ClientOptions {
            connect_timeout: options.connect_timeout,
            tls: None,
            credentials: None,
        };
        if let Some(tls) = &options.tls {
            client.tls = Some(tls_config(&describe, tls)?);
        }
        if let Some(auth) = &options.auth {
            client.credentials = Some((auth.user.clone(), auth.password.resolve(&describe)?));
        }
        let pool = Arc::new(Pool::new(describe.clone(), urls, &client, &options)?);
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
        let (mut start, end) = prefix_range(prefix);
        let mut revision = 0i64;
        let mut out = Vec::new();
        loop {
            let req = RangeRequest {
                key: start.clone(),
                range_end: end.clone(),
                limit: PAGE,
                revision,
                ..RangeRequest::default()
            };
            let resp = self.range_rpc(what, req).await?;
            if revision == 0 {
                revision = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
            }
            let more = resp.more;
            let mut next = None;
            for kv in resp.kvs {
                next = Some(kv.key.clone());
                let Ok(k) = String::from_utf8(kv.key) else {
                    continue;
                };
                out.push((k, kv.value));
            }
            match next {
                Some(mut last) if more => {
                    last.push(0);
                    start = last;
                }
                _ => return Ok(out),
            }
        }
    }

    /// The value of one key and its `mod_revision`, or `None`.
    async fn get_one(&self, what: &str, key: &str) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        let req = RangeRequest {
            key: key.as_bytes().to_vec(),
            ..RangeRequest::default()
        };
        let resp = self.range_rpc(what, req).await?;
        Ok(resp
            .kvs
            .into_iter()
            .next()
            .map(|kv| (kv.value, kv.mod_revision)))
    }

    /// Run one `Range` request through the pool (reads are idempotent: a retried one needs no
    /// check).
    async fn range_rpc(&self, what: &str, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        Ok(self
            .inner
            .pool
            .call(what, |c| {
                let req = req.clone();
                async move { c.range(req).await }
            })
            .await?
            .value)
    }

    /// Run a transaction through the pool. The response says whether its comparisons held;
    /// the outcome, whether it may have been sent twice.
    async fn txn(
        &self,
        what: &str,
        txn: TxnRequest,
    ) -> Result<pool::Outcome<TxnResponse>, StoreError> {
        self.inner
            .pool
            .call(what, |c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
    }

    /// The document's value and `mod_revision` (0 if absent).
    async fn get_doc_raw(&self, key: &str) -> Result<(Option<Vec<u8>>, i64), StoreError> {
        Ok(match self.get_one("read document", key).await? {
            Some((value, rev)) => (Some(value), rev),
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
    fn guarded(key: &str, mod_revision: i64, then: RequestOp) -> TxnRequest {
        let cmp = if mod_revision == 0 {
            rpc::create_revision_equals(key, 0)
        } else {
            rpc::mod_revision_equals(key, mod_revision)
        };
        TxnRequest {
            compare: vec![cmp],
            success: vec![then],
            failure: Vec::new(),
        }
    }

    /// The compare-and-swap loop, at most [`CAS_ROUNDS`] rounds. Each round `plan` reads the
    /// current state and either finishes ([`CasStep::Done`]) or returns a transaction whose
    /// comparisons guard what it read; when they hold, `applied` makes the result from the
    /// response. When they fail, the state changed since the read: the next round reads again.
    ///
    /// `plan` is told whether an earlier round's transaction may have been applied after all:
    /// the pool sent it more than once (timeout, connection lost), so its failed comparison
    /// may be a second copy meeting the first copy's change. A `plan` whose transaction does
    /// not fail that way may ignore it.
    ///
    /// After the last round: [`StoreError::Unavailable`] with the reason `gave_up` makes.
    ///
    /// (`plan` is a closure returning a future rather than an async closure: the futures of
    /// async closures borrowing the caller's arguments are not provably `Send`, which
    /// `async_trait` requires.)
    async fn cas<T, S, Fut>(
        &self,
        what: &str,
        mut plan: impl FnMut(bool) -> Fut,
        applied: impl FnOnce(TxnResponse, S) -> T,
        gave_up: impl FnOnce() -> String,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<CasStep<T, S>, StoreError>>,
    {
        let mut maybe_applied = false;
        for _ in 0..CAS_ROUNDS {
            let (txn, read) = match plan(maybe_applied).await? {
                CasStep::Done(out) => return Ok(out),
                CasStep::Txn(txn, read) => (txn, read),
            };
            let out = self.txn(what, txn).await?;
            if out.value.succeeded {
                return Ok(applied(out.value, read));
            }
            maybe_applied |= out.retried;
        }
        Err(StoreError::Unavailable {
            store: self.inner.describe.clone(),
            reason: gave_up(),
            source: None,
        })
    }

    /// Bring document `name` (stored at `key`) to the content whose digest is `wanted`
    /// (`None`: absent) with `op`, a put or delete of `key`, if `expected` holds for the
    /// digest read (checked again every round). `Ok(false)` if the document already was in
    /// that state.
    async fn cas_doc(
        &self,
        what: &str,
        name: &str,
        key: &str,
        expected: Expect,
        wanted: Option<ConfigDigest>,
        op: RequestOp,
    ) -> Result<bool, StoreError> {
        let op = &op;
        self.cas(
            what,
            |maybe_applied| async move {
                let (value, rev) = self.get_doc_raw(key).await?;
                let current = value.as_deref().map(ConfigDigest::of_bytes);
                if maybe_applied && current == wanted {
                    // A retried transaction of ours went through after all.
                    return Ok(CasStep::Done(true));
                }
                expected.check(name, current.as_ref())?;
                if current == wanted {
                    return Ok(CasStep::Done(false));
                }
                Ok(CasStep::Txn(Self::guarded(key, rev, op.clone()), ()))
            },
            |_, ()| true,
            || {
                format!(
                    "document '{name}' kept changing; gave up after {CAS_ROUNDS} compare-and-swap rounds"
                )
            },
        )
        .await
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
                let req = DeleteRangeRequest {
                    key: k.as_bytes().to_vec(),
                    ..DeleteRangeRequest::default()
                };
                self.inner
                    .pool
                    .call("delete node KV value", |c| {
                        let req = req.clone();
                        async move { c.delete_range(req).await }
                    })
                    .await?;
            }
            Some(v) if v.len() <= INLINE_COMPARE_MAX => {
                // Put unless the same value is stored (a missing key fails the value compare).
                let txn = TxnRequest {
                    compare: vec![rpc::value_equals(&k, v)],
                    success: Vec::new(),
                    failure: vec![rpc::op_put(&k, v.as_bytes(), 0)],
                };
                self.txn("put node KV value", txn).await?;
            }
            Some(v) => {
                // Too big to send twice within etcd's request limit: read, then put if
                // different. A concurrent writer of the same node's value is not expected.
                if self.get(key, node).await?.as_deref() == Some(v) {
                    return Ok(());
                }
                let req = rpc::put_request(&k, v.as_bytes(), 0);
                self.inner
                    .pool
                    .call("put node KV value", |c| {
                        let req = req.clone();
                        async move { c.put(req).await }
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
            // Kept, lossily decoded: the reader must see that the node's value is unreadable
            // (a broadcast error), not lose the node silently.
            let value = String::from_utf8(v).unwrap_or_else(|e| {
                warn!(store = %self.inner.describe, key = %k, "a node KV value is not UTF-8");
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            });
            out.insert(node, value);
        }
        Ok(out)
    }

    async fn get(&self, key: &str, node: &NodeName) -> Result<Option<String>, StoreError> {
        check_kv_key(key)?;
        let k = self.inner.keys.kv(key, node);
        match self.get_one("read node KV value", &k).await? {
            None => Ok(None),
            Some((value, _)) => String::from_utf8(value)
                .map(Some)
                .map_err(|_| self.corrupt(k, "node KV value is not UTF-8")),
        }
    }

    async fn members(&self) -> Result<BTreeMap<NodeName, Member>, StoreError> {
        let nodes = self.inner.keys.nodes_prefix();
        let members = self.inner.keys.members_prefix();
        // One transaction: both lists from the same revision.
        let txn = TxnRequest {
            success: vec![
                rpc::op_keys_with_prefix(&nodes),
                rpc::op_keys_with_prefix(&members),
            ],
            ..TxnRequest::default()
        };
        let resp = self.txn("read members", txn).await?.value;
        let mut lists: Vec<BTreeSet<NodeName>> = Vec::new();
        for (op, prefix) in resp.responses.into_iter().zip([&nodes, &members]) {
            let mut set = BTreeSet::new();
            if let Some(response_op::Response::ResponseRange(r)) = op.response {
                for kv in r.kvs {
                    if let Some(n) = std::str::from_utf8(&kv.key)
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

    async fn forget_node(&self, node: &NodeName) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        let (kv_start, kv_end) = &prefix_range(&keys.kv_root());
        self.cas(
            "forget node",
            // The retry flag is not used: a second copy of an applied transaction normally
            // finds its comparison still holding (the values it deleted are not compared any
            // more) and deletes nothing; the result accounts for that.
            |_maybe_applied| async move {
                // The node's values: its name is the last path element, so list every node KV
                // key (keys only, one revision) and pick them.
                let list = RangeRequest {
                    key: kv_start.clone(),
                    range_end: kv_end.clone(),
                    keys_only: true,
                    ..RangeRequest::default()
                };
                let listed = self.range_rpc("list node KV keys", list).await?;
                let revision = listed.header.as_ref().map(|h| h.revision).unwrap_or(0);
                let values: Vec<Vec<u8>> = listed
                    .kvs
                    .into_iter()
                    .map(|kv| kv.key)
                    .filter(|k| {
                        matches!(keys.event_for(k), Some(StoreEvent::NodeKv { node: n, .. }) if n == *node)
                    })
                    .collect();
                // One transaction, applied only if no node KV value changed since the listing
                // (else a value the node wrote meanwhile could survive): the membership keys
                // and every listed value. If one changed: list again.
                let mut ops = vec![
                    rpc::op_delete(keys.node(node).as_bytes(), &[]),
                    rpc::op_delete(keys.member(node).as_bytes(), &[]),
                ];
                ops.extend(values.iter().map(|k| rpc::op_delete(k, &[])));
                let txn = TxnRequest {
                    compare: vec![rpc::unchanged_since(kv_start, kv_end, revision)],
                    success: ops,
                    failure: Vec::new(),
                };
                Ok(CasStep::Txn(txn, !values.is_empty()))
            },
            |out, listed_values| {
                let deleted: i64 = out
                    .responses
                    .iter()
                    .filter_map(|r| match &r.response {
                        Some(response_op::Response::ResponseDeleteRange(d)) => Some(d.deleted),
                        _ => None,
                    })
                    .sum();
                // A transaction sent twice (timeout, then retried) deletes nothing the second
                // time; the listing still tells whether values existed.
                deleted > 0 || listed_values
            },
            || {
                format!(
                    "forgetting node '{node}': node KV values kept changing; gave up after {CAS_ROUNDS} rounds"
                )
            },
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
        let op = rpc::op_put(&key, content.as_bytes(), 0);
        self.cas_doc("write document", name, &key, expected, Some(digest), op)
            .await?;
        Ok(digest)
    }

    async fn delete_doc(&self, name: &str, expected: Expect) -> Result<bool, StoreError> {
        check_doc_name(name)?;
        let key = self.inner.keys.doc(name);
        let op = rpc::op_delete(key.as_bytes(), &[]);
        self.cas_doc("delete document", name, &key, expected, None, op)
            .await
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
