//! The clap arguments of where the read-only commands get the cluster from (the command itself:
//! `crate::cmd::source`).

use std::path::PathBuf;

use clap::Args;

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
