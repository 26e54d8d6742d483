//! The clap arguments of `mpcluster events` (the command itself: `crate::cmd::events`).

use clap::Args;

use super::source::SourceArgs;
use super::status::Format;

/// Arguments of `mpcluster events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only this LUN (WWID).
    #[arg(long, value_name = "WWID")]
    pub wwid: Option<String>,
    /// Only this node's cells.
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// From this time on: unix seconds or an age (`90s`, `15m`, `1h`, `7d`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Before this time: unix seconds or an age.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Only the configuration audit trail (who changed what, digests before and after).
    #[arg(long, conflicts_with = "health")]
    pub config: bool,
    /// Only matrix changes (LUN cluster states and cells).
    #[arg(long)]
    pub health: bool,
    /// At most this many events (the newest).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Keep printing new events as they are recorded (Ctrl-C ends).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Output format (`json`: a JSON array; with --follow one JSON object per line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
