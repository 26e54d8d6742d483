//! mpcluster-store: everything the agent and the server know of the cluster, behind one
//! object-safe async trait, [`ClusterStore`] (used as `Arc<dyn ClusterStore>`).
//!
//! The store holds three kinds of data, modelled on pmxcfs:
//!
//! - **Node KV** ([`ClusterStore::put`], [`ClusterStore::get_all`]): per node, per key, one raw
//!   string (the health broadcast under `multipath`, apply/collect failures, per-path detail).
//!   Values outlive their node's membership, like pmxcfs where a dead node's last value stays
//!   visible: readers combine them with [`ClusterStore::members`] and the payload timestamps.
//!   Size limits per key: [`names::value_limit`].
//! - **Membership** ([`ClusterStore::members`], [`ClusterStore::join`]): which nodes are
//!   online. A standalone store (embedded, or pve on a Proxmox node without a cluster) has
//!   none: `members()` is empty. [`ClusterStore::forget_node`] removes a departed node: its
//!   membership record (where the store keeps it) and all its node KV values.
//! - **Documents** ([`ClusterStore::read_doc`], [`ClusterStore::write_doc`],
//!   [`ClusterStore::delete_doc`]): cluster-wide configuration (multipath config, storage
//!   definitions, overrides) with a content [`ConfigDigest`] and compare-and-swap writes
//!   ([`Expect`]).
//!
//! Changes are announced through [`ClusterStore::subscribe`] ([`StoreEvent`]).
//!
//! Backends ([`StoreSpec`] lists them all; [`open`] opens one):
//! - [`embedded::EmbeddedStore`]: files in one directory, standalone, crash-safe, shared by
//!   every process on the host (`embedded:DIR`).
//! - [`pve::PveStore`]: files in the Proxmox cluster filesystem (pmxcfs, `/etc/pve`),
//!   replicated by it to every node; membership and liveness from corosync (`.members`);
//!   lock directories for compare-and-swap (`pve`, `pve:DIR`).
//! - `etcd::EtcdStore` (feature `etcd`, default): an etcd v3 cluster
//!   (`etcd://h1:2379,h2:2379/cluster`), with endpoint failover, leases for membership and
//!   revision-checked transactions for documents.
//!
//! The two file-backed stores share their file primitives and their polling change feed
//! (`files`, private).
//!
//! Test support: the `testing` feature adds `testing::EtcdServer`, which runs real etcd
//! members on ephemeral 127.0.0.1 ports, and `testing::PveRoot`, a pmxcfs-like root directory
//! whose `.members` a test controls. The same conformance suite
//! (`tests/conformance/suite.rs`) runs against all three backends.
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use mpcluster_core::NodeName;
pub use mpcluster_core::digest::ConfigDigest;
pub use mpcluster_core::snapshot::Member;

pub mod embedded;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
mod event;
mod files;
mod membership;
pub mod names;
pub mod pve;
mod spec;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{BoxError, StoreError};
pub use event::{EVENT_CHANNEL_CAPACITY, StoreEvent, StoreSubscription};
pub use membership::MembershipHandle;
pub use spec::{
    BACKENDS, DEFAULT_CLUSTER, DEFAULT_ETCD_PORT, DEFAULT_PVE_ROOT, EmbeddedOptions, EtcdAuth,
    EtcdOptions, EtcdSpec, EtcdTls, PasswordSource, PveOptions, Secret, SpecError, StoreOptions,
    StoreSpec, default_embedded_dir,
};

/// The membership TTL agents use unless configured otherwise: an agent that stops keeping
/// alive reads offline at most this long after its last keep-alive.
pub const DEFAULT_MEMBER_TTL: Duration = Duration::from_secs(15);

/// What a document write or delete expects to find (compare-and-swap precondition).
///
/// Checked atomically with the write: if it does not hold, nothing is changed and the call
/// fails with [`StoreError::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No precondition: overwrite (or delete) whatever is there.
    Any,
    /// The document must not exist yet (create only).
    Absent,
    /// The document must exist with exactly this digest (the one last read).
    Digest(ConfigDigest),
}

impl Expect {
    /// Check the precondition against the current state (`None` = document absent).
    pub fn check(&self, doc: &str, current: Option<&ConfigDigest>) -> Result<(), StoreError> {
        let ok = match (self, current) {
            (Expect::Any, _) => true,
            (Expect::Absent, None) => true,
            (Expect::Digest(want), Some(have)) => want == have,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                doc: doc.to_owned(),
            })
        }
    }
}

/// The cluster store. All methods validate their input first (names, sizes) and write
/// nothing on error. Object-safe: use it as `Arc<dyn ClusterStore>`.
#[async_trait::async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// The backend and its location, for messages, e.g.
    /// `etcd store http://127.0.0.1:2379 (cluster 'default')` or
    /// `embedded store /var/lib/mpcluster`.
    fn describe(&self) -> String;

    /// `true` if the store has no membership: [`members`](Self::members) is empty and
    /// [`join`](Self::join) keeps nothing alive (the embedded store; the pve store while
    /// `.members` lists no cluster, as of its last read).
    fn is_standalone(&self) -> bool;

    /// Set (`Some`) or delete (`None`) node `node`'s value for `key`. Like pmxcfs an empty
    /// value deletes. Writing the value already stored changes nothing and emits no event.
    /// Errors: [`StoreError::InvalidName`], [`StoreError::ValueTooLarge`] (nothing written).
    async fn put(&self, key: &str, node: &NodeName, value: Option<&str>) -> Result<(), StoreError>;

    /// Every node's value for `key`, offline or departed nodes included (their last value
    /// persists until they overwrite or delete it). Empty if nobody set the key.
    async fn get_all(&self, key: &str) -> Result<BTreeMap<NodeName, String>, StoreError>;

    /// One node's value for `key`.
    async fn get(&self, key: &str, node: &NodeName) -> Result<Option<String>, StoreError> {
        Ok(self.get_all(key).await?.remove(node))
    }

    /// Known nodes and whether each is online. Empty for a standalone store. Nodes that
    /// joined once stay listed (offline) after leaving or expiring. The pve store returns
    /// exactly what corosync's `.members` lists (every configured node, online per its flag),
    /// or [`StoreError::Corrupt`] naming the file when it cannot be read as such.
    async fn members(&self) -> Result<BTreeMap<NodeName, Member>, StoreError>;

    /// Make `node` an online member until the handle is dropped (then after `ttl`) or
    /// [`MembershipHandle::leave`] is called (then at once). The handle keeps itself alive in
    /// a background task, re-joining if the store was unreachable for longer than `ttl`.
    ///
    /// Where the membership is not the store's (pve: corosync decides who is online) the
    /// handle keeps nothing alive and `leave` changes nothing; joining a node the membership
    /// does not list fails with [`StoreError::NotMember`].
    async fn join(&self, node: &NodeName, ttl: Duration) -> Result<MembershipHandle, StoreError>;

    /// Forget a departed node: remove its membership record (known-node entry and online
    /// marker) and every node KV value it put, under every key (not a fixed list). `Ok(true)`
    /// if anything of the node existed, `Ok(false)` for an unknown node. Other nodes are
    /// untouched. Subscribers get the usual events ([`StoreEvent::NodeKv`] per removed value,
    /// [`StoreEvent::Members`] for the membership record).
    ///
    /// Whether the node is still online is not checked here (callers refuse that unless
    /// forced); no lease is revoked, so a node that is in fact still running keeps its lease
    /// and writes its values again on its next put and its record on its next join.
    ///
    /// Atomicity: etcd removes everything in one transaction, guarded so that it only
    /// applies if no node KV value changed since the node's keys were listed (retried a few
    /// times otherwise); a node with more values than fit into one etcd transaction (etcd's
    /// `--max-txn-ops`, 128 by default) is refused. The embedded store (no membership)
    /// removes the node's files one by one, each removal durable; a crash in between leaves
    /// some values, which forgetting again removes.
    ///
    /// The pve store removes the node's values (one file each, then its directory) and
    /// returns whether it had any; the corosync membership is not the store's to edit, so a
    /// node still configured in the cluster stays in [`members`](Self::members) (offline)
    /// until `pvecm delnode <node>` removes it there.
    async fn forget_node(&self, node: &NodeName) -> Result<bool, StoreError> {
        // For wrappers that do not forward it; every backend implements it.
        let _ = node;
        Err(StoreError::Config {
            store: self.describe(),
            problem: "this store implementation cannot forget nodes".to_owned(),
        })
    }

    /// A document's content and digest, or `None` if it does not exist.
    async fn read_doc(&self, name: &str) -> Result<Option<(String, ConfigDigest)>, StoreError>;

    /// Write a document if `expected` holds (atomically); returns the new content's digest.
    /// Writing the content already stored (with `expected` holding) changes nothing.
    /// Errors: [`StoreError::Conflict`] (nothing written), [`StoreError::InvalidName`],
    /// [`StoreError::DocumentTooLarge`].
    async fn write_doc(
        &self,
        name: &str,
        content: &str,
        expected: Expect,
    ) -> Result<ConfigDigest, StoreError>;

    /// Delete a document if `expected` holds; `Ok(true)` if it existed. [`Expect::Absent`]
    /// succeeds only if there is nothing to delete.
    async fn delete_doc(&self, name: &str, expected: Expect) -> Result<bool, StoreError>;

    /// Subscribe to change notifications. Every change made after this returns is reported
    /// (or covered by a later [`StoreEvent::Resync`]). For etcd this waits, at most the request
    /// timeout, until the change feed is established; if the store is unreachable it returns
    /// anyway and the subscription gets `Resync` once the feed is up.
    async fn subscribe(&self) -> StoreSubscription;
}

/// Open the store `spec` names.
///
/// Opening does not contact a remote store (etcd): a store that is down at startup is
/// reported by the first call ([`StoreError::Unavailable`]) and used once it is back, without
/// reopening. It fails for a backend not in this build, unreadable TLS or password files, or
/// an embedded directory that cannot be created.
pub async fn open(
    spec: &StoreSpec,
    options: &StoreOptions,
) -> Result<Arc<dyn ClusterStore>, StoreError> {
    match spec {
        StoreSpec::Embedded { dir } => {
            let dir = dir.clone().unwrap_or_else(default_embedded_dir);
            let store = embedded::EmbeddedStore::open(&dir, options.embedded.clone()).await?;
            Ok(Arc::new(store))
        }
        StoreSpec::Pve { root } => {
            let root = root
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_PVE_ROOT));
            let store = pve::PveStore::open(&root, options.pve.clone()).await?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "etcd")]
        StoreSpec::Etcd(e) => {
            let store = etcd::EtcdStore::open(e, options.etcd.clone()).await?;
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "etcd"))]
        StoreSpec::Etcd(_) => Err(StoreError::Config {
            store: format!("etcd store {spec}"),
            problem: "the etcd backend is not in this build (built without the 'etcd' feature)"
                .to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn expect_semantics() {
        let a = ConfigDigest::of("a");
        let b = ConfigDigest::of("b");
        assert!(Expect::Any.check("d", None).is_ok());
        assert!(Expect::Any.check("d", Some(&a)).is_ok());
        assert!(Expect::Absent.check("d", None).is_ok());
        assert!(matches!(
            Expect::Absent.check("d", Some(&a)),
            Err(StoreError::Conflict { doc }) if doc == "d"
        ));
        assert!(Expect::Digest(a).check("d", Some(&a)).is_ok());
        assert!(Expect::Digest(a).check("d", Some(&b)).is_err());
        assert!(Expect::Digest(a).check("d", None).is_err());
    }

    #[test]
    fn trait_is_object_safe() {
        fn _takes(_: Arc<dyn ClusterStore>) {}
    }
}
