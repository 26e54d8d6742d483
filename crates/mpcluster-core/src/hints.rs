//! Root-cause hints: what the paths of all nodes, taken together, say about where a problem
//! is. One node's matrix cell says *that* a LUN lost paths; comparing nodes says *where*: the
//! same target port failing on every node is the array or its network, one node losing every
//! path through one adapter while its peers are fine is that node's HBA, cable or switch port.
//!
//! Entry point: [`compute`] (pure: the status, the nodes' broadcast summaries and decoded
//! path detail in, the hints out, each with `since` = now); [`HintTracker`] keeps each hint's
//! `since` across recomputations (by [`Hint::id`]).
//!
//! Kinds ([`HintKind`]):
//! - `target-side`: a target port (iSCSI portal, FC WWPN, NVMe controller; the target's name
//!   when the port is not known) has failed paths on every live node with paths through it,
//!   and at least two nodes have paths through it;
//! - `host-side`: a node lost every path through one of its host adapters (or all of them)
//!   while each target those paths lead to is reachable from a peer, and no peer lost all its
//!   paths to it;
//! - `under-pathed`: a node has fewer paths to a LUN than its peers (the most common path
//!   count among them), all of them healthy;
//! - `size-mismatch`: the nodes report different sizes for a LUN (the smaller ones need a
//!   rescan);
//! - `config-drift`: a node failed to apply the cluster configuration, or holds an apply that
//!   waits for an acceptance, so it runs another configuration than the cluster's.
//!
//! Only live nodes (online, fresh broadcast) count: a hint never names an offline or stale
//! node, and their old paths never make a target look down.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::broadcast::MapSummary;
use crate::ids::{NodeName, Wwid};
use crate::multipathd::PortKind;
use crate::payload::DetailPayload;
use crate::rollup::LunStatus;
use crate::status::NodeIssues;
use crate::table::human_size;

/// What a hint is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum HintKind {
    /// A target port failing on every node: the array or its network.
    TargetSide,
    /// One node lost an adapter's paths while its peers are fine: that node's HBA, cable,
    /// switch port or storage network.
    HostSide,
    /// A node sees fewer paths than its peers, all healthy: zoning, iSCSI login, a removed path.
    UnderPathed,
    /// Nodes see different sizes of a LUN: resized on the array, some nodes need a rescan.
    SizeMismatch,
    /// A node runs another configuration than the cluster's (apply failed or waiting).
    ConfigDrift,
}

impl HintKind {
    /// Every kind.
    pub const ALL: [HintKind; 5] = [
        HintKind::TargetSide,
        HintKind::HostSide,
        HintKind::UnderPathed,
        HintKind::SizeMismatch,
        HintKind::ConfigDrift,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HintKind::TargetSide => "target-side",
            HintKind::HostSide => "host-side",
            HintKind::UnderPathed => "under-pathed",
            HintKind::SizeMismatch => "size-mismatch",
            HintKind::ConfigDrift => "config-drift",
        }
    }
}

/// How urgent a hint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth knowing; nothing is at risk yet.
    Info,
    /// Redundancy is reduced or something is inconsistent.
    Warning,
    /// Some LUN has no usable path left on some node.
    Critical,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One root-cause hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct Hint {
    /// Stable identity of the hint (kind and what it is about): the same problem keeps its
    /// id, and so its `since`, across recomputations.
    pub id: String,
    /// What it is about.
    pub kind: HintKind,
    /// How urgent.
    pub severity: Severity,
    /// The nodes it names (live nodes only), sorted.
    pub nodes: Vec<NodeName>,
    /// The LUNs it concerns, sorted.
    #[serde(default)]
    pub luns: Vec<Wwid>,
    /// The target port involved: an iSCSI portal (`10.0.0.1:3260`), an FC WWPN, an NVMe
    /// controller address, or the target's name when the port is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<String>,
    /// What `target-port` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_kind: Option<PortKind>,
    /// The target's name (iSCSI IQN, NVMe NQN, FC WWNN), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The host adapters involved (`host3`, `nvme0`, or multipathd's adapter address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_adapters: Vec<String>,
    /// Unix seconds since when the hint has held (kept across recomputations by the server).
    pub since: i64,
    /// One plain sentence: what is wrong and where to look.
    pub message: String,
}

/// The inputs of [`compute`], all borrowed.
#[derive(Debug, Clone, Copy)]
pub struct HintInput<'a> {
    /// The reader's clock (unix s): `since` of every new hint.
    pub now: i64,
    /// The live nodes (online with a fresh broadcast); nothing else is looked at.
    pub live: &'a BTreeSet<NodeName>,
    /// The matrix rows (aliases).
    pub luns: &'a [LunStatus],
    /// Each node's decoded broadcast summaries.
    pub node_maps: &'a BTreeMap<NodeName, &'a BTreeMap<Wwid, MapSummary>>,
    /// Each node's decoded, current path detail.
    pub details: &'a BTreeMap<NodeName, Arc<DetailPayload>>,
    /// Per-node issues of the status (apply errors, waiting applies).
    pub issues: &'a BTreeMap<NodeName, NodeIssues>,
}

/// Most names listed in one sentence before "and N more".
const LIST_MAX: usize = 6;

/// `a, b and c`, at most [`LIST_MAX`] names then `and N more`.
fn list<S: AsRef<str>>(items: &[S]) -> String {
    let shown: Vec<&str> = items.iter().take(LIST_MAX).map(AsRef::as_ref).collect();
    let rest = items.len().saturating_sub(LIST_MAX);
    match (shown.as_slice(), rest) {
        ([], _) => String::new(),
        ([one], 0) => (*one).to_owned(),
        (many, 0) => format!(
            "{} and {}",
            many[..many.len() - 1].join(", "),
            many[many.len() - 1]
        ),
        (many, rest) => format!("{} and {rest} more", many.join(", ")),
    }
}

/// One path as the hint engine sees it.
struct Obs<'a> {
    node: &'a NodeName,
    wwid: &'a Wwid,
    port: Option<(PortKind, String)>,
    target: Option<String>,
    adapter: Option<String>,
    adapter_desc: Option<String>,
    usable: bool,
}

/// A path's target key: its port, or the LUN when the port is not known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TargetKey<'a> {
    Port(PortKind, String),
    Lun(&'a Wwid),
}

impl<'a> Obs<'a> {
    fn key(&self) -> TargetKey<'a> {
        match &self.port {
            Some((k, id)) => TargetKey::Port(*k, id.clone()),
            None => TargetKey::Lun(self.wwid),
        }
    }
}

/// Compute the hints (see the module docs). `since` is `input.now` on every hint; sorted by
/// severity (most severe first), then id.
pub fn compute(input: &HintInput<'_>) -> Vec<Hint> {
    let names = lun_names(input);
    let mut hints = Vec::new();
    let obs = observations(input);
    target_side(input, &obs, &names, &mut hints);
    host_side(input, &obs, &names, &mut hints);
    under_pathed(input, &names, &mut hints);
    size_mismatch(input, &names, &mut hints);
    config_drift(input, &mut hints);
    hints.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    hints
}

/// What people call each LUN: its alias, else the map name a node uses, else the WWID.
fn lun_names(input: &HintInput<'_>) -> BTreeMap<Wwid, String> {
    let mut names: BTreeMap<Wwid, String> = BTreeMap::new();
    for (node, detail) in input.details {
        if !input.live.contains(node) {
            continue;
        }
        for m in &detail.maps {
            if m.name != m.wwid.as_str() {
                names
                    .entry(m.wwid.clone())
                    .or_insert_with(|| m.name.clone());
            }
        }
    }
    for l in input.luns {
        if let Some(a) = &l.alias {
            names.insert(l.wwid.clone(), a.as_str().to_owned());
        }
    }
    names
}

fn name_of(names: &BTreeMap<Wwid, String>, wwid: &Wwid) -> String {
    names
        .get(wwid)
        .cloned()
        .unwrap_or_else(|| wwid.as_str().to_owned())
}

fn lun_list(names: &BTreeMap<Wwid, String>, luns: &BTreeSet<&Wwid>) -> String {
    let shown: Vec<String> = luns.iter().map(|w| name_of(names, w)).collect();
    list(&shown)
}

fn observations<'a>(input: &HintInput<'a>) -> Vec<Obs<'a>> {
    let mut out = Vec::new();
    for (node, detail) in input.details {
        if !input.live.contains(node) {
            continue;
        }
        for map in &detail.maps {
            for group in &map.path_groups {
                for path in &group.paths {
                    let tp = path.target_port();
                    let adapter_desc = [path.host_adapter.as_deref(), path.host_wwpn.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ");
                    out.push(Obs {
                        node,
                        wwid: &map.wwid,
                        target: tp.as_ref().and_then(|t| t.target.clone()),
                        port: tp.map(|t| (t.kind, t.id)),
                        adapter: path.adapter(),
                        adapter_desc: (!adapter_desc.is_empty()).then_some(adapter_desc),
                        usable: path.usable,
                    });
                }
            }
        }
    }
    out
}

/// Whether `node` has no usable path to `wwid` (its broadcast says failed or 0 usable paths).
fn lun_failed_on(input: &HintInput<'_>, node: &NodeName, wwid: &Wwid) -> bool {
    input
        .node_maps
        .get(node)
        .and_then(|m| m.get(wwid))
        .is_some_and(|s| s.state == crate::state::MapState::Failed || s.paths_active == Some(0))
}

#[derive(Default)]
struct PortTally<'a> {
    /// Per node: (paths, usable paths).
    nodes: BTreeMap<&'a NodeName, (usize, usize)>,
    failed_luns: BTreeSet<&'a Wwid>,
    target: Option<String>,
}

fn target_side(
    input: &HintInput<'_>,
    obs: &[Obs<'_>],
    names: &BTreeMap<Wwid, String>,
    out: &mut Vec<Hint>,
) {
    let mut ports: BTreeMap<(PortKind, &str), PortTally<'_>> = BTreeMap::new();
    for o in obs {
        let Some((kind, id)) = &o.port else { continue };
        let t = ports.entry((*kind, id.as_str())).or_default();
        let e = t.nodes.entry(o.node).or_default();
        e.0 += 1;
        e.1 += usize::from(o.usable);
        if !o.usable {
            t.failed_luns.insert(o.wwid);
        }
        if t.target.is_none() {
            t.target.clone_from(&o.target);
        }
    }
    for ((kind, id), t) in ports {
        if t.nodes.len() < 2 || t.nodes.values().any(|(paths, usable)| usable >= paths) {
            continue;
        }
        let all_down = t.nodes.values().all(|(_, usable)| *usable == 0);
        let nodes: Vec<NodeName> = t.nodes.keys().map(|n| (*n).clone()).collect();
        let critical = nodes
            .iter()
            .any(|n| t.failed_luns.iter().any(|w| lun_failed_on(input, n, w)));
        let what = match &t.target {
            Some(target) if kind != PortKind::Target => {
                format!("{} {id} ({target})", kind.noun())
            }
            _ => format!("{} {id}", kind.noun()),
        };
        let state = if all_down {
            format!("is down for all {} nodes", nodes.len())
        } else {
            format!(
                "has failed paths on all {} nodes ({})",
                nodes.len(),
                lun_list(names, &t.failed_luns)
            )
        };
        out.push(Hint {
            id: format!("target-side:{}:{id}", kind_id(kind)),
            kind: HintKind::TargetSide,
            severity: if critical {
                Severity::Critical
            } else {
                Severity::Warning
            },
            luns: t.failed_luns.iter().map(|w| (*w).clone()).collect(),
            target_port: Some(id.to_owned()),
            port_kind: Some(kind),
            target: t.target.clone().filter(|_| kind != PortKind::Target),
            host_adapters: Vec::new(),
            since: input.now,
            message: format!("{what} {state}: look at the array or its network, not the hosts"),
            nodes,
        });
    }
}

fn kind_id(kind: PortKind) -> &'static str {
    match kind {
        PortKind::Portal => "portal",
        PortKind::Wwpn => "wwpn",
        PortKind::NvmeController => "nvme",
        PortKind::Target => "target",
    }
}

#[derive(Default)]
struct AdapterTally<'a> {
    paths: usize,
    usable: usize,
    keys: BTreeSet<TargetKey<'a>>,
    luns: BTreeSet<&'a Wwid>,
    desc: Option<String>,
}

fn host_side(
    input: &HintInput<'_>,
    obs: &[Obs<'_>],
    names: &BTreeMap<Wwid, String>,
    out: &mut Vec<Hint>,
) {
    // Per target key and node: (paths, usable).
    let mut reach: BTreeMap<TargetKey<'_>, BTreeMap<&NodeName, (usize, usize)>> = BTreeMap::new();
    let mut adapters: BTreeMap<&NodeName, BTreeMap<String, AdapterTally<'_>>> = BTreeMap::new();
    for o in obs {
        let e = reach.entry(o.key()).or_default().entry(o.node).or_default();
        e.0 += 1;
        e.1 += usize::from(o.usable);
        let Some(adapter) = &o.adapter else { continue };
        let a = adapters
            .entry(o.node)
            .or_default()
            .entry(adapter.clone())
            .or_default();
        a.paths += 1;
        a.usable += usize::from(o.usable);
        a.keys.insert(o.key());
        a.luns.insert(o.wwid);
        if a.desc.is_none() {
            a.desc.clone_from(&o.adapter_desc);
        }
    }
    // Whether peers of `node` reach `key` fine: one has a usable path, none lost all of its.
    let peers_fine = |node: &NodeName, key: &TargetKey<'_>| {
        let Some(per_node) = reach.get(key) else {
            return false;
        };
        let peers: Vec<&(usize, usize)> = per_node
            .iter()
            .filter(|(n, _)| **n != node)
            .map(|(_, v)| v)
            .collect();
        peers.iter().any(|(_, usable)| *usable > 0) && peers.iter().all(|(_, usable)| *usable > 0)
    };
    for (node, per_adapter) in adapters {
        let lost: Vec<(&String, &AdapterTally<'_>)> = per_adapter
            .iter()
            .filter(|(_, a)| a.paths > 0 && a.usable == 0)
            .filter(|(_, a)| a.keys.iter().all(|k| peers_fine(node, k)))
            .collect();
        if lost.is_empty() {
            continue;
        }
        let all_lost = lost.len() == per_adapter.len();
        let label = |name: &String, a: &AdapterTally<'_>| match &a.desc {
            Some(d) if d != name => format!("{name} ({d})"),
            _ => name.clone(),
        };
        let mut emit = |adapters: Vec<(&String, &AdapterTally<'_>)>, all: bool| {
            let luns: BTreeSet<&Wwid> = adapters
                .iter()
                .flat_map(|(_, a)| a.luns.iter().copied())
                .collect();
            let critical = luns.iter().any(|w| lun_failed_on(input, node, w));
            let labels: Vec<String> = adapters.iter().map(|(n, a)| label(n, a)).collect();
            let (id, message) = if all {
                (
                    format!("host-side:{node}:*"),
                    format!(
                        "{node} lost all paths through all its host adapters ({}) while its \
                         peers' paths to the same targets are fine: look at that node's HBAs, \
                         cables, switch ports or storage network",
                        list(&labels)
                    ),
                )
            } else {
                (
                    format!("host-side:{node}:{}", adapters[0].0),
                    format!(
                        "{node} lost all paths through host adapter {} to {} while its peers' \
                         paths to the same targets are fine: look at that node's HBA, cable or \
                         switch port",
                        labels[0],
                        lun_list(names, &luns)
                    ),
                )
            };
            out.push(Hint {
                id,
                kind: HintKind::HostSide,
                severity: if critical {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                nodes: vec![node.clone()],
                luns: luns.iter().map(|w| (*w).clone()).collect(),
                target_port: None,
                port_kind: None,
                target: None,
                host_adapters: adapters.iter().map(|(n, _)| (*n).clone()).collect(),
                since: input.now,
                message,
            });
        };
        if all_lost && per_adapter.len() > 1 {
            emit(lost, true);
        } else {
            for one in lost {
                emit(vec![one], false);
            }
        }
    }
}

fn under_pathed(input: &HintInput<'_>, names: &BTreeMap<Wwid, String>, out: &mut Vec<Hint>) {
    // Per wwid: live node -> (active, total).
    let mut per_lun: BTreeMap<&Wwid, BTreeMap<&NodeName, (u64, u64)>> = BTreeMap::new();
    for (node, maps) in input.node_maps {
        if !input.live.contains(node) {
            continue;
        }
        for (wwid, s) in maps.iter() {
            if let (Some(active), Some(total)) = (s.paths_active, s.paths_total) {
                per_lun
                    .entry(wwid)
                    .or_default()
                    .insert(node, (active, total));
            }
        }
    }
    // (node, have, norm) -> LUNs.
    let mut found: BTreeMap<(&NodeName, u64, u64), BTreeSet<&Wwid>> = BTreeMap::new();
    for (wwid, nodes) in &per_lun {
        // How many nodes see each path count (once per LUN, not per node: 64 nodes x 1000
        // LUNs would otherwise be 4 M steps).
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for (_, total) in nodes.values() {
            *counts.entry(*total).or_default() += 1;
        }
        for (node, (active, total)) in nodes {
            if *total == 0 || active != total {
                continue;
            }
            // The most common count among the peers (this node left out); a tie goes to the
            // larger.
            let norm = counts
                .iter()
                .filter_map(|(t, n)| {
                    let peers = if t == total { n - 1 } else { *n };
                    (peers > 0).then_some((peers, *t))
                })
                .max()
                .map(|(_, t)| t);
            let Some(norm) = norm else {
                continue;
            };
            if *total < norm {
                found.entry((node, *total, norm)).or_default().insert(wwid);
            }
        }
    }
    for ((node, have, norm), luns) in found {
        out.push(Hint {
            id: format!("under-pathed:{node}:{have}-of-{norm}"),
            kind: HintKind::UnderPathed,
            severity: Severity::Warning,
            nodes: vec![node.clone()],
            luns: luns.iter().map(|w| (*w).clone()).collect(),
            target_port: None,
            port_kind: None,
            target: None,
            host_adapters: Vec::new(),
            since: input.now,
            message: format!(
                "{node} sees {have} of the {norm} paths its peers see to {}: zoning, iSCSI \
                 login or a removed path",
                lun_list(names, &luns)
            ),
        });
    }
}

fn size_mismatch(input: &HintInput<'_>, names: &BTreeMap<Wwid, String>, out: &mut Vec<Hint>) {
    let mut sizes: BTreeMap<&Wwid, BTreeMap<u64, Vec<&NodeName>>> = BTreeMap::new();
    for (node, maps) in input.node_maps {
        if !input.live.contains(node) {
            continue;
        }
        for (wwid, s) in maps.iter() {
            if let Some(size) = s.size {
                sizes
                    .entry(wwid)
                    .or_default()
                    .entry(size)
                    .or_default()
                    .push(node);
            }
        }
    }
    for (wwid, by_size) in sizes {
        let Some((&largest, big_nodes)) = by_size.iter().next_back() else {
            continue;
        };
        if by_size.len() < 2 {
            continue;
        }
        let mut rescan: Vec<&NodeName> = by_size
            .iter()
            .filter(|(s, _)| **s != largest)
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        rescan.sort();
        let smaller: Vec<String> = by_size
            .iter()
            .filter(|(s, _)| **s != largest)
            .map(|(s, n)| format!("{} on {}", human_size(*s), list(n)))
            .collect();
        let rescan_names: Vec<&str> = rescan.iter().map(|n| n.as_str()).collect();
        out.push(Hint {
            id: format!("size-mismatch:{wwid}"),
            kind: HintKind::SizeMismatch,
            severity: Severity::Warning,
            nodes: rescan.iter().map(|n| (*n).clone()).collect(),
            luns: vec![wwid.clone()],
            target_port: None,
            port_kind: None,
            target: None,
            host_adapters: Vec::new(),
            since: input.now,
            message: format!(
                "{} is {} on {} but {}: resized on the array; rescan on {}",
                name_of(names, wwid),
                human_size(largest),
                list(big_nodes),
                list(&smaller),
                list(&rescan_names)
            ),
        });
    }
}

fn config_drift(input: &HintInput<'_>, out: &mut Vec<Hint>) {
    for (node, issues) in input.issues {
        if !input.live.contains(node) {
            continue;
        }
        let mut push = |what: &str, message: String| {
            out.push(Hint {
                id: format!("config-drift:{node}:{what}"),
                kind: HintKind::ConfigDrift,
                severity: Severity::Warning,
                nodes: vec![node.clone()],
                luns: Vec::new(),
                target_port: None,
                port_kind: None,
                target: None,
                host_adapters: Vec::new(),
                since: input.now,
                message,
            });
        };
        if let Some(error) = &issues.apply_error {
            push(
                "apply-error",
                format!(
                    "{node} failed to apply the cluster's multipath configuration, so it runs \
                     another one: {}",
                    clip_sentence(error)
                ),
            );
        }
        if let Some(waiting) = &issues.apply_waiting {
            push(
                "apply-waiting",
                format!(
                    "{node} runs another multipath configuration than the cluster's: {}",
                    clip_sentence(waiting)
                ),
            );
        }
    }
}

/// Peer text inside a sentence: at most 300 characters.
fn clip_sentence(s: &str) -> String {
    const MAX: usize = 300;
    if s.chars().count() <= MAX {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

/// Keeps each hint's `since` across recomputations: a hint whose [`Hint::id`] was present in
/// the previous round keeps the time it first appeared; one that disappears is forgotten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HintTracker {
    since: BTreeMap<String, i64>,
}

impl HintTracker {
    /// Set `since` on each hint: from this tracker, else from `seed` (a snapshot's
    /// `hint-since`, the times the server knew), else the hint's own (now). Remembers the
    /// current hints only.
    pub fn stamp(&mut self, hints: &mut [Hint], seed: &BTreeMap<String, i64>) {
        let mut next = BTreeMap::new();
        for h in hints.iter_mut() {
            let since = self
                .since
                .get(&h.id)
                .or_else(|| seed.get(&h.id))
                .copied()
                .map_or(h.since, |s| s.min(h.since));
            h.since = since;
            next.insert(h.id.clone(), since);
        }
        self.since = next;
    }

    /// The `since` of each current hint (what a server puts into its snapshot's `hint-since`).
    pub fn since(&self) -> &BTreeMap<String, i64> {
        &self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_naturally() {
        assert_eq!(list::<&str>(&[]), "");
        assert_eq!(list(&["a"]), "a");
        assert_eq!(list(&["a", "b"]), "a and b");
        assert_eq!(list(&["a", "b", "c"]), "a, b and c");
        let many: Vec<String> = (0..9).map(|i| format!("n{i}")).collect();
        assert_eq!(list(&many), "n0, n1, n2, n3, n4, n5 and 3 more");
    }

    #[test]
    fn tracker_keeps_since() {
        let hint = |id: &str, now: i64| Hint {
            id: id.into(),
            kind: HintKind::SizeMismatch,
            severity: Severity::Warning,
            nodes: Vec::new(),
            luns: Vec::new(),
            target_port: None,
            port_kind: None,
            target: None,
            host_adapters: Vec::new(),
            since: now,
            message: String::new(),
        };
        let mut t = HintTracker::default();
        let mut round = vec![hint("a", 100)];
        t.stamp(&mut round, &BTreeMap::new());
        assert_eq!(round[0].since, 100);
        let mut round = vec![hint("a", 110), hint("b", 110)];
        t.stamp(&mut round, &BTreeMap::from([("b".to_owned(), 50)]));
        assert_eq!((round[0].since, round[1].since), (100, 50));
        // "a" cleared, then back: a new since.
        let mut round = vec![hint("b", 120)];
        t.stamp(&mut round, &BTreeMap::new());
        let mut round = vec![hint("a", 130), hint("b", 130)];
        t.stamp(&mut round, &BTreeMap::new());
        assert_eq!((round[0].since, round[1].since), (130, 50));
        assert_eq!(t.since().len(), 2);
    }
}
