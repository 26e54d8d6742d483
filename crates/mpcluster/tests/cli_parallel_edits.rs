//! Issue 16, part 4: 20 `mpcluster wwid add` processes at once, each adding a different WWID
//! to the same embedded store, all succeed (before the fix only 4 to 11 did; the others failed
//! with "another writer changed the same entry", which was not true). A command that loses the
//! compare-and-swap re-reads the document and applies its change again while its own entry is
//! untouched; when another writer did change the same entry, the message names the change.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use mpcluster_core::config::MultipathConfig;
use mpcluster_core::snapshot::doc_names;

const PARALLEL: usize = 20;

fn mpcluster(store: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mpcluster"));
    c.args(args)
        .env("MPCLUSTER_STORE", store)
        .env("MPCLUSTER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn twenty_parallel_wwid_adds_of_different_wwids_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("embedded:{}", dir.path().display());
    let wwids: Vec<String> = (0..PARALLEL)
        .map(|i| format!("3600a098038303053453f46304572{i:04}"))
        .collect();
    // All started before any is waited for.
    let children: Vec<_> = wwids
        .iter()
        .map(|w| mpcluster(&store, &["wwid", "add", w]).spawn().unwrap())
        .collect();
    let mut failures = Vec::new();
    for (w, child) in wwids.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{w}: exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {PARALLEL} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let text = std::fs::read_to_string(dir.path().join("docs").join(doc_names::CONFIG)).unwrap();
    let cfg = MultipathConfig::from_json(&text).unwrap();
    for w in &wwids {
        assert!(cfg.get(w).is_some(), "{w} missing");
    }
    assert_eq!(cfg.wwids().len(), PARALLEL);

    // The same WWID 20 times: one adds it; each other one is told that it exists (exit 2) or,
    // if it lost the race while adding it, that another writer added it (exit 1): never a
    // false conflict.
    let w = "36001405aa6d4bd1e9d1487bb1d1f4a2a";
    let children: Vec<_> = (0..PARALLEL)
        .map(|_| mpcluster(&store, &["wwid", "add", w]).spawn().unwrap())
        .collect();
    let mut codes: Vec<i32> = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let code = out.status.code().unwrap();
        if code != 0 {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("is already in the allow-list")
                    || err.contains(&format!("WWID {w} added by another writer")),
                "{err}"
            );
        }
        codes.push(code);
    }
    codes.sort();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| [0, 1, 2].contains(c)), "{codes:?}");
}
