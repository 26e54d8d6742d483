//! The agent applies the cluster configuration under its root: drop-ins, wwids file (foreign
//! entries kept), one `reconfigure` per change, apply errors published and cleared, generated
//! files removed when the configuration is emptied. Embedded store, simulated multipathd.
//!
//! Every apply has the installed `multipath -t` judge the candidate (in a private mount
//! namespace for the temp root): that needs Debian's multipath-tools and root. Under
//! `CI=true` their absence is a failure; otherwise the test prints why it skips.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcluster_agent::MultipathdClient;
use mpcluster_agent::parser_check::ParserCheck;
use mpcluster_agent::run::{AgentConfig, run};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_core::NodeName;
use mpcluster_core::config::{BASELINE_PATH, OVERRIDES_PATH, WWIDS_PATH};
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const FOREIGN: &str = "3600508b1001c5e4f0000000000000bb0";

/// Skip (print why) or, under CI, fail.
fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {why}");
    }
    eprintln!("skipping: {why}");
}

async fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

fn reconfigures(sim: &SimNode) -> usize {
    sim.state()
        .commands
        .iter()
        .filter(|c| *c == "reconfigure")
        .count()
}

async fn write_config(store: &dyn ClusterStore, doc: serde_json::Value) {
    store
        .write_doc(doc_names::CONFIG, &doc.to_string(), Expect::Any)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_applies_the_cluster_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
    std::fs::write(root.join("usr/sbin/multipath"), "").unwrap();
    if let Err(e) = ParserCheck::for_root(&root).run(&root).await {
        return skip(&format!(
            "the real parser check cannot run here: {}",
            mpcluster_core::error_chain(&e)
        ));
    }
    // A hand-made (boot from SAN) entry that must survive everything.
    std::fs::create_dir_all(root.join("etc/multipath")).unwrap();
    std::fs::write(
        root.join(WWIDS_PATH),
        format!("# Multipath wwids, Version : 1.0\n/{FOREIGN}/\n"),
    )
    .unwrap();

    let store: Arc<dyn ClusterStore> = Arc::new(
        EmbeddedStore::open(&dir.path().join("store"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let sim = SimNode::start(
        &dir.path().join("mpd.sock"),
        &dir.path().join("sys"),
        SimState {
            maps: vec![SimMap::new(W1, 0, 1 << 30, 2, "scsi:iscsi", 0)],
            ..SimState::default()
        },
    )
    .unwrap();

    let node = NodeName::new("node1").unwrap();
    let mut config = AgentConfig::new(node.clone());
    config.interval = Duration::from_millis(200);
    config.apply_root = Some(root.clone());
    config.apply_retry = Duration::from_millis(300);
    config.sysfs_root = sim.sysfs_root().to_path_buf();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(run(
        store.clone(),
        MultipathdClient::new(sim.socket_spec(), Duration::from_secs(2)),
        config,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));

    // Nothing configured yet: no drop-in, the foreign entry untouched.
    wait_until("first apply", || reconfigures(&sim) >= 1).await;
    assert_eq!(read(&root, BASELINE_PATH), None);
    assert!(read(&root, WWIDS_PATH).unwrap().contains(FOREIGN));
    let before = reconfigures(&sim);

    // An allow-list with an alias and a per-LUN knob reaches the root, with one reconfigure.
    write_config(
        store.as_ref(),
        serde_json::json!({"defaults": {"polling-interval": 7},
                           "wwids": {W1: {"alias": "db", "no-path-retry": "queue"}, W2: {}}}),
    )
    .await;
    wait_until("baseline written", || read(&root, BASELINE_PATH).is_some()).await;
    wait_until("reconfigure", || reconfigures(&sim) == before + 1).await;
    let baseline = read(&root, BASELINE_PATH).unwrap();
    assert!(baseline.contains("alias db"), "{baseline}");
    assert!(baseline.contains("polling_interval 7"), "{baseline}");
    assert!(baseline.contains("no_path_retry queue"), "{baseline}");
    assert!(
        baseline.contains(&format!("\"^{FOREIGN}$\"")),
        "foreign WWID kept as an exception: {baseline}"
    );
    let wwids = read(&root, WWIDS_PATH).unwrap();
    for w in [W1, W2, FOREIGN] {
        assert!(wwids.contains(&format!("/{w}/")), "{w} in {wwids}");
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        reconfigures(&sim),
        before + 1,
        "exactly one reconfigure per change"
    );

    // Removing W2 prunes it (we added it), never the foreign entry.
    write_config(
        store.as_ref(),
        serde_json::json!({"wwids": {W1: {"alias": "db"}}}),
    )
    .await;
    wait_until("W2 pruned", || {
        !read(&root, WWIDS_PATH).unwrap().contains(W2)
    })
    .await;
    assert!(read(&root, WWIDS_PATH).unwrap().contains(FOREIGN));

    // Overrides get their own drop-in.
    store
        .write_doc(
            doc_names::OVERRIDES,
            &serde_json::to_string("devices {\n  device {\n    vendor \"NETAPP\"\n    product \"LUN.*\"\n    no_path_retry queue\n  }\n}\n").unwrap(),
            Expect::Any,
        )
        .await
        .unwrap();
    wait_until("overrides written", || {
        read(&root, OVERRIDES_PATH).is_some()
    })
    .await;

    // The configuration directory cannot be written (a file where a directory must be): the
    // apply error is published, and clears once fixed.
    let conf_d = root.join("etc/multipath/conf.d");
    std::fs::remove_dir_all(&conf_d).unwrap();
    std::fs::write(&conf_d, "not a directory").unwrap();
    write_config(
        store.as_ref(),
        serde_json::json!({"wwids": {W1: {"alias": "db2"}}}),
    )
    .await;
    let mut apply_error = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while apply_error.is_none() {
        assert!(Instant::now() < deadline, "no apply error published");
        apply_error = store.get(kv_keys::APPLY, &node).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let apply_error: serde_json::Value = serde_json::from_str(&apply_error.unwrap()).unwrap();
    assert!(
        apply_error["error"].as_str().unwrap().contains("conf.d"),
        "{apply_error}"
    );
    assert!(apply_error["time"].is_i64());
    std::fs::remove_file(&conf_d).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.get(kv_keys::APPLY, &node).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "apply error not cleared after the fix"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(read(&root, BASELINE_PATH).unwrap().contains("alias db2"));

    // Emptying the configuration removes the generated drop-ins.
    write_config(store.as_ref(), serde_json::json!({})).await;
    store
        .write_doc(doc_names::OVERRIDES, "\"\"", Expect::Any)
        .await
        .unwrap();
    wait_until("drop-ins removed", || {
        read(&root, BASELINE_PATH).is_none() && read(&root, OVERRIDES_PATH).is_none()
    })
    .await;
    assert!(read(&root, WWIDS_PATH).unwrap().contains(FOREIGN));
    assert!(
        !read(&root, WWIDS_PATH).unwrap().contains(W1),
        "our entries pruned"
    );

    stop.send(true).unwrap();
    agent.await.unwrap();
}
