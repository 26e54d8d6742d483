//! Broadcast and detail payloads: size budgets, graceful degradation, change detection.
//! `cargo test -p mpcluster-core --test payload_budget -- --nocapture` prints the encoded sizes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod multipathd_gen;

use std::collections::BTreeMap;
use std::time::Duration;

use mpcluster_core::broadcast::{self, MapSummary};
use mpcluster_core::multipathd::{NodeReport, parse_maps_json, parse_paths_raw, summarize};
use mpcluster_core::payload::{
    BROADCAST_BUDGET, BroadcastPolicy, DETAIL_BUDGET, Decision, DetailPayload, DetailPolicy,
    encode_broadcast, encode_detail, encode_detail_within,
};
use mpcluster_core::{MapState, Wwid};
use multipathd_gen::{maps_json, paths_raw, summaries};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const NOW: i64 = 1_764_254_400;

/// Check the invariants of any encoded broadcast and return the decoded form.
fn check_broadcast(maps: &BTreeMap<Wwid, MapSummary>) -> broadcast::Broadcast {
    let e = encode_broadcast(NOW, maps);
    assert!(e.value.len() < BROADCAST_BUDGET, "{} bytes", e.value.len());
    let d = broadcast::decode(&e.value).unwrap();
    assert!(d.ignored.is_empty(), "{:?}", d.ignored);
    let b = d.broadcast;
    assert_eq!(b.time, Some(NOW));
    assert_eq!(b.maps.len(), e.maps_kept);
    assert_eq!(e.maps_kept as u64 + e.truncated, maps.len() as u64);
    assert_eq!(b.truncated.unwrap_or(0), e.truncated);
    // Exactly Broadcast's serde form.
    assert_eq!(serde_json::to_string(&b).unwrap(), e.value);
    for (w, s) in &b.maps {
        let orig = &maps[w];
        assert_eq!(
            (s.state, s.paths_active, s.paths_total),
            (orig.state, orig.paths_active, orig.paths_total)
        );
        assert!(s.transport.is_none() || s.transport == orig.transport);
    }
    // Severity first: no optimal map is kept while a non-optimal one was dropped.
    if e.truncated > 0 {
        let dropped_non_optimal = maps
            .iter()
            .any(|(w, s)| s.state != MapState::Optimal && !b.maps.contains_key(w));
        let kept_optimal = b.maps.values().any(|s| s.state == MapState::Optimal);
        assert!(!(dropped_non_optimal && kept_optimal));
    }
    b
}

#[test]
fn sizes_for_100_256_400_maps() {
    for n in [100, 256, 400] {
        let maps = summaries(n, Some(10), Some(50));
        let e = encode_broadcast(NOW, &maps);
        eprintln!(
            "broadcast {n} maps: {} bytes (budget {BROADCAST_BUDGET}), kept {}, optional fields dropped on {}, truncated {}",
            e.value.len(),
            e.maps_kept,
            e.reduced,
            e.truncated
        );
        check_broadcast(&maps);
    }
}

#[test]
fn two_hundred_fifty_six_maps_fit() {
    let maps = summaries(256, Some(10), Some(50));
    assert!(maps.keys().all(|w| w.as_str().len() == 33));
    let e = encode_broadcast(NOW, &maps);
    assert_eq!((e.maps_kept, e.truncated), (256, 0));
    let b = check_broadcast(&maps);
    assert_eq!(b.maps.len(), 256);
    assert_eq!(b.truncated, None);
    // All optimal maps and all-degraded maps fit too.
    for every in [None, Some(1)] {
        let maps = summaries(256, every, None);
        let e = encode_broadcast(NOW, &maps);
        assert_eq!((e.maps_kept, e.truncated), (256, 0));
        check_broadcast(&maps);
    }
}

#[test]
fn a_hundred_maps_keep_every_field() {
    let maps = summaries(100, Some(10), None);
    let e = encode_broadcast(NOW, &maps);
    assert_eq!((e.maps_kept, e.reduced, e.truncated), (100, 0, 0));
    let b = check_broadcast(&maps);
    assert_eq!(&b.maps, &maps);
}

#[test]
fn optional_fields_go_first_and_optimal_maps_lose_them_first() {
    // Between "all fields fit" and "nothing optional fits": some maps lose transport/size.
    let maps = summaries(256, Some(4), None);
    let e = encode_broadcast(NOW, &maps);
    assert!(e.reduced > 0 && e.truncated == 0, "{e:?}");
    let b = check_broadcast(&maps);
    let degraded_full = b
        .maps
        .values()
        .filter(|s| s.state == MapState::Degraded)
        .all(|s| s.transport.is_some() && s.size.is_some());
    assert!(
        degraded_full,
        "degraded maps keep their fields while optimal ones lose theirs"
    );
}

#[test]
fn four_hundred_and_a_thousand_maps_truncate_severity_first() {
    for n in [400, 1000] {
        let maps = summaries(n, Some(10), Some(50));
        let non_optimal = maps
            .values()
            .filter(|s| s.state != MapState::Optimal)
            .count();
        let e = encode_broadcast(NOW, &maps);
        assert!(e.truncated > 0, "{n}");
        let b = check_broadcast(&maps);
        assert_eq!(b.truncated, Some(e.truncated));
        let kept_non_optimal = b
            .maps
            .values()
            .filter(|s| s.state != MapState::Optimal)
            .count();
        assert_eq!(
            kept_non_optimal, non_optimal,
            "{n}: every non-optimal map kept"
        );
        assert!(
            b.maps
                .values()
                .all(|s| s.transport.is_none() && s.size.is_none())
        );
        // Failed before degraded: with all maps failed or degraded, failed ones are kept.
        let all_bad = summaries(n, Some(1), Some(3));
        let b = check_broadcast(&all_bad);
        let failed = all_bad
            .values()
            .filter(|s| s.state == MapState::Failed)
            .count();
        let kept_failed = b
            .maps
            .values()
            .filter(|s| s.state == MapState::Failed)
            .count();
        assert_eq!(kept_failed, failed.min(b.maps.len()));
    }
}

#[test]
fn ten_thousand_maps_still_broadcast() {
    let maps = summaries(10_000, Some(7), None);
    let e = encode_broadcast(NOW, &maps);
    assert!(e.maps_kept > 200 && e.truncated > 9_000, "{e:?}");
    check_broadcast(&maps);
}

#[test]
fn empty_broadcast() {
    let maps = BTreeMap::new();
    let e = encode_broadcast(NOW, &maps);
    assert_eq!(e.value, format!("{{\"time\":{NOW},\"maps\":{{}}}}"));
}

fn generated_report(maps: usize, paths: usize) -> NodeReport {
    let mut reply = parse_maps_json(maps_json(maps, paths, Some(5)).as_bytes()).unwrap();
    reply.join_paths(&parse_paths_raw(paths_raw(maps, paths).as_bytes()).unwrap());
    summarize(&reply, |_| Some(1 << 40))
}

#[test]
fn detail_fits_and_degrades() {
    let report = generated_report(256, 4);
    assert_eq!(report.maps.len(), 256);
    assert_eq!(report.maps[0].state, MapState::Degraded);
    assert_eq!(report.maps[1].transport.as_deref(), Some("iscsi"));
    let e = encode_detail(NOW, &report);
    eprintln!(
        "detail 256 maps x 4 paths: {} bytes (budget {DETAIL_BUDGET})",
        e.value.len()
    );
    assert_eq!((e.maps_kept, e.reduced, e.truncated), (256, 0, 0));
    let d = DetailPayload::decode(&e.value).unwrap();
    assert_eq!(d.time, NOW);
    assert_eq!(d.maps, report.maps);

    // A smaller budget: optimal maps lose their path detail first.
    let e = encode_detail_within(NOW, &report, e.value.len() / 2);
    assert!(e.reduced > 0 && e.truncated == 0, "{e:?}");
    let d = DetailPayload::decode(&e.value).unwrap();
    assert!(e.value.len() < report_len(&report) / 2);
    for m in &d.maps {
        if m.state != MapState::Optimal {
            assert!(!m.paths_omitted && !m.path_groups.is_empty(), "{}", m.name);
        }
        if m.paths_omitted {
            assert!(m.path_groups.is_empty());
        }
    }
    // Smaller still: truncation, non-optimal maps first, map order preserved.
    let e = encode_detail_within(NOW, &report, 8 * 1024);
    assert!(e.truncated > 0 && e.value.len() < 8 * 1024);
    let d = DetailPayload::decode(&e.value).unwrap();
    assert_eq!(d.truncated, Some(e.truncated));
    assert!(d.maps.iter().all(|m| m.paths_omitted));
    assert!(
        d.maps.iter().all(|m| m.state == MapState::Degraded),
        "optimal maps dropped first"
    );
    assert_eq!(d.maps.len() as u64 + e.truncated, 256);
    // A budget that holds the degraded maps in full: their paths stay, optimal maps go.
    let degraded_len: usize = report
        .maps
        .iter()
        .filter(|m| m.state == MapState::Degraded)
        .map(|m| serde_json::to_string(m).unwrap().len() + 1)
        .sum();
    let e = encode_detail_within(NOW, &report, degraded_len + 200);
    let d = DetailPayload::decode(&e.value).unwrap();
    assert_eq!(d.maps.len(), 52, "{e:?}");
    assert!(
        d.maps
            .iter()
            .all(|m| m.state == MapState::Degraded && !m.paths_omitted)
    );
    let names: Vec<&str> = d.maps.iter().map(|m| m.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n[3..].parse::<u32>().unwrap());
    assert_eq!(names, sorted);
}

fn report_len(r: &NodeReport) -> usize {
    serde_json::to_string(r).unwrap().len()
}

#[test]
fn detail_of_a_huge_node_fits_the_real_budget() {
    let one = generated_report(1, 8);
    let mut report = NodeReport::default();
    for i in 0..6000 {
        let mut m = one.maps[0].clone();
        m.wwid = Wwid::new(format!("3600a098038303053453f4630{i:08x}")).unwrap();
        m.state = if i % 50 == 0 {
            MapState::Failed
        } else {
            MapState::Optimal
        };
        report.maps.push(m);
    }
    report.errors = vec!["x".repeat(300); 65];
    let e = encode_detail(NOW, &report);
    eprintln!(
        "detail 6000 maps x 8 paths: {} bytes, path detail omitted on {}, truncated {}",
        e.value.len(),
        e.reduced,
        e.truncated
    );
    assert!(e.value.len() < DETAIL_BUDGET);
    assert!(e.reduced > 0);
    let d = DetailPayload::decode(&e.value).unwrap();
    assert_eq!(d.errors.len(), 65);
    assert!(
        d.maps
            .iter()
            .filter(|m| m.state == MapState::Failed)
            .all(|m| !m.paths_omitted),
        "failed maps keep their paths"
    );
    assert_eq!(
        d.maps
            .iter()
            .filter(|m| m.state == MapState::Failed)
            .count(),
        120
    );
}

#[test]
fn broadcast_policy_decisions() {
    let mut policy = BroadcastPolicy::new(Duration::from_secs(60));
    let a = summaries(3, None, None);
    let Decision::Publish(v) = policy.decide(NOW, &a) else {
        panic!("first decision publishes");
    };
    assert_eq!(broadcast::decode(&v).unwrap().broadcast.time, Some(NOW));
    assert_eq!(
        policy.decide(NOW + 5, &a),
        Decision::Unchanged,
        "same summary, time ignored"
    );
    let mut b = a.clone();
    b.values_mut().next().unwrap().state = MapState::Degraded;
    assert!(
        matches!(policy.decide(NOW + 6, &b), Decision::Publish(_)),
        "state changed"
    );
    let mut c = b.clone();
    c.values_mut().next().unwrap().paths_active = Some(1);
    assert!(
        matches!(policy.decide(NOW + 7, &c), Decision::Publish(_)),
        "count changed"
    );
    assert_eq!(policy.decide(NOW + 66, &c), Decision::Unchanged);
    let Decision::Publish(v) = policy.decide(NOW + 67, &c) else {
        panic!("refresh after 60 s");
    };
    assert_eq!(
        broadcast::decode(&v).unwrap().broadcast.time,
        Some(NOW + 67)
    );
    // No maps: clear, once per refresh.
    assert_eq!(policy.decide(NOW + 70, &BTreeMap::new()), Decision::Clear);
    assert_eq!(
        policy.decide(NOW + 71, &BTreeMap::new()),
        Decision::Unchanged
    );
    assert_eq!(policy.decide(NOW + 130, &BTreeMap::new()), Decision::Clear);
    assert!(matches!(policy.decide(NOW + 131, &c), Decision::Publish(_)));
    // A failed write: invalidate, and the next call asks again.
    policy.invalidate();
    assert!(matches!(policy.decide(NOW + 132, &c), Decision::Publish(_)));
    // A fresh policy with no maps clears (a stale value from an earlier run may exist).
    assert_eq!(
        BroadcastPolicy::default().decide(NOW, &BTreeMap::new()),
        Decision::Clear
    );
}

#[test]
fn detail_policy_decisions() {
    let mut policy = DetailPolicy::default();
    let report = generated_report(2, 2);
    let Decision::Publish(v) = policy.decide(NOW, &report) else {
        panic!("first decision publishes");
    };
    assert_eq!(DetailPayload::decode(&v).unwrap().maps, report.maps);
    assert_eq!(policy.decide(NOW + 1, &report), Decision::Unchanged);
    let mut changed = report.clone();
    changed.maps[1].path_groups[0].paths[0].chk_st = Some("i/o pending".into());
    assert!(matches!(
        policy.decide(NOW + 2, &changed),
        Decision::Publish(_)
    ));
    let errors_only = NodeReport {
        maps: vec![],
        errors: vec!["multipathd: timeout".into()],
    };
    assert!(matches!(
        policy.decide(NOW + 3, &errors_only),
        Decision::Publish(_)
    ));
    assert_eq!(
        policy.decide(NOW + 4, &NodeReport::default()),
        Decision::Clear
    );
}

fn arb_state() -> impl Strategy<Value = MapState> {
    prop_oneof![
        6 => Just(MapState::Optimal),
        2 => Just(MapState::Degraded),
        1 => Just(MapState::Failed),
        1 => Just(MapState::Unknown),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/payload_budget.txt"
        ))),
        ..ProptestConfig::default()
    })]

    /// Any number of maps, any states, any WWID lengths: always a valid value under budget,
    /// severity first, counts adding up.
    #[test]
    fn broadcast_always_fits(
        entries in proptest::collection::vec(
            ("[0-9a-f]{1,127}", arb_state(), any::<u32>(), proptest::option::of("[a-z-]{1,32}")),
            0..1200,
        )
    ) {
        let maps: BTreeMap<Wwid, MapSummary> = entries
            .into_iter()
            .map(|(w, state, n, transport)| {
                (
                    Wwid::new(w).unwrap(),
                    MapSummary {
                        state,
                        paths_active: Some(u64::from(n % 9)),
                        paths_total: Some(u64::from(n % 9) + 1),
                        transport: transport.map(Into::into),
                        size: Some(u64::from(n) << 20),
                    },
                )
            })
            .collect();
        check_broadcast(&maps);
    }
}
