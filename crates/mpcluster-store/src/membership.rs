//! [`MembershipHandle`]: a node's live membership, kept alive by a background task.
//!
//! [`ClusterStore::join`](crate::ClusterStore::join) returns the handle. While it exists the
//! backend keeps the node online (etcd: lease keep-alive). [`MembershipHandle::leave`] ends
//! the membership at once (the node reads offline immediately). Dropping the handle without
//! `leave` only stops the keep-alive, so the node goes offline when its TTL runs out, exactly
//! like a crashed agent.

use mpcluster_core::NodeName;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::StoreError;

/// Sent to the keep-alive task to ask it to leave; it answers on the inner channel.
pub(crate) type LeaveRequest = oneshot::Sender<Result<(), StoreError>>;

/// A node's membership. While it exists the backend keeps the node online;
/// [`leave`](Self::leave) ends the membership at once; dropping it only stops the
/// keep-alive, so the node goes offline when its TTL runs out (like a crashed agent).
#[derive(Debug)]
pub struct MembershipHandle {
    node: NodeName,
    store: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Standalone stores have no membership, and stores whose membership is external
    /// (corosync) keep nothing alive themselves.
    Standalone,
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    Task {
        leave: Option<oneshot::Sender<LeaveRequest>>,
        task: Option<JoinHandle<()>>,
        alive: watch::Receiver<bool>,
    },
}

impl MembershipHandle {
    /// A handle for a standalone store (no task; `leave` does nothing).
    pub(crate) fn standalone(node: NodeName, store: String) -> MembershipHandle {
        MembershipHandle {
            node,
            store,
            kind: Kind::Standalone,
        }
    }

    /// A handle for a store whose membership is kept by someone else (the pve store:
    /// corosync): nothing to keep alive, `leave` does nothing, the node's liveness is
    /// whatever that membership says.
    pub(crate) fn external(node: NodeName, store: String) -> MembershipHandle {
        MembershipHandle::standalone(node, store)
    }

    /// A handle driving a keep-alive task. The task must answer a [`LeaveRequest`] received
    /// on `leave` after ending the membership, and publish on `alive` whether its last
    /// keep-alive succeeded.
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn with_task(
        node: NodeName,
        store: String,
        leave: oneshot::Sender<LeaveRequest>,
        task: JoinHandle<()>,
        alive: watch::Receiver<bool>,
    ) -> MembershipHandle {
        MembershipHandle {
            node,
            store,
            kind: Kind::Task {
                leave: Some(leave),
                task: Some(task),
                alive,
            },
        }
    }

    /// The node this membership is for.
    pub fn node(&self) -> &NodeName {
        &self.node
    }

    /// Whether the last keep-alive succeeded (always `true` for a standalone store or an
    /// external membership). `false`
    /// while the store is unreachable; the task keeps retrying and re-joins by itself.
    pub fn is_alive(&self) -> bool {
        match &self.kind {
            Kind::Standalone => true,
            Kind::Task { alive, .. } => *alive.borrow(),
        }
    }

    /// End the membership now: the node reads offline immediately. Its node KV values stay.
    pub async fn leave(mut self) -> Result<(), StoreError> {
        let Kind::Task { leave, task, .. } = &mut self.kind else {
            return Ok(());
        };
        let (reply_tx, reply_rx) = oneshot::channel();
        let sent = leave
            .take()
            .map(|l| l.send(reply_tx).is_ok())
            .unwrap_or(false);
        if sent && let Ok(result) = reply_rx.await {
            // The task ends right after answering; let it finish instead of aborting it.
            task.take();
            return result;
        }
        Err(StoreError::Unavailable {
            store: self.store.clone(),
            reason: format!(
                "the membership task of node '{}' is gone; its TTL will expire instead",
                self.node
            ),
            source: None,
        })
    }
}

impl Drop for MembershipHandle {
    fn drop(&mut self) {
        if let Kind::Task { task: Some(t), .. } = &mut self.kind {
            // Like a crashed agent: stop keeping alive, let the TTL expire.
            t.abort();
        }
    }
}
