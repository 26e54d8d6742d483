//! Test support (feature `testing`): [`EtcdServer`] runs real etcd members as child
//! processes on ephemeral 127.0.0.1 ports, in a temporary directory; [`PveRoot`] is a
//! pmxcfs-like root directory for the pve store, with a `.members` the test controls.
//!
//! Every process is killed by PID when the `EtcdServer` is dropped, also when a test panics.
//! Members can be killed, stopped and restarted individually or all together, keeping their
//! data and ports, to test failover and recovery.
//!
//! ```no_run
//! # async fn demo() {
//! use mpcluster_store::testing::{EtcdServer, require_etcd};
//! let Some(_) = require_etcd("my_test") else { return }; // skip (or fail under CI=true)
//! let mut etcd = EtcdServer::start_cluster(3).await.unwrap();
//! let spec = etcd.spec("test");            // StoreSpec for mpcluster_store::open
//! etcd.kill(0);                            // SIGKILL member 0
//! etcd.restart(0).await.unwrap();          // same data dir and ports
//! etcd.stop_all();                         // SIGTERM everyone
//! etcd.restart_all().await.unwrap();
//! # }
//! ```
//!
//! The binary is `$MPCLUSTER_TEST_ETCD` if set, else `etcd` on `PATH` (Debian:
//! `/usr/bin/etcd` from `etcd-server`).
//!
//! TLS: [`TestCerts::generate`] makes a throw-away CA, server and client certificate with the
//! `openssl` command; [`EtcdServer::start_with`] with [`EtcdServerConfig::tls`] then serves
//! clients over `https://` and requires client certificates ([`TestCerts::etcd_tls`] gives the
//! matching client options).
//!
//! Another network namespace: [`EtcdServer::start_cluster_also_on`] makes every member also
//! serve clients on a given address (e.g. a veth's), [`EtcdServer::endpoints_on`] names them.
//!
//! Authentication: [`EtcdServer::enable_auth`] adds a user with the `root` role and enables
//! etcd authentication (through the store's own etcd client); later restarts wait for the
//! members with those credentials.

use std::fs::{self, File};
use std::net::{IpAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod pve;

pub use pve::PveRoot;

use crate::etcd::rpc::pb::etcdserverpb::RangeRequest;
use crate::etcd::rpc::{ClientOptions, EtcdClient};
use crate::{BoxError, EtcdSpec, EtcdTls, Secret, StoreSpec};

/// Environment variable naming the etcd binary to use.
pub const ETCD_BINARY_ENV: &str = "MPCLUSTER_TEST_ETCD";

/// How long a (re)started member may take to serve requests.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped (SIGTERM) member may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an etcd test cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EtcdServerError {
    /// No etcd binary was found.
    #[error("no etcd binary: set {ETCD_BINARY_ENV} or install etcd (Debian: etcd-server)")]
    NoBinary,
    /// Spawning a member failed.
    #[error("cannot start {binary}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file operation in the temporary directory failed.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `openssl` failed while generating test certificates.
    #[error("generating test certificates failed: openssl {step}: {stderr}")]
    Openssl {
        /// Which step.
        step: String,
        /// What openssl said.
        stderr: String,
    },
    /// An administrative request (enabling authentication) failed.
    #[error("etcd administration failed: {step}")]
    Admin {
        /// What was being done.
        step: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// A member did not come up.
    #[error("etcd member {member} not ready after {waited:?}; log tail:\n{log_tail}")]
    NotReady {
        /// The member's name.
        member: String,
        /// How long we waited.
        waited: Duration,
        /// The end of the member's log.
        log_tail: String,
    },
}

/// The etcd binary to test with: `$MPCLUSTER_TEST_ETCD`, else `etcd` on `PATH`.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ETCD_BINARY_ENV) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

/// For tests needing etcd: the binary, or `None` after printing why the test is skipped.
/// Under `CI=true` a missing binary panics: CI must run the etcd tests.
pub fn require_etcd(test: &str) -> Option<PathBuf> {
    match etcd_binary() {
        Some(b) => Some(b),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "{test}: etcd is required under CI=true: {}",
                EtcdServerError::NoBinary
            )
        }
        None => {
            eprintln!("SKIPPED {test}: {}", EtcdServerError::NoBinary);
            None
        }
    }
}

/// Throw-away TLS material for a test cluster (PEM files in one directory).
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA certificate.
    pub ca: PathBuf,
    /// Server certificate (SAN `IP:127.0.0.1`).
    pub server_cert: PathBuf,
    /// Server key.
    pub server_key: PathBuf,
    /// Client certificate (CN `root`).
    pub client_cert: PathBuf,
    /// Client key.
    pub client_key: PathBuf,
}

/// Whether the `openssl` command is available (for [`TestCerts::generate`]).
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn openssl(step: &str, args: &[&str], dir: &Path) -> Result<(), EtcdServerError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| EtcdServerError::Openssl {
            step: step.to_owned(),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(EtcdServerError::Openssl {
            step: step.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

impl TestCerts {
    /// Generate a CA and a server and client certificate (ECDSA P-256, valid 2 days) in `dir`.
    pub fn generate(dir: &Path) -> Result<TestCerts, EtcdServerError> {
        let io = |path: PathBuf| move |e| EtcdServerError::Io { path, source: e };
        fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=mpcluster test CA",
        ];
        ca.extend(key);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl("CA", &ca, dir)?;
        for (who, cn, ext) in [
            (
                "server",
                "/CN=127.0.0.1",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
            ),
            ("client", "/CN=root", "extendedKeyUsage=clientAuth\n"),
        ] {
            let ext_file = dir.join(format!("{who}.ext"));
            fs::write(&ext_file, ext).map_err(io(ext_file.clone()))?;
            let (k, csr, pem, extf) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.pem"),
                format!("{who}.ext"),
            );
            let mut req = vec!["req", "-subj", cn];
            req.extend(key);
            req.extend(["-keyout", &k, "-out", &csr]);
            openssl(&format!("{who} request"), &req, dir)?;
            openssl(
                &format!("{who} signing"),
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &extf,
                    "-out",
                    &pem,
                ],
                dir,
            )?;
        }
        Ok(TestCerts {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        })
    }

    /// Client TLS options for the store: this CA, this client certificate.
    pub fn etcd_tls(&self) -> EtcdTls {
        EtcdTls {
            ca_file: Some(self.ca.clone()),
            cert_file: Some(self.client_cert.clone()),
            key_file: Some(self.client_key.clone()),
            domain: None,
        }
    }
}

/// How to start an [`EtcdServer`].
#[derive(Debug, Clone)]
pub struct EtcdServerConfig {
    /// Number of members (at least 1).
    pub members: usize,
    /// Serve clients over TLS with these certificates, requiring client certificates.
    pub tls: Option<TestCerts>,
}

impl Default for EtcdServerConfig {
    fn default() -> Self {
        EtcdServerConfig {
            members: 1,
            tls: None,
        }
    }
}

struct Member {
    name: String,
    scheme: &'static str,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn client_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let pid = rustix::process::Pid::from_child(&c);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let start = Instant::now();
        while start.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A running etcd cluster of one or more members; see the [module docs](self).
pub struct EtcdServer {
    binary: PathBuf,
    token: String,
    tls: Option<TestCerts>,
    /// User and password once authentication is enabled.
    credentials: Option<(String, Secret)>,
    /// Members also serve clients on this address (same port).
    also_on: Option<IpAddr>,
    members: Vec<Member>,
    // Last: removed after the processes are gone.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for EtcdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdServer")
            .field("endpoints", &self.endpoints())
            .field("dir", &self.dir.path())
            .finish()
    }
}

fn free_port() -> Result<u16, EtcdServerError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| EtcdServerError::Io {
        path: "127.0.0.1:0".into(),
        source: e,
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| EtcdServerError::Io {
            path: "127.0.0.1:0".into(),
            source: e,
        })
}

impl EtcdServer {
    /// Start a one-member etcd.
    pub async fn start() -> Result<EtcdServer, EtcdServerError> {
        EtcdServer::start_cluster(1).await
    }

    /// Start an `n`-member etcd cluster and wait until every member serves requests.
    /// Retries with fresh ports if one was taken meanwhile.
    pub async fn start_cluster(n: usize) -> Result<EtcdServer, EtcdServerError> {
        EtcdServer::start_with(EtcdServerConfig {
            members: n,
            tls: None,
        })
        .await
    }

    /// Start a cluster as `config` says and wait until every member serves requests.
    pub async fn start_with(config: EtcdServerConfig) -> Result<EtcdServer, EtcdServerError> {
        EtcdServer::start_retrying(config, None).await
    }

    /// Start an `n`-member cluster (plain HTTP) whose members also serve clients on `host`
    /// (an address already assigned to an interface, e.g. a veth's), on the same ports: for
    /// a client in another network namespace ([`endpoints_on`](Self::endpoints_on)).
    pub async fn start_cluster_also_on(
        n: usize,
        host: IpAddr,
    ) -> Result<EtcdServer, EtcdServerError> {
        let config = EtcdServerConfig {
            members: n,
            tls: None,
        };
        EtcdServer::start_retrying(config, Some(host)).await
    }

    async fn start_retrying(
        config: EtcdServerConfig,
        also_on: Option<IpAddr>,
    ) -> Result<EtcdServer, EtcdServerError> {
        let binary = etcd_binary().ok_or(EtcdServerError::NoBinary)?;
        let mut last = None;
        for _ in 0..3 {
            let (n, tls) = (config.members.max(1), config.tls.clone());
            match EtcdServer::try_start(&binary, n, tls, also_on).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(EtcdServerError::NoBinary))
    }

    async fn try_start(
        binary: &Path,
        n: usize,
        tls: Option<TestCerts>,
        also_on: Option<IpAddr>,
    ) -> Result<EtcdServer, EtcdServerError> {
        let dir = tempfile::Builder::new()
            .prefix("mpcluster-etcd-")
            .tempdir()
            .map_err(|e| EtcdServerError::Io {
                path: std::env::temp_dir(),
                source: e,
            })?;
        let mut members = Vec::new();
        for i in 0..n {
            let name = format!("m{i}");
            members.push(Member {
                data_dir: dir.path().join(&name),
                log: dir.path().join(format!("{name}.log")),
                name,
                scheme: if tls.is_some() { "https" } else { "http" },
                client_port: free_port()?,
                peer_port: free_port()?,
                child: None,
            });
        }
        let token = format!(
            "mpcluster-test-{}-{}",
            std::process::id(),
            members[0].client_port
        );
        let mut server = EtcdServer {
            binary: binary.to_path_buf(),
            token,
            tls,
            credentials: None,
            also_on,
            members,
            dir,
        };
        for i in 0..n {
            server.spawn(i)?;
        }
        server.wait_ready_all().await?;
        Ok(server)
    }

    fn spawn(&mut self, i: usize) -> Result<(), EtcdServerError> {
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let m = &mut self.members[i];
        if m.child.is_some() {
            return Ok(());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(|e| EtcdServerError::Io {
                path: m.log.clone(),
                source: e,
            })?;
        let log2 = log.try_clone().map_err(|e| EtcdServerError::Io {
            path: m.log.clone(),
            source: e,
        })?;
        // etcd wants its data directory private.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&m.data_dir)
            .map_err(|e| EtcdServerError::Io {
                path: m.data_dir.clone(),
                source: e,
            })?;
        let mut listen_client_urls = m.client_url();
        if let Some(host) = self.also_on {
            let host = std::net::SocketAddr::new(host, m.client_port);
            listen_client_urls.push_str(&format!(",{}://{host}", m.scheme));
        }
        let mut cmd = Command::new(&self.binary);
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &listen_client_urls])
            .args(["--advertise-client-urls", &m.client_url()])
            .args(["--listen-peer-urls", &m.peer_url()])
            .args(["--initial-advertise-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| EtcdServerError::Spawn {
                binary: self.binary.clone(),
                source: e,
            })?;
        m.child = Some(child);
        Ok(())
    }

    /// A client of member `i`: this server's TLS client certificate and, once authentication
    /// is enabled, its credentials.
    fn client(&self, i: usize) -> Result<EtcdClient, EtcdServerError> {
        let admin = |step: &str, source: BoxError| EtcdServerError::Admin {
            step: step.to_owned(),
            source,
        };
        let tls = match &self.tls {
            Some(t) => Some(
                crate::etcd::tls_config("test etcd", &t.etcd_tls())
                    .map_err(|e| admin("reading the test certificates", Box::new(e)))?,
            ),
            None => None,
        };
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(1),
            tls,
            credentials: self.credentials.clone(),
        };
        EtcdClient::new(&self.members[i].client_url(), &options)
            .map_err(|e| admin("creating a client", Box::new(e)))
    }

    async fn wait_ready(&mut self, i: usize) -> Result<(), EtcdServerError> {
        let start = Instant::now();
        let client = self.client(i)?;
        loop {
            // A linearizable read needs a leader and a quorum.
            let read = client.range(RangeRequest {
                key: b"ready".to_vec(),
                ..RangeRequest::default()
            });
            let r = tokio::time::timeout(Duration::from_secs(2), read).await;
            if matches!(r, Ok(Ok(_))) {
                return Ok(());
            }
            let exited = match self.members[i].child.as_mut() {
                Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                None => true,
            };
            if exited || start.elapsed() > READY_TIMEOUT {
                let m = &mut self.members[i];
                m.kill();
                return Err(EtcdServerError::NotReady {
                    member: m.name.clone(),
                    waited: start.elapsed(),
                    log_tail: m.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Enable etcd authentication: add `user` with `password`, grant it the `root` role and
    /// turn authentication on (through member 0). etcd insists on a user named `root` to
    /// enable authentication, so `user` is normally `"root"`. From then on every client needs
    /// credentials; [`restart`](Self::restart) uses these.
    pub async fn enable_auth(&mut self, user: &str, password: &str) -> Result<(), EtcdServerError> {
        let admin = |step: &str| {
            let step = step.to_owned();
            move |e: crate::etcd::rpc::RpcError| EtcdServerError::Admin {
                step,
                source: Box::new(e),
            }
        };
        let client = self.client(0)?;
        client
            .user_add(user, password)
            .await
            .map_err(admin(&format!("adding user '{user}'")))?;
        client
            .user_grant_role(user, "root")
            .await
            .map_err(admin(&format!("granting user '{user}' the root role")))?;
        client
            .auth_enable()
            .await
            .map_err(admin("enabling authentication"))?;
        self.credentials = Some((user.to_owned(), Secret::new(password)));
        Ok(())
    }

    async fn wait_ready_all(&mut self) -> Result<(), EtcdServerError> {
        for i in 0..self.members.len() {
            if self.members[i].child.is_some() {
                self.wait_ready(i).await?;
            }
        }
        Ok(())
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always `false` (there is at least one member).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `127.0.0.1:PORT` of every member's client listener.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// `HOST:PORT` of every member's client listener on the address given to
    /// [`start_cluster_also_on`](Self::start_cluster_also_on) (`None` without one).
    pub fn endpoints_on(&self) -> Option<Vec<String>> {
        let host = self.also_on?;
        Some(
            self.members
                .iter()
                .map(|m| std::net::SocketAddr::new(host, m.client_port).to_string())
                .collect(),
        )
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS) of member `i`.
    pub fn client_url(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// A store spec for all members and mpcluster cluster `cluster`.
    pub fn spec(&self, cluster: &str) -> StoreSpec {
        StoreSpec::Etcd(EtcdSpec {
            endpoints: self.endpoints(),
            cluster: cluster.to_owned(),
        })
    }

    /// Whether member `i`'s process runs.
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.members[i].child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The last lines of member `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        self.members[i].log_tail()
    }

    /// SIGKILL member `i` and reap it (a crash).
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// SIGTERM member `i` and wait for it to exit (killed after 5 s).
    pub fn stop(&mut self, i: usize) {
        self.members[i].stop();
    }

    /// Stop every member (SIGTERM).
    pub fn stop_all(&mut self) {
        for m in &mut self.members {
            m.stop();
        }
    }

    /// Start member `i` again (same data and ports) and wait until it serves requests
    /// (which needs a quorum of members running).
    pub async fn restart(&mut self, i: usize) -> Result<(), EtcdServerError> {
        self.spawn(i)?;
        self.wait_ready(i).await
    }

    /// Start every stopped member again and wait until all serve requests.
    pub async fn restart_all(&mut self) -> Result<(), EtcdServerError> {
        for i in 0..self.members.len() {
            self.spawn(i)?;
        }
        self.wait_ready_all().await
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }
}
