//! End to end on one node: the real `mpcluster serve` binary with the embedded store and its
//! in-process agent, talking to a simulated multipathd over the real socket protocol.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{cell, get_json, make_root, start_serve, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use serde_json::Value;

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_embedded_follows_the_fake_multipathd() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimNode::start(
        &dir.path().join("multipathd.sock"),
        &dir.path().join("sys"),
        SimState {
            maps: vec![
                SimMap::new(W1, 0, 1 << 30, 4, "scsi:iscsi", 0),
                SimMap::new(W2, 1, 2 << 30, 2, "scsi:fcp", 4),
            ],
            ..SimState::default()
        },
    )
    .unwrap();
    let root = dir.path().join("root");
    make_root(&root);
    let args: Vec<String> = vec![
        "--node".into(),
        "node1".into(),
        "--interval".into(),
        "0.2".into(),
        "--store".into(),
        format!("embedded:{}", dir.path().join("store").display()),
        "--multipathd-socket".into(),
        sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        sim.sysfs_root().display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    let (mut server, url) = start_serve("serve", &args);
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        tokio::task::block_in_place(|| wait_status(&url, what, WAIT, pred))
    };

    let s = wait("both maps optimal", &|s| {
        cell(s, W1, "node1")["state"] == "optimal" && cell(s, W2, "node1")["state"] == "optimal"
    });
    assert_eq!(cell(&s, W1, "node1")["paths-active"], 4);
    assert_eq!(cell(&s, W1, "node1")["transport"], "iscsi");
    assert_eq!(cell(&s, W2, "node1")["transport"], "fc");
    let lun = s["luns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["wwid"] == W2)
        .unwrap();
    assert_eq!(lun["size"], 2u64 << 30, "size from the simulated sysfs");

    // The same status gzip-compressed for clients that accept it.
    let plain = tokio::task::block_in_place(|| {
        get_json(&format!("{url}/api2/json/cluster/multipath/status")).1
    });
    let gz = tokio::task::block_in_place(|| {
        let resp = ureq::get(&format!("{url}/api2/json/cluster/multipath/status"))
            .set("Accept-Encoding", "gzip")
            .set("Authorization", &common::auth_header(&url).unwrap())
            .call()
            .unwrap();
        assert_eq!(resp.header("content-encoding"), Some("gzip"));
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(resp.into_reader()),
            &mut text,
        )
        .unwrap();
        serde_json::from_str::<Value>(&text).unwrap()
    });
    assert_eq!(gz["data"]["luns"], plain["data"]["luns"]);

    // A path fails: degraded with 1/2, the other LUN untouched.
    sim.update(|st| st.maps[1].paths[0].up = false);
    let s = wait("W2 degraded", &|s| {
        cell(s, W2, "node1")["state"] == "degraded"
    });
    assert_eq!(cell(&s, W2, "node1")["paths-active"], 1);
    assert_eq!(cell(&s, W1, "node1")["state"], "optimal");

    // The node view lists both maps.
    let (code, detail) = tokio::task::block_in_place(|| {
        get_json(&format!("{url}/api2/json/nodes/node1/disks/multipath"))
    });
    assert_eq!(code, 200, "{detail}");
    assert_eq!(
        detail["data"]["maps"].as_array().unwrap().len(),
        2,
        "{detail}"
    );

    // Restored.
    sim.update(|st| st.maps[1].paths[0].up = true);
    wait("W2 optimal again", &|s| {
        cell(s, W2, "node1")["state"] == "optimal"
    });

    // multipathd stops answering: a collection error, and nothing reads optimal any more.
    sim.update(|st| st.down = true);
    let s = wait("collect error", &|s| {
        s["nodes"]["node1"]["collect-error"].is_string()
    });
    assert_eq!(cell(&s, W1, "node1")["state"], "unknown", "{s}");

    sim.update(|st| st.down = false);
    let s = wait("recovered", &|s| {
        s["nodes"].get("node1").is_none() && cell(s, W1, "node1")["state"] == "optimal"
    });
    assert_eq!(cell(&s, W2, "node1")["state"], "optimal");

    // `mpcluster status --server` shows the same, and SIGTERM stops the server cleanly.
    let token_file = server.token_file.clone().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args([
            "status",
            "--format",
            "json",
            "--server",
            &url,
            "--token-file",
        ])
        .arg(&token_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via_cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cell(&via_cli, W1, "node1")["state"], "optimal");

    server.signal("TERM");
    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(10)));
    assert!(status.success(), "serve exits 0 on SIGTERM: {status}");
}
