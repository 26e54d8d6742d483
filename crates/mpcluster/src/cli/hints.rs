//! The clap arguments of `mpcluster hints` (the command itself: `crate::cmd::hints`).

use clap::Args;

use super::source::SourceArgs;
use super::status::Format;

/// Arguments of `mpcluster hints`.
#[derive(Debug, Args)]
pub struct HintsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format (`json`: the status's `hints` list).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
