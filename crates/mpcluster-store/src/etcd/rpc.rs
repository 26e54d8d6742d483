//! Our thin etcd v3 gRPC client: [`EtcdClient`], one per endpoint, over the stubs `build.rs`
//! generates from the trimmed protos in `proto/` ([`pb`]).
//!
//! Why our own and not the `etcd-client` crate: its build script needs `protoc` and the system
//! protobuf includes, which a fresh Debian machine lacks; and the backend uses a dozen RPCs of
//! a stable API. See ARCHITECTURE.md ("Why our own etcd client").
//!
//! What it does beyond the generated stubs:
//! - a lazily connected tonic `Channel` per endpoint (nothing touches the network until the
//!   first request), HTTP/2 keep-alive pings, TLS through rustls with `ring`;
//! - every request carries `hasleader: true` (etcd then refuses with "no leader" instead of
//!   hanging on a member cut off from the quorum) and, with credentials, the auth `token`;
//! - authentication: the token is fetched with `Authenticate` before the first request; when
//!   etcd answers "invalid auth token" (expired, or etcd restarted), the token is fetched again
//!   once (concurrent requests share one refresh) and the request is sent again;
//! - the two streaming calls the backend needs, as one-shot helpers: one lease keep-alive per
//!   stream ([`EtcdClient::lease_keep_alive_once`]) and a watch that has been confirmed by etcd
//!   ([`EtcdClient::watch`]).
//!
//! Range streaming (etcd 3.7 `RangeStream`) is deliberately absent: etcd 3.4 lacks it; callers
//! paginate with `limit`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_stream::StreamExt as _;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use crate::Secret;

/// The generated etcd API: messages and client stubs (no servers).
#[allow(
    dead_code,
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic
)]
pub(crate) mod pb {
    pub(crate) mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    pub(crate) mod authpb {
        tonic::include_proto!("authpb");
    }
    pub(crate) mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
}

use pb::etcdserverpb::auth_client::AuthClient;
use pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use pb::etcdserverpb::kv_client::KvClient;
use pb::etcdserverpb::lease_client::LeaseClient;
use pb::etcdserverpb::request_op::Request as Op;
use pb::etcdserverpb::watch_client::WatchClient;
use pb::etcdserverpb::{
    AuthenticateRequest, Compare, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest,
    LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest,
    WatchResponse, watch_request,
};

/// Largest gRPC message accepted from etcd (a range page of `multipath-detail` values, a
/// fragment of a watch response).
pub(crate) const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// HTTP/2 pings find dead connections under a long-lived watch; etcd refuses pings more often
/// than every 5 s.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Refusals that a fresh token cures: an expired or unknown token
/// (`rpctypes.ErrGRPCInvalidAuthToken`; also after etcd restarted and forgot its simple
/// tokens) and a token issued before users or roles changed (`ErrGRPCAuthOldRevision`).
const REFRESH_TOKEN_ON: [&str; 2] = [
    "etcdserver: invalid auth token",
    "etcdserver: revision of auth store is old",
];

/// Why an etcd request failed. [`pool`](super::pool) decides from this whether to try the
/// next endpoint, report bad credentials, or give up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RpcError {
    /// The endpoint URL or TLS settings cannot be used (found when building the client).
    #[error("cannot use etcd endpoint {url}")]
    Endpoint {
        /// The endpoint URL.
        url: String,
        /// What the transport said.
        #[source]
        source: tonic::transport::Error,
    },
    /// The request failed with a gRPC status: etcd's answer, or the transport's (connection
    /// refused, TLS handshake, broken connection: `Unavailable`; ping timeout: `Cancelled`).
    #[error(transparent)]
    Status(#[from] Status),
    /// A keep-alive was answered with TTL 0: the lease does not exist (any more).
    #[error("lease {id:x} expired or is unknown (keep-alive answered TTL 0)")]
    LeaseExpired {
        /// The lease.
        id: i64,
    },
    /// A streaming call ended before etcd answered (watch not confirmed, keep-alive not
    /// answered).
    #[error("etcd {call} stream ended without an answer")]
    StreamEnded {
        /// `watch` or `lease keep-alive`.
        call: &'static str,
    },
    /// `Authenticate` returned a token that cannot be sent as gRPC metadata.
    #[error("etcd returned an authentication token that is not valid ASCII metadata")]
    BadToken,
}

/// `true` if etcd refused the request's token in a way a new token cures: worth one
/// re-authentication. etcd answers an invalid token with `Unauthenticated`; services built on
/// etcd's in-process client lose the code and keep the message (`Unknown`); an outdated token
/// is `InvalidArgument`.
fn is_invalid_token(e: &RpcError) -> bool {
    match e {
        RpcError::Status(s) => {
            s.code() == Code::Unauthenticated || REFRESH_TOKEN_ON.contains(&s.message())
        }
        _ => false,
    }
}

/// How to reach one endpoint.
#[derive(Clone, Debug)]
pub(crate) struct ClientOptions {
    /// TCP (and TLS) connect timeout.
    pub(crate) connect_timeout: Duration,
    /// TLS settings for `https://` endpoints.
    pub(crate) tls: Option<ClientTlsConfig>,
    /// User and password when etcd authentication is enabled.
    pub(crate) credentials: Option<(String, Secret)>,
}

/// Adds `hasleader` and, when there is one, the auth token to every request.
#[derive(Clone)]
pub(crate) struct Metadata {
    /// `None` for `Authenticate` itself.
    token: Option<Arc<RwLock<Option<AsciiMetadataValue>>>>,
}

impl Interceptor for Metadata {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let md = req.metadata_mut();
        md.insert("hasleader", AsciiMetadataValue::from_static("true"));
        if let Some(token) = &self.token {
            let token = token.read().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(t) = token {
                md.insert("token", t);
            }
        }
        Ok(req)
    }
}

type Service = InterceptedService<Channel, Metadata>;

/// A client of one etcd endpoint; see the [module docs](self). Cheap to clone (shared channel
/// and token).
#[derive(Clone)]
pub(crate) struct EtcdClient {
    channel: Channel,
    credentials: Option<Arc<(String, Secret)>>,
    token: Arc<RwLock<Option<AsciiMetadataValue>>>,
    /// Serializes token refreshes, so concurrent requests that find the token expired
    /// authenticate once.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// Number of successful `Authenticate` calls (tests).
    authentications: Arc<AtomicU64>,
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdClient")
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

impl EtcdClient {
    /// A client for `url` (`http://host:port` or `https://host:port`). Does not connect: the
    /// channel connects on the first request and reconnects after failures. Must be called
    /// within a Tokio runtime.
    pub(crate) fn new(url: &str, options: &ClientOptions) -> Result<EtcdClient, RpcError> {
        let bad = |source| RpcError::Endpoint {
            url: url.to_owned(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(bad)?
            .connect_timeout(options.connect_timeout)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        if let Some(tls) = &options.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(bad)?;
        }
        Ok(EtcdClient {
            channel: endpoint.connect_lazy(),
            credentials: options.credentials.clone().map(Arc::new),
            token: Arc::new(RwLock::new(None)),
            refresh: Arc::new(tokio::sync::Mutex::new(())),
            authentications: Arc::new(AtomicU64::new(0)),
        })
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            token: Some(self.token.clone()),
        }
    }

    fn kv(&self) -> KvClient<Service> {
        KvClient::with_interceptor(self.channel.clone(), self.metadata())
            .max_decoding_message_size(MAX_MESSAGE)
    }

    fn lease(&self) -> LeaseClient<Service> {
        LeaseClient::with_interceptor(self.channel.clone(), self.metadata())
    }

    fn watch_client(&self) -> WatchClient<Service> {
        WatchClient::with_interceptor(self.channel.clone(), self.metadata())
            .max_decoding_message_size(MAX_MESSAGE)
    }

    #[cfg(feature = "testing")]
    fn auth(&self) -> AuthClient<Service> {
        AuthClient::with_interceptor(self.channel.clone(), self.metadata())
    }

    fn current_token(&self) -> Option<AsciiMetadataValue> {
        self.token.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_token(&self, token: Option<AsciiMetadataValue>) {
        *self.token.write().unwrap_or_else(|p| p.into_inner()) = token;
    }

    /// With credentials and no token yet: authenticate. Otherwise nothing.
    pub(crate) async fn ensure_authenticated(&self) -> Result<(), RpcError> {
        if self.credentials.is_none() || self.current_token().is_some() {
            return Ok(());
        }
        self.refresh_token(None).await
    }

    /// Fetch a new token unless the current one is not `stale` any more (a concurrent request
    /// refreshed it meanwhile). On failure the token is dropped, so the next request
    /// authenticates first.
    async fn refresh_token(&self, stale: Option<AsciiMetadataValue>) -> Result<(), RpcError> {
        let Some(creds) = &self.credentials else {
            return Ok(());
        };
        let _one_at_a_time = self.refresh.lock().await;
        if self.current_token() != stale {
            return Ok(());
        }
        // `Authenticate` goes without a token.
        let mut auth = AuthClient::with_interceptor(self.channel.clone(), Metadata { token: None });
        let answer = auth
            .authenticate(AuthenticateRequest {
                name: creds.0.clone(),
                password: creds.1.expose().to_owned(),
            })
            .await;
        match answer {
            Ok(resp) => {
                let token = AsciiMetadataValue::try_from(resp.into_inner().token)
                    .map_err(|_| RpcError::BadToken)?;
                self.set_token(Some(token));
                self.authentications.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(status) => {
                self.set_token(None);
                Err(RpcError::Status(status))
            }
        }
    }

    /// Run `request` (which may run twice): authenticate first if needed; if etcd refuses the
    /// token as invalid, re-authenticate once and send the request again. A refused token
    /// means the request was not applied, so sending it again is safe.
    async fn call<T, F, Fut>(&self, mut request: F) -> Result<T, RpcError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RpcError>>,
    {
        self.ensure_authenticated().await?;
        let sent_with = self.current_token();
        match request().await {
            Err(e) if self.credentials.is_some() && is_invalid_token(&e) => {
                self.refresh_token(sent_with).await?;
                request().await
            }
            other => other,
        }
    }

    /// `KV.Range`.
    pub(crate) async fn range(&self, req: RangeRequest) -> Result<RangeResponse, RpcError> {
        self.call(|| {
            let (mut c, req) = (self.kv(), req.clone());
            async move { Ok(c.range(req).await?.into_inner()) }
        })
        .await
    }

    /// `KV.Put`.
    pub(crate) async fn put(&self, req: PutRequest) -> Result<PutResponse, RpcError> {
        self.call(|| {
            let (mut c, req) = (self.kv(), req.clone());
            async move { Ok(c.put(req).await?.into_inner()) }
        })
        .await
    }

    /// `KV.DeleteRange`.
    pub(crate) async fn delete_range(
        &self,
        req: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, RpcError> {
        self.call(|| {
            let (mut c, req) = (self.kv(), req.clone());
            async move { Ok(c.delete_range(req).await?.into_inner()) }
        })
        .await
    }

    /// `KV.Txn`.
    pub(crate) async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, RpcError> {
        self.call(|| {
            let (mut c, req) = (self.kv(), req.clone());
            async move { Ok(c.txn(req).await?.into_inner()) }
        })
        .await
    }

    /// `Lease.LeaseGrant` with `ttl` seconds; the new lease's id.
    pub(crate) async fn lease_grant(&self, ttl: i64) -> Result<i64, RpcError> {
        self.call(|| {
            let mut c = self.lease();
            async move {
                let req = LeaseGrantRequest { ttl, id: 0 };
                Ok(c.lease_grant(req).await?.into_inner().id)
            }
        })
        .await
    }

    /// `Lease.LeaseRevoke`. An unknown lease is a `NotFound` status.
    pub(crate) async fn lease_revoke(&self, id: i64) -> Result<(), RpcError> {
        self.call(|| {
            let mut c = self.lease();
            async move {
                c.lease_revoke(LeaseRevokeRequest { id }).await?;
                Ok(())
            }
        })
        .await
    }

    /// One `Lease.LeaseKeepAlive` over a fresh stream: send one keep-alive, read its answer,
    /// close. Returns the new TTL; [`RpcError::LeaseExpired`] if etcd answered TTL 0.
    pub(crate) async fn lease_keep_alive_once(&self, id: i64) -> Result<i64, RpcError> {
        let ttl = self
            .call(|| {
                let mut c = self.lease();
                async move {
                    // Keep the request side open until the answer is read: etcd ends the call
                    // when it reads the end of the request stream.
                    let requests = tokio_stream::once(LeaseKeepAliveRequest { id })
                        .chain(tokio_stream::pending());
                    let mut answers = c.lease_keep_alive(requests).await?.into_inner();
                    match answers.message().await? {
                        Some(resp) => Ok(resp.ttl),
                        None => Err(RpcError::StreamEnded {
                            call: "lease keep-alive",
                        }),
                    }
                }
            })
            .await?;
        if ttl <= 0 {
            return Err(RpcError::LeaseExpired { id });
        }
        Ok(ttl)
    }

    /// Open a `Watch` stream with one watcher, `create`, and wait for etcd's first answer
    /// (normally `created`; `canceled` if refused or compacted). The stream yields that answer
    /// first.
    pub(crate) async fn watch(&self, create: WatchCreateRequest) -> Result<WatchStream, RpcError> {
        self.call(|| {
            let (mut c, create) = (self.watch_client(), create.clone());
            async move {
                let req = WatchRequest {
                    request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
                };
                // Never ends: closing the request side would not cancel the watch anyway, and
                // dropping the stream ends the call.
                let requests = tokio_stream::once(req).chain(tokio_stream::pending());
                let mut inner = c.watch(requests).await?.into_inner();
                match inner.message().await? {
                    Some(first) => Ok(WatchStream {
                        first: Some(first),
                        inner,
                    }),
                    None => Err(RpcError::StreamEnded { call: "watch" }),
                }
            }
        })
        .await
    }

    /// Successful authentications so far.
    #[cfg(test)]
    pub(crate) fn authentications(&self) -> u64 {
        self.authentications.load(Ordering::Relaxed)
    }

    /// Replace the token (tests: simulate an expired one).
    #[cfg(test)]
    pub(crate) fn force_token(&self, token: &str) {
        self.set_token(AsciiMetadataValue::try_from(token).ok());
    }
}

/// Administration used by the test support to enable authentication.
#[cfg(feature = "testing")]
impl EtcdClient {
    /// `Auth.UserAdd` with a password.
    pub(crate) async fn user_add(&self, name: &str, password: &str) -> Result<(), RpcError> {
        use pb::etcdserverpb::AuthUserAddRequest;
        self.call(|| {
            let mut c = self.auth();
            let req = AuthUserAddRequest {
                name: name.to_owned(),
                password: password.to_owned(),
                ..AuthUserAddRequest::default()
            };
            async move {
                c.user_add(req).await?;
                Ok(())
            }
        })
        .await
    }

    /// `Auth.UserGrantRole`.
    pub(crate) async fn user_grant_role(&self, user: &str, role: &str) -> Result<(), RpcError> {
        use pb::etcdserverpb::AuthUserGrantRoleRequest;
        self.call(|| {
            let mut c = self.auth();
            let req = AuthUserGrantRoleRequest {
                user: user.to_owned(),
                role: role.to_owned(),
            };
            async move {
                c.user_grant_role(req).await?;
                Ok(())
            }
        })
        .await
    }

    /// `Auth.AuthEnable` (needs a user `root` with role `root`).
    pub(crate) async fn auth_enable(&self) -> Result<(), RpcError> {
        use pb::etcdserverpb::AuthEnableRequest;
        self.call(|| {
            let mut c = self.auth();
            async move {
                c.auth_enable(AuthEnableRequest {}).await?;
                Ok(())
            }
        })
        .await
    }
}

/// A confirmed watch ([`EtcdClient::watch`]). Dropping it ends the watch.
pub(crate) struct WatchStream {
    first: Option<WatchResponse>,
    inner: tonic::Streaming<WatchResponse>,
}

impl WatchStream {
    /// The next answer; `Ok(None)` when etcd ended the stream.
    pub(crate) async fn message(&mut self) -> Result<Option<WatchResponse>, RpcError> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        Ok(self.inner.message().await?)
    }
}

// Request builders for the calls the backend makes.

/// Every key starting with `prefix` (etcd's `range_end` convention).
pub(crate) fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    (prefix.as_bytes().to_vec(), super::keys::prefix_end(prefix))
}

/// Compare: `key`'s value equals `value` (false for a missing key).
pub(crate) fn value_equals(key: &str, value: &str) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Value as i32,
        key: key.as_bytes().to_vec(),
        target_union: Some(TargetUnion::Value(value.as_bytes().to_vec())),
        range_end: Vec::new(),
    }
}

/// Compare: `key`'s `create_revision` equals `revision` (0: the key does not exist).
pub(crate) fn create_revision_equals(key: &str, revision: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.as_bytes().to_vec(),
        target_union: Some(TargetUnion::CreateRevision(revision)),
        range_end: Vec::new(),
    }
}

/// Compare: `key`'s `mod_revision` equals `revision`.
pub(crate) fn mod_revision_equals(key: &str, revision: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Mod as i32,
        key: key.as_bytes().to_vec(),
        target_union: Some(TargetUnion::ModRevision(revision)),
        range_end: Vec::new(),
    }
}

/// Compare: no key in `[key, range_end)` was modified after `revision`.
pub(crate) fn unchanged_since(key: &[u8], range_end: &[u8], revision: i64) -> Compare {
    Compare {
        result: CompareResult::Less as i32,
        target: CompareTarget::Mod as i32,
        key: key.to_vec(),
        target_union: Some(TargetUnion::ModRevision(revision + 1)),
        range_end: range_end.to_vec(),
    }
}

/// Put request for `key` (bound to `lease` unless 0).
pub(crate) fn put_request(key: &str, value: &[u8], lease: i64) -> PutRequest {
    PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.to_vec(),
        lease,
        ..PutRequest::default()
    }
}

/// Transaction op: put.
pub(crate) fn op_put(key: &str, value: &[u8], lease: i64) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestPut(put_request(key, value, lease))),
    }
}

/// Transaction op: delete `key`, or the range `[key, range_end)` if `range_end` is not empty.
pub(crate) fn op_delete(key: &[u8], range_end: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            prev_kv: false,
        })),
    }
}

/// Transaction op: the keys (no values) starting with `prefix`.
pub(crate) fn op_keys_with_prefix(prefix: &str) -> RequestOp {
    let (key, range_end) = prefix_range(prefix);
    RequestOp {
        request: Some(Op::RequestRange(RangeRequest {
            key,
            range_end,
            keys_only: true,
            ..RangeRequest::default()
        })),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn invalid_token_is_recognized() {
        let [invalid, old] = REFRESH_TOKEN_ON;
        assert!(is_invalid_token(&RpcError::Status(
            Status::unauthenticated(invalid)
        )));
        assert!(is_invalid_token(&RpcError::Status(Status::unknown(
            invalid
        ))));
        assert!(is_invalid_token(&RpcError::Status(
            Status::invalid_argument(old)
        )));
        // Wrong password, missing permission, transport trouble: not a token problem.
        for s in [
            Status::invalid_argument(
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            Status::permission_denied("etcdserver: permission denied"),
            Status::unavailable("tcp connect error"),
            Status::unknown("something else"),
        ] {
            assert!(!is_invalid_token(&RpcError::Status(s)));
        }
        assert!(!is_invalid_token(&RpcError::LeaseExpired { id: 1 }));
    }

    #[test]
    fn metadata_carries_leader_requirement_and_token() {
        let token = Arc::new(RwLock::new(None));
        let mut md = Metadata {
            token: Some(token.clone()),
        };
        let req = md.call(tonic::Request::new(())).unwrap();
        assert_eq!(req.metadata().get("hasleader").unwrap(), "true");
        assert!(req.metadata().get("token").is_none());
        *token.write().unwrap() = Some(AsciiMetadataValue::from_static("t1"));
        let req = md.call(tonic::Request::new(())).unwrap();
        assert_eq!(req.metadata().get("token").unwrap(), "t1");
        let req = Metadata { token: None }
            .call(tonic::Request::new(()))
            .unwrap();
        assert!(req.metadata().get("token").is_none());
    }

    /// With authentication enabled on a real etcd: the token is fetched once, re-fetched
    /// once after etcd refuses it as invalid (expired tokens and etcd restarts look like
    /// this), and the refused request is sent again and succeeds.
    #[cfg(feature = "testing")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_invalid_token_is_refreshed_once_and_the_request_retried() {
        use crate::testing::{EtcdServer, require_etcd};

        if require_etcd("etcd_invalid_token_is_refreshed_once_and_the_request_retried").is_none() {
            return;
        }
        let mut server = EtcdServer::start().await.unwrap();
        server.enable_auth("root", "pw").await.unwrap();
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(2),
            tls: None,
            credentials: Some(("root".to_owned(), Secret::new("pw"))),
        };
        let client = EtcdClient::new(&server.client_url(0), &options).unwrap();
        let key = "/mpcluster/test/kv/k/n";
        client.put(put_request(key, b"v1", 0)).await.unwrap();
        assert_eq!(client.authentications(), 1);
        client.put(put_request(key, b"v2", 0)).await.unwrap();
        assert_eq!(client.authentications(), 1, "the token is reused");

        // A token etcd does not know: refused, refreshed once, the put goes through.
        client.force_token("bogus.token");
        client.put(put_request(key, b"v3", 0)).await.unwrap();
        assert_eq!(client.authentications(), 2);
        let (k, end) = prefix_range(key);
        let got = client
            .range(RangeRequest {
                key: k,
                range_end: end,
                ..RangeRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(got.kvs[0].value, b"v3");
        assert_eq!(client.authentications(), 2);

        // etcd restarted: its simple tokens are gone; the next request re-authenticates.
        server.stop(0);
        server.restart(0).await.unwrap();
        let mut granted = client.lease_grant(5).await;
        for _ in 0..20 {
            // The first request may still find the old connection broken.
            match &granted {
                Err(RpcError::Status(s)) if s.code() == Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    granted = client.lease_grant(5).await;
                }
                _ => break,
            }
        }
        let keep = granted.unwrap();
        assert!(keep != 0);
        assert_eq!(client.authentications(), 3);
        assert!(client.lease_keep_alive_once(keep).await.unwrap() > 0);
        client.lease_revoke(keep).await.unwrap();
        assert!(matches!(
            client.lease_keep_alive_once(keep).await,
            Err(RpcError::LeaseExpired { .. })
        ));

        // Wrong password: the refusal comes back as a status, not a retry loop.
        let wrong = ClientOptions {
            credentials: Some(("root".to_owned(), Secret::new("wrong"))),
            ..options
        };
        let bad = EtcdClient::new(&server.client_url(0), &wrong).unwrap();
        let e = bad.range(RangeRequest::default()).await.unwrap_err();
        assert!(
            matches!(&e, RpcError::Status(s) if s.code() == Code::InvalidArgument),
            "{e:?}"
        );
        assert_eq!(bad.authentications(), 0);
    }
}
