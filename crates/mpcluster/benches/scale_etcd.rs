//! Scale on etcd (issue 16; method and numbers: docs/PERFORMANCE.md, "Scale on etcd").
//!
//! `cargo bench -p mpcluster --bench scale_etcd -- NODES [FLIPS] [LOAD_SECS]`
//! (`scripts/bench-scale.sh` runs 64, 128 and 256 nodes in a release build).
//!
//! - One real etcd member (the test harness's `EtcdServer`, data on disk in a temp dir).
//! - Configuration: a 4096-WWID allow-list, a multipath storage on every node and one LVM
//!   storage per LUN naming the nodes that carry it, so every node is expected to carry
//!   exactly its 300 LUNs (node `i` carries LUNs `i * 4096 / N ..` + 300, wrapping).
//! - NODES agents in this process, each the real agent loop (`mpcluster_agent::run::run`) with
//!   its own store client (own etcd connection, membership lease and watch), collecting every
//!   2 s over the real multipathd socket protocol from its own fake multipathd
//!   (`FakeMultipathd`) whose replies are rendered from a simulated node (`SimState`: 300 maps
//!   x 2 FC paths, `show maps json` and the raw paths format as multipathd 0.9.4 prints them).
//!   Not simulated: collection, parsing, summarizing, the budgeted broadcast and the store
//!   writes. Simulated: multipathd itself (pre-rendered replies) and sysfs (one shared tree
//!   with the map sizes).
//! - The real `mpcluster serve --no-agent` as a separate process (its CPU and RSS from
//!   /proc/PID).
//!
//! Measured: detection (a path of one node's map fails or comes back: time until the status
//! API shows the cell's new state, polled every 20 ms), etcd writes per second (etcd's own
//! metrics), server recomputations (its `/metrics` histogram) with the server's CPU and RSS,
//! and the status API's latency at 64 concurrent clients.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{auth_header, start_serve, wait_status};
use mpcluster_agent::client::MultipathdClient;
use mpcluster_agent::run::{AgentConfig, run};
use mpcluster_agent::sim::{SimMap, SimState};
use mpcluster_agent::{FakeHandle, FakeMultipathd};
use mpcluster_core::multipathd::{SHOW_MAPS_JSON, SHOW_PATHS_RAW};
use mpcluster_core::snapshot::doc_names;
use mpcluster_store::testing::{EtcdServer, require_etcd};
use mpcluster_store::{Expect, StoreOptions};
use serde_json::json;

const LUNS: usize = 4096;
const PER_NODE: usize = 300;
const PATHS: u32 = 2;
const INTERVAL: Duration = Duration::from_secs(2);
const SIZE: u64 = 100 << 30;

fn wwid(lun: usize) -> String {
    format!("3600a098038303053453f4630{lun:08x}")
}

fn node_name(i: usize) -> String {
    format!("n{i:03}")
}

/// The LUNs node `i` of `n` carries.
fn luns_of(i: usize, n: usize) -> Vec<usize> {
    (0..PER_NODE).map(|k| (i * (LUNS / n) + k) % LUNS).collect()
}

fn node_state(i: usize, n: usize) -> SimState {
    let maps = luns_of(i, n)
        .into_iter()
        .enumerate()
        .map(|(k, lun)| {
            let k = k as u32;
            SimMap::new(&wwid(lun), k, SIZE, PATHS, "scsi:fcp", k * PATHS)
        })
        .collect();
    SimState {
        maps,
        ..SimState::default()
    }
}

struct SimAgent {
    state: SimState,
    fake: FakeHandle,
}

impl SimAgent {
    fn render(&self) {
        self.fake.set_reply(SHOW_MAPS_JSON, self.state.maps_json());
        self.fake.set_reply(SHOW_PATHS_RAW, self.state.paths_raw());
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `(VmRSS KiB, VmHWM KiB, utime+stime ticks)` of a process.
fn proc_stat(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (field("VmRSS:"), field("VmHWM:"), ticks)
}

/// Answers other than 200 (the server answers 503 while it cannot read the store).
static FAILED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// GET with the server's token and `Accept-Encoding: gzip`; the body decompressed. Failed
/// answers are counted ([`FAILED`]) and retried after 20 ms.
fn get_text(url: &str) -> String {
    let resp = loop {
        let mut req = ureq::get(url)
            .timeout(Duration::from_secs(60))
            .set("Accept-Encoding", "gzip");
        if let Some(auth) = auth_header(url) {
            req = req.set("Authorization", &auth);
        }
        match req.call() {
            Ok(resp) => break resp,
            Err(e) => {
                if FAILED
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    .is_multiple_of(50)
                {
                    eprintln!("GET {url}: {e}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let gzip = resp.header("content-encoding") == Some("gzip");
    let mut out = String::new();
    if gzip {
        flate2::read::GzDecoder::new(resp.into_reader())
            .read_to_string(&mut out)
            .unwrap();
    } else {
        resp.into_reader().read_to_string(&mut out).unwrap();
    }
    out
}

/// The state of `node`'s cell in the row of `wwid`, found in the status body's text (parsing
/// a multi-MiB body as JSON on every poll would cost more than the server's own work).
fn cell_state(body: &str, wwid: &str, node: &str) -> Option<String> {
    let row = body.find(&format!("\"wwid\":\"{wwid}\""))?;
    let needle = format!("\"{node}\":{{\"state\":\"");
    let at = row + body[row..].find(&needle)? + needle.len();
    let end = at + body[at..].find('"')?;
    Some(body[at..end].to_owned())
}

/// Sum of the values of every series named `name` (any labels) in a Prometheus text.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// etcd's write counters: `(puts + txns + deletes, raft proposals committed)`.
fn etcd_writes(etcd_url: &str) -> (f64, f64) {
    let text = ureq::get(&format!("{etcd_url}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    (
        metric_sum(&text, "etcd_mvcc_put_total")
            + metric_sum(&text, "etcd_mvcc_txn_total")
            + metric_sum(&text, "etcd_mvcc_delete_total"),
        metric_sum(&text, "etcd_server_proposals_committed_total"),
    )
}

/// The server's recomputation histogram: `(sum seconds, count)`.
fn recompute(url: &str) -> (f64, f64) {
    let text = get_text(&format!("{url}/metrics"));
    let name = "mpcluster_status_recompute_duration_seconds";
    (
        metric_sum(&text, &format!("{name}_sum")),
        metric_sum(&text, &format!("{name}_count")),
    )
}

/// The PID of the etcd listening on `url`'s port (from its command line).
fn etcd_pid(url: &str) -> Option<u32> {
    let port = url.rsplit(':').next().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("etcd") && c.contains(&format!("127.0.0.1:{port}\0"))
            })
        })
}

async fn write_config(store: &dyn mpcluster_store::ClusterStore, n: usize) {
    let wwids: serde_json::Map<String, serde_json::Value> =
        (0..LUNS).map(|l| (wwid(l), json!({}))).collect();
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({ "wwids": wwids }).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    let mut carriers: Vec<Vec<String>> = vec![Vec::new(); LUNS];
    for i in 0..n {
        for lun in luns_of(i, n) {
            carriers[lun].push(node_name(i));
        }
    }
    let all: Vec<String> = (0..n).map(node_name).collect();
    let mut storages = vec![json!({"type": "multipath", "id": "san", "nodes": all})];
    for (lun, nodes) in carriers.iter().enumerate() {
        storages.push(json!({
            "type": "lvm", "id": format!("vm{lun:04}"), "vgname": format!("vg{lun:04}"),
            "base": format!("san:{}", wwid(lun)), "nodes": nodes,
        }));
    }
    let storage = json!({ "storages": storages }).to_string();
    println!(
        "config: {LUNS} WWIDs allow-listed, {} storages ({} KiB)",
        storages.len(),
        storage.len() / 1024
    );
    store
        .write_doc(doc_names::STORAGE, &storage, Expect::Any)
        .await
        .unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(64);
    let flips = args.get(1).copied().unwrap_or(20);
    let load_secs = args.get(2).copied().unwrap_or(10) as u64;
    if require_etcd("scale_etcd").is_none() {
        return;
    }
    let etcd = EtcdServer::start_cluster(1).await.unwrap();
    let etcd_url = etcd.client_url(0);
    let etcd_pid = etcd_pid(&etcd_url);
    let spec = etcd.spec("scale");
    let store = mpcluster_store::open(&spec, &StoreOptions::default())
        .await
        .unwrap();
    write_config(store.as_ref(), n).await;

    let dir = tempfile::tempdir().unwrap();
    let sysfs = dir.path().join("sys");
    node_state(0, n).write_sysfs(&sysfs).unwrap();
    let mut sims = Vec::new();
    for i in 0..n {
        let fake = FakeMultipathd::start(dir.path().join(format!("{i}.sock"))).unwrap();
        let sim = SimAgent {
            state: node_state(i, n),
            fake,
        };
        sim.render();
        sims.push(sim);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let mut agents = Vec::new();
    for (i, sim) in sims.iter().enumerate() {
        let store = mpcluster_store::open(&spec, &StoreOptions::default())
            .await
            .unwrap();
        let client = MultipathdClient::new(sim.fake.socket_spec(), Duration::from_secs(10));
        let config = AgentConfig {
            interval: INTERVAL,
            sysfs_root: sysfs.clone(),
            apply_root: None,
            parser_check: false,
            uevents: None,
            ..AgentConfig::new(node_name(i).parse().unwrap())
        };
        let mut stop = stop_rx.clone();
        agents.push(tokio::spawn(run(store, client, config, async move {
            let _ = stop.changed().await;
        })));
        // Spread the agents' ticks over the interval, as independent hosts would be.
        tokio::time::sleep(INTERVAL / n as u32).await;
    }
    println!(
        "{n} agents started in {:.1?} ({LUNS} LUNs, {PER_NODE} maps x {PATHS} paths per node, {} s interval)",
        started.elapsed(),
        INTERVAL.as_secs()
    );

    let (server, url) = start_serve(
        "serve",
        &["--no-agent".into(), "--store".into(), spec.to_string()],
    );
    let pid = server.child.id();
    let status_url = format!("{url}/api2/json/cluster/multipath/status");
    let t_fill = Instant::now();
    tokio::task::block_in_place(|| {
        wait_status(&url, "every cell optimal", Duration::from_secs(600), |s| {
            let luns = s["luns"].as_array();
            luns.is_some_and(|l| l.len() == LUNS)
                && luns
                    .unwrap()
                    .iter()
                    .flat_map(|l| l["nodes"].as_object().into_iter().flat_map(|o| o.values()))
                    .filter(|c| c["state"] == "optimal")
                    .count()
                    == n * PER_NODE
        })
    });
    let body_len = tokio::task::block_in_place(|| get_text(&status_url).len());
    println!(
        "server filled in {:.1?}: {} cells, status body {:.1} MiB",
        t_fill.elapsed(),
        n * PER_NODE,
        body_len as f64 / (1 << 20) as f64
    );

    // Steady state: writes, recomputations, server CPU and RSS over a quiet window.
    // 70 s: every agent republishes its unchanged broadcast and detail once a minute
    // (`DEFAULT_REFRESH`), so the window holds one such wave.
    let window = Duration::from_secs(70);
    let (r_sum0, r_cnt0) = tokio::task::block_in_place(|| recompute(&url));
    let (w0, p0) = tokio::task::block_in_place(|| etcd_writes(&etcd_url));
    let (_, _, ticks0) = proc_stat(pid);
    let t0 = Instant::now();
    let mut peak_rss = 0;
    while t0.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak_rss = peak_rss.max(proc_stat(pid).0);
    }
    let (_, _, ticks1) = proc_stat(pid);
    let wall = t0.elapsed().as_secs_f64();
    let (w1, p1) = tokio::task::block_in_place(|| etcd_writes(&etcd_url));
    let (r_sum1, r_cnt1) = tokio::task::block_in_place(|| recompute(&url));
    let recomputes = r_cnt1 - r_cnt0;
    let cpu = (ticks1 - ticks0) as f64 / 100.0;
    let (etcd_rss, _, etcd_ticks) = etcd_pid.map_or((0, 0, 0), proc_stat);
    println!(
        "steady {wall:.0} s: etcd writes {:.1}/s (raft proposals {:.1}/s), etcd process CPU so far {:.0} s, RSS {:.0} MiB; {recomputes} recomputations ({:.2}/s), mean {:.1} ms; server CPU {:.1}% of a core, {:.1} ms CPU per recomputation; server RSS peak {:.1} MiB",
        (w1 - w0) / wall,
        (p1 - p0) / wall,
        etcd_ticks as f64 / 100.0,
        etcd_rss as f64 / 1024.0,
        recomputes / wall,
        1000.0 * (r_sum1 - r_sum0) / recomputes.max(1.0),
        100.0 * cpu / wall,
        1000.0 * cpu / recomputes.max(1.0),
        peak_rss as f64 / 1024.0,
    );

    // Detection: fail (even flips) and restore (odd flips) a path of one node's map.
    let mut samples = Vec::new();
    let (r_sum0, r_cnt0) = tokio::task::block_in_place(|| recompute(&url));
    for f in 0..flips {
        let node = (f / 2 * 37 + 5) % n;
        let k = (f / 2 * 13) % PER_NODE;
        let down = f % 2 == 0;
        let want = if down { "degraded" } else { "optimal" };
        let w = sims[node].state.maps[k].wwid.clone();
        let name = node_name(node);
        // A varying phase of the agents' interval.
        tokio::time::sleep(Duration::from_millis(500 + 293 * (f as u64 % 7))).await;
        sims[node].state.maps[k].paths[0].up = !down;
        sims[node].render();
        let t = Instant::now();
        loop {
            let body = tokio::task::block_in_place(|| get_text(&status_url));
            if cell_state(&body, &w, &name).as_deref() == Some(want) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "flip {f} ({name} {w} {want}) not seen: {:?}",
                cell_state(&body, &w, &name)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        samples.push(t.elapsed());
    }
    let (r_sum1, r_cnt1) = tokio::task::block_in_place(|| recompute(&url));
    let detect = samples.clone();
    samples.sort();
    println!(
        "detection ({} changes, {} s interval): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; samples ms: {:?}; recomputations meanwhile mean {:.1} ms",
        samples.len(),
        INTERVAL.as_secs(),
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.95).as_secs_f64() * 1000.0,
        samples[samples.len() - 1].as_secs_f64() * 1000.0,
        detect.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
        1000.0 * (r_sum1 - r_sum0) / (r_cnt1 - r_cnt0).max(1.0),
    );

    // The status API at 64 concurrent clients (gzip accepted; the compressed body is read,
    // not decompressed: the server's side).
    let clients = 64;
    let duration = Duration::from_secs(load_secs);
    let all: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
    let (_, _, ticks0) = proc_stat(pid);
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let all = all.clone();
            let status_url = status_url.clone();
            let auth = auth_header(&status_url).unwrap();
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
                    std::io::copy(&mut resp.into_reader(), &mut std::io::sink()).unwrap();
                    mine.push(t0.elapsed());
                }
                all.lock().unwrap().extend(mine);
            })
        })
        .collect();
    tokio::task::block_in_place(|| {
        for t in threads {
            t.join().unwrap();
        }
    });
    let elapsed = start.elapsed();
    let (rss, hwm, ticks1) = proc_stat(pid);
    let mut samples = std::mem::take(&mut *all.lock().unwrap());
    samples.sort();
    println!(
        "status API, {clients} clients, {:.0?}: {} requests, {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server CPU {:.0}% of a core; server RSS {:.1} MiB (peak {:.1} MiB)",
        elapsed,
        samples.len(),
        samples.len() as f64 / elapsed.as_secs_f64(),
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.99).as_secs_f64() * 1000.0,
        samples[samples.len() - 1].as_secs_f64() * 1000.0,
        100.0 * (ticks1 - ticks0) as f64 / 100.0 / elapsed.as_secs_f64(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );

    println!(
        "status requests answered other than 200 (retried) during the run: {}",
        FAILED.load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = stop_tx.send(true);
    for a in agents {
        let _ = tokio::time::timeout(Duration::from_secs(5), a).await;
    }
    drop(server);
    drop(sims);
    drop(etcd);
}
