//! The fuzz targets' corpora as regression tests on the stable toolchain: every input under
//! `fuzz/seeds/<target>/` (the hand-picked starting points) and `fuzz/regressions/<target>/`
//! (the minimized corpora the fuzzers grew, committed; `scripts/fuzz.sh` refreshes them) runs
//! through the same target body the libFuzzer binaries run (`fuzz/fuzz_targets/targets.rs`),
//! with the same invariants (`fuzz/fuzz_targets/common.rs`). A crash found by fuzzing is added
//! to `fuzz/regressions/<target>/` and stays a test from then on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/fuzz_targets/common.rs"]
mod common;
#[path = "../../../fuzz/fuzz_targets/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Replay every committed input of `targets`; the inputs that panicked, and a count per target.
fn replay(targets: &[targets::Target]) -> (Vec<String>, Vec<String>) {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (target, run) in targets {
        let files = inputs(target);
        assert!(
            !files.is_empty(),
            "no seeds or regressions for the fuzz target {target} under {}",
            fuzz_dir().display()
        );
        counts.push(format!("{target}: {}", files.len()));
        for file in files {
            let data = std::fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(format!("{target}: {}", file.display()));
            }
        }
    }
    (failures, counts)
}

#[test]
fn every_committed_fuzz_input_holds_the_invariants() {
    let (failures, counts) = replay(&targets::TARGETS);
    eprintln!("fuzz inputs replayed: {}", counts.join(", "));
    assert!(
        failures.is_empty(),
        "fuzz inputs violating an invariant (replay with `cargo +nightly fuzz run <target> <file>` in fuzz/):\n{}",
        failures.join("\n")
    );
}

/// The harness bites: a target body that panics on an input is reported with that file.
#[test]
fn a_panicking_target_is_reported() {
    fn breaks_on_braces(data: &[u8]) {
        assert!(!data.contains(&b'{'), "deliberate");
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let (failures, _) = replay(&[("snapshot", breaks_on_braces)]);
    std::panic::set_hook(hook);
    assert!(
        !failures.is_empty() && failures.iter().all(|f| f.starts_with("snapshot: ")),
        "{failures:?}"
    );
}
