//! Runtime measurements of the real binary (method and numbers: docs/PERFORMANCE.md).
//!
//! `cargo bench -p mpcluster --bench runtime -- [latency] [load] [agent]` (all by default):
//! - `latency`: 3 agents on a 3-member etcd (loopback), 1 s agent interval; a simulated
//!   multipathd flips a path; time until the status API shows it; p50/p95 over 50 flips.
//! - `load`: `mpcluster serve` on an embedded store filled by 64 simulated nodes x 1024 LUNs;
//!   64 concurrent clients for 10 s against the status endpoint (gzip accepted and
//!   decompressed by the client): requests/s, p50, p99.
//! - `agent`: one agent at a 1 s interval over 256 maps x 4 paths for 30 s: peak RSS and CPU
//!   per tick.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Proc, cell, get_json, make_root, start_serve, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_core::payload::encode_broadcast;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_core::synthetic::{SyntheticSpec, synthetic_snapshot};
use mpcluster_store::testing::EtcdServer;
use mpcluster_store::{Expect, StoreOptions, StoreSpec};

const W1: &str = "3600a098038303053453f463045727a01";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn latency() {
    let etcd = EtcdServer::start_cluster(3).await.unwrap();
    let spec = etcd.spec("bench").to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut sims = Vec::new();
    let mut agents = Vec::new();
    for name in ["n1", "n2", "n3"] {
        let sim = SimNode::start(
            &dir.path().join(format!("{name}.sock")),
            &dir.path().join(format!("{name}-sys")),
            SimState {
                maps: vec![SimMap::new(W1, 0, 1 << 30, 4, "scsi:iscsi", 0)],
                ..SimState::default()
            },
        )
        .unwrap();
        let root = dir.path().join(format!("{name}-root"));
        make_root(&root);
        let args: Vec<String> = [
            "agent",
            "--store",
            &spec,
            "--node",
            name,
            "--interval",
            "1",
            "--no-apply",
            "--multipathd-socket",
            &sim.socket_spec().to_string(),
            "--sysfs-root",
            &sim.sysfs_root().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        agents.push(Proc::mpcluster(name, &args));
        sims.push(sim);
    }
    let (_server, url) = start_serve("serve", &["--store".into(), spec.clone()]);
    tokio::task::block_in_place(|| {
        wait_status(&url, "healthy", Duration::from_secs(30), |s| {
            ["n1", "n2", "n3"]
                .iter()
                .all(|n| cell(s, W1, n)["state"] == "optimal")
        })
    });
    let mut samples = Vec::new();
    for i in 0..50 {
        let node = i % 3;
        let down = (i / 3) % 2 == 0;
        let want = if down { "degraded" } else { "optimal" };
        let name = ["n1", "n2", "n3"][node];
        // Flip at a random phase of the agent's interval.
        tokio::time::sleep(Duration::from_millis(137 * (i as u64 % 7))).await;
        let t0 = Instant::now();
        sims[node].update(|s| s.maps[0].paths[0].up = !down);
        loop {
            let (_, body) = tokio::task::block_in_place(|| {
                get_json(&format!("{url}/api2/json/cluster/multipath/status"))
            });
            if cell(&body["data"], W1, name)["state"] == want {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "flip {i} not detected"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        samples.push(t0.elapsed());
    }
    samples.sort();
    println!(
        "latency (3 agents, etcd, 1 s interval, {} flips): p50 {:?}, p95 {:?}, max {:?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        samples[samples.len() - 1]
    );
    drop(agents);
}

async fn load() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let spec = StoreSpec::Embedded {
        dir: Some(store_dir.clone()),
    };
    let store = mpcluster_store::open(&spec, &StoreOptions::default())
        .await
        .unwrap();
    let snap = synthetic_snapshot(SyntheticSpec {
        offline_pct: 0,
        stale_pct: 0,
        now: mpcluster_config::unix_now(),
        ..SyntheticSpec::new(64, 1024)
    });
    let wwids: serde_json::Map<String, serde_json::Value> = snap
        .config
        .wwids
        .iter()
        .map(|w| (w.to_string(), serde_json::json!({})))
        .collect();
    store
        .write_doc(
            doc_names::CONFIG,
            &serde_json::json!({"wwids": wwids}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    let mut truncated = 0;
    for (node, raw) in &snap.kv.multipath {
        let decoded = mpcluster_core::broadcast::decode(raw).unwrap();
        let enc = encode_broadcast(mpcluster_config::unix_now(), &decoded.broadcast.maps);
        truncated += enc.truncated;
        store
            .put(kv_keys::HEALTH, node, Some(&enc.value))
            .await
            .unwrap();
    }
    let (_server, url) = start_serve(
        "serve",
        &[
            "--no-agent".into(),
            "--store".into(),
            format!("embedded:{}", store_dir.display()),
        ],
    );
    let status_url = format!("{url}/api2/json/cluster/multipath/status");
    let body_len = tokio::task::block_in_place(|| {
        let s = wait_status(&url, "filled", Duration::from_secs(60), |s| {
            s["luns"].as_array().is_some_and(|l| l.len() == 1024)
        });
        serde_json::to_vec(&s).unwrap().len()
    });
    let clients = 64;
    let duration = Duration::from_secs(10);
    let all: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let all = all.clone();
            let status_url = status_url.clone();
            let auth = common::auth_header(&status_url).unwrap();
            let raw = std::env::var_os("MPCLUSTER_BENCH_RAW").is_some();
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let mut mine = Vec::new();
                while start.elapsed() < duration {
                    let t0 = Instant::now();
                    let resp = agent
                        .get(&status_url)
                        .set("Authorization", &auth)
                        .set("Accept-Encoding", "gzip")
                        .call()
                        .unwrap();
                    // Decompress as a browser would: the client's work is part of the time.
                    // MPCLUSTER_BENCH_RAW=1 skips it, to see the server's side alone.
                    let gzip = resp.header("content-encoding") == Some("gzip") && !raw;
                    let mut sink = Vec::new();
                    if gzip {
                        std::io::copy(
                            &mut flate2::read::GzDecoder::new(resp.into_reader()),
                            &mut sink,
                        )
                        .unwrap();
                    } else {
                        std::io::copy(&mut resp.into_reader(), &mut sink).unwrap();
                    }
                    mine.push(t0.elapsed());
                }
                all.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed();
    let mut samples = std::mem::take(&mut *all.lock().unwrap());
    samples.sort();
    println!(
        "load (64 nodes x 1024 LUNs, {} maps dropped by the 32 KiB budget, body {} KiB, {clients} clients, {:?}): {} requests, {:.0} req/s, p50 {:?}, p99 {:?}",
        truncated,
        body_len / 1024,
        elapsed,
        samples.len(),
        samples.len() as f64 / elapsed.as_secs_f64(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
}

fn proc_stat(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (rss_kib, ticks)
}

async fn agent() {
    let dir = tempfile::tempdir().unwrap();
    let maps: Vec<SimMap> = (0..256)
        .map(|i| {
            SimMap::new(
                &format!("3600a0980383030534{:015x}", i),
                i,
                (u64::from(i) + 1) << 30,
                4,
                "scsi:iscsi",
                i * 4,
            )
        })
        .collect();
    let sim = SimNode::start(
        &dir.path().join("mpd.sock"),
        &dir.path().join("sys"),
        SimState {
            maps,
            ..SimState::default()
        },
    )
    .unwrap();
    let args: Vec<String> = [
        "agent",
        "--store",
        &format!("embedded:{}", dir.path().join("store").display()),
        "--node",
        "n1",
        "--interval",
        "1",
        "--no-apply",
        "--multipathd-socket",
        &sim.socket_spec().to_string(),
        "--sysfs-root",
        &sim.sysfs_root().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let proc = Proc::mpcluster("agent", &args);
    let pid = proc.child.id();
    tokio::time::sleep(Duration::from_secs(3)).await; // warm up
    let (_, ticks0) = proc_stat(pid);
    let t0 = Instant::now();
    let mut peak = 0;
    let secs = 30;
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak = peak.max(proc_stat(pid).0);
    }
    let (_, ticks1) = proc_stat(pid);
    let clk = 100.0; // USER_HZ on Linux
    let cpu = (ticks1 - ticks0) as f64 / clk;
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "agent (256 maps x 4 paths, 1 s interval, {secs} s): peak RSS {:.1} MiB, CPU {:.2}% of a core, {:.1} ms CPU per tick",
        peak as f64 / 1024.0,
        100.0 * cpu / wall,
        1000.0 * cpu / wall
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    if want("agent") {
        agent().await;
    }
    if want("load") {
        load().await;
    }
    if want("latency") {
        latency().await;
    }
}
