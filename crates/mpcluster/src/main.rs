//! `mpcluster`: cluster-wide dm-multipath configuration and health.
//!
//! Each subcommand is a thin call into the library crates; this file only parses arguments,
//! sets up logging and the async runtime, and maps results to exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Cluster-wide dm-multipath configuration and health.
#[derive(Debug, Parser)]
#[command(name = "mpcluster", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `mpcluster_agent=debug`.
    #[arg(long, global = true, env = "MPCLUSTER_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Show the cluster LUN x node health matrix.
    Status(cmd::status::StatusArgs),
    /// List the cluster's nodes: membership, liveness, last broadcast, errors.
    Nodes(cmd::nodes::NodesArgs),
    /// Print the cluster snapshot (replay it with `status --snapshot FILE`).
    Snapshot(cmd::snapshot::SnapshotArgs),
    /// Run a simulated cluster (embedded store, simulated nodes, real agents and API) with a
    /// looping failure timeline.
    #[cfg(feature = "demo")]
    Demo(cmd::demo::DemoArgs),
    /// Run the API server (and, with the embedded store, this node's agent).
    Serve(cmd::serve::ServeArgs),
    /// Run the node agent: collect multipath state and broadcast it.
    Agent(cmd::agent::AgentCmdArgs),
    /// This node's multipath state, asked from the local multipathd once; forget a departed
    /// node (remove).
    Node(cmd::node::NodeArgs),
    /// The cluster-wide multipath defaults knobs: show, set, unset.
    Config(cmd::config::ConfigArgs),
    /// The WWID allow-list with per-LUN alias and knobs: add, remove, list, set.
    Wwid(cmd::wwid::WwidArgs),
    /// The admin's verbatim devices/overrides sections: get, set.
    Overrides(cmd::overrides::OverridesArgs),
    /// Storage definitions (multipath, LVM on multipath): add, remove, list, set, import-pve.
    Storage(cmd::storage::StorageArgs),
    /// API tokens: add (prints the secret once), list, remove.
    Token(cmd::token::TokenArgs),
}

impl Commands {
    /// Serve, agent and demo run until stopped (see [`default_sigpipe`]).
    fn long_running(&self) -> bool {
        match self {
            Commands::Serve(_) | Commands::Agent(_) => true,
            #[cfg(feature = "demo")]
            Commands::Demo(_) => true,
            _ => false,
        }
    }
}

/// Restore the default SIGPIPE disposition, so a short-lived command whose reader goes away
/// (`mpcluster status | head -1`) ends quietly like other Unix tools instead of panicking in
/// `println!`. Long-running commands (serve, agent, demo) keep Rust's default of ignoring it.
/// Sockets are unaffected either way: std writes to them with `MSG_NOSIGNAL`.
fn default_sigpipe() {
    // SAFETY: called first thing in `main`, before any thread exists; SIG_DFL is a valid
    // disposition and installs no handler code.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.command.long_running() {
        default_sigpipe();
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mpcluster: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Commands::Status(args) => cmd::status::run(args).await,
            Commands::Nodes(args) => cmd::nodes::run(args).await,
            Commands::Snapshot(args) => cmd::snapshot::run(args).await,
            #[cfg(feature = "demo")]
            Commands::Demo(args) => cmd::demo::run(args).await,
            Commands::Serve(args) => cmd::serve::run(args).await,
            Commands::Agent(args) => cmd::agent::run(args).await,
            Commands::Node(args) => cmd::node::run(args).await,
            Commands::Config(args) => cmd::config::run(args).await,
            Commands::Wwid(args) => cmd::wwid::run(args).await,
            Commands::Overrides(args) => cmd::overrides::run(args).await,
            Commands::Storage(args) => cmd::storage::run(args).await,
            Commands::Token(args) => cmd::token::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("mpcluster: {:#}", failure.error);
            ExitCode::from(failure.exit_code)
        }
    }
}
