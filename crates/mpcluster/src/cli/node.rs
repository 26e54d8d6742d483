//! The clap arguments of `mpcluster node` (the command itself: `crate::cmd::node`).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::store_args::StoreArgs;
use crate::cli_types::{DEFAULT_TIMEOUT, SocketAddrSpec};

/// Arguments of `mpcluster node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    pub command: NodeCommand,
}

/// The `node` subcommands.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Show this node's multipath maps, their health and their paths (asks multipathd once).
    Status(NodeStatusArgs),
    /// Print the health broadcast this node's agent would publish now (the exact value on
    /// stdout; its size, and whether it was reduced or truncated, on stderr).
    Broadcast(NodeBroadcastArgs),
    /// Forget a departed node: remove its membership record and everything it published from
    /// the cluster store, so it leaves the status. Refused while it is online.
    Remove(NodeRemoveArgs),
}

/// Arguments of `mpcluster node remove`.
#[derive(Debug, Args)]
pub struct NodeRemoveArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The node to forget.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Remove it even while it is online (its agent, if still running, publishes again and
    /// the node reappears).
    #[arg(long)]
    pub force: bool,
}

/// Where to collect from (the agent's options of the same names).
#[derive(Debug, Args, Clone)]
pub struct CollectArgs {
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
}

/// Output format of `node status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people: one line per map, its paths indented below it.
    Table,
    /// The node report `{"maps": [...], "errors": [...]}` as JSON.
    Json,
}

/// Arguments of `mpcluster node status`.
#[derive(Debug, Args)]
pub struct NodeStatusArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `mpcluster node broadcast`.
#[derive(Debug, Args)]
pub struct NodeBroadcastArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
}
