//! Issue 14, part 2: the event history, flapping and the audit trail, end to end with real
//! `mpcluster serve` processes (two at once, on one store), a simulated multipathd per node
//! (the real socket protocol) and the real agent — on the embedded store and on a real etcd.
//!
//! The scripted timeline: degrade, fail, recover, then flap. Asserted: every change recorded
//! exactly once cluster-wide with consecutive sequence numbers (two servers running), the
//! flapping LUN and cell in the status, `/metrics` and the CLI, the configuration changes in
//! the audit trail with the token and the digests; on etcd also a leader killed with -9 and
//! the change made meanwhile recorded once by the other server, and the history surviving a
//! restart without repeats.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, cell, get_json, make_root, row_state, set_token, start_serve, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_store::testing::{EtcdServer, require_etcd};
use serde_json::{Value, json};

const W1: &str = "3600a098038303053453f463045727a01";
const WAIT: Duration = Duration::from_secs(20);
/// Flapping in the tests: 4 changes within 60 s.
const FLAP: [&str; 4] = ["--flap-changes", "4", "--flap-window", "60"];

fn events(url: &str, query: &str) -> Vec<Value> {
    let (code, body) = get_json(&format!("{url}/api2/json/cluster/multipath/events?{query}"));
    assert_eq!(code, 200, "{body}");
    body["data"]["events"].as_array().unwrap().clone()
}

/// The health events of W1 as `(kind, node, before, after)` lines.
fn w1_lines(url: &str) -> Vec<String> {
    events(url, &format!("wwid={W1}&kind=health"))
        .iter()
        .map(|e| {
            let show = |v: &Value| match v {
                Value::Null => "-".to_owned(),
                Value::String(s) => s.clone(),
                v => match (&v["paths-active"], &v["paths-total"]) {
                    (Value::Number(a), Value::Number(t)) => {
                        format!("{} {a}/{t}", v["state"].as_str().unwrap())
                    }
                    _ => v["state"].as_str().unwrap().to_owned(),
                },
            };
            format!(
                "{} {} {} -> {}",
                e["kind"].as_str().unwrap(),
                e["node"].as_str().unwrap_or("*"),
                show(&e["before"]),
                show(&e["after"])
            )
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sequence numbers are unique and without gaps.
fn assert_consecutive(url: &str) {
    let all = events(url, "limit=10000");
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "gap or repeat in {seqs:?}");
    }
}

fn sim(dir: &Path) -> SimNode {
    SimNode::start(
        &dir.join("n1.sock"),
        &dir.join("n1-sys"),
        SimState {
            maps: vec![SimMap::new(W1, 0, 1 << 30, 4, "scsi:iscsi", 0)],
            ..SimState::default()
        },
    )
    .unwrap()
}

fn agent_args(sim: &SimNode, root: &Path) -> Vec<String> {
    vec![
        "--node".into(),
        "n1".into(),
        "--interval".into(),
        "0.2".into(),
        "--multipathd-socket".into(),
        sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        sim.sysfs_root().display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ]
}

/// Degrade, fail, recover, flap; checks on both servers.
fn timeline(sim: &SimNode, urls: &[String], token_file: &Path) {
    let url = &urls[0];
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| wait_status(url, what, WAIT, pred);
    wait("W1 optimal", &|s| row_state(s, W1) == "optimal");
    // The recorder has recorded its baseline (or the LUN's arrival, if the baseline came
    // first); a baseline itself is no event.
    std::thread::sleep(Duration::from_secs(2));
    let start_lines = w1_lines(url);

    // The configuration change through the API: the audit trail names the token.
    let (code, body) = {
        let req = ureq::post(&format!("{url}/api2/json/cluster/multipath/wwids"))
            .set("Authorization", &common::auth_header(url).unwrap())
            .set("Content-Type", "application/json");
        match req.send_string(&json!({"wwid": W1, "alias": "vmdata"}).to_string()) {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(code, 200, "{body}");

    sim.update(|st| st.maps[0].paths[0].up = false);
    wait("degraded", &|s| row_state(s, W1) == "degraded");
    sim.update(|st| {
        for p in &mut st.maps[0].paths {
            p.up = false;
        }
    });
    wait("failed", &|s| row_state(s, W1) == "failed");
    sim.update(|st| {
        for p in &mut st.maps[0].paths {
            p.up = true;
        }
    });
    wait("optimal", &|s| row_state(s, W1) == "optimal");
    let expected = [
        "lun * optimal -> degraded",
        "lun * degraded -> failed",
        "lun * failed -> optimal",
        "cell n1 optimal 4/4 -> degraded 3/4",
        "cell n1 degraded 3/4 -> failed 0/4",
        "cell n1 failed 0/4 -> optimal 4/4",
    ];
    wait_for("the timeline's events", WAIT, || {
        w1_lines(url).len() >= start_lines.len() + expected.len()
    });
    // Give a second recorder the time to (wrongly) record again.
    std::thread::sleep(Duration::from_secs(2));
    for u in urls {
        let lines = w1_lines(u);
        let new: Vec<&str> = lines[start_lines.len()..]
            .iter()
            .map(String::as_str)
            .collect();
        // Per recording: LUN events first, then cells. One recording per change.
        let mut sorted = new.clone();
        sorted.sort_by_key(|l| !l.starts_with("lun"));
        let mut want: Vec<&str> = expected.to_vec();
        want.sort_by_key(|l| !l.starts_with("lun"));
        assert_eq!(
            sorted, want,
            "every change exactly once, on {u}: {lines:#?}"
        );
    }
    assert_consecutive(url);

    // Audit trail: the allow-list change, by the token, with both digests.
    let audit = events(url, "kind=config");
    let add = audit
        .iter()
        .find(|e| e["doc"] == "multipath-config" && e["summary"].as_str().unwrap().contains(W1))
        .unwrap_or_else(|| panic!("{audit:#?}"));
    assert!(
        add["actor"].as_str().unwrap().starts_with("token:"),
        "{add}"
    );
    assert!(add["digest-after"].as_str().unwrap().len() >= 12, "{add}");

    // Flapping: four changes within the window.
    for i in 0..4 {
        let up = i % 2 == 1;
        let n = w1_lines(url).len();
        sim.update(|st| st.maps[0].paths[0].up = up);
        let want = if up { "optimal" } else { "degraded" };
        wait(want, &|s| row_state(s, W1) == want);
        // Each change recorded before the next one.
        wait_for("recorded", WAIT, || w1_lines(url).len() > n);
    }
    let s = wait("W1 flapping", &|s| {
        s["flapping"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["wwid"] == W1 && f.get("node").is_none()))
    });
    let cell_flap = s["flapping"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["node"] == "n1")
        .unwrap_or_else(|| panic!("the cell flaps too: {s}"));
    assert!(cell_flap["changes"].as_u64().unwrap() >= 4, "{cell_flap}");
    assert_eq!(cell(&s, W1, "n1")["state"], "optimal");

    // The CLI: status shows it, events prints the timeline, the audit trail.
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
            .args(args)
            .args(["--server", url])
            .arg("--token-file")
            .arg(token_file)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let status = cli(&["status"]);
    assert!(
        status.contains("Flapping:") && status.contains("FLAPPING vmdata"),
        "{status}"
    );
    let timeline = cli(&["events", "--wwid", W1, "--health"]);
    assert!(
        timeline.contains(&format!("LUN vmdata ({W1}): degraded -> failed")),
        "{timeline}"
    );
    assert!(
        timeline.contains(&format!(
            "LUN vmdata ({W1}) on n1: failed 0/4 -> optimal 4/4"
        )),
        "{timeline}"
    );
    let audit = cli(&["events", "--config"]);
    assert!(
        audit.contains("multipath-config changed by token:"),
        "{audit}"
    );
    // Metrics: the flapping series and the recorder's counter.
    let metrics = ureq::get(&format!("{url}/metrics"))
        .set("Authorization", &common::auth_header(url).unwrap())
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "mpcluster_flapping_since_timestamp_seconds{{wwid=\"{W1}\",node=\"\"}}"
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_two_servers_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(dir.path());
    let root = dir.path().join("root");
    make_root(&root);
    let spec = format!("embedded:{}", dir.path().join("store").display());
    let mut a = agent_args(&sim, &root);
    a.extend(["--store".into(), spec.clone()]);
    a.extend(FLAP.map(String::from));
    let (one, url1) = start_serve("serve1", &a);
    let token_file = one.token_file.clone().unwrap();
    let credential = std::fs::read_to_string(&token_file).unwrap();
    let mut b: Vec<String> = vec![
        "--store".into(),
        spec.clone(),
        "--no-agent".into(),
        "--node".into(),
        "n1".into(),
    ];
    b.extend(FLAP.map(String::from));
    let (_two, url2) = start_serve("serve2", &b);
    set_token(&url2, &credential);
    let urls = [url1.clone(), url2];
    tokio::task::block_in_place(|| timeline(&sim, &urls, &token_file));

    // The CLI against the store directly: the same history; `--follow` prints what comes.
    let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args([
            "events", "--store", &spec, "--format", "json", "--limit", "10000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let direct: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let via_api = tokio::task::block_in_place(|| events(&url1, "limit=10000"));
    assert_eq!(direct.len(), via_api.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_leader_killed_no_gap_no_repeat() {
    if require_etcd("etcd_leader_killed_no_gap_no_repeat").is_none() {
        return;
    }
    let etcd = EtcdServer::start().await.unwrap();
    let spec = etcd.spec("events").to_string();
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(dir.path());
    let root = dir.path().join("root");
    make_root(&root);
    let mut agent = vec![
        "agent".to_owned(),
        "--store".into(),
        spec.clone(),
        "--member-ttl".into(),
        "3".into(),
    ];
    agent.extend(agent_args(&sim, &root));
    let _agent = Proc::mpcluster("agent", &agent);
    let mut s: Vec<String> = vec!["--store".into(), spec.clone()];
    s.extend(FLAP.map(String::from));
    let (mut one, url1) = start_serve("serve1", &s);
    let token_file = one.token_file.clone().unwrap();
    let credential = std::fs::read_to_string(&token_file).unwrap();
    let (mut two, url2) = start_serve("serve2", &s);
    set_token(&url2, &credential);
    let urls = [url1.clone(), url2.clone()];
    tokio::task::block_in_place(|| timeline(&sim, &urls, &token_file));

    // Kill the recording server with -9; change the LUN; the other one takes over (lease
    // 15 s) and records the change exactly once.
    let store = mpcluster_store::open(
        &etcd.spec("events"),
        &mpcluster_store::StoreOptions::default(),
    )
    .await
    .unwrap();
    let lease = mpcluster_config::events::leader(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    let (leader, survivor_url) = if lease.holder.ends_with(&format!(":{}", one.child.id())) {
        (&mut one, url2.clone())
    } else {
        assert!(
            lease.holder.ends_with(&format!(":{}", two.child.id())),
            "{lease:?}"
        );
        (&mut two, url1.clone())
    };
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let before = tokio::task::block_in_place(|| w1_lines(&survivor_url)).len();
    sim.update(|st| {
        for p in &mut st.maps[0].paths {
            p.up = false;
        }
    });
    let started = Instant::now();
    tokio::task::block_in_place(|| {
        wait_status(&survivor_url, "failed", WAIT, |s| {
            row_state(s, W1) == "failed"
        });
        wait_for("the takeover's events", Duration::from_secs(40), || {
            w1_lines(&survivor_url).len() > before
        })
    });
    eprintln!(
        "change recorded by the new leader after {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3));
    let lines = tokio::task::block_in_place(|| w1_lines(&survivor_url));
    assert_eq!(
        lines[before..],
        [
            "lun * optimal -> failed",
            "cell n1 optimal 4/4 -> failed 0/4"
        ],
        "{lines:#?}"
    );
    tokio::task::block_in_place(|| assert_consecutive(&survivor_url));
}
