//! Limits that keep one client from taking the server down, and the connection loop that
//! applies them. None of them can reach the agent loop, which `serve` runs in its own task.
//!
//! - Per request ([`crate::app`] layers): bodies over [`crate::BODY_LIMIT`] get 413 before
//!   anything is read or written ([`reject_oversized`] for a declared `Content-Length`, the
//!   body limit layer for streamed bodies); at most [`MAX_CONCURRENT_REQUESTS`] requests run at
//!   once, the next ones get 503 at once ([`limit_concurrency`]); each request has 30 s.
//! - Per connection ([`serve_with`]): the accept loop never waits for a free slot (a full
//!   accept queue would stall every client). A connection over the limits is answered at
//!   once (plain HTTP: `503` with `Retry-After: 1`; HTTPS: closed) and dropped: at most
//!   [`ServeOptions::max_connections_per_peer`] from one peer (IPv4 address, IPv6 /64), at
//!   most [`ServeOptions::max_connections`] in all (also kept below the file descriptor limit,
//!   which [`raise_fd_limit`] raises to its hard limit at startup). One client can fill its own
//!   share only. The TLS handshake must finish within [`ServeOptions::handshake_timeout`],
//!   request headers (and an idle keep-alive connection's next request) within
//!   [`ServeOptions::header_read_timeout`] (5 s), and a connection is closed after
//!   [`ServeOptions::max_connection_age`].

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
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
    /// Open connections at most, from all peers together (further capped by the file
    /// descriptor limit). Connections beyond it are refused at once, never queued.
    pub max_connections: usize,
    /// Open connections from one peer (IPv4 address, IPv6 /64) at most; more are refused at
    /// once. Clients behind one address (NAT, a reverse proxy on the same host) share it.
    pub max_connections_per_peer: usize,
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
            max_connections: 16 * 1024,
            max_connections_per_peer: 128,
            handshake_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(5),
            max_connection_age: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The listen backlog [`bind`] asks for (the kernel caps it at `net.core.somaxconn`, 4096 by
/// default): connections the kernel completes while the accept loop is not running (a busy
/// machine) wait there; when it is full, new clients' SYNs are dropped and they retry after a
/// second.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Bind a listener for [`serve_with`] with a [`LISTEN_BACKLOG`] backlog (`SO_REUSEADDR` set,
/// as `TcpListener::bind` does).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// File descriptors kept free of connections (store files, etcd and multipathd sockets, logs).
const FD_RESERVE: u64 = 256;

/// Raise this process's soft limit of open files (`RLIMIT_NOFILE`) to its hard limit (at most
/// 2^20), so that the connection limits, not the descriptor limit, decide. Returns the soft
/// limit in force afterwards (`None`: unlimited).
pub fn raise_fd_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.unwrap_or(1 << 20).min(1 << 20);
    if limit.current.is_some_and(|c| c < want) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            },
        )?;
        return Ok(Some(want));
    }
    Ok(limit.current)
}

/// The key a peer's connections are counted under: its IPv4 address (an IPv4-mapped IPv6
/// address counts as IPv4), or its IPv6 /64 (one host usually has a whole /64).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

/// Open connections per peer.
#[derive(Debug)]
struct PeerCounts {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it frees the slot.
struct PeerSlot {
    counts: Arc<PeerCounts>,
    key: IpAddr,
}

impl PeerCounts {
    fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        let key = peer_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            counts: self.clone(),
            key,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Refuse a connection over a limit without waiting for anything: a plain HTTP client gets a
/// `503` if the socket takes it at once (it always does, fresh), then the socket is closed.
fn refuse(stream: TcpStream, peer: SocketAddr, tls: bool, why: &str) {
    tracing::debug!(peer = %peer, reason = why, "connection refused");
    if tls {
        return;
    }
    let body = serde_json::json!({"data": null, "message": why}).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
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
    if let Err(e) = raise_fd_limit() {
        tracing::warn!(error = %e, "cannot raise the open files limit");
    }
    let fd_room = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(usize::MAX, |n| {
            usize::try_from(n.saturating_sub(FD_RESERVE).max(64)).unwrap_or(usize::MAX)
        });
    let max = options
        .max_connections
        .min(fd_room)
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
    tracing::debug!(
        max_connections = max,
        per_peer = options.max_connections_per_peer,
        "connection limits"
    );
    let slots = Arc::new(Semaphore::new(max as usize));
    let peers = Arc::new(PeerCounts {
        max: options.max_connections_per_peer.max(1),
        open: Mutex::new(HashMap::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = Arc::new(options);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let tls = options.tls.is_some();
        let Some(peer_slot) = peers.try_acquire(peer.ip()) else {
            refuse(
                stream,
                peer,
                tls,
                &format!(
                    "too many connections from {}; close idle ones and retry",
                    peer.ip()
                ),
            );
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refuse(
                stream,
                peer,
                tls,
                "the server is at its connection limit; retry in a moment",
            );
            continue;
        };
        let app = app.clone();
        let options = options.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slots = (permit, peer_slot);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn peers_are_counted_per_ipv4_address_and_ipv6_64() {
        let counts = Arc::new(PeerCounts {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = counts.try_acquire(a).unwrap();
        let _s2 = counts.try_acquire(mapped).unwrap();
        assert!(
            counts.try_acquire(a).is_none(),
            "third from the same address"
        );
        let _other = counts.try_acquire(b).unwrap();
        drop(s1);
        let _s3 = counts.try_acquire(a).unwrap();

        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let v6c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _x = counts.try_acquire(v6a).unwrap();
        let _y = counts.try_acquire(v6b).unwrap();
        assert!(counts.try_acquire(v6a).is_none(), "same /64");
        let _z = counts.try_acquire(v6c).unwrap();
        drop((_x, _y));
        assert!(
            !counts.open.lock().unwrap().contains_key(&peer_key(v6a)),
            "an unused entry is removed"
        );
    }
}
