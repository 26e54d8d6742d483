//! The clap arguments of `mpcluster status` (and the shared `--format`) (the command itself:
//! `crate::cmd::status`).

use clap::{Args, ValueEnum};

use super::source::SourceArgs;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// The `{luns, nodes}` object as JSON.
    Json,
}

/// Arguments of `mpcluster status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit with a monitoring code: 0 optimal, 1 degraded/missing/node error, 2 failed,
    /// 3 unknown or unreadable.
    #[arg(long)]
    pub check: bool,
}
