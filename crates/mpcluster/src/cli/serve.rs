//! The clap arguments of `mpcluster serve` (the command itself: `crate::cmd::serve`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::agent_args::AgentArgs;
use super::config_file::ConfigFileArgs;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config_file: ConfigFileArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on. A non-loopback address needs --tls-cert/--tls-key (or
    /// --insecure-http).
    #[arg(long, default_value = "127.0.0.1:8470", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM, server certificate first). Re-read on
    /// SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM). Re-read on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address: API tokens and the configuration then
    /// cross the network readable by anyone on the path.
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_http: bool,
    /// Where the first `serve` on a store without tokens writes the admin token (mode 0600).
    /// Default: `admin-token` in the embedded store's directory; for etcd
    /// /var/lib/mpcluster/admin-token (as root).
    #[arg(long, env = "MPCLUSTER_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Do not run the local agent even with the embedded store.
    #[arg(long)]
    pub no_agent: bool,
    /// Staleness limit for broadcasts in seconds (default 180).
    #[arg(long, value_name = "SECONDS")]
    pub stale_after: Option<u64>,
    /// Serve /metrics (Prometheus) without an API token. Anyone who can reach the listen
    /// address then reads the names of the cluster's LUNs, aliases and nodes and their health,
    /// and can make the server render a scrape.
    #[arg(long)]
    pub metrics_public: bool,
    #[command(flatten)]
    pub agent: AgentArgs,
}
