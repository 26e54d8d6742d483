//! The CONSTRUCTED fixtures (`tests/fixtures/constructed/`, see its README): other
//! multipath-tools versions (0.8.0 schema, 0.14 `disconnected`), transports (FC, iSCSI, SAS,
//! NVMe-oF, mixed), ALUA standby, a suspended map, queueing with no paths, marginal paths, and
//! the unescaped-quote JSON with its raw-format fallback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use mpcluster_core::MapState;
use mpcluster_core::multipathd::{
    CheckerState, Failback, MapReport, MapsReply, NodeReport, ParseError, Queueing, Recovery,
    ReplySource, parse_maps_json, parse_maps_raw, parse_paths_raw, summarize,
};

fn read(file: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/constructed")
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// JSON, joined with the raw paths when the fixture has them.
fn json_report(name: &str) -> (MapsReply, NodeReport) {
    let mut reply = parse_maps_json(&read(&format!("{name}.json"))).unwrap();
    assert!(reply.errors.is_empty(), "{name}: {:?}", reply.errors);
    let paths_file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/constructed")
        .join(format!("{name}.paths-raw.txt"));
    if paths_file.exists() {
        let paths = parse_paths_raw(&read(&format!("{name}.paths-raw.txt"))).unwrap();
        assert!(paths.errors.is_empty(), "{name}: {:?}", paths.errors);
        reply.join_paths(&paths);
    }
    let report = summarize(&reply, |dm| {
        dm.strip_prefix("dm-")?
            .parse::<u64>()
            .ok()
            .map(|n| (n + 1) << 30)
    });
    assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
    (reply, report)
}

/// The raw fallback for the same system.
fn raw_report(name: &str) -> NodeReport {
    let maps = parse_maps_raw(&read(&format!("{name}.maps-raw.txt"))).unwrap();
    let paths = parse_paths_raw(&read(&format!("{name}.paths-raw.txt"))).unwrap();
    assert!(maps.errors.is_empty() && paths.errors.is_empty());
    let reply = MapsReply::from_raw(maps, &paths);
    let report = summarize(&reply, |dm| {
        dm.strip_prefix("dm-")?
            .parse::<u64>()
            .ok()
            .map(|n| (n + 1) << 30)
    });
    assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
    report
}

fn brief(m: &MapReport) -> (MapState, u64, u64, Option<&str>) {
    (
        m.state,
        m.paths_active,
        m.paths_total,
        m.transport.as_deref(),
    )
}

/// JSON and raw agree on every map's summary.
fn agree(json: &NodeReport, raw: &NodeReport) {
    assert_eq!(json.maps.len(), raw.maps.len());
    for (j, r) in json.maps.iter().zip(&raw.maps) {
        assert_eq!(j.summary(), r.summary(), "{}", j.name);
        assert_eq!((&j.name, &j.wwid, &j.sysfs), (&r.name, &r.wwid, &r.sysfs));
    }
}

#[test]
fn fc_netapp_one_failed_path() {
    let (reply, report) = json_report("fc-netapp");
    let m = &report.maps[0];
    assert_eq!(m.wwid.as_str(), "3600a098038314c4a433f5774717a3046");
    assert_eq!(brief(m), (MapState::Degraded, 3, 4, Some("fc")));
    assert_eq!(m.size, Some(3 << 30));
    assert_eq!(reply.maps[0].queueing, Some(Queueing::On));
    let sdf = &m.path_groups[0].paths[1];
    assert_eq!(
        (sdf.dev.as_str(), sdf.usable, sdf.chk_st.as_deref()),
        ("sdf", false, Some("faulty"))
    );
    assert_eq!(sdf.host_adapter.as_deref(), Some("0000:3b:00.1"));
    assert_eq!(sdf.host_wwpn.as_deref(), Some("0x10000090fa1b2c3e"));
    assert_eq!(sdf.target_wwpn.as_deref(), Some("0x202000a098c1d2e3"));
    assert_eq!(sdf.target_wwnn.as_deref(), Some("0x200000a098c1d2e3"));
    assert_eq!(sdf.iscsi_target, None);
    assert_eq!(sdf.lun, Some(1));
    assert_eq!(
        (sdf.protocol.as_deref(), sdf.transport.as_deref()),
        (Some("scsi:fcp"), Some("fc"))
    );
    assert_eq!(m.path_groups[1].state.as_deref(), Some("enabled"));
    agree(&report, &raw_report("fc-netapp"));
}

#[test]
fn iscsi_pure() {
    let (_, report) = json_report("iscsi-pure");
    let m = &report.maps[0];
    assert_eq!(brief(m), (MapState::Optimal, 2, 2, Some("iscsi")));
    assert_eq!(m.name, m.wwid.as_str(), "no alias: name is the WWID");
    let p = &m.path_groups[0].paths[0];
    assert_eq!(
        p.iscsi_target.as_deref(),
        Some("iqn.2010-06.com.purestorage:flasharray.1007a309fb52d942")
    );
    assert_eq!(p.host_adapter.as_deref(), Some("192.168.131.31"));
    assert_eq!(p.lun, Some(14));
    assert_eq!(p.hcil.as_deref(), Some("3:0:0:14"));
    agree(&report, &raw_report("iscsi-pure"));
}

#[test]
fn sas() {
    let (_, report) = json_report("sas");
    assert_eq!(
        brief(&report.maps[0]),
        (MapState::Optimal, 2, 2, Some("sas"))
    );
    assert_eq!(report.maps[0].wwid.as_str().len(), 33);
    assert_eq!(
        report.maps[0].path_groups[0].selector.as_deref(),
        Some("round-robin 0")
    );
    agree(&report, &raw_report("sas"));
}

#[test]
fn nvme_over_fabrics() {
    let (reply, report) = json_report("nvme-of");
    let briefs: Vec<_> = report.maps.iter().map(brief).collect();
    assert_eq!(
        briefs,
        [
            (MapState::Optimal, 2, 2, Some("nvme-tcp")),
            (MapState::Degraded, 1, 2, Some("nvme-rdma")),
            (MapState::Optimal, 2, 2, Some("nvme-fc")),
        ]
    );
    assert_eq!(
        reply.maps[1].path_groups[0].paths[1].chk_st,
        Some(CheckerState::Pending),
        "value with a space"
    );
    assert_eq!(report.maps[0].wwid.as_str(), "eui.0025388b71b0e2c4");
    assert_eq!(
        report.maps[0].path_groups[0].paths[0].hcil, None,
        "#:#:#:# is unknown"
    );
    agree(&report, &raw_report("nvme-of"));
}

#[test]
fn alua_standby_ghost_is_optimal() {
    let (_, report) = json_report("alua-standby-ghost");
    let m = &report.maps[0];
    assert_eq!(brief(m), (MapState::Optimal, 4, 4, Some("fc")));
    let standby = &m.path_groups[1];
    assert_eq!(standby.state.as_deref(), Some("enabled"));
    assert!(
        standby
            .paths
            .iter()
            .all(|p| p.usable && p.chk_st.as_deref() == Some("ghost"))
    );
    agree(&report, &raw_report("alua-standby-ghost"));
}

#[test]
fn suspended_map_is_failed() {
    let (_, report) = json_report("suspended");
    let m = &report.maps[0];
    assert_eq!(
        brief(m),
        (MapState::Failed, 2, 2, None),
        "no paths reply joined: transport unknown"
    );
    assert!(!m.queueing);
}

#[test]
fn queueing_with_no_paths() {
    let (reply, report) = json_report("queueing-no-paths");
    let m = &report.maps[0];
    assert_eq!(brief(m), (MapState::Failed, 0, 0, None));
    assert!(m.queueing);
    assert!(reply.maps[0].path_groups.is_empty());
    let json = serde_json::to_value(m).unwrap();
    assert_eq!(json["queueing"], true);
    assert_eq!(json["path-groups"], serde_json::json!([]));
    agree(&report, &raw_report("queueing-no-paths"));
}

#[test]
fn marginal_group_is_degraded() {
    let (_, report) = json_report("marginal");
    let m = &report.maps[0];
    assert_eq!(brief(m), (MapState::Degraded, 2, 2, None));
    assert!(m.path_groups[1].marginal && m.path_groups[1].paths[0].marginal);
    assert!(!m.path_groups[0].paths[0].marginal);
}

#[test]
fn mixed_transport() {
    let (_, report) = json_report("mixed-fc-iscsi");
    assert_eq!(
        brief(&report.maps[0]),
        (MapState::Optimal, 2, 2, Some("mixed"))
    );
    agree(&report, &raw_report("mixed-fc-iscsi"));
}

#[test]
fn v0_14_disconnected() {
    let (reply, report) = json_report("0.14-disconnected");
    assert_eq!(brief(&report.maps[0]), (MapState::Degraded, 1, 2, None));
    assert_eq!(
        reply.maps[0].failback,
        Some(Failback::Deferred { secs: 30 })
    );
    assert_eq!(
        reply.maps[0].path_groups[0].paths[1].chk_st,
        Some(CheckerState::Disconnected)
    );
}

#[test]
fn v0_8_0_schema() {
    let (reply, report) = json_report("0.8.0-old-schema");
    assert_eq!(brief(&report.maps[0]), (MapState::Optimal, 2, 2, None));
    let p = &reply.maps[0].path_groups[0].paths[0];
    assert_eq!((p.marginal_st.as_ref(), p.lun_hex.as_ref()), (None, None));
    assert_eq!(reply.maps[0].path_groups[0].marginal_st, None);
    assert_eq!(report.maps[0].path_groups[0].paths[0].lun, None);
}

#[test]
fn v0_8_ibm_public_example() {
    let (reply, report) = json_report("0.8.0-ibm-ubiquity");
    let m = &report.maps[0];
    assert_eq!(m.wwid.as_str(), "360050768029b8168e000000000006247");
    assert_eq!(brief(m), (MapState::Failed, 0, 1, None));
    assert!(!m.queueing, "features 0, queueing 5 chk: I/O fails");
    assert_eq!(reply.maps[0].vendor.as_deref(), Some("IBM     "));
    assert_eq!(
        m.path_groups[0].paths[0].iscsi_target.as_deref(),
        Some("iqn.1986-03.com.ibm:2145.v7k60.node1")
    );
}

/// The alias `db"prod|1` breaks multipathd's JSON; the error tells the agent to fall back, and
/// the raw formats give the full picture (the `|` in the alias is absorbed by the last field).
#[test]
fn unescaped_quote_falls_back_to_raw() {
    let err = parse_maps_json(&read("unescaped-quote.json")).unwrap_err();
    assert!(matches!(err, ParseError::Json { line: 5, .. }), "{err:?}");
    assert_eq!(err.recovery(), Recovery::FallBackToRaw);
    assert_eq!(err.to_string(), "malformed JSON at line 5, column 20");
    assert!(std::error::Error::source(&err).is_some());

    let report = raw_report("unescaped-quote");
    assert_eq!(report.maps.len(), 2);
    assert_eq!(report.maps[0].name, "db\"prod|1");
    assert_eq!(
        report.maps[0].wwid.as_str(),
        "3600a098038314c4a433f577471700004"
    );
    assert_eq!(
        brief(&report.maps[0]),
        (MapState::Degraded, 1, 2, Some("fc"))
    );
    assert_eq!(
        brief(&report.maps[1]),
        (MapState::Optimal, 2, 2, Some("fc"))
    );
    let g = &report.maps[0].path_groups[0];
    assert_eq!(g.group, None, "the raw formats have no group information");
    assert_eq!(g.paths[1].lun, Some(5));
    // The JSON of the report escapes what multipathd did not.
    let text = serde_json::to_string(&report).unwrap();
    assert!(text.contains(r#""name":"db\"prod|1""#));
    let raw = parse_maps_raw(&read("unescaped-quote.maps-raw.txt")).unwrap();
    assert_eq!(raw.maps[0].queueing, Some(Queueing::Retries { checks: 5 }));
    assert_eq!(
        MapsReply::from_raw(raw, &Default::default()).source,
        ReplySource::Raw
    );
}
