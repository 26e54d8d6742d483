//! `mpcluster preflight` and `mpcluster hints` on snapshot files: verdicts, exit codes (0 safe,
//! 2 unsafe, 3 unknown, 1 bad `--down`), the hint list. The cluster is **constructed**: four
//! nodes with one LUN over two iSCSI portals each (the `iscsi-pure` shape of the core's
//! constructed fixtures), published as the agent would (broadcast + path detail).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::{Command, Output};

use mpcluster_core::multipathd::{GroupReport, MapReport, NodeReport, PathReport};
use mpcluster_core::payload::{encode_broadcast, encode_detail};
use mpcluster_core::snapshot::{KvSnapshot, Member, SNAPSHOT_VERSION, Snapshot, SnapshotConfig};
use mpcluster_core::{MapState, NodeName, Wwid};

const NOW: i64 = 1_767_225_600;
const WWID: &str = "3624a93701007a309fb52d942000113a1";

fn node_report(portal1_up: bool) -> NodeReport {
    let path = |dev: &str, host: u32, portal: &str, usable: bool| PathReport {
        dev: dev.into(),
        hcil: Some(format!("{host}:0:0:14")),
        dm_st: Some(if usable { "active" } else { "failed" }.into()),
        chk_st: Some(if usable { "ready" } else { "faulty" }.into()),
        usable,
        portal: Some(portal.into()),
        iscsi_target: Some("iqn.2010-06.com.purestorage:flasharray.1007a309fb52d942".into()),
        ..PathReport::default()
    };
    let paths = vec![
        path("sdb", 3, "10.0.0.1:3260", portal1_up),
        path("sdc", 4, "10.0.0.2:3260", true),
    ];
    let active = paths.iter().filter(|p| p.usable).count() as u64;
    NodeReport {
        maps: vec![MapReport {
            name: "vm-disks".into(),
            wwid: Wwid::new(WWID).unwrap(),
            sysfs: Some("dm-0".into()),
            size: Some(1 << 40),
            state: if active == 2 {
                MapState::Optimal
            } else {
                MapState::Degraded
            },
            paths_active: active,
            paths_total: 2,
            transport: Some("iscsi".into()),
            queueing: false,
            paths_omitted: false,
            path_groups: vec![GroupReport {
                group: Some(1),
                state: Some("active".into()),
                pri: Some(50),
                selector: Some("service-time 0".into()),
                marginal: false,
                paths,
            }],
        }],
        errors: Vec::new(),
    }
}

/// Four live nodes; `portal1_up` false fails portal 10.0.0.1 on all of them; `stale` makes
/// pve4's broadcast 1000 s old.
fn snapshot(portal1_up: bool, stale: bool) -> tempfile::NamedTempFile {
    let mut kv = KvSnapshot::default();
    let mut members = BTreeMap::new();
    for n in ["pve1", "pve2", "pve3", "pve4"] {
        let node = NodeName::new(n).unwrap();
        let report = node_report(portal1_up);
        let time = if stale && n == "pve4" {
            NOW - 1000
        } else {
            NOW
        };
        kv.multipath.insert(
            node.clone(),
            encode_broadcast(time, &report.summaries()).value,
        );
        kv.multipath_detail
            .insert(node.clone(), encode_detail(time, &report).value);
        members.insert(node, Member { online: true });
    }
    let snap = Snapshot {
        version: SNAPSHOT_VERSION,
        now: NOW,
        stale_after: None,
        config: SnapshotConfig {
            wwids: vec![Wwid::new(WWID).unwrap()],
            aliases: BTreeMap::new(),
        },
        members,
        kv,
        expectations: Default::default(),
        publish_errors: BTreeMap::new(),
        hint_since: BTreeMap::new(),
        flapping: Vec::new(),
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_string(&snap).unwrap()).unwrap();
    file
}

fn mpcluster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("MPCLUSTER_SERVER")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn one_portal_is_safe_both_are_not() {
    let snap = snapshot(true, false);
    let path = snap.path().to_str().unwrap();
    let out = mpcluster(&[
        "preflight",
        "--snapshot",
        path,
        "--down",
        "target=10.0.0.1:3260",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("SAFE: taking down target=10.0.0.1:3260 leaves every LUN a usable path"),
        "{stdout}"
    );
    assert!(stdout.contains("Would drop below 2 paths:"), "{stdout}");
    assert!(
        stdout.contains(
            "vm-disks (3624a93701007a309fb52d942000113a1) on pve1: 1 of 2 usable paths left"
        ),
        "{stdout}"
    );

    let out = mpcluster(&[
        "preflight",
        "--snapshot",
        path,
        "--down",
        "target=10.0.0.1:3260",
        "--down",
        "target=10.0.0.2",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.starts_with("UNSAFE"), "{stdout}");
    for n in ["pve1", "pve2", "pve3", "pve4"] {
        assert!(
            stdout.contains(&format!(
                "vm-disks ({WWID}) on {n}: all 2 usable paths go down"
            )),
            "{stdout}"
        );
    }

    let out = mpcluster(&[
        "preflight",
        "--snapshot",
        path,
        "--down",
        "node=pve2,adapter=host3",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "safe");
    assert_eq!(report["below"][0]["node"], "pve2");
}

#[test]
fn stale_data_is_unknown_and_bad_components_are_refused() {
    let snap = snapshot(true, true);
    let path = snap.path().to_str().unwrap();
    let out = mpcluster(&[
        "preflight",
        "--snapshot",
        path,
        "--down",
        "target=10.0.0.1:3260",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.starts_with("UNKNOWN"), "{stdout}");
    assert!(stdout.contains("pve4: its broadcast is stale"), "{stdout}");

    for bad in ["portal=10.0.0.1", "target=x,node=pve1", "adapter=host3"] {
        let out = mpcluster(&["preflight", "--snapshot", path, "--down", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            text(&out.stderr).contains("--down"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn hints_command_and_status_list_the_target_side_hint() {
    let snap = snapshot(false, false);
    let path = snap.path().to_str().unwrap();
    let out = mpcluster(&["hints", "--snapshot", path]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "Hints:\n  WARNING target-side: target portal 10.0.0.1:3260 \
         (iqn.2010-06.com.purestorage:flasharray.1007a309fb52d942) is down for all 4 nodes: look \
         at the array or its network, not the hosts (since 2026-01-01 00:00:00 UTC)\n"
    );
    let out = mpcluster(&["status", "--snapshot", path]);
    assert!(
        text(&out.stdout).contains("\nHints:\n  WARNING target-side: target portal 10.0.0.1:3260")
    );
    let out = mpcluster(&["hints", "--snapshot", path, "--format", "json"]);
    let hints: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hints[0]["kind"], "target-side");
    assert_eq!(hints[0]["target-port"], "10.0.0.1:3260");
    assert_eq!(hints[0]["port-kind"], "portal");
    assert_eq!(hints[0]["nodes"].as_array().unwrap().len(), 4);

    let healthy = snapshot(true, false);
    let out = mpcluster(&["hints", "--snapshot", healthy.path().to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "No hints: nothing points at a cause.\n");
}
