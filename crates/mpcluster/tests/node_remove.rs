//! `mpcluster node remove NAME [--force]`: the real binary against an embedded store (an online
//! node refused, `--force`, an unknown node, the column gone from `status`), and on a real etcd
//! with agents and a server (a stopped agent's node removed: its column leaves the matrix the
//! server serves; the API refuses an online node with 409).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Proc, auth_header, cell, get_json, make_root, start_serve, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_config::unix_now;
use mpcluster_core::NodeName;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::testing::{EtcdServer, require_etcd};
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect, StoreOptions};
use serde_json::{Value, json};

const W1: &str = "3600a098038303053453f463045727a01";
const WAIT: Duration = Duration::from_secs(30);

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(args)
        .env("MPCLUSTER_LOG", "warn")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn expect(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The nodes with a cell in W1's row of `mpcluster status --format json`.
fn columns(store: &str) -> Vec<String> {
    let out = run(&["status", "--store", store, "--format", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("status: {}", text(&out.stderr)));
    status["luns"]
        .as_array()
        .and_then(|l| l.iter().find(|r| r["wwid"] == W1))
        .and_then(|r| r["nodes"].as_object())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn remove_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"wwids": {W1: {}}}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    let now = unix_now();
    for (node, time) in [("n1", now), ("n2", now - 3600)] {
        let b = json!({"time": time, "maps": {W1: {"state": "optimal", "paths-active": 2, "paths-total": 2}}});
        store
            .put(
                kv_keys::HEALTH,
                &NodeName::new(node).unwrap(),
                Some(&b.to_string()),
            )
            .await
            .unwrap();
    }
    let spec = format!("embedded:{}", dir.path().display());
    assert_eq!(columns(&spec), ["n1", "n2"]);

    // Online: refused (exit 2), nothing removed.
    let out = run(&["node", "remove", "n1", "--store", &spec]);
    expect(&out, 2, "online node");
    let err = text(&out.stderr);
    assert!(
        err.contains("node n1 is online (last broadcast ")
            && err.contains("s ago); stop its agent first, or force"),
        "{err}"
    );
    // Unknown, invalid.
    let out = run(&["node", "remove", "n9", "--store", &spec]);
    expect(&out, 2, "unknown node");
    assert!(
        text(&out.stderr).contains("nothing is known about node 'n9'"),
        "{}",
        text(&out.stderr)
    );
    expect(
        &run(&["node", "remove", "bad name", "--store", &spec]),
        2,
        "invalid name",
    );
    assert_eq!(columns(&spec), ["n1", "n2"]);

    // The departed node goes, and its column with it.
    let out = run(&["node", "remove", "n2", "--store", &spec]);
    expect(&out, 0, "departed node");
    assert!(
        text(&out.stdout).contains("removed node 'n2'"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(columns(&spec), ["n1"]);
    expect(
        &run(&["node", "remove", "n2", "--store", &spec]),
        2,
        "removed already",
    );

    // Forced.
    let out = run(&["node", "remove", "n1", "--force", "--store", &spec]);
    expect(&out, 0, "forced");
    assert!(
        text(&out.stderr).contains("was online"),
        "{}",
        text(&out.stderr)
    );
    assert!(columns(&spec).is_empty());
}

fn agent_args(spec: &str, name: &str, sim: &SimNode, root: &Path) -> Vec<String> {
    [
        "agent",
        "--store",
        spec,
        "--node",
        name,
        "--interval",
        "0.3",
        "--member-ttl",
        "3",
        "--multipathd-socket",
        &sim.socket_spec().to_string(),
        "--sysfs-root",
        &sim.sysfs_root().display().to_string(),
        "--root",
        &root.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// `DELETE` with the server's token; (status, body).
fn delete(url: &str) -> (u16, Value) {
    let mut req = ureq::delete(url).timeout(Duration::from_secs(10));
    if let Some(auth) = auth_header(url) {
        req = req.set("Authorization", &auth);
    }
    match req.call() {
        Ok(r) => (
            r.status(),
            serde_json::from_str(&r.into_string().unwrap()).unwrap(),
        ),
        Err(ureq::Error::Status(code, r)) => (
            code,
            serde_json::from_str(&r.into_string().unwrap()).unwrap(),
        ),
        Err(e) => panic!("DELETE {url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_a_stopped_agents_node_on_etcd() {
    if require_etcd("remove_a_stopped_agents_node_on_etcd").is_none() {
        return;
    }
    let etcd = EtcdServer::start().await.unwrap();
    let spec = etcd.spec("remove");
    let spec_text = spec.to_string();
    let store = mpcluster_store::open(&spec, &StoreOptions::default())
        .await
        .unwrap();
    // W1 on every node (a multipath storage without a node list: every member).
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"wwids": {W1: {}}}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    store
        .write_doc(
            doc_names::STORAGE,
            &json!({"storages": [{"type": "multipath", "id": "san"}]}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut agents: Vec<(SimNode, PathBuf, Proc)> = Vec::new();
    for name in ["n1", "n2"] {
        let sim = SimNode::start(
            &dir.path().join(format!("{name}.sock")),
            &dir.path().join(format!("{name}-sys")),
            SimState {
                maps: vec![SimMap::new(W1, 0, 1 << 30, 2, "scsi:iscsi", 0)],
                ..SimState::default()
            },
        )
        .unwrap();
        let root = dir.path().join(format!("{name}-root"));
        make_root(&root);
        let agent = Proc::mpcluster(name, &agent_args(&spec_text, name, &sim, &root));
        agents.push((sim, root, agent));
    }
    let (_server, url) = start_serve("serve", &["--store".into(), spec_text.clone()]);
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        tokio::task::block_in_place(|| wait_status(&url, what, WAIT, pred))
    };
    wait("both nodes optimal", &|s| {
        cell(s, W1, "n1")["state"] == "optimal" && cell(s, W1, "n2")["state"] == "optimal"
    });

    // While n2's agent runs: refused, by the CLI (exit 2) and by the API (409).
    let out = tokio::task::block_in_place(|| run(&["node", "remove", "n2", "--store", &spec_text]));
    expect(&out, 2, "online node on etcd");
    assert!(
        text(&out.stderr).contains("node n2 is online"),
        "{}",
        text(&out.stderr)
    );
    let (code, body) =
        tokio::task::block_in_place(|| delete(&format!("{url}/api2/json/cluster/nodes/n2")));
    assert_eq!(code, 409, "{body}");

    // n2's agent stops (SIGTERM: it leaves the cluster): its cells read unknown, and it stays
    // a (offline) member until it is removed.
    let agent = &mut agents[1].2;
    agent.signal("TERM");
    let status = tokio::task::block_in_place(|| agent.wait_exit(Duration::from_secs(10)));
    assert!(status.success());
    wait("n2 unknown", &|s| cell(s, W1, "n2")["state"] == "unknown");

    let out = tokio::task::block_in_place(|| run(&["node", "remove", "n2", "--store", &spec_text]));
    expect(&out, 0, "stopped node on etcd");
    let s = wait("n2's column gone", &|s| cell(s, W1, "n2").is_null());
    assert_eq!(cell(&s, W1, "n1")["state"], "optimal");
    let members = store.members().await.unwrap();
    assert!(
        !members.contains_key(&NodeName::new("n2").unwrap()),
        "{members:?}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, nodes) =
            tokio::task::block_in_place(|| get_json(&format!("{url}/api2/json/cluster/nodes")));
        assert_eq!(code, 200, "{nodes}");
        let names: Vec<&str> = nodes["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].as_str().unwrap())
            .collect();
        if names == ["n1"] {
            break;
        }
        assert!(Instant::now() < deadline, "n2 still listed: {names:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Removing it again: nothing is known about it any more.
    let (code, body) =
        tokio::task::block_in_place(|| delete(&format!("{url}/api2/json/cluster/nodes/n2")));
    assert_eq!(code, 404, "{body}");
}
