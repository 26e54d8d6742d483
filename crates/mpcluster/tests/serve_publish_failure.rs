//! Issue 16, part 1: with the embedded store, `serve` runs this node's agent in-process. When
//! the store stops taking the agent's writes, the status must say so at once: the node's cells
//! `unknown` with a `publish-error`, `status --check` not 0, never the old broadcast's
//! `optimal` (which looked fresh for the 180 s staleness limit before the fix).
//!
//! The store's `kv/multipath` directory is made immutable (`chattr +i`: even root cannot
//! create or rename files in it, and what is there stays readable), so the agent's broadcast
//! cannot be replaced while the server still reads the old one.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{cell, get_json, make_root, start_serve, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use serde_json::Value;

const W1: &str = "3600a098038303053453f463045727a01";
const WAIT: Duration = Duration::from_secs(15);

/// `chattr +i` on a directory, undone on drop (also when the test panics, so the temporary
/// directory can be removed).
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let out = Command::new("chattr").arg("+i").arg(path).output().unwrap();
        assert!(
            out.status.success(),
            "chattr +i {} failed (this test needs root and a file system with the immutable \
             attribute, e.g. ext4 or tmpfs): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Immutable(path.to_owned())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// `mpcluster status --server URL --check`: its exit code and JSON output.
fn status_check(url: &str, token_file: &Path) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(["status", "--check", "--format", "json", "--server", url])
        .arg("--token-file")
        .arg(token_file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_publish_is_shown_as_such_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimNode::start(
        &dir.path().join("multipathd.sock"),
        &dir.path().join("sys"),
        SimState {
            maps: vec![SimMap::new(W1, 0, 1 << 30, 4, "scsi:iscsi", 0)],
            ..SimState::default()
        },
    )
    .unwrap();
    let root = dir.path().join("root");
    make_root(&root);
    let store = dir.path().join("store");
    let args: Vec<String> = vec![
        "--node".into(),
        "node1".into(),
        "--interval".into(),
        "0.2".into(),
        "--store".into(),
        format!("embedded:{}", store.display()),
        "--multipathd-socket".into(),
        sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        sim.sysfs_root().display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    let (server, url) = start_serve("serve", &args);
    let token_file = server.token_file.clone().unwrap();
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        tokio::task::block_in_place(|| wait_status(&url, what, WAIT, pred))
    };
    wait("W1 optimal", &|s| {
        cell(s, W1, "node1")["state"] == "optimal"
    });
    let (code, _) = tokio::task::block_in_place(|| status_check(&url, &token_file));
    assert_eq!(code, 0, "all optimal");

    // The store stops taking the agent's broadcasts; then the LUN loses every path.
    let frozen = Immutable::set(&store.join("kv").join("multipath"));
    sim.update(|st| {
        for p in &mut st.maps[0].paths {
            p.up = false;
        }
    });
    let start = Instant::now();
    let s = wait("node1 unknown with a publish error", &|s| {
        cell(s, W1, "node1")["state"] == "unknown"
            && s["nodes"]["node1"]["publish-error"].is_string()
    });
    let took = start.elapsed();
    eprintln!("publish failure shown after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let error = s["nodes"]["node1"]["publish-error"].as_str().unwrap();
    assert!(
        error.contains("cannot publish") && error.contains("multipath"),
        "names the problem: {error}"
    );
    assert!(s["nodes"]["node1"]["publish-time"].is_i64(), "{s}");
    assert_ne!(s["luns"][0]["cluster-state"], "optimal", "{s}");

    // The node list says it too, and `status --check` (through the server) is not 0.
    let (code, nodes) =
        tokio::task::block_in_place(|| get_json(&format!("{url}/api2/json/cluster/nodes")));
    assert_eq!(code, 200, "{nodes}");
    let node1 = nodes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "node1")
        .unwrap();
    assert_eq!(node1["online"], false, "{node1}");
    assert!(node1["publish-error"].is_string(), "{node1}");
    let (code, json) = tokio::task::block_in_place(|| status_check(&url, &token_file));
    assert_ne!(code, 0, "status --check during a publish failure: {json}");
    assert!(
        json["nodes"]["node1"]["publish-error"].is_string(),
        "{json}"
    );

    // Writable again: the agent publishes at once, and the truth shows.
    drop(frozen);
    let s = wait("W1 failed, no node problem", &|s| {
        cell(s, W1, "node1")["state"] == "failed" && s["nodes"].get("node1").is_none()
    });
    assert_eq!(s["luns"][0]["cluster-state"], "failed", "{s}");
    let (code, _) = tokio::task::block_in_place(|| status_check(&url, &token_file));
    assert_eq!(code, 2, "a failed LUN is critical");
}
