//! Limits that keep one client from taking the server down, and the connection loop that
//! applies them. None of them can reach the agent loop, which `serve` runs in its own task.
//!
//! - Per request ([`crate::app`] layers): bodies over [`crate::BODY_LIMIT`] get 413 before
//!   anything is read or written ([`reject_oversized`] for a declared `Content-Length`, the
//!   body limit layer for streamed bodies); at most [`MAX_CONCURRENT_REQUESTS`] requests run at
//!   once, the next ones get 503 at once ([`limit_concurrency`]); each request has 30 s.
//! - Per connection ([`serve_with`]): at most [`ServeOptions::max_connections`] open
//!   connections (more wait in the kernel's accept queue), the TLS handshake within
//!   [`ServeOptions::handshake_timeout`], request headers (and an idle keep-alive connection's
//!   next request) within [`ServeOptions::header_read_timeout`], and a connection closed after
//!   [`ServeOptions::max_connection_age`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::error::{ApiError, ErrorKind};
use crate::tls::ServerTls;

/// Requests handled at once; more get 503 with `Retry-After: 1`.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

/// 413 for a declared body over [`crate::BODY_LIMIT`], before the body is read.
pub async fn reject_oversized(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > crate::BODY_LIMIT as u64) {
        return ApiError::new(
            ErrorKind::TooLarge,
            format!(
                "the request body is larger than {} bytes",
                crate::BODY_LIMIT
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// 503 at once when [`MAX_CONCURRENT_REQUESTS`] requests are already running.
pub async fn limit_concurrency(
    State(slots): State<Arc<Semaphore>>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = slots.try_acquire_owned() else {
        let mut resp = ApiError::new(
            ErrorKind::Unavailable,
            "too many concurrent requests; retry in a moment",
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    next.run(req).await
}

/// How [`serve_with`] serves connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Serve HTTPS with this certificate (reloadable); `None` = plain HTTP.
    pub tls: Option<Arc<ServerTls>>,
    /// Open connections at most.
    pub max_connections: usize,
    /// The TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// A request's headers, and the next request on an idle keep-alive connection, must
    /// arrive within this.
    pub header_read_timeout: Duration,
    /// A connection is closed (gracefully, then forcibly after `shutdown_grace`) after this.
    pub max_connection_age: Duration,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            tls: None,
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serve `app` on `listener` as `options` say until `shutdown` resolves; then stop accepting,
/// let in-flight requests finish (at most `shutdown_grace`) and return. Requests carry the
/// peer address as [`ConnectInfo<SocketAddr>`].
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = options.max_connections.clamp(1, Semaphore::MAX_PERMITS) as u32;
    let slots = Arc::new(Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = Arc::new(options);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let options = options.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            match &options.tls {
                None => connection(stream, peer, app, &options, stop).await,
                Some(tls) => {
                    let acceptor = tls.acceptor();
                    match tokio::time::timeout(options.handshake_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => connection(s, peer, app, &options, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(options.shutdown_grace, slots.acquire_many(max))
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within the shutdown grace period");
    }
    Ok(())
}

async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    options: &ServeOptions,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let age = tokio::time::sleep(options.max_connection_age);
    tokio::pin!(age);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
        _ = &mut age => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(options.shutdown_grace, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}
