//! The clap arguments of `mpcluster preflight` (the command itself: `crate::cmd::preflight`).

use clap::Args;

use super::source::SourceArgs;
use super::status::Format;

/// Arguments of `mpcluster preflight`.
#[derive(Debug, Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// A component to take down: `target=<portal|WWPN|NQN|IQN>`, `node=<node>` or
    /// `node=<node>,adapter=<adapter>` (`host3`, a PCI address, an initiator address or a host
    /// WWPN). Repeat it to take several down at once.
    #[arg(long = "down", value_name = "COMPONENT", required = true)]
    pub down: Vec<String>,
    /// List the LUNs that would keep fewer usable paths than this on some node (default 2).
    #[arg(long, value_name = "N")]
    pub min_paths: Option<u32>,
    /// Output format (`json`: the pre-flight report).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
