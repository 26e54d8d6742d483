//! The clap arguments of `mpcluster config` (the command itself: `crate::cmd::config`).

use clap::{Args, Subcommand};

use super::status::Format;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `mpcluster config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the cluster's defaults knobs (and, with --knobs, every knob with its values).
    Show(ShowArgs),
    /// Set defaults knobs: `mpcluster config set polling-interval=5 no-path-retry=queue`.
    Set(SetArgs),
    /// Unset defaults knobs (multipath's own default applies again).
    Unset(UnsetArgs),
    /// What each node's next apply would change: maps renamed (and to what), maps no longer
    /// multipathed, drop-ins and wwids entries written or removed; and whether it waits for
    /// `config accept`.
    Plan(PlanArgs),
    /// Let a node's waiting apply go ahead (`--node N`: exactly the plan it shows now), or set
    /// whether applies that rename or drop maps always go ahead (`--always true|false`).
    Accept(AcceptArgs),
}

/// Arguments of `mpcluster config plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `mpcluster config accept`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["node", "always"])))]
pub struct AcceptArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Accept this node's current plan (see `mpcluster config plan --node N`).
    #[arg(long)]
    pub node: Option<String>,
    /// Cluster setting: apply renames and drops on every node without asking (`true`), or
    /// hold them until accepted per node (`false`, the default).
    #[arg(long, value_name = "BOOL")]
    pub always: Option<bool>,
}

/// Arguments of `mpcluster config show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// List every knob mpcluster manages: accepted values, per-LUN or not, description.
    #[arg(long)]
    pub knobs: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `mpcluster config set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// `KNOB=VALUE` pairs (see `mpcluster config show --knobs`).
    #[arg(required = true, value_name = "KNOB=VALUE")]
    pub assignments: Vec<String>,
}

/// Arguments of `mpcluster config unset`.
#[derive(Debug, Args)]
pub struct UnsetArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Knob names.
    #[arg(required = true, value_name = "KNOB")]
    pub knobs: Vec<String>,
}
