//! The clap arguments of `mpcluster demo` (the command itself: `crate::cmd::demo`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Arguments of `mpcluster demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of simulated nodes (2 to 64).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=64))]
    pub nodes: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8470", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Seconds between timeline steps.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub step: u64,
    /// Keep the demo's store and sockets here (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
