//! The clap arguments of `mpcluster doctor` (the command itself: `crate::cmd::doctor`).
//!
//! The options it shares with `agent` and `serve` have their names, so the settings file
//! (`crate::config_file`) gives doctor what the services run with.

use std::path::PathBuf;

use clap::Args;

use super::config_file::ConfigFileArgs;
use super::status::Format;
use super::store_args::StoreArgs;
use crate::cli_types::{DEFAULT_TIMEOUT, NodeName, SocketAddrSpec};

/// Arguments of `mpcluster doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub config_file: ConfigFileArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// This node's name (default: the host name up to the first dot; in Proxmox mode
    /// corosync's name of this host).
    #[arg(long, env = "MPCLUSTER_NODE", value_name = "NAME")]
    pub node: Option<NodeName>,
    /// multipathd's socket: `default` (/run/multipathd.socket if present, else the abstract
    /// @/org/kernel/linux/storage/multipathd), a path, or `@name` for an abstract socket.
    #[arg(long, default_value = "default", value_name = "SOCKET")]
    pub multipathd_socket: SocketAddrSpec,
    /// Timeout for one multipathd command, in seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs_f64(), value_name = "SECONDS")]
    pub multipathd_timeout: f64,
    /// Root directory the agent applies the cluster configuration under (its drop-ins in
    /// <ROOT>/etc/multipath/conf.d, the allow-list in <ROOT>/etc/multipath/wwids).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// The agent runs with --no-apply: do not expect mpcluster's drop-ins on this node.
    #[arg(long)]
    pub no_apply: bool,
    /// The server's certificate (PEM) to check: an error once expired, a warning 30 days
    /// before.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Staleness limit for broadcasts in seconds (default 180).
    #[arg(long, value_name = "SECONDS")]
    pub stale_after: Option<u64>,
    /// Also compare this node's clock with a running `mpcluster serve`'s (its Date header),
    /// e.g. https://pve2:8470.
    #[arg(long, env = "MPCLUSTER_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// --server https://: trust server certificates signed by this CA (PEM).
    #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
    pub ca: Option<PathBuf>,
    /// --server https://: trust exactly the server certificate with this SHA-256 fingerprint
    /// (64 hex digits, colons allowed).
    #[arg(long, value_name = "SHA256HEX")]
    pub fingerprint: Option<String>,
    /// The systemctl program that is asked whether mpcluster-agent.service is active.
    #[arg(long, default_value = "systemctl", value_name = "PROGRAM")]
    pub systemctl: PathBuf,
    /// Output format; `json` prints `{"node", "errors", "warnings", "findings": [{"check",
    /// "severity", "what", "fix"}]}`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
