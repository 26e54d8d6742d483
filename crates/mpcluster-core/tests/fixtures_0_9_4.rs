//! The real multipath-tools 0.9.4 captures (`tests/fixtures/real-0.9.4/`, copied byte-exact
//! from `shared/fixtures/multipathd-0.9.4/`): every `show maps json`, `show map X json` and raw
//! format output parses, and summarizes to the state an admin reading `multipath -ll` would
//! name. The JSON and the raw-format fallback must agree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use mpcluster_core::MapState;
use mpcluster_core::multipathd::{
    CheckerState, DevState, GroupDmState, MapReport, MapsFormat, MapsReply, NodeReport, ParseError,
    PathDmState, PathsFormat, Queueing, Recovery, ReplySource, parse_maps_json,
    parse_maps_raw_with, parse_paths_raw_with, summarize,
};
use mpcluster_core::payload::{BroadcastPolicy, Decision};

const MIB64: u64 = 64 * 1024 * 1024;

fn dir(run: &str, scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-0.9.4")
        .join(run)
        .join(scenario)
}

fn read(run: &str, scenario: &str, file: &str) -> Vec<u8> {
    let p = dir(run, scenario).join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The exact command line of a captured file, from `COMMANDS.tsv`.
fn command(run: &str, scenario: &str, file: &str) -> String {
    let tsv = String::from_utf8(read(run, scenario, "COMMANDS.tsv")).unwrap();
    tsv.lines()
        .find_map(|l| {
            let mut cols = l.splitn(3, '\t');
            (cols.next() == Some(file)).then(|| cols.nth(1).unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("{file} not in COMMANDS.tsv"))
}

/// The format string of a captured raw command (`multipathd show maps raw format <fmt>`).
fn raw_format(run: &str, scenario: &str, file: &str, what: &str) -> String {
    let cmd = command(run, scenario, file);
    cmd.strip_prefix(&format!("multipathd show {what} raw format "))
        .unwrap_or_else(|| panic!("unexpected command {cmd}"))
        .to_owned()
}

/// Map sizes in bytes from `dmsetup table` (`name: 0 <sectors> multipath ...`).
fn sizes_by_name(scenario: &str) -> BTreeMap<String, u64> {
    let text = String::from_utf8(read("scsi_debug", scenario, "dmsetup-table.txt")).unwrap();
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(": ")?;
            let sectors: u64 = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((name.to_owned(), sectors * 512))
        })
        .collect()
}

/// Per map in `multipath -ll`: (usable, total) counted from its path lines.
fn multipath_ll(scenario: &str) -> BTreeMap<String, (u64, u64)> {
    let text = String::from_utf8(read("scsi_debug", scenario, "multipath-ll.txt")).unwrap();
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("mpath") {
            current = line.split_whitespace().next().unwrap().to_owned();
            out.insert(current.clone(), (0, 0));
            continue;
        }
        let words: Vec<&str> = line
            .split_whitespace()
            .skip_while(|w| !w.contains(':') || w.contains('='))
            .collect();
        // hcil dev dev_t dm_st chk_st dev_st
        if words.len() == 6 && words[0].split(':').count() == 4 {
            let e = out.get_mut(&current).unwrap();
            e.1 += 1;
            if words[3] == "active" && matches!(words[4], "ready" | "ghost") {
                e.0 += 1;
            }
        }
    }
    out
}

/// Parse and summarize one scenario both ways (JSON + paths join, and the raw fallback), check
/// they agree with each other and with `multipath -ll`, and return the JSON report.
fn both_ways(scenario: &str) -> (MapsReply, NodeReport) {
    let run = "scsi_debug";
    let mut reply = parse_maps_json(&read(run, scenario, "show-maps-json.json")).unwrap();
    assert_eq!(reply.source, ReplySource::Json);
    assert!(reply.errors.is_empty(), "{:?}", reply.errors);
    assert_eq!(
        (reply.major_version, reply.minor_version),
        (Some(0), Some(1))
    );

    let pfmt = PathsFormat::new(&raw_format(
        run,
        scenario,
        "show-paths-format-raw.txt",
        "paths",
    ))
    .unwrap();
    let paths =
        parse_paths_raw_with(&pfmt, &read(run, scenario, "show-paths-format-raw.txt")).unwrap();
    assert!(paths.errors.is_empty(), "{:?}", paths.errors);
    reply.join_paths(&paths);

    let by_name = sizes_by_name(scenario);
    let sysfs_sizes: BTreeMap<String, u64> = reply
        .maps
        .iter()
        .filter_map(|m| Some((m.sysfs.clone()?, *by_name.get(&m.name)?)))
        .collect();
    let report = summarize(&reply, |dm| sysfs_sizes.get(dm).copied());
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let mfmt = MapsFormat::new(&raw_format(
        run,
        scenario,
        "show-maps-format-raw.txt",
        "maps",
    ))
    .unwrap();
    let raw_maps =
        parse_maps_raw_with(&mfmt, &read(run, scenario, "show-maps-format-raw.txt")).unwrap();
    assert!(raw_maps.errors.is_empty(), "{:?}", raw_maps.errors);
    let raw_reply = MapsReply::from_raw(raw_maps, &paths);
    assert_eq!(raw_reply.source, ReplySource::Raw);
    let raw_report = summarize(&raw_reply, |dm| sysfs_sizes.get(dm).copied());
    assert!(raw_report.errors.is_empty(), "{:?}", raw_report.errors);

    let ll = multipath_ll(scenario);
    assert_eq!(report.maps.len(), ll.len());
    for (m, r) in report.maps.iter().zip(&raw_report.maps) {
        assert_eq!(
            (&m.name, &m.wwid, &m.sysfs, m.size),
            (&r.name, &r.wwid, &r.sysfs, r.size)
        );
        assert_eq!(
            (m.state, m.paths_active, m.paths_total, &m.transport),
            (r.state, r.paths_active, r.paths_total, &r.transport),
            "{scenario} {}: JSON and raw disagree",
            m.name
        );
        assert_eq!(
            ll[&m.name],
            (m.paths_active, m.paths_total),
            "{scenario} {} vs multipath -ll",
            m.name
        );
        // scsi_debug reports protocol scsi:unspec on every path.
        assert_eq!(m.transport.as_deref(), Some("scsi"));
        assert_eq!(m.size, Some(MIB64));
    }

    // `show map X json` (the single-map form) gives the same map state.
    for m in &report.maps {
        let single = parse_maps_json(&read(
            run,
            scenario,
            &format!("show-map-{}-json.json", m.name),
        ))
        .unwrap();
        assert_eq!(single.maps.len(), 1);
        let s = summarize(&single, |_| None);
        assert_eq!(s.maps[0].wwid, m.wwid);
        assert_eq!(
            s.maps[0].state, m.state,
            "{scenario} show map {} json",
            m.name
        );
    }
    (reply, report)
}

fn map<'r>(report: &'r NodeReport, name: &str) -> &'r MapReport {
    report.maps.iter().find(|m| m.name == name).unwrap()
}

fn brief(m: &MapReport) -> (&str, &str, Option<&str>, MapState, u64, u64) {
    (
        m.name.as_str(),
        m.wwid.as_str(),
        m.sysfs.as_deref(),
        m.state,
        m.paths_active,
        m.paths_total,
    )
}

const A: &str = "1Linux_scsi_debug_2000";
const B: &str = "1Linux_scsi_debug_2001";

#[test]
fn healthy_01() {
    let (reply, report) = both_ways("01-healthy");
    assert_eq!(
        brief(map(&report, "mpatha")),
        ("mpatha", A, Some("dm-0"), MapState::Optimal, 3, 3)
    );
    assert_eq!(
        brief(map(&report, "mpathb")),
        ("mpathb", B, Some("dm-1"), MapState::Optimal, 3, 3)
    );

    // The model in detail.
    let a = &reply.maps[0];
    assert_eq!(a.queueing, Some(Queueing::Retries { checks: 6 }));
    assert_eq!(a.reported_active, Some(3));
    assert_eq!(a.features.as_deref(), Some("1 queue_if_no_path"));
    assert_eq!(a.hwhandler.as_deref(), Some("1 alua"));
    assert_eq!(a.action.as_deref(), Some("create"));
    assert_eq!(
        (
            a.vendor.as_deref(),
            a.product.as_deref(),
            a.revision.as_deref()
        ),
        (Some("Linux"), Some("scsi_debug"), Some("0191"))
    );
    assert_eq!(a.path_groups.len(), 2);
    assert_eq!(a.path_groups[0].group, Some(1));
    assert_eq!(a.path_groups[0].dm_st, Some(GroupDmState::Active));
    assert_eq!(a.path_groups[0].pri, Some(50));
    assert_eq!(a.path_groups[1].dm_st, Some(GroupDmState::Enabled));
    let devs: Vec<&str> = a.paths().map(|p| p.dev.as_str()).collect();
    assert_eq!(devs, ["sdc", "sdi", "sde"]);
    let sdc = &a.path_groups[0].paths[0];
    assert_eq!(sdc.dev_t.as_deref(), Some("8:32"));
    assert_eq!(sdc.protocol.as_deref(), Some("scsi:unspec"));
    assert_eq!(sdc.hcil.as_deref(), Some("3:0:0:0"));
    assert_eq!(
        (
            sdc.host_wwnn.as_ref(),
            sdc.target_wwnn.as_ref(),
            sdc.host_adapter.as_ref()
        ),
        (None, None, None)
    );
    assert_eq!(sdc.lun(), Some(0));
    assert_eq!(reply.maps[1].path_groups[0].paths[0].lun(), Some(1));

    // The report's detail and JSON shape.
    let g = &map(&report, "mpatha").path_groups;
    assert_eq!(
        (g[0].group, g[0].state.as_deref()),
        (Some(1), Some("active"))
    );
    assert_eq!(
        (g[1].group, g[1].state.as_deref()),
        (Some(2), Some("enabled"))
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["maps"][0]["paths-active"], 3);
    assert_eq!(json["maps"][0]["size"], MIB64);
    assert_eq!(json["maps"][0]["path-groups"][0]["paths"][1]["dev"], "sdi");
    assert_eq!(
        json["maps"][0]["path-groups"][0]["paths"][1]["chk-st"],
        "ready"
    );
    assert!(json["errors"].as_array().unwrap().is_empty());
}

#[test]
fn one_path_offline_02() {
    let (reply, report) = both_ways("02-one-path-offline");
    assert_eq!(
        brief(map(&report, "mpatha")),
        ("mpatha", A, Some("dm-0"), MapState::Degraded, 2, 3)
    );
    assert_eq!(
        brief(map(&report, "mpathb")),
        ("mpathb", B, Some("dm-1"), MapState::Optimal, 3, 3)
    );
    let sdc = &reply.maps[0].path_groups[0].paths[0];
    assert_eq!(sdc.dev, "sdc");
    assert_eq!(
        (sdc.dm_st.clone(), sdc.chk_st.clone(), sdc.dev_st.clone()),
        (
            Some(PathDmState::Failed),
            Some(CheckerState::Faulty),
            Some(DevState::Offline)
        )
    );
    let p = &map(&report, "mpatha").path_groups[0].paths[0];
    assert_eq!(
        (p.dev.as_str(), p.usable, p.dev_st.as_deref()),
        ("sdc", false, Some("offline"))
    );
}

#[test]
fn all_paths_offline_queueing_03() {
    let (reply, report) = both_ways("03-all-paths-offline-queueing");
    let a = map(&report, "mpatha");
    assert_eq!(
        brief(a),
        ("mpatha", A, Some("dm-0"), MapState::Failed, 0, 3)
    );
    assert!(a.queueing, "I/O is queued: hangs instead of failing");
    assert_eq!(
        reply.maps[0].queueing,
        Some(Queueing::Recovery { secs: 26 })
    );
    assert_eq!(reply.maps[0].path_groups[0].pri, Some(0));
    assert_eq!(
        brief(map(&report, "mpathb")),
        ("mpathb", B, Some("dm-1"), MapState::Optimal, 3, 3)
    );
    assert!(!map(&report, "mpathb").queueing);
}

#[test]
fn all_paths_offline_queueing_expired_03b() {
    let (reply, report) = both_ways("03b-all-paths-offline-queueing-expired");
    let a = map(&report, "mpatha");
    assert_eq!(
        brief(a),
        ("mpatha", A, Some("dm-0"), MapState::Failed, 0, 3)
    );
    assert!(!a.queueing, "queueing expired: I/O fails");
    assert_eq!(reply.maps[0].queueing, Some(Queueing::Off));
    assert_eq!(reply.maps[0].features.as_deref(), Some("0"));
    assert_eq!(
        brief(map(&report, "mpathb")),
        ("mpathb", B, Some("dm-1"), MapState::Optimal, 3, 3)
    );
}

#[test]
fn restored_04() {
    let (_, report) = both_ways("04-restored");
    assert_eq!(
        brief(map(&report, "mpatha")),
        ("mpatha", A, Some("dm-0"), MapState::Optimal, 3, 3)
    );
    assert_eq!(
        brief(map(&report, "mpathb")),
        ("mpathb", B, Some("dm-1"), MapState::Optimal, 3, 3)
    );
}

#[test]
fn one_healthy_one_degraded_05() {
    let (_, report) = both_ways("05-one-healthy-one-degraded");
    assert_eq!(
        brief(map(&report, "mpatha")),
        ("mpatha", A, Some("dm-0"), MapState::Optimal, 3, 3)
    );
    assert_eq!(
        brief(map(&report, "mpathb")),
        ("mpathb", B, Some("dm-1"), MapState::Degraded, 2, 3)
    );
}

/// `multipath -ll` shows mpathb with 2 paths, both `active ready running`: on this node the map
/// is optimal. (That it had 3 paths before is for the cluster view to notice, not the parser.)
#[test]
fn path_removed_06() {
    let (reply, report) = both_ways("06-path-removed");
    assert_eq!(
        brief(map(&report, "mpatha")),
        ("mpatha", A, Some("dm-0"), MapState::Optimal, 3, 3)
    );
    assert_eq!(
        brief(map(&report, "mpathb")),
        ("mpathb", B, Some("dm-1"), MapState::Optimal, 2, 2)
    );
    let devs: Vec<&str> = reply.maps[1].paths().map(|p| p.dev.as_str()).collect();
    assert_eq!(devs, ["sdj", "sdf"]);
}

#[test]
fn no_maps() {
    let reply = parse_maps_json(&read("empty", "00-no-maps", "show-maps-json.json")).unwrap();
    assert!(reply.maps.is_empty() && reply.errors.is_empty());
    let m = MapsFormat::new(&raw_format(
        "empty",
        "00-no-maps",
        "show-maps-format-raw.txt",
        "maps",
    ))
    .unwrap();
    let maps =
        parse_maps_raw_with(&m, &read("empty", "00-no-maps", "show-maps-format-raw.txt")).unwrap();
    assert!(maps.maps.is_empty() && maps.errors.is_empty());
    let p = PathsFormat::new(&raw_format(
        "empty",
        "00-no-maps",
        "show-paths-format-raw.txt",
        "paths",
    ))
    .unwrap();
    let paths = parse_paths_raw_with(
        &p,
        &read("empty", "00-no-maps", "show-paths-format-raw.txt"),
    )
    .unwrap();
    assert!(paths.paths.is_empty());
    let report = summarize(&reply, |_| None);
    assert!(report.maps.is_empty());
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        r#"{"maps":[],"errors":[]}"#
    );
    // No map assembled: the broadcast is cleared.
    let mut policy = BroadcastPolicy::default();
    assert_eq!(
        policy.decide(1_700_000_000, &report.summaries()),
        Decision::Clear
    );
}

#[test]
fn daemon_stopped() {
    assert!(
        command("empty", "00-daemon-stopped", "show-maps-json.json").ends_with("show maps json")
    );
    let e =
        parse_maps_json(&read("empty", "00-daemon-stopped", "show-maps-json.json")).unwrap_err();
    assert!(matches!(e, ParseError::Empty), "{e}");
    assert_eq!(e.recovery(), Recovery::Retry);
    let p = PathsFormat::new("%w %i %d %D %t %T %o %P %a %r %R").unwrap();
    assert!(matches!(
        parse_paths_raw_with(
            &p,
            &read("empty", "00-daemon-stopped", "show-paths-format-raw.txt")
        ),
        Err(ParseError::Empty)
    ));
}

/// Every capture in the directory tree parses (guards against a scenario added without a test).
#[test]
fn every_capture_parses() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-0.9.4");
    let mut seen = 0;
    for run in ["scsi_debug", "empty"] {
        for entry in std::fs::read_dir(root.join(run)).unwrap() {
            let d = entry.unwrap().path();
            if !d.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&d).unwrap() {
                let f = file.unwrap().path();
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with("-json.json") || name == "show-maps-json.json" {
                    let bytes = std::fs::read(&f).unwrap();
                    match parse_maps_json(&bytes) {
                        Ok(r) => assert!(r.errors.is_empty(), "{}", f.display()),
                        Err(ParseError::Empty) => assert!(bytes.is_empty()),
                        Err(e) => panic!("{}: {e}", f.display()),
                    }
                    seen += 1;
                }
            }
        }
    }
    assert_eq!(seen, 7 * 3 + 2, "JSON captures found");
}
