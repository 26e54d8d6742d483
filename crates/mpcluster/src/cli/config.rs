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
