//! The bodies of the fuzz targets, shared by the libFuzzer binaries (`fuzz_targets/*.rs`) and
//! the stable regression test that replays the committed corpora
//! (`crates/mpcluster-core/tests/fuzz_regressions.rs`). Each function takes one input and
//! panics when an invariant of [`crate::common`] is violated.
#![allow(dead_code)]

use std::collections::BTreeMap;

use mpcluster_core::NodeName;
use mpcluster_core::broadcast::decode;
use mpcluster_core::multipathd::{
    MapsFormat, MapsReply, PathsFormat, parse_maps_json as parse_json, parse_maps_raw,
    parse_maps_raw_with, parse_paths_raw, parse_paths_raw_with,
};
use mpcluster_core::plan::ApplyPlan;
use mpcluster_core::snapshot::{KvSnapshot, Member, SNAPSHOT_VERSION, Snapshot, SnapshotConfig};

use crate::common;

/// A target: its name (the directory under `seeds/` and `regressions/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 5] = [
    ("parse_maps_json", parse_maps_json),
    ("parse_raw", parse_raw),
    ("broadcast_decode", broadcast_decode),
    ("snapshot", snapshot),
    ("apply_plan", apply_plan),
];

/// A standalone snapshot with nothing in it, at [`common::NOW`] (built from its JSON form, so
/// fields added later take their defaults).
fn empty_snapshot() -> Snapshot {
    Snapshot::from_json(&format!(
        "{{\"version\": {SNAPSHOT_VERSION}, \"now\": {}}}",
        common::NOW
    ))
    .expect("the empty snapshot parses")
}

/// `show maps json` replies: parse, summarize, encode the payloads.
pub fn parse_maps_json(data: &[u8]) {
    if let Ok(reply) = parse_json(data) {
        common::summarize_and_check(&reply);
    }
}

const CAPTURE_MAPS: &str = "%n %w %d %N %Q %t %S";
const CAPTURE_PATHS: &str = "%w %i %d %D %t %T %o %P %a %r %R";

/// The raw-format fallback: `show maps raw format` and `show paths raw format` replies.
///
/// Input: one flag byte, then the maps reply, a NUL byte, and the paths reply. Flag bit 0
/// chooses the format strings: clear = the agent's standard formats, set = the formats of the
/// real 0.9.4 captures (space-separated, other fields). Both replies are parsed, joined with
/// `MapsReply::from_raw`, summarized and encoded.
pub fn parse_raw(data: &[u8]) {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let (maps_text, paths_text) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let (maps, paths) = if flag & 1 == 0 {
        (parse_maps_raw(maps_text), parse_paths_raw(paths_text))
    } else {
        let mf = MapsFormat::new(CAPTURE_MAPS).expect("capture maps format");
        let pf = PathsFormat::new(CAPTURE_PATHS).expect("capture paths format");
        (
            parse_maps_raw_with(&mf, maps_text),
            parse_paths_raw_with(&pf, paths_text),
        )
    };
    // The paths reply is also parsed on its own (the agent always asks for it).
    let paths = paths.unwrap_or_default();
    if let Ok(maps) = maps {
        let reply = MapsReply::from_raw(maps, &paths);
        common::summarize_and_check(&reply);
    }
}

/// A peer's `multipath` broadcast: the tolerant decoder, then the status assembly over a
/// snapshot in which that value is one node's broadcast, then the payload encoder over what
/// was decoded.
pub fn broadcast_decode(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let decoded = decode(&raw);

    // Decoding what was decoded gives the same broadcast, with nothing ignored.
    if let Ok(d) = &decoded {
        let again = serde_json::to_string(&d.broadcast).expect("broadcast serializes");
        let d2 = decode(&again).expect("re-encoded broadcast decodes");
        assert_eq!(d2.broadcast, d.broadcast, "{again}");
        assert!(d2.ignored.is_empty(), "{:?}", d2.ignored);
        // The encoder over the decoded maps, with a budget from the input.
        common::check_broadcast_encoding(&d.broadcast.maps, 40 + raw.len() % 2048);
    }

    let node = NodeName::new("node1").expect("node name");
    let time = decoded.as_ref().ok().and_then(|d| d.broadcast.time);
    let wwids = decoded
        .as_ref()
        .map(|d| d.broadcast.maps.keys().take(8).cloned().collect())
        .unwrap_or_default();
    let mut snap = empty_snapshot();
    snap.now = time.unwrap_or(common::NOW);
    snap.config = SnapshotConfig {
        wwids,
        aliases: BTreeMap::new(),
    };
    snap.members = [(node.clone(), Member { online: true })].into();
    snap.kv = KvSnapshot {
        multipath: [(node, raw.into_owned())].into(),
        ..KvSnapshot::default()
    };
    common::check_snapshot(&snap);
}

/// Cluster snapshot documents (`mpcluster status --snapshot FILE`): parse, assemble.
pub fn snapshot(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snap) = Snapshot::from_json(text) {
        common::check_snapshot(&snap);
    }
}

/// A peer's apply plan (`multipath-plan`): decoded or refused, never a panic; what decodes
/// survives its own encoding, and a snapshot carrying it as a node's plan assembles.
pub fn apply_plan(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    if let Ok(plan) = ApplyPlan::decode(&raw) {
        let again = ApplyPlan::decode(&plan.encode()).expect("own plan decodes");
        assert_eq!(again, plan);
    }
    let node = NodeName::new("node1").expect("node name");
    let mut snap = empty_snapshot();
    snap.kv = KvSnapshot {
        multipath_plan: [(node, raw.into_owned())].into(),
        ..KvSnapshot::default()
    };
    common::check_snapshot(&snap);
}
