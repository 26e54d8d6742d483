//! The clap arguments of `mpcluster overrides` (the command itself: `crate::cmd::overrides`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::status::Format;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster overrides`.
#[derive(Debug, Args)]
pub struct OverridesArgs {
    #[command(subcommand)]
    pub command: OverridesCommand,
}

/// `mpcluster overrides` subcommands.
#[derive(Debug, Subcommand)]
pub enum OverridesCommand {
    /// Print the overrides text.
    Get(GetArgs),
    /// Replace the overrides with the text of FILE (`-` reads stdin).
    Set(SetArgs),
}

/// Arguments of `mpcluster overrides get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format: the text as is (`table`), or `{content, digest}` (`json`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `mpcluster overrides set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The file with the `devices { ... }` and/or `overrides { ... }` sections; `-` = stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}
