//! `mpcluster config|wwid|overrides|storage`: the real binary against an embedded store in a
//! temporary directory: edits, listings, exit codes (2 invalid input, 1 other failures) and the
//! Proxmox storage.cfg import.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use mpcluster_core::config::{MultipathConfig, Overrides};
use mpcluster_core::snapshot::doc_names;
use serde_json::{Value, json};

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";
const W3: &str = "36001405aa6d4bd1e9d1487bb1d1f4a2a";

/// Run the binary with the store in `dir` (through MPCLUSTER_STORE), `stdin` piped in.
fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(args)
        .env("MPCLUSTER_STORE", format!("embedded:{}", dir.display()))
        .env("MPCLUSTER_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run and expect success; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Run and expect exit `code`; returns stderr.
fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    let out = run_in(dir, args, None);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn json_out(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(dir, args)).unwrap()
}

/// A stored document, raw.
fn doc(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join("docs").join(name)).ok()
}

#[test]
fn config_set_show_unset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(ok(d, &["config", "show"]).contains("no knobs set"));
    ok(
        d,
        &["config", "set", "polling-interval=5", "no-path-retry=queue"],
    );
    let shown = ok(d, &["config", "show"]);
    assert!(shown.contains("polling-interval  5"), "{shown}");
    assert!(shown.contains("no-path-retry     queue"), "{shown}");
    let v = json_out(d, &["config", "show", "--format", "json"]);
    assert_eq!(
        v["defaults"],
        json!({"polling-interval": 5, "no-path-retry": "queue"})
    );
    // the digest is the stored document's
    let stored = doc(d, doc_names::CONFIG).unwrap();
    assert_eq!(
        v["digest"],
        mpcluster_core::digest::ConfigDigest::of(&stored).to_string()
    );
    ok(d, &["config", "unset", "polling-interval"]);
    let v = json_out(d, &["config", "show", "--format", "json"]);
    assert_eq!(v["defaults"], json!({"no-path-retry": "queue"}));
    // --store given explicitly after the subcommand
    let other = tempfile::tempdir().unwrap();
    let store = format!("embedded:{}", other.path().display());
    ok(
        d,
        &["config", "set", "--store", &store, "checker-timeout=30"],
    );
    assert!(
        doc(other.path(), doc_names::CONFIG)
            .unwrap()
            .contains("checker-timeout")
    );
    let knobs = ok(d, &["config", "show", "--knobs"]);
    assert!(knobs.contains("dev-loss-tmo = (not set)"), "{knobs}");
    assert!(knobs.contains("fixed by mpcluster: user_friendly_names no"));
}

#[test]
fn invalid_input_exits_2_with_field_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["wwid", "add", W1, "--alias", "data"]);
    let before = doc(d, doc_names::CONFIG);
    let e = fails(d, &["config", "set", "polling-interval=0", "bogus=1"], 2);
    assert!(
        e.contains("defaults.polling-interval: 0 is out of range"),
        "{e}"
    );
    assert!(e.contains("defaults.bogus: unknown knob"), "{e}");
    let e = fails(d, &["config", "set", "polling-interval"], 2);
    assert!(e.contains("expected KNOB=VALUE"), "{e}");
    let e = fails(d, &["config", "unset", "find-multipaths"], 2);
    assert!(
        e.contains("defaults.find-multipaths: fixed by mpcluster"),
        "{e}"
    );
    let e = fails(d, &["wwid", "add", W2, "--alias", "bad alias"], 2);
    assert!(e.contains("alias: invalid alias"), "{e}");
    let e = fails(d, &["wwid", "add", W2, "--alias", "data"], 2);
    assert!(e.contains("alias: alias \"data\" is already used"), "{e}");
    let e = fails(d, &["wwid", "add", "bad\"wwid"], 2);
    assert!(e.contains("wwid: invalid WWID"), "{e}");
    let e = fails(d, &["wwid", "set", W1, "polling-interval=5"], 2);
    assert!(e.contains("polling-interval: not valid per LUN"), "{e}");
    let e = fails(d, &["wwid", "set", W2, "--alias", "x"], 2);
    assert!(e.contains("does not exist"), "{e}");
    let e = fails(d, &["wwid", "remove", W2], 2);
    assert!(e.contains("does not exist"), "{e}");
    assert_eq!(doc(d, doc_names::CONFIG), before);
    let e = fails(
        d,
        &[
            "storage",
            "add",
            "lvm",
            "vg",
            "--vgname",
            "vg0",
            "--base",
            &format!("nope:{W1}"),
        ],
        2,
    );
    assert!(
        e.contains("base: storage 'vg': base storage 'nope' does not exist"),
        "{e}"
    );
    let e = fails(
        d,
        &["storage", "add", "multipath", "m", "--nodes", "a,b"],
        2,
    );
    assert!(e.contains("id: invalid storage id"), "{e}");
    assert_eq!(doc(d, doc_names::STORAGE), None);
}

#[test]
fn wwid_add_list_set_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &["wwid", "add", W1, "--alias", "data", "no-path-retry=12"],
    );
    ok(d, &["wwid", "add", W2]);
    let list = ok(d, &["wwid", "list"]);
    assert!(
        list.contains(&format!("{W1}  data   no-path-retry=12")),
        "{list}"
    );
    ok(
        d,
        &[
            "wwid",
            "set",
            W1,
            "--alias",
            "data2",
            "rr-weight=priorities",
            "--delete",
            "no-path-retry",
        ],
    );
    let v = json_out(d, &["wwid", "list", "--format", "json"]);
    assert_eq!(
        v["wwids"],
        json!([{"wwid": W1, "alias": "data2", "rr-weight": "priorities"}, {"wwid": W2}])
    );
    ok(d, &["wwid", "set", W1, "--delete", "alias,rr-weight"]);
    ok(d, &["wwid", "remove", W2]);
    let v = json_out(d, &["wwid", "list", "--format", "json"]);
    assert_eq!(v["wwids"], json!([{"wwid": W1}]));
    // what the CLI stored loads with the model
    MultipathConfig::from_json(&doc(d, doc_names::CONFIG).unwrap()).unwrap();
}

#[test]
fn overrides_set_from_file_and_stdin_then_get() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let content = "devices {\n\tdevice {\n\t\tvendor \"PURE\"\n\t\tproduct \"FlashArray\"\n\t\tfast_io_fail_tmo 10\n\t}\n}\n";
    let file = d.join("overrides.conf");
    std::fs::write(&file, content).unwrap();
    ok(d, &["overrides", "set", file.to_str().unwrap()]);
    assert_eq!(ok(d, &["overrides", "get"]), content);
    let stored = doc(d, doc_names::OVERRIDES).unwrap();
    assert_eq!(Overrides::from_json(&stored).unwrap().as_str(), content);

    let other = "overrides {\n\tno_path_retry fail\n}\n";
    let out = run_in(d, &["overrides", "set", "-"], Some(other));
    assert!(out.status.success(), "{}", text_of(&out));
    let v = json_out(d, &["overrides", "get", "--format", "json"]);
    assert_eq!(v["content"], other);

    let before = doc(d, doc_names::OVERRIDES);
    let out = run_in(
        d,
        &["overrides", "set", "-"],
        Some("devices {\n\tdevice {\n\t\tvendor X }\n\t}\n}\ndefaults {\n}\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(
        e.contains("content: line 3:") && e.contains("content: line 6:"),
        "{e}"
    );
    assert_eq!(doc(d, doc_names::OVERRIDES), before);
    let e = fails(d, &["overrides", "set", "/nonexistent/file"], 1);
    assert!(e.contains("cannot read /nonexistent/file"), "{e}");
}

fn text_of(out: &Output) -> String {
    format!("{}\n{}", text(&out.stdout), text(&out.stderr))
}

#[test]
fn storage_add_list_set_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &["storage", "add", "multipath", "san", "--nodes", "pve2,pve1"],
    );
    ok(
        d,
        &[
            "storage",
            "add",
            "lvm",
            "vmdata",
            "--vgname",
            "vg_data",
            "--base",
            &format!("san:{W1}"),
            "--disable",
        ],
    );
    let list = ok(d, &["storage", "list"]);
    assert!(
        list.contains("san     multipath  pve1,pve2  enabled"),
        "{list}"
    );
    assert!(
        list.contains(&format!(
            "vmdata  lvm        all        disabled  vg_data       san:{W1}"
        )),
        "{list}"
    );
    ok(
        d,
        &["storage", "set", "vmdata", "--enable", "--nodes", "pve1"],
    );
    ok(d, &["storage", "set", "san", "--delete", "nodes"]);
    let v = json_out(d, &["storage", "list", "--format", "json"]);
    assert_eq!(
        v["storages"],
        json!([
            {"type": "multipath", "id": "san"},
            {"type": "lvm", "id": "vmdata", "vgname": "vg_data", "base": format!("san:{W1}"), "nodes": ["pve1"]},
        ])
    );
    let before = doc(d, doc_names::STORAGE);
    let e = fails(d, &["storage", "remove", "san"], 2);
    assert!(e.contains("'vmdata'"), "{e}");
    let e = fails(d, &["storage", "set", "vmdata", "--delete", "vgname"], 2);
    assert!(e.contains("vgname: required"), "{e}");
    let e = fails(d, &["storage", "add", "multipath", "san"], 2);
    assert!(e.contains("id: storage 'san' already exists"), "{e}");
    assert_eq!(doc(d, doc_names::STORAGE), before);
    ok(d, &["storage", "remove", "vmdata"]);
    ok(d, &["storage", "remove", "san"]);
    fails(d, &["storage", "remove", "san"], 2);
    assert_eq!(
        json_out(d, &["storage", "list", "--format", "json"])["storages"],
        json!([])
    );
}

fn storage_cfg() -> String {
    format!(
        "\
dir: local
\tpath /var/lib/vz
\tcontent iso,vztmpl,backup

iscsi: san1
\tportal 10.0.0.1
\ttarget iqn.2003-01.org.linux-iscsi.san1:sn.abcdef
\tnodes pve1,pve2
\tcontent none

lvm: san1-lvm
\tvgname vg_san1
\tbase san1:0.0.1.scsi-{W3}
\tshared 1
\tcontent images,rootdir

multipath: mp
\tnodes pve1,pve2,pve3

lvm: fc-data
\tvgname fcdata
\tbase mp:{W1}
\tdisable

lvm: local-vg
\tvgname vmdata
oops not indented
"
    )
}

#[test]
fn import_pve_dry_run_import_and_idempotence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("storage.cfg");
    std::fs::write(&cfg, storage_cfg()).unwrap();
    let path = cfg.to_str().unwrap();
    // an existing storage with a clashing id is kept
    ok(d, &["storage", "add", "multipath", "mp", "--nodes", "pve9"]);
    let before = doc(d, doc_names::STORAGE);

    let out = ok(d, &["storage", "import-pve", path, "--dry-run"]);
    assert!(
        out.contains("would add multipath 'san1' from line 5 (stands for iscsi storage 'san1')"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "would add lvm 'san1-lvm' from line 11 (vg vg_san1 on san1:{W3})"
        )),
        "{out}"
    );
    assert!(out.contains("would add lvm 'fc-data'"), "{out}");
    assert!(
        out.contains("skipped line 1 (dir: local): type 'dir' is not managed"),
        "{out}"
    );
    assert!(
        out.contains("skipped line 17 (multipath: mp): a storage 'mp' already exists"),
        "{out}"
    );
    assert!(
        out.contains("skipped line 25 (lvm: local-vg): no base"),
        "{out}"
    );
    assert!(
        out.contains("skipped line 27 (lvm: local-vg): not an indented property line"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing written"), "{out}");
    assert_eq!(doc(d, doc_names::STORAGE), before);

    let out = ok(d, &["storage", "import-pve", path]);
    assert!(out.contains("imported 3 storage(s)"), "{out}");
    let v = json_out(d, &["storage", "list", "--format", "json"]);
    assert_eq!(
        v["storages"],
        json!([
            {"type": "multipath", "id": "mp", "nodes": ["pve9"]},
            {"type": "multipath", "id": "san1", "nodes": ["pve1", "pve2"]},
            {"type": "lvm", "id": "san1-lvm", "vgname": "vg_san1", "base": format!("san1:{W3}")},
            {"type": "lvm", "id": "fc-data", "vgname": "fcdata", "base": format!("mp:{W1}"), "disable": true},
        ])
    );
    // again, from stdin, as JSON: nothing to add
    let out = run_in(
        d,
        &["storage", "import-pve", "-", "--format", "json"],
        Some(&storage_cfg()),
    );
    assert!(out.status.success(), "{}", text_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["added"], json!([]));
    assert_eq!(v["digest"], Value::Null);
    assert!(
        v["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "exists")
            .count()
            == 3
    );
    let e = fails(d, &["storage", "import-pve", "/nonexistent/storage.cfg"], 1);
    assert!(e.contains("cannot read /nonexistent/storage.cfg"), "{e}");
}

#[test]
fn unusable_store_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(["config", "show", "--store"])
        .arg(format!("embedded:{}/sub", file.display()))
        .env("MPCLUSTER_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text_of(&out));
    assert!(text(&out.stderr).contains("cannot open the cluster store"));
    // an unreadable stored document is reported, not overwritten
    let d = dir.path();
    std::fs::create_dir_all(d.join("docs")).unwrap();
    std::fs::write(d.join("docs").join(doc_names::CONFIG), "{not json").unwrap();
    let e = fails(d, &["config", "set", "polling-interval=5"], 1);
    assert!(e.contains("cannot be read"), "{e}");
    assert_eq!(doc(d, doc_names::CONFIG).unwrap(), "{not json");
}

/// Publish `plan` as `node`'s apply plan in the embedded store in `dir` (what its agent does).
fn publish_plan(dir: &Path, node: &str, plan: &mpcluster_core::plan::ApplyPlan) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = mpcluster_store::embedded::EmbeddedStore::open(
            dir,
            mpcluster_store::EmbeddedOptions::default(),
        )
        .await
        .unwrap();
        mpcluster_store::ClusterStore::put(
            &store,
            mpcluster_core::snapshot::kv_keys::PLAN,
            &mpcluster_core::NodeName::new(node).unwrap(),
            Some(&plan.encode()),
        )
        .await
        .unwrap();
    });
}

#[test]
fn config_plan_shows_renames_and_accept_lets_them_go() {
    use mpcluster_core::Wwid;
    use mpcluster_core::plan::{ApplyPlan, Dropped, FileAction, FileChange, Rename};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(ok(d, &["config", "plan"]).contains("no node has published an apply plan"));

    let mut plan = ApplyPlan::new(
        1_767_225_600,
        vec![Rename {
            wwid: Wwid::new(W1).unwrap(),
            from: "mpatha".into(),
            to: W1.into(),
            requested: false,
        }],
        vec![Dropped {
            wwid: Wwid::new(W2).unwrap(),
            name: "mpathb".into(),
            reason: "not in the cluster's WWID allow-list (blacklisted)".into(),
            requested: false,
        }],
        vec![FileChange {
            path: "/etc/multipath/conf.d/mpcluster.conf".into(),
            action: FileAction::Write,
        }],
        vec![Wwid::new(W1).unwrap()],
        vec![],
    );
    plan.set_waiting(true);
    publish_plan(d, "pve1", &plan);
    publish_plan(
        d,
        "pve2",
        &ApplyPlan::new(1_767_225_600, vec![], vec![], vec![], vec![], vec![]),
    );

    let out = ok(d, &["config", "plan"]);
    assert!(
        out.contains("pve1 (planned 2026-01-01 00:00:00 UTC): WAITING for an acceptance: mpcluster config accept --node pve1"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "rename  /dev/mapper/mpatha -> /dev/mapper/{W1}  (not asked for)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("drop    /dev/mapper/mpathb ({W2})")),
        "{out}"
    );
    assert!(
        out.contains("write   /etc/multipath/conf.d/mpcluster.conf"),
        "{out}"
    );
    assert!(out.contains(&format!("wwids   + {W1}")), "{out}");
    assert!(
        out.contains("pve2 (planned 2026-01-01 00:00:00 UTC): nothing to change"),
        "{out}"
    );
    assert!(out.contains("always accept: no"), "{out}");
    let only = ok(d, &["config", "plan", "--node", "pve2"]);
    assert!(!only.contains("pve1"), "{only}");
    let v = json_out(d, &["config", "plan", "--node", "pve1", "--format", "json"]);
    assert_eq!(v["nodes"][0]["plan"]["waiting"], true, "{v}");
    assert_eq!(v["nodes"][0]["plan"]["renames"][0]["from"], "mpatha", "{v}");

    // Accepting: the node's plan exactly; refused where nothing waits or nothing is known.
    let out = ok(d, &["config", "accept", "--node", "pve1"]);
    assert!(
        out.contains("accepted the plan of pve1") && out.contains("would rename mpatha"),
        "{out}"
    );
    let accept: Value = serde_json::from_str(&doc(d, "multipath-accept").unwrap()).unwrap();
    assert_eq!(accept["nodes"]["pve1"], plan.digest.as_str(), "{accept}");
    assert!(
        ok(d, &["config", "plan", "--node", "pve1"]).contains("accepted: its agent applies it")
    );
    let e = fails(d, &["config", "accept", "--node", "pve2"], 2);
    assert!(e.contains("nothing waiting"), "{e}");
    let e = fails(d, &["config", "accept", "--node", "pve9"], 2);
    assert!(e.contains("pve9"), "{e}");
    fails(d, &["config", "accept", "--node", "bad name"], 2);
    fails(d, &["config", "accept"], 2);

    // The cluster setting.
    assert!(ok(d, &["config", "accept", "--always", "true"]).contains("always accept: yes"));
    assert!(ok(d, &["config", "plan"]).contains("always accept: yes"));
    assert!(ok(d, &["config", "accept", "--always", "false"]).contains("always accept: no"));
}
