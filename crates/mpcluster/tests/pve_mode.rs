//! Proxmox mode end to end, on fixture `/etc/pve` trees (`mpcluster_store::testing::PveRoot`:
//! a temporary root whose corosync `.members` the test controls, plus a `storage.cfg`): the
//! real `mpcluster serve` and `mpcluster agent` processes with simulated multipathds, asserted
//! through HTTP and the CLI.
//!
//! - `--pve-root` with the embedded store: membership and liveness follow `.members` (a node
//!   goes offline and comes back, a node joins), an online member whose agent is silent reads
//!   `missing`, the agent's default node name is corosync's, the expectations follow
//!   storage.cfg as it is edited while the server runs, `storage list` shows where each
//!   storage comes from, and storage edits are refused with the pvesm message (CLI and API).
//! - The pmxcfs store (`--store pve:DIR`): the same membership from the same root, the
//!   broadcasts in the tree itself.
//! - `serve` with the embedded store keeps running this node's agent in-process, named as
//!   corosync names this host.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Proc, cell, get_json, start_serve, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_core::snapshot::doc_names;
use mpcluster_store::testing::PveRoot;
use mpcluster_store::{Expect, StoreOptions, StoreSpec};
use serde_json::{Value, json};

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const WAIT: Duration = Duration::from_secs(30);

/// storage.cfg: a multipath storage on every node, an LVM storage on W1 for n1 and n2, and
/// what a Proxmox node always has besides (a directory storage).
fn storage_cfg_v1() -> String {
    format!(
        "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\n\
         multipath: san\n\tcontent none\n\n\
         lvm: vmdata\n\tvgname vmdata\n\tbase san:{W1}\n\tnodes n1,n2\n\tshared 1\n\
         \tcontent images,rootdir\n"
    )
}

/// v1 plus an LVM storage on W2, only on n1.
fn storage_cfg_v2() -> String {
    format!(
        "{}\nlvm: dbdata\n\tvgname dbdata\n\tbase san:{W2}\n\tnodes n1\n",
        storage_cfg_v1()
    )
}

/// Replace `<root>/storage.cfg` as Proxmox does (temp file, rename).
fn write_storage_cfg(root: &Path, text: &str) {
    let tmp = root.join(format!("storage.cfg.tmp.{}", std::process::id()));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, root.join("storage.cfg")).unwrap();
}

fn sim(dir: &Path, name: &str) -> SimNode {
    SimNode::start(
        &dir.join(format!("{name}.sock")),
        &dir.join(format!("{name}-sys")),
        SimState {
            maps: vec![
                SimMap::new(W1, 0, 1 << 30, 2, "scsi:iscsi", 0),
                SimMap::new(W2, 1, 1 << 30, 2, "scsi:iscsi", 2),
            ],
            ..SimState::default()
        },
    )
    .unwrap()
}

/// `mpcluster agent` for `sim` with `store_args`; `node: None` leaves the name to the agent.
fn agent(tag: &str, node: Option<&str>, sim: &SimNode, store_args: &[String]) -> Proc {
    let mut args: Vec<String> = vec!["agent".into()];
    args.extend_from_slice(store_args);
    if let Some(n) = node {
        args.extend(["--node".into(), n.into()]);
    }
    args.extend([
        "--interval".into(),
        "0.3".into(),
        "--refresh".into(),
        "1".into(),
        "--no-apply".into(),
        "--multipathd-socket".into(),
        sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        sim.sysfs_root().display().to_string(),
    ]);
    Proc::mpcluster(tag, &args)
}

fn mpcluster(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(args)
        .env("MPCLUSTER_LOG", "warn")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The allow-list: W1 and W2.
async fn allow_list(spec: &StoreSpec) {
    let store = mpcluster_store::open(spec, &StoreOptions::default())
        .await
        .unwrap();
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"wwids": {W1: {"alias": "vmdata-lun"}, W2: {}}}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxmox_mode_follows_members_and_storage_cfg() {
    let dir = tempfile::tempdir().unwrap();
    // A three-node corosync cluster, all online; this host is n1.
    let root = PveRoot::cluster("lab", "n1").unwrap();
    root.set_online("n2", true).unwrap();
    root.set_online("n3", true).unwrap();
    write_storage_cfg(root.path(), &storage_cfg_v1());
    let store_dir = dir.path().join("store");
    allow_list(&StoreSpec::Embedded {
        dir: Some(store_dir.clone()),
    })
    .await;
    let store_args: Vec<String> = vec![
        "--store".into(),
        format!("embedded:{}", store_dir.display()),
        "--pve-root".into(),
        root.path().display().to_string(),
    ];

    // n1's agent takes its name from .members; n2 is named; n3 never starts an agent.
    let sims = [sim(dir.path(), "n1"), sim(dir.path(), "n2")];
    let _a1 = agent("agent-n1", None, &sims[0], &store_args);
    let _a2 = agent("agent-n2", Some("n2"), &sims[1], &store_args);
    let mut serve_args = store_args.clone();
    serve_args.push("--no-agent".into());
    let (_server, url) = start_serve("serve", &serve_args);
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        tokio::task::block_in_place(|| wait_status(&url, what, WAIT, pred))
    };

    // Healthy on n1 and n2; W2 (on every node of the multipath storage) reads `missing` on
    // n3, an online member whose agent is silent, as in the seed; W1 (vmdata: n1, n2) is not
    // expected there.
    let s = wait("n1, n2 optimal, n3 missing", &|s| {
        ["n1", "n2"]
            .iter()
            .all(|n| cell(s, W1, n)["state"] == "optimal" && cell(s, W2, n)["state"] == "optimal")
            && cell(s, W2, "n3")["state"] == "missing"
    });
    assert_eq!(cell(&s, W1, "n3"), &Value::Null, "{s}");
    let w1 = s["luns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["wwid"] == W1)
        .unwrap();
    assert_eq!(w1["used-by"], "vmdata", "consumers from storage.cfg: {w1}");
    let (_, nodes) =
        tokio::task::block_in_place(|| get_json(&format!("{url}/api2/json/cluster/nodes")));
    let n3 = nodes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "n3")
        .unwrap();
    assert_eq!(n3["member"], true, "{n3}");

    // n2 goes offline in corosync (its agent still broadcasts): its cells are unknown.
    root.set_online("n2", false).unwrap();
    let s = wait("n2 unknown", &|s| {
        cell(s, W1, "n2")["state"] == "unknown" && cell(s, W2, "n2")["state"] == "unknown"
    });
    assert_eq!(cell(&s, W1, "n1")["state"], "optimal");
    // ... and comes back: fresh again.
    root.set_online("n2", true).unwrap();
    wait("n2 optimal again", &|s| {
        cell(s, W1, "n2")["state"] == "optimal" && cell(s, W2, "n2")["state"] == "optimal"
    });

    // A node joins: expected at once (missing), optimal once its agent reports.
    root.set_online("n4", true).unwrap();
    wait("n4 missing", &|s| cell(s, W2, "n4")["state"] == "missing");
    let sim4 = sim(dir.path(), "n4");
    let _a4 = agent("agent-n4", Some("n4"), &sim4, &store_args);
    wait("n4 optimal", &|s| cell(s, W2, "n4")["state"] == "optimal");

    // storage.cfg edited while the server runs: W2 now belongs to dbdata on n1 only, so n3
    // no longer should carry it.
    write_storage_cfg(root.path(), &storage_cfg_v2());
    let s = wait("the new expectations", &|s| {
        s["luns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["wwid"] == W2 && l["used-by"] == "dbdata")
    });
    assert_eq!(cell(&s, W2, "n3"), &Value::Null, "{s}");
    assert_eq!(cell(&s, W2, "n1")["state"], "optimal");

    // `storage list` shows where each storage comes from.
    let mut list = vec!["storage".into(), "list".into()];
    list.extend_from_slice(&store_args);
    let out = mpcluster(&list);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for want in [
        "san     multipath",
        "storage.cfg:5",
        "vmdata  lvm",
        "storage.cfg:8",
        "dbdata  lvm",
        "storage.cfg:15",
        &format!("source: {}", root.path().join("storage.cfg").display()),
        "pvesm",
    ] {
        assert!(shown.contains(want), "{want}: {shown}");
    }
    let mut json_list = list.clone();
    json_list.extend(["--format".into(), "json".into()]);
    let v: Value = serde_json::from_slice(&mpcluster(&json_list).stdout).unwrap();
    assert_eq!(v["source"]["kind"], "pve", "{v}");
    assert_eq!(v["used-by"]["san"], json!(["vmdata", "dbdata"]), "{v}");

    // Storage edits are refused with the pvesm message, CLI (exit 2) and API (403).
    for cmd in [
        vec!["storage", "add", "multipath", "other"],
        vec!["storage", "set", "vmdata", "--disable"],
        vec!["storage", "remove", "dbdata"],
        vec!["storage", "import-pve", "/dev/null"],
    ] {
        let mut args: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        args.extend_from_slice(&store_args);
        let out = mpcluster(&args);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {shown}");
        assert!(
            shown.contains("pvesm") && shown.contains("storage.cfg"),
            "{cmd:?}: {shown}"
        );
    }
    let api = format!("{url}/api2/json/storage");
    let (code, body) = tokio::task::block_in_place(|| {
        match ureq::post(&api)
            .set("Authorization", &common::auth_header(&url).unwrap())
            .set("Content-Type", "application/json")
            .send_string(&json!({"type": "multipath", "id": "other"}).to_string())
        {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(code, 403, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("pvesm"),
        "{body}"
    );
    let stored = mpcluster_store::open(
        &StoreSpec::Embedded {
            dir: Some(store_dir.clone()),
        },
        &StoreOptions::default(),
    )
    .await
    .unwrap()
    .read_doc(doc_names::STORAGE)
    .await
    .unwrap();
    assert_eq!(stored, None, "nothing written to the storage document");

    // The CLI's own view of the store agrees (membership from .members, expectations from
    // storage.cfg).
    let mut status = vec!["status".into(), "--format".into(), "json".into()];
    status.extend_from_slice(&store_args);
    let out = mpcluster(&status);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(cell(&v, W2, "n3"), &Value::Null, "{}", text(&out));
    assert_eq!(cell(&v, W1, "n1")["state"], "optimal", "{}", text(&out));
}

/// The pmxcfs store on a fixture root: agents and server share the tree (broadcasts under
/// `priv/mpcluster`), membership from its `.members`, storages from its storage.cfg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pve_store_on_a_fixture_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = PveRoot::cluster("lab", "n1").unwrap();
    root.set_online("n2", true).unwrap();
    write_storage_cfg(root.path(), &storage_cfg_v1());
    let spec = root.spec();
    allow_list(&spec).await;
    let store_args: Vec<String> = vec!["--store".into(), spec.to_string()];
    let sims = [sim(dir.path(), "n1"), sim(dir.path(), "n2")];
    let _a1 = agent("agent-n1", None, &sims[0], &store_args);
    let _a2 = agent("agent-n2", Some("n2"), &sims[1], &store_args);
    let (_server, url) = start_serve("serve", &store_args);
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        tokio::task::block_in_place(|| wait_status(&url, what, WAIT, pred))
    };
    wait("both optimal", &|s| {
        ["n1", "n2"]
            .iter()
            .all(|n| cell(s, W1, n)["state"] == "optimal" && cell(s, W2, n)["state"] == "optimal")
    });
    assert!(
        root.path()
            .join("priv/mpcluster/nodes/n1/multipath")
            .is_file(),
        "the broadcast is a file of the tree"
    );
    root.set_online("n1", false).unwrap();
    wait("n1 unknown", &|s| cell(s, W1, "n1")["state"] == "unknown");
    root.set_online("n1", true).unwrap();
    root.set_online("n3", true).unwrap();
    wait("n1 back, n3 joined and silent", &|s| {
        cell(s, W1, "n1")["state"] == "optimal" && cell(s, W2, "n3")["state"] == "missing"
    });
    write_storage_cfg(root.path(), &storage_cfg_v2());
    wait("dbdata", &|s| {
        cell(s, W2, "n3").is_null()
            && s["luns"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["wwid"] == W2 && l["used-by"] == "dbdata")
    });
}

/// `serve` with the embedded store in Proxmox mode still runs this node's agent in-process,
/// under corosync's name of this host; the other member, silent, reads `missing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_local_agent_under_the_corosync_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = PveRoot::cluster("lab", "n1").unwrap();
    root.set_online("n2", true).unwrap();
    write_storage_cfg(root.path(), &storage_cfg_v1());
    let store_dir = dir.path().join("store");
    allow_list(&StoreSpec::Embedded {
        dir: Some(store_dir.clone()),
    })
    .await;
    let sim1 = sim(dir.path(), "n1");
    let args: Vec<String> = vec![
        "--store".into(),
        format!("embedded:{}", store_dir.display()),
        "--pve-root".into(),
        root.path().display().to_string(),
        "--interval".into(),
        "0.3".into(),
        "--no-apply".into(),
        "--multipathd-socket".into(),
        sim1.socket_spec().to_string(),
        "--sysfs-root".into(),
        sim1.sysfs_root().display().to_string(),
    ];
    let (_server, url) = start_serve("serve", &args);
    tokio::task::block_in_place(|| {
        wait_status(&url, "n1 optimal, n2 missing", WAIT, |s| {
            cell(s, W1, "n1")["state"] == "optimal"
                && cell(s, W2, "n1")["state"] == "optimal"
                && cell(s, W1, "n2")["state"] == "missing"
        })
    });
}
