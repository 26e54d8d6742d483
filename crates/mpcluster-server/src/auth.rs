//! Access control: API tokens with Proxmox-style privileges.
//!
//! - Tokens live in the digest-guarded store document `tokens`
//!   ([`TokensDoc`](mpcluster_core::tokens::TokensDoc)): per token id its privileges, expiry and
//!   the argon2id PHC hash of its secret. [`mpcluster_config::tokens`] creates, removes and
//!   lists them (the CLI and `serve` use it); this module only checks presented tokens
//!   ([`verify_secret`]).
//! - [`require_token`] is the middleware every request passes: `Authorization: Bearer
//!   <id>:<secret>` or `Authorization: PVEAPIToken=<id>=<secret>`; `Sys.Audit` for GET/HEAD,
//!   `Sys.Modify` for every write ([`required_privilege`]). Only [`is_open_path`] paths (`/health`
//!   and the web UI's static assets) pass without a token, and `/metrics` when the server was
//!   started with `--metrics-public` ([`Auth::with_public_metrics`]).
//! - 401 (missing, unknown, wrong or expired token) always says the same, whether the id exists
//!   or not, and an unknown id costs the same argon2 verification as a wrong secret (against a
//!   dummy hash). 403 only after the secret was verified. Failed attempts are logged with the
//!   token id and the peer address, never the secret.
//! - Removal and expiry take effect at once: every request re-reads the `tokens` document
//!   (one read per request: a file read for the embedded store, one range request for etcd) and
//!   checks presence and expiry against it. Only the slow hash verification is cached, keyed by
//!   (id, SHA-256 of the secret) and valid only while the entry's stored hash is unchanged (a
//!   token removed and re-added under the same id has a new salt, so a new hash).
//! - If the store cannot be read (down, timeout), the last successfully read document is used,
//!   so the API keeps serving the last good status with its 503; a token removed while this
//!   server cannot reach the store keeps working here until the store answers again.
//! - If the stored `tokens` document cannot be parsed, no token can be checked: every
//!   authenticated request gets 503 with a message naming the document, the store and the
//!   problem, and `/health` reports it ([`Auth::tokens_problem`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mpcluster_config::tokens::{hash_secret, new_secret, verify_secret};
use mpcluster_config::{absent_digest, unix_now};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::doc_names;
use mpcluster_core::tokens::{
    Presented, Privilege, TokenId, TokensDoc, parse_authorization, required_privilege,
};
use mpcluster_store::{ClusterStore, StoreError};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use crate::error::{ApiError, ErrorKind};

/// The message of every 401 for a presented token (unknown id, wrong secret, expired): the
/// same in every case, so it does not tell whether the id exists.
pub const INVALID_TOKEN: &str = "invalid or expired API token";

/// The message of a 401 without credentials.
pub const TOKEN_REQUIRED: &str =
    "authentication required: send 'Authorization: Bearer <token-id>:<secret>'";

/// How long one read of the tokens document may take before the last good copy is used.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed read, use the last good copy this long without asking the store again.
const FAILURE_HOLD: Duration = Duration::from_secs(1);
/// `/health` (no authentication) re-reads the tokens document at most this often.
const HEALTH_READ_EVERY: Duration = Duration::from_secs(1);
/// Argon2 verifications running at once (each takes ~19 MiB and some ms of CPU): one, so a
/// flood of bad tokens keeps at most one core busy and leaves the rest (the in-process agent,
/// requests with already verified tokens) alone.
const HASH_SLOTS: usize = 1;
/// Cached successful verifications, at most (the cache is cleared when full).
const VERIFIED_MAX: usize = 4096;

/// Paths served without a token: `/health`, and the web UI's static page and assets (`/`,
/// `/index.html`, `/ui`, `/ui/...`; the page asks for a token and sends it with its API calls). Everything
/// else, the OpenAPI document included, needs one.
pub fn is_open_path(path: &str) -> bool {
    matches!(path, "/health" | "/" | "/index.html" | "/ui") || path.starts_with("/ui/")
}

/// POST routes that only compute an answer and change nothing: `Sys.Audit` is enough.
pub const READ_ONLY_POSTS: &[&str] = &["/api2/json/cluster/multipath/preflight"];

fn secret_key(id: &str, secret: &str) -> (String, [u8; 32]) {
    (id.to_owned(), Sha256::digest(secret.as_bytes()).into())
}

// ---------------------------------------------------------------------------------------------
// Checking requests

/// The authenticated token of a request (a request extension set by [`require_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated(pub TokenId);

/// The tokens document as last read.
struct Current {
    digest: ConfigDigest,
    /// The document, or why it cannot be read (then every token is refused).
    doc: Result<TokensDoc, String>,
    /// When it was read (or found unchanged) last.
    read_at: Instant,
}

struct Inner {
    store: Arc<dyn ClusterStore>,
    last_good: Mutex<Option<Arc<Current>>>,
    last_failure: Mutex<Option<Instant>>,
    /// (id, SHA-256 of the secret) -> the stored hash the secret was verified against.
    verified: Mutex<HashMap<(String, [u8; 32]), String>>,
    hashing: Arc<Semaphore>,
    dummy: OnceLock<String>,
}

/// The token checker [`require_token`] uses; cheap to clone (shared state).
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
    /// `/metrics` without a token.
    public_metrics: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("store", &self.inner.store.describe())
            .finish_non_exhaustive()
    }
}

/// Why a request is refused.
#[derive(Debug)]
enum Denied {
    /// 401 without credentials.
    Missing,
    /// 401 with credentials (message: [`INVALID_TOKEN`] or a header syntax error).
    Invalid(String),
    /// 403.
    Forbidden(TokenId, Privilege),
    /// 5xx: the tokens cannot be checked.
    Error(ApiError),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Auth {
    /// A checker over the tokens in `store`.
    pub fn new(store: Arc<dyn ClusterStore>) -> Auth {
        let auth = Auth {
            inner: Arc::new(Inner {
                store,
                last_good: Mutex::new(None),
                last_failure: Mutex::new(None),
                verified: Mutex::new(HashMap::new()),
                hashing: Arc::new(Semaphore::new(HASH_SLOTS)),
                dummy: OnceLock::new(),
            }),
            public_metrics: false,
        };
        // Compute the dummy hash ahead, so the first unknown id costs no more than a wrong
        // secret.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let a = auth.clone();
            drop(rt.spawn_blocking(move || a.dummy_hash()));
        }
        auth
    }

    /// Let `/metrics` through without a token when `public` (`serve --metrics-public`).
    pub fn with_public_metrics(mut self, public: bool) -> Auth {
        self.public_metrics = public;
        self
    }

    /// Whether `path` passes without a token: [`is_open_path`], and `/metrics` when public.
    pub fn is_open(&self, path: &str) -> bool {
        is_open_path(path) || (self.public_metrics && path == crate::metrics::PATH)
    }

    /// The tokens document: read from the store now, or the last good copy if the store
    /// cannot be read.
    async fn current(&self) -> Result<Arc<Current>, ApiError> {
        let inner = &self.inner;
        let last_good = lock(&inner.last_good).clone();
        let holding = lock(&inner.last_failure).is_some_and(|t| t.elapsed() < FAILURE_HOLD);
        if holding && let Some(c) = &last_good {
            return Ok(c.clone());
        }
        let read = tokio::time::timeout(READ_TIMEOUT, inner.store.read_doc(doc_names::TOKENS))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable {
                    store: inner.store.describe(),
                    reason: format!("no answer within {READ_TIMEOUT:?}"),
                    source: None,
                })
            });
        match read {
            Ok(found) => {
                *lock(&inner.last_failure) = None;
                let digest = found.as_ref().map_or_else(absent_digest, |(_, d)| *d);
                if let Some(c) = last_good.filter(|c| c.digest == digest) {
                    let c = Arc::new(Current {
                        digest: c.digest,
                        doc: c.doc.clone(),
                        read_at: Instant::now(),
                    });
                    *lock(&inner.last_good) = Some(c.clone());
                    return Ok(c);
                }
                let doc = match &found {
                    None => Ok(TokensDoc::default()),
                    Some((text, _)) => TokensDoc::from_json(text).map_err(|e| {
                        let problem = format!(
                            "the API tokens document '{}' in the {} cannot be read ({e}); every API token is refused until it is repaired (fix it, or delete it and restart 'mpcluster serve', which then creates a new admin token)",
                            doc_names::TOKENS,
                            inner.store.describe()
                        );
                        tracing::error!("{problem}");
                        problem
                    }),
                };
                let c = Arc::new(Current {
                    digest,
                    doc,
                    read_at: Instant::now(),
                });
                *lock(&inner.last_good) = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                let first = lock(&inner.last_failure).replace(Instant::now()).is_none();
                if first {
                    tracing::warn!(error = %crate::error::chain(&e), "cannot read the API tokens; using the last copy read");
                }
                match last_good {
                    Some(c) => Ok(c),
                    None => Err(ApiError::new(
                        ErrorKind::Unavailable,
                        format!("cannot check the API token: {}", crate::error::chain(&e)),
                    )),
                }
            }
        }
    }

    /// Why API tokens cannot be checked, if they cannot: the stored tokens document is
    /// unreadable (`/health` reports it). `None` when they can, and also while the store
    /// cannot be read (reported as the store's state). Reads the document at most once per
    /// [`HEALTH_READ_EVERY`].
    pub async fn tokens_problem(&self) -> Option<String> {
        let recent = lock(&self.inner.last_good)
            .clone()
            .filter(|c| c.read_at.elapsed() < HEALTH_READ_EVERY);
        let current = match recent {
            Some(c) => c,
            None => self.current().await.ok()?,
        };
        current.doc.as_ref().err().cloned()
    }

    fn dummy_hash(&self) -> String {
        self.inner
            .dummy
            .get_or_init(|| hash_secret(&new_secret()).unwrap_or_default())
            .clone()
    }

    /// Verify `secret` against `hash` (or, for an unknown id, against a dummy hash: the same
    /// work, always `false`), on the blocking pool, at most [`HASH_SLOTS`] at once.
    async fn verify(&self, secret: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let permit = self
            .inner
            .hashing
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::new(ErrorKind::Internal, "the token checker is closed"))?;
        let this = self.clone();
        let secret = secret.to_owned();
        let hash = hash.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match hash {
                Some(h) => verify_secret(&secret, &h),
                None => {
                    let _ = verify_secret(&secret, &this.dummy_hash());
                    false
                }
            }
        })
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorKind::Internal,
                format!("token verification failed: {e}"),
            )
        })
    }

    async fn check(
        &self,
        header: Option<&HeaderValue>,
        need: Privilege,
        peer: Option<Peer>,
    ) -> Result<TokenId, Denied> {
        let Some(header) = header else {
            return Err(Denied::Missing);
        };
        let parsed = header
            .to_str()
            .map_err(|_| mpcluster_core::tokens::AuthHeaderError::Malformed)
            .and_then(parse_authorization);
        let Presented { id, secret } = match parsed {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(peer = %PeerOpt(peer), reason = %e, "API authentication failed");
                return Err(Denied::Invalid(e.to_string()));
            }
        };
        let current = self.current().await.map_err(Denied::Error)?;
        let doc = match &current.doc {
            Ok(doc) => doc,
            Err(problem) => {
                return Err(Denied::Error(ApiError::new(
                    ErrorKind::Unavailable,
                    format!("cannot check the API token: {problem}"),
                )));
            }
        };
        let entry = doc.get(&id);
        let key = secret_key(&id, &secret);
        let cached = entry.is_some_and(|e| lock(&self.inner.verified).get(&key) == Some(&e.hash));
        let ok = if cached {
            true
        } else {
            let ok = self
                .verify(&secret, entry.map(|e| e.hash.as_str()))
                .await
                .map_err(Denied::Error)?;
            if ok && let Some(e) = entry {
                let mut verified = lock(&self.inner.verified);
                if verified.len() >= VERIFIED_MAX {
                    verified.clear();
                }
                verified.insert(key, e.hash.clone());
            }
            ok
        };
        let fail = |reason: &str| {
            tracing::warn!(token = %id, peer = %PeerOpt(peer), reason, "API authentication failed");
            Err(Denied::Invalid(INVALID_TOKEN.to_owned()))
        };
        let Some(entry) = entry.filter(|_| ok) else {
            return fail(if entry.is_some() {
                "wrong secret"
            } else {
                "unknown token id"
            });
        };
        if entry.is_expired(unix_now()) {
            return fail("token expired");
        }
        // The id was found in the document, so it is valid.
        let id = TokenId::new(id).map_err(|e| Denied::Invalid(e.to_string()))?;
        if !entry.grants(need) {
            tracing::warn!(token = %id, peer = %PeerOpt(peer), need = %need, "API request refused: missing privilege");
            return Err(Denied::Forbidden(id, need));
        }
        Ok(id)
    }
}

/// A peer address for logs.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// `unknown` when the server was not given the peer address (e.g. tests with `oneshot`).
struct PeerOpt(Option<Peer>);

impl std::fmt::Display for PeerOpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(Peer(a)) => write!(f, "{a}"),
            None => f.write_str("unknown"),
        }
    }
}

fn unauthorized(message: String) -> Response {
    let mut resp = ApiError::new(ErrorKind::Unauthorized, message).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"mpcluster\""),
    );
    resp
}

/// The middleware: let open paths through, else require a valid, unexpired token with the
/// privilege the method needs (see the [module docs](self)).
pub async fn require_token(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    if auth.is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let need = if req.method() == axum::http::Method::POST
        && READ_ONLY_POSTS.contains(&req.uri().path())
    {
        Privilege::SysAudit
    } else {
        required_privilege(req.method().as_str())
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| Peer(c.0));
    match auth
        .check(req.headers().get(header::AUTHORIZATION), need, peer)
        .await
    {
        Ok(id) => {
            // Configuration changes made by this request name the token in the audit trail.
            let actor = format!("token:{id}");
            req.extensions_mut().insert(Authenticated(id));
            mpcluster_config::events::as_actor(actor, next.run(req)).await
        }
        Err(Denied::Missing) => {
            tracing::debug!(peer = %PeerOpt(peer), path = %req.uri().path(), "API request without a token");
            unauthorized(TOKEN_REQUIRED.to_owned())
        }
        Err(Denied::Invalid(message)) => unauthorized(message),
        Err(Denied::Forbidden(id, need)) => ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "token '{id}' lacks the privilege {need} needed for {} requests",
                req.method()
            ),
        )
        .into_response(),
        Err(Denied::Error(e)) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn open_paths() {
        for p in ["/health", "/", "/index.html", "/ui", "/ui/app.js"] {
            assert!(is_open_path(p), "{p}");
        }
        for p in [
            "/api2/openapi.json",
            "/api2/json/cluster/multipath/status",
            "/healthz",
            "/uix",
            "",
        ] {
            assert!(!is_open_path(p), "{p}");
        }
    }
}
