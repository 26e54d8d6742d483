//! The cluster snapshot: everything the status engine reads, in one JSON document.
//!
//! The server exports it for support bundles (`mpcluster snapshot`), `mpcluster status
//! --snapshot FILE` replays it offline, and the server itself builds one from the store to
//! compute the live status, so offline and live status share one code path.
//!
//! ```json
//! { "version": 1, "now": 1767225600, "stale-after": 180,
//!   "config": { "wwids": ["<wwid>"], "aliases": { "<wwid>": "<alias>" } },
//!   "members": { "<node>": { "online": true } },
//!   "kv": { "multipath": { "<node>": "<raw broadcast>" },
//!           "multipath-apply": { "<node>": "<raw>" }, "multipath-collect": { "<node>": "<raw>" },
//!           "multipath-plan": { "<node>": "<raw>" }, "multipath-detail": { "<node>": "<raw>" } },
//!   "expectations": { "nodes": { "<node>": 1 }, "wwid-nodes": { "<wwid>": { "<node>": 1 } },
//!                     "consumers": { "<wwid>": "<storage-id>" } },
//!   "publish-errors": { "<node>": { "error": "<text>", "since": 1767225590 } },
//!   "hint-since": { "<hint id>": 1767225500 } }
//! ```
//! Unknown extra fields anywhere are ignored. `publish-errors` is absent when empty: only a
//! server running a node's agent in-process knows that agent's failed writes (the store could
//! not take them), and it adds them here so every reader of its snapshot sees them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{Alias, NodeName, Wwid};
use crate::storage::Expectations;

/// The only snapshot format version this build reads and writes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Broadcasts older than this many seconds make their node offline: three 60 s refresh
/// intervals.
pub const DEFAULT_STALE_AFTER: u64 = 180;

/// The node KV keys the status engine reads.
pub mod kv_keys {
    /// Per-node health broadcast.
    pub const HEALTH: &str = "multipath";
    /// Per-node config apply failure `{"error","time"}`.
    pub const APPLY: &str = "multipath-apply";
    /// Per-node collection failure `{"error","time"}`.
    pub const COLLECT: &str = "multipath-collect";
    /// Per-node per-path detail for the node view.
    pub const DETAIL: &str = "multipath-detail";
    /// Per-node apply plan: what the next apply would change ([`crate::plan::ApplyPlan`]).
    pub const PLAN: &str = "multipath-plan";
}

/// The cluster store documents mpcluster keeps (digest-guarded, cluster-wide).
pub mod doc_names {
    /// The multipath configuration (defaults, allow-list, aliases, per-LUN knobs).
    pub const CONFIG: &str = "multipath-config";
    /// The admin's verbatim `devices` / `overrides` sections.
    pub const OVERRIDES: &str = "multipath-overrides";
    /// Storage definitions.
    pub const STORAGE: &str = "storage";
    /// API tokens.
    pub const TOKENS: &str = "tokens";
    /// Acceptance of applies that rename or drop maps ([`crate::plan::Acceptance`]).
    pub const ACCEPT: &str = "multipath-accept";
    /// Notification targets ([`crate::notify::TargetsDoc`]).
    pub const NOTIFY_TARGETS: &str = "notify-targets";
    /// The notification outbox ([`crate::notify::Outbox`]).
    pub const NOTIFY_OUTBOX: &str = "notify-outbox";
}

/// A cluster snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// Format version; must be [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Unix seconds, the reader's clock when the snapshot was taken.
    pub now: i64,
    /// Staleness limit in seconds ([`DEFAULT_STALE_AFTER`] when absent).
    #[serde(
        rename = "stale-after",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stale_after: Option<u64>,
    /// The cluster configuration's allow-list and aliases.
    #[serde(default)]
    pub config: SnapshotConfig,
    /// Membership; empty = standalone.
    #[serde(default)]
    pub members: BTreeMap<NodeName, Member>,
    /// Node KV values as stored (raw strings, decoded tolerantly by the status engine).
    #[serde(default)]
    pub kv: KvSnapshot,
    /// What the storage definitions expect.
    #[serde(default)]
    pub expectations: Expectations,
    /// Nodes whose agent currently fails to write to the store, as the server running that
    /// agent in-process knows first-hand: what the store holds for them is out of date.
    #[serde(
        rename = "publish-errors",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub publish_errors: BTreeMap<NodeName, PublishError>,
    /// Since when each current root-cause hint has held, by [`crate::hints::Hint::id`]: a
    /// server keeps these across recomputations and exports them, so a replay shows the same
    /// `since`.
    #[serde(
        rename = "hint-since",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub hint_since: BTreeMap<String, i64>,
    /// The LUNs and cells flapping at `now` ([`crate::events::flapping`], from the cluster's
    /// event history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flapping: Vec<crate::events::Flap>,
}

/// An agent's writes to the store fail: its last attempt's error, and since when its writes
/// have been failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PublishError {
    /// The store's error on the last attempt.
    pub error: String,
    /// Unix seconds of the first failure in this run of failures.
    pub since: i64,
}

/// The part of the multipath configuration the status needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SnapshotConfig {
    /// The WWID allow-list.
    #[serde(default)]
    pub wwids: Vec<Wwid>,
    /// Aliases per WWID.
    #[serde(default)]
    pub aliases: BTreeMap<Wwid, Alias>,
}

/// A cluster member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Member {
    /// Whether the node is currently a live member (`true`/`false` or `1`/`0`).
    #[serde(deserialize_with = "crate::serde_util::bool_or_int::deserialize")]
    pub online: bool,
}

/// The node KV keys the status engine reads, each `{node: raw string}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct KvSnapshot {
    /// Health broadcasts.
    #[serde(default)]
    pub multipath: BTreeMap<NodeName, String>,
    /// Apply failures.
    #[serde(rename = "multipath-apply", default)]
    pub multipath_apply: BTreeMap<NodeName, String>,
    /// Collection failures.
    #[serde(rename = "multipath-collect", default)]
    pub multipath_collect: BTreeMap<NodeName, String>,
    /// Apply plans ([`crate::plan::ApplyPlan`]); absent in snapshots of older builds.
    #[serde(
        rename = "multipath-plan",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub multipath_plan: BTreeMap<NodeName, String>,
    /// Per-path detail ([`crate::payload::DetailPayload`]): the root-cause hints and the
    /// maintenance pre-flight read it; absent in snapshots of older builds.
    #[serde(
        rename = "multipath-detail",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub multipath_detail: BTreeMap<NodeName, String>,
}

/// A snapshot that cannot be read, with the JSON path of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid snapshot at {path}: {problem}")]
pub struct SnapshotError {
    /// JSON path (`.` is the document root).
    pub path: String,
    /// What is wrong there.
    pub problem: String,
}

impl Snapshot {
    /// Parse and check a snapshot document.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        // The fast path; only a failed parse is repeated with the path tracking (which costs
        // about a third more on a big snapshot) to say where the problem is.
        let snap = match serde_json::from_str::<Snapshot>(text) {
            Ok(snap) => snap,
            Err(_) => Snapshot::from_json_traced(text)?,
        };
        Snapshot::check_version(snap)
    }

    fn from_json_traced(text: &str) -> Result<Snapshot, SnapshotError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // serde_json appends " at line L column C" to data errors; keep it, it helps.
            SnapshotError {
                path,
                problem: inner.to_string(),
            }
        })
    }

    fn check_version(snap: Snapshot) -> Result<Snapshot, SnapshotError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(SnapshotError {
                path: "version".to_owned(),
                problem: format!(
                    "unsupported version {} (this build reads version {SNAPSHOT_VERSION})",
                    snap.version
                ),
            });
        }
        Ok(snap)
    }

    /// The staleness limit in force.
    pub fn stale_after(&self) -> u64 {
        self.stale_after.unwrap_or(DEFAULT_STALE_AFTER)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn minimal_and_extra_fields() {
        let s = Snapshot::from_json(
            r#"{"version":1,"now":5,"extra":{"x":1},"members":{"a":{"online":1,"ip":"x"}}}"#,
        )
        .unwrap();
        assert_eq!(s.now, 5);
        assert!(s.members[&NodeName::new("a").unwrap()].online);
        assert_eq!(s.stale_after(), 180);
    }

    #[test]
    fn errors_name_the_path() {
        let cases = [
            ("[]", "."),
            (r#"{"version":2,"now":1}"#, "version"),
            (r#"{"version":1}"#, "."),
            (r#"{"version":1,"now":"x"}"#, "now"),
            (
                r#"{"version":1,"now":1,"config":{"wwids":["ok","bad wwid"]}}"#,
                "config.wwids[1]",
            ),
            (
                r#"{"version":1,"now":1,"members":{"n":{"online":"yes"}}}"#,
                "members.n.online",
            ),
            (
                r#"{"version":1,"now":1,"kv":{"multipath":{"n":{"maps":{}}}}}"#,
                "kv.multipath.n",
            ),
            (
                r#"{"version":1,"now":1,"expectations":{"nodes":{"a":7}}}"#,
                "expectations.nodes",
            ),
            (
                r#"{"version":1,"now":1,"config":{"aliases":{"w":"a b"}}}"#,
                "config.aliases.w",
            ),
        ];
        for (text, path) in cases {
            let e = Snapshot::from_json(text).unwrap_err();
            assert_eq!(e.path, path, "{text}: {e}");
        }
        let e = Snapshot::from_json(r#"{"version":1,"now":1,"config":{"wwids":["bad wwid"]}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("invalid WWID \"bad wwid\""), "{e}");
    }
}
