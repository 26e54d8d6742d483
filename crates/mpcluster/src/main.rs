//! `mpcluster`: cluster-wide dm-multipath configuration and health.
//!
//! Each subcommand is a thin call into the library crates; this file only parses arguments,
//! sets up logging and the async runtime, and maps results to exit codes.

use std::process::ExitCode;

use clap::FromArgMatches as _;

use cli::{Cli, Commands};

mod cli;
mod cli_types;
mod cmd;
mod config_file;
mod systemd;

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

/// `cli:<user>@<host>` (the login name behind sudo, else the user's; the uid if unknown).
fn cli_actor() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid{}", rustix::process::getuid().as_raw()));
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("cli:{user}@{host}")
}

fn main() -> ExitCode {
    // With the settings file of `agent` and `serve` (command line > environment > file >
    // default).
    let matches = config_file::parse_command_line();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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

    // Configuration changes this process makes directly in the store name it in the audit
    // trail (a server names the request's token instead).
    mpcluster_config::events::set_default_actor(cli_actor());

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
            Commands::Hints(args) => cmd::hints::run(args).await,
            Commands::Events(args) => cmd::events::run(args).await,
            Commands::Preflight(args) => cmd::preflight::run(args).await,
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
            Commands::Notify(args) => cmd::notify::run(args).await,
            Commands::Doctor(args) => cmd::doctor::run(args).await,
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
