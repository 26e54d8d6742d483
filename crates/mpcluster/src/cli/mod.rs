//! The command line: every clap definition of the binary, and nothing else.
//!
//! These files are compiled twice: into the binary (`main.rs`: `mod cli`), and on their own
//! into the build script (`build.rs`), which generates the shell completions and man pages
//! the Debian package ships. So they name only std and clap, and reach the library types they
//! parse into through `crate::cli_types` (the real types in the binary, stand-ins in the build
//! script: `src/cli/build_types.rs`). Each command's code lives in `crate::cmd`, which
//! re-exports its arguments from here.

use clap::{Parser, Subcommand};

pub mod agent;
pub mod agent_args;
pub mod config;
pub mod config_file;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
pub mod events;
pub mod hints;
pub mod node;
pub mod nodes;
pub mod notify;
pub mod overrides;
pub mod preflight;
pub mod serve;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod storage;
pub mod store_args;
pub mod token;
pub mod wwid;

/// Cluster-wide dm-multipath configuration and health.
#[derive(Debug, Parser)]
#[command(name = "mpcluster", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `mpcluster_agent=debug`.
    #[arg(long, global = true, env = "MPCLUSTER_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Show the cluster LUN x node health matrix.
    Status(status::StatusArgs),
    /// List the cluster's nodes: membership, liveness, last broadcast, errors.
    Nodes(nodes::NodesArgs),
    /// Root-cause hints: what all nodes' paths together say about where a problem is
    /// (target-side, host-side, under-pathed, size mismatch, configuration drift).
    Hints(hints::HintsArgs),
    /// The event history: LUN and cell state changes (recorded once cluster-wide, with
    /// flapping) and the configuration audit trail (`--config`); `--follow` keeps printing.
    Events(events::EventsArgs),
    /// Maintenance pre-flight: would every LUN keep a usable path on every node with these
    /// target ports, nodes or adapters down?
    ///
    /// Exit code 0 safe, 2 unsafe (some LUN would lose its last usable path on some node),
    /// 3 unknown (a node that carries LUNs has stale or no path detail), 1 for bad options.
    Preflight(preflight::PreflightArgs),
    /// Print the cluster snapshot (replay it with `status --snapshot FILE`).
    Snapshot(snapshot::SnapshotArgs),
    /// Run a simulated cluster (embedded store, simulated nodes, real agents and API) with a
    /// looping failure timeline.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Run the API server (and, with the embedded store, this node's agent).
    Serve(serve::ServeArgs),
    /// Run the node agent: collect multipath state and broadcast it.
    Agent(agent::AgentCmdArgs),
    /// This node's multipath state, asked from the local multipathd once; forget a departed
    /// node (remove).
    Node(node::NodeArgs),
    /// The cluster-wide multipath defaults knobs: show, set, unset.
    Config(config::ConfigArgs),
    /// The WWID allow-list with per-LUN alias and knobs: add, remove, list, set.
    Wwid(wwid::WwidArgs),
    /// The admin's verbatim devices/overrides sections: get, set.
    Overrides(overrides::OverridesArgs),
    /// Storage definitions (multipath, LVM on multipath): add, remove, list, set, import-pve.
    Storage(storage::StorageArgs),
    /// API tokens: add (prints the secret once), list, remove.
    Token(token::TokenArgs),
    /// Notification targets (webhook, mail over SMTP, exec hook): add, list, remove, test.
    Notify(notify::NotifyArgs),
    /// Check this node (multipathd, the applied configuration, broadcast, clock, TLS, agent
    /// service); each problem comes with the command that fixes it.
    ///
    /// Reads the settings file like `agent` and `serve`. Exit code 0 when no check found an
    /// error (warnings and skipped checks included), 1 when one did, 2 when the command cannot
    /// run (bad options or settings file).
    Doctor(doctor::DoctorArgs),
}

impl Commands {
    /// Serve, agent and demo run until stopped (see `default_sigpipe` in `main.rs`).
    pub fn long_running(&self) -> bool {
        match self {
            Commands::Serve(_) | Commands::Agent(_) => true,
            #[cfg(feature = "demo")]
            Commands::Demo(_) => true,
            _ => false,
        }
    }
}
