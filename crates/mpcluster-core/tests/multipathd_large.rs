//! 100k maps in `show maps json`: parses, summarizes, and peak memory stays proportional to
//! the input. Alone in its own test binary so the process's peak RSS (`VmHWM`) is its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use mpcluster_core::multipathd::{parse_maps_json, summarize};

/// Peak resident set size in bytes (Linux), if readable.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn hundred_thousand_maps_json() {
    const MAPS: usize = 100_000;
    let mut doc = String::from("{\"major_version\": 0, \"minor_version\": 1, \"maps\": [");
    for i in 0..MAPS {
        if i > 0 {
            doc.push(',');
        }
        let _ = write!(
            doc,
            r#"{{"name" : "m{i}", "uuid" : "3600a098038303053453f4630{i:08x}", "sysfs" : "dm-{i}", "queueing" : "off", "paths" : 1, "dm_st" : "active", "path_groups": [{{"group" : 1, "dm_st" : "active", "paths": [{{"dev" : "sd{i}", "dm_st" : "active", "chk_st" : "ready"}}]}}]}}"#
        );
    }
    doc.push_str("]}");
    let input_len = doc.len() as u64;
    let before = peak_rss();

    let start = Instant::now();
    let reply = parse_maps_json(doc.as_bytes()).unwrap();
    let report = summarize(&reply, |_| Some(1 << 30));
    let elapsed = start.elapsed();
    assert_eq!(reply.maps.len(), MAPS);
    assert_eq!(report.maps.len(), MAPS);
    assert!(report.errors.is_empty());
    assert!(elapsed < Duration::from_secs(120), "{elapsed:?}");

    if let (Some(before), Some(after)) = (before, peak_rss()) {
        let grown = after.saturating_sub(before);
        eprintln!(
            "100k maps: input {} MiB, peak RSS grew {} MiB, {elapsed:?}",
            input_len >> 20,
            grown >> 20
        );
        // Value tree + model + report: a small constant factor of the input.
        assert!(
            grown < 40 * input_len,
            "peak grew {grown} for {input_len} input bytes"
        );
    }
}
