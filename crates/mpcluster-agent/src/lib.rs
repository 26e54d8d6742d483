//! mpcluster-agent: the node side of mpcluster (I/O lives here; pure logic in `mpcluster-core`).
//!
//! - [`client`]: the multipathd CLI socket client, [`MultipathdClient`] (one command per
//!   connection, timeout, typed errors for `fail`/`timeout`/permission/help replies).
//! - [`protocol`]: the socket protocol as pure functions (framing, reply classification).
//! - [`socket`]: [`SocketAddrSpec`], the `--multipathd-socket` value (`default`, `@name`, path).
//! - [`sysfs`]: [`read_map_size`], a map's size from `/sys/block/dm-N/size`; [`sysfs::read_path_info`],
//!   a path's target port (iSCSI portal, FC remote port, NVMe controller).
//! - [`collect`]: one collection: multipathd -> parse -> sysfs sizes -> [`mpcluster_core::multipathd::NodeReport`].
//! - [`apply`]: applying the cluster configuration (drop-ins, parser check, wwids file,
//!   reconfigure).
//! - [`parser_check`]: [`ParserCheck`], the installed `multipath -t` judging a candidate
//!   configuration (directly, or in a private mount namespace under another root).
//! - [`run`]: the agent loop (membership, broadcast on change/refresh, collection errors).
//! - [`uevent`]: kernel uevents (netlink) that make the agent collect at once (a path failed,
//!   a map reloaded), parsed and judged by pure functions.
//! - `sim` (feature `sim`): simulated nodes (maps and paths rendered as multipathd replies) for
//!   the demo and tests.
//! - `fake` (feature `fake`): `FakeMultipathd`, a fake daemon on the same protocol for tests and
//!   `demo`.
//!
//! The daemon builds neither: `fake` and `sim` are features that the binary's `demo` feature
//! and the tests (through dev-dependencies) turn on.
#![warn(missing_docs)]

pub mod apply;
pub mod client;
pub mod collect;
pub mod doctor;
#[cfg(feature = "fake")]
pub mod fake;
pub mod parser_check;
pub mod protocol;
pub mod run;
#[cfg(feature = "sim")]
pub mod sim;
pub mod socket;
pub mod sysfs;
pub mod uevent;

pub use client::{ClientError, MultipathdClient, Reply};
#[cfg(feature = "fake")]
pub use fake::{FakeController, FakeHandle, FakeMultipathd, Misbehaviour};
pub use parser_check::{ParserCheck, ParserCheckError, ParserRun};
pub use socket::{ResolvedSocket, SocketAddrSpec};
pub use sysfs::{SysfsError, read_map_size};
