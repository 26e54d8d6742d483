//! Cluster snapshot documents (`mpcluster status --snapshot FILE`): parse, assemble.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcluster_core::snapshot::Snapshot;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snap) = Snapshot::from_json(text) {
        common::check_snapshot(&snap);
    }
});
