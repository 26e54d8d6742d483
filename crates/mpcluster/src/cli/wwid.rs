//! The clap arguments of `mpcluster wwid` (the command itself: `crate::cmd::wwid`).

use clap::{Args, Subcommand};

use super::status::Format;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster wwid`.
#[derive(Debug, Args)]
pub struct WwidArgs {
    #[command(subcommand)]
    pub command: WwidCommand,
}

/// `mpcluster wwid` subcommands.
#[derive(Debug, Subcommand)]
pub enum WwidCommand {
    /// Add a LUN to the allow-list: `mpcluster wwid add WWID [--alias A] [KNOB=VALUE...]`.
    Add(AddArgs),
    /// Remove a LUN from the allow-list.
    Remove(RemoveArgs),
    /// List the allow-list with aliases and per-LUN knobs.
    List(ListArgs),
    /// Change a listed LUN: `mpcluster wwid set WWID [--alias A] [KNOB=VALUE...] [--delete KNOB]`.
    Set(SetArgs),
}

/// Arguments of `mpcluster wwid add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The LUN's WWID, as multipathd reports it.
    pub wwid: String,
    /// Map name to use instead of the WWID (A-Z a-z 0-9 . _ -, unique in the cluster).
    #[arg(long)]
    pub alias: Option<String>,
    /// Per-LUN knobs, `KNOB=VALUE`.
    #[arg(value_name = "KNOB=VALUE")]
    pub knobs: Vec<String>,
}

/// Arguments of `mpcluster wwid remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The LUN's WWID.
    pub wwid: String,
}

/// Arguments of `mpcluster wwid list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `mpcluster wwid set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The LUN's WWID.
    pub wwid: String,
    /// New alias.
    #[arg(long)]
    pub alias: Option<String>,
    /// Per-LUN knobs to set, `KNOB=VALUE`.
    #[arg(value_name = "KNOB=VALUE")]
    pub knobs: Vec<String>,
    /// Properties to clear (`alias` or knob names; repeat or separate with commas).
    #[arg(long, value_name = "KNOB", value_delimiter = ',')]
    pub delete: Vec<String>,
}
