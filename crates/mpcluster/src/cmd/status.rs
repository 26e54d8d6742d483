//! `mpcluster status`: the cluster health matrix, from a snapshot file, a server or the store.
//!
//! Exit codes: 0 on success; with `--check` the monitoring verdict (0 all optimal, 1 degraded,
//! missing or a node error, 2 failed, 3 unknown or unreadable); 2 for an unreadable snapshot or
//! unreachable cluster without `--check`.

use std::process::ExitCode;

use anyhow::Context as _;
use mpcluster_core::status::{CheckLevel, assemble};
use mpcluster_core::table::{self, TableOptions};

use super::Failure;
pub use crate::cli::status::{Format, StatusArgs};

/// Run the command.
pub async fn run(args: &StatusArgs) -> Result<ExitCode, Failure> {
    let unreadable = if args.check { 3 } else { 2 };
    let snap = args
        .source
        .load()
        .await
        .map_err(|e| Failure::new(unreadable, e))?;
    let assembly = assemble(&snap);
    match args.format {
        Format::Json => {
            // Written straight into a buffered stdout (the body is megabytes at scale).
            use std::io::Write as _;
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            serde_json::to_writer_pretty(&mut out, &assembly.status)
                .context("cannot encode the status")
                .and_then(|()| writeln!(out).context("cannot write the status"))
                .and_then(|()| out.flush().context("cannot write the status"))
                .map_err(|e| Failure::new(unreadable, e))?;
        }
        Format::Table => {
            print!(
                "{}",
                table::render(
                    &assembly.status,
                    TableOptions {
                        color: super::stdout_color(),
                    }
                )
            );
            print!(
                "{}",
                table::render_hints(
                    &assembly.status.hints,
                    TableOptions {
                        color: super::stdout_color(),
                    }
                )
            );
            print!(
                "{}",
                table::render_flapping(
                    &assembly.status.flapping,
                    &assembly.status.luns,
                    TableOptions {
                        color: super::stdout_color(),
                    }
                )
            );
            for note in &assembly.notes {
                eprintln!("note: {}", table::terminal_safe(note));
            }
        }
    }
    let code = if args.check {
        assembly.status.check_level() as u8
    } else {
        CheckLevel::Ok as u8
    };
    // The process ends right after this: freeing a big cluster's snapshot and matrix piece by
    // piece would only cost time (about a tenth of a 64 x 1024 run).
    std::mem::forget(assembly);
    std::mem::forget(snap);
    Ok(ExitCode::from(code))
}
