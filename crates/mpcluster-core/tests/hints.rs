//! Root-cause hints and the maintenance pre-flight, end to end through status assembly: node
//! reports built from the real multipath-tools 0.9.4 captures (`tests/fixtures/real-0.9.4/`),
//! encoded as the agent publishes them (broadcast + detail), assembled by the status engine.
//!
//! The scsi_debug captures carry no target identity (scsi_debug has no transport objects:
//! protocol `scsi:unspec`, every WWN `[undef]`), so where a case needs one the tests add it as
//! the agent's sysfs enrichment would, one iSCSI portal per SCSI host (host3 -> 10.0.0.3:3260,
//! ...): those cases are labelled **constructed**. Cases the captures lack (a whole adapter
//! down, a resized LUN) are constructed from a capture the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use mpcluster_core::hints::{Hint, HintKind, Severity};
use mpcluster_core::multipathd::{
    MapReport, NodeReport, PathReport, PathsFormat, PortKind, parse_maps_json,
    parse_paths_raw_with, summarize,
};
use mpcluster_core::payload::{encode_broadcast, encode_detail};
use mpcluster_core::preflight::{Down, PreflightRequest, Verdict, evaluate};
use mpcluster_core::snapshot::{KvSnapshot, Member, SNAPSHOT_VERSION, Snapshot, SnapshotConfig};
use mpcluster_core::status::{Assembly, StatusEngine, assemble};
use mpcluster_core::{MapState, NodeName, Wwid};
use proptest::prelude::*;

const NOW: i64 = 1_767_225_600;
const A: &str = "1Linux_scsi_debug_2000";
const B: &str = "1Linux_scsi_debug_2001";
const IQN: &str = "iqn.2003-01.org.linux-iscsi.array:vm-disks";

fn fixture(scenario: &str, file: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-0.9.4/scsi_debug")
        .join(scenario)
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A node's report from a real capture, as the agent builds it (JSON + raw paths, 64 MiB maps).
fn capture(scenario: &str) -> NodeReport {
    let mut reply = parse_maps_json(&fixture(scenario, "show-maps-json.json")).unwrap();
    let tsv = String::from_utf8(fixture(scenario, "COMMANDS.tsv")).unwrap();
    let cmd = tsv
        .lines()
        .find_map(|l| {
            let mut c = l.splitn(3, '\t');
            (c.next() == Some("show-paths-format-raw.txt")).then(|| c.nth(1).unwrap().to_owned())
        })
        .unwrap();
    let format = cmd
        .strip_prefix("multipathd show paths raw format ")
        .unwrap();
    let paths = parse_paths_raw_with(
        &PathsFormat::new(format).unwrap(),
        &fixture(scenario, "show-paths-format-raw.txt"),
    )
    .unwrap();
    reply.join_paths(&paths);
    let report = summarize(&reply, |_| Some(64 << 20));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
}

fn paths_mut(report: &mut NodeReport) -> impl Iterator<Item = (&Wwid, &mut PathReport)> {
    report.maps.iter_mut().flat_map(|m| {
        let wwid = &m.wwid;
        m.path_groups
            .iter_mut()
            .flat_map(|g| g.paths.iter_mut())
            .map(move |p| (wwid, p))
    })
}

/// Constructed: the iSCSI portal the agent would read from sysfs, one per SCSI host.
fn with_portals(mut report: NodeReport) -> NodeReport {
    for (_, p) in paths_mut(&mut report) {
        let host = p.adapter().unwrap().trim_start_matches("host").to_owned();
        p.portal = Some(format!("10.0.0.{host}:3260"));
        p.iscsi_target = Some(IQN.to_owned());
    }
    report
}

/// Recompute each map's counts and state from its paths' `usable`.
fn recount(report: &mut NodeReport) {
    for m in &mut report.maps {
        let paths: Vec<&PathReport> = m.path_groups.iter().flat_map(|g| &g.paths).collect();
        m.paths_total = paths.len() as u64;
        m.paths_active = paths.iter().filter(|p| p.usable).count() as u64;
        m.state = if m.paths_active == 0 {
            MapState::Failed
        } else if m.paths_active < m.paths_total {
            MapState::Degraded
        } else {
            MapState::Optimal
        };
    }
}

/// Constructed: fail every path `which` selects, as the checker would (failed / faulty).
fn fail(mut report: NodeReport, which: impl Fn(&PathReport) -> bool) -> NodeReport {
    for (_, p) in paths_mut(&mut report) {
        if which(p) {
            p.usable = false;
            p.dm_st = Some("failed".into());
            p.chk_st = Some("faulty".into());
        }
    }
    recount(&mut report);
    report
}

fn on_host(host: u32) -> impl Fn(&PathReport) -> bool {
    move |p| p.adapter().as_deref() == Some(&format!("host{host}"))
}

fn node(n: &str) -> NodeName {
    NodeName::new(n).unwrap()
}

/// A cluster snapshot: every node a live member publishing `report` now.
fn cluster(reports: Vec<(&str, NodeReport)>) -> Snapshot {
    let mut kv = KvSnapshot::default();
    let mut members = BTreeMap::new();
    for (name, report) in &reports {
        kv.multipath
            .insert(node(name), encode_broadcast(NOW, &report.summaries()).value);
        kv.multipath_detail
            .insert(node(name), encode_detail(NOW, report).value);
        members.insert(node(name), Member { online: true });
    }
    Snapshot {
        version: SNAPSHOT_VERSION,
        now: NOW,
        stale_after: None,
        config: SnapshotConfig {
            wwids: vec![Wwid::new(A).unwrap(), Wwid::new(B).unwrap()],
            aliases: BTreeMap::new(),
        },
        members,
        kv,
        expectations: Default::default(),
        publish_errors: BTreeMap::new(),
        hint_since: BTreeMap::new(),
        flapping: Vec::new(),
    }
}

fn hints_of(a: &Assembly, kind: HintKind) -> Vec<&Hint> {
    a.status.hints.iter().filter(|h| h.kind == kind).collect()
}

fn names(h: &Hint) -> Vec<&str> {
    h.nodes.iter().map(|n| n.as_str()).collect()
}

const FOUR: [&str; 4] = ["pve1", "pve2", "pve3", "pve4"];

#[test]
fn healthy_cluster_has_no_hints() {
    let a = assemble(&cluster(
        FOUR.iter()
            .map(|n| (*n, with_portals(capture("01-healthy"))))
            .collect(),
    ));
    assert!(a.status.hints.is_empty(), "{:#?}", a.status.hints);
    // Absent from the JSON when empty.
    let json = serde_json::to_value(&a.status).unwrap();
    assert!(json.get("hints").is_none());
}

/// Real `02-one-path-offline` on every node (sdc, host3's path to mpatha, offline), with the
/// constructed portals: the same portal has failed paths on all four nodes.
#[test]
fn target_side_same_portal_failing_on_every_node() {
    let a = assemble(&cluster(
        FOUR.iter()
            .map(|n| (*n, with_portals(capture("02-one-path-offline"))))
            .collect(),
    ));
    let t = hints_of(&a, HintKind::TargetSide);
    assert_eq!(t.len(), 1, "{:#?}", a.status.hints);
    let h = t[0];
    assert_eq!(names(h), FOUR);
    assert_eq!(h.target_port.as_deref(), Some("10.0.0.3:3260"));
    assert_eq!(h.port_kind, Some(PortKind::Portal));
    assert_eq!(h.target.as_deref(), Some(IQN));
    assert_eq!(h.luns, [Wwid::new(A).unwrap()]);
    assert_eq!(h.severity, Severity::Warning);
    assert_eq!(
        h.message,
        format!(
            "target portal 10.0.0.3:3260 ({IQN}) has failed paths on all 4 nodes (mpatha): \
             look at the array or its network, not the hosts"
        )
    );
    assert!(hints_of(&a, HintKind::HostSide).is_empty());
}

/// Constructed from `01-healthy`: every path through portal 10.0.0.3 failed on all nodes.
#[test]
fn target_side_portal_down_for_all_nodes() {
    let a = assemble(&cluster(
        FOUR.iter()
            .map(|n| (*n, fail(with_portals(capture("01-healthy")), on_host(3))))
            .collect(),
    ));
    let t = hints_of(&a, HintKind::TargetSide);
    assert_eq!(t.len(), 1, "{:#?}", a.status.hints);
    assert_eq!(
        t[0].message,
        format!(
            "target portal 10.0.0.3:3260 ({IQN}) is down for all 4 nodes: look at the array \
             or its network, not the hosts"
        )
    );
    assert_eq!(t[0].luns.len(), 2);
    // Each node lost everything through host3, but so did its peers: not host-side.
    assert!(
        hints_of(&a, HintKind::HostSide).is_empty(),
        "{:#?}",
        a.status.hints
    );
    // The matrix agrees: degraded everywhere, nothing failed.
    assert!(
        a.status
            .luns
            .iter()
            .all(|l| l.cluster_state == MapState::Degraded)
    );
}

/// Constructed from `01-healthy`: pve2's host3 lost both its paths; its peers are healthy.
#[test]
fn host_side_one_nodes_adapter_down() {
    let mut reports: Vec<(&str, NodeReport)> = FOUR
        .iter()
        .map(|n| (*n, with_portals(capture("01-healthy"))))
        .collect();
    reports[1].1 = fail(reports[1].1.clone(), on_host(3));
    let a = assemble(&cluster(reports));
    let h = hints_of(&a, HintKind::HostSide);
    assert_eq!(h.len(), 1, "{:#?}", a.status.hints);
    assert_eq!(names(h[0]), ["pve2"]);
    assert_eq!(h[0].host_adapters, ["host3"]);
    assert_eq!(h[0].luns.len(), 2);
    assert_eq!(
        h[0].message,
        "pve2 lost all paths through host adapter host3 to mpatha and mpathb while its peers' \
         paths to the same targets are fine: look at that node's HBA, cable or switch port"
    );
    assert!(hints_of(&a, HintKind::TargetSide).is_empty());

    // Without any target identity (the capture as it is) the LUNs stand for the targets.
    let mut reports: Vec<(&str, NodeReport)> =
        FOUR.iter().map(|n| (*n, capture("01-healthy"))).collect();
    reports[1].1 = fail(reports[1].1.clone(), on_host(3));
    let a = assemble(&cluster(reports));
    assert_eq!(hints_of(&a, HintKind::HostSide).len(), 1);
}

/// Constructed: every adapter of pve4 lost: one hint for the node, critical.
#[test]
fn host_side_all_adapters_down() {
    let mut reports: Vec<(&str, NodeReport)> = FOUR
        .iter()
        .map(|n| (*n, with_portals(capture("01-healthy"))))
        .collect();
    reports[3].1 = fail(reports[3].1.clone(), |_| true);
    let a = assemble(&cluster(reports));
    let h = hints_of(&a, HintKind::HostSide);
    assert_eq!(h.len(), 1, "{:#?}", a.status.hints);
    assert_eq!(h[0].severity, Severity::Critical);
    assert_eq!(h[0].id, "host-side:pve4:*");
    assert_eq!(h[0].host_adapters, ["host3", "host4", "host6"]);
    assert!(
        h[0].message
            .starts_with("pve4 lost all paths through all its host adapters")
    );
    // Most severe first.
    assert_eq!(a.status.hints[0].severity, Severity::Critical);
}

/// Real captures: `06-path-removed` on pve3 (mpathb's sdd deleted: 2 paths, both healthy),
/// `01-healthy` (3 paths) on its peers.
#[test]
fn under_pathed_from_the_path_removed_capture() {
    let mut reports: Vec<(&str, NodeReport)> =
        FOUR.iter().map(|n| (*n, capture("01-healthy"))).collect();
    reports[2].1 = capture("06-path-removed");
    let a = assemble(&cluster(reports));
    let u = hints_of(&a, HintKind::UnderPathed);
    assert_eq!(u.len(), 1, "{:#?}", a.status.hints);
    assert_eq!(names(u[0]), ["pve3"]);
    assert_eq!(u[0].luns, [Wwid::new(B).unwrap()]);
    assert_eq!(
        u[0].message,
        "pve3 sees 2 of the 3 paths its peers see to mpathb: zoning, iSCSI login or a removed path"
    );
    assert_eq!(a.status.hints.len(), 1);
}

/// Real `05-one-healthy-one-degraded` on one node: fewer *usable* paths is not under-pathed
/// (the path is still there, failed), and one node alone says nothing about a target.
#[test]
fn a_failed_path_on_one_node_is_not_under_pathed() {
    let mut reports: Vec<(&str, NodeReport)> = FOUR
        .iter()
        .map(|n| (*n, with_portals(capture("01-healthy"))))
        .collect();
    reports[0].1 = with_portals(capture("05-one-healthy-one-degraded"));
    let a = assemble(&cluster(reports));
    assert!(a.status.hints.is_empty(), "{:#?}", a.status.hints);
}

/// Constructed: mpatha grown to 128 MiB on the array; pve3 and pve4 rescanned, pve1 and pve2
/// not.
#[test]
fn size_mismatch_names_the_nodes_to_rescan() {
    let grown = |mut r: NodeReport| {
        r.maps
            .iter_mut()
            .filter(|m| m.wwid.as_str() == A)
            .for_each(|m| m.size = Some(128 << 20));
        r
    };
    let reports = vec![
        ("pve1", capture("01-healthy")),
        ("pve2", capture("01-healthy")),
        ("pve3", grown(capture("01-healthy"))),
        ("pve4", grown(capture("01-healthy"))),
    ];
    let a = assemble(&cluster(reports));
    let s = hints_of(&a, HintKind::SizeMismatch);
    assert_eq!(s.len(), 1, "{:#?}", a.status.hints);
    assert_eq!(names(s[0]), ["pve1", "pve2"]);
    assert_eq!(
        s[0].message,
        "mpatha is 128.0 MiB on pve3 and pve4 but 64.0 MiB on pve1 and pve2: resized on the \
         array; rescan on pve1 and pve2"
    );
}

#[test]
fn config_drift_from_apply_errors_and_waiting_plans() {
    let mut snap = cluster(FOUR.iter().map(|n| (*n, capture("01-healthy"))).collect());
    snap.kv.multipath_apply.insert(
        node("pve2"),
        r#"{"error":"reconfigure failed: multipathd not idle after 30 s","time":1767225590}"#
            .into(),
    );
    let a = assemble(&snap);
    let d = hints_of(&a, HintKind::ConfigDrift);
    assert_eq!(d.len(), 1);
    assert_eq!(names(d[0]), ["pve2"]);
    assert!(
        d[0].message.starts_with(
            "pve2 failed to apply the cluster's multipath configuration, so it runs another one"
        ),
        "{}",
        d[0].message
    );
}

/// An offline node and a stale one are never named, and their old paths do not make a
/// portal look down.
#[test]
fn offline_and_stale_nodes_are_never_named() {
    let mut snap = cluster(
        FOUR.iter()
            .map(|n| (*n, fail(with_portals(capture("01-healthy")), on_host(3))))
            .collect(),
    );
    snap.members.insert(node("pve1"), Member { online: false });
    let stale = fail(with_portals(capture("01-healthy")), on_host(3));
    snap.kv.multipath.insert(
        node("pve2"),
        encode_broadcast(NOW - 1000, &stale.summaries()).value,
    );
    let a = assemble(&snap);
    let t = hints_of(&a, HintKind::TargetSide);
    assert_eq!(t.len(), 1);
    assert_eq!(names(t[0]), ["pve3", "pve4"]);
    assert!(t[0].message.contains("is down for all 2 nodes"));
    // With one live node left, a portal failing says nothing about the array.
    snap.members.insert(node("pve3"), Member { online: false });
    let a = assemble(&snap);
    assert!(hints_of(&a, HintKind::TargetSide).is_empty());
}

#[test]
fn malformed_detail_is_an_issue_not_a_crash() {
    let mut snap = cluster(FOUR.iter().map(|n| (*n, capture("01-healthy"))).collect());
    snap.kv
        .multipath_detail
        .insert(node("pve2"), r#"{"time": "x", "maps": 7}"#.into());
    snap.kv.multipath_detail.insert(
        node("pve3"),
        encode_detail(NOW - 1000, &capture("01-healthy")).value,
    );
    let a = assemble(&snap);
    let e = a.status.nodes[&node("pve2")]
        .detail_error
        .as_deref()
        .unwrap();
    assert!(e.starts_with("path detail unreadable"), "{e}");
    let e = a.status.nodes[&node("pve3")]
        .detail_error
        .as_deref()
        .unwrap();
    assert!(e.starts_with("path detail is 1000 s old"), "{e}");
    assert!(
        a.notes
            .iter()
            .any(|n| n.starts_with("node pve2: path detail unreadable"))
    );
    assert!(!a.details.contains_key(&node("pve2")));
    // The matrix is untouched.
    assert!(
        a.status
            .luns
            .iter()
            .all(|l| l.cluster_state == MapState::Optimal)
    );
}

#[test]
fn since_is_kept_across_recomputations_and_replays() {
    let reports = |n: usize| -> Vec<(&'static str, NodeReport)> {
        FOUR.iter()
            .map(|name| {
                let r = with_portals(capture("01-healthy"));
                (*name, if n > 0 { fail(r, on_host(3)) } else { r })
            })
            .collect()
    };
    let mut engine = StatusEngine::default();
    let mut snap = cluster(reports(1));
    let first = engine.assemble(&snap);
    assert_eq!(first.status.hints[0].since, NOW);
    snap.now += 30;
    let later = engine.assemble(&snap);
    assert_eq!(later.status.hints[0].since, NOW, "kept");
    // A replay of the server's snapshot (with its hint-since) shows the same since.
    snap.hint_since = engine.hint_since().clone();
    assert_eq!(assemble(&snap).status.hints[0].since, NOW);
    // Cleared, then back: a new since.
    let mut healthy = cluster(reports(0));
    healthy.now = NOW + 60;
    assert!(engine.assemble(&healthy).status.hints.is_empty());
    let mut again = cluster(reports(1));
    again.now = NOW + 90;
    assert_eq!(engine.assemble(&again).status.hints[0].since, NOW + 90);
}

// --- pre-flight -----------------------------------------------------------------------------

/// Constructed (`tests/fixtures/constructed/iscsi-pure`): a Pure FlashArray LUN over two
/// iSCSI sessions (host3, host4), with the portals the agent would read from sysfs:
/// host3 -> 10.0.0.1:3260, host4 -> 10.0.0.2:3260.
fn two_portal_iscsi() -> NodeReport {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/constructed");
    let mut reply = parse_maps_json(&std::fs::read(dir.join("iscsi-pure.json")).unwrap()).unwrap();
    let paths = mpcluster_core::multipathd::parse_paths_raw(
        &std::fs::read(dir.join("iscsi-pure.paths-raw.txt")).unwrap(),
    )
    .unwrap();
    reply.join_paths(&paths);
    let mut report = summarize(&reply, |_| Some(1 << 40));
    for (_, p) in paths_mut(&mut report) {
        let portal = match p.adapter().as_deref() {
            Some("host3") => "10.0.0.1:3260",
            Some("host4") => "10.0.0.2:3260",
            other => panic!("unexpected adapter {other:?}"),
        };
        p.portal = Some(portal.into());
    }
    assert_eq!(report.maps.len(), 1);
    assert_eq!(report.maps[0].paths_active, 2);
    report
}

fn down(spec: &[&str]) -> PreflightRequest {
    PreflightRequest {
        down: spec.iter().map(|s| Down::parse(s).unwrap()).collect(),
        min_paths: None,
    }
}

#[test]
fn preflight_two_portals_one_is_safe_both_are_not() {
    let a = assemble(&cluster(
        FOUR.iter().map(|n| (*n, two_portal_iscsi())).collect(),
    ));
    let one = evaluate(&a, &down(&["target=10.0.0.1:3260"]));
    assert_eq!(one.verdict, Verdict::Safe, "{}", one.render());
    assert_eq!(one.verdict.exit_code(), 0);
    assert!(one.lost.is_empty());
    // Every node keeps 1 of its 2 usable paths: below the default 2, listed, still safe.
    assert_eq!(one.below.len(), 4);
    assert!(one.below.iter().all(|i| (i.usable, i.remaining) == (2, 1)));
    assert!(
        one.render()
            .starts_with("SAFE: taking down target=10.0.0.1:3260 leaves every LUN")
    );

    let both = evaluate(&a, &down(&["target=10.0.0.1:3260", "target=10.0.0.2"]));
    assert_eq!(both.verdict, Verdict::Unsafe, "{}", both.render());
    assert_eq!(both.verdict.exit_code(), 2);
    assert_eq!(both.lost.len(), 4);
    let nodes: Vec<&str> = both.lost.iter().map(|i| i.node.as_str()).collect();
    assert_eq!(nodes, FOUR);
    let text = both.render();
    assert!(text.starts_with("UNSAFE"), "{text}");
    assert!(text.contains("Would lose its last usable path:"), "{text}");

    // The target's IQN takes every portal of it.
    let iqn = evaluate(
        &a,
        &down(&["target=iqn.2010-06.com.purestorage:flasharray.1007a309fb52d942"]),
    );
    assert_eq!(iqn.verdict, Verdict::Unsafe);
}

#[test]
fn preflight_names_the_storages_using_a_lun() {
    let mut snap = cluster(FOUR.iter().map(|n| (*n, two_portal_iscsi())).collect());
    let wwid = Wwid::new("3624a93701007a309fb52d942000113a1").unwrap();
    snap.config.wwids.push(wwid.clone());
    snap.expectations
        .consumers
        .insert(wwid.clone(), "vm-store".to_owned());
    let a = assemble(&snap);
    let r = evaluate(&a, &down(&["target=10.0.0.1", "target=10.0.0.2"]));
    assert_eq!(r.lost[0].used_by.as_deref(), Some("vm-store"));
    assert!(r.render().contains("used by vm-store"), "{}", r.render());
}

/// Real `06-path-removed` on pve3 (mpathb through host4 and host6 only), with the constructed
/// portals: portal 10.0.0.4 and 10.0.0.6 together leave mpathb nothing on pve3 only.
#[test]
fn preflight_adapters_nodes_and_the_removed_path() {
    let mut reports: Vec<(&str, NodeReport)> = FOUR
        .iter()
        .map(|n| (*n, with_portals(capture("01-healthy"))))
        .collect();
    reports[2].1 = with_portals(capture("06-path-removed"));
    let a = assemble(&cluster(reports));
    let r = evaluate(&a, &down(&["target=10.0.0.4:3260", "target=10.0.0.6:3260"]));
    assert_eq!(r.verdict, Verdict::Unsafe);
    let lost: Vec<(&str, &str)> = r
        .lost
        .iter()
        .map(|i| (i.node.as_str(), i.wwid.as_str()))
        .collect();
    assert_eq!(lost, [("pve3", B)]);
    // Taking pve3 down with them: nothing is lost on the others.
    let mut with_node = down(&["target=10.0.0.4:3260", "target=10.0.0.6:3260", "node=pve3"]);
    assert_eq!(evaluate(&a, &with_node).verdict, Verdict::Safe);
    with_node.min_paths = Some(1);
    assert!(evaluate(&a, &with_node).below.is_empty());
    // One adapter of one node.
    let r = evaluate(
        &a,
        &down(&["node=pve3,adapter=host4", "node=pve3,adapter=host6"]),
    );
    assert_eq!(r.verdict, Verdict::Unsafe);
    assert_eq!(r.lost.len(), 1);
    let r = evaluate(&a, &down(&["node=pve1,adapter=host4"]));
    assert_eq!(r.verdict, Verdict::Safe);
    // A typo matches nothing and says so.
    let r = evaluate(&a, &down(&["target=10.0.0.99", "node=pve9"]));
    assert_eq!(r.verdict, Verdict::Safe);
    assert_eq!(r.unmatched.len(), 2);
}

#[test]
fn preflight_with_a_stale_node_is_unknown() {
    let mut snap = cluster(FOUR.iter().map(|n| (*n, two_portal_iscsi())).collect());
    snap.kv.multipath.insert(
        node("pve4"),
        encode_broadcast(NOW - 1000, &two_portal_iscsi().summaries()).value,
    );
    let a = assemble(&snap);
    let r = evaluate(&a, &down(&["target=10.0.0.1:3260"]));
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.render());
    assert_eq!(r.verdict.exit_code(), 3);
    assert_eq!(r.unchecked[0].node.as_str(), "pve4");
    // Unsafe wins over unknown: what is known to be lost is lost.
    let r = evaluate(&a, &down(&["target=10.0.0.1:3260", "target=10.0.0.2:3260"]));
    assert_eq!(r.verdict, Verdict::Unsafe);
    // The stale node itself going down: nothing unknown is involved.
    let r = evaluate(&a, &down(&["target=10.0.0.1:3260", "node=pve4"]));
    assert_eq!(r.verdict, Verdict::Safe);
}

// --- property tests ------------------------------------------------------------------------

/// A generated path: (portal 0..3, adapter 0..2, usable).
type GenPath = (u8, u8, bool);
/// A generated node: online, broadcast age, maps (LUN index, paths), LUN size.
type GenNode = (bool, i64, Vec<(u8, Vec<GenPath>)>, u64);

fn gen_report(maps: &[(u8, Vec<GenPath>)], size: u64) -> NodeReport {
    let mut report = NodeReport::default();
    for (lun, paths) in maps {
        let paths: Vec<PathReport> = paths
            .iter()
            .enumerate()
            .map(|(i, (portal, adapter, usable))| PathReport {
                dev: format!("sd{lun}{i}"),
                hcil: Some(format!("{}:0:0:{lun}", adapter + 3)),
                usable: *usable,
                portal: Some(format!("10.0.0.{portal}:3260")),
                iscsi_target: Some(IQN.into()),
                ..PathReport::default()
            })
            .collect();
        report.maps.push(MapReport {
            name: format!("lun{lun}"),
            wwid: Wwid::new(format!("36001405000{lun}")).unwrap(),
            sysfs: None,
            size: Some(size << 20),
            state: MapState::Optimal,
            paths_active: 0,
            paths_total: 0,
            transport: Some("iscsi".into()),
            queueing: false,
            paths_omitted: false,
            path_groups: vec![mpcluster_core::multipathd::GroupReport {
                group: Some(1),
                state: None,
                pri: None,
                selector: None,
                marginal: false,
                paths,
            }],
        });
    }
    recount(&mut report);
    report
}

/// A generated node: (online member, broadcast age in s, maps, size in MiB).
fn gen_node() -> impl Strategy<Value = GenNode> {
    (
        any::<bool>(),
        prop_oneof![Just(0i64), Just(5), Just(500)],
        proptest::collection::vec(
            (
                0u8..3,
                proptest::collection::vec((0u8..3, 0u8..2, any::<bool>()), 0..5),
            ),
            0..3,
        ),
        1u64..3,
    )
}

fn gen_snapshot(nodes: &[GenNode]) -> Snapshot {
    let mut snap = cluster(Vec::new());
    for (i, (online, age, maps, size)) in nodes.iter().enumerate() {
        let name = node(&format!("n{i}"));
        let mut unique = maps.clone();
        unique.sort_by_key(|m| m.0);
        unique.dedup_by_key(|m| m.0);
        let report = gen_report(&unique, *size);
        snap.members
            .insert(name.clone(), Member { online: *online });
        snap.kv.multipath.insert(
            name.clone(),
            encode_broadcast(NOW - age, &report.summaries()).value,
        );
        snap.kv
            .multipath_detail
            .insert(name.clone(), encode_detail(NOW - age, &report).value);
        if i % 3 == 0 {
            snap.kv.multipath_apply.insert(
                name,
                format!(r#"{{"error":"apply failed on n{i}","time":{NOW}}}"#),
            );
        }
    }
    snap
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Pre-flight never says SAFE when some live node has a LUN whose usable paths all go
    /// through the portal being taken down.
    #[test]
    fn preflight_never_safe_when_the_only_usable_path_goes_down(
        nodes in proptest::collection::vec(gen_node(), 1..6),
        portal in 0u8..3,
    ) {
        let snap = gen_snapshot(&nodes);
        let a = assemble(&snap);
        let target = format!("10.0.0.{portal}:3260");
        let r = evaluate(&a, &down(&[&format!("target={target}")]));
        let cut_off = a.node_overview.iter().filter(|o| o.online && !o.stale).any(|o| {
            a.details.get(&o.node).is_some_and(|d| d.maps.iter().any(|m| {
                let usable: Vec<&PathReport> =
                    m.path_groups.iter().flat_map(|g| &g.paths).filter(|p| p.usable).collect();
                !usable.is_empty()
                    && usable.iter().all(|p| p.portal.as_deref() == Some(target.as_str()))
            }))
        });
        if cut_off {
            prop_assert_ne!(r.verdict, Verdict::Safe, "{}", r.render());
        }
        // And the other way: unsafe only when something is really cut off.
        if r.verdict == Verdict::Unsafe {
            prop_assert!(cut_off);
        }
    }

    /// A hint never names a node that is offline or stale.
    #[test]
    fn hints_never_name_offline_or_stale_nodes(
        nodes in proptest::collection::vec(gen_node(), 1..6)
    ) {
        let snap = gen_snapshot(&nodes);
        let a = assemble(&snap);
        let live: BTreeSet<&NodeName> = a
            .node_overview
            .iter()
            .filter(|o| o.online && !o.stale)
            .map(|o| &o.node)
            .collect();
        for h in &a.status.hints {
            for n in &h.nodes {
                prop_assert!(live.contains(n), "{} names {n}: {:#?}", h.id, a.node_overview);
                prop_assert!(!h.message.is_empty());
            }
            for (i, (online, age, _, _)) in nodes.iter().enumerate() {
                if !*online || *age > 180 {
                    let name = format!("n{i}");
                    prop_assert!(
                        !h.message.split(|c: char| !c.is_alphanumeric()).any(|w| w == name),
                        "{}", h.message
                    );
                }
            }
        }
    }
}
