//! Forgetting a departed node ([`remove_node`]): its membership record and every value it
//! published go, so its column leaves the status matrix.
//!
//! Refused while the node shows signs of life (a live membership; in a standalone store, a
//! fresh broadcast): its agent would publish everything again at once. `force` removes it
//! anyway.

use mpcluster_core::NodeName;
use mpcluster_core::status::assemble;
use mpcluster_store::{ClusterStore, StoreError};
use serde::Serialize;

use crate::snapshot::read_snapshot;
use crate::unix_now;

/// A node that was forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Removed {
    /// The node.
    pub node: NodeName,
    /// Whether it was online when it was removed (only with `force`): its agent, if still
    /// running, publishes again and the node reappears.
    #[serde(rename = "was-online")]
    pub was_online: bool,
}

/// Why a node was not removed. Nothing was removed in any case.
#[derive(Debug, thiserror::Error)]
pub enum RemoveNodeError {
    /// The node is online; removing it needs `force`.
    #[error("node {node} is online ({detail}); stop its agent first, or force")]
    Online {
        /// The node.
        node: NodeName,
        /// Why it counts as online, e.g. `last broadcast 12 s ago`.
        detail: String,
    },
    /// Nothing is stored about the node.
    #[error("nothing is known about node '{node}' (not a cluster member, nothing published by it)")]
    Unknown {
        /// The node.
        node: NodeName,
    },
    /// The cluster store failed.
    #[error("cannot remove node '{node}' from the cluster store")]
    Store {
        /// The node.
        node: NodeName,
        /// The store's error.
        #[source]
        source: StoreError,
    },
}

/// Remove `node`'s membership record and every value it published, unless it is online
/// (then [`RemoveNodeError::Online`], unless `force`). [`RemoveNodeError::Unknown`] when
/// nothing is stored about it.
pub async fn remove_node(
    store: &dyn ClusterStore,
    node: &NodeName,
    force: bool,
) -> Result<Removed, RemoveNodeError> {
    let store_err = |source| RemoveNodeError::Store {
        node: node.clone(),
        source,
    };
    let now = unix_now();
    let read = read_snapshot(store, now, None, None, None)
        .await
        .map_err(store_err)?;
    let overview = assemble(&read.snapshot)
        .node_overview
        .into_iter()
        .find(|o| o.node == *node);
    // Signs of life: a live membership (its agent keeps the lease alive), or, in a standalone
    // store (no membership), a fresh broadcast. (The status's `online` is not used: in a
    // standalone store it also holds for a node that only a storage expects.)
    let online = overview.as_ref().and_then(|o| {
        let age = o.last_broadcast.map(|t| now.saturating_sub(t).max(0));
        match (o.member, age) {
            (Some(true), None) => Some("a live cluster member, no broadcast yet".to_owned()),
            (Some(true), Some(age)) => Some(format!("last broadcast {age} s ago")),
            (None, Some(age)) if !o.stale => Some(format!("last broadcast {age} s ago")),
            _ => None,
        }
    });
    if let Some(detail) = &online
        && !force
    {
        return Err(RemoveNodeError::Online {
            node: node.clone(),
            detail: detail.clone(),
        });
    }
    if !store.forget_node(node).await.map_err(store_err)? {
        return Err(RemoveNodeError::Unknown { node: node.clone() });
    }
    // Its acceptance of an apply plan goes with it (a node that rejoins under the same name
    // must be accepted again).
    if let Err(e) = crate::plan::forget_acceptance(store, node).await {
        tracing::warn!(node = %node, error = %mpcluster_core::error_chain(&e), "cannot forget the node's apply acceptance");
    }
    let summary = match &online {
        Some(detail) => format!("node {node} removed (forced while online: {detail})"),
        None => format!("node {node} removed"),
    };
    crate::events::audit(store, "node", None, None, &[summary]).await;
    Ok(Removed {
        node: node.clone(),
        was_online: online.is_some(),
    })
}
