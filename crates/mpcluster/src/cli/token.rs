//! The clap arguments of `mpcluster token` (the command itself: `crate::cmd::token`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::status::Format;
use super::store_args::StoreArgs;

/// Arguments of `mpcluster token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// `mpcluster token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Add a token and print its secret (`<id>:<secret>`), once.
    Add(AddArgs),
    /// List the tokens (ids, privileges, expiry; never secrets).
    List(ListArgs),
    /// Remove a token: it stops working at once.
    Remove(RemoveArgs),
}

/// Arguments of `mpcluster token add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The token id: letters, digits, '.', '_' and '-' (at most 64).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Privileges: `Sys.Audit` (read everything) and/or `Sys.Modify` (change everything),
    /// comma-separated.
    #[arg(long, value_name = "PRIVS", required = true)]
    pub privs: String,
    /// When the token stops working: YYYY-MM-DD (00:00 UTC that day), YYYY-MM-DDTHH:MM[:SS]Z,
    /// @UNIXSECONDS or +N[smhd] (e.g. +90d). Default: never.
    #[arg(long, value_name = "DATE")]
    pub expire: Option<String>,
    /// A note shown by `token list`.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Write the credential to this new file (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `mpcluster token list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `mpcluster token remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The token id.
    #[arg(value_name = "NAME")]
    pub name: String,
}
