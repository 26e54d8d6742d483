//! End to end on a real 3-member etcd cluster (loopback, ephemeral ports): three `mpcluster
//! agent` processes with simulated multipathds, one `mpcluster serve`, asserted through HTTP.
//! Health, failures, membership (SIGKILL / SIGTERM), a node that never started (unknown, agent
//! never seen), config apply on every node, and etcd member / whole-cluster outages.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Proc, cell, get_json, make_root, row_state, start_serve, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_core::config::{BASELINE_PATH, WWIDS_PATH};
use mpcluster_core::snapshot::doc_names;
use mpcluster_store::testing::{EtcdServer, require_etcd};
use mpcluster_store::{Expect, StoreOptions};
use serde_json::{Value, json};

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const W3: &str = "3600a098038303053453f463045727a03";
const FOREIGN: &str = "3600508b1001c5e4f0000000000000bb0";
const NODES: [&str; 3] = ["n1", "n2", "n3"];
const WAIT: Duration = Duration::from_secs(30);

struct Node {
    name: &'static str,
    sim: SimNode,
    root: PathBuf,
    agent: Option<Proc>,
}

fn agent_args(spec: &str, node: &Node) -> Vec<String> {
    vec![
        "agent".into(),
        "--store".into(),
        spec.into(),
        "--node".into(),
        node.name.into(),
        "--interval".into(),
        "0.3".into(),
        "--member-ttl".into(),
        "3".into(),
        "--multipathd-socket".into(),
        node.sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        node.sim.sysfs_root().display().to_string(),
        "--root".into(),
        node.root.display().to_string(),
    ]
}

fn reconfigures(sim: &SimNode) -> usize {
    sim.state()
        .commands
        .iter()
        .filter(|c| *c == "reconfigure")
        .count()
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_default()
}

fn wait_for(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_on_etcd() {
    if require_etcd("three_agents_on_etcd").is_none() {
        return;
    }
    let mut etcd = EtcdServer::start_cluster(3).await.unwrap();
    let spec = etcd.spec("e2e");
    let spec_text = spec.to_string();
    let store = mpcluster_store::open(&spec, &StoreOptions::default())
        .await
        .unwrap();

    // Configuration: W1 consumed by an LVM storage on n1..n3; W2 only allow-listed, so it is
    // expected wherever the multipath storage is, which includes n4 that never starts.
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"wwids": {W1: {"alias": "vmdata"}, W2: {}}}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    store
        .write_doc(
            doc_names::STORAGE,
            &json!({"storages": [
                {"type": "multipath", "id": "san", "nodes": ["n1", "n2", "n3", "n4"]},
                {"type": "lvm", "id": "vm", "vgname": "vm", "base": format!("san:{W1}"), "nodes": ["n1", "n2", "n3"]},
            ]})
            .to_string(),
            Expect::Any,
        )
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = NODES
        .iter()
        .map(|name| {
            let sim = SimNode::start(
                &dir.path().join(format!("{name}.sock")),
                &dir.path().join(format!("{name}-sys")),
                SimState {
                    maps: vec![
                        SimMap::new(W1, 0, 1 << 30, 4, "scsi:iscsi", 0),
                        SimMap::new(W2, 1, 1 << 30, 2, "scsi:iscsi", 4),
                    ],
                    ..SimState::default()
                },
            )
            .unwrap();
            let root = dir.path().join(format!("{name}-root"));
            make_root(&root);
            Node {
                name,
                sim,
                root,
                agent: None,
            }
        })
        .collect();
    // A boot-from-SAN entry on n1 that the apply must never remove.
    std::fs::create_dir_all(nodes[0].root.join("etc/multipath")).unwrap();
    std::fs::write(nodes[0].root.join(WWIDS_PATH), format!("/{FOREIGN}/\n")).unwrap();

    for n in &mut nodes {
        n.agent = Some(Proc::mpcluster(n.name, &agent_args(&spec_text, n)));
    }
    let (_server, url) = start_serve("serve", &["--store".into(), spec_text.clone()]);
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        tokio::task::block_in_place(|| wait_status(&url, what, WAIT, pred))
    };

    // All healthy: W1 optimal on its three nodes; W2 unknown on n4, which never started (as
    // the seed: a node absent from the membership is offline), and the status says why.
    let s = wait("all healthy", &|s| {
        row_state(s, W1) == "optimal"
            && NODES.iter().all(|n| cell(s, W1, n)["state"] == "optimal")
            && row_state(s, W2) == "optimal"
    });
    assert_eq!(cell(&s, W1, "n4"), &Value::Null, "n4 does not carry W1");
    assert_eq!(
        cell(&s, W2, "n4")["state"],
        "unknown",
        "expected by a storage, never started"
    );
    assert_eq!(s["nodes"]["n4"]["agent"], "never-seen", "{s}");

    // A path down on n2: W1 degraded on n2 only; back to optimal when restored.
    nodes[1].sim.update(|st| st.maps[0].paths[1].up = false);
    let s = wait("W1 degraded on n2", &|s| row_state(s, W1) == "degraded");
    assert_eq!(cell(&s, W1, "n2")["state"], "degraded");
    assert_eq!(cell(&s, W1, "n2")["paths-active"], 3);
    assert_eq!(cell(&s, W1, "n1")["state"], "optimal");
    assert_eq!(
        cell(&s, W2, "n2")["state"],
        "optimal",
        "the other LUN is untouched"
    );
    nodes[1].sim.update(|st| st.maps[0].paths[1].up = true);
    wait("W1 optimal again", &|s| row_state(s, W1) == "optimal");

    // Config apply on every node: an allow-list change reaches every root with exactly one
    // reconfigure each; the foreign wwids entry survives.
    tokio::task::block_in_place(|| {
        wait_for("initial applies", || {
            nodes.iter().all(|n| reconfigures(&n.sim) >= 1)
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<usize> = nodes.iter().map(|n| reconfigures(&n.sim)).collect();
    let (text, digest) = store.read_doc(doc_names::CONFIG).await.unwrap().unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["wwids"][W3] = json!({"alias": "backup"});
    store
        .write_doc(doc_names::CONFIG, &doc.to_string(), Expect::Digest(digest))
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        wait_for("W3 applied everywhere", || {
            nodes
                .iter()
                .all(|n| read(&n.root, BASELINE_PATH).contains("alias backup"))
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    for (n, b) in nodes.iter().zip(&before) {
        assert_eq!(
            reconfigures(&n.sim),
            b + 1,
            "{}: one reconfigure per change",
            n.name
        );
        assert!(read(&n.root, WWIDS_PATH).contains(&format!("/{W3}/")));
    }
    assert!(
        read(&nodes[0].root, WWIDS_PATH).contains(FOREIGN),
        "foreign entry kept"
    );

    // n3's configuration directory cannot be written: its apply error shows in the status,
    // and clears once fixed.
    let conf_d = nodes[2].root.join("etc/multipath/conf.d");
    std::fs::remove_dir_all(&conf_d).unwrap();
    std::fs::write(&conf_d, "not a directory").unwrap();
    let (text, digest) = store.read_doc(doc_names::CONFIG).await.unwrap().unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["wwids"][W3] = json!({"alias": "backup2"});
    store
        .write_doc(doc_names::CONFIG, &doc.to_string(), Expect::Digest(digest))
        .await
        .unwrap();
    let s = wait("apply error on n3", &|s| {
        s["nodes"]["n3"]["apply-error"].is_string()
    });
    assert!(
        s["nodes"]["n3"]["apply-error"]
            .as_str()
            .unwrap()
            .contains("conf.d"),
        "{s}"
    );
    std::fs::remove_file(&conf_d).unwrap();
    wait("apply error cleared", &|s| s["nodes"].get("n3").is_none());

    // One etcd member killed: the status keeps answering and keeps following the cluster.
    etcd.kill(0);
    nodes[0].sim.update(|st| st.maps[1].paths[0].up = false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = tokio::task::block_in_place(|| {
            get_json(&format!("{url}/api2/json/cluster/multipath/status"))
        });
        assert_eq!(
            code, 200,
            "status must keep answering with one etcd member down: {body}"
        );
        if cell(&body["data"], W2, "n1")["state"] == "degraded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "change not seen with one member down: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nodes[0].sim.update(|st| st.maps[1].paths[0].up = true);
    etcd.restart(0).await.unwrap();
    wait("W2 back on n1", &|s| {
        cell(s, W2, "n1")["state"] == "optimal"
    });

    // SIGKILL n3's agent: its cells read unknown once its lease expires (TTL 3 s), and the
    // roll-up ignores it.
    nodes[2].agent.as_ref().unwrap().signal("KILL");
    let killed = Instant::now();
    let s = wait("n3 unknown after its lease expired", &|s| {
        cell(s, W1, "n3")["state"] == "unknown"
    });
    assert!(
        killed.elapsed() >= Duration::from_secs(1),
        "not before the TTL"
    );
    assert_eq!(
        row_state(&s, W1),
        "optimal",
        "an offline node never drives the roll-up"
    );

    // SIGTERM n2's agent: it leaves the cluster, unknown at once.
    let agent = nodes[1].agent.as_mut().unwrap();
    agent.signal("TERM");
    let status = tokio::task::block_in_place(|| agent.wait_exit(Duration::from_secs(10)));
    assert!(status.success(), "agent exits 0 on SIGTERM");
    let left = Instant::now();
    wait("n2 unknown", &|s| cell(s, W1, "n2")["state"] == "unknown");
    assert!(
        left.elapsed() < Duration::from_secs(3),
        "a leaving agent reads offline at once, not after the TTL ({:?})",
        left.elapsed()
    );

    // Every etcd member stopped: 503 with the reason and the last good status marked stale;
    // then recovery without restarting anything of ours.
    etcd.stop_all();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (code, body) = tokio::task::block_in_place(|| {
            get_json(&format!("{url}/api2/json/cluster/multipath/status"))
        });
        if code == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no 503 with etcd down: HTTP {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        body["message"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );
    assert_eq!(body["data"]["stale"], true, "{body}");
    assert!(body["data"]["luns"].is_array());
    etcd.restart_all().await.unwrap();
    wait("recovered after etcd restart", &|s| {
        row_state(s, W1) == "optimal"
    });
}
