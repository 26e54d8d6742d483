//! Property tests for status assembly: arbitrary snapshots never panic, the cluster state is the
//! worst counted cell, offline nodes never drive it, rows = allow-list ∪ reported, output is
//! deterministic.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use mpcluster_core::broadcast;
use mpcluster_core::snapshot::{KvSnapshot, Member, Snapshot, SnapshotConfig};
use mpcluster_core::status::assemble;
use mpcluster_core::storage::Expectations;
use mpcluster_core::{MapState, NodeName, Wwid};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: i64 = 10_000;
const NODES: [&str; 5] = ["n0", "n1", "n2", "n3", "n4"];
const WWIDS: [&str; 6] = ["w0", "w1", "w2", "w3", "w4", "w5"];
const STATES: [&str; 7] = [
    "optimal", "degraded", "missing", "failed", "unknown", "bogus", "",
];

fn node(i: usize) -> NodeName {
    NodeName::new(NODES[i]).unwrap()
}
fn wwid(i: usize) -> Wwid {
    Wwid::new(WWIDS[i]).unwrap()
}

fn arb_entry() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => (0..STATES.len(), proptest::option::of(0u64..5), proptest::option::of(0u64..5), any::<bool>(), proptest::option::of(0u64..1000))
            .prop_map(|(s, a, t, tr, size)| {
                let mut o = json!({"state": STATES[s]});
                if let Some(a) = a { o["paths-active"] = json!(a) } else { o["paths-active"] = json!("x") }
                if let Some(t) = t { o["paths-total"] = json!(t) }
                if tr { o["transport"] = json!("iscsi") }
                if let Some(size) = size { o["size"] = json!(size) }
                o
            }),
        1 => Just(json!("optimal")),
        1 => Just(json!([1, 2])),
    ]
}

fn arb_broadcast() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (
            prop_oneof![Just(Some(NOW)), Just(Some(NOW - 50)), Just(Some(NOW - 500)), Just(None), Just(Some(NOW + 100))],
            proptest::collection::btree_map(0..WWIDS.len(), arb_entry(), 0..5),
        ).prop_map(|(time, maps)| {
            let maps: serde_json::Map<String, Value> =
                maps.into_iter().map(|(w, e)| (WWIDS[w].to_owned(), e)).collect();
            let mut o = json!({"maps": maps});
            if let Some(t) = time { o["time"] = json!(t) }
            o.to_string()
        }),
        1 => ".{0,40}",
        1 => Just(r#"{"time": 1, "maps": []}"#.to_owned()),
    ]
}

fn arb_node_set() -> impl Strategy<Value = BTreeSet<NodeName>> {
    proptest::collection::btree_set(0..NODES.len(), 0..4)
        .prop_map(|s| s.into_iter().map(node).collect())
}

prop_compose! {
    fn arb_snapshot()(
        allow in proptest::collection::vec(0..WWIDS.len(), 0..5),
        members in prop_oneof![
            1 => Just(BTreeMap::new()),
            3 => proptest::collection::btree_map(0..NODES.len(), any::<bool>(), 1..5),
        ],
        multipath in proptest::collection::btree_map(0..NODES.len(), arb_broadcast(), 0..5),
        apply in proptest::collection::btree_map(0..NODES.len(), prop_oneof![Just(r#"{"error":"boom","time":5}"#.to_owned()), ".{0,10}".prop_map(|s| s)], 0..3),
        exp_nodes in arb_node_set(),
        wwid_nodes in proptest::collection::btree_map(0..WWIDS.len(), arb_node_set(), 0..3),
        stale_after in proptest::option::of(0u64..600),
    ) -> Snapshot {
        Snapshot {
            version: 1,
            now: NOW,
            stale_after,
            config: SnapshotConfig { wwids: allow.into_iter().map(wwid).collect(), aliases: BTreeMap::new() },
            members: members.into_iter().map(|(n, online)| (node(n), Member { online })).collect(),
            kv: KvSnapshot {
                multipath: multipath.into_iter().map(|(n, b)| (node(n), b)).collect(),
                multipath_apply: apply.into_iter().map(|(n, b)| (node(n), b)).collect(),
                multipath_collect: BTreeMap::new(),
                multipath_plan: BTreeMap::new(),
                multipath_detail: BTreeMap::new(),
            },
            expectations: Expectations {
                nodes: exp_nodes,
                wwid_nodes: wwid_nodes.into_iter().map(|(w, s)| (wwid(w), s)).collect(),
                consumers: BTreeMap::new(),
            },
            publish_errors: BTreeMap::new(),
            hint_since: BTreeMap::new(),
            flapping: Vec::new(),
        }
    }
}

/// The nodes whose cells must never drive the roll-up: not a live member, or a broadcast that is
/// missing its time or too old.
fn offline_nodes(snap: &Snapshot) -> BTreeSet<NodeName> {
    let mut out = BTreeSet::new();
    for (n, raw) in &snap.kv.multipath {
        let stale = match broadcast::decode(raw) {
            Ok(d) => d
                .broadcast
                .time
                .is_none_or(|t| NOW - t > snap.stale_after() as i64),
            Err(_) => false,
        };
        let member_offline =
            !snap.members.is_empty() && !snap.members.get(n).is_some_and(|m| m.online);
        if stale || member_offline {
            out.insert(n.clone());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics(raw in ".{0,200}") {
        let _ = broadcast::decode(&raw);
    }

    #[test]
    fn cluster_state_is_the_worst_counted_cell(snap in arb_snapshot()) {
        let st = assemble(&snap).status;
        for lun in &st.luns {
            let counted: Vec<MapState> =
                lun.nodes.values().map(|c| c.state).filter(|s| *s != MapState::Unknown).collect();
            let expect = counted.iter().copied().max().unwrap_or(MapState::Unknown);
            prop_assert_eq!(lun.cluster_state, expect, "row {}", lun.wwid);
        }
    }

    #[test]
    fn rows_are_allow_list_union_reported(snap in arb_snapshot()) {
        let st = assemble(&snap).status;
        let mut expect: BTreeSet<Wwid> = snap.config.wwids.iter().cloned().collect();
        for raw in snap.kv.multipath.values() {
            if let Ok(d) = broadcast::decode(raw) {
                expect.extend(d.broadcast.maps.into_keys());
            }
        }
        let rows: Vec<Wwid> = st.luns.iter().map(|l| l.wwid.clone()).collect();
        prop_assert_eq!(rows, expect.into_iter().collect::<Vec<_>>(), "sorted, unique, complete");
    }

    #[test]
    fn offline_nodes_never_drive_the_roll_up(snap in arb_snapshot()) {
        let offline = offline_nodes(&snap);
        let before = assemble(&snap).status;
        // Rewrite every offline node's reported states to "failed": nothing may change.
        let mut worse = snap.clone();
        for (n, raw) in worse.kv.multipath.iter_mut() {
            if !offline.contains(n) {
                continue;
            }
            let Ok(mut v) = serde_json::from_str::<Value>(raw) else { continue };
            if let Some(maps) = v.get_mut("maps").and_then(Value::as_object_mut) {
                for entry in maps.values_mut() {
                    if let Some(o) = entry.as_object_mut() {
                        o.insert("state".into(), json!("failed"));
                        o.insert("paths-active".into(), json!(0));
                    }
                }
            }
            *raw = v.to_string();
        }
        let after = assemble(&worse).status;
        prop_assert_eq!(before, after);
        // And no offline node carries anything but an unknown cell.
        for lun in &assemble(&snap).status.luns {
            for (n, c) in &lun.nodes {
                if offline.contains(n) {
                    prop_assert_eq!(c.state, MapState::Unknown);
                }
            }
        }
    }

    #[test]
    fn output_is_deterministic(snap in arb_snapshot()) {
        let a = assemble(&snap);
        let mut shuffled = snap.clone();
        shuffled.config.wwids.reverse();
        let b = assemble(&shuffled);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(
            serde_json::to_string(&a.status).unwrap(),
            serde_json::to_string(&b.status).unwrap()
        );
    }

    #[test]
    fn incremental_engine_equals_stateless(a in arb_snapshot(), b in arb_snapshot()) {
        let mut engine = mpcluster_core::status::StatusEngine::default();
        prop_assert_eq!(engine.assemble(&a), assemble(&a));
        prop_assert_eq!(engine.assemble(&b), assemble(&b));
        prop_assert_eq!(engine.assemble(&a), assemble(&a));
    }

    #[test]
    fn json_round_trips(snap in arb_snapshot()) {
        let st = assemble(&snap).status;
        let text = serde_json::to_string(&st).unwrap();
        let back: mpcluster_core::status::Status = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(st, back);
        let snap_text = serde_json::to_string(&snap).unwrap();
        prop_assert_eq!(Snapshot::from_json(&snap_text).unwrap(), snap);
    }
}
