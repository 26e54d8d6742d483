//! Differential test against the seed's rules: `../shared/seed/oracle/seed_status.pl` states the
//! seed's cluster status as a runnable Perl script over our snapshot format. Every case of the
//! seed's test list (as a snapshot) and a few hundred random well-formed snapshots must give the
//! same `luns` and the same apply errors from both.
//!
//! Where we deliberately differ from the seed (malformed peer data, truncated broadcasts,
//! collection errors, never-seen agents; listed in ARCHITECTURE.md), the generator does not go,
//! and `deviations_are_the_documented_ones` pins each difference down instead.
//!
//! Needs `perl` (core modules only) and the shared oracle; under `CI=true` their absence fails.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use mpcluster_core::snapshot::Snapshot;
use mpcluster_core::status::assemble;
use serde_json::{Map, Value, json};

const NOW: i64 = 1_700_000_000;

fn oracle_path() -> Option<PathBuf> {
    let shared = std::env::var_os("MPCLUSTER_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    let p = shared.join("seed/oracle/seed_status.pl");
    let have_perl = Command::new("perl")
        .arg("-e1")
        .status()
        .is_ok_and(|s| s.success());
    if p.is_file() && have_perl {
        return Some(p);
    }
    let why = format!(
        "the seed oracle needs perl and {} (set MPCLUSTER_SHARED to the shared/ folder)",
        p.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipping: {why}");
    None
}

/// Run the oracle on a snapshot (on its standard input).
fn run_oracle(script: &PathBuf, snap: &Value) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new("perl")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(snap.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The oracle's answer for a snapshot.
fn oracle(script: &PathBuf, snap: &Value) -> Value {
    let out = run_oracle(script, snap);
    assert!(
        out.status.success(),
        "oracle failed on {snap}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Our answer, in the oracle's shape: `luns` as is, `nodes` reduced to the apply errors (the
/// seed knows nothing else about nodes).
fn ours(snap: &Value) -> Value {
    let s = Snapshot::from_json(&snap.to_string()).unwrap();
    let st = serde_json::to_value(assemble(&s).status).unwrap();
    let mut nodes = Map::new();
    for (node, issues) in st["nodes"].as_object().unwrap() {
        let mut kept = Map::new();
        for k in ["apply-error", "apply-time"] {
            if let Some(v) = issues.get(k) {
                kept.insert(k.to_owned(), v.clone());
            }
        }
        if !kept.is_empty() {
            nodes.insert(node.clone(), Value::Object(kept));
        }
    }
    json!({"luns": st["luns"], "nodes": nodes})
}

fn assert_same(script: &PathBuf, name: &str, snap: &Value) {
    let want = oracle(script, snap);
    let have = ours(snap);
    assert_eq!(
        have, want,
        "{name}: status differs from the seed's rules\nsnapshot: {snap}\nours:   {have}\noracle: {want}"
    );
}

// ---------------------------------------------------------------------------------------------
// The seed's test list, as snapshots

fn entry(state: &str, active: u64, total: u64) -> Value {
    json!({"state": state, "paths-active": active, "paths-total": total})
}

/// A snapshot from the seed test's inputs: per-node maps (broadcast now), who is online, and the
/// per-WWID expected sets (`None`: the seed's default, every active node).
fn seed_case(
    allow: &[&str],
    aliases: Value,
    used_by: Value,
    node_kv: Value,
    online: &[(&str, bool)],
    expected: Option<Value>,
) -> Value {
    let kv: Map<String, Value> = node_kv
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, maps)| {
            (
                n.clone(),
                Value::String(json!({"time": NOW, "maps": maps}).to_string()),
            )
        })
        .collect();
    let members: Map<String, Value> = online
        .iter()
        .map(|(n, on)| ((*n).to_owned(), json!({"online": on})))
        .collect();
    // Nodes named in an expected set must be known to the liveness rule, as in the seed where
    // every cluster node has an online flag.
    let mut exp_nodes = Map::new();
    if let Some(e) = &expected {
        for set in e.as_object().unwrap().values() {
            for n in set.as_object().unwrap().keys() {
                exp_nodes.insert(n.clone(), json!(1));
            }
        }
    }
    json!({
        "version": 1, "now": NOW,
        "config": {"wwids": allow, "aliases": aliases},
        "members": members,
        "kv": {"multipath": kv},
        "expectations": {"nodes": exp_nodes, "wwid-nodes": expected.unwrap_or(json!({})),
                         "consumers": used_by},
    })
}

fn seed_cases() -> Vec<(&'static str, Value)> {
    let iscsi = |mut e: Value| {
        e["transport"] = json!("iscsi");
        e
    };
    let sized = |mut e: Value, size: u64| {
        e["size"] = json!(size);
        e
    };
    let expected_kv = json!({"nodeA": {"wA": entry("optimal", 2, 2)}});
    let exp_online: &[(&str, bool)] = &[("nodeA", true), ("nodeS", true), ("nodeOff", false)];
    vec![
        (
            "main case (allow-list incl. unseen WWID, alias, used-by, offline reporter)",
            seed_case(
                &["wA", "wB", "wZ"],
                json!({"wA": "lun-a"}),
                json!({"wB": "mptank"}),
                json!({
                    "nodeA": {"wA": iscsi(entry("optimal", 2, 2)),
                              "wB": sized(iscsi(entry("optimal", 2, 2)), 42)},
                    "nodeB": {"wA": iscsi(entry("degraded", 1, 2))},
                    "nodeC": {"wA": entry("optimal", 2, 2)},
                }),
                &[("nodeA", true), ("nodeB", true), ("nodeC", false)],
                None,
            ),
        ),
        (
            "no online active node leaves unknown",
            seed_case(
                &["wA"],
                json!({}),
                json!({}),
                json!({"dead": {"wA": entry("optimal", 2, 2)}}),
                &[("dead", false)],
                None,
            ),
        ),
        (
            "failed outranks degraded",
            seed_case(
                &["wA"],
                json!({}),
                json!({}),
                json!({"n1": {"wA": entry("degraded", 1, 2)}, "n2": {"wA": entry("failed", 0, 2)}}),
                &[("n1", true), ("n2", true)],
                None,
            ),
        ),
        (
            "silent expected node is missing",
            seed_case(
                &["wA"],
                json!({}),
                json!({}),
                expected_kv.clone(),
                exp_online,
                Some(json!({"wA": {"nodeA": 1, "nodeS": 1, "nodeOff": 1}})),
            ),
        ),
        (
            "without expected set the silent node is absent",
            seed_case(&["wA"], json!({}), json!({}), expected_kv, exp_online, None),
        ),
        (
            "off-list WWID synthesizes no missing cells",
            seed_case(
                &[],
                json!({}),
                json!({}),
                json!({"nodeA": {"wX": entry("optimal", 1, 1)}}),
                &[("nodeA", true), ("nodeS", true)],
                Some(json!({})),
            ),
        ),
        (
            "zoned LUN and hand-made map",
            seed_case(
                &["wA"],
                json!({}),
                json!({}),
                json!({"n1": {"wA": entry("optimal", 2, 2)}, "n2": {"wHand": entry("degraded", 1, 2)}}),
                &[("n1", true), ("n2", true)],
                Some(json!({"wA": {"n1": 1}})),
            ),
        ),
        (
            "unrecognized peer state clamps",
            seed_case(
                &["wA"],
                json!({}),
                json!({}),
                json!({"n1": {"wA": entry("frobnicated", 1, 2)}}),
                &[("n1", true)],
                Some(json!({"wA": {"n1": 1}})),
            ),
        ),
        (
            "size is the first defined among online reporters in name order",
            seed_case(
                &[],
                json!({}),
                json!({}),
                json!({"a": {"w": sized(entry("optimal", 1, 1), 7)},
                       "b": {"w": entry("optimal", 1, 1)},
                       "c": {"w": sized(entry("optimal", 1, 1), 9)}}),
                &[("a", false), ("b", true), ("c", true)],
                None,
            ),
        ),
        (
            "offline reporter expected but not reporting shows unknown",
            seed_case(
                &["wA"],
                json!({}),
                json!({}),
                json!({"n1": {"wA": entry("optimal", 2, 2)}, "n2": {"wB": entry("optimal", 2, 2)}}),
                &[("n1", true), ("n2", false)],
                Some(json!({"wA": {"n1": 1, "n2": 1}})),
            ),
        ),
    ]
}

#[test]
fn seed_test_list_agrees_with_the_oracle() {
    let Some(script) = oracle_path() else { return };
    for (name, snap) in seed_cases() {
        assert_same(&script, name, &snap);
    }
}

// ---------------------------------------------------------------------------------------------
// Random well-formed snapshots

/// splitmix64: small, deterministic, good enough to spread cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn subset<'a>(&mut self, from: &[&'a str], percent: u64) -> Vec<&'a str> {
        from.iter()
            .copied()
            .filter(|_| self.chance(percent))
            .collect()
    }
}

const NODES: [&str; 6] = ["pve1", "pve2", "pve3", "pve4", "pve5", "pve6"];
const WWIDS: [&str; 6] = [
    "3600a0980383030534532a",
    "3600a0980383030534532b",
    "3600a0980383030534532c",
    "36001405aa000000000000d",
    "36001405aa000000000000e",
    "eui.0025388b91d0f0f1",
];
const STATES: [&str; 6] = [
    "optimal", "degraded", "failed", "missing", "unknown", "weird",
];

fn random_snapshot(rng: &mut Rng) -> Value {
    let stale_after = [None, Some(180), Some(30)][rng.below(3) as usize];
    let limit = stale_after.unwrap_or(180);
    let allow = rng.subset(&WWIDS, 50);
    let mut aliases = Map::new();
    for w in &allow {
        if rng.chance(30) {
            aliases.insert((*w).to_owned(), json!(format!("lun{}", rng.below(100))));
        }
    }
    let members: Map<String, Value> = if rng.chance(20) {
        Map::new() // standalone
    } else {
        rng.subset(&NODES, 75)
            .into_iter()
            .map(|n| (n.to_owned(), json!({"online": rng.chance(75)})))
            .collect()
    };
    let mut multipath = Map::new();
    for n in rng.subset(&NODES, 70) {
        let mut maps = Map::new();
        for w in rng.subset(&WWIDS, 50) {
            let total = rng.below(5);
            let active = rng.below(total + 1);
            let mut e = entry(
                STATES[rng.below(STATES.len() as u64) as usize],
                active,
                total,
            );
            if rng.chance(50) {
                e["transport"] = json!(["iscsi", "fc", "nvme"][rng.below(3) as usize]);
            }
            if rng.chance(50) {
                e["size"] = json!(rng.below(4) * 1024);
            }
            maps.insert(w.to_owned(), e);
        }
        let mut b = json!({"maps": maps});
        // Fresh, exactly at the limit, just past it, or without a time.
        match rng.below(5) {
            0 => {}
            1 => b["time"] = json!(NOW - limit as i64),
            2 => b["time"] = json!(NOW - limit as i64 - 1),
            _ => b["time"] = json!(NOW - rng.below(limit) as i64),
        }
        multipath.insert(n.to_owned(), Value::String(b.to_string()));
    }
    let mut apply = Map::new();
    for n in rng.subset(&NODES, 25) {
        let v = if rng.chance(70) {
            json!({"error": format!("reconfigure failed on {n}"), "time": NOW - 5})
        } else {
            json!({"error": "", "time": NOW})
        };
        apply.insert(n.to_owned(), Value::String(v.to_string()));
    }
    let exp_nodes: Map<String, Value> = rng
        .subset(&NODES, 50)
        .into_iter()
        .map(|n| (n.to_owned(), json!(1)))
        .collect();
    let mut wwid_nodes = Map::new();
    let mut consumers = Map::new();
    for w in &allow {
        if rng.chance(30) {
            let set: Map<String, Value> = rng
                .subset(&NODES, 50)
                .into_iter()
                .map(|n| (n.to_owned(), json!(1)))
                .collect();
            if !set.is_empty() {
                wwid_nodes.insert((*w).to_owned(), Value::Object(set));
                consumers.insert((*w).to_owned(), json!("vmstore"));
            }
        }
    }
    let mut snap = json!({
        "version": 1, "now": NOW,
        "config": {"wwids": allow, "aliases": aliases},
        "members": members,
        "kv": {"multipath": multipath, "multipath-apply": apply},
        "expectations": {"nodes": exp_nodes, "wwid-nodes": wwid_nodes, "consumers": consumers},
    });
    if let Some(s) = stale_after {
        snap["stale-after"] = json!(s);
    }
    snap
}

#[test]
fn random_snapshots_agree_with_the_oracle() {
    let Some(script) = oracle_path() else { return };
    let cases: u64 = std::env::var("MPCLUSTER_ORACLE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 0..cases {
        let snap = random_snapshot(&mut Rng(seed));
        assert_same(&script, &format!("random snapshot (seed {seed})"), &snap);
    }
}

// ---------------------------------------------------------------------------------------------
// The documented deviations (ARCHITECTURE.md, "Where the status differs from the seed")

#[test]
fn deviations_are_the_documented_ones() {
    let Some(script) = oracle_path() else { return };
    let base = |maps: Value| {
        json!({
            "version": 1, "now": NOW, "config": {"wwids": ["wA"]},
            "members": {"n1": {"online": true}, "n2": {"online": true}},
            "kv": {"multipath": {
                "n1": json!({"time": NOW, "maps": {"wA": entry("optimal", 2, 2)}}).to_string(),
                "n2": json!({"time": NOW, "maps": maps}).to_string(),
            }},
        })
    };
    let cell = |v: &Value, node: &str| v["luns"][0]["nodes"][node].clone();

    // A non-object map entry: the seed dies on it (the whole status fails); we drop the entry.
    let snap = base(json!({"wA": "optimal"}));
    let out = run_oracle(&script, &snap);
    assert!(
        !out.status.success(),
        "the seed fails on a non-object entry"
    );
    assert_eq!(
        cell(&ours(&snap), "n2"),
        json!({"state": "missing"}),
        "we drop the malformed entry; the online node then lacks the LUN"
    );

    // Non-integer counts: the seed passes them through; we report null.
    let snap = base(json!({"wA": {"state": "optimal", "paths-active": "2", "paths-total": 2.5}}));
    assert_eq!(
        cell(&oracle(&script, &snap), "n2"),
        json!({"state": "optimal", "paths-active": "2", "paths-total": 2.5})
    );
    assert_eq!(
        cell(&ours(&snap), "n2"),
        json!({"state": "optimal", "paths-active": null, "paths-total": null})
    );

    // A non-string transport: the seed passes it through; we leave it out.
    let snap = base(
        json!({"wA": {"state": "optimal", "paths-active": 2, "paths-total": 2, "transport": 7}}),
    );
    assert_eq!(cell(&oracle(&script, &snap), "n2")["transport"], json!(7));
    assert_eq!(cell(&ours(&snap), "n2").get("transport"), None);

    // A numeric-string time: Perl compares it as a number; we treat the broadcast as timeless
    // (stale), so the node is offline.
    let mut snap = base(json!({"wA": entry("failed", 0, 2)}));
    snap["kv"]["multipath"]["n2"] =
        json!(json!({"time": NOW.to_string(), "maps": {"wA": entry("failed", 0, 2)}}).to_string());
    assert_eq!(cell(&oracle(&script, &snap), "n2")["state"], "failed");
    assert_eq!(cell(&ours(&snap), "n2")["state"], "unknown");

    // A non-string apply error: the seed shows whatever is there; we ignore it.
    let mut snap = base(json!({"wA": entry("optimal", 2, 2)}));
    snap["kv"]["multipath-apply"] =
        json!({"n2": json!({"error": {"x": 1}, "time": NOW}).to_string()});
    assert_eq!(
        oracle(&script, &snap)["nodes"]["n2"]["apply-error"],
        json!({"x": 1})
    );
    assert_eq!(ours(&snap)["nodes"].get("n2"), None);

    // A broadcast dated ten years ahead: the seed trusts it; we do not.
    let mut snap = base(json!({"wA": entry("optimal", 2, 2)}));
    snap["kv"]["multipath"]["n2"] = json!(
        json!({"time": NOW + 315_360_000, "maps": {"wA": entry("optimal", 2, 2)}}).to_string()
    );
    assert_eq!(cell(&oracle(&script, &snap), "n2")["state"], "optimal");
    assert_eq!(cell(&ours(&snap), "n2")["state"], "unknown");

    // An unreadable broadcast of an expected online node: the seed says missing, we unknown.
    let mut snap = base(json!({}));
    snap["kv"]["multipath"]["n2"] = json!("{\"time\": 1, \"maps\": [");
    snap["expectations"] = json!({"nodes": {"n1": 1, "n2": 1}});
    assert_eq!(cell(&oracle(&script, &snap), "n2")["state"], "missing");
    assert_eq!(cell(&ours(&snap), "n2")["state"], "unknown");

    // An apply error "0": false in Perl, so the seed hides it; we show the message.
    snap["kv"]["multipath-apply"] = json!({"n2": json!({"error": "0", "time": NOW}).to_string()});
    assert_eq!(oracle(&script, &snap)["nodes"].get("n2"), None);
    assert_eq!(ours(&snap)["nodes"]["n2"]["apply-error"], "0");
}
