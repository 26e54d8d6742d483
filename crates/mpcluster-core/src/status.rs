//! Status assembly: the cluster status endpoint's logic over a [`Snapshot`].
//!
//! Entry point: [`assemble`]. It decodes every node's raw broadcast tolerantly, resolves
//! liveness (membership and broadcast age), derives per-LUN expected node sets and runs the
//! [`crate::rollup`], then lists per-node apply and collection errors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::broadcast::{self, MapSummary, unix_time};
use crate::hints::{self, Hint, HintInput, HintTracker};
use crate::ids::{NodeName, Wwid};
use crate::payload::DetailPayload;
use crate::plan::ApplyPlan;
use crate::rollup::{LunStatus, RollupInput, aggregate};
use crate::snapshot::Snapshot;
use crate::state::MapState;

/// The cluster status: `{ "luns": [...], "nodes": {...}, "hints": [...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Status {
    /// The matrix rows, sorted by WWID.
    pub luns: Vec<LunStatus>,
    /// Per-node problems; only nodes with a problem (agent, apply, collection, broadcast,
    /// detail or publish error) appear.
    pub nodes: BTreeMap<NodeName, NodeIssues>,
    /// Root-cause hints ([`crate::hints`]), most severe first; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<Hint>,
    /// The LUNs (no `node`) and cells flapping now: at least N changes within a window, until
    /// stable for that window ([`crate::events::flapping`]); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flapping: Vec<crate::events::Flap>,
    /// Problems with the stored documents the status was computed from (an unreadable or
    /// newer storage or configuration document is read as empty, and said here); absent when
    /// there are none. Set by the reader of the store, not by the assembly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// What is known about a node's agent when that is itself the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AgentIssue {
    /// A storage expects the node, but no agent there ever joined the cluster or broadcast:
    /// its cells read `unknown` (nothing is known), and this says why.
    NeverSeen,
}

impl AgentIssue {
    /// One sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            AgentIssue::NeverSeen => {
                "agent never seen: a storage expects this node, but no mpcluster agent there has \
                 ever joined the cluster or broadcast (install and start it, or fix the storage's \
                 node list)"
            }
        }
    }
}

/// A node's reported problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NodeIssues {
    /// The node's agent itself is the problem (e.g. never seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentIssue>,
    /// The node could not apply the cluster configuration.
    #[serde(
        rename = "apply-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub apply_error: Option<String>,
    /// When it reported that (present, possibly `null`, whenever `apply-error` is).
    #[serde(
        rename = "apply-time",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::present_or_null"
    )]
    #[cfg_attr(feature = "schema", schema(value_type = Option<i64>))]
    pub apply_time: Option<Option<i64>>,
    /// The node holds its next apply because it would rename or drop maps, until an admin
    /// accepts it ("apply waiting: would rename mpatha -> 3600...; accept with ...").
    #[serde(
        rename = "apply-waiting",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub apply_waiting: Option<String>,
    /// The node's published apply plan cannot be read (a newer or broken writer).
    #[serde(
        rename = "plan-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub plan_error: Option<String>,
    /// The node could not collect its multipath state.
    #[serde(
        rename = "collect-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub collect_error: Option<String>,
    /// When it reported that (present, possibly `null`, whenever `collect-error` is).
    #[serde(
        rename = "collect-time",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::present_or_null"
    )]
    #[cfg_attr(feature = "schema", schema(value_type = Option<i64>))]
    pub collect_time: Option<Option<i64>>,
    /// The node's health broadcast cannot be used: unreadable, or dated ahead of this reader's
    /// clock by more than [`CLOCK_AHEAD_TOLERANCE`]. Its cells read `unknown`.
    #[serde(
        rename = "broadcast-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub broadcast_error: Option<String>,
    /// The node's per-path detail (`multipath-detail`) cannot be used: unreadable, or out of
    /// date. The matrix is unaffected; hints and the pre-flight cannot see its paths.
    #[serde(
        rename = "detail-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub detail_error: Option<String>,
    /// The node's agent cannot write to the store (known first-hand by the server running
    /// that agent in-process; [`Snapshot::publish_errors`]): what the store holds for the node
    /// is out of date, so its cells read `unknown`.
    #[serde(
        rename = "publish-error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub publish_error: Option<String>,
    /// Since when its writes have been failing (present whenever `publish-error` is).
    #[serde(
        rename = "publish-time",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub publish_time: Option<i64>,
}

/// A broadcast dated this many seconds or less ahead of the reader's clock is taken as is
/// (clocks drift a little); one dated further ahead is not trusted: a forged time or a node
/// whose clock runs ahead would otherwise never become stale.
pub const CLOCK_AHEAD_TOLERANCE: i64 = 30;

/// A status plus what the engine had to ignore or demote to get it (for people and logs; not
/// part of the API's `{luns, nodes}` object).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assembly {
    /// The status.
    pub status: Status,
    /// One line per ignored broadcast, ignored entry or stale node.
    pub notes: Vec<String>,
    /// One entry per known node (member, reporter or expected), sorted by name.
    pub node_overview: Vec<NodeOverview>,
    /// Each node's decoded, current per-path detail (any node: check liveness in
    /// `node_overview`), for the pre-flight ([`crate::preflight`]).
    pub details: BTreeMap<NodeName, Arc<DetailPayload>>,
}

/// What the cluster knows about one node (the `cluster/nodes` view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NodeOverview {
    /// The node.
    pub node: NodeName,
    /// Live for the roll-up: a live member (or standalone) with a fresh broadcast, or a live
    /// member that broadcasts nothing.
    pub online: bool,
    /// Membership as the store reports it; `None` in a standalone cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<bool>,
    /// The time in the node's last health broadcast (unix s), if it has a readable one.
    #[serde(
        rename = "last-broadcast",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_broadcast: Option<i64>,
    /// The broadcast is missing its time or is older than the staleness limit.
    #[serde(default)]
    pub stale: bool,
    /// How many maps its broadcast lists (`None`: no readable broadcast).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps: Option<usize>,
    /// A storage expects multipath on this node.
    #[serde(default)]
    pub expected: bool,
    /// Its reported problems (apply / collect errors), as in [`Status::nodes`].
    #[serde(flatten)]
    pub issues: NodeIssues,
}

/// Longest error text kept from a peer's apply/collect report; longer text is cut.
pub const ERROR_TEXT_MAX_LEN: usize = 4096;

/// Decode a `{"error": "...", "time": <unix s>}` value. `None` when it is unusable or the
/// error is empty (= no error).
fn decode_error_report(raw: &str) -> Option<(String, Option<i64>)> {
    let value: Value = serde_json::from_str(raw).ok()?;
    let obj = value.as_object()?;
    let error = obj.get("error")?.as_str()?;
    if error.is_empty() {
        return None;
    }
    let mut text: String = error.chars().take(ERROR_TEXT_MAX_LEN).collect();
    if text.len() < error.len() {
        text.push('…');
    }
    Some((text, unix_time(obj.get("time"))))
}

/// Compute the cluster status from a snapshot. Pure, deterministic, never panics on peer data.
///
/// Decodes every broadcast; a long-lived reader that recomputes often should keep a
/// [`StatusEngine`] instead, which decodes only what changed.
pub fn assemble(snap: &Snapshot) -> Assembly {
    StatusEngine::default().assemble(snap)
}

/// A node's broadcast as last seen, with its decoded form.
#[derive(Debug)]
struct CachedBroadcast {
    /// A hash of the raw value (not kept twice).
    fingerprint: (u64, usize),
    decoded: Result<broadcast::Decoded, broadcast::DecodeError>,
}

/// A node's path detail as last seen: a hash of the raw value (the value can be 1 MiB; it is
/// not kept twice) and its decoded form.
#[derive(Debug)]
struct CachedDetail {
    fingerprint: (u64, usize),
    decoded: Result<Arc<DetailPayload>, String>,
}

type DecodedBroadcast = Result<broadcast::Decoded, broadcast::DecodeError>;
type DecodedDetail = Result<Arc<DetailPayload>, String>;

/// Below this many bytes to decode, one thread does it all: starting threads costs more, and
/// each new thread's allocations land in a fresh malloc arena that keeps its pages (a node's
/// maximum-size path detail, 1 MiB, decoded on its own thread grew a server's peak RSS by about
/// 11 MiB: `crates/mpcluster/tests/serve_memory.rs`). Several nodes' worth of changes (a
/// server's first status of a big cluster, `status --snapshot`) are decoded in parallel.
const PARALLEL_DECODE_BYTES: usize = 4 << 20;

/// Decode the changed broadcasts and path details, in input order. With more than
/// [`PARALLEL_DECODE_BYTES`] to decode the work is split over the available cores (scoped
/// threads; pure computation, no I/O): a big cluster's first status is mostly decoding.
fn decode_all(
    broadcasts: &[(&NodeName, &String, (u64, usize))],
    details: &[(&NodeName, &String, (u64, usize))],
) -> (Vec<DecodedBroadcast>, Vec<DecodedDetail>) {
    let decode_b = |raw: &str| broadcast::decode(raw);
    let decode_d = |raw: &str| {
        DetailPayload::decode(raw)
            .map(Arc::new)
            .map_err(|e| crate::error_chain(&e))
    };
    let bytes: usize = broadcasts
        .iter()
        .chain(details)
        .map(|(_, raw, _)| raw.len())
        .sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if bytes < PARALLEL_DECODE_BYTES || threads < 2 {
        return (
            broadcasts.iter().map(|(_, r, _)| decode_b(r)).collect(),
            details.iter().map(|(_, r, _)| decode_d(r)).collect(),
        );
    }
    // Every thread takes every `threads`-th item of both lists (sizes are alike per kind).
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let b: Vec<(usize, DecodedBroadcast)> = broadcasts
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, (_, r, _))| (i, decode_b(r)))
                        .collect();
                    let d: Vec<(usize, DecodedDetail)> = details
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, (_, r, _))| (i, decode_d(r)))
                        .collect();
                    (b, d)
                })
            })
            .collect();
        let mut b: Vec<Option<DecodedBroadcast>> = (0..broadcasts.len()).map(|_| None).collect();
        let mut d: Vec<Option<DecodedDetail>> = (0..details.len()).map(|_| None).collect();
        for w in workers {
            // A decoder never panics (it is fuzzed); if it did, the panic goes on here.
            let (wb, wd) = w.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            for (i, x) in wb {
                b[i] = Some(x);
            }
            for (i, x) in wd {
                d[i] = Some(x);
            }
        }
        (
            b.into_iter().flatten().collect(),
            d.into_iter().flatten().collect(),
        )
    })
}

/// A value's change-detection key: its length and a fast 64-bit multiply-rotate hash over
/// 8-byte words (a few instructions per word; SipHash cost a tenth of a big status). Only a
/// node's own value is compared with its own earlier one, so a crafted collision could only
/// hide that node's own change from the reader.
fn fingerprint(raw: &str) -> (u64, usize) {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes = raw.as_bytes();
    let mut chunks = bytes.chunks_exact(8);
    let mut h: u64 = K ^ bytes.len() as u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    (h ^ (h >> 32), raw.len())
}

/// Status assembly that remembers decoded broadcasts and path detail between calls: a value
/// that did not change is not decoded again. It also keeps each root-cause hint's `since`
/// ([`HintTracker`]). Results are identical to [`assemble`] but for `since`.
#[derive(Debug, Default)]
pub struct StatusEngine {
    cache: BTreeMap<NodeName, CachedBroadcast>,
    details: BTreeMap<NodeName, CachedDetail>,
    hints: HintTracker,
}

impl StatusEngine {
    /// Compute the status of `snap`, reusing decoded broadcasts from earlier calls.
    pub fn assemble(&mut self, snap: &Snapshot) -> Assembly {
        self.cache
            .retain(|node, _| snap.kv.multipath.contains_key(node));
        self.details
            .retain(|node, _| snap.kv.multipath_detail.contains_key(node));
        // What changed since the last call, decoded below (in parallel when it is a lot).
        let broadcasts: Vec<(&NodeName, &String, (u64, usize))> = snap
            .kv
            .multipath
            .iter()
            .map(|(n, raw)| (n, raw, fingerprint(raw)))
            .filter(|(n, _, fp)| self.cache.get(*n).is_none_or(|c| c.fingerprint != *fp))
            .collect();
        let details: Vec<(&NodeName, &String, (u64, usize))> = snap
            .kv
            .multipath_detail
            .iter()
            .map(|(n, raw)| (n, raw, fingerprint(raw)))
            .filter(|(n, _, fp)| self.details.get(*n).is_none_or(|c| c.fingerprint != *fp))
            .collect();
        let (decoded_b, decoded_d) = decode_all(&broadcasts, &details);
        for ((node, _, fp), decoded) in broadcasts.into_iter().zip(decoded_b) {
            self.cache.insert(
                node.clone(),
                CachedBroadcast {
                    fingerprint: fp,
                    decoded,
                },
            );
        }
        for ((node, _, fp), decoded) in details.into_iter().zip(decoded_d) {
            self.details.insert(
                node.clone(),
                CachedDetail {
                    fingerprint: fp,
                    decoded,
                },
            );
        }
        let mut assembly = assemble_decoded(snap, &self.cache, &self.details);
        self.hints
            .stamp(&mut assembly.status.hints, &snap.hint_since);
        assembly
    }

    /// Since when each current hint has held (for a snapshot's `hint-since`).
    pub fn hint_since(&self) -> &BTreeMap<String, i64> {
        self.hints.since()
    }
}

fn assemble_decoded(
    snap: &Snapshot,
    cache: &BTreeMap<NodeName, CachedBroadcast>,
    detail_cache: &BTreeMap<NodeName, CachedDetail>,
) -> Assembly {
    let mut notes = Vec::new();
    let stale_after = snap.stale_after();

    let mut node_maps: BTreeMap<NodeName, &BTreeMap<Wwid, MapSummary>> = BTreeMap::new();
    let mut truncated: BTreeSet<NodeName> = BTreeSet::new();
    // Too old or undated (the seed's staleness), and unusable (unreadable, dated ahead): both
    // make the node offline for the roll-up.
    let mut stale: BTreeSet<&NodeName> = BTreeSet::new();
    let mut untrusted: BTreeSet<&NodeName> = BTreeSet::new();
    let mut broadcast_errors: BTreeMap<&NodeName, String> = BTreeMap::new();
    for (node, cached) in cache {
        match &cached.decoded {
            Ok(decoded) => {
                if !decoded.ignored.is_empty() {
                    notes.push(format!(
                        "node {node}: ignored {} malformed map entr{} ({})",
                        decoded.ignored.len(),
                        if decoded.ignored.len() == 1 {
                            "y"
                        } else {
                            "ies"
                        },
                        decoded.ignored.first().map_or("", String::as_str)
                    ));
                }
                match decoded.broadcast.time {
                    None => {
                        stale.insert(node);
                        notes.push(format!(
                            "node {node}: broadcast has no time; treated as offline"
                        ));
                    }
                    Some(t) if snap.now.saturating_sub(t) > stale_after as i64 => {
                        stale.insert(node);
                        notes.push(format!(
                            "node {node}: broadcast is {} s old (limit {stale_after} s); treated as offline",
                            snap.now.saturating_sub(t)
                        ));
                    }
                    Some(t) if t.saturating_sub(snap.now) > CLOCK_AHEAD_TOLERANCE => {
                        untrusted.insert(node);
                        broadcast_errors.insert(
                            node,
                            format!(
                                "broadcast dated {} s ahead of this reader's clock (tolerance \
                                 {CLOCK_AHEAD_TOLERANCE} s): is that node's clock ahead? Its maps \
                                 are not trusted until the times agree",
                                t.saturating_sub(snap.now)
                            ),
                        );
                    }
                    Some(_) => {}
                }
                if decoded.broadcast.truncated.is_some_and(|n| n > 0) {
                    truncated.insert(node.clone());
                }
                node_maps.insert(node.clone(), &decoded.broadcast.maps);
            }
            Err(e) => {
                // Nothing of it can be used: the node is offline for the roll-up (its cells
                // `unknown`, never `missing`), and the admin is told why.
                untrusted.insert(node);
                notes.push(format!("node {node}: broadcast ignored: {e}"));
                broadcast_errors.insert(node, format!("broadcast unreadable: {e}"));
            }
        }
    }

    // A node whose agent cannot publish (its server knows): nothing the store holds for it
    // is current, whatever its age.
    for (node, failure) in &snap.publish_errors {
        untrusted.insert(node);
        notes.push(format!(
            "node {node}: its agent has not been able to publish to the store for {} s ({}); treated as offline",
            snap.now.saturating_sub(failure.since),
            failure.error
        ));
    }

    let standalone = snap.members.is_empty();
    let member_online = |node: &NodeName| snap.members.get(node).is_some_and(|m| m.online);

    // Liveness exactly as the seed: a node is online if the membership is empty (standalone)
    // or lists it as online, and its broadcast (if any) is fresh. A node absent from a
    // non-empty membership is offline, so its expected cells read `unknown`.
    let online: BTreeSet<NodeName> = node_maps
        .keys()
        .chain(snap.expectations.nodes.iter())
        .filter(|n| {
            (standalone || member_online(n)) && !stale.contains(n) && !untrusted.contains(n)
        })
        .cloned()
        .collect();

    let allow: BTreeSet<Wwid> = snap.config.wwids.iter().cloned().collect();
    let expected: BTreeMap<Wwid, BTreeSet<NodeName>> = allow
        .iter()
        .map(|w| {
            let set = snap
                .expectations
                .wwid_nodes
                .get(w)
                .unwrap_or(&snap.expectations.nodes);
            (w.clone(), set.clone())
        })
        .collect();

    let luns = aggregate(&RollupInput {
        allow: &allow,
        aliases: &snap.config.aliases,
        consumers: &snap.expectations.consumers,
        node_maps: &node_maps,
        online: &online,
        expected: &expected,
        truncated: &truncated,
    });

    // An offline node cannot clear its own KV: skip its errors (standalone: always keep).
    let mut nodes: BTreeMap<NodeName, NodeIssues> = BTreeMap::new();
    // Expected nodes nobody has heard from: say why their cells read `unknown`.
    for node in &snap.expectations.nodes {
        if !standalone && !snap.members.contains_key(node) && !snap.kv.multipath.contains_key(node)
        {
            nodes.entry(node.clone()).or_default().agent = Some(AgentIssue::NeverSeen);
        }
    }
    for (node, raw) in &snap.kv.multipath_apply {
        if !standalone && !member_online(node) {
            continue;
        }
        if let Some((error, time)) = decode_error_report(raw) {
            let issues = nodes.entry(node.clone()).or_default();
            issues.apply_error = Some(error);
            issues.apply_time = Some(time);
        }
    }
    for (node, raw) in &snap.kv.multipath_plan {
        if !standalone && !member_online(node) {
            continue;
        }
        match ApplyPlan::decode(raw) {
            Ok(plan) if plan.waiting => {
                let summary = plan
                    .summary
                    .unwrap_or_else(|| "apply waiting for an acceptance".to_owned());
                let summary: String = summary.chars().take(ERROR_TEXT_MAX_LEN).collect();
                nodes.entry(node.clone()).or_default().apply_waiting = Some(format!(
                    "{summary}; see `mpcluster config plan --node {node}`, accept with \
                     `mpcluster config accept --node {node}`"
                ));
            }
            Ok(_) => {}
            Err(e) => {
                notes.push(format!("node {node}: apply plan ignored: {e}"));
                nodes.entry(node.clone()).or_default().plan_error =
                    Some(format!("apply plan unreadable: {e}"));
            }
        }
    }
    for (node, error) in broadcast_errors {
        if standalone || member_online(node) {
            nodes.entry(node.clone()).or_default().broadcast_error = Some(error);
        }
    }
    for (node, failure) in &snap.publish_errors {
        let issues = nodes.entry(node.clone()).or_default();
        issues.publish_error = Some(format!(
            "the agent cannot publish to the cluster store: {}; what the store holds for this \
             node is out of date",
            failure.error
        ));
        issues.publish_time = Some(failure.since);
    }
    for (node, raw) in &snap.kv.multipath_collect {
        if !standalone && !member_online(node) {
            continue;
        }
        if let Some((error, time)) = decode_error_report(raw) {
            let issues = nodes.entry(node.clone()).or_default();
            issues.collect_error = Some(error);
            issues.collect_time = Some(time);
        }
    }

    // Path detail: used only when current; a live node's unusable detail is an issue (never
    // silently dropped), an offline node's only a note.
    let mut details: BTreeMap<NodeName, Arc<DetailPayload>> = BTreeMap::new();
    for (node, cached) in detail_cache {
        let problem = match &cached.decoded {
            Ok(d) => {
                let age = snap.now.saturating_sub(d.time);
                if age > stale_after as i64 {
                    Some(format!(
                        "path detail is {age} s old (limit {stale_after} s); hints and the \
                         pre-flight cannot see this node's paths"
                    ))
                } else if -age > CLOCK_AHEAD_TOLERANCE {
                    Some(format!(
                        "path detail dated {} s ahead of this reader's clock; not used",
                        -age
                    ))
                } else {
                    details.insert(node.clone(), Arc::clone(d));
                    None
                }
            }
            Err(e) => Some(format!("path detail unreadable: {e}")),
        };
        if let Some(problem) = problem {
            notes.push(format!("node {node}: {problem}"));
            if online.contains(node) {
                nodes.entry(node.clone()).or_default().detail_error = Some(problem);
            }
        }
    }
    let hints = hints::compute(&HintInput {
        now: snap.now,
        live: &online,
        luns: &luns,
        node_maps: &node_maps,
        details: &details,
        issues: &nodes,
    });

    let mut known: BTreeSet<&NodeName> = snap.members.keys().collect();
    known.extend(cache.keys());
    known.extend(snap.expectations.nodes.iter());
    known.extend(nodes.keys());
    let node_overview = known
        .into_iter()
        .map(|node| {
            let decoded = cache.get(node).and_then(|c| c.decoded.as_ref().ok());
            NodeOverview {
                node: node.clone(),
                online: if cache.contains_key(node) || snap.expectations.nodes.contains(node) {
                    online.contains(node)
                } else {
                    (standalone || member_online(node))
                        && !stale.contains(node)
                        && !untrusted.contains(node)
                },
                member: (!standalone).then(|| member_online(node)),
                last_broadcast: decoded.and_then(|d| d.broadcast.time),
                stale: stale.contains(node),
                maps: decoded.map(|d| d.broadcast.maps.len()),
                expected: snap.expectations.nodes.contains(node),
                issues: nodes.get(node).cloned().unwrap_or_default(),
            }
        })
        .collect();

    Assembly {
        status: Status {
            flapping: {
                let rows: BTreeSet<&Wwid> = luns.iter().map(|l| &l.wwid).collect();
                snap.flapping
                    .iter()
                    .filter(|f| rows.contains(&f.wwid))
                    .cloned()
                    .collect()
            },
            luns,
            nodes,
            hints,
            problems: Vec::new(),
        },
        notes,
        node_overview,
        details,
    }
}

/// Monitoring verdict (Nagios/Icinga plugin exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckLevel {
    /// Every LUN optimal, no node errors.
    Ok = 0,
    /// Some LUN degraded or missing, or a node has a problem (apply, collect, broadcast or
    /// publish error, agent never seen).
    Warning = 1,
    /// Some LUN failed.
    Critical = 2,
    /// Some LUN unknown (and nothing worse), or the status could not be read.
    Unknown = 3,
}

impl Status {
    /// The monitoring verdict: failed beats degraded/missing/node errors, which beat unknown.
    pub fn check_level(&self) -> CheckLevel {
        let states: BTreeSet<MapState> = self.luns.iter().map(|l| l.cluster_state).collect();
        if states.contains(&MapState::Failed) {
            CheckLevel::Critical
        } else if states.contains(&MapState::Degraded)
            || states.contains(&MapState::Missing)
            || !self.nodes.is_empty()
        {
            CheckLevel::Warning
        } else if states.contains(&MapState::Unknown) {
            CheckLevel::Unknown
        } else {
            CheckLevel::Ok
        }
    }

    /// How many LUNs are in each cluster state.
    pub fn counts(&self) -> BTreeMap<MapState, usize> {
        let mut out = BTreeMap::new();
        for l in &self.luns {
            *out.entry(l.cluster_state).or_default() += 1;
        }
        out
    }
}
