//! Membership on etcd: a lease per joined node and the task keeping it alive.
//!
//! `join` grants a lease with the TTL and, in one transaction, writes `nodes/<node>` (the
//! permanent "known node" entry) and `members/<node>` bound to the lease. The task renews
//! the lease every TTL/3 through the endpoint pool (so it follows failover), re-joins with a
//! new lease if the old one expired while etcd was unreachable, and on `leave` revokes the
//! lease, which deletes `members/<node>` at once.

use std::sync::Arc;
use std::time::Duration;

use mpcluster_core::NodeName;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tonic::Code;
use tracing::{debug, info, warn};

use super::keys::Keys;
use super::pool::Pool;
use super::rpc::{RpcError, op_put, pb::etcdserverpb::TxnRequest};
use crate::membership::LeaveRequest;
use crate::{MembershipHandle, StoreError};

/// Warn about failing keep-alives at most this often.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// etcd lease TTLs are whole seconds; round up, at least 1 s (etcd raises very short TTLs to
/// its minimum, 1.5 election timeouts, by itself).
fn ttl_seconds(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

/// Grant a lease and write the membership keys; returns the lease id.
async fn register(pool: &Pool, keys: &Keys, node: &NodeName, ttl: i64) -> Result<i64, StoreError> {
    let lease = pool
        .call("grant membership lease", |c| async move {
            c.lease_grant(ttl).await
        })
        .await?
        .value;
    let txn = TxnRequest {
        success: vec![
            op_put(&keys.node(node), b"{}", 0),
            op_put(
                &keys.member(node),
                format!("{{\"lease\":\"{lease:x}\"}}").as_bytes(),
                lease,
            ),
        ],
        ..TxnRequest::default()
    };
    pool.call("join", |c| {
        let txn = txn.clone();
        async move { c.txn(txn).await }
    })
    .await?;
    Ok(lease)
}

/// Revoke the lease; an already expired lease is fine.
async fn revoke(pool: &Pool, lease: i64) -> Result<(), StoreError> {
    pool.call("leave (revoke membership lease)", |c| async move {
        match c.lease_revoke(lease).await {
            Ok(()) => Ok(()),
            Err(RpcError::Status(s)) if s.code() == Code::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    })
    .await
    .map(|_| ())
}

/// Join `node` and start its keep-alive task on `runtime`.
pub(crate) async fn join(
    pool: Arc<Pool>,
    keys: Keys,
    node: NodeName,
    ttl: Duration,
    runtime: &tokio::runtime::Handle,
) -> Result<MembershipHandle, StoreError> {
    let ttl = ttl_seconds(ttl);
    let lease = register(&pool, &keys, &node, ttl).await?;
    let (leave_tx, leave_rx) = oneshot::channel();
    let (alive_tx, alive_rx) = watch::channel(true);
    let store = pool.store().to_owned();
    let task = runtime.spawn(keep_alive(
        pool,
        keys,
        node.clone(),
        ttl,
        lease,
        leave_rx,
        alive_tx,
    ));
    Ok(MembershipHandle::with_task(
        node, store, leave_tx, task, alive_rx,
    ))
}

async fn keep_alive(
    pool: Arc<Pool>,
    keys: Keys,
    node: NodeName,
    ttl: i64,
    mut lease: i64,
    mut leave_rx: oneshot::Receiver<LeaveRequest>,
    alive: watch::Sender<bool>,
) {
    let period = Duration::from_millis(u64::try_from(ttl * 1000 / 3).unwrap_or(1000).max(200));
    let mut last_warn: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            req = &mut leave_rx => {
                if let Ok(reply) = req {
                    let _ = reply.send(revoke(&pool, lease).await);
                }
                return;
            }
            _ = tokio::time::sleep(period) => {}
        }
        // Opening a keep-alive stream sends one keep-alive and reads its answer; that is all
        // we need per period (and a fresh stream follows endpoint failover).
        let renewed = pool
            .call("membership keep-alive", |c| async move {
                match c.lease_keep_alive_once(lease).await {
                    Ok(_) => Ok(true),
                    // etcd answered TTL 0: the lease is gone.
                    Err(RpcError::LeaseExpired { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await;
        let result = match renewed {
            Ok(o) if o.value => Ok(()),
            Ok(_) => {
                // The lease expired (etcd unreachable for longer than the TTL): join again.
                info!(node = %node, "membership lease expired; joining again");
                register(&pool, &keys, &node, ttl).await.map(|l| lease = l)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                alive.send_replace(true);
                last_warn = None;
            }
            Err(e) => {
                alive.send_replace(false);
                if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    warn!(node = %node, error = &e as &dyn std::error::Error, "membership keep-alive failed; retrying");
                    last_warn = Some(Instant::now());
                } else {
                    debug!(node = %node, error = %e, "membership keep-alive still failing");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ttl_rounds_up() {
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(2000)), 2);
        assert_eq!(ttl_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(ttl_seconds(Duration::from_secs(15)), 15);
    }
}
