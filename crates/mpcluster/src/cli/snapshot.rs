//! The clap arguments of `mpcluster snapshot` (the command itself: `crate::cmd::snapshot`).

use clap::Args;

use super::source::SourceArgs;

/// Arguments of `mpcluster snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}
