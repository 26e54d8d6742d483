//! The seed patch's test block for `aggregate_cluster_status`, ported one to one. Each
//! assertion carries the seed's message.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use mpcluster_core::broadcast::MapSummary;
use mpcluster_core::rollup::{Cell, LunStatus, RollupInput, aggregate};
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

type NodeKv = Vec<(&'static str, Vec<(&'static str, MapSummary)>)>;

/// The nodes expected to carry each WWID.
type Expected = &'static [(&'static str, &'static [&'static str])];

/// The inputs of one roll-up, by name (what a case does not set is empty).
#[derive(Default)]
struct Input {
    allow: &'static [&'static str],
    aliases: &'static [(&'static str, &'static str)],
    used_by: &'static [(&'static str, &'static str)],
    node_kv: NodeKv,
    online: &'static [(&'static str, bool)],
    expected: Option<Expected>,
}

struct Run {
    rows: BTreeMap<String, LunStatus>,
    order: Vec<String>,
}

impl Run {
    fn row(&self, wwid: &str) -> &LunStatus {
        &self.rows[wwid]
    }
}

fn run(input: Input) -> Run {
    let allow: BTreeSet<Wwid> = input.allow.iter().map(|s| w(s)).collect();
    let aliases: BTreeMap<Wwid, Alias> = input
        .aliases
        .iter()
        .map(|(k, v)| (w(k), Alias::new(*v).unwrap()))
        .collect();
    let consumers: BTreeMap<Wwid, String> = input
        .used_by
        .iter()
        .map(|(k, v)| (w(k), v.to_string()))
        .collect();
    let node_maps: BTreeMap<NodeName, BTreeMap<Wwid, MapSummary>> = input
        .node_kv
        .into_iter()
        .map(|(node, maps)| (n(node), maps.into_iter().map(|(k, v)| (w(k), v)).collect()))
        .collect();
    let online: BTreeSet<NodeName> = input
        .online
        .iter()
        .filter(|(_, on)| *on)
        .map(|(node, _)| n(node))
        .collect();
    let expected: BTreeMap<Wwid, BTreeSet<NodeName>> = input
        .expected
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

/// One seed assertion: what it looks at and what that must be.
#[derive(Debug)]
enum Expect {
    /// The rows, in order.
    Order(&'static [&'static str]),
    Alias(&'static str, Option<&'static str>),
    UsedBy(&'static str, Option<&'static str>),
    Size(&'static str, Option<u64>),
    /// The row's cluster state.
    State(&'static str, MapState),
    /// The state of the row's cell on a node (`None`: no cell).
    Cell(&'static str, &'static str, Option<MapState>),
}

impl Expect {
    /// `Err` with what was found instead.
    fn check(&self, r: &Run) -> Result<(), String> {
        fn same<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<(), String> {
            if got == want {
                Ok(())
            } else {
                Err(format!("got {got:?}, want {want:?}"))
            }
        }
        let row = |wwid: &str| r.rows.get(wwid).ok_or_else(|| format!("no row {wwid}"));
        match *self {
            Expect::Order(want) => {
                same(r.order.iter().map(String::as_str).collect(), want.to_vec())
            }
            Expect::Alias(wwid, want) => same(row(wwid)?.alias.as_ref().map(Alias::as_str), want),
            Expect::UsedBy(wwid, want) => same(row(wwid)?.used_by.as_deref(), want),
            Expect::Size(wwid, want) => same(row(wwid)?.size, want),
            Expect::State(wwid, want) => same(row(wwid)?.cluster_state, want),
            Expect::Cell(wwid, node, want) => {
                same(row(wwid)?.nodes.get(node).map(|c| c.state), want)
            }
        }
    }
}

/// A case of the seed's test block: its input and its assertions, each with the seed's message.
struct Case {
    name: &'static str,
    input: fn() -> Input,
    expect: &'static [(Expect, &'static str)],
}

use Expect::{Alias as A, Cell as C, Order, Size, State as S, UsedBy};
use MapState::{Degraded, Failed, Missing, Optimal, Unknown};

fn main_input() -> Input {
    Input {
        allow: &["wA", "wB", "wZ"], // allow-list incl. an unseen WWID
        aliases: &[("wA", "lun-a")],
        used_by: &[("wB", "mptank")],
        node_kv: vec![
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
        online: &[("nodeA", true), ("nodeB", true), ("nodeC", false)],
        expected: None,
    }
}

// --- expected-node set: a node that lost all paths (silent) must not vanish ---
// nodeS is expected (a multipath storage is enabled there) and online, but broadcasts nothing -
// e.g. every path to the SAN is down so it cleared its KV.
fn silent_node_input(expected: Option<Expected>) -> Input {
    Input {
        allow: &["wA"],
        node_kv: vec![("nodeA", vec![("wA", summary("optimal", 2, 2, None, None))])],
        online: &[("nodeA", true), ("nodeS", true), ("nodeOff", false)],
        expected,
        ..Input::default()
    }
}

/// A map as `(wwid, state, paths active, paths total, size)`, no transport.
type Map<'a> = (&'static str, &'a str, u64, u64, Option<u64>);

/// `(node, [map])`.
fn node_kv(nodes: &[(&'static str, &[Map<'_>])]) -> NodeKv {
    nodes
        .iter()
        .map(|(node, maps)| {
            let maps = maps
                .iter()
                .map(|(wwid, state, a, t, size)| (*wwid, summary(state, *a, *t, None, *size)))
                .collect();
            (*node, maps)
        })
        .collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "main case",
            input: main_input,
            expect: &[
                (
                    Order(&["wA", "wB", "wZ"]),
                    "matrix covers allow-list and seen WWIDs",
                ),
                (A("wA", Some("lun-a")), "alias surfaced on the WWID row"),
                (
                    S("wA", Degraded),
                    "degraded on one active node rolls up to degraded",
                ),
                (
                    C("wA", "nodeA", Some(Optimal)),
                    "per-node optimal cell kept",
                ),
                (
                    C("wA", "nodeB", Some(Degraded)),
                    "per-node degraded cell kept",
                ),
                (
                    C("wA", "nodeC", Some(Unknown)),
                    "offline node with stale data shows unknown",
                ),
                (
                    UsedBy("wB", Some("mptank")),
                    "consuming storage surfaced as used-by",
                ),
                (
                    Size("wB", Some(42)),
                    "LUN size surfaced from a reporting node",
                ),
                (
                    S("wB", Missing),
                    "active node not assembling the LUN rolls up to missing",
                ),
                (
                    C("wB", "nodeB", Some(Missing)),
                    "missing marked on the active node lacking it",
                ),
                (
                    S("wZ", Missing),
                    "allow-listed WWID no active node assembled is missing everywhere",
                ),
                (
                    C("wZ", "nodeA", Some(Missing)),
                    "active node missing the allow-listed WWID",
                ),
                (
                    C("wZ", "nodeC", None),
                    "offline node contributes no cell for an unseen WWID",
                ),
            ],
        },
        Case {
            // a WWID only an offline node ever reported, with no online active node, is unknown
            name: "no online active node",
            input: || Input {
                allow: &["wA"],
                node_kv: node_kv(&[("dead", &[("wA", "optimal", 2, 2, None)])]),
                online: &[("dead", false)],
                ..Input::default()
            },
            expect: &[
                (
                    S("wA", Unknown),
                    "no online active node leaves the cluster-state unknown",
                ),
                (
                    C("wA", "dead", Some(Unknown)),
                    "stale offline node shown as unknown",
                ),
            ],
        },
        Case {
            name: "failed and degraded",
            input: || Input {
                allow: &["wA"],
                node_kv: node_kv(&[
                    ("n1", &[("wA", "degraded", 1, 2, None)]),
                    ("n2", &[("wA", "failed", 0, 2, None)]),
                ]),
                online: &[("n1", true), ("n2", true)],
                ..Input::default()
            },
            expect: &[(
                S("wA", Failed),
                "failed outranks degraded in the cluster roll-up",
            )],
        },
        Case {
            name: "silent expected node",
            input: || silent_node_input(Some(&[("wA", &["nodeA", "nodeS", "nodeOff"])])),
            expect: &[
                (
                    C("wA", "nodeA", Some(Optimal)),
                    "reporting node keeps its real state",
                ),
                (
                    C("wA", "nodeS", Some(Missing)),
                    "expected online but silent node shows missing instead of vanishing",
                ),
                (
                    C("wA", "nodeOff", Some(Unknown)),
                    "expected offline node shows unknown",
                ),
                (
                    S("wA", Missing),
                    "a silent expected node drags the cluster-state to missing",
                ),
            ],
        },
        Case {
            // without $expected the silent node would have been invisible (regression guard for
            // the old behavior, proving the new param is what surfaces it)
            name: "silent node without the expected set",
            input: || silent_node_input(None),
            expect: &[
                (
                    C("wA", "nodeS", None),
                    "without the expected set the silent node is absent (the gap the param closes)",
                ),
                (
                    S("wA", Optimal),
                    "and the cluster-state would falsely read optimal",
                ),
            ],
        },
        Case {
            // expected augmentation applies only to allow-listed WWIDs, not to a LUN that a node
            // merely happens to report off-list
            name: "off-list WWID",
            input: || Input {
                node_kv: node_kv(&[("nodeA", &[("wX", "optimal", 1, 1, None)])]),
                online: &[("nodeA", true), ("nodeS", true)],
                expected: Some(&[]),
                ..Input::default()
            },
            expect: &[(
                C("wX", "nodeS", None),
                "non-allow-listed WWID does not synthesize missing cells for expected nodes",
            )],
        },
        Case {
            // a broadcasting node outside a LUN's expected set is never marked missing (a SAN
            // zoned to only some nodes), and a hand-made off-list map lists only the nodes that
            // report it
            name: "zoned LUN and hand-made map",
            input: || Input {
                allow: &["wA"],
                node_kv: node_kv(&[
                    ("n1", &[("wA", "optimal", 2, 2, None)]),
                    ("n2", &[("wHand", "degraded", 1, 2, None)]),
                ]),
                online: &[("n1", true), ("n2", true)],
                expected: Some(&[("wA", &["n1"])]),
                ..Input::default()
            },
            expect: &[
                (
                    C("wA", "n2", None),
                    "a multipathing node outside the expected set is not marked missing",
                ),
                (
                    S("wA", Optimal),
                    "the zoned LUN stays green on its own nodes",
                ),
                (
                    C("wHand", "n1", None),
                    "an off-list map does not drag other multipathing nodes into its row",
                ),
                (
                    S("wHand", Degraded),
                    "an off-list map still surfaces its real state",
                ),
            ],
        },
        Case {
            // an unrecognized state from a (newer or buggy) peer clamps to unknown and does not
            // fake a report
            name: "unrecognized peer state",
            input: || Input {
                allow: &["wA"],
                node_kv: node_kv(&[("n1", &[("wA", "frobnicated", 1, 2, None)])]),
                online: &[("n1", true)],
                expected: Some(&[("wA", &["n1"])]),
                ..Input::default()
            },
            expect: &[
                (
                    C("wA", "n1", Some(Unknown)),
                    "unrecognized peer state clamps to unknown",
                ),
                (S("wA", Unknown), "a clamped state does not count as active"),
            ],
        },
        Case {
            name: "size among online reporters",
            input: || Input {
                node_kv: node_kv(&[
                    ("a", &[("w", "optimal", 1, 1, Some(7))]),
                    ("b", &[("w", "optimal", 1, 1, None)]),
                    ("c", &[("w", "optimal", 1, 1, Some(9))]),
                ]),
                online: &[("a", false), ("b", true), ("c", true)],
                ..Input::default()
            },
            expect: &[(
                Size("w", Some(9)),
                "offline a's size ignored, b has none, c's used",
            )],
        },
        Case {
            // An offline node that broadcasts other maps and is expected to carry wA: its cell is
            // unknown (it cannot be judged), and it does not drive the roll-up.
            name: "offline expected node reporting other maps",
            input: || Input {
                allow: &["wA"],
                node_kv: node_kv(&[
                    ("n1", &[("wA", "optimal", 2, 2, None)]),
                    ("n2", &[("wB", "optimal", 2, 2, None)]),
                ]),
                online: &[("n1", true), ("n2", false)],
                expected: Some(&[("wA", &["n1", "n2"])]),
                ..Input::default()
            },
            expect: &[
                (
                    C("wA", "n2", Some(Unknown)),
                    "an offline expected node that does not report the LUN shows unknown",
                ),
                (S("wA", Optimal), "and does not drive the roll-up"),
            ],
        },
    ]
}

/// How many assertions the seed cases hold: a case or an assertion that goes missing from the
/// table fails [`seed_assertions_hold`].
const SEED_ASSERTIONS: usize = 32;

/// Runs every case and checks every assertion, then reports all that failed at once.
#[test]
fn seed_assertions_hold() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases() {
        let r = run((case.input)());
        for (expect, msg) in case.expect {
            checked += 1;
            if let Err(e) = expect.check(&r) {
                failures.push(format!("{}: {msg}: {expect:?}: {e}", case.name));
            }
        }
    }
    assert_eq!(checked, SEED_ASSERTIONS, "every seed assertion is checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} seed assertions failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A roll-up that gets every looked-at place wrong (another state, a cell added or removed,
/// another alias, used-by, size and order) fails every assertion of the table: none of them can
/// pass whatever the roll-up does.
#[test]
fn a_broken_rollup_fails_every_assertion() {
    fn other(s: MapState) -> MapState {
        let all = MapState::ALL;
        let i = all.iter().position(|x| *x == s).unwrap();
        all[(i + 1) % all.len()]
    }
    for case in cases() {
        let mut r = run((case.input)());
        r.order.push("corrupt".to_owned());
        for (expect, _) in case.expect {
            if let Expect::Cell(wwid, node, _) = expect {
                let row = r.rows.get_mut(*wwid).unwrap();
                match row.nodes.get_mut(*node) {
                    Some(cell) => cell.state = other(cell.state),
                    None => {
                        row.nodes.insert(n(node), Cell::bare(Unknown));
                    }
                }
            }
        }
        for row in r.rows.values_mut() {
            row.cluster_state = other(row.cluster_state);
            row.alias = match row.alias {
                Some(_) => None,
                None => Some(Alias::new("corrupt").unwrap()),
            };
            row.used_by = match row.used_by {
                Some(_) => None,
                None => Some("corrupt".to_owned()),
            };
            row.size = match row.size {
                Some(_) => None,
                None => Some(1),
            };
        }
        for (expect, msg) in case.expect {
            assert!(
                expect.check(&r).is_err(),
                "{}: {msg}: {expect:?} passes on a broken roll-up",
                case.name
            );
        }
    }
}

#[test]
fn reporter_cell_json_shape_matches_the_seed_schema() {
    let r = run(main_input());
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
    let r = run(Input {
        allow: &["wA"],
        node_kv: vec![("n1", vec![("wA", s)])],
        online: &[("n1", true)],
        ..Input::default()
    });
    let json = serde_json::to_value(r.row("wA")).unwrap();
    assert_eq!(
        json["nodes"]["n1"],
        serde_json::json!({"state": "optimal", "paths-active": null, "paths-total": null})
    );
    let back: LunStatus = serde_json::from_value(json).unwrap();
    assert_eq!(&back, r.row("wA"));
}
