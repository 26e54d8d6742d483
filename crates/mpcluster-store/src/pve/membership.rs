//! [`PveMembership`]: any store, with its membership replaced by corosync's (`.members` in
//! the pmxcfs root) — for `--membership pve`, e.g. etcd or the embedded store on a Proxmox
//! node, so that node names, membership and liveness are exactly the cluster's.
//!
//! Node values and documents are the wrapped store's. `members`, `is_standalone` and `join`
//! behave as the pve store's (see [`super`]): `join` keeps nothing alive and refuses a node
//! corosync does not list; the wrapped store is never joined. `forget_node` forgets in the
//! wrapped store (values, and a membership record if it keeps one); corosync's membership is
//! changed with `pvecm delnode`. Subscribers get the wrapped store's events, except its own
//! [`StoreEvent::Members`], plus [`StoreEvent::Members`] whenever `.members` says something
//! new (polled, as pmxcfs offers no notification).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mpcluster_core::NodeName;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::Member;
use tokio::sync::broadcast;

use super::members::{self, MEMBERS_FILE, PveMembers};
use crate::files::blocking;
use crate::{
    ClusterStore, EVENT_CHANNEL_CAPACITY, Expect, MembershipHandle, StoreError, StoreEvent,
    StoreSubscription,
};

/// A store whose membership is corosync's; see the [module docs](self).
pub struct PveMembership {
    inner: Arc<dyn ClusterStore>,
    members_file: PathBuf,
    describe: String,
    poll_interval: Duration,
    standalone: Arc<AtomicBool>,
}

impl std::fmt::Debug for PveMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PveMembership")
            .field("describe", &self.describe)
            .finish_non_exhaustive()
    }
}

impl PveMembership {
    /// Wrap `inner`, taking the membership from `<root>/.members` (`root` is `/etc/pve` on a
    /// Proxmox node), polled every `poll_interval` while someone is subscribed. Fails if the
    /// file is missing or malformed.
    pub async fn new(
        inner: Arc<dyn ClusterStore>,
        root: &Path,
        poll_interval: Duration,
    ) -> Result<PveMembership, StoreError> {
        let members_file = root.join(MEMBERS_FILE);
        let describe = format!(
            "{} (membership from {})",
            inner.describe(),
            members_file.display()
        );
        let standalone = Arc::new(AtomicBool::new(false));
        let (path, store, flag) = (members_file.clone(), describe.clone(), standalone.clone());
        blocking(&describe, move || {
            let m = PveMembers::read(&path, &store)?;
            flag.store(m.is_standalone(), Ordering::SeqCst);
            Ok(())
        })
        .await?;
        Ok(PveMembership {
            inner,
            members_file,
            describe,
            poll_interval,
            standalone,
        })
    }

    /// `.members` as it is now.
    pub async fn read_members(&self) -> Result<PveMembers, StoreError> {
        let (path, store, flag) = (
            self.members_file.clone(),
            self.describe.clone(),
            self.standalone.clone(),
        );
        blocking(&self.describe, move || {
            let m = PveMembers::read(&path, &store)?;
            flag.store(m.is_standalone(), Ordering::SeqCst);
            Ok(m)
        })
        .await
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn ClusterStore> {
        &self.inner
    }
}

#[async_trait::async_trait]
impl ClusterStore for PveMembership {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn is_standalone(&self) -> bool {
        self.standalone.load(Ordering::SeqCst)
    }

    async fn put(&self, key: &str, node: &NodeName, value: Option<&str>) -> Result<(), StoreError> {
        self.inner.put(key, node, value).await
    }

    async fn get_all(&self, key: &str) -> Result<BTreeMap<NodeName, String>, StoreError> {
        self.inner.get_all(key).await
    }

    async fn get(&self, key: &str, node: &NodeName) -> Result<Option<String>, StoreError> {
        self.inner.get(key, node).await
    }

    async fn members(&self) -> Result<BTreeMap<NodeName, Member>, StoreError> {
        Ok(self.read_members().await?.members())
    }

    async fn join(&self, node: &NodeName, _ttl: Duration) -> Result<MembershipHandle, StoreError> {
        self.read_members()
            .await?
            .check_join(node, &self.members_file)?;
        Ok(MembershipHandle::external(
            node.clone(),
            self.describe.clone(),
        ))
    }

    async fn forget_node(&self, node: &NodeName) -> Result<bool, StoreError> {
        self.inner.forget_node(node).await
    }

    async fn read_doc(&self, name: &str) -> Result<Option<(String, ConfigDigest)>, StoreError> {
        self.inner.read_doc(name).await
    }

    async fn write_doc(
        &self,
        name: &str,
        content: &str,
        expected: Expect,
    ) -> Result<ConfigDigest, StoreError> {
        self.inner.write_doc(name, content, expected).await
    }

    async fn delete_doc(&self, name: &str, expected: Expect) -> Result<bool, StoreError> {
        self.inner.delete_doc(name, expected).await
    }

    async fn subscribe(&self) -> StoreSubscription {
        // One forwarding task per subscription: the wrapped store's events (subscribed before
        // this returns, so nothing made after it is missed) and `.members` changes.
        let mut from_inner = self.inner.subscribe().await;
        let (tx, rx) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let (path, store, flag) = (
            self.members_file.clone(),
            self.describe.clone(),
            self.standalone.clone(),
        );
        let fingerprint = move || {
            let (path, store, flag) = (path.clone(), store.clone(), flag.clone());
            async move {
                blocking(&store.clone(), move || {
                    Ok(members::fingerprint(&path, &store, &flag))
                })
                .await
                .ok()
            }
        };
        let mut known = fingerprint().await;
        let period = self.poll_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    ev = from_inner.recv() => match ev {
                        None => break,
                        // The wrapped store's membership is not the one readers see.
                        Some(StoreEvent::Members) => {}
                        Some(ev) => {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                    },
                    _ = tick.tick() => {
                        if tx.receiver_count() == 0 {
                            break;
                        }
                        let now = fingerprint().await;
                        if now.is_some() && now != known {
                            known = now;
                            if tx.send(StoreEvent::Members).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        StoreSubscription::new(rx)
    }
}
