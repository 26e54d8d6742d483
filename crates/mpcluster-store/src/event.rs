//! Change notifications: [`StoreEvent`] and the receiving end, [`StoreSubscription`].
//!
//! Events are hints ("this changed, re-read it"), not the data itself: a subscriber re-reads
//! what an event names. They may be duplicated (an embedded store sees its own writes both
//! directly and through polling) but a change is never silently dropped: when events may have
//! been missed (a lagging receiver, a reconnect of the etcd watch) the subscriber gets
//! [`StoreEvent::Resync`], meaning "re-read everything".

use mpcluster_core::NodeName;
use tokio::sync::broadcast;

/// Capacity of each backend's event channel. A receiver more than this many events behind
/// gets [`StoreEvent::Resync`] instead of the events it missed.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// One change notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoreEvent {
    /// A node KV value was set, changed or deleted.
    NodeKv {
        /// The node KV key.
        key: String,
        /// The node whose value changed.
        node: NodeName,
    },
    /// Membership changed (a node joined, left, or its lease expired).
    Members,
    /// A document was created, changed or deleted.
    Document {
        /// The document name.
        name: String,
    },
    /// Events may have been lost (watch reconnected, receiver lagged): re-read everything.
    Resync,
}

/// A subscription to a store's [`StoreEvent`]s, from
/// [`ClusterStore::subscribe`](crate::ClusterStore::subscribe).
///
/// Wraps a `tokio::sync::broadcast::Receiver` and turns "lagged" into [`StoreEvent::Resync`].
#[derive(Debug)]
pub struct StoreSubscription {
    rx: broadcast::Receiver<StoreEvent>,
}

impl StoreSubscription {
    /// Wrap a broadcast receiver (backends use this).
    pub fn new(rx: broadcast::Receiver<StoreEvent>) -> StoreSubscription {
        StoreSubscription { rx }
    }

    /// The next event; [`StoreEvent::Resync`] if this receiver fell behind and events were
    /// dropped; `None` once the store is gone.
    pub async fn recv(&mut self) -> Option<StoreEvent> {
        match self.rx.recv().await {
            Ok(ev) => Some(ev),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(StoreEvent::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is queued, without waiting. `None` if nothing is queued or the
    /// store is gone; lag becomes [`StoreEvent::Resync`] as in [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Option<StoreEvent> {
        match self.rx.try_recv() {
            Ok(ev) => Some(ev),
            Err(broadcast::error::TryRecvError::Lagged(_)) => Some(StoreEvent::Resync),
            Err(_) => None,
        }
    }

    /// The underlying broadcast receiver (lag is then the caller's to handle).
    pub fn into_inner(self) -> broadcast::Receiver<StoreEvent> {
        self.rx
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn lag_becomes_resync_and_close_ends() {
        let (tx, rx) = broadcast::channel(2);
        let mut sub = StoreSubscription::new(rx);
        for _ in 0..5 {
            tx.send(StoreEvent::Members).unwrap();
        }
        assert_eq!(sub.recv().await, Some(StoreEvent::Resync));
        assert_eq!(sub.recv().await, Some(StoreEvent::Members));
        assert_eq!(sub.try_recv(), Some(StoreEvent::Members));
        assert_eq!(sub.try_recv(), None);
        drop(tx);
        assert_eq!(sub.recv().await, None);
    }
}
