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
    /// Flapping: a LUN or cell with at least this many changes within --flap-window is
    /// marked flapping (until stable for the window).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..))]
    pub flap_changes: u32,
    /// Flapping: the window in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(i64).range(1..))]
    pub flap_window: i64,
    /// Event history: drop events older than this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..))]
    pub event_retention_days: i64,
    /// Event history: keep at most about this many events (dropped 500 at a time, oldest
    /// first).
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1000..))]
    pub event_retention_max: u64,
    #[command(flatten)]
    pub agent: AgentArgs,
}
