//! Endpoint failover for the etcd backend: one [`EtcdClient`] per endpoint, and
//! [`Pool::call`], which runs one request against them in turn until one answers.
//!
//! Why not one channel balanced over all endpoints: balancing does not fail over, so a dead
//! endpoint would fail some calls. Here a call starts at the endpoint that last worked and
//! moves to the next on transport errors, timeouts and "no leader"; it gives up with
//! [`StoreError::Unavailable`] when the operation's deadline ([`EtcdOptions::request_timeout`])
//! passes. Clients connect lazily, so a dead endpoint at startup costs nothing until tried.
//!
//! Authentication failures are not retried: they fail the call with [`StoreError::Auth`] and
//! open a back-off window (1 s doubling to 60 s) during which calls fail at once without
//! contacting etcd, so a wrong password does not turn into a login storm.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;
use tracing::debug;

use super::rpc::{ClientOptions, EtcdClient, RpcError};
use crate::{BoxError, EtcdOptions, StoreError};

const AUTH_BACKOFF_MIN: Duration = Duration::from_secs(1);
const AUTH_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A request's result and whether it may have been applied twice.
pub(crate) struct Outcome<T> {
    /// The response.
    pub(crate) value: T,
    /// An earlier attempt failed in a way that leaves open whether the server applied it
    /// (timeout, connection lost mid-request). Non-idempotent callers must check.
    pub(crate) retried: bool,
}

struct Slot {
    url: String,
    client: EtcdClient,
}

#[derive(Default)]
struct AuthGate {
    closed_until: Option<Instant>,
    backoff: Duration,
    last_error: String,
}

/// The endpoint pool of one store.
pub(crate) struct Pool {
    store: String,
    slots: Vec<Slot>,
    preferred: AtomicUsize,
    user: Option<String>,
    request_timeout: Duration,
    auth: Mutex<AuthGate>,
}

/// How to react to an error.
enum Class {
    /// Try the next endpoint. `maybe_applied`: the request may have reached the server.
    Retry { maybe_applied: bool },
    /// Credentials refused.
    Auth,
    /// The request itself is wrong or refused; another endpoint would say the same.
    Fatal,
}

fn classify(e: &RpcError) -> Class {
    match e {
        RpcError::LeaseExpired { .. } | RpcError::StreamEnded { .. } => Class::Retry {
            maybe_applied: true,
        },
        RpcError::Status(s) => {
            let msg = s.message();
            match s.code() {
                Code::Unauthenticated | Code::PermissionDenied => Class::Auth,
                Code::InvalidArgument
                    if msg.contains("authentication failed")
                        || msg.contains("user name is empty")
                        || msg.contains("invalid user") =>
                {
                    Class::Auth
                }
                Code::FailedPrecondition if msg.contains("authentication is not enabled") => {
                    Class::Auth
                }
                Code::Unavailable => Class::Retry {
                    // Refused connections and "no leader" never reached the state machine.
                    maybe_applied: !(msg.contains("connect error") || msg.contains("no leader")),
                },
                Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Unknown
                | Code::Aborted
                | Code::ResourceExhausted
                | Code::Internal => Class::Retry {
                    maybe_applied: true,
                },
                _ => Class::Fatal,
            }
        }
        RpcError::Endpoint { .. } | RpcError::BadToken => Class::Fatal,
    }
}

impl Pool {
    /// A pool over `urls` (with scheme). Does not connect. Fails (with
    /// [`StoreError::Config`]) for a URL or TLS setting the transport cannot use.
    pub(crate) fn new(
        store: String,
        urls: Vec<String>,
        client: &ClientOptions,
        options: &EtcdOptions,
    ) -> Result<Pool, StoreError> {
        let mut slots = Vec::with_capacity(urls.len());
        for url in urls {
            let c = EtcdClient::new(&url, client).map_err(|e| StoreError::Config {
                store: store.clone(),
                problem: mpcluster_core::error_chain(&e),
            })?;
            slots.push(Slot { url, client: c });
        }
        Ok(Pool {
            store,
            slots,
            preferred: AtomicUsize::new(0),
            user: options.auth.as_ref().map(|a| a.user.clone()),
            request_timeout: options.request_timeout,
            auth: Mutex::new(AuthGate::default()),
        })
    }

    /// The store description used in errors.
    pub(crate) fn store(&self) -> &str {
        &self.store
    }

    /// The operation deadline.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    fn auth_error(&self, source: Option<BoxError>) -> StoreError {
        StoreError::Auth {
            store: self.store.clone(),
            user: self.user.clone(),
            source,
        }
    }

    fn check_auth_gate(&self) -> Result<(), StoreError> {
        let gate = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        match gate.closed_until {
            Some(until) if Instant::now() < until => {
                let wait = until - Instant::now();
                Err(self.auth_error(Some(
                    format!(
                        "{} (not retried for another {:.1}s)",
                        gate.last_error,
                        wait.as_secs_f64()
                    )
                    .into(),
                )))
            }
            _ => Ok(()),
        }
    }

    fn auth_failed(&self, e: &RpcError) {
        let mut gate = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        gate.backoff = if gate.backoff.is_zero() {
            AUTH_BACKOFF_MIN
        } else {
            (gate.backoff * 2).min(AUTH_BACKOFF_MAX)
        };
        gate.closed_until = Some(Instant::now() + gate.backoff);
        gate.last_error = e.to_string();
    }

    fn auth_ok(&self) {
        let mut gate = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        if gate.closed_until.is_some() || !gate.backoff.is_zero() {
            *gate = AuthGate::default();
        }
    }

    /// Run `f` against the endpoints until one answers or the deadline passes. `what` names
    /// the operation in errors. `f` may run several times (once per attempt).
    pub(crate) async fn call<T, F, Fut>(
        &self,
        what: &str,
        mut f: F,
    ) -> Result<Outcome<T>, StoreError>
    where
        F: FnMut(EtcdClient) -> Fut,
        Fut: Future<Output = Result<T, RpcError>>,
    {
        self.check_auth_gate()?;
        let n = self.slots.len();
        let start = Instant::now();
        let deadline = start + self.request_timeout;
        // One slow endpoint must not eat the whole budget.
        let per_attempt = (self.request_timeout / 2).max(Duration::from_secs(1));
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut maybe_applied = false;
        let mut attempts = 0usize;
        let mut last: Option<(String, BoxError)> = None;
        let mut pause = Duration::from_millis(50);
        'rounds: loop {
            for i in 0..n {
                let idx = (first + i) % n;
                let now = Instant::now();
                if now >= deadline {
                    break 'rounds;
                }
                let budget = (deadline - now).min(per_attempt);
                attempts += 1;
                let url = &self.slots[idx].url;
                let attempt = async {
                    // With credentials, the first request of a client authenticates first.
                    let c = self.slots[idx].client.clone();
                    c.ensure_authenticated().await.map_err(|e| (e, false))?;
                    f(c).await.map_err(|e| (e, true))
                };
                match tokio::time::timeout(budget, attempt).await {
                    Ok(Ok(v)) => {
                        self.preferred.store(idx, Ordering::Relaxed);
                        self.auth_ok();
                        return Ok(Outcome {
                            value: v,
                            retried: maybe_applied,
                        });
                    }
                    Ok(Err((e, sent))) => match classify(&e) {
                        Class::Auth => {
                            self.auth_failed(&e);
                            return Err(self.auth_error(Some(Box::new(e))));
                        }
                        Class::Retry { maybe_applied: m } => {
                            debug!(store = %self.store, endpoint = %url, error = %e, "{what} failed, trying the next endpoint");
                            maybe_applied |= sent && m;
                            last = Some((url.clone(), Box::new(e)));
                        }
                        Class::Fatal => {
                            return Err(StoreError::Unavailable {
                                store: self.store.clone(),
                                reason: format!("{what} was refused by {url}"),
                                source: Some(Box::new(e)),
                            });
                        }
                    },
                    Err(elapsed) => {
                        debug!(store = %self.store, endpoint = %url, "{what} timed out, trying the next endpoint");
                        maybe_applied = true;
                        last = Some((
                            url.clone(),
                            format!("no answer within {:.1}s ({elapsed})", budget.as_secs_f64())
                                .into(),
                        ));
                    }
                }
            }
            // Every endpoint failed once: give an election or a restart a moment.
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        let (last_url, source) = match last {
            Some((u, e)) => (u, Some(e)),
            None => ("(none)".to_owned(), None),
        };
        Err(StoreError::Unavailable {
            store: self.store.clone(),
            reason: format!(
                "{what}: no endpoint answered within {:.1}s ({attempts} attempts on {n} endpoint{}; last tried {last_url})",
                self.request_timeout.as_secs_f64(),
                if n == 1 { "" } else { "s" },
            ),
            source,
        })
    }
}
