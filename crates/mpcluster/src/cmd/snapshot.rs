//! `mpcluster snapshot`: print the cluster snapshot (for support bundles; replay it with
//! `mpcluster status --snapshot FILE`).

use std::process::ExitCode;

use super::Failure;
pub use crate::cli::snapshot::SnapshotArgs;

/// Run the command.
pub async fn run(args: &SnapshotArgs) -> Result<ExitCode, Failure> {
    let snap = args.source.load().await.map_err(|e| Failure::new(2, e))?;
    let text = serde_json::to_string_pretty(&snap).map_err(|e| Failure::new(2, e))?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
