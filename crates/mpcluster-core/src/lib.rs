//! mpcluster-core: the pure heart of mpcluster. No async runtime, no sockets, no files.
//!
//! - [`ids`]: validated identifiers (WWID, node name, alias).
//! - [`state`]: cell/LUN health states and their severity order.
//! - [`config`]: the cluster multipath configuration: knob table, allow-list, overrides, rendering.
//! - [`broadcast`]: the per-node health broadcast and its tolerant decoder.
//! - [`rollup`]: the LUN x node matrix and per-LUN cluster state (the seed's roll-up).
//! - [`storage`]: storage definitions and the expectations derived from them.
//! - [`snapshot`]: the cluster snapshot format (offline replay, support bundles).
//! - [`status`]: status assembly from a snapshot: liveness, staleness, apply errors.
//! - [`table`]: the human table rendering of a status.
//! - [`preflight`]: maintenance pre-flight: would every LUN keep a usable path on every node?
//! - [`format`]: format versions of everything stored (rolling upgrades).
//! - [`events`]: the event history (matrix and configuration changes), flapping, the log head.
//! - [`notify`]: notification targets, messages and the outbox (grouping, reminders, flapping).
//! - [`hints`]: root-cause hints from all nodes' paths (target-side, host-side, under-pathed, ...).
//! - `synthetic` (feature `synthetic`): generated snapshots of any size (benchmarks, load tests).
//! - [`multipathd`]: multipathd output model, parsers (JSON and raw text formats), map health.
//! - [`payload`]: building the broadcast payload within its size budget, change detection.
//! - [`pve_import`]: importing multipath and LVM storages from a Proxmox VE `storage.cfg`.
#![warn(missing_docs)]

pub mod broadcast;
pub mod config;
pub mod digest;
pub mod events;
pub mod format;
pub mod hints;
pub mod ids;
pub mod multipathd;
pub mod notify;
pub mod payload;
pub mod plan;
pub mod preflight;
pub mod pve_import;
pub mod rollup;
#[cfg(feature = "schema")]
mod schema;
mod serde_util;
pub mod snapshot;
pub mod state;
pub mod status;
pub mod storage;
#[cfg(feature = "synthetic")]
pub mod synthetic;
pub mod table;
pub mod tokens;

pub use ids::{Alias, IdError, NodeName, StorageId, Wwid};
pub use state::MapState;

/// An error and all its sources in one line (`a: b: c`). Our errors never repeat their source
/// in `Display`, so this is how they are logged and published.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}
