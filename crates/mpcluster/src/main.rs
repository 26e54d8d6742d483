//! `mpcluster`: cluster-wide dm-multipath configuration and health.
//!
//! Each subcommand is a thin call into the library crates; this file only parses arguments and
//! maps results to exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Cluster-wide dm-multipath configuration and health.
#[derive(Debug, Parser)]
#[command(name = "mpcluster", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Show the cluster LUN x node health matrix.
    Status(cmd::status::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Status(args) => cmd::status::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("mpcluster: {:#}", failure.error);
            ExitCode::from(failure.exit_code)
        }
    }
}
