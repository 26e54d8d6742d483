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
use mpcluster_core::snapshot::Snapshot;

pub use crate::cli::source::{ClientArgs, SourceArgs};

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
        let (store, pve) = self.store.open_cluster().await?;
        let read = mpcluster_config::read_snapshot(
            store.as_ref(),
            mpcluster_config::unix_now(),
            self.stale_after,
            None,
            pve.as_ref(),
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

impl HttpClient {
    /// A blocking POST of a JSON body returning the reply's body; non-2xx statuses become
    /// errors carrying the server's message.
    pub fn post_json(&self, url: &str, body: &str) -> anyhow::Result<String> {
        let mut req = self
            .agent
            .post(url)
            .timeout(std::time::Duration::from_secs(10))
            .set("Content-Type", "application/json");
        if let Some(auth) = &self.authorization {
            req = req.set("Authorization", auth);
        }
        reply(self, url, req.send_string(body))
    }
}

/// The body of a reply, or an error naming the status and the server's message.
fn reply(
    client: &HttpClient,
    url: &str,
    result: Result<ureq::Response, ureq::Error>,
) -> anyhow::Result<String> {
    match result {
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
    reply(client, url, req.call())
}
