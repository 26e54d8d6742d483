//! `mpcluster hints`: the root-cause hints of the cluster status (the same list `status`
//! prints under the matrix), from a snapshot file, a server or the store.
//!
//! Exit codes: 0 (hints or not); 2 when the cluster cannot be read.

use std::process::ExitCode;

use anyhow::Context as _;
use mpcluster_core::status::assemble;
use mpcluster_core::table::{self, TableOptions};

use super::Failure;
pub use crate::cli::hints::HintsArgs;
use crate::cli::status::Format;

/// Run the command.
pub async fn run(args: &HintsArgs) -> Result<ExitCode, Failure> {
    let snap = args.source.load().await.map_err(|e| Failure::new(2, e))?;
    let assembly = assemble(&snap);
    let hints = &assembly.status.hints;
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(hints)
                .context("cannot encode the hints")
                .map_err(|e| Failure::new(2, e))?;
            println!("{text}");
        }
        Format::Table if hints.is_empty() => println!("No hints: nothing points at a cause."),
        Format::Table => {
            let text = table::render_hints(
                hints,
                TableOptions {
                    color: super::stdout_color(),
                },
            );
            print!("{}", text.trim_start_matches('\n'));
        }
    }
    Ok(ExitCode::SUCCESS)
}
