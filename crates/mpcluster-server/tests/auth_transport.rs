//! The connection loop (`limits::serve_with`) on real sockets: HTTPS with a generated
//! certificate (trusted by CA, by fingerprint, reloaded), plain HTTP refused on the TLS port,
//! slow clients cut off, peer addresses passed on, the concurrency bound.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use mpcluster_server::limits::{ServeOptions, limit_concurrency, serve_with};
use mpcluster_server::tls::{ServerTls, ServerTrust, client_config, fingerprint};
use mpcluster_store::testing::TestCerts;
use mpcluster_testkit::ServingCert;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower::ServiceExt as _;

fn test_app() -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
}

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(options: ServeOptions) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, test_app(), options, async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("serve_with returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

const REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

async fn https_get(addr: SocketAddr, trust: &ServerTrust) -> Result<String, String> {
    let config = client_config(trust).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(REQUEST).await.map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn leaf_fingerprint(certs: &TestCerts) -> [u8; 32] {
    let der = rustls::pki_types::CertificateDer::from_pem_file(&certs.server_cert).unwrap();
    mpcluster_server::tls::parse_fingerprint(&fingerprint(der.as_ref())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_generated_certificate_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let Some(serving) = ServingCert::new(dir.path()) else {
        return;
    };
    let first = serving.install("first").unwrap();
    let tls = Arc::new(ServerTls::load(&serving.cert, &serving.key).unwrap());
    assert_eq!(
        mpcluster_server::tls::parse_fingerprint(&tls.fingerprint()).unwrap(),
        leaf_fingerprint(&first)
    );
    let server = Server::start(ServeOptions {
        tls: Some(tls.clone()),
        ..ServeOptions::default()
    })
    .await;

    // Trusted by its CA, and by its fingerprint.
    let reply = https_get(server.addr, &ServerTrust::Ca(first.ca.clone()))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let reply = https_get(
        server.addr,
        &ServerTrust::Fingerprint(leaf_fingerprint(&first)),
    )
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // Not by another fingerprint, nor by the CA's own certificate's.
    let e = https_get(server.addr, &ServerTrust::Fingerprint([7; 32]))
        .await
        .unwrap_err();
    assert!(e.contains("fingerprint"), "{e}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(REQUEST).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("200 OK"),
        "plain HTTP answered: {out:?}"
    );

    // Reload: a new certificate from another CA replaces the first one for new connections.
    let second = serving.install("second").unwrap();
    tls.reload().unwrap();
    let reply = https_get(server.addr, &ServerTrust::Ca(second.ca.clone()))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        https_get(server.addr, &ServerTrust::Ca(first.ca.clone()))
            .await
            .is_err(),
        "the old CA no longer matches"
    );
    // A broken file on reload keeps the certificate in use.
    std::fs::write(&serving.key, "not a key").unwrap();
    assert!(tls.reload().is_err());
    let reply = https_get(server.addr, &ServerTrust::Ca(second.ca.clone()))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_clients_are_cut_off_and_peers_are_known() {
    let server = Server::start(ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        handshake_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;

    // A client that connects and says nothing is closed after the header timeout.
    let start = Instant::now();
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut buf))
        .await
        .expect("the server closes a silent connection")
        .ok();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    // Half a request line, never finished: closed too.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /hea").await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf))
        .await
        .expect("the server closes a slow connection")
        .ok();

    // A normal client is served, and the handler sees its address.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with(&local.to_string()), "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_concurrency_bound_get_503_at_once() {
    let slots = Arc::new(tokio::sync::Semaphore::new(2));
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            slots,
            limit_concurrency,
        ));
    let req = || Request::get("/slow").body(Body::empty()).unwrap();
    let running: Vec<_> = (0..2)
        .map(|_| tokio::spawn(app.clone().oneshot(req())))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let over = app.clone().oneshot(req()).await.unwrap();
    assert_eq!(over.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(t.elapsed() < Duration::from_millis(200), "refused at once");
    assert_eq!(over.headers()["retry-after"], "1");
    for r in running {
        assert_eq!(r.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    // Slots are given back.
    assert_eq!(app.oneshot(req()).await.unwrap().status(), StatusCode::OK);
}

/// Issue 16, part 2: connections over the per-peer limit are answered 503 at once (the accept
/// loop never waits), while another peer is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_peer_limit_are_refused_at_once() {
    let server = Server::start(ServeOptions {
        max_connections_per_peer: 3,
        ..ServeOptions::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let start = Instant::now();
    let mut over = TcpStream::connect(server.addr).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(2), over.read_to_string(&mut out))
        .await
        .expect("refused at once")
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(
        out.contains("retry-after: 1") || out.contains("Retry-After: 1"),
        "{out}"
    );
    assert!(out.contains("too many connections from 127.0.0.1"), "{out}");
    assert!(start.elapsed() < Duration::from_secs(1));

    // Another address is served meanwhile.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(server.addr).await.unwrap();
    other.write_all(REQUEST).await.unwrap();
    let mut out = String::new();
    other.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");

    // A slot comes back when a connection closes.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = TcpStream::connect(server.addr).await.unwrap();
    again.write_all(REQUEST).await.unwrap();
    let mut out = String::new();
    again.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    server.stop().await;
}
