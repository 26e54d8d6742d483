//! Where a read-only command gets the cluster from: a snapshot file, a running server
//! (`--server URL`, which exports the snapshot its status was computed from) or the cluster
//! store directly (`--store SPEC`). All three yield a [`Snapshot`], so every command computes
//! the same status the same way.

use std::io::Read as _;
use std::path::PathBuf;

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
            return fetch_snapshot(url.clone()).await;
        }
        let store = self.store.open().await?;
        let read = mpcluster_server::read::read_snapshot(
            store.as_ref(),
            mpcluster_server::read::unix_now(),
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

/// GET `<url>/api2/json/cluster/multipath/snapshot` and unwrap `{"data": ...}`.
async fn fetch_snapshot(url: String) -> anyhow::Result<Snapshot> {
    let endpoint = format!(
        "{}/api2/json/cluster/multipath/snapshot",
        url.trim_end_matches('/')
    );
    let text = tokio::task::spawn_blocking(move || http_get(&endpoint))
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
pub fn http_get(url: &str) -> anyhow::Result<String> {
    match ureq::get(url)
        .timeout(std::time::Duration::from_secs(10))
        .call()
    {
        Ok(resp) => resp.into_string().context("cannot read the server's reply"),
        Err(ureq::Error::Status(code, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or(body);
            bail!("{url}: HTTP {code}: {message}")
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot reach {url}"))),
    }
}
