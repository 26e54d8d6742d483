//! The web UI in a real browser: headless Chromium over WebDriver (fantoccini + chromedriver)
//! against the real `mpcluster serve` binary with the embedded store, and `mpcluster agent`
//! processes reading simulated multipathds (mpcluster_agent::sim) and applying the
//! configuration into temporary roots.
//!
//! Screenshots of every page go to `target/ui-screenshots/`. With
//! `MPCLUSTER_UPDATE_DOCS_SCREENSHOT=1`, the README's screenshots are also written to
//! `docs/screenshots/`: the health matrix of the known scenario (`health-matrix.png`), a
//! target-side hint (`hints.png`) and a pre-flight answer (`preflight.png`). The event
//! history's (`events.png`: the recent-events panel and flapping markers; `timeline.png`: a
//! LUN's timeline) come from 16 minutes of `mpcluster demo`, in the ignored test
//! `event_screenshots_of_the_demo` (`-- --ignored event_screenshots`).
//!
//! Without chromium/chromedriver the tests print why and skip, except under CI=true, where that
//! fails them.
#![allow(clippy::unwrap_used)]

mod common;
mod ui_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Proc, cell, make_root, row_state};
use fantoccini::{Client, Locator};
use mpcluster_agent::sim::{SIM_PORTALS, SimMap, SimNode, SimState};
use mpcluster_core::config::{BASELINE_PATH, CONF_DIR};
use mpcluster_core::snapshot::doc_names;
use mpcluster_store::{Expect, StoreOptions, StoreSpec};
use serde_json::{Value, json};
use ui_support::{
    READ_MATRIX, Server, browser, click, click_css, js, open_ui, screenshot, start_server, text_of,
    type_into, value_of, wait_js, wait_js_for, wait_text,
};

const W_VM: &str = "3600a098038303053453f463045727a01";
const W_DB: &str = "3600a098038303053453f463045727a02";
const W_BK: &str = "3600a098038303053453f463045727a03";
const W_CT: &str = "3600a098038303053453f463045727a04";
const W_AR: &str = "3600a098038303053453f463045727a05";
const W_HAND: &str = "36001405d1c0ffee0000000000000042";
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// A small cluster: embedded store, one agent process per simulated node, the real server.

struct Node {
    name: String,
    sim: SimNode,
    root: PathBuf,
    agent: Option<Proc>,
}

struct Cluster {
    nodes: Vec<Node>,
    server: Server,
    _dir: tempfile::TempDir,
}

fn agent_args(store: &Path, n: &Node) -> Vec<String> {
    vec![
        "agent".into(),
        "--store".into(),
        format!("embedded:{}", store.display()),
        "--node".into(),
        n.name.clone(),
        "--interval".into(),
        "0.3".into(),
        "--refresh".into(),
        "1".into(),
        "--multipathd-socket".into(),
        n.sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        n.sim.sysfs_root().display().to_string(),
        "--root".into(),
        n.root.display().to_string(),
    ]
}

/// `maps`: (wwid, name, paths, protocol, size in GiB).
fn sim_state(maps: &[(&str, &str, u32, &str, u64)]) -> SimState {
    let mut first_sd = 0;
    let maps = maps
        .iter()
        .enumerate()
        .map(|(i, (wwid, name, paths, proto, gib))| {
            let mut m = SimMap::new(wwid, i as u32, gib << 30, *paths, proto, first_sd);
            first_sd += paths;
            if !name.is_empty() {
                m.name = (*name).to_owned();
            }
            m
        })
        .collect();
    SimState {
        maps,
        ..SimState::default()
    }
}

/// Write the configuration and storage documents, start one simulated node + agent per
/// `nodes` entry (`prepare` may change a node's root before its agent starts) and the server.
async fn start_cluster(
    config: Value,
    storage: Value,
    nodes: Vec<(&str, SimState)>,
    prepare: impl Fn(&str, &Path),
) -> Cluster {
    start_cluster_with(config, storage, nodes, prepare, &[]).await
}

/// [`start_cluster`] with more `serve` arguments.
async fn start_cluster_with(
    config: Value,
    storage: Value,
    nodes: Vec<(&str, SimState)>,
    prepare: impl Fn(&str, &Path),
    serve_args: &[&str],
) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = mpcluster_store::open(
        &StoreSpec::Embedded {
            dir: Some(store_dir.clone()),
        },
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    store
        .write_doc(doc_names::CONFIG, &config.to_string(), Expect::Any)
        .await
        .unwrap();
    store
        .write_doc(doc_names::STORAGE, &storage.to_string(), Expect::Any)
        .await
        .unwrap();
    let mut out = Vec::new();
    for (name, state) in nodes {
        let sim = SimNode::start(
            &dir.path().join(format!("{name}.sock")),
            &dir.path().join(format!("{name}-sys")),
            state,
        )
        .unwrap();
        let root = dir.path().join(format!("{name}-root"));
        make_root(&root);
        prepare(name, &root);
        let mut node = Node {
            name: name.to_owned(),
            sim,
            root,
            agent: None,
        };
        node.agent = Some(Proc::mpcluster(name, &agent_args(&store_dir, &node)));
        out.push(node);
    }
    let mut args: Vec<String> = vec!["--no-agent".into(), "--stale-after".into(), "4".into()];
    args.extend(serve_args.iter().map(|a| (*a).to_owned()));
    let server = tokio::task::block_in_place(|| start_server(&store_dir, &args));
    Cluster {
        nodes: out,
        server,
        _dir: dir,
    }
}

impl Cluster {
    fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) {
        tokio::task::block_in_place(|| self.server.wait_status(what, WAIT, pred));
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }
}

fn read_file(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_default()
}

async fn wait_for(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The demo-like scenario: five nodes, six LUNs, every state at once.
async fn known_scenario() -> Cluster {
    let all = ["n1", "n2", "n3", "n4", "n5"];
    let config = json!({
        "defaults": {"polling-interval": 5, "no-path-retry": 12},
        "wwids": {
            W_VM: {"alias": "vm-disks"}, W_DB: {"alias": "db-fc"}, W_BK: {"alias": "backup"},
            W_CT: {"alias": "ct-store"}, W_AR: {"alias": "archive"},
        }
    });
    let storage = json!({"storages": [
        {"type": "multipath", "id": "san", "nodes": all},
        {"type": "lvm", "id": "vmdata", "vgname": "vmdata", "base": format!("san:{W_VM}")},
        {"type": "lvm", "id": "dbdata", "vgname": "dbdata", "base": format!("san:{W_DB}")},
        {"type": "lvm", "id": "ctdata", "vgname": "ctdata", "base": format!("san:{W_CT}")},
    ]});
    let base = |with_db: bool, hand: bool| {
        let mut m = vec![
            (W_VM, "vm-disks", 4, "scsi:iscsi", 2048),
            (W_BK, "backup", 2, "scsi:iscsi", 8192),
            (W_CT, "ct-store", 4, "scsi:iscsi", 1024),
            (W_AR, "archive", 2, "scsi:sas", 16384),
        ];
        if with_db {
            m.push((W_DB, "db-fc", 2, "scsi:fcp", 500));
        }
        if hand {
            m.push((W_HAND, "", 1, "scsi:sas", 100));
        }
        sim_state(&m)
    };
    let mut n2 = base(true, false);
    for p in &mut n2.maps.iter_mut().find(|m| m.wwid == W_BK).unwrap().paths {
        p.up = false;
    }
    let mut n3 = base(true, false);
    n3.maps.iter_mut().find(|m| m.wwid == W_VM).unwrap().paths[1].up = false;
    let nodes = vec![
        ("n1", base(true, true)),
        ("n2", n2),
        ("n3", n3),
        ("n4", base(false, false)),
        ("n5", base(true, false)),
    ];
    // n1 cannot apply the configuration: its conf.d is a file.
    let mut cluster = start_cluster(config, storage, nodes, |name, root| {
        if name == "n1" {
            let conf_d = root.join(CONF_DIR);
            std::fs::create_dir_all(conf_d.parent().unwrap()).unwrap();
            std::fs::write(&conf_d, "not a directory").unwrap();
        }
    })
    .await;
    cluster.wait_status("every node reporting", |s| {
        all.iter().all(|n| !cell(s, W_VM, n).is_null())
            && cell(s, W_BK, "n2")["state"] == "failed"
            && cell(s, W_VM, "n3")["state"] == "degraded"
            && s["nodes"]["n1"]["apply-error"].is_string()
    });
    // n5 crashes: its last broadcast goes stale and its cells read unknown.
    let n5 = cluster.nodes.iter_mut().find(|n| n.name == "n5").unwrap();
    n5.agent.take();
    cluster.wait_status("n5 stale", |s| cell(s, W_VM, "n5")["state"] == "unknown");
    cluster
}

/// A row of the expected matrix: (wwid, cluster state, [(node, state, text)]).
type ExpectedRow = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str, &'static str)>,
);

/// What the known scenario's matrix must show.
fn expected_matrix() -> Vec<ExpectedRow> {
    let ok4 = ("optimal", "4/4");
    let ok2 = ("optimal", "2/2");
    let row = |cells: [(&'static str, &'static str); 5]| {
        ["n1", "n2", "n3", "n4", "n5"]
            .iter()
            .zip(cells)
            .map(|(n, (s, t))| (*n, s, t))
            .collect::<Vec<_>>()
    };
    let unknown = ("unknown", "");
    vec![
        (
            W_BK,
            "failed",
            row([ok2, ("failed", "0/2"), ok2, ok2, unknown]),
        ),
        (
            W_DB,
            "missing",
            row([ok2, ok2, ok2, ("missing", ""), unknown]),
        ),
        (
            W_VM,
            "degraded",
            row([ok4, ok4, ("degraded", "3/4"), ok4, unknown]),
        ),
        (W_AR, "optimal", row([ok2, ok2, ok2, ok2, unknown])),
        (W_CT, "optimal", row([ok4, ok4, ok4, ok4, unknown])),
        (W_HAND, "optimal", vec![("n1", "optimal", "1/1")]),
    ]
}

/// With `MPCLUSTER_UPDATE_DOCS_SCREENSHOT=1`: the page at 1360 x `height` as
/// `docs/screenshots/<name>.png`, for the README.
async fn docs_screenshot(c: &Client, name: &str, height: u32) {
    if !std::env::var("MPCLUSTER_UPDATE_DOCS_SCREENSHOT").is_ok_and(|v| v == "1") {
        return;
    }
    c.set_window_size(1360, height).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let png = c.screenshot().await.unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join(format!("{name}.png")), png).unwrap();
    c.set_window_size(1400, 900).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// The WWIDs of the matrix rows, in the order shown.
async fn rows(c: &Client) -> Value {
    js(
        c,
        "return [...document.querySelectorAll('#matrix tbody tr.row')].map(r => r.dataset.wwid)",
    )
    .await
}

/// The real server on an empty store, without agents (for pages with an intercepted API).
fn lone_server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = tokio::task::block_in_place(|| {
        start_server(&dir.path().join("store"), &["--no-agent".into()])
    });
    (dir, server)
}

/// Open the node list and take over the API calls of the page ([`INTERCEPT`]).
async fn intercept(c: &Client, server: &Server) {
    server.open(c, "#/nodes").await;
    js(c, INTERCEPT).await;
}

/// The API path of one allow-list entry.
fn wwid_path(wwid: &str) -> String {
    format!("/api2/json/cluster/multipath/wwids/{wwid}")
}

/// The allow-list, read through the API, does not hold `wwid`.
fn assert_not_listed(server: &Server, wwid: &str, why: &str) {
    let list = server.get("/api2/json/cluster/multipath/wwids");
    assert!(!list["wwids"].to_string().contains(wwid), "{why}: {list}");
}

/// Each `(input id, value, why)`: the input holds that value.
async fn assert_values(c: &Client, expected: &[(&str, &str, &str)]) {
    for (id, want, why) in expected {
        assert_eq!(value_of(c, id).await, *want, "{id}: {why}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The known scenario: every cell of the matrix shows the state the API computes, with its
/// path counts; rows are worst first; the banner lists the offline node and the apply error;
/// sorting, the filter (WWID / alias / node) and "problems only" work; the node view
/// highlights failed paths. Screenshots: health matrix, node view, node list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_matrix_shows_the_state_of_every_cell() {
    let Some(b) = browser("health_matrix_shows_the_state_of_every_cell").await else {
        return;
    };
    let c = &b.client;
    let cluster = known_scenario().await;
    let api_status = cluster.server.get("/api2/json/cluster/multipath/status");

    cluster.server.open(c, "#/health").await;
    wait_js(
        c,
        "const t = document.getElementById('matrix'); return t && t.dataset.renderMs && \
         document.querySelectorAll('#matrix tbody tr.row').length === 6 && \
         [...document.querySelectorAll('#matrix td.cell[data-node=n5]')].every(td => td.dataset.state === 'unknown' || td.dataset.state === 'none') && \
         document.querySelector('#matrix tr[data-wwid] td.cell[data-node=n5][data-state=unknown]')",
        "the matrix with n5 unknown",
    )
    .await;
    let page = js(c, READ_MATRIX).await;
    let order = rows(c).await;
    eprintln!("page matrix: {page:#}");

    // Every cell as expected, and as the API says.
    for (wwid, row_state_page, cells) in expected_matrix() {
        let row = &page[wwid];
        assert_eq!(row["state"], row_state_page, "{wwid}: {row}");
        assert_eq!(row_state(&api_status, wwid), row_state_page, "API {wwid}");
        let shown = row["cells"].as_object().unwrap();
        for (node, state, text) in &cells {
            let cell_page = &row["cells"][node];
            assert_eq!(cell_page["state"], *state, "{wwid} on {node}: {cell_page}");
            assert_eq!(
                cell(&api_status, wwid, node)["state"],
                *state,
                "API {wwid} {node}"
            );
            let t = cell_page["text"].as_str().unwrap();
            assert!(
                t.contains(text),
                "{wwid} on {node}: text {t:?} lacks {text:?}"
            );
            assert!(
                t.contains(state),
                "{wwid} on {node}: the state is also written: {t:?}"
            );
        }
        for (node, v) in shown {
            if !cells.iter().any(|(n, _, _)| n == node) {
                assert_eq!(v["state"], "none", "{wwid} on {node} is not present: {v}");
            }
        }
    }
    // Hover titles carry the transport and the node's broadcast time.
    let title = page[W_VM]["cells"]["n3"]["title"].as_str().unwrap();
    for part in [
        "3 of 4 paths active",
        "transport: iscsi",
        "last broadcast: ",
    ] {
        assert!(title.contains(part), "{part}: {title}");
    }
    for (wwid, column, want) in [
        (W_VM, "alias", "vm-disks"),
        (W_VM, "used", "vmdata"),
        (W_VM, "size", "2 TiB"),
        (W_DB, "size", "500 GiB"),
    ] {
        assert_eq!(page[wwid][column], want, "{wwid} {column}");
    }
    // Worst first: failed, missing, degraded, then the optimal ones.
    assert_eq!(
        order.as_array().unwrap()[..3],
        [json!(W_BK), json!(W_DB), json!(W_VM)]
    );

    // The banner: n5 offline, n1's apply error with its message and time.
    let offline = text_of(c, "offline-banner").await;
    assert!(
        offline.contains("n5") && offline.contains("last broadcast"),
        "{offline}"
    );
    let errors = text_of(c, "error-banner").await;
    assert!(
        errors.contains("n1") && errors.contains("apply failed at"),
        "{errors}"
    );
    let msg = api_status["nodes"]["n1"]["apply-error"].as_str().unwrap();
    assert!(
        errors.contains(msg),
        "the banner shows the message: {errors} / {msg}"
    );
    assert!(
        text_of(c, "stale-banner").await.is_empty(),
        "no stale banner"
    );

    // Legend counts, readable without colour.
    let legend = text_of(c, "legend").await;
    assert!(
        legend.contains("failed 1") && legend.contains("optimal 3"),
        "{legend}"
    );

    // The hint engine's config-drift hint about n1's failed apply: a banner with the API's
    // sentence, and n1's column header marked (the hint names a node, no LUN); no cell marked.
    let drift = api_status["hints"]
        .as_array()
        .and_then(|l| l.iter().find(|h| h["kind"] == "config-drift"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(drift["nodes"], json!(["n1"]), "{api_status}");
    let shown = js(
        c,
        "const b = document.querySelector('#hint-banners .banner[data-kind=\"config-drift\"]');
         const th = (n) => document.querySelector(`#matrix thead th[data-node=${n}]`);
         return { msg: b && b.querySelector('.msg').textContent, nodes: b && b.querySelector('.hint-nodes').textContent,
                  n1: th('n1').dataset.hint || null, title: th('n1').title, n2: th('n2').dataset.hint || null,
                  cells: document.querySelectorAll('#matrix td.cell.hinted').length };",
    )
    .await;
    assert_eq!(shown["msg"], drift["message"], "{shown}");
    assert!(shown["nodes"].as_str().unwrap().contains("n1"), "{shown}");
    assert_eq!(
        shown["n1"], drift["severity"],
        "n1's column marked: {shown}"
    );
    assert!(
        shown["title"]
            .as_str()
            .unwrap()
            .contains(drift["message"].as_str().unwrap()),
        "{shown}"
    );
    assert_eq!(shown["n2"], Value::Null, "{shown}");
    assert_eq!(shown["cells"], 0, "{shown}");

    let shot = screenshot(c, "health-matrix").await;
    docs_screenshot(c, "health-matrix", 780).await;
    assert!(shot.is_file());

    // Sorting: WWID ascending, then descending; aria-sort follows.
    click_css(c, "th.col-wwid button.sort").await;
    let asc = rows(c).await;
    let mut sorted: Vec<String> = asc
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    sorted.sort();
    assert_eq!(asc, json!(sorted));
    let th = c.find(Locator::Css("thead th.col-wwid")).await.unwrap();
    assert_eq!(
        th.attr("aria-sort").await.unwrap().as_deref(),
        Some("ascending")
    );
    click_css(c, "th.col-wwid button.sort").await;
    sorted.reverse();
    assert_eq!(rows(c).await, json!(sorted));
    // Sort by a node column: n2's failed cell first.
    click_css(c, "th[data-node=n2] button.sort").await;
    assert_eq!(rows(c).await[0], W_BK);
    click(c, "sort-reset").await;
    assert_eq!(rows(c).await[0], W_BK);

    // Filter by node: only that column, only LUNs there.
    type_into(c, "filter", "n4").await;
    let cols = js(
        c,
        "return [...document.querySelectorAll('#matrix thead th.col-node')].map(t => t.dataset.node)",
    )
    .await;
    assert_eq!(cols, json!(["n4"]));
    assert_eq!(rows(c).await.as_array().unwrap().len(), 5);
    // By alias, and by WWID.
    for (filter, only) in [("backup", W_BK), ("d1c0ffee", W_HAND)] {
        type_into(c, "filter", filter).await;
        assert_eq!(rows(c).await, json!([only]), "filter {filter}");
    }
    c.find(Locator::Id("filter"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    js(
        c,
        "const f = document.getElementById('filter'); f.dispatchEvent(new Event('input'));",
    )
    .await;
    assert_eq!(rows(c).await.as_array().unwrap().len(), 6);
    // Problems only.
    click(c, "problems").await;
    assert_eq!(rows(c).await, json!([W_BK, W_DB, W_VM]));
    click(c, "problems").await;

    // Node view: n2's backup map has both paths failed and highlighted.
    click_css(c, "th[data-node=n2] a.node-link").await;
    wait_js(
        c,
        &format!("return document.querySelectorAll('section.map[data-wwid=\"{W_BK}\"] tr.path.failed').length === 2"),
        "n2's failed paths",
    )
    .await;
    let healthy = js(
        c,
        &format!(
            "return document.querySelectorAll('section.map[data-wwid=\"{W_VM}\"] tr.path').length"
        ),
    )
    .await;
    assert_eq!(healthy, 4);
    let failed_text = js(
        c,
        &format!("return document.querySelector('section.map[data-wwid=\"{W_BK}\"] tr.path.failed').textContent"),
    )
    .await;
    let t = failed_text.as_str().unwrap();
    assert!(
        t.contains("failed") && t.contains("faulty") && t.contains("offline"),
        "{t}"
    );
    screenshot(c, "node-view").await;

    // Node list.
    cluster.server.open(c, "#/nodes").await;
    wait_js(
        c,
        "return document.querySelectorAll('#nodes-table tbody tr').length === 5",
        "the node list",
    )
    .await;
    let n5 = text_of(c, "nodes-table").await;
    assert!(n5.contains("offline"), "{n5}");
    screenshot(c, "nodes").await;
    drop(cluster);
    b.close().await;
}

/// A path failing in a fake multipathd shows in the open page without a reload; the scroll
/// position, the filter, the sort and the focus stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_path_shows_without_reload_keeping_scroll_and_filter() {
    let Some(b) = browser("failing_path_shows_without_reload_keeping_scroll_and_filter").await
    else {
        return;
    };
    let c = &b.client;
    let wwids: Vec<String> = (0..40)
        .map(|i| format!("3600a098038303053453f4630457{i:05x}"))
        .collect();
    let maps: Vec<(&str, &str, u32, &str, u64)> = wwids
        .iter()
        .map(|w| (w.as_str(), "", 2, "scsi:iscsi", 64))
        .collect();
    let cluster = start_cluster(
        json!({"wwids": {}}),
        json!({"storages": []}),
        vec![("n1", sim_state(&maps)), ("n2", sim_state(&maps))],
        |_, _| {},
    )
    .await;
    cluster.wait_status("40 LUNs on both nodes", |s| {
        s["luns"].as_array().is_some_and(|l| {
            l.len() == 40 && l.iter().all(|r| r["nodes"]["n2"]["state"] == "optimal")
        })
    });
    c.set_window_size(1200, 700).await.unwrap();
    cluster.server.open(c, "#/health").await;
    wait_js(
        c,
        "return document.querySelectorAll('#matrix tbody tr.row').length > 10",
        "the matrix",
    )
    .await;
    // Sort by WWID (rows then do not move when a state changes), filter, scroll, focus.
    click_css(c, "th.col-wwid button.sort").await;
    type_into(c, "filter", "3600a0980383030").await;
    let before = js(
        c,
        "window.__marker = 42;
         const s = document.getElementById('matrix-scroll');
         s.scrollTop = 420;
         return new Promise(r => requestAnimationFrame(() => setTimeout(() => {
           const box = s.getBoundingClientRect();
           const el = document.elementFromPoint(box.left + 20, box.top + box.height / 2);
           const tr = el && el.closest('tr.row');
           document.getElementById('filter').focus();
           r({ top: s.scrollTop, wwid: tr ? tr.dataset.wwid : null,
               updates: Number(document.getElementById('matrix').dataset.updates || 0) });
         }, 50)));",
    )
    .await;
    let target = before["wwid"].as_str().unwrap().to_owned();
    assert!(before["top"].as_f64().unwrap() > 300.0, "{before}");
    let idx = wwids.iter().position(|w| *w == target).unwrap();
    assert!(idx > 5, "a row below the first screen: {idx}");

    cluster
        .node("n2")
        .sim
        .update(|s| s.maps[idx].paths[0].up = false);
    let script = format!(
        "const td = document.querySelector('#matrix tr[data-wwid=\"{target}\"] td.cell[data-node=n2]');
         return td && td.dataset.state === 'degraded' ? td.textContent : null;"
    );
    let text = wait_js(c, &script, "the degraded cell in the open page").await;
    assert!(text.as_str().unwrap().contains("1/2"), "{text}");
    let after = js(
        c,
        "const s = document.getElementById('matrix-scroll');
         return { marker: window.__marker, top: s.scrollTop,
                  filter: document.getElementById('filter').value,
                  focus: document.activeElement && document.activeElement.id,
                  sorted: document.querySelector('thead th.col-wwid').getAttribute('aria-sort'),
                  updates: Number(document.getElementById('matrix').dataset.updates || 0),
                  updateMs: document.getElementById('matrix').dataset.updateMs };",
    )
    .await;
    eprintln!("after the failure: {after}");
    for (key, want, why) in [
        ("marker", json!(42), "the page was not reloaded"),
        ("top", before["top"].clone(), "scroll position kept"),
        ("filter", json!("3600a0980383030"), "filter kept"),
        ("focus", json!("filter"), "focus kept"),
        ("sorted", json!("ascending"), "sort kept"),
    ] {
        assert_eq!(after[key], want, "{why}");
    }
    assert!(after["updates"].as_u64().unwrap() > before["updates"].as_u64().unwrap());
    // The rest of the row is untouched.
    let other = js(
        c,
        &format!("return document.querySelector('#matrix tr[data-wwid=\"{target}\"] td.cell[data-node=n1]').dataset.state"),
    )
    .await;
    assert_eq!(other, "optimal");
    screenshot(c, "health-matrix-live-update").await;
    b.close().await;
}

/// Two nodes; the allow-list holds W_VM; both nodes also report W_HAND, which it lacks.
async fn config_cluster() -> Cluster {
    let maps = [
        (W_VM, "vm-disks", 2, "scsi:iscsi", 2048),
        (W_HAND, "", 2, "scsi:iscsi", 100),
    ];
    let cluster = start_cluster(
        json!({"defaults": {"polling-interval": 5}, "wwids": {W_VM: {"alias": "vm-disks"}}}),
        json!({"storages": [{"type": "multipath", "id": "san"}]}),
        vec![("n1", sim_state(&maps)), ("n2", sim_state(&maps))],
        |_, _| {},
    )
    .await;
    cluster.wait_status("both nodes report", |s| {
        !cell(s, W_HAND, "n1").is_null() && !cell(s, W_HAND, "n2").is_null()
    });
    cluster
}

async fn open_config(c: &Client, server: &Server) {
    server.open(c, "#/config").await;
    wait_js(
        c,
        "return document.getElementById('wwid-form') && document.getElementById('defaults-form')",
        "the configuration page",
    )
    .await;
}

/// Adding a WWID with an alias in the editor, picked from what the nodes report, reaches the
/// store (read back through the API) and every agent (its drop-in in the node's root); edit
/// and remove (with confirmation) work too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_listing_a_wwid_reaches_the_store_and_the_agents() {
    let Some(b) = browser("allow_listing_a_wwid_reaches_the_store_and_the_agents").await else {
        return;
    };
    let c = &b.client;
    let cluster = config_cluster().await;
    open_config(c, &cluster.server).await;
    // The suggestion: W_HAND, reported by the nodes, not on the list.
    let sugg = wait_js(
        c,
        &format!("const b = document.querySelector('button.suggestion[data-wwid=\"{W_HAND}\"]'); return b ? b.closest('li').textContent : null;"),
        "the suggested WWID",
    )
    .await;
    assert!(sugg.as_str().unwrap().contains("n1, n2"), "{sugg}");
    let listed = js(
        c,
        &format!("return !!document.querySelector('button.suggestion[data-wwid=\"{W_VM}\"]')"),
    )
    .await;
    assert_eq!(listed, false, "listed WWIDs are not suggested");
    let options = js(
        c,
        "return [...document.querySelectorAll('#wwid-suggestions option')].map(o => o.value)",
    )
    .await;
    assert_eq!(options, json!([W_HAND]));
    click_css(c, &format!("button.suggestion[data-wwid=\"{W_HAND}\"]")).await;
    assert_eq!(value_of(c, "wwid-wwid").await, W_HAND);
    type_into(c, "wwid-alias", "scratch").await;
    // A per-LUN knob too.
    click_css(c, "#wwid-knobs summary").await;
    c.find(Locator::Id("wwid-no-path-retry"))
        .await
        .unwrap()
        .select_by_value("queue")
        .await
        .unwrap();
    screenshot(c, "config-adding").await;
    click(c, "wwid-submit").await;
    wait_text(c, "wwid-msg", "Added", "the add to succeed").await;

    // In the store, through the API.
    let list = cluster.server.get("/api2/json/cluster/multipath/wwids");
    let entry = list["wwids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["wwid"] == W_HAND)
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(entry["alias"], "scratch", "{list}");
    assert_eq!(entry["no-path-retry"], "queue", "{list}");
    // In the table, and no longer suggested.
    wait_js(
        c,
        &format!("return document.querySelector('#wwid-table tr[data-wwid=\"{W_HAND}\"] td.alias')?.textContent === 'scratch' && !document.querySelector('button.suggestion[data-wwid=\"{W_HAND}\"]')"),
        "the new row",
    )
    .await;
    // On every node: the agent wrote the alias into its drop-in.
    for n in &cluster.nodes {
        wait_for(&format!("the alias in {}'s drop-in", n.name), || {
            read_file(&n.root, BASELINE_PATH).contains("alias scratch")
        })
        .await;
    }
    screenshot(c, "config").await;

    // Edit: change the alias.
    click_css(
        c,
        &format!("#wwid-table tr[data-wwid=\"{W_HAND}\"] button[data-action=edit]"),
    )
    .await;
    assert_eq!(
        text_of(c, "wwid-form-title").await,
        format!("Edit {W_HAND}")
    );
    type_into(c, "wwid-alias", "scratch2").await;
    click(c, "wwid-submit").await;
    wait_js(
        c,
        &format!("return document.querySelector('#wwid-table tr[data-wwid=\"{W_HAND}\"] td.alias')?.textContent === 'scratch2'"),
        "the edited alias",
    )
    .await;
    let entry_path = wwid_path(W_HAND);
    assert_eq!(cluster.server.get(&entry_path)["alias"], "scratch2");

    // Remove: the dialog asks first; Cancel keeps the entry.
    let remove = format!("#wwid-table tr[data-wwid=\"{W_HAND}\"] button[data-action=remove]");
    click_css(c, &remove).await;
    let open = js(c, "return document.getElementById('confirm-dialog').open").await;
    assert_eq!(open, true);
    assert!(text_of(c, "confirm-text").await.contains("scratch2"));
    screenshot(c, "config-remove-confirmation").await;
    click(c, "confirm-no").await;
    let (code, _) = cluster.server.call("GET", &entry_path, None);
    assert_eq!(code, 200, "cancel keeps the entry");
    click_css(c, &remove).await;
    click(c, "confirm-yes").await;
    wait_js(
        c,
        &format!("return !document.querySelector('#wwid-table tr[data-wwid=\"{W_HAND}\"]')"),
        "the removed row",
    )
    .await;
    let (code, _) = cluster.server.call("GET", &entry_path, None);
    assert_eq!(code, 404, "removed from the store");
    b.close().await;
}

/// A concurrent edit makes the save lose the digest race: the page says "changed meanwhile —
/// reload", everything typed is still there, and after Reload the save succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edit_shows_the_conflict_and_keeps_the_input() {
    let Some(b) = browser("concurrent_edit_shows_the_conflict_and_keeps_the_input").await else {
        return;
    };
    let c = &b.client;
    let cluster = config_cluster().await;
    open_config(c, &cluster.server).await;
    type_into(c, "wwid-wwid", W_HAND).await;
    type_into(c, "wwid-alias", "typed-alias").await;
    type_into(c, "defaults-polling-interval", "9").await;

    // Someone else changes the configuration meanwhile.
    let (code, body) = cluster.server.call(
        "PUT",
        "/api2/json/cluster/multipath/config",
        Some(json!({"no-path-retry": "queue"})),
    );
    assert_eq!(code, 200, "{body}");

    click(c, "wwid-submit").await;
    let msg = wait_text(c, "wwid-msg", "changed meanwhile", "the conflict message").await;
    assert!(msg.contains("reload"), "{msg}");
    assert_values(
        c,
        &[
            ("wwid-wwid", W_HAND, "typed WWID kept"),
            ("wwid-alias", "typed-alias", "typed alias kept"),
            ("defaults-polling-interval", "9", "other forms kept"),
        ],
    )
    .await;
    // The defaults form loses the same race.
    click(c, "defaults-save").await;
    wait_text(
        c,
        "defaults-msg",
        "changed meanwhile",
        "the defaults conflict",
    )
    .await;
    assert_values(c, &[("defaults-polling-interval", "9", "typed value kept")]).await;
    screenshot(c, "config-conflict").await;
    assert_not_listed(&cluster.server, W_HAND, "nothing written");

    // Reload: the other writer's change shows in untouched fields, typed input stays.
    click_css(c, "#wwid-msg button.reload").await;
    wait_text(c, "wwid-msg", "Reloaded", "the reload").await;
    assert_values(
        c,
        &[
            ("wwid-alias", "typed-alias", "typed alias kept"),
            ("defaults-polling-interval", "9", "typed value kept"),
            ("defaults-no-path-retry", "queue", "fresh value"),
        ],
    )
    .await;
    click(c, "wwid-submit").await;
    wait_text(c, "wwid-msg", "Added", "the retried add").await;
    click(c, "defaults-save").await;
    wait_text(c, "defaults-msg", "saved", "the retried save").await;
    let cfg = cluster.server.get("/api2/json/cluster/multipath/config");
    assert_eq!(cfg["defaults"]["polling-interval"], 9);
    assert_eq!(
        cfg["defaults"]["no-path-retry"], "queue",
        "the other change kept"
    );
    let e = cluster.server.get(&wwid_path(W_HAND));
    assert_eq!(e["alias"], "typed-alias");
    b.close().await;
}

/// A form the API refuses: the `request` the API gets, the API's `field` that it names, and
/// the page's `inputs` (typed), `submit` (clicked) and `input` (the one whose `<input>-error`
/// shows the message).
struct Refusal {
    request: (&'static str, &'static str, Value),
    field: &'static str,
    inputs: Vec<(&'static str, &'static str)>,
    submit: &'static str,
    input: &'static str,
}

impl Refusal {
    /// The API refuses the request (HTTP 400) with a message for the field; the page, given
    /// the same input, shows exactly that message next to the input.
    async fn is_shown(&self, c: &Client, server: &Server) {
        let input = self.input;
        let (method, path, body) = &self.request;
        let (code, api) = server.call(method, path, Some(body.clone()));
        assert_eq!(code, 400, "{api}");
        let api_msg = api["errors"][self.field].as_str().unwrap().to_owned();
        for (id, text) in &self.inputs {
            type_into(c, id, text).await;
        }
        click(c, self.submit).await;
        let shown = wait_js(
            c,
            &format!("return document.getElementById('{input}-error').textContent"),
            &format!("the error of {}", self.field),
        )
        .await;
        assert_eq!(shown, json!(api_msg));
    }
}

/// A bad alias (and an out-of-range knob) are refused by the API; the page shows the API's
/// own field messages next to the fields, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_alias_shows_the_api_field_error_next_to_the_field() {
    let Some(b) = browser("bad_alias_shows_the_api_field_error_next_to_the_field").await else {
        return;
    };
    let c = &b.client;
    let cluster = config_cluster().await;
    open_config(c, &cluster.server).await;
    let bad_alias = Refusal {
        request: (
            "POST",
            "/api2/json/cluster/multipath/wwids",
            json!({"wwid": W_HAND, "alias": "bad alias"}),
        ),
        field: "alias",
        inputs: vec![("wwid-wwid", W_HAND), ("wwid-alias", "bad alias")],
        submit: "wwid-submit",
        input: "wwid-alias",
    };
    bad_alias.is_shown(c, &cluster.server).await;
    // Next to the field: inside the alias field's box, linked to the input, marked invalid.
    let linked = js(
        c,
        "const i = document.getElementById('wwid-alias');
         const e = document.getElementById('wwid-alias-error');
         return { same: i.closest('.field') === e.closest('.field'),
                  described: (i.getAttribute('aria-describedby') || '').split(' ').includes(e.id),
                  invalid: i.getAttribute('aria-invalid'),
                  wwidError: document.getElementById('wwid-wwid-error').textContent };",
    )
    .await;
    for (key, want) in [
        ("same", json!(true)),
        ("described", json!(true)),
        ("invalid", json!("true")),
        ("wwidError", json!("")),
    ] {
        assert_eq!(linked[key], want, "{key}: {linked}");
    }
    assert_values(c, &[("wwid-alias", "bad alias", "the input is kept")]).await;
    screenshot(c, "config-field-error").await;

    // A knob out of range: the defaults form shows `defaults.<knob>` next to the knob.
    let bad_knob = Refusal {
        request: (
            "PUT",
            "/api2/json/cluster/multipath/config",
            json!({"polling-interval": 99999}),
        ),
        field: "defaults.polling-interval",
        inputs: vec![("defaults-polling-interval", "99999")],
        submit: "defaults-save",
        input: "defaults-polling-interval",
    };
    bad_knob.is_shown(c, &cluster.server).await;
    assert_not_listed(&cluster.server, W_HAND, "nothing written");
    b.close().await;
}

/// Installs a fetch interceptor: `window.__mp.status()` / `.nodes()` (when set) produce the
/// bodies for those endpoints with HTTP `window.__mp.code`, and while the status is
/// intercepted the event history is too (`.events()`: none); every request's Authorization
/// header is recorded in `window.__mp.seen`.
const INTERCEPT: &str = r#"
if (!window.__mp) {
  window.__mp = { code: 200, seen: [], status: null, nodes: null,
    events: () => ({ data: { events: [], 'last-seq': 0, truncated: false } }) };
  const real = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = String(input);
    const h = (init && init.headers) || {};
    window.__mp.seen.push({ url, auth: h.Authorization || '' });
    const m = window.__mp;
    let body = null;
    if (url.endsWith('/cluster/multipath/status') && m.status) body = m.status();
    else if (url.endsWith('/cluster/nodes') && m.nodes) body = m.nodes();
    else if (url.includes('/cluster/multipath/events') && m.status) body = m.events();
    if (body === null) return real(input, init);
    const code = url.endsWith('/cluster/nodes') && m.nodesCode ? m.nodesCode : m.code;
    return Promise.resolve(new Response(JSON.stringify(body),
      { status: code, headers: { 'Content-Type': 'application/json' } }));
  };
}
return true;
"#;

/// Login and staleness: a 401 sends the page to the login screen with the server's message; a
/// pasted token is kept in sessionStorage and sent as `Authorization: Bearer` on every call;
/// a 503 with the last good status shows it with a "data is stale" banner. Against the real
/// server's tokens when it requires them, and with an intercepted API always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_stale_data() {
    let Some(b) = browser("login_and_stale_data").await else {
        return;
    };
    let c = &b.client;
    let (_dir, server) = lone_server();
    let stored_token = "return sessionStorage.getItem('mpcluster.token')";

    if let Some(token) = &server.token {
        // The real thing: no token -> login with the server's message; a wrong token is
        // refused; the right one opens the page.
        c.goto(&format!("{}/#/health", server.url)).await.unwrap();
        wait_js(c, "return location.hash === '#/login' && document.getElementById('login-message').textContent", "the redirect to login").await;
        type_into(c, "token", "nobody:0123456789abcdef0123456789").await;
        click(c, "login-submit").await;
        wait_text(c, "login-error", "rejected", "the refused token").await;
        type_into(c, "token", token).await;
        click(c, "login-submit").await;
        wait_js(c, "return location.hash === '#/health'", "the login").await;
        assert_eq!(js(c, stored_token).await, json!(token));
        click(c, "logout").await;
        wait_js(c, "return location.hash === '#/login'", "the logout").await;
        assert_eq!(js(c, stored_token).await, Value::Null);
    }

    // Intercepted: start on the node list, take over the API, then open the health page.
    intercept(c, &server).await;
    js(
        c,
        "window.__mp.code = 503;
         window.__mp.status = () => ({ data: { luns: [{ wwid: '3600a098038303053453f463045727a01', alias: '<b>x</b>',
             'cluster-state': 'degraded', nodes: { n1: { state: 'degraded', 'paths-active': 1, 'paths-total': 2 } } }],
             nodes: {}, stale: true },
           message: 'cluster store unavailable: connection refused; showing the last good status' });
         window.__mp.nodes = () => ({ data: [{ node: 'n1', online: true, expected: true }] });
         window.__mp.nodesCode = 200;
         location.hash = '#/health';",
    )
    .await;
    let banner = wait_js(
        c,
        "const b = document.getElementById('stale-banner'); return b && !b.hidden ? b.textContent : null;",
        "the stale banner",
    )
    .await;
    let banner = banner.as_str().unwrap();
    assert!(
        banner.contains("Data is stale: cluster store unavailable: connection refused"),
        "{banner}"
    );
    // The data is still shown (and peer strings are text, not HTML).
    let alias = wait_js(
        c,
        "const r = document.querySelector('#matrix tr.row'); return r ? r.children[1].textContent : null;",
        "the stale row",
    )
    .await;
    assert_eq!(alias, "<b>x</b>");
    screenshot(c, "health-stale").await;

    // A 401 (e.g. the token expired) -> login, with the message.
    js(
        c,
        "window.__mp.code = 401; window.__mp.nodesCode = 401;
         window.__mp.status = () => ({ data: null, message: 'token expired' });
         window.__mp.nodes = () => ({ data: null, message: 'token expired' });",
    )
    .await;
    let shown = wait_js(
        c,
        "const m = document.getElementById('login-message'); return location.hash === '#/login' && m && !m.hidden ? m.textContent : null;",
        "the login screen",
    )
    .await;
    assert_eq!(shown, "token expired");
    screenshot(c, "login").await;
    // Log in again: the token is kept for the tab and sent on every call.
    js(
        c,
        "window.__mp.code = 200; window.__mp.nodesCode = 200; window.__mp.seen = [];
         window.__mp.status = () => ({ data: { luns: [], nodes: {} } });
         window.__mp.nodes = () => ({ data: [] });",
    )
    .await;
    type_into(c, "token", "ui-test:0123456789abcdef0123").await;
    click(c, "login-submit").await;
    wait_js(
        c,
        "return location.hash === '#/health'",
        "back on the health page",
    )
    .await;
    wait_js_for(
        c,
        "return window.__mp.seen.some(s => s.url.endsWith('/cluster/multipath/status'))",
        "a status call",
        Duration::from_secs(10),
    )
    .await;
    let seen = js(c, "return window.__mp.seen").await;
    for s in seen.as_array().unwrap() {
        assert_eq!(s["auth"], "Bearer ui-test:0123456789abcdef0123", "{s}");
    }
    let session = text_of(c, "session").await;
    assert!(
        session.contains("ui-test") && !session.contains("0123456789abcdef"),
        "{session}"
    );
    b.close().await;
}

/// Builds a synthetic status of `N` nodes x `L` LUNs in the page (`window.__perf.status()`);
/// every call after the first changes ~1% of the cells. Its hints are the worst case for the
/// markers: a target-side hint on every LUN of every node, one on a node's column, and one
/// that comes and goes with each call (so the hint index is rebuilt on every update). Every
/// 4th LUN and ten of its cells flap, with counts that change on every call (the flapping
/// index is rebuilt and every flapping row in view is patched on every update).
const SYNTHETIC: &str = r#"
const N = arguments[0], L = arguments[1];
const nodes = Array.from({ length: N }, (_, i) => `node${i + 1}`);
const states = ['optimal', 'degraded', 'failed', 'missing', 'unknown'];
let tick = 0;
const luns = [];
for (let j = 0; j < L; j++) {
  const cells = {};
  for (let i = 0; i < N; i++) {
    if ((i * 7 + j) % 23 === 0) continue; // not every LUN on every node
    cells[nodes[i]] = { state: 'optimal', 'paths-active': 4, 'paths-total': 4, transport: 'iscsi' };
  }
  luns.push({ wwid: '3600a09803830' + j.toString(16).padStart(20, '0'), alias: j % 3 ? `lun-${j}` : undefined,
              'used-by': j % 5 ? `vg${j % 40}` : undefined, size: (j + 1) * 2 ** 30, 'cluster-state': 'optimal', nodes: cells });
}
const rank = { failed: 0, missing: 1, degraded: 2, optimal: 4, unknown: 5 };
function rollup(l) {
  let best = 'optimal';
  for (const c of Object.values(l.nodes)) if (rank[c.state] < rank[best]) best = c.state;
  l['cluster-state'] = best;
}
function mutate() {
  const changes = Math.ceil(N * L / 100);
  for (let k = 0; k < changes; k++) {
    const j = (k * 131 + tick * 977) % L, i = (k * 17 + tick * 7) % N;
    const c = luns[j].nodes[nodes[i]];
    if (!c) continue;
    const s = states[(k + tick) % states.length];
    c.state = s;
    c['paths-active'] = s === 'optimal' ? 4 : (s === 'degraded' ? 2 : (s === 'failed' ? 0 : undefined));
    c['paths-total'] = s === 'missing' || s === 'unknown' ? undefined : 4;
    rollup(luns[j]);
  }
}
const overview = nodes.map((n, i) => ({ node: n, online: i !== N - 1, 'last-broadcast': 1795790000 + i, expected: true, stale: false }));
const everywhere = { id: 'target-side:portal:10.0.0.1:3260', kind: 'target-side', severity: 'warning',
  nodes: nodes.slice(0, N - 1), luns: luns.map(l => l.wwid), since: 1795790000, 'target-port': '10.0.0.1:3260',
  message: `target portal 10.0.0.1:3260 has failed paths on all ${N - 1} nodes: look at the array or its network, not the hosts` };
const drift = { id: 'config-drift:node3:apply-error', kind: 'config-drift', severity: 'warning', nodes: ['node3'],
  luns: [], since: 1795790000, message: 'node3 failed to apply the cluster\'s multipath configuration, so it runs another one: cannot write conf.d' };
const blinking = (t) => ({ id: `size-mismatch:${luns[t % L].wwid}`, kind: 'size-mismatch', severity: 'warning',
  nodes: [nodes[t % N]], luns: [luns[t % L].wwid], since: 1795790000 + t, message: `lun ${t % L} is smaller on ${nodes[t % N]}` });
// Every 4th LUN flaps, and its cells on 10 nodes; the counts grow with each call, so the
// flapping index is rebuilt on every update.
const flapping = (t) => luns.filter((_, j) => j % 4 === 0).flatMap((l) => [
  { wwid: l.wwid, changes: 4 + t, since: 1795790000, last: 1795790000 + t },
  ...Array.from({ length: Math.min(10, N) }, (_, i) => ({ wwid: l.wwid, node: nodes[(i * 5) % N], changes: 4 + t, since: 1795790000, last: 1795790000 + t })),
]);
window.__perf = {
  status() {
    if (tick > 0) mutate();
    tick++;
    const hints = tick % 2 ? [everywhere, drift, blinking(tick)] : [everywhere, drift];
    return { data: { luns, nodes: { node3: { 'apply-error': 'cannot write conf.d', 'apply-time': 1795790000 } }, hints,
      flapping: flapping(tick) } };
  },
  nodes() { return { data: overview }; },
};
return true;
"#;

/// `#matrix`'s `data-<key>` as a number, once the page has set it.
async fn wait_matrix_number(c: &Client, key: &str, what: &str) -> Value {
    let script = format!(
        "const t = document.getElementById('matrix'); return t && t.dataset.{key} ? Number(t.dataset.{key}) : null;"
    );
    wait_js(c, &script, what).await
}

/// `#matrix`'s `data-<key>` as a number now.
async fn matrix_number(c: &Client, key: &str) -> f64 {
    let script = format!("return Number(document.getElementById('matrix').dataset.{key})");
    js(c, &script).await.as_f64().unwrap()
}

/// 64 nodes x 1000 LUNs: the first render, updates (1% of the cells change per poll) and a
/// scroll are timed in the page (performance.now around the render) and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_renders_64_nodes_by_1000_luns() {
    let Some(b) = browser("matrix_renders_64_nodes_by_1000_luns").await else {
        return;
    };
    let c = &b.client;
    let (_dir, server) = lone_server();
    intercept(c, &server).await;
    c.execute(SYNTHETIC, vec![json!(64), json!(1000)])
        .await
        .unwrap();
    js(
        c,
        "window.__mp.status = () => window.__perf.status();
         window.__mp.nodes = () => window.__perf.nodes();
         location.hash = '#/health';",
    )
    .await;
    let render = wait_js(
        c,
        "const t = document.getElementById('matrix'); return t && t.dataset.renderMs && t.dataset.rows === '1000' ? { render: Number(t.dataset.renderMs), cols: t.dataset.cols, phases: t.dataset.phasesMs } : null;",
        "the first render",
    )
    .await;
    assert_eq!(render["cols"], "64");
    let first_layout = wait_matrix_number(c, "layoutMs", "the first layout").await;
    let frame = wait_matrix_number(c, "frameMs", "the first frame").await;
    // Five updates, one every 2 s poll.
    let mut updates = Vec::new();
    let mut frames = Vec::new();
    let mut layouts = Vec::new();
    let mut hint_ms = Vec::new();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while updates.len() < 5 {
        assert!(Instant::now() < deadline, "too few updates: {updates:?}");
        let v = js(
            c,
            "const d = document.getElementById('matrix').dataset; return { n: Number(d.updates || 0), ms: Number(d.updateMs || 0), frame: Number(d.frameMs || 0) };",
        )
        .await;
        let n = v["n"].as_u64().unwrap();
        if n > seen {
            seen = n;
            updates.push(v["ms"].as_f64().unwrap());
            hint_ms.push(matrix_number(c, "hintsMs").await);
            // Let the frame after the update be painted before reading its time.
            tokio::time::sleep(Duration::from_millis(300)).await;
            frames.push(matrix_number(c, "frameMs").await);
            layouts.push(matrix_number(c, "layoutMs").await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The cells really changed: some non-optimal ones are visible.
    let states = js(
        c,
        "return [...new Set([...document.querySelectorAll('#matrix td.cell')].map(td => td.dataset.state))].sort()",
    )
    .await;
    assert!(states.as_array().unwrap().len() >= 3, "{states}");
    // The hints: their banners, and the markers on the cells that lost paths.
    let hints = js(
        c,
        "return { banners: document.querySelectorAll('#hint-banners .banner').length,
                  marked: document.querySelectorAll('#matrix td.cell.hinted').length,
                  lost: [...document.querySelectorAll('#matrix td.cell')].filter(td => td.dataset.node !== 'node64' && ['degraded', 'failed'].includes(td.dataset.state)).length,
                  column: document.querySelector('#matrix thead th[data-node=node3]').dataset.hint || null };",
    )
    .await;
    assert!(
        (2..=3).contains(&hints["banners"].as_u64().unwrap()),
        "{hints}"
    );
    assert!(
        hints["marked"].as_u64().unwrap() >= hints["lost"].as_u64().unwrap(),
        "{hints}"
    );
    assert_eq!(hints["column"], "warning", "{hints}");
    // The flapping markers: on the flapping rows in view (a quarter of them) and their cells,
    // all with the latest count.
    let flaps = js(
        c,
        "const t = [...document.querySelectorAll('#matrix th.col-wwid.flapping')];
         return { rows: t.length, counts: [...new Set(t.map(th => th.dataset.flap))],
                  cells: document.querySelectorAll('#matrix td.cell.flapping').length };",
    )
    .await;
    eprintln!("flapping markers: {flaps}");
    assert!(flaps["rows"].as_u64().unwrap() >= 1, "{flaps}");
    assert_eq!(flaps["counts"].as_array().unwrap().len(), 1, "{flaps}");
    assert!(
        flaps["cells"].as_u64().unwrap() >= flaps["rows"].as_u64().unwrap(),
        "{flaps}"
    );
    // A scroll to the middle: only the rows in view are patched.
    let scroll = js(
        c,
        "const s = document.getElementById('matrix-scroll'); s.scrollTop = s.scrollHeight / 2;
         return new Promise(r => requestAnimationFrame(() => setTimeout(() => {
           r({ ms: Number(document.getElementById('matrix').dataset.scrollMs),
               dom: document.querySelectorAll('#matrix tbody tr.row').length });
         }, 100)));",
    )
    .await;
    screenshot(c, "health-matrix-64x1000").await;

    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        s[s.len() / 2]
    };
    let report = json!({
        "nodes": 64, "luns": 1000,
        "first_render_ms": render["render"], "first_render_phases": render["phases"], "first_layout_ms": first_layout, "first_frame_ms": frame,
        "update_ms": updates, "update_median_ms": median(&updates),
        "update_frame_ms": frames, "update_layout_ms": layouts, "update_hint_index_ms": hint_ms, "scroll_ms": scroll["ms"], "rows_in_dom": scroll["dom"],
    });
    eprintln!("64 x 1000 matrix timings: {report:#}");
    std::fs::write(
        ui_support::screenshot_dir().join("perf-64x1000.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    // Generous bounds (a loaded CI machine), still far from a whole-table re-render.
    assert!(render["render"].as_f64().unwrap() < 2000.0, "{report}");
    assert!(median(&updates) < 500.0, "{report}");
    assert!(
        scroll["dom"].as_u64().unwrap() < 200,
        "rows are windowed: {report}"
    );
    b.close().await;
}

// ---------------------------------------------------------------------------------------------
// Root-cause hints and the maintenance pre-flight

const STATUS: &str = "/api2/json/cluster/multipath/status";
const PREFLIGHT: &str = "/api2/json/cluster/multipath/preflight";
const PORTAL_NODES: [&str; 3] = ["n1", "n2", "n3"];

/// Three nodes on the simulated iSCSI array (its two portals, [`SIM_PORTALS`]): vm-disks (4
/// paths, two through each portal; the LVM storage vmdata sits on it), backup (2 paths, one
/// through each portal) and archive (SAS: no target port), all optimal; every node's path
/// detail has reached the server.
async fn portal_cluster() -> Cluster {
    let config = json!({"wwids": {
        W_VM: {"alias": "vm-disks"}, W_BK: {"alias": "backup"}, W_AR: {"alias": "archive"},
    }});
    let storage = json!({"storages": [
        {"type": "multipath", "id": "san", "nodes": PORTAL_NODES},
        {"type": "lvm", "id": "vmdata", "vgname": "vmdata", "base": format!("san:{W_VM}")},
    ]});
    let maps = [
        (W_VM, "vm-disks", 4, "scsi:iscsi", 2048),
        (W_BK, "backup", 2, "scsi:iscsi", 8192),
        (W_AR, "archive", 2, "scsi:sas", 16384),
    ];
    let nodes = PORTAL_NODES
        .iter()
        .map(|n| (*n, sim_state(&maps)))
        .collect();
    let cluster = start_cluster(config, storage, nodes, |_, _| {}).await;
    cluster.wait_status("every LUN optimal on every node", |s| {
        PORTAL_NODES.iter().all(|n| {
            [W_VM, W_BK, W_AR]
                .iter()
                .all(|w| cell(s, w, n)["state"] == "optimal")
        }) && s["hints"].is_null()
    });
    // The path detail too: with both portals down the pre-flight knows every path.
    let both = json!({"down": [{"target": SIM_PORTALS[0]}, {"target": SIM_PORTALS[1]}]});
    wait_preflight(&cluster.server, &both, "every node's path detail", |r| {
        r["verdict"] == "unsafe" && r["lost"].as_array().is_some_and(|l| l.len() == 6)
    });
    cluster
}

/// Every path through `portal` on `node` up or down (the array's port, seen from that node).
fn set_portal(node: &Node, portal: &str, up: bool) {
    node.sim.update(|s| {
        for p in s.maps.iter_mut().flat_map(|m| m.paths.iter_mut()) {
            if p.portal.as_deref() == Some(portal) {
                p.up = up;
            }
        }
    });
}

/// POST `body` to the pre-flight until its answer satisfies `pred`; that answer.
fn wait_preflight(
    server: &Server,
    body: &Value,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, answer) = server.call("POST", PREFLIGHT, Some(body.clone()));
            if code == 200 && pred(&answer["data"]) {
                return answer["data"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last answer: HTTP {code} {answer}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    })
}

/// Each matrix cell's hint marker as the page shows it: `{wwid: {node: {hint, state, title,
/// outline}}}`.
const READ_MARKS: &str = r#"
const out = {};
for (const td of document.querySelectorAll('#matrix td.cell')) {
  const w = td.closest('tr').dataset.wwid;
  (out[w] = out[w] || {})[td.dataset.node] = { hint: td.dataset.hint || null, state: td.dataset.state,
    title: td.title, outline: getComputedStyle(td).boxShadow };
}
return out;
"#;

/// A target portal failing on every node: the page shows a target-side hint banner (the API's
/// sentence and severity, the nodes, the LUNs by alias, since when) and marks the cells the
/// hint explains (outline, the sentence in the title), not the others; when the portal comes
/// back the banner and the markers go, without a reload. Screenshot: hints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_portal_down_everywhere_shows_a_hint_banner_and_marks_cells() {
    let Some(b) =
        browser("target_portal_down_everywhere_shows_a_hint_banner_and_marks_cells").await
    else {
        return;
    };
    let c = &b.client;
    let cluster = portal_cluster().await;
    cluster.server.open(c, "#/health").await;
    wait_js(
        c,
        "const t = document.getElementById('matrix'); return t && t.dataset.renderMs && \
         document.querySelectorAll('#matrix tbody tr.row').length === 3",
        "the matrix",
    )
    .await;
    let none = js(
        c,
        "window.__marker = 1; return document.querySelectorAll('#hint-banners .banner, #matrix .hinted').length",
    )
    .await;
    assert_eq!(none, 0, "no hint while every path is up");

    for n in &cluster.nodes {
        set_portal(n, SIM_PORTALS[0], false);
    }
    let down_everywhere = format!("is down for all {} nodes", PORTAL_NODES.len());
    cluster.wait_status("the target-side hint", |s| {
        s["hints"].as_array().is_some_and(|l| {
            l.iter().any(|h| {
                h["kind"] == "target-side"
                    && h["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(&down_everywhere))
            })
        })
    });
    let status = cluster.server.get(STATUS);
    let hint = status["hints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "target-side")
        .cloned()
        .unwrap();
    assert_eq!(hint["target-port"], SIM_PORTALS[0], "{hint}");
    assert_eq!(hint["nodes"], json!(PORTAL_NODES), "{hint}");
    assert_eq!(hint["luns"], json!([W_VM, W_BK]), "{hint}");
    assert_eq!(
        hint["severity"], "warning",
        "every LUN keeps a path: {hint}"
    );
    let message = hint["message"].as_str().unwrap();
    assert!(message.contains(SIM_PORTALS[0]), "{message}");

    // The banner, as the API says.
    let banner = wait_js(
        c,
        &format!(
            "const b = document.querySelector('#hint-banners .banner[data-kind=\"target-side\"]');
             if (!b || b.querySelector('.msg').textContent !== {}) return null;
             const items = (sel) => [...b.querySelectorAll(sel)].map(l => l.textContent);
             return {{ severity: b.dataset.severity, cls: b.className, kind: b.querySelector('.hint-kind').textContent,
                       nodes: items('.hint-nodes li'), luns: [...b.querySelectorAll('.hint-luns li')].map(l => l.dataset.wwid + ' ' + l.textContent),
                       since: b.querySelector('.hint-since').textContent, matrixBelow: !!(b.compareDocumentPosition(document.getElementById('matrix')) & Node.DOCUMENT_POSITION_FOLLOWING) }};",
            json!(message)
        ),
        "the hint banner",
    )
    .await;
    eprintln!("hint banner: {banner:#}");
    assert_eq!(banner["severity"], "warning");
    assert!(
        banner["cls"].as_str().unwrap().contains("banner warn"),
        "severity-coloured: {banner}"
    );
    assert_eq!(banner["kind"], "Warning · target-side: ");
    assert_eq!(banner["nodes"], json!(PORTAL_NODES));
    assert_eq!(
        banner["luns"],
        json!([format!("{W_VM} vm-disks"), format!("{W_BK} backup")])
    );
    let since = banner["since"].as_str().unwrap();
    assert!(
        since.starts_with("since 20") && since.len() == "since 2026-12-07 23:17:41".len(),
        "{since}"
    );
    assert_eq!(
        banner["matrixBelow"], true,
        "the banner is above the matrix"
    );

    // The cells the hint explains are marked, with the sentence in their title; archive (SAS,
    // no target port) is not.
    let marks = wait_js(
        c,
        &format!(
            "const m = (() => {{ {READ_MARKS} }})(); return m['{W_VM}'] && m['{W_VM}'].n3.hint ? m : null;"
        ),
        "the marked cells",
    )
    .await;
    for n in PORTAL_NODES {
        for (w, text) in [(W_VM, "2/4"), (W_BK, "1/2")] {
            let m = &marks[w][n];
            assert_eq!(m["hint"], "warning", "{w} on {n}: {m}");
            assert_eq!(m["state"], "degraded", "{w} on {n}: {m}");
            let title = m["title"].as_str().unwrap();
            assert!(title.contains(message), "{w} on {n}: {title}");
            assert!(m["outline"].as_str().unwrap().contains("inset"), "{m}");
            let shown = js(
                c,
                &format!("return document.querySelector('#matrix tr[data-wwid=\"{w}\"] td.cell[data-node={n}]').textContent"),
            )
            .await;
            assert!(shown.as_str().unwrap().contains(text), "{shown}");
        }
        let m = &marks[W_AR][n];
        assert_eq!(m["hint"], Value::Null, "archive on {n}: {m}");
        assert_eq!(m["outline"], "none", "archive on {n}: {m}");
        assert!(!m["title"].as_str().unwrap().contains(message), "{m}");
    }
    screenshot(c, "health-hint").await;
    docs_screenshot(c, "hints", 460).await;

    // The portal comes back: banner and markers go, in the open page.
    for n in &cluster.nodes {
        set_portal(n, SIM_PORTALS[0], true);
    }
    wait_js(
        c,
        "return !document.querySelector('#hint-banners .banner') && !document.querySelector('#matrix .hinted') && \
         [...document.querySelectorAll('#matrix td.cell')].every(td => td.dataset.state === 'optimal' && !td.dataset.hint)",
        "the hint to clear",
    )
    .await;
    assert_eq!(js(c, "return window.__marker").await, 1, "no reload");
    assert!(
        cluster.server.get(STATUS)["hints"].is_null(),
        "the API has no hint either"
    );
    b.close().await;
}

/// The pre-flight form's answer as the page shows it: `{verdict, text, cls, lost: [...],
/// below: [...], unchecked: [...]}`, each row `{wwid, node, lun, paths, used}`.
const READ_PREFLIGHT: &str = r#"
const v = document.getElementById('preflight-verdict');
if (!v) return null;
const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)].map(tr => ({
  wwid: tr.dataset.wwid, node: tr.dataset.node, lun: tr.querySelector('td.lun').textContent,
  paths: tr.querySelector('td.paths').textContent, used: tr.querySelector('td.used-by').textContent }));
return { verdict: v.dataset.verdict, text: v.textContent, cls: v.className, lost: rows('preflight-lost'),
         below: rows('preflight-below'),
         unchecked: [...document.querySelectorAll('#preflight-unchecked li')].map(li => li.dataset.node + ': ' + li.textContent) };
"#;

/// Click "Check" and wait for an answer with `verdict`.
async fn check_preflight(c: &Client, verdict: &str) -> Value {
    click(c, "preflight-check").await;
    let script = format!(
        "const r = (() => {{ {READ_PREFLIGHT} }})(); return r && r.verdict === '{verdict}' ? r : null;"
    );
    let answer = wait_js(c, &script, &format!("the {verdict} answer")).await;
    eprintln!("pre-flight answer: {answer:#}");
    answer
}

/// `(wwid, node)` of each row of the page's or the API's impact list.
fn impacts(rows: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["wwid"].as_str().unwrap().to_owned(),
                r["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The pre-flight form against the real server and simulated nodes: one of the two portals
/// down is SAFE (backup listed as dropping below 2 paths), both are UNSAFE listing every iSCSI
/// LUN on every node with its name and storages (as the API says); a portal and an adapter of
/// one node at once cut only that node's backup off; a bad node name gets the API's own field
/// message next to the node input; with a node silent the answer is UNKNOWN and names it.
/// Screenshot: preflight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_form_answers_safe_unsafe_and_unknown() {
    let Some(b) = browser("preflight_form_answers_safe_unsafe_and_unknown").await else {
        return;
    };
    let c = &b.client;
    let mut cluster = portal_cluster().await;
    cluster.server.open(c, "#/health").await;
    wait_js(
        c,
        "return document.querySelectorAll('#matrix tbody tr.row').length === 3 && document.getElementById('preflight')",
        "the health page",
    )
    .await;
    click_css(c, "#preflight > summary").await;

    // One portal: SAFE; backup keeps 1 of its 2 paths on every node.
    type_into(c, "pf-target-0", SIM_PORTALS[0]).await;
    let safe = check_preflight(c, "safe").await;
    let text = safe["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("SAFE: taking down target={}", SIM_PORTALS[0])),
        "{text}"
    );
    assert!(
        safe["cls"].as_str().unwrap().contains("banner ok"),
        "{safe}"
    );
    assert_eq!(safe["lost"], json!([]), "{safe}");
    let below: Vec<(String, String)> = PORTAL_NODES
        .iter()
        .map(|n| (W_BK.to_owned(), (*n).to_owned()))
        .collect();
    assert_eq!(impacts(&safe["below"]), below, "{safe}");
    for r in safe["below"].as_array().unwrap() {
        assert_eq!(r["paths"], "1 of 2 left", "{r}");
    }

    // Both portals: UNSAFE; every iSCSI LUN on every node, as the API lists them.
    click(c, "pf-add").await;
    type_into(c, "pf-target-1", SIM_PORTALS[1]).await;
    let unsafe_ = check_preflight(c, "unsafe").await;
    assert!(
        unsafe_["cls"].as_str().unwrap().contains("banner error"),
        "{unsafe_}"
    );
    let text = unsafe_["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "UNSAFE: taking down target={} + target={}",
            SIM_PORTALS[0], SIM_PORTALS[1]
        )),
        "{text}"
    );
    let api = wait_preflight(
        &cluster.server,
        &json!({"down": [{"target": SIM_PORTALS[0]}, {"target": SIM_PORTALS[1]}]}),
        "the API's answer",
        |r| r["verdict"] == "unsafe",
    );
    let mut expected: Vec<(String, String)> = PORTAL_NODES
        .iter()
        .flat_map(|n| {
            [
                (W_VM.to_owned(), (*n).to_owned()),
                (W_BK.to_owned(), (*n).to_owned()),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(impacts(&unsafe_["lost"]), expected);
    assert_eq!(impacts(&api["lost"]), expected, "{api}");
    for r in unsafe_["lost"].as_array().unwrap() {
        let (lun, used, paths) = if r["wwid"] == W_VM {
            ("vm-disks", "vmdata", "all 4 go down")
        } else {
            ("backup", "—", "all 2 go down")
        };
        assert_eq!(
            r["lun"],
            format!("{lun} {}", r["wwid"].as_str().unwrap()),
            "{r}"
        );
        assert_eq!(r["used"], used, "{r}");
        assert_eq!(r["paths"], paths, "{r}");
    }
    screenshot(c, "preflight-unsafe").await;
    js(
        c,
        "document.querySelector('#preflight .pf-body').scrollTop = 0; return true",
    )
    .await;
    docs_screenshot(c, "preflight", 960).await;

    // A portal and an adapter of n1 (host4: the second path of every LUN): only n1's backup
    // loses both paths.
    c.find(Locator::Id("pf-kind-1"))
        .await
        .unwrap()
        .select_by_value("adapter")
        .await
        .unwrap();
    type_into(c, "pf-node-1", "n1").await;
    type_into(c, "pf-adapter-1", "host4").await;
    let visible = js(
        c,
        "const v = (id) => document.getElementById(id).getClientRects().length > 0;
         return ['target', 'node', 'adapter'].flatMap(f => [v(`pf-${f}-0`), v(`pf-${f}-1`)]);",
    )
    .await;
    assert_eq!(
        visible,
        json!([true, false, false, true, false, true]),
        "each row shows the inputs of its kind (target; node and adapter)"
    );
    let one = check_preflight(c, "unsafe").await;
    assert!(
        one["text"]
            .as_str()
            .unwrap()
            .contains("node=n1,adapter=host4"),
        "{one}"
    );
    assert_eq!(
        impacts(&one["lost"]),
        [(W_BK.to_owned(), "n1".to_owned())],
        "{one}"
    );

    // A bad node name: the API's own message, next to the node input.
    let (code, refused) = tokio::task::block_in_place(|| {
        cluster.server.call(
            "POST",
            PREFLIGHT,
            Some(json!({"down": [{"target": SIM_PORTALS[0]}, {"node": "bad node"}]})),
        )
    });
    assert_eq!(code, 400, "{refused}");
    let api_msg = refused["errors"]["down.1.node"]
        .as_str()
        .unwrap()
        .to_owned();
    c.find(Locator::Id("pf-kind-1"))
        .await
        .unwrap()
        .select_by_value("node")
        .await
        .unwrap();
    type_into(c, "pf-node-1", "bad node").await;
    click(c, "preflight-check").await;
    let shown = wait_js(
        c,
        "const e = document.getElementById('pf-node-1-error'); return e && e.textContent ? { msg: e.textContent,
           invalid: document.getElementById('pf-node-1').getAttribute('aria-invalid'),
           banner: document.getElementById('preflight-error') ? document.getElementById('preflight-error').textContent : null,
           verdict: !!document.getElementById('preflight-verdict') } : null;",
        "the node's field error",
    )
    .await;
    assert_eq!(shown["msg"], api_msg, "{shown}");
    assert_eq!(shown["invalid"], "true", "{shown}");
    assert!(
        shown["banner"]
            .as_str()
            .unwrap()
            .starts_with("Cannot check"),
        "{shown}"
    );
    assert_eq!(shown["verdict"], false, "no stale answer shown: {shown}");
    assert_values(c, &[("pf-node-1", "bad node", "the input is kept")]).await;
    screenshot(c, "preflight-field-error").await;

    // n3 goes silent: one portal is now UNKNOWN, naming n3.
    click_css(
        c,
        "#pf-rows .pf-row[data-row='1'] button[data-action=remove]",
    )
    .await;
    let n3 = cluster.nodes.iter_mut().find(|n| n.name == "n3").unwrap();
    n3.agent.take();
    cluster.wait_status("n3 stale", |s| cell(s, W_VM, "n3")["state"] == "unknown");
    let unknown = check_preflight(c, "unknown").await;
    assert!(
        unknown["cls"].as_str().unwrap().contains("banner warn"),
        "{unknown}"
    );
    let text = unknown["text"].as_str().unwrap();
    assert!(
        text.starts_with("UNKNOWN") && text.contains("(n3)"),
        "{text}"
    );
    let unchecked = unknown["unchecked"].as_array().unwrap();
    assert!(
        unchecked.len() == 1 && unchecked[0].as_str().unwrap().starts_with("n3: n3"),
        "{unknown}"
    );
    screenshot(c, "preflight-unknown").await;
    b.close().await;
}

// ---------------------------------------------------------------------------------------------
// Storages

const STORAGES: &str = "/api2/json/storage";

/// The storage list as the page shows it: `{id: {type, nodes, state, vgname, base, used, source,
/// actions}}`.
const READ_STORAGES: &str = r#"
const out = {};
for (const tr of document.querySelectorAll('#storage-table tbody tr[data-id]')) {
  const t = (c) => tr.querySelector(c).textContent;
  out[tr.dataset.id] = { type: t('td.type'), nodes: t('td.nodes'), state: t('td.state'),
    vgname: t('td.vgname'), base: t('td.base'), used: t('td.used-by'), source: t('td.source'),
    actions: tr.querySelectorAll('button[data-action]').length };
}
return out;
"#;

async fn open_storage(c: &Client, server: &Server) {
    server.open(c, "#/storage").await;
    wait_js(
        c,
        "return document.getElementById('storage-table') && document.getElementById('storage-source-text')",
        "the storage page",
    )
    .await;
}

/// Wait until the page's list satisfies `pred` (a JS expression over `s`, the READ_STORAGES
/// object); returns it.
async fn wait_storages(c: &Client, pred: &str, what: &str) -> Value {
    let script = format!("const s = (() => {{ {READ_STORAGES} }})(); return ({pred}) ? s : null;");
    wait_js(c, &script, what).await
}

/// The storage `id` as the API returns it (`Null` if absent).
fn api_storage(server: &Server, id: &str) -> Value {
    let list = server.get(STORAGES);
    list["storages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The storage page on mpcluster's own document: add a multipath and an LVM storage (with the
/// API's field errors next to the fields), edit one, lose a digest race (the input is kept,
/// Reload, save), a removal refused while an LVM storage sits on the base, and removals with
/// confirmation. Everything checked against the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_page_adds_edits_and_removes_storages() {
    let Some(b) = browser("storage_page_adds_edits_and_removes_storages").await else {
        return;
    };
    let c = &b.client;
    let (_dir, server) = lone_server();
    let (code, body) = tokio::task::block_in_place(|| {
        server.call(
            "POST",
            "/api2/json/cluster/multipath/wwids",
            Some(json!({"wwid": W_VM, "alias": "vm-disks"})),
        )
    });
    assert_eq!(code, 200, "{body}");
    open_storage(c, &server).await;
    let empty = text_of(c, "storage-table").await;
    assert!(empty.contains("No storages yet"), "{empty}");
    assert!(
        text_of(c, "storage-source-text")
            .await
            .contains("mpcluster"),
        "the source is named"
    );

    // Add a multipath storage on two nodes.
    type_into(c, "storage-id", "san").await;
    type_into(c, "storage-nodes", "n2, n1").await;
    click(c, "storage-submit").await;
    wait_text(c, "storage-msg", "Added san", "the multipath storage added").await;
    let s = wait_storages(c, "s.san", "the san row").await;
    assert_eq!(s["san"]["type"], "multipath");
    assert_eq!(s["san"]["nodes"], "n1, n2");
    assert_eq!(s["san"]["state"], "enabled");
    assert_eq!(s["san"]["source"], "mpcluster");
    assert_eq!(api_storage(&server, "san")["nodes"], json!(["n1", "n2"]));

    // An LVM storage with a bad id and no volume group: the API's own messages, next to their
    // fields; nothing written.
    c.find(Locator::Id("storage-type"))
        .await
        .unwrap()
        .select_by_value("lvm")
        .await
        .unwrap();
    let (code, api) = tokio::task::block_in_place(|| {
        server.call(
            "POST",
            STORAGES,
            Some(
                json!({"type": "lvm", "id": "bad id", "vgname": "", "base": format!("san:{W_VM}")}),
            ),
        )
    });
    assert_eq!(code, 400, "{api}");
    type_into(c, "storage-id", "bad id").await;
    type_into(c, "storage-vgname", "").await;
    type_into(c, "storage-base", &format!("san:{W_VM}")).await;
    click(c, "storage-submit").await;
    for (input, field) in [("storage-id", "id"), ("storage-vgname", "vgname")] {
        let shown = wait_js(
            c,
            &format!("return document.getElementById('{input}-error').textContent"),
            &format!("the {field} error"),
        )
        .await;
        assert_eq!(shown, api["errors"][field], "{field}");
        let invalid = js(
            c,
            &format!("return document.getElementById('{input}').getAttribute('aria-invalid')"),
        )
        .await;
        assert_eq!(invalid, "true", "{input} marked");
    }
    assert_values(c, &[("storage-id", "bad id", "the input is kept")]).await;
    screenshot(c, "storage-field-errors").await;
    assert_eq!(api_storage(&server, "bad id"), Value::Null);

    // Corrected: added, and the multipath storage is now used by it.
    type_into(c, "storage-id", "vmdata").await;
    type_into(c, "storage-vgname", "vmdata").await;
    click(c, "storage-submit").await;
    wait_text(c, "storage-msg", "Added vmdata", "the LVM storage added").await;
    let s = wait_storages(c, "s.vmdata && s.san.used === 'vmdata'", "vmdata on san").await;
    assert_eq!(s["vmdata"]["type"], "lvm");
    assert_eq!(s["vmdata"]["vgname"], "vmdata");
    assert_eq!(s["vmdata"]["base"], format!("san:{W_VM}"));
    assert_eq!(s["vmdata"]["nodes"], "all nodes");
    assert_eq!(
        api_storage(&server, "vmdata")["base"],
        format!("san:{W_VM}")
    );
    // The base field suggests the multipath storages with the allow-listed WWIDs.
    let options = js(
        c,
        "return [...document.querySelectorAll('#storage-base-suggestions option')].map(o => o.value)",
    )
    .await;
    assert_eq!(options, json!([format!("san:{W_VM}")]));
    screenshot(c, "storage").await;

    // Edit: san only on n1.
    click_css(c, "#storage-table tr[data-id=san] button[data-action=edit]").await;
    assert_eq!(text_of(c, "storage-form-title").await, "Edit san");
    assert_eq!(value_of(c, "storage-nodes").await, "n1,n2");
    type_into(c, "storage-nodes", "n1").await;
    click(c, "storage-submit").await;
    wait_text(c, "storage-msg", "Saved san", "the edit").await;
    wait_storages(c, "s.san.nodes === 'n1'", "san on n1").await;
    assert_eq!(api_storage(&server, "san")["nodes"], json!(["n1"]));

    // A concurrent change: the save loses the digest race, the input is kept; after Reload it
    // succeeds and keeps the other writer's change.
    click_css(
        c,
        "#storage-table tr[data-id=vmdata] button[data-action=edit]",
    )
    .await;
    click(c, "storage-disable").await;
    let (code, body) = tokio::task::block_in_place(|| {
        server.call(
            "PUT",
            &format!("{STORAGES}/san"),
            Some(json!({"nodes": "n1,n3"})),
        )
    });
    assert_eq!(code, 200, "{body}");
    click(c, "storage-submit").await;
    let msg = wait_text(c, "storage-msg", "changed meanwhile", "the conflict").await;
    assert!(msg.contains("reload"), "{msg}");
    let checked = js(
        c,
        "return document.getElementById('storage-disable').checked",
    )
    .await;
    assert_eq!(checked, true, "the input is kept");
    assert_eq!(api_storage(&server, "vmdata")["disable"], Value::Null);
    screenshot(c, "storage-conflict").await;
    click_css(c, "#storage-msg button.reload").await;
    wait_text(c, "storage-msg", "Reloaded", "the reload").await;
    wait_storages(
        c,
        "s.san.nodes === 'n1, n3'",
        "the other writer's change shown",
    )
    .await;
    click(c, "storage-submit").await;
    wait_text(c, "storage-msg", "Saved vmdata", "the retried save").await;
    wait_storages(c, "s.vmdata.state === 'disabled'", "vmdata disabled").await;
    assert_eq!(api_storage(&server, "vmdata")["disable"], true);
    assert_eq!(api_storage(&server, "san")["nodes"], json!(["n1", "n3"]));

    // Removing san is refused while vmdata sits on it; the reason is shown.
    click_css(
        c,
        "#storage-table tr[data-id=san] button[data-action=remove]",
    )
    .await;
    assert!(text_of(c, "storage-confirm-text").await.contains("san"));
    click(c, "storage-confirm-yes").await;
    let refused = wait_text(c, "storage-msg", "vmdata", "the refusal").await;
    assert!(refused.contains("base"), "{refused}");
    assert!(!api_storage(&server, "san").is_null());
    // vmdata: Cancel keeps it, Remove removes it; then san goes too.
    click_css(
        c,
        "#storage-table tr[data-id=vmdata] button[data-action=remove]",
    )
    .await;
    click(c, "storage-confirm-no").await;
    assert!(!api_storage(&server, "vmdata").is_null(), "cancel keeps it");
    click_css(
        c,
        "#storage-table tr[data-id=vmdata] button[data-action=remove]",
    )
    .await;
    click(c, "storage-confirm-yes").await;
    wait_storages(c, "!s.vmdata", "vmdata removed").await;
    click_css(
        c,
        "#storage-table tr[data-id=san] button[data-action=remove]",
    )
    .await;
    click(c, "storage-confirm-yes").await;
    wait_storages(c, "!s.san", "san removed").await;
    assert_eq!(server.get(STORAGES)["storages"], json!([]));
    b.close().await;
}

/// Proxmox mode (`serve --pve-root` on a fixture /etc/pve): the page lists storage.cfg's
/// storages with their lines, says why it is read-only (pvesm) and offers no editing; an edit
/// of storage.cfg shows without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_page_is_read_only_in_proxmox_mode() {
    let Some(b) = browser("storage_page_is_read_only_in_proxmox_mode").await else {
        return;
    };
    let c = &b.client;
    let root = mpcluster_store::testing::PveRoot::cluster("lab", "n1").unwrap();
    let cfg = format!(
        "dir: local\n\tpath /var/lib/vz\n\n\
         iscsi: san1\n\tportal 192.0.2.10\n\ttarget iqn.2003-01.org.example:san1\n\tcontent none\n\n\
         lvm: vmdata\n\tvgname vmdata\n\tbase san1:0.0.1.scsi-{W_VM}\n\tnodes n1\n\tshared 1\n"
    );
    std::fs::write(root.path().join("storage.cfg"), &cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = tokio::task::block_in_place(|| {
        start_server(
            &dir.path().join("store"),
            &[
                "--no-agent".into(),
                "--pve-root".into(),
                root.path().display().to_string(),
            ],
        )
    });
    open_storage(c, &server).await;
    let s = wait_storages(c, "s.vmdata && s.san1", "storage.cfg's storages").await;
    assert_eq!(s["san1"]["type"], "multipath");
    assert_eq!(s["san1"]["source"], "storage.cfg:4 (iSCSI san1)");
    assert_eq!(s["san1"]["used"], "vmdata");
    assert_eq!(s["vmdata"]["source"], "storage.cfg:9");
    assert_eq!(s["vmdata"]["base"], format!("san1:{W_VM}"));
    assert_eq!(s["vmdata"]["nodes"], "n1");
    for id in ["san1", "vmdata"] {
        assert_eq!(s[id]["actions"], 0, "{id}: no edit or remove buttons");
    }
    let banner = text_of(c, "storage-source-text").await;
    for want in ["Read-only", "storage.cfg", "pvesm"] {
        assert!(banner.contains(want), "{want}: {banner}");
    }
    let forms = js(
        c,
        "return document.querySelectorAll('#storage-form, #storage-submit, th:not([scope=row])').length",
    )
    .await;
    assert_eq!(forms, 8, "no form; eight column headers, no actions column");
    screenshot(c, "storage-proxmox").await;

    // storage.cfg changes: shown without a reload.
    js(c, "window.__marker = 7; return true").await;
    let more = format!("{cfg}\nmultipath: fc\n\tnodes n1\n");
    let tmp = root.path().join("storage.cfg.tmp");
    std::fs::write(&tmp, &more).unwrap();
    std::fs::rename(&tmp, root.path().join("storage.cfg")).unwrap();
    let s = wait_storages(c, "s.fc", "the new storage").await;
    assert_eq!(s["fc"]["source"], "storage.cfg:15");
    assert_eq!(js(c, "return window.__marker").await, 7, "no reload");
    // The API refuses writes with the same explanation.
    let (code, body) =
        tokio::task::block_in_place(|| server.call("DELETE", &format!("{STORAGES}/fc"), None));
    assert_eq!(code, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("pvesm"),
        "{body}"
    );
    b.close().await;
}

// ---------------------------------------------------------------------------------------------
// The event history: the recent-events panel, a LUN's timeline, flapping markers

const EVENTS: &str = "/api2/json/cluster/multipath/events";

/// The events the API lists for `query`.
fn api_events(server: &Server, query: &str) -> Vec<Value> {
    tokio::task::block_in_place(|| server.get(&format!("{EVENTS}?{query}")))["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// Poll `f` for up to `timeout`; its first `Some`.
fn poll_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The timeline page as shown: `{bands: {band: [{state, from, to, paths}]}, order: [band],
/// start, end, rows: [seq]}`.
const READ_TIMELINE: &str = r#"
const svg = document.getElementById('timeline-svg');
if (!svg) return null;
const bands = {};
const order = [];
for (const g of svg.querySelectorAll('g.tl-band')) {
  order.push(g.dataset.band);
  bands[g.dataset.band] = [...g.querySelectorAll('g.seg')].map((s) => ({
    state: s.dataset.state, from: Number(s.dataset.from), to: Number(s.dataset.to), paths: s.dataset.paths,
    fill: getComputedStyle(s.querySelector('rect')).fill,
  }));
}
return { bands, order, start: Number(svg.dataset.start), end: Number(svg.dataset.end),
  rows: [...document.querySelectorAll('#lun-events tbody tr.ev')].map((tr) => Number(tr.dataset.seq)),
  title: document.getElementById('lun-title').textContent,
  flap: document.getElementById('lun-flap').hidden ? '' : document.getElementById('lun-flap').textContent };
"#;

/// The recent-events panel as shown, newest first: `[{seq, kind, wwid, node, text, states}]`
/// (`states`: the data-state of the before and after badges).
const READ_PANEL: &str = r#"
return [...document.querySelectorAll('#events-list li.ev')].map((li) => ({
  seq: Number(li.dataset.seq), kind: li.dataset.kind, wwid: li.dataset.wwid || null, node: li.dataset.node || null,
  text: li.textContent, states: [...li.querySelectorAll('.ev-change .badge')].map((b) => b.dataset.state),
  link: (li.querySelector('a.ev-lun') || {}).textContent || null,
}));
"#;

/// A state as the page names it: a LUN event's state, a cell event's `state`, `none` when
/// absent; and the path counts (`a/t`) of a cell value.
fn state_of(v: &Value) -> (String, String) {
    match v {
        Value::Null => ("none".into(), String::new()),
        Value::String(s) => (s.clone(), String::new()),
        v => (
            v["state"].as_str().unwrap().to_owned(),
            match (&v["paths-active"], &v["paths-total"]) {
                (Value::Number(a), Value::Number(t)) => format!("{a}/{t}"),
                _ => String::new(),
            },
        ),
    }
}

/// A segment: `(state, paths, from, to)`.
type Segment = (String, String, i64, i64);

/// The segments band `band` (`cluster` or `node:<name>`) must show for the health events of
/// one LUN (`events`, oldest first) within `[start, end]`, `now` being the state the status
/// shows (for the time after the last event, and for a band without events). Between two
/// events the state is the earlier one's `after`; before the first, that one's `before`. A LUN
/// that appears or goes takes its cells with it (no cell events): on a node band that is a
/// change from or to "not present" whose other side is not known from that event.
fn expected_segments(
    events: &[Value],
    band: &str,
    start: i64,
    end: i64,
    now: (&str, &str),
) -> Vec<Segment> {
    type Side = Option<(String, String)>;
    let node = band.strip_prefix("node:");
    let mut points: Vec<(i64, Side, Side)> = Vec::new();
    for e in events {
        let t = e["time"].as_i64().unwrap();
        match (node, e["kind"].as_str().unwrap()) {
            (None, "lun") => {
                points.push((t, Some(state_of(&e["before"])), Some(state_of(&e["after"]))))
            }
            (Some(n), "cell") if e["node"] == n => {
                points.push((t, Some(state_of(&e["before"])), Some(state_of(&e["after"]))))
            }
            (Some(_), "lun") if e["before"].is_null() => {
                points.push((t, Some(("none".into(), String::new())), None))
            }
            (Some(_), "lun") if e["after"].is_null() => {
                points.push((t, None, Some(("none".into(), String::new()))))
            }
            _ => {}
        }
    }
    let now = (now.0.to_owned(), now.1.to_owned());
    let unknown = ("unknown".to_owned(), String::new());
    let mut out: Vec<Segment> = Vec::new();
    let mut push = |from: i64, to: i64, v: (String, String)| {
        let (from, to) = (from.max(start), to.min(end));
        if to <= from {
            return;
        }
        match out.last_mut() {
            Some(l) if l.3 == from && l.0 == v.0 && l.1 == v.1 => l.3 = to,
            _ => out.push((v.0, v.1, from, to)),
        }
    };
    if points.is_empty() {
        push(start, end, now);
        return out;
    }
    push(
        start,
        points[0].0,
        points[0].1.clone().unwrap_or(unknown.clone()),
    );
    for (i, p) in points.iter().enumerate() {
        let next = points.get(i + 1);
        let v = p.2.clone().or_else(|| match next {
            Some(n) => n.1.clone(),
            None => Some(now.clone()),
        });
        push(p.0, next.map_or(end, |n| n.0), v.unwrap_or(unknown.clone()));
    }
    out
}

/// The page's segments of `band` as `(state, paths, from, to)`, the band's end replaced by
/// `end` (the page's "now" moves on every poll).
fn shown_segments(page: &Value, band: &str) -> Vec<Segment> {
    let end = page["end"].as_i64().unwrap();
    let segs = page["bands"][band]
        .as_array()
        .unwrap_or_else(|| panic!("no band {band}: {page}"));
    segs.iter()
        .map(|s| {
            let to = s["to"].as_i64().unwrap();
            (
                s["state"].as_str().unwrap().to_owned(),
                s["paths"].as_str().unwrap_or_default().to_owned(),
                s["from"].as_i64().unwrap(),
                if to >= end - 1 { end } else { to },
            )
        })
        .collect()
}

/// Asserts the page's band `band` shows `want` (the first segment starts at the range's start,
/// within a second: the page's clock and ours differ by the time of one poll).
fn assert_band(page: &Value, band: &str, want: &[Segment]) {
    let shown = shown_segments(page, band);
    assert_eq!(shown.len(), want.len(), "{band}: {shown:?} vs {want:?}");
    for (i, (s, w)) in shown.iter().zip(want).enumerate() {
        assert_eq!(
            (&s.0, &s.1),
            (&w.0, &w.1),
            "{band} segment {i}: {shown:?} vs {want:?}"
        );
        if i > 0 {
            assert_eq!(
                s.2, w.2,
                "{band} segment {i} starts at its event: {shown:?} vs {want:?}"
            );
        }
        if i + 1 < shown.len() {
            assert_eq!(
                s.3, w.3,
                "{band} segment {i} ends at the next event: {shown:?} vs {want:?}"
            );
        }
    }
}

/// A path of `wwid` on the node failing (or coming back), recorded as a LUN event of the API
/// that ends in `want`. The recorder's first observation is a baseline without events: should
/// it have come after the change, the change is undone and made again.
fn change_recorded(
    cluster: &Cluster,
    node: &str,
    wwid: &str,
    up: bool,
    want: &str,
    undo: &str,
) -> Value {
    let map =
        |s: &mut SimState| s.maps.iter_mut().find(|m| m.wwid == wwid).unwrap().paths[0].up = up;
    let unmap =
        |s: &mut SimState| s.maps.iter_mut().find(|m| m.wwid == wwid).unwrap().paths[0].up = !up;
    let query = format!("wwid={wwid}&kind=health");
    for _ in 0..3 {
        let known = api_events(&cluster.server, &query).len();
        cluster.node(node).sim.update(map);
        cluster.wait_status(want, |s| row_state(s, wwid) == want);
        let found = tokio::task::block_in_place(|| {
            poll_for(Duration::from_secs(8), || {
                api_events(&cluster.server, &query)[known..]
                    .iter()
                    .find(|e| e["kind"] == "lun" && e["after"] == want)
                    .cloned()
            })
        });
        if let Some(e) = found {
            return e;
        }
        cluster.node(node).sim.update(unmap);
        cluster.wait_status(undo, |s| row_state(s, wwid) == undo);
    }
    panic!("{wwid} {want} on {node} is never recorded");
}

/// The real thing: a path failing on a simulated node and coming back shows in the open
/// recent-events panel (LUN and cell, before -> after), with a configuration change by the
/// token; with `--flap-changes 2` that LUN and its cell on that node are marked flapping in
/// the matrix (and exactly what else the API lists as flapping); the LUN's link opens its timeline, whose bands (cluster, each
/// node) show the API's events as segments at their times, and which follows a new change
/// without a reload; the row header of the matrix links there too. Screenshots: events,
/// timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_panel_timeline_and_flapping_markers() {
    let Some(b) = browser("events_panel_timeline_and_flapping_markers").await else {
        return;
    };
    let c = &b.client;
    let maps = [
        (W_VM, "vm-disks", 4, "scsi:iscsi", 2048),
        (W_BK, "backup", 2, "scsi:iscsi", 8192),
        (W_AR, "archive", 2, "scsi:sas", 16384),
    ];
    let cluster = start_cluster_with(
        json!({"wwids": {W_VM: {"alias": "vm-disks"}, W_BK: {"alias": "backup"}, W_AR: {"alias": "archive"}}}),
        json!({"storages": []}),
        vec![("n1", sim_state(&maps)), ("n2", sim_state(&maps))],
        |_, _| {},
        &["--flap-changes", "2", "--flap-window", "600"],
    )
    .await;
    cluster.wait_status("every LUN optimal on both nodes", |s| {
        [W_VM, W_BK, W_AR].iter().all(|w| {
            cell(s, w, "n1")["state"] == "optimal" && cell(s, w, "n2")["state"] == "optimal"
        })
    });
    cluster.server.open(c, "#/health").await;
    wait_js(
        c,
        "return document.querySelectorAll('#matrix tbody tr.row').length === 3 && \
         document.getElementById('events-list').dataset.lastSeq !== ''",
        "the matrix and the events panel",
    )
    .await;
    js(c, "window.__marker = 14; return true").await;

    // vm-disks loses a path on n1: degraded; the open panel shows it.
    let degrade = change_recorded(&cluster, "n1", W_VM, false, "degraded", "optimal");
    let seq = degrade["seq"].as_u64().unwrap();
    let panel = wait_js(
        c,
        &format!(
            "const p = (() => {{ {READ_PANEL} }})(); return p.some(e => e.seq === {seq}) && p.some(e => e.kind === 'cell' && e.node === 'n1' && e.seq > {seq} - 3) ? p : null;"
        ),
        "the degrade in the panel",
    )
    .await;
    eprintln!("panel: {panel:#}");
    let lun = panel
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == seq)
        .unwrap();
    assert_eq!(lun["kind"], "lun", "{lun}");
    assert_eq!(lun["wwid"], W_VM, "{lun}");
    assert_eq!(lun["link"], "vm-disks", "by its alias: {lun}");
    assert_eq!(lun["states"], json!(["optimal", "degraded"]), "{lun}");
    let cell_ev = panel
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "cell" && e["node"] == "n1")
        .unwrap();
    assert_eq!(cell_ev["wwid"], W_VM);
    assert_eq!(
        cell_ev["states"],
        json!(["optimal", "degraded"]),
        "{cell_ev}"
    );
    let t = cell_ev["text"].as_str().unwrap();
    assert!(
        t.contains("4/4") && t.contains("3/4") && t.contains("n1"),
        "{t}"
    );

    // It comes back; a configuration change by the token; backup fails on n2.
    let recover = change_recorded(&cluster, "n1", W_VM, true, "optimal", "degraded");
    let (code, body) = tokio::task::block_in_place(|| {
        cluster.server.call(
            "PUT",
            "/api2/json/cluster/multipath/config",
            Some(json!({"no-path-retry": "queue"})),
        )
    });
    assert_eq!(code, 200, "{body}");
    cluster.node("n2").sim.update(|s| {
        for p in &mut s.maps[1].paths {
            p.up = false;
        }
    });
    cluster.wait_status("backup failed on n2", |s| {
        cell(s, W_BK, "n2")["state"] == "failed"
    });
    let audit = tokio::task::block_in_place(|| {
        poll_for(WAIT, || {
            api_events(&cluster.server, "kind=config")
                .into_iter()
                .find(|e| e["doc"] == "multipath-config")
        })
    })
    .expect("the configuration change is in the audit trail");
    let backup = tokio::task::block_in_place(|| {
        poll_for(WAIT, || {
            api_events(&cluster.server, &format!("wwid={W_BK}&kind=health"))
                .into_iter()
                .find(|e| e["kind"] == "cell" && e["node"] == "n2")
        })
    })
    .expect("backup's failure is recorded");
    let newest = backup["seq"]
        .as_u64()
        .unwrap()
        .max(audit["seq"].as_u64().unwrap());
    let panel = wait_js(
        c,
        &format!(
            "const p = (() => {{ {READ_PANEL} }})(); return p.length && p[0].seq >= {newest} && p.some(e => e.seq === {}) ? p : null;",
            recover["seq"]
        ),
        "the recovery, the configuration change and backup's failure in the panel",
    )
    .await;
    let seqs: Vec<u64> = panel
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert!(seqs.len() <= 20, "at most 20: {seqs:?}");
    let all: Vec<u64> = api_events(&cluster.server, "limit=20")
        .iter()
        .rev()
        .map(|e| e["seq"].as_u64().unwrap())
        .filter(|s| *s <= seqs[0])
        .collect();
    assert_eq!(seqs, all, "the panel lists what the API lists");
    let config = panel
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == audit["seq"])
        .unwrap();
    assert_eq!(config["kind"], "config");
    let t = config["text"].as_str().unwrap();
    for part in [
        "multipath-config",
        audit["actor"].as_str().unwrap(),
        audit["summary"].as_str().unwrap(),
    ] {
        assert!(t.contains(part), "{part}: {t}");
    }
    let rec = panel
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == recover["seq"])
        .unwrap();
    assert_eq!(rec["states"], json!(["degraded", "optimal"]), "{rec}");

    // Flapping: vm-disks (two changes) and its cell on n1; not n2, not backup.
    cluster.wait_status("vm-disks flapping", |s| {
        let f = s["flapping"].as_array();
        f.is_some_and(|f| {
            f.iter()
                .any(|x| x["wwid"] == W_VM && x.get("node").is_none())
                && f.iter().any(|x| x["wwid"] == W_VM && x["node"] == "n1")
        })
    });
    let flaps = tokio::task::block_in_place(|| cluster.server.get(STATUS))["flapping"].clone();
    let lun_flap = flaps
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["wwid"] == W_VM && x.get("node").is_none())
        .unwrap()
        .clone();
    let marks = wait_js(
        c,
        &format!(
            "const tr = (w) => document.querySelector(`#matrix tr[data-wwid=\"${{w}}\"]`);
             const th = tr('{W_VM}').querySelector('th.col-wwid');
             const fl = th.querySelector('.flap');
             if (!th.classList.contains('flapping') || fl.hidden) return null;
             const td = (w, n) => tr(w).querySelector(`td.cell[data-node=${{n}}]`);
             return {{ flap: th.dataset.flap, title: th.title, shown: fl.offsetWidth > 0 && fl.textContent,
                       n1: td('{W_VM}', 'n1').dataset.flap || null, n1title: td('{W_VM}', 'n1').title,
                       n1text: td('{W_VM}', 'n1').textContent,
                       n2: td('{W_VM}', 'n2').dataset.flap || null,
                       flapping: document.querySelectorAll('#matrix .flapping').length }};"
        ),
        "the flapping markers",
    )
    .await;
    eprintln!("markers: {marks:#}");
    let changes = lun_flap["changes"].as_u64().unwrap();
    assert_eq!(marks["flap"], changes.to_string(), "{marks}");
    assert_eq!(marks["shown"], "⟳", "a visible marker: {marks}");
    let title = marks["title"].as_str().unwrap();
    assert!(
        title.contains("flapping") && title.contains(&format!("{changes} changes since ")),
        "{title}"
    );
    assert!(marks["n1"].is_string(), "the cell on n1 flaps: {marks}");
    assert!(
        marks["n1title"].as_str().unwrap().contains("flapping"),
        "{marks}"
    );
    assert!(marks["n1text"].as_str().unwrap().contains('⟳'), "{marks}");
    assert_eq!(marks["n2"], Value::Null, "n2's cell does not flap: {marks}");
    // Exactly what the API lists flaps on the page (backup, say, flaps too when it entered the
    // matrix after the recorder's first observation and then failed: two changes).
    let shown_flaps = || async {
        let v = js(
            c,
            "return [...document.querySelectorAll('#matrix .flapping')].map((e) =>
               `${e.closest('tr').dataset.wwid} ${e.dataset.node || '*'}`).sort()",
        )
        .await;
        let mut v: Vec<String> = serde_json::from_value(v).unwrap();
        v.sort();
        v
    };
    let api_flaps = || {
        let s = tokio::task::block_in_place(|| cluster.server.get(STATUS));
        let mut v: Vec<String> = s["flapping"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f["wwid"].as_str().unwrap(),
                    f["node"].as_str().unwrap_or("*")
                )
            })
            .collect();
        v.sort();
        v
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let (page, api) = (shown_flaps().await, api_flaps());
        if page == api {
            assert!(page.contains(&format!("{W_VM} n1")), "{page:?}");
            assert!(!page.contains(&format!("{W_VM} n2")), "{page:?}");
            break;
        }
        assert!(Instant::now() < deadline, "page {page:?} vs API {api:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(js(c, "return window.__marker").await, 14, "no reload");
    screenshot(c, "events").await;

    // The LUN's link in the panel opens its timeline: the API's events as segments.
    click_css(
        c,
        &format!("#events-list li.ev[data-kind=lun][data-wwid=\"{W_VM}\"] a.ev-lun"),
    )
    .await;
    wait_js(
        c,
        &format!("return location.hash === '#/lun/{W_VM}'"),
        "the timeline route",
    )
    .await;
    let events = api_events(&cluster.server, &format!("wwid={W_VM}&kind=health"));
    let last_seq = events.last().unwrap()["seq"].as_u64().unwrap();
    let page = wait_js(
        c,
        &format!(
            "const t = (() => {{ {READ_TIMELINE} }})(); return t && t.rows[0] === {last_seq} ? t : null;"
        ),
        "the timeline of vm-disks",
    )
    .await;
    eprintln!("timeline: {page:#}");
    assert_eq!(
        page["order"],
        json!(["cluster", "node:n1", "node:n2"]),
        "{page}"
    );
    let (start, end) = (
        page["start"].as_i64().unwrap(),
        page["end"].as_i64().unwrap(),
    );
    assert!((end - start - 3600).abs() <= 1, "1 h by default: {page}");
    let want = expected_segments(&events, "cluster", start, end, ("optimal", ""));
    assert!(
        want.iter().any(|s| s.0 == "degraded") && want.len() >= 3,
        "the degrade and the recovery are in the range: {want:?}"
    );
    assert_band(&page, "cluster", &want);
    let want = expected_segments(&events, "node:n1", start, end, ("optimal", "4/4"));
    assert!(want.iter().any(|s| s.1 == "3/4"), "{want:?}");
    assert_band(&page, "node:n1", &want);
    let want = expected_segments(&events, "node:n2", start, end, ("optimal", "4/4"));
    assert!(want.iter().all(|s| s.0 != "degraded"), "{want:?}");
    assert_band(&page, "node:n2", &want);
    // The matrix's colours: the degraded segment is filled like a degraded cell.
    let degraded_fill = page["bands"]["cluster"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == "degraded")
        .unwrap()["fill"]
        .clone();
    assert_eq!(degraded_fill, "rgb(255, 239, 194)", "--deg-bg: {page}");
    let rows: Vec<u64> = events
        .iter()
        .rev()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(page["rows"], json!(rows), "the event list, newest first");
    assert!(
        page["title"].as_str().unwrap().contains("vm-disks"),
        "{page}"
    );
    assert!(
        page["flap"].as_str().unwrap().contains("flapping"),
        "{page}"
    );

    // 24 h: the same segments over a day.
    click(c, "range-24h").await;
    let day = wait_js(
        c,
        &format!(
            "const t = (() => {{ {READ_TIMELINE} }})(); return t && t.end - t.start > 86000 && t.rows[0] === {last_seq} ? t : null;"
        ),
        "the 24 h timeline",
    )
    .await;
    assert_eq!(
        js(
            c,
            "return document.getElementById('range-24h').getAttribute('aria-pressed')"
        )
        .await,
        "true"
    );
    let (start, end) = (day["start"].as_i64().unwrap(), day["end"].as_i64().unwrap());
    assert_band(
        &day,
        "cluster",
        &expected_segments(&events, "cluster", start, end, ("optimal", "")),
    );
    click(c, "range-1h").await;
    screenshot(c, "timeline").await;

    // The matrix's row header links to the timeline too; a change while it is open shows
    // without a reload.
    js(c, "location.hash = '#/health'; return true").await;
    wait_js(
        c,
        "return document.querySelectorAll('#matrix tbody tr.row').length === 3",
        "the matrix again",
    )
    .await;
    click_css(
        c,
        &format!("#matrix tr[data-wwid=\"{W_AR}\"] th.col-wwid a.lun-link"),
    )
    .await;
    let quiet = wait_js(
        c,
        &format!(
            "const t = (() => {{ {READ_TIMELINE} }})(); return location.hash === '#/lun/{W_AR}' && t && t.title.includes('archive') && t.order.length === 3 ? t : null;"
        ),
        "the timeline of archive",
    )
    .await;
    // Archive never changed (it may have arrived in the matrix after the first observation).
    let ar_events = api_events(&cluster.server, &format!("wwid={W_AR}&kind=health"));
    let (start, end) = (
        quiet["start"].as_i64().unwrap(),
        quiet["end"].as_i64().unwrap(),
    );
    for (band, now) in [
        ("cluster", ("optimal", "")),
        ("node:n2", ("optimal", "2/2")),
    ] {
        let want = expected_segments(&ar_events, band, start, end, now);
        assert_eq!(want.last().unwrap().0, "optimal");
        assert_band(&quiet, band, &want);
    }
    let rows: Vec<u64> = ar_events
        .iter()
        .rev()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(quiet["rows"], json!(rows), "{quiet}");
    if rows.is_empty() {
        assert!(!text_of(c, "lun-events-empty").await.is_empty());
    }
    js(c, "window.__marker = 15; return true").await;
    cluster
        .node("n1")
        .sim
        .update(|s| s.maps[2].paths[1].up = false);
    let live = wait_js(
        c,
        &format!(
            "const t = (() => {{ {READ_TIMELINE} }})(); return t && t.rows.length >= {} + 2 && t.bands['node:n1'].some(s => s.state === 'degraded') ? t : null;",
            rows.len()
        ),
        "archive's degrade in the open timeline",
    )
    .await;
    let ar_events = api_events(&cluster.server, &format!("wwid={W_AR}&kind=health"));
    let (start, end) = (
        live["start"].as_i64().unwrap(),
        live["end"].as_i64().unwrap(),
    );
    assert_band(
        &live,
        "node:n1",
        &expected_segments(&ar_events, "node:n1", start, end, ("degraded", "1/2")),
    );
    assert_band(
        &live,
        "cluster",
        &expected_segments(&ar_events, "cluster", start, end, ("degraded", "")),
    );
    assert_eq!(js(c, "return window.__marker").await, 15, "no reload");
    b.close().await;
}

/// Answers the page's status and event calls from `window.__ev` (events at fixed ages before
/// the page's now, peer junk among them, a flapping list with junk); records the URLs asked.
const EVENTS_INTERCEPT: &str = r#"
const W = arguments[0];
const now = Math.floor(Date.now() / 1000);
const t = (ago) => now - ago;
const c = (state, a, n) => ({ state, 'paths-active': a, 'paths-total': n });
const alias = '<i>vm</i>';
const events = [
  { seq: 1, time: t(3000), kind: 'lun', wwid: W, alias, before: 'optimal', after: 'degraded' },
  { seq: 2, time: t(3000), kind: 'cell', wwid: W, alias, node: 'n1', before: c('optimal', 4, 4), after: c('degraded', 2, 4) },
  { seq: 3, time: t(1800), kind: 'config', doc: 'multipath-config', actor: 'token:admin@pve', 'digest-before': 'aa', 'digest-after': 'bb', summary: 'no-path-retry: queue' },
  { seq: 4, time: t(1200), kind: 'lun', wwid: W, alias, before: 'degraded', after: 'failed' },
  { seq: 5, time: t(1200), kind: 'cell', wwid: W, alias, node: 'n1', before: c('degraded', 2, 4), after: c('failed', 0, 4) },
  { seq: 6, time: t(600), kind: 'lun', wwid: W, alias, before: 'failed', after: 'optimal' },
  { seq: 7, time: t(600), kind: 'cell', wwid: W, alias, node: 'n1', before: c('failed', 0, 4), after: c('optimal', 4, 4) },
  { seq: 8, time: t(300), kind: 'cell', wwid: W, alias, node: 'n3', after: c('optimal', 2, 2) },
  { seq: '9', time: t(100), kind: 'lun', wwid: W, before: 'optimal', after: 'failed' },
  { seq: 10, time: t(100), kind: 'cell', wwid: W, node: 42, after: c('failed', 0, 4) },
  { seq: 11, time: t(100), kind: 'bogus', wwid: W },
  { seq: 12, time: 'soon', kind: 'lun', wwid: W, after: 'failed' },
  null, 'junk',
];
const status = { luns: [{ wwid: W, alias, 'cluster-state': 'optimal', nodes: {
    n1: c('optimal', 4, 4), n2: c('optimal', 2, 2), n3: c('optimal', 2, 2) } }], nodes: {},
  flapping: [{ wwid: W, changes: 3, since: t(1200), last: t(600) },
    { wwid: W, node: 'n1', changes: 3, since: t(1200), last: t(600) },
    { wwid: 42, changes: 9 }, { wwid: W, node: 7, changes: 9 }, 'junk', null] };
window.__ev = { urls: [], now };
const real = window.fetch.bind(window);
const answer = (body) => Promise.resolve(new Response(JSON.stringify({ data: body }),
  { status: 200, headers: { 'Content-Type': 'application/json' } }));
window.fetch = (input, init) => {
  const url = String(input);
  if (url.endsWith('/cluster/multipath/status')) return answer(status);
  if (url.includes('/cluster/multipath/events')) {
    window.__ev.urls.push(url);
    const q = new URL(url, location.href).searchParams;
    let list = q.has('after') ? [] : events;
    if (q.get('wwid')) list = list.filter((e) => !e || typeof e !== 'object' || e.wwid === q.get('wwid'));
    return answer({ events: list, 'last-seq': 12, truncated: false });
  }
  return real(input, init);
};
return now;
"#;

/// Against an intercepted API (exact times, peer junk): the timeline draws each band's
/// segments exactly between its events (the cluster state; n1's cells with path counts; n2
/// without events in its current state; n3 absent until its cell appeared), lists the LUN's
/// events, treats aliases as text and ignores malformed events; the range buttons ask for
/// `since=24h`/`7d`; the panel lists the well-formed events newest first; the matrix marks
/// the flapping row and cell and ignores malformed flapping entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_segments_and_markers_from_exact_events() {
    let Some(b) = browser("timeline_segments_and_markers_from_exact_events").await else {
        return;
    };
    let c = &b.client;
    let (_dir, server) = lone_server();
    server.open(c, "#/nodes").await;
    let now = c
        .execute(EVENTS_INTERCEPT, vec![json!(W_VM)])
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    js(c, &format!("location.hash = '#/lun/{W_VM}'; return true")).await;
    let page = wait_js(
        c,
        &format!(
            "const t = (() => {{ {READ_TIMELINE} }})(); return t && t.rows.length ? t : null;"
        ),
        "the timeline",
    )
    .await;
    eprintln!("timeline: {page:#}");
    let (start, end) = (
        page["start"].as_i64().unwrap(),
        page["end"].as_i64().unwrap(),
    );
    assert!((end - now).abs() <= 5 && end - start == 3600, "{page}");
    assert_eq!(
        page["order"],
        json!(["cluster", "node:n1", "node:n2", "node:n3"])
    );
    let seg = |s: &str, p: &str, from: i64, to: i64| (s.to_owned(), p.to_owned(), from, to);
    let t = |ago: i64| now - ago;
    assert_band(
        &page,
        "cluster",
        &[
            seg("optimal", "", start, t(3000)),
            seg("degraded", "", t(3000), t(1200)),
            seg("failed", "", t(1200), t(600)),
            seg("optimal", "", t(600), end),
        ],
    );
    assert_band(
        &page,
        "node:n1",
        &[
            seg("optimal", "4/4", start, t(3000)),
            seg("degraded", "2/4", t(3000), t(1200)),
            seg("failed", "0/4", t(1200), t(600)),
            seg("optimal", "4/4", t(600), end),
        ],
    );
    assert_band(&page, "node:n2", &[seg("optimal", "2/2", start, end)]);
    assert_band(
        &page,
        "node:n3",
        &[
            seg("none", "", start, t(300)),
            seg("optimal", "2/2", t(300), end),
        ],
    );
    // Exact times: the first segment starts at the range's start, the last ends at its end.
    let first = &page["bands"]["cluster"][0];
    assert_eq!(first["from"], start);
    assert_eq!(
        page["rows"],
        json!([8, 7, 6, 5, 4, 2, 1]),
        "the LUN's events, junk left out"
    );
    let title = page["title"].as_str().unwrap();
    assert!(title.contains("<i>vm</i>"), "the alias as text: {title}");
    assert_eq!(
        js(c, "return document.querySelectorAll('#main i').length").await,
        0
    );
    assert!(
        page["flap"].as_str().unwrap().contains("3 changes"),
        "{page}"
    );
    // Failed is red like a failed cell; a missing cell (n3 before it appeared) is grey.
    assert_eq!(page["bands"]["cluster"][2]["fill"], "rgb(198, 40, 40)");
    assert_eq!(page["bands"]["node:n3"][0]["state"], "none");
    screenshot(c, "timeline-exact").await;

    // 15 min: the older events are left of the range; it starts in the state they left.
    click(c, "range-15m").await;
    let page = wait_js(
        c,
        &format!(
            "const t = (() => {{ {READ_TIMELINE} }})(); return t && t.end - t.start === 900 ? t : null;"
        ),
        "the 15 min range",
    )
    .await;
    let (start, end) = (
        page["start"].as_i64().unwrap(),
        page["end"].as_i64().unwrap(),
    );
    assert_band(
        &page,
        "cluster",
        &[
            seg("failed", "", start, t(600)),
            seg("optimal", "", t(600), end),
        ],
    );
    assert_band(
        &page,
        "node:n1",
        &[
            seg("failed", "0/4", start, t(600)),
            seg("optimal", "4/4", t(600), end),
        ],
    );
    assert_eq!(page["bands"]["cluster"][0]["from"], start);
    for (button, since, secs) in [("range-24h", "24h", 86400), ("range-7d", "7d", 7 * 86400)] {
        click(c, button).await;
        let page = wait_js(
            c,
            &format!(
                "const t = (() => {{ {READ_TIMELINE} }})(); return t && t.end - t.start === {secs} ? t : null;"
            ),
            "the longer range",
        )
        .await;
        let urls = js(c, "return window.__ev.urls").await;
        assert!(
            urls.as_array()
                .unwrap()
                .iter()
                .any(|u| u.as_str().unwrap().contains(&format!("since={since}"))),
            "{urls}"
        );
        let (start, end) = (
            page["start"].as_i64().unwrap(),
            page["end"].as_i64().unwrap(),
        );
        assert_band(
            &page,
            "cluster",
            &[
                seg("optimal", "", start, t(3000)),
                seg("degraded", "", t(3000), t(1200)),
                seg("failed", "", t(1200), t(600)),
                seg("optimal", "", t(600), end),
            ],
        );
    }
    click(c, "range-1h").await;

    // The health page: the panel (well-formed events only, newest first, aliases as text) and
    // the flapping markers.
    js(c, "location.hash = '#/health'; return true").await;
    let panel = wait_js(
        c,
        &format!("const p = (() => {{ {READ_PANEL} }})(); return p.length ? p : null;"),
        "the panel",
    )
    .await;
    let seqs: Vec<u64> = panel
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [8, 7, 6, 5, 4, 3, 2, 1], "{panel:#}");
    assert_eq!(
        panel[0]["states"],
        json!(["none", "optimal"]),
        "a cell that appeared"
    );
    assert!(panel[0]["text"].as_str().unwrap().contains("not present"));
    assert_eq!(panel[5]["kind"], "config");
    for part in [
        "multipath-config",
        "token:admin@pve",
        "no-path-retry: queue",
    ] {
        assert!(
            panel[5]["text"].as_str().unwrap().contains(part),
            "{part}: {panel:#}"
        );
    }
    assert_eq!(panel[7]["link"], "<i>vm</i>");
    assert_eq!(panel[4]["states"], json!(["degraded", "failed"]));
    let marks = wait_js(
        c,
        &format!(
            "const tr = document.querySelector('#matrix tr[data-wwid=\"{W_VM}\"]');
             if (!tr) return null;
             const td = (n) => tr.querySelector(`td.cell[data-node=${{n}}]`).dataset.flap || null;
             return {{ row: tr.querySelector('th.col-wwid').dataset.flap || null, n1: td('n1'), n2: td('n2'), n3: td('n3'),
                       title: tr.querySelector('th.col-wwid').title }};"
        ),
        "the matrix",
    )
    .await;
    assert_eq!(marks["row"], "3", "{marks}");
    assert_eq!(marks["n1"], "3", "{marks}");
    assert_eq!(marks["n2"], Value::Null, "{marks}");
    assert_eq!(marks["n3"], Value::Null, "{marks}");
    assert!(
        marks["title"]
            .as_str()
            .unwrap()
            .contains("3 changes since "),
        "{marks}"
    );
    // The panel follows the log from its last sequence number...
    wait_js(
        c,
        "return window.__ev.urls.some((u) => !u.includes('wwid=') && u.includes('after=12&'))",
        "the panel following with after=",
    )
    .await;
    // ... and stops when the page is left.
    js(c, "location.hash = '#/nodes'; return true").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = js(c, "return window.__ev.urls.length").await;
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert_eq!(
        js(c, "return window.__ev.urls.length").await,
        asked,
        "no event calls after leaving the page"
    );
    b.close().await;
}

/// `mpcluster demo`, killed on drop.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's screenshots of the event history, from `mpcluster demo` (four simulated nodes;
/// its looping timeline, a step every 20 s, degrades vm-disks, fails backup, silences a node,
/// takes a target port down): after 16 minutes (so that the last 15 are all recorded history),
/// at a moment when a LUN is not optimal, the health page with the recent events and the
/// flapping markers (`events.png`) and vm-disks' timeline over 15 minutes (`timeline.png`).
/// It runs on request (`-- --ignored event_screenshots`); the demo runs from a copy of the
/// binary, so that builds meanwhile do not trip over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs the demo for 16 minutes; for the README's screenshots"]
async fn event_screenshots_of_the_demo() {
    const VMS: &str = "3600a098038303053453f463045727a01";
    const RUN: Duration = Duration::from_secs(16 * 60);
    let Some(b) = browser("event_screenshots_of_the_demo").await else {
        return;
    };
    let c = &b.client;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("mpcluster");
    std::fs::copy(env!("CARGO_BIN_EXE_mpcluster"), &bin).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let _demo = Demo(
        std::process::Command::new(&bin)
            .args(["demo", "--nodes", "4", "--step", "20", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--dir")
            .arg(dir.path().join("demo"))
            .env("MPCLUSTER_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let token_file = dir.path().join("demo/admin-token");
    let token = tokio::task::block_in_place(|| {
        poll_for(WAIT, || {
            std::fs::read_to_string(&token_file)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| t.contains(':'))
        })
    })
    .expect("the demo's token");
    let get = |path: &str| -> Option<Value> {
        let r = ureq::get(&format!("{url}{path}"))
            .set("Authorization", &format!("Bearer {token}"))
            .timeout(Duration::from_secs(5))
            .call()
            .ok()?;
        serde_json::from_str::<Value>(&r.into_string().ok()?)
            .ok()
            .map(|v| v["data"].clone())
    };
    tokio::task::block_in_place(|| {
        std::thread::sleep(RUN.saturating_sub(started.elapsed()));
        // vm-disks flapping (the default rule: 4 changes in 10 minutes), a LUN not optimal.
        poll_for(Duration::from_secs(240), || {
            let s = get("/api2/json/cluster/multipath/status")?;
            let flaps = s["flapping"].as_array()?.iter().any(|f| f["wwid"] == VMS);
            let trouble = s["luns"]
                .as_array()?
                .iter()
                .any(|l| l["cluster-state"] != "optimal");
            (flaps && trouble).then_some(())
        })
    })
    .expect("vm-disks flapping in the demo");
    open_ui(c, &url, Some(&token), "#/health").await;
    let panel = wait_js(
        c,
        &format!(
            "const p = (() => {{ {READ_PANEL} }})(); return p.length === 20 && document.querySelector('#matrix th.col-wwid.flapping') ? p : null;"
        ),
        "the panel full and vm-disks marked",
    )
    .await;
    assert!(
        panel
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["seq"].as_u64().is_some()),
        "{panel:#}"
    );
    screenshot(c, "demo-events").await;
    docs_screenshot(c, "events", 860).await;
    js(c, &format!("location.hash = '#/lun/{VMS}'; return true")).await;
    click(c, "range-15m").await;
    let page = wait_js(
        c,
        &format!("const t = (() => {{ {READ_TIMELINE} }})(); return t && t.end - t.start === 900 && t.rows.length >= 4 ? t : null;"),
        "vm-disks' timeline",
    )
    .await;
    assert!(
        page["bands"]["cluster"].as_array().unwrap().len() >= 3,
        "{page:#}"
    );
    screenshot(c, "demo-timeline").await;
    docs_screenshot(c, "timeline", 720).await;
    b.close().await;
}
