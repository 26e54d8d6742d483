//! Stand-ins for the library types the clap definitions name, for `build.rs`: it compiles
//! `src/cli` on its own (to generate the shell completions and man pages) without compiling
//! the library crates. Values parsed with these types are never used there; what the
//! generated files show (names, defaults, help) must equal the real definitions, which the
//! test `cli_types::tests::build_stand_ins_match` checks.

#![allow(dead_code)]

use std::time::Duration;

/// `mpcluster_core::NodeName`.
pub type NodeName = String;
/// `mpcluster_store::StoreSpec`.
pub type StoreSpec = String;
/// `mpcluster_agent::SocketAddrSpec`.
pub type SocketAddrSpec = String;
/// `mpcluster_agent::client::DEFAULT_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// `mpcluster_core::pve_import::DEFAULT_STORAGE_CFG`.
pub const DEFAULT_STORAGE_CFG: &str = "/etc/pve/storage.cfg";
