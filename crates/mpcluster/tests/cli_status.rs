//! `mpcluster status --snapshot`: output snapshots for the shipped example, exit codes, errors.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster-snapshot.json")
}

fn mpcluster(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn example_table() {
    let out = mpcluster(&["status", "--snapshot", example().to_str().unwrap()], None);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    insta::assert_snapshot!("example_table", stdout);
    insta::assert_snapshot!("example_table_notes", text(&out.stderr));
}

#[test]
fn example_json() {
    let out = mpcluster(
        &[
            "status",
            "--snapshot",
            example().to_str().unwrap(),
            "--format",
            "json",
        ],
        None,
    );
    assert!(out.status.success());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        value.get("luns").is_some() && value.get("nodes").is_some(),
        "no wrapper"
    );
    insta::assert_snapshot!("example_json", text(&out.stdout));
}

#[test]
fn example_covers_every_state() {
    let out = mpcluster(
        &[
            "status",
            "--snapshot",
            example().to_str().unwrap(),
            "--format",
            "json",
        ],
        None,
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut states: Vec<&str> = value["luns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cluster-state"].as_str().unwrap())
        .collect();
    states.sort_unstable();
    states.dedup();
    assert_eq!(
        states,
        ["degraded", "failed", "missing", "optimal", "unknown"]
    );
}

#[test]
fn check_exit_codes() {
    let ex = example();
    let out = mpcluster(
        &["status", "--snapshot", ex.to_str().unwrap(), "--check"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "the example has a failed LUN");
    let snap = |maps: &str| {
        format!(
            r#"{{"version":1,"now":100,"kv":{{"multipath":{{"n1":"{{\"time\":100,\"maps\":{maps}}}"}}}}}}"#
        )
    };
    let cases = [
        (
            r#"{\"w\":{\"state\":\"optimal\",\"paths-active\":2,\"paths-total\":2}}"#,
            0,
        ),
        (
            r#"{\"w\":{\"state\":\"degraded\",\"paths-active\":1,\"paths-total\":2}}"#,
            1,
        ),
        (
            r#"{\"w\":{\"state\":\"failed\",\"paths-active\":0,\"paths-total\":2}}"#,
            2,
        ),
        (r#"{\"w\":{\"state\":\"bogus\"}}"#, 3),
    ];
    for (maps, code) in cases {
        let input = snap(maps);
        let out = mpcluster(&["status", "--snapshot", "-", "--check"], Some(&input));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{input}: {}",
            text(&out.stderr)
        );
        let out = mpcluster(&["status", "--snapshot", "-"], Some(&input));
        assert_eq!(
            out.status.code(),
            Some(0),
            "without --check the verdict is not the exit code"
        );
    }
}

#[test]
fn bad_snapshot_names_the_json_path() {
    let input = r#"{"version":1,"now":1,"config":{"wwids":["ok","has space"]}}"#;
    let out = mpcluster(&["status", "--snapshot", "-"], Some(input));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("config.wwids[1]"), "{err}");
    assert!(err.contains("invalid WWID \"has space\""), "{err}");
    assert!(out.stdout.is_empty());

    let out = mpcluster(&["status", "--snapshot", "-", "--check"], Some("not json"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "unreadable is UNKNOWN for monitoring"
    );

    let out = mpcluster(&["status", "--snapshot", "/nonexistent/snap.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read snapshot /nonexistent/snap.json"));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    // Far more output than a pipe buffers, so the writer meets the closed pipe.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    let snap = mpcluster_core::synthetic::synthetic_snapshot(
        mpcluster_core::synthetic::SyntheticSpec::new(16, 256),
    );
    std::fs::write(&big, serde_json::to_string(&snap).unwrap()).unwrap();
    let cmd = format!(
        "{} status --snapshot {} --format json | head -c 10 > /dev/null",
        env!("CARGO_BIN_EXE_mpcluster"),
        big.display()
    );
    let out = Command::new("sh")
        .args(["-c", &cmd])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}
