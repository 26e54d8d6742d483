//! End to end on one node: the real `mpcluster serve` binary with the embedded store and its
//! in-process agent, talking to a simulated multipathd over the real socket protocol.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use serde_json::Value;

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";

/// The server process, killed on drop (also on panic).
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(store: &std::path::Path, root: &std::path::Path, sim: &SimNode) -> Server {
    let socket = sim.socket_spec().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--node",
            "node1",
            "--interval",
            "0.2",
        ])
        .arg("--store")
        .arg(format!("embedded:{}", store.display()))
        .args(["--multipathd-socket", &socket])
        .arg("--sysfs-root")
        .arg(sim.sysfs_root())
        .arg("--root")
        .arg(root)
        .env("MPCLUSTER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("mpcluster: serving ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url }
}

fn get(url: &str) -> Value {
    let body = ureq::get(url).call().unwrap().into_string().unwrap();
    serde_json::from_str(&body).unwrap()
}

/// Poll the status until `pred` holds (or fail after 15 s, showing the last status).
fn wait_for(server: &Server, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // 503 until the first computation: keep polling.
        let status = match ureq::get(&format!(
            "{}/api2/json/cluster/multipath/status",
            server.url
        ))
        .call()
        {
            Ok(resp) => serde_json::from_str::<Value>(&resp.into_string().unwrap()).unwrap(),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        if status.get("data").is_some() && pred(&status["data"]) {
            return status["data"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last status: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cell<'a>(status: &'a Value, wwid: &str) -> &'a Value {
    let lun = status["luns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["wwid"] == wwid);
    match lun {
        Some(l) => &l["nodes"]["node1"],
        None => &Value::Null,
    }
}

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
    let store = dir.path().join("store");
    // The node's root for the config apply, with multipath-tools "installed".
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
    std::fs::write(root.join("usr/sbin/multipath"), "").unwrap();
    let server = tokio::task::block_in_place(|| start_server(&store, &root, &sim));
    let s = server_wait(&server, "both maps optimal", |s| {
        cell(s, W1)["state"] == "optimal" && cell(s, W2)["state"] == "optimal"
    });
    assert_eq!(cell(&s, W1)["paths-active"], 4);
    assert_eq!(cell(&s, W1)["transport"], "iscsi");
    assert_eq!(cell(&s, W2)["transport"], "fc");
    let lun = s["luns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["wwid"] == W2)
        .unwrap();
    assert_eq!(lun["size"], 2u64 << 30, "size from the simulated sysfs");

    // A path fails: degraded with 1/2, the other LUN untouched.
    sim.update(|st| st.maps[1].paths[0].up = false);
    let s = server_wait(&server, "W2 degraded", |s| {
        cell(s, W2)["state"] == "degraded"
    });
    assert_eq!(cell(&s, W2)["paths-active"], 1);
    assert_eq!(cell(&s, W1)["state"], "optimal");

    // The node view shows the failed path.
    let detail = tokio::task::block_in_place(|| {
        get(&format!(
            "{}/api2/json/nodes/node1/disks/multipath",
            server.url
        ))
    });
    let maps = detail["data"]["maps"].as_array().unwrap();
    assert_eq!(maps.len(), 2, "{detail}");

    // Restored.
    sim.update(|st| st.maps[1].paths[0].up = true);
    server_wait(&server, "W2 optimal again", |s| {
        cell(s, W2)["state"] == "optimal"
    });

    // multipathd stops answering: a collection error, and nothing reads optimal any more.
    sim.update(|st| st.down = true);
    let s = server_wait(&server, "collect error", |s| {
        s["nodes"]["node1"]["collect-error"].is_string()
    });
    assert_ne!(cell(&s, W1)["state"], "optimal", "{s}");
    assert_eq!(cell(&s, W1)["state"], "unknown");

    sim.update(|st| st.down = false);
    let s = server_wait(&server, "recovered", |s| {
        s["nodes"].get("node1").is_none() && cell(s, W1)["state"] == "optimal"
    });
    assert_eq!(cell(&s, W2)["state"], "optimal");

    // `mpcluster status --server` shows the same, and SIGTERM stops the server cleanly.
    let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(["status", "--format", "json", "--server", &server.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via_cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cell(&via_cli, W1)["state"], "optimal");

    let mut server = server;
    let pid = server.child.id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::task::block_in_place(|| server.child.wait()).unwrap();
    assert!(status.success(), "serve exits 0 on SIGTERM: {status}");
}

fn server_wait(server: &Server, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    tokio::task::block_in_place(|| wait_for(server, what, pred))
}
