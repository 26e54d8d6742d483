//! The clap arguments of `mpcluster nodes` (the command itself: `crate::cmd::nodes`).

use clap::Args;

use super::source::SourceArgs;
use super::status::Format;

/// Arguments of `mpcluster nodes`.
#[derive(Debug, Args)]
pub struct NodesArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
