//! The seed patch's test block for `aggregate_cluster_status`, ported one to one. Each
//! assertion carries the seed's message.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use mpcluster_core::broadcast::MapSummary;
use mpcluster_core::rollup::{LunStatus, RollupInput, aggregate};
use mpcluster_core::{Alias, MapState, NodeName, Wwid};

fn w(s: &str) -> Wwid {
    Wwid::new(s).unwrap()
}
fn n(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}

fn summary(
    state: &str,
    active: u64,
    total: u64,
    transport: Option<&str>,
    size: Option<u64>,
) -> MapSummary {
    MapSummary {
        state: MapState::clamp(state),
        paths_active: Some(active),
        paths_total: Some(total),
        transport: transport.map(std::sync::Arc::from),
        size,
    }
}

type NodeKv<'a> = Vec<(&'a str, Vec<(&'a str, MapSummary)>)>;

struct Run {
    rows: BTreeMap<String, LunStatus>,
    order: Vec<String>,
}

impl Run {
    fn row(&self, wwid: &str) -> &LunStatus {
        &self.rows[wwid]
    }
    fn cell(&self, wwid: &str, node: &str) -> Option<MapState> {
        self.rows[wwid].nodes.get(node).map(|c| c.state)
    }
}

fn run(
    allow: &[&str],
    aliases: &[(&str, &str)],
    used_by: &[(&str, &str)],
    node_kv: NodeKv<'_>,
    online: &[(&str, bool)],
    expected: Option<&[(&str, &[&str])]>,
) -> Run {
    let allow: BTreeSet<Wwid> = allow.iter().map(|s| w(s)).collect();
    let aliases: BTreeMap<Wwid, Alias> = aliases
        .iter()
        .map(|(k, v)| (w(k), Alias::new(*v).unwrap()))
        .collect();
    let consumers: BTreeMap<Wwid, String> =
        used_by.iter().map(|(k, v)| (w(k), v.to_string())).collect();
    let node_maps: BTreeMap<NodeName, BTreeMap<Wwid, MapSummary>> = node_kv
        .into_iter()
        .map(|(node, maps)| (n(node), maps.into_iter().map(|(k, v)| (w(k), v)).collect()))
        .collect();
    let online: BTreeSet<NodeName> = online
        .iter()
        .filter(|(_, on)| *on)
        .map(|(node, _)| n(node))
        .collect();
    let expected: BTreeMap<Wwid, BTreeSet<NodeName>> = expected
        .unwrap_or(&[])
        .iter()
        .map(|(k, nodes)| (w(k), nodes.iter().map(|x| n(x)).collect()))
        .collect();
    let node_maps: BTreeMap<NodeName, &BTreeMap<Wwid, MapSummary>> =
        node_maps.iter().map(|(n, m)| (n.clone(), m)).collect();
    let luns = aggregate(&RollupInput {
        allow: &allow,
        aliases: &aliases,
        consumers: &consumers,
        node_maps: &node_maps,
        online: &online,
        expected: &expected,
        truncated: &BTreeSet::new(),
    });
    Run {
        order: luns.iter().map(|l| l.wwid.to_string()).collect(),
        rows: luns.into_iter().map(|l| (l.wwid.to_string(), l)).collect(),
    }
}

fn main_case() -> Run {
    run(
        &["wA", "wB", "wZ"], // allow-list incl. an unseen WWID
        &[("wA", "lun-a")],
        &[("wB", "mptank")],
        vec![
            (
                "nodeA",
                vec![
                    ("wA", summary("optimal", 2, 2, Some("iscsi"), None)),
                    ("wB", summary("optimal", 2, 2, Some("iscsi"), Some(42))),
                ],
            ),
            // nodeB is active but does not see wB
            (
                "nodeB",
                vec![("wA", summary("degraded", 1, 2, Some("iscsi"), None))],
            ),
            // stale broadcast from an offline node
            ("nodeC", vec![("wA", summary("optimal", 2, 2, None, None))]),
        ],
        &[("nodeA", true), ("nodeB", true), ("nodeC", false)],
        None,
    )
}

#[test]
fn matrix_covers_allow_list_and_seen_wwids() {
    let r = main_case();
    assert_eq!(
        r.order,
        ["wA", "wB", "wZ"],
        "matrix covers allow-list and seen WWIDs"
    );
}

#[test]
fn main_case_row_wa() {
    let r = main_case();
    assert_eq!(
        r.row("wA").alias.as_ref().unwrap().as_str(),
        "lun-a",
        "alias surfaced on the WWID row"
    );
    assert_eq!(
        r.row("wA").cluster_state,
        MapState::Degraded,
        "degraded on one active node rolls up to degraded"
    );
    assert_eq!(
        r.cell("wA", "nodeA"),
        Some(MapState::Optimal),
        "per-node optimal cell kept"
    );
    assert_eq!(
        r.cell("wA", "nodeB"),
        Some(MapState::Degraded),
        "per-node degraded cell kept"
    );
    assert_eq!(
        r.cell("wA", "nodeC"),
        Some(MapState::Unknown),
        "offline node with stale data shows unknown"
    );
}

#[test]
fn main_case_row_wb() {
    let r = main_case();
    assert_eq!(
        r.row("wB").used_by.as_deref(),
        Some("mptank"),
        "consuming storage surfaced as used-by"
    );
    assert_eq!(
        r.row("wB").size,
        Some(42),
        "LUN size surfaced from a reporting node"
    );
    assert_eq!(
        r.row("wB").cluster_state,
        MapState::Missing,
        "active node not assembling the LUN rolls up to missing"
    );
    assert_eq!(
        r.cell("wB", "nodeB"),
        Some(MapState::Missing),
        "missing marked on the active node lacking it"
    );
}

#[test]
fn main_case_row_wz() {
    let r = main_case();
    assert_eq!(
        r.row("wZ").cluster_state,
        MapState::Missing,
        "allow-listed WWID no active node assembled is missing everywhere"
    );
    assert_eq!(
        r.cell("wZ", "nodeA"),
        Some(MapState::Missing),
        "active node missing the allow-listed WWID"
    );
    assert_eq!(
        r.cell("wZ", "nodeC"),
        None,
        "offline node contributes no cell for an unseen WWID"
    );
}

#[test]
fn no_online_active_node_leaves_unknown() {
    // a WWID only an offline node ever reported, with no online active node, is unknown
    let r = run(
        &["wA"],
        &[],
        &[],
        vec![("dead", vec![("wA", summary("optimal", 2, 2, None, None))])],
        &[("dead", false)],
        None,
    );
    assert_eq!(
        r.row("wA").cluster_state,
        MapState::Unknown,
        "no online active node leaves the cluster-state unknown"
    );
    assert_eq!(
        r.cell("wA", "dead"),
        Some(MapState::Unknown),
        "stale offline node shown as unknown"
    );
}

#[test]
fn failed_outranks_degraded() {
    let r = run(
        &["wA"],
        &[],
        &[],
        vec![
            ("n1", vec![("wA", summary("degraded", 1, 2, None, None))]),
            ("n2", vec![("wA", summary("failed", 0, 2, None, None))]),
        ],
        &[("n1", true), ("n2", true)],
        None,
    );
    assert_eq!(
        r.row("wA").cluster_state,
        MapState::Failed,
        "failed outranks degraded in the cluster roll-up"
    );
}

// --- expected-node set: a node that lost all paths (silent) must not vanish ---
// nodeS is expected (a multipath storage is enabled there) and online, but broadcasts nothing -
// e.g. every path to the SAN is down so it cleared its KV.
fn expected_kv() -> NodeKv<'static> {
    vec![("nodeA", vec![("wA", summary("optimal", 2, 2, None, None))])]
}
const EXP_ONLINE: &[(&str, bool)] = &[("nodeA", true), ("nodeS", true), ("nodeOff", false)];

#[test]
fn silent_expected_node_is_missing() {
    let r = run(
        &["wA"],
        &[],
        &[],
        expected_kv(),
        EXP_ONLINE,
        Some(&[("wA", &["nodeA", "nodeS", "nodeOff"])]),
    );
    assert_eq!(
        r.cell("wA", "nodeA"),
        Some(MapState::Optimal),
        "reporting node keeps its real state"
    );
    assert_eq!(
        r.cell("wA", "nodeS"),
        Some(MapState::Missing),
        "expected online but silent node shows missing instead of vanishing"
    );
    assert_eq!(
        r.cell("wA", "nodeOff"),
        Some(MapState::Unknown),
        "expected offline node shows unknown"
    );
    assert_eq!(
        r.row("wA").cluster_state,
        MapState::Missing,
        "a silent expected node drags the cluster-state to missing"
    );
}

#[test]
fn without_expected_set_silent_node_is_absent() {
    // without $expected the silent node would have been invisible (regression guard for the old
    // behavior, proving the new param is what surfaces it)
    let r = run(&["wA"], &[], &[], expected_kv(), EXP_ONLINE, None);
    assert_eq!(
        r.cell("wA", "nodeS"),
        None,
        "without the expected set the silent node is absent (the gap the param closes)"
    );
    assert_eq!(
        r.row("wA").cluster_state,
        MapState::Optimal,
        "and the cluster-state would falsely read optimal"
    );
}

#[test]
fn off_list_wwid_synthesizes_no_missing_cells() {
    // expected augmentation applies only to allow-listed WWIDs, not to a LUN that a node merely
    // happens to report off-list
    let r = run(
        &[],
        &[],
        &[],
        vec![("nodeA", vec![("wX", summary("optimal", 1, 1, None, None))])],
        &[("nodeA", true), ("nodeS", true)],
        Some(&[]),
    );
    assert_eq!(
        r.cell("wX", "nodeS"),
        None,
        "non-allow-listed WWID does not synthesize missing cells for expected nodes"
    );
}

#[test]
fn zoned_lun_and_hand_made_map() {
    // a broadcasting node outside a LUN's expected set is never marked missing (a SAN zoned to
    // only some nodes), and a hand-made off-list map lists only the nodes that report it
    let r = run(
        &["wA"],
        &[],
        &[],
        vec![
            ("n1", vec![("wA", summary("optimal", 2, 2, None, None))]),
            ("n2", vec![("wHand", summary("degraded", 1, 2, None, None))]),
        ],
        &[("n1", true), ("n2", true)],
        Some(&[("wA", &["n1"])]),
    );
    assert_eq!(
        r.cell("wA", "n2"),
        None,
        "a multipathing node outside the expected set is not marked missing"
    );
    assert_eq!(
        r.row("wA").cluster_state,
        MapState::Optimal,
        "the zoned LUN stays green on its own nodes"
    );
    assert_eq!(
        r.cell("wHand", "n1"),
        None,
        "an off-list map does not drag other multipathing nodes into its row"
    );
    assert_eq!(
        r.row("wHand").cluster_state,
        MapState::Degraded,
        "an off-list map still surfaces its real state"
    );
}

#[test]
fn unrecognized_peer_state_clamps() {
    // an unrecognized state from a (newer or buggy) peer clamps to unknown and does not fake a
    // report
    let r = run(
        &["wA"],
        &[],
        &[],
        vec![("n1", vec![("wA", summary("frobnicated", 1, 2, None, None))])],
        &[("n1", true)],
        Some(&[("wA", &["n1"])]),
    );
    assert_eq!(
        r.cell("wA", "n1"),
        Some(MapState::Unknown),
        "unrecognized peer state clamps to unknown"
    );
    assert_eq!(
        r.row("wA").cluster_state,
        MapState::Unknown,
        "a clamped state does not count as active"
    );
}

#[test]
fn reporter_cell_json_shape_matches_the_seed_schema() {
    let r = main_case();
    let json = serde_json::to_value(r.row("wA")).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "wwid": "wA", "alias": "lun-a", "cluster-state": "degraded",
            "nodes": {
                "nodeA": {"state": "optimal", "paths-active": 2, "paths-total": 2, "transport": "iscsi"},
                "nodeB": {"state": "degraded", "paths-active": 1, "paths-total": 2, "transport": "iscsi"},
                "nodeC": {"state": "unknown"}
            }
        })
    );
    let wb = serde_json::to_value(r.row("wB")).unwrap();
    assert_eq!(wb["used-by"], "mptank");
    assert_eq!(wb["size"], 42);
    assert_eq!(
        wb["nodes"]["nodeB"],
        serde_json::json!({"state": "missing"})
    );
    // round trip (the CLI reads the server's JSON back)
    let back: LunStatus = serde_json::from_value(json).unwrap();
    assert_eq!(&back, r.row("wA"));
}

#[test]
fn malformed_counts_serialize_as_null_on_reporter_cells() {
    let mut s = summary("optimal", 0, 0, None, None);
    s.paths_active = None;
    s.paths_total = None;
    let r = run(
        &["wA"],
        &[],
        &[],
        vec![("n1", vec![("wA", s)])],
        &[("n1", true)],
        None,
    );
    let json = serde_json::to_value(r.row("wA")).unwrap();
    assert_eq!(
        json["nodes"]["n1"],
        serde_json::json!({"state": "optimal", "paths-active": null, "paths-total": null})
    );
    let back: LunStatus = serde_json::from_value(json).unwrap();
    assert_eq!(&back, r.row("wA"));
}

#[test]
fn size_is_first_defined_among_online_reporters_in_name_order() {
    let r = run(
        &[],
        &[],
        &[],
        vec![
            ("a", vec![("w", summary("optimal", 1, 1, None, Some(7)))]),
            ("b", vec![("w", summary("optimal", 1, 1, None, None))]),
            ("c", vec![("w", summary("optimal", 1, 1, None, Some(9)))]),
        ],
        &[("a", false), ("b", true), ("c", true)],
        None,
    );
    assert_eq!(
        r.row("w").size,
        Some(9),
        "offline a's size ignored, b has none, c's used"
    );
}

#[test]
fn offline_reporter_expected_but_not_reporting_shows_unknown() {
    // An offline node that broadcasts other maps and is expected to carry wA: its cell is
    // unknown (it cannot be judged), and it does not drive the roll-up.
    let r = run(
        &["wA"],
        &[],
        &[],
        vec![
            ("n1", vec![("wA", summary("optimal", 2, 2, None, None))]),
            ("n2", vec![("wB", summary("optimal", 2, 2, None, None))]),
        ],
        &[("n1", true), ("n2", false)],
        Some(&[("wA", &["n1", "n2"])]),
    );
    assert_eq!(r.cell("wA", "n2"), Some(MapState::Unknown));
    assert_eq!(r.row("wA").cluster_state, MapState::Optimal);
}
