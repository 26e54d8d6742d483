//! No surprises on a node's first apply: multipathd has maps named `mpatha`/`mpathb` (user
//! friendly names, as on a node that ran multipath before mpcluster); the cluster allow-list
//! holds mpatha's LUN only. The first apply would rename mpatha to its WWID and stop
//! multipathing mpathb, so the agent writes nothing, reconfigures nothing, publishes the plan
//! with `waiting`, and the status says "apply waiting: would rename mpatha -> <wwid>". Once an
//! admin accepts the plan the agent applies it (the real `multipath -t` judging the candidate);
//! the always-accept setting lets a node go ahead at once. A rename to a cluster alias of a LUN
//! already managed does not wait.
//!
//! Needs Debian's multipath-tools and root (the real parser runs in a private mount
//! namespace); under `CI=true` their absence is a failure, otherwise the test says why it skips.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcluster_agent::MultipathdClient;
use mpcluster_agent::apply::Applier;
use mpcluster_agent::parser_check::ParserCheck;
use mpcluster_agent::run::{AgentConfig, run};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_core::NodeName;
use mpcluster_core::config::{BASELINE_PATH, WWIDS_PATH};
use mpcluster_core::plan::ApplyPlan;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";

fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {why}");
    }
    eprintln!("skipping: {why}");
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

/// A root with a `multipath` binary, or `None` (after `skip`) when the real parser cannot run.
async fn root_with_parser(dir: &Path) -> Option<std::path::PathBuf> {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
    std::fs::write(root.join("usr/sbin/multipath"), "").unwrap();
    if let Err(e) = ParserCheck::for_root(&root).run(&root).await {
        skip(&format!(
            "the real parser check cannot run here: {}",
            mpcluster_core::error_chain(&e)
        ));
        return None;
    }
    Some(root)
}

fn friendly_maps() -> SimState {
    let mut a = SimMap::new(W1, 0, 1 << 30, 2, "scsi:iscsi", 0);
    a.name = "mpatha".into();
    let mut b = SimMap::new(W2, 1, 1 << 30, 2, "scsi:iscsi", 2);
    b.name = "mpathb".into();
    SimState {
        maps: vec![a, b],
        ..SimState::default()
    }
}

async fn open_store(dir: &Path) -> Arc<dyn ClusterStore> {
    Arc::new(
        EmbeddedStore::open(&dir.join("store"), EmbeddedOptions::default())
            .await
            .unwrap(),
    )
}

async fn allow(store: &dyn ClusterStore, doc: serde_json::Value) {
    store
        .write_doc(doc_names::CONFIG, &doc.to_string(), Expect::Any)
        .await
        .unwrap();
}

async fn plan_of(store: &dyn ClusterStore, node: &NodeName) -> Option<ApplyPlan> {
    let raw = store.get(kv_keys::PLAN, node).await.unwrap()?;
    Some(ApplyPlan::decode(&raw).unwrap())
}

async fn wait_for_plan(
    store: &dyn ClusterStore,
    node: &NodeName,
    what: &str,
    pred: impl Fn(&ApplyPlan) -> bool,
) -> ApplyPlan {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = plan_of(store, node).await
            && pred(&p)
        {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; plan now: {:?}",
            plan_of(store, node).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_apply_waits_for_an_acceptance_then_applies() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = root_with_parser(dir.path()).await else {
        return;
    };
    let store = open_store(dir.path()).await;
    let sim = SimNode::start(
        &dir.path().join("mpd.sock"),
        &dir.path().join("sys"),
        friendly_maps(),
    )
    .unwrap();
    allow(store.as_ref(), serde_json::json!({"wwids": {W1: {}}})).await;

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

    // The plan is published, waiting; nothing was written or reconfigured.
    let plan = wait_for_plan(store.as_ref(), &node, "a waiting plan", |p| p.waiting).await;
    let summary = plan.summary.clone().unwrap();
    assert!(
        summary.starts_with(&format!("apply waiting: would rename mpatha -> {W1}")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("would stop multipathing mpathb ({W2})")),
        "{summary}"
    );
    assert_eq!(plan.renames.len(), 1);
    assert!(!plan.renames[0].requested);
    assert_eq!(plan.dropped[0].name, "mpathb");
    let paths: Vec<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
    assert!(
        paths.contains(&format!("/{BASELINE_PATH}").as_str())
            && paths.contains(&format!("/{WWIDS_PATH}").as_str()),
        "{paths:?}"
    );
    assert_eq!(
        plan.wwids_added,
        vec![mpcluster_core::Wwid::new(W1).unwrap()]
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        read(&root, BASELINE_PATH),
        None,
        "nothing written while waiting"
    );
    assert_eq!(read(&root, WWIDS_PATH), None);
    assert_eq!(reconfigures(&sim), 0, "multipathd left alone while waiting");

    // The status says so, for this node.
    let read = mpcluster_config::read_snapshot(
        store.as_ref(),
        mpcluster_config::unix_now(),
        None,
        None,
        None,
    )
    .await
    .unwrap();
    let status = mpcluster_core::status::assemble(&read.snapshot).status;
    let waiting = status.nodes[&node].apply_waiting.clone().unwrap();
    assert!(
        waiting.contains(&format!("would rename mpatha -> {W1}"))
            && waiting.contains("mpcluster config accept --node node1"),
        "{waiting}"
    );
    assert!(
        mpcluster_core::table::render(&status, Default::default())
            .contains("apply waiting: would rename mpatha"),
        "the CLI table shows it"
    );

    // A new map showing up changes the plan; the acceptance is for the plan as shown.
    let accepted = mpcluster_config::plan::accept_node(store.as_ref(), &node)
        .await
        .unwrap();
    assert_eq!(accepted.digest, plan.digest);

    // Accepted: the agent applies (the real parser agreeing), multipathd is reconfigured.
    let deadline = Instant::now() + Duration::from_secs(20);
    while reconfigures(&sim) == 0 {
        assert!(Instant::now() < deadline, "no apply after the acceptance");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let baseline = std::fs::read_to_string(root.join(BASELINE_PATH)).unwrap();
    assert!(baseline.contains("user_friendly_names no"), "{baseline}");
    assert!(
        std::fs::read_to_string(root.join(WWIDS_PATH))
            .unwrap()
            .contains(W1)
    );
    let done = wait_for_plan(store.as_ref(), &node, "an empty plan", ApplyPlan::is_empty).await;
    assert!(!done.waiting && done.summary.is_none());

    // multipathd renamed the map and dropped mpathb. Later, an alias for the managed LUN is a
    // requested rename: applied without waiting.
    sim.update(|s| {
        s.maps.retain(|m| m.wwid == W1);
        s.maps[0].name = W1.into();
    });
    let before = reconfigures(&sim);
    allow(
        store.as_ref(),
        serde_json::json!({"wwids": {W1: {"alias": "db"}}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while reconfigures(&sim) == before {
        assert!(Instant::now() < deadline, "alias change not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        std::fs::read_to_string(root.join(BASELINE_PATH))
            .unwrap()
            .contains("alias db")
    );
    assert!(!plan_of(store.as_ref(), &node).await.unwrap().waiting);

    stop.send(true).unwrap();
    agent.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_accept_applies_at_once_and_a_changed_plan_waits_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = root_with_parser(dir.path()).await else {
        return;
    };
    let store = open_store(dir.path()).await;
    let sim = SimNode::start(
        &dir.path().join("mpd.sock"),
        &dir.path().join("sys"),
        friendly_maps(),
    )
    .unwrap();
    let client = MultipathdClient::new(sim.socket_spec(), Duration::from_secs(2));
    allow(store.as_ref(), serde_json::json!({"wwids": {W1: {}}})).await;
    let node = NodeName::new("node1").unwrap();
    let mut applier = Applier::new(&root).for_node(node.clone());

    // Waiting; an acceptance of another plan (an older digest) does not count.
    let outcome = applier.apply(store.as_ref(), &client).await.unwrap();
    assert!(outcome.waiting.is_some() && !outcome.reconfigured);
    let first = applier.plan().unwrap().clone();
    store
        .put(kv_keys::PLAN, &node, Some(&first.encode()))
        .await
        .unwrap();
    mpcluster_config::plan::accept_node(store.as_ref(), &node)
        .await
        .unwrap();
    // Before the agent applies, a third friendly-named map appears: a different plan.
    sim.update(|s| {
        let mut c = SimMap::new(
            "3600a098038303053453f463045727a03",
            2,
            1 << 30,
            2,
            "scsi:iscsi",
            4,
        );
        c.name = "mpathc".into();
        s.maps.push(c);
    });
    let outcome = applier.apply(store.as_ref(), &client).await.unwrap();
    let summary = outcome.waiting.expect("a changed plan waits again");
    assert!(summary.contains("mpathc"), "{summary}");
    assert_ne!(applier.plan().unwrap().digest, first.digest);
    assert_eq!(reconfigures(&sim), 0);

    // The cluster setting: every node goes ahead.
    mpcluster_config::plan::set_always(store.as_ref(), true)
        .await
        .unwrap();
    let outcome = applier.apply(store.as_ref(), &client).await.unwrap();
    assert!(
        outcome.waiting.is_none() && outcome.reconfigured,
        "{outcome:?}"
    );
    assert!(read(&root, BASELINE_PATH).is_some());
    assert!(applier.plan().unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_multipathd_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
    std::fs::write(root.join("usr/sbin/multipath"), "").unwrap();
    let store = open_store(dir.path()).await;
    allow(store.as_ref(), serde_json::json!({"wwids": {W1: {}}})).await;
    let client = MultipathdClient::new(
        mpcluster_agent::socket::SocketAddrSpec::Path(dir.path().join("no-such.sock")),
        Duration::from_secs(1),
    );
    let mut applier = Applier::new(&root).without_parser_check();
    let e = applier.apply(store.as_ref(), &client).await.unwrap_err();
    assert!(
        mpcluster_core::error_chain(&e).contains("cannot list multipathd's maps"),
        "{}",
        mpcluster_core::error_chain(&e)
    );
    assert_eq!(read(&root, BASELINE_PATH), None);
    assert!(applier.plan().is_none());
}
