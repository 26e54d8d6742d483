//! Prometheus metrics end to end: the real `mpcluster serve` (embedded store, its in-process
//! agent over a simulated multipathd, a second node's stale broadcast in the store) scraped
//! over HTTP; the scrape checked by `promtool check metrics`; the shipped alert rules
//! (`contrib/prometheus`) checked and unit-tested by `promtool`; the Grafana dashboard
//! (`contrib/grafana`) parsed, its queries checked by `promtool` too; every metric the rules
//! and the dashboard use is one the server exports.
//!
//! promtool comes from the Debian package `prometheus` (scripts/test.sh installs it). Without
//! it the promtool parts are skipped, saying so, except under `CI=true`, where that fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{auth_header, make_root, start_serve};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_core::NodeName;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};
use serde_json::{Value, json};

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const WAIT: Duration = Duration::from_secs(30);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn unix_now() -> i64 {
    mpcluster_config::unix_now()
}

/// promtool, or `None` (after saying why) when it is not installed; under CI that fails.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !mpcluster_testkit::under_ci(),
            "promtool is required under CI (Debian package prometheus; scripts/test.sh installs it)"
        );
        eprintln!("SKIPPED (the promtool checks): no promtool in PATH (Debian package prometheus)");
    }
    found
}

/// Run promtool with `args`, `stdin` piped in; (success, stdout + stderr).
fn run_promtool(promtool: &Path, args: &[&str], stdin: &[u8]) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// GET `url`: (HTTP status, Content-Type, body); `auth` as the `Authorization` header.
fn get(url: &str, auth: Option<&str>) -> (u16, String, String) {
    let mut req = ureq::get(url).timeout(Duration::from_secs(10));
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    match req.call() {
        Ok(r) => (
            r.status(),
            r.content_type().to_owned(),
            r.into_string().unwrap(),
        ),
        Err(ureq::Error::Status(code, r)) => (
            code,
            r.content_type().to_owned(),
            r.into_string().unwrap_or_default(),
        ),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// The samples of a scrape: `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap_or(f64::INFINITY))
        })
        .collect()
}

/// The metric names a scrape holds: its families and their sample names.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            out.insert(rest.split(' ').next().unwrap().to_owned());
        } else if !l.starts_with('#') && !l.is_empty() {
            out.insert(l.split(['{', ' ']).next().unwrap().to_owned());
        }
    }
    out
}

/// Every `mpcluster_...` name in `text`.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("mpcluster_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// Every query of the dashboard, with Grafana's variables replaced by values.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push(
                t["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "5m")
                    .replace("$instance", "pve1:8470"),
            );
        }
    }
    out
}

fn dashboard() -> Value {
    let path = repo_root().join("contrib/grafana/mpcluster.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Put a stale broadcast (an hour old) and an apply error for `node2`, an alias for W2.
async fn seed(store_dir: &Path) {
    let store = EmbeddedStore::open(store_dir, EmbeddedOptions::default())
        .await
        .unwrap();
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"wwids": {W1: {}, W2: {"alias": "db"}}}).to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    let node2 = NodeName::new("node2").unwrap();
    let old = unix_now() - 3600;
    store
        .put(
            kv_keys::HEALTH,
            &node2,
            Some(
                &json!({"time": old, "maps": {W1: {"state": "optimal", "paths-active": 4, "paths-total": 4}}})
                    .to_string(),
            ),
        )
        .await
        .unwrap();
    store
        .put(
            kv_keys::APPLY,
            &node2,
            Some(&json!({"error": "cannot write /etc/multipath/conf.d", "time": old}).to_string()),
        )
        .await
        .unwrap();
}

/// Scrape `url` until `pred` holds; the last text.
fn scrape_until(url: &str, auth: Option<&str>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, _, body) = get(url, auth);
        if code == 200 && pred(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last answer: HTTP {code}\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_of_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut maps = vec![
        SimMap::new(W1, 0, 1 << 30, 4, "scsi:iscsi", 0),
        SimMap::new(W2, 1, 2 << 30, 2, "scsi:fcp", 4),
    ];
    maps[1].paths[0].up = false;
    let sim = SimNode::start(
        &dir.path().join("multipathd.sock"),
        &dir.path().join("sys"),
        SimState {
            maps,
            ..SimState::default()
        },
    )
    .unwrap();
    let store_dir = dir.path().join("store");
    seed(&store_dir).await;
    let root = dir.path().join("root");
    make_root(&root);
    let store_arg = format!("embedded:{}", store_dir.display());
    let args: Vec<String> = vec![
        "--node".into(),
        "node1".into(),
        "--interval".into(),
        "0.2".into(),
        "--store".into(),
        store_arg.clone(),
        "--multipathd-socket".into(),
        sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        sim.sysfs_root().display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    let (_server, url) = start_serve("serve", &args);
    let metrics = format!("{url}/metrics");
    let token = auth_header(&url).unwrap();

    // Without a token: 401. The admin token has Sys.Audit.
    let (code, _, body) = tokio::task::block_in_place(|| get(&metrics, None));
    assert_eq!(code, 401, "{body}");
    let degraded = format!(
        "mpcluster_lun_node_state{{wwid=\"{W2}\",alias=\"db\",node=\"node1\",state=\"degraded\"}} 1"
    );
    let text = tokio::task::block_in_place(|| {
        scrape_until(&metrics, Some(&token), "W2 degraded on node1", |t| {
            t.lines().any(|l| l == degraded)
        })
    });
    let (code, content_type, _) = tokio::task::block_in_place(|| get(&metrics, Some(&token)));
    assert_eq!(code, 200);
    assert_eq!(content_type, "text/plain");

    let s = samples(&text);
    let v = |series: &str| {
        *s.get(series)
            .unwrap_or_else(|| panic!("no {series} in the scrape:\n{text}"))
    };
    let w1 = format!("wwid=\"{W1}\"");
    let w2 = format!("wwid=\"{W2}\",alias=\"db\"");
    // The degraded LUN: its roll-up, its cell on node1, the path counts.
    assert_eq!(
        v(&format!("mpcluster_lun_state{{{w2},state=\"degraded\"}}")),
        1.0
    );
    assert_eq!(
        v(&format!("mpcluster_lun_state{{{w2},state=\"optimal\"}}")),
        0.0
    );
    assert_eq!(
        v(&format!(
            "mpcluster_lun_node_paths_active{{{w2},node=\"node1\"}}"
        )),
        1.0
    );
    assert_eq!(
        v(&format!("mpcluster_lun_node_paths{{{w2},node=\"node1\"}}")),
        2.0
    );
    assert_eq!(
        v(&format!("mpcluster_lun_state{{{w1},state=\"optimal\"}}")),
        1.0
    );
    assert_eq!(
        v(&format!(
            "mpcluster_lun_node_paths_active{{{w1},node=\"node1\"}}"
        )),
        4.0
    );
    // The offline node: its cell unknown, no path counts, its age, its apply error.
    assert_eq!(v("mpcluster_node_online{node=\"node1\"}"), 1.0);
    assert_eq!(v("mpcluster_node_online{node=\"node2\"}"), 0.0);
    assert_eq!(
        v(&format!(
            "mpcluster_lun_node_state{{{w1},node=\"node2\",state=\"unknown\"}}"
        )),
        1.0
    );
    assert!(!s.contains_key(&format!(
        "mpcluster_lun_node_paths_active{{{w1},node=\"node2\"}}"
    )));
    let age = v("mpcluster_node_last_broadcast_age_seconds{node=\"node2\"}");
    assert!((3600.0..3700.0).contains(&age), "{age}");
    assert!(v("mpcluster_node_last_broadcast_age_seconds{node=\"node1\"}") < 60.0);
    assert_eq!(v("mpcluster_node_apply_error{node=\"node2\"}"), 1.0);
    assert_eq!(v("mpcluster_node_collect_error{node=\"node1\"}"), 0.0);
    // The server's own: it recomputed, and its store requests (the agent's too) were measured.
    assert_eq!(v("mpcluster_status_refresh_error"), 0.0);
    assert!(v("mpcluster_status_recompute_duration_seconds_count") >= 1.0);
    assert!(v("mpcluster_store_request_duration_seconds_count{operation=\"put\"}") >= 1.0);
    assert!(v("mpcluster_store_request_duration_seconds_count{operation=\"read_doc\"}") >= 1.0);
    assert!(
        v("mpcluster_http_requests_total{route=\"/metrics\",method=\"GET\",code=\"401\"}") >= 1.0
    );

    // gzip for Prometheus (it asks for it).
    let gz = tokio::task::block_in_place(|| {
        let resp = ureq::get(&metrics)
            .set("Authorization", &token)
            .set("Accept-Encoding", "gzip")
            .call()
            .unwrap();
        assert_eq!(resp.header("content-encoding"), Some("gzip"));
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(resp.into_reader()),
            &mut text,
        )
        .unwrap();
        text
    });
    assert!(gz.lines().any(|l| l == degraded), "{gz}");

    // What the alert rules and the dashboard use is exported.
    let exported = names(&text);
    let rules = std::fs::read_to_string(repo_root().join("contrib/prometheus/alerts.yml")).unwrap();
    let queries = dashboard_queries(&dashboard()).join("\n");
    for (what, used) in [
        ("alerts.yml", referenced(&rules)),
        ("mpcluster.json", referenced(&queries)),
    ] {
        assert!(!used.is_empty());
        for name in used {
            assert!(
                exported.contains(&name),
                "{what} uses {name}, which /metrics does not export"
            );
        }
    }

    // promtool parses the real scrape and finds nothing to lint.
    if let Some(promtool) = promtool() {
        let (ok, out) = run_promtool(&promtool, &["check", "metrics"], text.as_bytes());
        assert!(
            ok && out.trim().is_empty(),
            "promtool check metrics:\n{out}"
        );
    }

    // Another server on the same store, `metrics-public` from a settings file: /metrics
    // without a token, everything else still needs one.
    let settings = dir.path().join("mpcluster.toml");
    std::fs::write(&settings, "metrics-public = true\nno-agent = true\n").unwrap();
    let (_public, public_url) = start_serve(
        "serve-public",
        &[
            "--config".into(),
            settings.display().to_string(),
            "--store".into(),
            store_arg,
            "--node".into(),
            "node1".into(),
        ],
    );
    let text = tokio::task::block_in_place(|| {
        scrape_until(
            &format!("{public_url}/metrics"),
            None,
            "the public scrape",
            |t| t.lines().any(|l| l == degraded),
        )
    });
    assert!(text.contains("mpcluster_node_online{node=\"node2\"} 0"));
    let (code, _, _) = tokio::task::block_in_place(|| {
        get(
            &format!("{public_url}/api2/json/cluster/multipath/status"),
            None,
        )
    });
    assert_eq!(code, 401);
}

#[test]
fn promtool_checks_and_tests_the_alert_rules() {
    let Some(promtool) = promtool() else { return };
    let dir = repo_root().join("contrib/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(&promtool)
        .args(["check", "rules", "alerts.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("4 rules found"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn grafana_dashboard_is_valid() {
    let d = dashboard();
    // Importable with a data source chosen on import.
    let inputs = d["__inputs"].as_array().unwrap();
    assert!(inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
        && i["type"] == "datasource"
        && i["pluginId"] == "prometheus"));
    assert_eq!(d["uid"], "mpcluster");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 30);
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "{title}: id repeated"
        );
        kinds.insert(p["type"].as_str().unwrap().to_owned());
        for k in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            assert!(!t["expr"].as_str().unwrap().is_empty(), "{title}");
        }
    }
    // The matrix, states over time, nodes.
    for k in ["table", "state-timeline", "timeseries"] {
        assert!(kinds.contains(k), "no {k} panel");
    }
    let titles: Vec<&str> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"LUN x node matrix"), "{titles:?}");

    // Every query is valid PromQL: promtool checks them as recording rules.
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rules: Vec<Value> = dashboard_queries(&d)
        .into_iter()
        .enumerate()
        .map(|(i, expr)| json!({"record": format!("mpcluster:dashboard_query:{i}"), "expr": expr}))
        .collect();
    let file = dir.path().join("dashboard-queries.yml");
    // JSON is YAML.
    std::fs::write(
        &file,
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let (ok, out) = run_promtool(&promtool, &["check", "rules", file.to_str().unwrap()], b"");
    assert!(
        ok,
        "promtool check rules on the dashboard's queries:\n{out}"
    );
}
