//! [`InstrumentedStore`]: a [`ClusterStore`] that forwards every call to another and records
//! its duration and outcome per operation in [`Metrics`] (`mpcluster_store_request_*`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcluster_store::{
    ClusterStore, ConfigDigest, Expect, Member, MembershipHandle, NodeName, StoreError,
    StoreSubscription,
};

use super::Metrics;

/// A store operation, the `operation` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreOp {
    Put,
    GetAll,
    Get,
    Members,
    Join,
    ForgetNode,
    ReadDoc,
    WriteDoc,
    DeleteDoc,
    Subscribe,
}

impl StoreOp {
    pub(crate) const ALL: [StoreOp; 10] = [
        StoreOp::Put,
        StoreOp::GetAll,
        StoreOp::Get,
        StoreOp::Members,
        StoreOp::Join,
        StoreOp::ForgetNode,
        StoreOp::ReadDoc,
        StoreOp::WriteDoc,
        StoreOp::DeleteDoc,
        StoreOp::Subscribe,
    ];

    /// The label value (the trait method's name).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StoreOp::Put => "put",
            StoreOp::GetAll => "get_all",
            StoreOp::Get => "get",
            StoreOp::Members => "members",
            StoreOp::Join => "join",
            StoreOp::ForgetNode => "forget_node",
            StoreOp::ReadDoc => "read_doc",
            StoreOp::WriteDoc => "write_doc",
            StoreOp::DeleteDoc => "delete_doc",
            StoreOp::Subscribe => "subscribe",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The `error` label values: one per [`StoreError`] variant, and `cancelled` for a request
/// whose caller stopped waiting (a timeout around the call).
pub(crate) const ERROR_KINDS: [&str; 11] = [
    "unavailable",
    "conflict",
    "value_too_large",
    "document_too_large",
    "invalid_name",
    "auth",
    "not_member",
    "io",
    "corrupt",
    "config",
    "cancelled",
];

/// Index of `cancelled` in [`ERROR_KINDS`].
pub(crate) const CANCELLED: usize = 10;

/// The index in [`ERROR_KINDS`] of an error (exhaustive: a new variant needs a label).
pub(crate) fn error_kind(e: &StoreError) -> usize {
    match e {
        StoreError::Unavailable { .. } => 0,
        StoreError::Conflict { .. } => 1,
        StoreError::ValueTooLarge { .. } => 2,
        StoreError::DocumentTooLarge { .. } => 3,
        StoreError::InvalidName { .. } => 4,
        StoreError::Auth { .. } => 5,
        StoreError::NotMember { .. } => 6,
        StoreError::Io { .. } => 7,
        StoreError::Corrupt { .. } => 8,
        StoreError::Config { .. } => 9,
    }
}

/// Records one request when dropped: its outcome if it finished, `cancelled` if its future
/// was dropped before (so a store that hangs past the callers' timeouts still shows).
struct Timing<'a> {
    metrics: &'a Metrics,
    op: StoreOp,
    start: Instant,
    outcome: Option<Option<usize>>,
}

impl Timing<'_> {
    fn finish<T>(mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        self.outcome = Some(r.as_ref().err().map(error_kind));
        r
    }

    /// A call that cannot fail finished.
    fn done(mut self) {
        self.outcome = Some(None);
    }
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        let error = self.outcome.unwrap_or(Some(CANCELLED));
        self.metrics
            .store_request(self.op, self.start.elapsed(), error);
    }
}

/// A [`ClusterStore`] that measures every call of another ([`Metrics::instrument`]). It
/// forwards each trait method to the same method of the inner store (the provided ones too,
/// so a backend's own `get` and `forget_node` are used).
pub struct InstrumentedStore {
    inner: Arc<dyn ClusterStore>,
    metrics: Metrics,
}

impl InstrumentedStore {
    /// Measure `inner` into `metrics`.
    pub fn new(inner: Arc<dyn ClusterStore>, metrics: Metrics) -> InstrumentedStore {
        InstrumentedStore { inner, metrics }
    }

    fn start(&self, op: StoreOp) -> Timing<'_> {
        Timing {
            metrics: &self.metrics,
            op,
            start: Instant::now(),
            outcome: None,
        }
    }
}

#[async_trait::async_trait]
impl ClusterStore for InstrumentedStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn is_standalone(&self) -> bool {
        self.inner.is_standalone()
    }

    async fn put(&self, key: &str, node: &NodeName, value: Option<&str>) -> Result<(), StoreError> {
        let t = self.start(StoreOp::Put);
        t.finish(self.inner.put(key, node, value).await)
    }

    async fn get_all(&self, key: &str) -> Result<BTreeMap<NodeName, String>, StoreError> {
        let t = self.start(StoreOp::GetAll);
        t.finish(self.inner.get_all(key).await)
    }

    async fn get(&self, key: &str, node: &NodeName) -> Result<Option<String>, StoreError> {
        let t = self.start(StoreOp::Get);
        t.finish(self.inner.get(key, node).await)
    }

    async fn members(&self) -> Result<BTreeMap<NodeName, Member>, StoreError> {
        let t = self.start(StoreOp::Members);
        t.finish(self.inner.members().await)
    }

    async fn join(&self, node: &NodeName, ttl: Duration) -> Result<MembershipHandle, StoreError> {
        let t = self.start(StoreOp::Join);
        t.finish(self.inner.join(node, ttl).await)
    }

    async fn forget_node(&self, node: &NodeName) -> Result<bool, StoreError> {
        let t = self.start(StoreOp::ForgetNode);
        t.finish(self.inner.forget_node(node).await)
    }

    async fn read_doc(&self, name: &str) -> Result<Option<(String, ConfigDigest)>, StoreError> {
        let t = self.start(StoreOp::ReadDoc);
        t.finish(self.inner.read_doc(name).await)
    }

    async fn write_doc(
        &self,
        name: &str,
        content: &str,
        expected: Expect,
    ) -> Result<ConfigDigest, StoreError> {
        let t = self.start(StoreOp::WriteDoc);
        t.finish(self.inner.write_doc(name, content, expected).await)
    }

    async fn delete_doc(&self, name: &str, expected: Expect) -> Result<bool, StoreError> {
        let t = self.start(StoreOp::DeleteDoc);
        t.finish(self.inner.delete_doc(name, expected).await)
    }

    async fn subscribe(&self) -> StoreSubscription {
        let t = self.start(StoreOp::Subscribe);
        let sub = self.inner.subscribe().await;
        t.done();
        sub
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn op_indices_follow_all() {
        for (i, op) in super::StoreOp::ALL.iter().enumerate() {
            assert_eq!(op.index(), i, "{}", op.as_str());
        }
        assert_eq!(super::ERROR_KINDS[super::CANCELLED], "cancelled");
    }
}
