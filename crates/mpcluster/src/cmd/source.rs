//! Where a read-only command gets the cluster from: a snapshot file, a running server
//! (`--server URL`, which exports the snapshot its status was computed from) or the cluster
//! store directly (`--store SPEC`). All three yield a [`Snapshot`], so every command computes
//! the same status the same way.
//!
//! A server needs an API token with `Sys.Audit`: `--token-file FILE` (or `MPCLUSTER_TOKEN`
//! holding `<id>:<secret>`; never on the command line). For an `https://` server with a
//! self-signed certificate, `--ca FILE` or `--fingerprint SHA256` says whom to trust.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use mpcluster_core::snapshot::Snapshot;

use super::store_args::StoreArgs;

/// Where to read the cluster from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read a cluster snapshot file (`-` reads stdin) instead of a live cluster.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    pub snapshot: Option<PathBuf>,
    /// Ask a running `mpcluster serve` (e.g. http://127.0.0.1:8470).
    #[arg(long, env = "MPCLUSTER_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Staleness limit in seconds when reading the store directly (default 180).
    #[arg(long, value_name = "SECONDS")]
    pub stale_after: Option<u64>,
    #[command(flatten)]
    pub store: StoreArgs,
}

impl SourceArgs {
    /// Load the snapshot.
    pub async fn load(&self) -> anyhow::Result<Snapshot> {
        if let Some(path) = &self.snapshot {
            return read_snapshot_file(path);
        }
        if let Some(url) = &self.server {
            let client = self.client.client()?;
            return fetch_snapshot(url.clone(), client).await;
        }
        let store = self.store.open().await?;
        let read = mpcluster_config::read_snapshot(
            store.as_ref(),
            mpcluster_config::unix_now(),
            self.stale_after,
            None,
        )
        .await
        .with_context(|| format!("cannot read the cluster from {}", store.describe()))?;
        for note in &read.notes {
            eprintln!("note: {note}");
        }
        Ok(read.snapshot)
    }
}

/// Read and check a snapshot file (`-` = stdin).
pub fn read_snapshot_file(path: &PathBuf) -> anyhow::Result<Snapshot> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the snapshot from stdin")?;
        s
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read snapshot {}", path.display()))?
    };
    Snapshot::from_json(&text).with_context(|| format!("snapshot {}", path.display()))
}

/// How to talk to a server: its API token and, for HTTPS, whom to trust.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// --server: file holding the API token as `<id>:<secret>` (as `mpcluster token add`
    /// prints it). Without it the environment variable MPCLUSTER_TOKEN is used.
    #[arg(long, env = "MPCLUSTER_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// --server https://: trust server certificates signed by this CA (PEM).
    #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
    pub ca: Option<PathBuf>,
    /// --server https://: trust exactly the server certificate with this SHA-256 fingerprint
    /// (64 hex digits, colons allowed; `mpcluster serve` prints it), e.g. a self-signed one.
    #[arg(long, value_name = "SHA256HEX")]
    pub fingerprint: Option<String>,
}

/// An HTTP client for one server: a ureq agent (rustls, ring) and the `Authorization` value.
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("token", &self.authorization.is_some())
            .finish_non_exhaustive()
    }
}

/// Read a token (`<id>:<secret>`) from a file or a variable's text, naming `source` on error
/// (never the secret).
fn parse_token(text: &str, source: &str) -> anyhow::Result<String> {
    let p = mpcluster_core::tokens::parse_credential(text.trim(), ':').with_context(|| {
        format!("{source} does not hold an API token of the form <id>:<secret>")
    })?;
    Ok(format!("Bearer {}:{}", p.id, p.secret))
}

impl ClientArgs {
    /// The client these options describe.
    pub fn client(&self) -> anyhow::Result<HttpClient> {
        let mut builder = ureq::AgentBuilder::new();
        let trust = match (&self.ca, &self.fingerprint) {
            (Some(ca), _) => Some(mpcluster_server::tls::ServerTrust::Ca(ca.clone())),
            (None, Some(fp)) => Some(mpcluster_server::tls::ServerTrust::Fingerprint(
                mpcluster_server::tls::parse_fingerprint(fp)?,
            )),
            (None, None) => None,
        };
        if let Some(trust) = trust {
            let config = mpcluster_server::tls::client_config(&trust)?;
            builder = builder.tls_config(Arc::new(config));
        }
        let authorization = match (&self.token_file, std::env::var("MPCLUSTER_TOKEN")) {
            (Some(file), _) => Some(parse_token(
                &read_token_file(file)?,
                &format!("the token file {}", file.display()),
            )?),
            (None, Ok(text)) if !text.is_empty() => {
                Some(parse_token(&text, "the variable MPCLUSTER_TOKEN")?)
            }
            _ => None,
        };
        Ok(HttpClient {
            agent: builder.build(),
            authorization,
        })
    }
}

fn read_token_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))
}

/// GET `<url>/api2/json/cluster/multipath/snapshot` and unwrap `{"data": ...}`.
async fn fetch_snapshot(url: String, client: HttpClient) -> anyhow::Result<Snapshot> {
    let endpoint = format!(
        "{}/api2/json/cluster/multipath/snapshot",
        url.trim_end_matches('/')
    );
    let text = tokio::task::spawn_blocking(move || http_get(&client, &endpoint))
        .await
        .context("the HTTP request task failed")??;
    let value: serde_json::Value =
        serde_json::from_str(&text).context("the server's reply is not JSON")?;
    let data = value
        .get("data")
        .context("the server's reply has no \"data\"")?;
    Snapshot::from_json(&data.to_string()).context("the server's snapshot")
}

/// A blocking GET returning the body; non-2xx statuses become errors carrying the server's
/// message.
pub fn http_get(client: &HttpClient, url: &str) -> anyhow::Result<String> {
    let mut req = client
        .agent
        .get(url)
        .timeout(std::time::Duration::from_secs(10));
    if let Some(auth) = &client.authorization {
        req = req.set("Authorization", auth);
    }
    match req.call() {
        Ok(resp) => resp.into_string().context("cannot read the server's reply"),
        Err(ureq::Error::Status(code, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or(body);
            let hint = match (code, &client.authorization) {
                (401, None) => " (give an API token: --token-file FILE or MPCLUSTER_TOKEN)",
                _ => "",
            };
            bail!("{url}: HTTP {code}: {message}{hint}")
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot reach {url}"))),
    }
}
