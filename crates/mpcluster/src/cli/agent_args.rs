//! The clap arguments of the node agent's options, shared by `agent` and `serve` (the command
//! itself: `crate::cmd::agent_args`).

use std::path::PathBuf;

use clap::Args;

use crate::cli_types::{DEFAULT_TIMEOUT, NodeName, SocketAddrSpec};

/// Agent options.
#[derive(Debug, Args, Clone)]
pub struct AgentArgs {
    /// This node's name (default: the host name up to the first dot).
    #[arg(long, env = "MPCLUSTER_NODE", value_name = "NAME")]
    pub node: Option<NodeName>,
    /// multipathd's socket: `default` (/run/multipathd.socket if present, else the abstract
    /// @/org/kernel/linux/storage/multipathd), a path, or `@name` for an abstract socket.
    #[arg(long, default_value = "default", value_name = "SOCKET")]
    pub multipathd_socket: SocketAddrSpec,
    /// Timeout for one multipathd command, in seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs_f64(), value_name = "SECONDS")]
    pub multipathd_timeout: f64,
    /// sysfs root (map sizes are read from <DIR>/block/dm-N/size).
    #[arg(long, default_value = "/sys", value_name = "DIR")]
    pub sysfs_root: PathBuf,
    /// Collection interval in seconds.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub interval: f64,
    /// Republish unchanged state this often, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub refresh: u64,
    /// Membership TTL in seconds: how long after a crash the node reads offline.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub member_ttl: u64,
    /// Root directory for applying the cluster configuration: drop-ins go to
    /// <ROOT>/etc/multipath/conf.d, the allow-list to <ROOT>/etc/multipath/wwids.
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Do not apply the cluster configuration on this node (health reporting only).
    #[arg(long)]
    pub no_apply: bool,
    /// Do not listen to kernel uevents: collect on the interval only (with them, a path that
    /// fails or comes back is collected at once).
    #[arg(long)]
    pub no_uevents: bool,
}
