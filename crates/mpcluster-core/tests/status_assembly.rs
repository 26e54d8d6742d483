//! Status assembly over snapshots: the v2 rules of the status endpoint (staleness, clamping,
//! malformed peer values, apply/collect errors, standalone clusters, expectations).
#![allow(clippy::unwrap_used)]

use mpcluster_core::MapState;
use mpcluster_core::snapshot::Snapshot;
use mpcluster_core::status::{AgentIssue, CheckLevel, Status, assemble};
use serde_json::{Value, json};

const NOW: i64 = 1_000_000;

fn bc(time: Option<i64>, maps: Value) -> String {
    match time {
        Some(t) => json!({"time": t, "maps": maps}).to_string(),
        None => json!({"maps": maps}).to_string(),
    }
}

fn ok(active: u64, total: u64) -> Value {
    json!({"state": if active == total { "optimal" } else if active == 0 { "failed" } else { "degraded" },
           "paths-active": active, "paths-total": total})
}

fn status(snap: Value) -> (Status, Vec<String>) {
    let s = Snapshot::from_json(&snap.to_string()).unwrap();
    let a = assemble(&s);
    (a.status, a.notes)
}

fn cell(st: &Status, wwid: &str, node: &str) -> Option<MapState> {
    st.luns
        .iter()
        .find(|l| l.wwid.as_str() == wwid)
        .unwrap_or_else(|| panic!("no row {wwid}"))
        .nodes
        .get(node)
        .map(|c| c.state)
}

fn row_state(st: &Status, wwid: &str) -> MapState {
    st.luns
        .iter()
        .find(|l| l.wwid.as_str() == wwid)
        .unwrap()
        .cluster_state
}

#[test]
fn stale_broadcast_makes_its_node_offline() {
    let (st, notes) = status(json!({
        "version": 1, "now": NOW,
        "config": {"wwids": ["w1"]},
        "members": {"a": {"online": true}, "b": {"online": true}},
        "kv": {"multipath": {
            "a": bc(Some(NOW - 10), json!({"w1": ok(2, 2)})),
            "b": bc(Some(NOW - 181), json!({"w1": ok(0, 2)}))
        }}
    }));
    assert_eq!(
        cell(&st, "w1", "b"),
        Some(MapState::Unknown),
        "stale reporter reads unknown"
    );
    assert_eq!(
        row_state(&st, "w1"),
        MapState::Optimal,
        "a stale failed cell does not drive the roll-up"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("node b: broadcast is 181 s old")),
        "{notes:?}"
    );
}

#[test]
fn stale_limit_is_configurable_and_inclusive() {
    let snap = |after: u64| {
        json!({"version": 1, "now": NOW, "stale-after": after,
               "kv": {"multipath": {"a": bc(Some(NOW - 30), json!({"w1": ok(1, 2)}))}}})
    };
    assert_eq!(
        cell(&status(snap(30)).0, "w1", "a"),
        Some(MapState::Degraded),
        "exactly at the limit is fresh"
    );
    assert_eq!(
        cell(&status(snap(29)).0, "w1", "a"),
        Some(MapState::Unknown)
    );
}

#[test]
fn broadcast_without_time_is_stale() {
    let (st, _) = status(json!({"version": 1, "now": NOW,
        "kv": {"multipath": {"a": bc(None, json!({"w1": ok(2, 2)}))}}}));
    assert_eq!(cell(&st, "w1", "a"), Some(MapState::Unknown));
    assert_eq!(row_state(&st, "w1"), MapState::Unknown);
    let (st, _) = status(json!({"version": 1, "now": NOW,
        "kv": {"multipath": {"a": json!({"time": "recent", "maps": {"w1": ok(2, 2)}}).to_string()}}}));
    assert_eq!(
        cell(&st, "w1", "a"),
        Some(MapState::Unknown),
        "a non-numeric time is no time"
    );
}

#[test]
fn malformed_broadcasts_are_ignored_per_node_and_per_entry() {
    let (st, notes) = status(json!({
        "version": 1, "now": NOW,
        "kv": {"multipath": {
            "a": "not json",
            "b": "[1,2]",
            "c": json!({"time": NOW, "maps": "x"}).to_string(),
            "d": json!({"time": NOW, "maps": {"w1": "optimal", "w2": {"state": "degraded",
                    "paths-active": "1", "paths-total": -2, "size": 1.5}}}).to_string(),
        }}
    }));
    assert_eq!(st.luns.len(), 1, "only d's valid entry makes a row");
    let row = &st.luns[0];
    assert_eq!(row.wwid.as_str(), "w2");
    assert_eq!(row.size, None);
    let json = serde_json::to_value(row).unwrap();
    assert_eq!(
        json["nodes"]["d"],
        json!({"state": "degraded", "paths-active": null, "paths-total": null})
    );
    assert_eq!(notes.len(), 4, "{notes:?}");
}

#[test]
fn clamped_states_do_not_count() {
    let (st, _) = status(
        json!({"version": 1, "now": NOW, "config": {"wwids": ["w1"]},
        "kv": {"multipath": {"a": bc(Some(NOW), json!({"w1": {"state": "exploded", "paths-active": 1, "paths-total": 1}}))}},
        "expectations": {"nodes": {"a": 1}}}),
    );
    assert_eq!(cell(&st, "w1", "a"), Some(MapState::Unknown));
    assert_eq!(row_state(&st, "w1"), MapState::Unknown);
}

#[test]
fn standalone_every_reporter_is_live() {
    let (st, _) = status(json!({"version": 1, "now": NOW, "members": {},
        "kv": {"multipath": {"solo": bc(Some(NOW), json!({"w1": ok(1, 2)}))},
               "multipath-apply": {"solo": json!({"error": "multipathd reconfigure failed", "time": NOW}).to_string()}}}));
    assert_eq!(row_state(&st, "w1"), MapState::Degraded);
    assert_eq!(
        serde_json::to_value(&st.nodes).unwrap(),
        json!({"solo": {"apply-error": "multipathd reconfigure failed", "apply-time": NOW}})
    );
}

#[test]
fn membership_decides_liveness_of_reporters_and_expected_nodes() {
    let (st, _) = status(json!({
        "version": 1, "now": NOW, "config": {"wwids": ["w1"]},
        "members": {"a": {"online": 1}, "b": {"online": 0}, "c": {"online": 1}},
        "kv": {"multipath": {"a": bc(Some(NOW), json!({"w1": ok(2, 2)})),
                             "b": bc(Some(NOW), json!({"w1": ok(2, 2)}))}},
        "expectations": {"nodes": {"a": 1, "b": 1, "c": 1, "d": 1}}
    }));
    assert_eq!(cell(&st, "w1", "a"), Some(MapState::Optimal));
    assert_eq!(
        cell(&st, "w1", "b"),
        Some(MapState::Unknown),
        "offline member"
    );
    assert_eq!(
        cell(&st, "w1", "c"),
        Some(MapState::Missing),
        "online, expected, silent"
    );
    assert_eq!(
        cell(&st, "w1", "d"),
        Some(MapState::Unknown),
        "expected by a storage but never seen (not a member, no broadcast): offline, as in the seed"
    );
    assert_eq!(st.nodes["d"].agent, Some(AgentIssue::NeverSeen));
    assert_eq!(row_state(&st, "w1"), MapState::Missing);
}

#[test]
fn departed_member_and_never_seen_node_are_unknown() {
    let (st, _) = status(json!({
        "version": 1, "now": NOW, "config": {"wwids": ["w1"]},
        "members": {"a": {"online": true}, "gone": {"online": false}},
        "kv": {"multipath": {"a": bc(Some(NOW), json!({"w1": ok(2, 2)})),
                             "ghost": bc(Some(NOW), json!({"w1": ok(2, 2)}))}},
        "expectations": {"nodes": {"a": 1, "gone": 1, "never": 1, "ghost": 1}}
    }));
    assert_eq!(
        cell(&st, "w1", "gone"),
        Some(MapState::Unknown),
        "a member that left"
    );
    assert_eq!(
        cell(&st, "w1", "never"),
        Some(MapState::Unknown),
        "never seen: nothing is known, so not missing"
    );
    assert_eq!(st.nodes["never"].agent, Some(AgentIssue::NeverSeen));
    assert_eq!(
        cell(&st, "w1", "ghost"),
        Some(MapState::Unknown),
        "broadcasts but is no member: not live"
    );
    assert!(
        !st.nodes.contains_key("ghost") && !st.nodes.contains_key("gone"),
        "only a node nobody heard from is never-seen: {:?}",
        st.nodes
    );
    assert_eq!(row_state(&st, "w1"), MapState::Optimal);
    assert_eq!(
        st.check_level(),
        CheckLevel::Warning,
        "a never-seen node is a warning"
    );
}

#[test]
fn truncated_broadcast_does_not_fake_missing_maps() {
    let (st, _) = status(json!({
        "version": 1, "now": NOW, "config": {"wwids": ["w1", "w2"]},
        "kv": {"multipath": {
            "a": json!({"time": NOW, "maps": {"w1": ok(1, 2)}, "truncated": 1}).to_string(),
            "b": bc(Some(NOW), json!({"w1": ok(2, 2)})),
        }},
        "expectations": {"nodes": {"a": 1, "b": 1}}
    }));
    assert_eq!(
        cell(&st, "w2", "a"),
        Some(MapState::Unknown),
        "dropped to fit, not lost"
    );
    assert_eq!(cell(&st, "w2", "b"), Some(MapState::Missing));
    assert_eq!(row_state(&st, "w1"), MapState::Degraded);
}

#[test]
fn wwid_nodes_override_the_multipath_node_set() {
    let (st, _) = status(json!({
        "version": 1, "now": NOW, "config": {"wwids": ["w1", "w2"]},
        "kv": {"multipath": {"a": bc(Some(NOW), json!({"w1": ok(2, 2), "w2": ok(2, 2)}))}},
        "expectations": {"nodes": {"a": 1, "b": 1}, "wwid-nodes": {"w1": {"a": 1}},
                         "consumers": {"w1": "vm-lvm"}}
    }));
    assert_eq!(cell(&st, "w1", "b"), None, "w1 is only expected on a");
    assert_eq!(row_state(&st, "w1"), MapState::Optimal);
    assert_eq!(st.luns[0].used_by.as_deref(), Some("vm-lvm"));
    assert_eq!(
        cell(&st, "w2", "b"),
        Some(MapState::Missing),
        "w2 falls back to every multipath node"
    );
    assert_eq!(row_state(&st, "w2"), MapState::Missing);
}

#[test]
fn apply_and_collect_errors_follow_liveness() {
    let err = |e: &str, t: Value| json!({"error": e, "time": t}).to_string();
    let (st, _) = status(json!({
        "version": 1, "now": NOW,
        "members": {"a": {"online": true}, "b": {"online": false}, "c": {"online": true}},
        "kv": {
            "multipath-apply": {
                "a": err("write /etc/multipath/conf.d: read-only file system", json!(NOW)),
                "b": err("offline node's leftover", json!(NOW)),
                "c": err("", json!(NOW)),
                "d": err("not a member", json!(NOW)),
            },
            "multipath-collect": {
                "a": json!({"error": "multipathd not running"}).to_string(),
                "c": "garbage",
            }
        }
    }));
    assert_eq!(
        serde_json::to_value(&st.nodes).unwrap(),
        json!({"a": {"apply-error": "write /etc/multipath/conf.d: read-only file system", "apply-time": NOW,
                     "collect-error": "multipathd not running", "collect-time": null}})
    );
}

#[test]
fn non_string_errors_are_ignored_and_long_ones_cut() {
    let long = "x".repeat(10_000);
    let (st, _) = status(json!({"version": 1, "now": NOW, "kv": {"multipath-apply": {
        "a": json!({"error": {"nested": 1}}).to_string(),
        "b": json!({"error": long, "time": NOW}).to_string(),
    }}}));
    assert!(!st.nodes.contains_key("a"));
    assert!(st.nodes["b"].apply_error.as_ref().unwrap().chars().count() <= 4097);
}

#[test]
fn check_levels() {
    let lvl = |maps: Value, apply: bool| {
        let mut snap =
            json!({"version": 1, "now": NOW, "kv": {"multipath": {"a": bc(Some(NOW), maps)}}});
        if apply {
            snap["kv"]["multipath-apply"] = json!({"a": json!({"error": "x"}).to_string()});
        }
        status(snap).0.check_level()
    };
    assert_eq!(lvl(json!({"w1": ok(2, 2)}), false), CheckLevel::Ok);
    assert_eq!(lvl(json!({"w1": ok(2, 2)}), true), CheckLevel::Warning);
    assert_eq!(lvl(json!({"w1": ok(1, 2)}), false), CheckLevel::Warning);
    assert_eq!(
        lvl(json!({"w1": ok(1, 2), "w2": ok(0, 2)}), false),
        CheckLevel::Critical
    );
    assert_eq!(
        lvl(json!({"w1": {"state": "zzz"}}), false),
        CheckLevel::Unknown
    );
    assert_eq!(
        lvl(json!({"w1": {"state": "zzz"}, "w2": ok(1, 2)}), false),
        CheckLevel::Warning
    );
    assert_eq!(
        status(json!({"version": 1, "now": NOW})).0.check_level(),
        CheckLevel::Ok
    );
}

#[test]
fn broadcast_dated_ahead_is_not_trusted() {
    let snap = |ahead: i64| {
        status(json!({
            "version": 1, "now": NOW, "config": {"wwids": ["w1"]},
            "members": {"a": {"online": true}, "b": {"online": true}},
            "kv": {"multipath": {"a": bc(Some(NOW), json!({"w1": ok(2, 2)})),
                                 "b": bc(Some(NOW + ahead), json!({"w1": ok(2, 2)}))}},
            "expectations": {"nodes": {"a": 1, "b": 1}}
        }))
        .0
    };
    // Within the tolerance: a little drift is fine.
    let st = snap(30);
    assert_eq!(cell(&st, "w1", "b"), Some(MapState::Optimal));
    assert!(st.nodes.is_empty(), "{:?}", st.nodes);
    // Beyond it (a clock ahead, or a forged time ten years out): never fresh.
    for ahead in [31, 10 * 365 * 86_400] {
        let st = snap(ahead);
        assert_eq!(cell(&st, "w1", "b"), Some(MapState::Unknown), "+{ahead} s");
        let err = st.nodes["b"].broadcast_error.as_deref().unwrap();
        assert!(
            err.contains(&format!("{ahead} s ahead")),
            "the error names the offset: {err}"
        );
        assert_eq!(row_state(&st, "w1"), MapState::Optimal);
        assert_eq!(st.check_level(), CheckLevel::Warning);
    }
}

#[test]
fn unreadable_broadcast_is_a_node_error_not_a_missing_lun() {
    let (st, notes) = status(json!({
        "version": 1, "now": NOW, "config": {"wwids": ["w1"]},
        "members": {"a": {"online": true}, "b": {"online": true}},
        "kv": {"multipath": {"a": bc(Some(NOW), json!({"w1": ok(2, 2)})),
                             "b": "{\"time\": 5, \"maps\": [1, 2"}},
        "expectations": {"nodes": {"a": 1, "b": 1}}
    }));
    assert_eq!(
        cell(&st, "w1", "b"),
        Some(MapState::Unknown),
        "we cannot read it: unknown, not missing"
    );
    let err = st.nodes["b"].broadcast_error.as_deref().unwrap();
    assert!(err.starts_with("broadcast unreadable: "), "{err}");
    assert!(notes.iter().any(|n| n.contains("node b")), "{notes:?}");
    assert_eq!(st.check_level(), CheckLevel::Warning);
}

/// Issue 16, part 1: a node whose agent cannot write to the store (its server knows, and says
/// so in the snapshot) is never shown with what the store still holds for it, however fresh.
#[test]
fn a_node_that_cannot_publish_is_unknown_with_a_publish_error() {
    let snap = json!({
        "version": 1, "now": NOW,
        "config": {"wwids": ["w1", "w2"]},
        "kv": {"multipath": {
            "a": bc(Some(NOW - 5), json!({"w1": ok(2, 2), "w2": ok(2, 2)})),
            "b": bc(Some(NOW - 5), json!({"w1": ok(2, 2)}))
        }},
        "expectations": {"nodes": {"a": 1, "b": 1}, "wwid-nodes": {"w2": {"a": 1}}},
        "publish-errors": {"a": {"error": "cannot write kv/multipath/a: Operation not permitted", "since": NOW - 3}}
    });
    let (st, notes) = status(snap.clone());
    assert_eq!(cell(&st, "w1", "a"), Some(MapState::Unknown));
    assert_eq!(cell(&st, "w2", "a"), Some(MapState::Unknown));
    // The other node still drives the roll-up; a LUN only `a` carries is unknown, not optimal.
    assert_eq!(row_state(&st, "w1"), MapState::Optimal);
    assert_eq!(row_state(&st, "w2"), MapState::Unknown);
    let issues = &st.nodes["a"];
    let err = issues.publish_error.as_deref().unwrap();
    assert!(
        err.contains("cannot publish") && err.contains("Operation not permitted"),
        "{err}"
    );
    assert_eq!(issues.publish_time, Some(NOW - 3));
    assert!(
        notes
            .iter()
            .any(|n| n.contains("node a") && n.contains("publish"))
    );
    assert_ne!(st.check_level(), CheckLevel::Ok);
    let a = assemble(&Snapshot::from_json(&snap.to_string()).unwrap());
    let overview = a
        .node_overview
        .iter()
        .find(|n| n.node.as_str() == "a")
        .unwrap();
    assert!(!overview.online && !overview.stale);
    // The JSON names it (`publish-error`, `publish-time`), and the snapshot round-trips it.
    let v = serde_json::to_value(&st).unwrap();
    assert_eq!(v["nodes"]["a"]["publish-time"], NOW - 3);
    let s = Snapshot::from_json(&snap.to_string()).unwrap();
    let again = Snapshot::from_json(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(again, s);
    // Without the publish error the same snapshot reads optimal: the error alone decides.
    let mut fine = snap;
    fine.as_object_mut().unwrap().remove("publish-errors");
    let (st, _) = status(fine);
    assert_eq!(cell(&st, "w2", "a"), Some(MapState::Optimal));
    assert!(st.nodes.is_empty());
}
