//! Invariants shared by the fuzz targets: whatever a parser accepted must summarize, encode
//! within its budget and decode back; whatever the status engine accepted must assemble the
//! same way cached or not. A violated invariant panics, which libFuzzer reports as a crash.
#![allow(dead_code)]

use std::collections::BTreeMap;

use mpcluster_core::Wwid;
use mpcluster_core::broadcast::{self, MapSummary};
use mpcluster_core::multipathd::{MapsReply, NodeReport, summarize};
use mpcluster_core::payload::{
    self, BROADCAST_BUDGET, DETAIL_BUDGET, DetailPayload, encode_broadcast_within,
};
use mpcluster_core::snapshot::Snapshot;
use mpcluster_core::status::{StatusEngine, assemble};
use mpcluster_core::table::{self, TableOptions};

/// A fixed clock (unix seconds) so runs are reproducible.
pub const NOW: i64 = 1_767_225_600;

/// Summarize a parsed reply (every map 1 GiB) and check the report.
pub fn summarize_and_check(reply: &MapsReply) -> NodeReport {
    let report = summarize(reply, |_| Some(1 << 30));
    check_report(&report);
    report
}

/// The node report is consistent, survives its own JSON, and its payloads fit and decode.
pub fn check_report(report: &NodeReport) {
    for m in &report.maps {
        assert!(m.paths_active <= m.paths_total, "{m:?}");
        let listed: usize = m.path_groups.iter().map(|g| g.paths.len()).sum();
        assert_eq!(listed as u64, m.paths_total, "{m:?}");
    }
    let json = serde_json::to_string(report).expect("report serializes");
    let back: NodeReport = serde_json::from_str(&json).expect("report JSON reads back");
    assert_eq!(&back, report);

    let summaries = report.summaries();
    assert!(summaries.len() <= report.maps.len());
    check_broadcast_encoding(&summaries, BROADCAST_BUDGET);

    let detail = payload::encode_detail(NOW, report);
    assert!(detail.value.len() < DETAIL_BUDGET);
    let decoded = DetailPayload::decode(&detail.value).expect("own detail decodes");
    assert_eq!(decoded.maps.len(), detail.maps_kept);
    assert_eq!(
        detail.maps_kept as u64 + detail.truncated,
        report.maps.len() as u64
    );
}

/// Encode within `budget`, then decode: what was kept comes back unchanged (reduced entries
/// without transport/size), nothing is ignored, and the value fits when the budget allows.
pub fn check_broadcast_encoding(maps: &BTreeMap<Wwid, MapSummary>, budget: usize) {
    let e = encode_broadcast_within(NOW, maps, budget);
    assert_eq!(e.maps_total, maps.len());
    assert_eq!(e.maps_kept as u64 + e.truncated, maps.len() as u64);
    // Below ~100 bytes even the empty document may not fit (documented).
    if budget >= 100 {
        assert!(e.value.len() < budget, "{} >= {budget}", e.value.len());
    }
    let d = broadcast::decode(&e.value).expect("own broadcast decodes");
    assert!(
        d.ignored.is_empty(),
        "own broadcast has ignored parts: {:?}",
        d.ignored
    );
    let b = d.broadcast;
    assert_eq!(b.time, Some(NOW));
    assert_eq!(b.maps.len(), e.maps_kept);
    assert_eq!(b.truncated.unwrap_or(0), e.truncated);
    for (w, got) in &b.maps {
        let want = &maps[w];
        assert_eq!(
            (got.state, got.paths_active, got.paths_total),
            (want.state, want.paths_active, want.paths_total),
            "{w}"
        );
        let full = got.transport == want.transport && got.size == want.size;
        let reduced = got.transport.is_none() && got.size.is_none();
        assert!(full || reduced, "{w}: {got:?} vs {want:?}");
    }
}

/// Assemble the snapshot fresh and through a warm [`StatusEngine`]: same result; the table
/// and the JSON render.
pub fn check_snapshot(snap: &Snapshot) {
    let fresh = assemble(snap);
    let mut engine = StatusEngine::default();
    let first = engine.assemble(snap);
    let warm = engine.assemble(snap);
    assert_eq!(fresh, first);
    assert_eq!(fresh, warm);
    let _ = table::render(&fresh.status, TableOptions { color: true });
    let _ = fresh.status.check_level();
    serde_json::to_string(&fresh.status).expect("status serializes");
    serde_json::to_string(&fresh.node_overview).expect("node overview serializes");
}
