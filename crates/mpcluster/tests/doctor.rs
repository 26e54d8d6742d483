//! `mpcluster doctor` end to end: the real binary against a fake multipathd (in this test
//! process), an embedded store in a temporary directory, a root directory with or without
//! multipath-tools, a shell script standing in for `systemctl`, and server certificates
//! generated here with the validity each test needs. A healthy node exits 0; each broken
//! condition is reported with its fix and exit code 1 (a warning alone exits 0).
//!
//! The healthy node is set up the way the agent does it: the real apply
//! (`mpcluster_agent::apply::Applier`) writes the drop-ins and the wwids file under the root,
//! after the real `multipath -t` (Debian's multipath-tools) judged them in a private mount
//! namespace (root). doctor runs the same parser on the same files. Where that is impossible
//! (no multipath-tools, not root) the tests skip, saying why; under `CI=true` they fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mpcluster_agent::apply::Applier;
use mpcluster_agent::parser_check::{ParserCheck, ParserCheckError, find_multipath};
use mpcluster_agent::{FakeHandle, FakeMultipathd, MultipathdClient};
use mpcluster_config::unix_now;
use mpcluster_core::NodeName;
use mpcluster_core::config::BASELINE_PATH;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};
use serde_json::{Value, json};

const NODE: &str = "pve1";
const W1: &str = "3600a098038303053453f463045727a01";
const VERSION: &str = "multipath-tools v0.9.4 (12/19, 2022)";

/// The start of multipathd 0.9.4's `show config` (layout of the captured fixture), with the
/// defaults mpcluster's baseline sets.
fn show_config(find_multipaths: &str) -> String {
    format!(
        "defaults {{\n\tverbosity 2\n\tpolling_interval 7\n\tpath_selector \"service-time 0\"\n\
         \tuser_friendly_names \"no\"\n\tfind_multipaths \"{find_multipaths}\"\n\
         \tfind_multipaths_timeout -10\n}}\nblacklist {{\n\twwid \".*\"\n}}\n\
         blacklist_exceptions {{\n\twwid \"^{W1}$\"\n}}\n"
    )
}

fn skip(why: &str) {
    assert!(!mpcluster_testkit::under_ci(), "CI=true and {why}");
    eprintln!("skipping: {why}");
}

/// Whether the real `multipath -t` can judge a temporary root here (installed, root).
async fn real_parser_runs() -> bool {
    let Some(multipath) = find_multipath() else {
        skip("multipath (multipath-tools) is not installed");
        return false;
    };
    let probe = tempfile::tempdir().unwrap();
    match ParserCheck::namespace(multipath).run(probe.path()).await {
        Ok(out) if !out.has_complaints() => true,
        Ok(out) => panic!("multipath -t complains about an empty configuration: {out:?}"),
        Err(e @ ParserCheckError::Setup { .. }) => {
            skip(&mpcluster_core::error_chain(&e));
            false
        }
        Err(e) => panic!("{}", mpcluster_core::error_chain(&e)),
    }
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A server certificate (and its key) valid from `not_before` to `not_after` (unix seconds).
fn write_cert(path: &Path, not_before: i64, not_after: i64) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["pve1.example".to_owned()]).unwrap();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pve1.example");
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(path, cert.pem()).unwrap();
    std::fs::write(path.with_extension("key"), key.serialize_pem()).unwrap();
}

/// A healthy node: multipath-tools under the root, multipathd answering, the cluster
/// configuration (one allow-listed LUN) applied by the real apply, a fresh broadcast, a
/// valid server certificate, the agent's unit active.
struct Env {
    dir: tempfile::TempDir,
    root: PathBuf,
    store_dir: PathBuf,
    store: Arc<dyn ClusterStore>,
    fake: FakeHandle,
    systemctl: PathBuf,
    cert: PathBuf,
}

async fn healthy() -> Option<Env> {
    if !real_parser_runs().await {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // multipath-tools "installed" under the root, answering -h like 0.9.4 (on stderr)
    write_script(
        &root.join("usr/sbin/multipath"),
        &format!("echo '{VERSION}' >&2\necho 'Usage:' >&2"),
    );
    let store_dir = dir.path().join("store");
    let store: Arc<dyn ClusterStore> = Arc::new(
        EmbeddedStore::open(&store_dir, EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    store
        .write_doc(
            doc_names::CONFIG,
            &json!({"defaults": {"polling-interval": 7}, "wwids": {W1: {"alias": "data"}}})
                .to_string(),
            Expect::Any,
        )
        .await
        .unwrap();
    let fake = FakeMultipathd::start(dir.path().join("multipathd.sock")).unwrap();
    fake.set_reply("show daemon", "pid 569 idle\n");
    fake.set_reply("reconfigure", "ok\n");
    fake.set_reply("show config", show_config("strict"));
    fake.set_reply("show maps raw format \"%w\"", format!("{W1}\n"));
    // No map yet while the configuration is applied: nothing to rename or drop, nothing held.
    fake.set_reply(
        mpcluster_core::multipathd::SHOW_MAPS_JSON,
        "{\n   \"major_version\": 0,\n   \"minor_version\": 1,\n   \"maps\": []\n}\n",
    );
    let client = MultipathdClient::new(fake.socket_spec(), Duration::from_secs(2));
    // What the agent does: the real apply, with the real parser judging the files first.
    let outcome = Applier::new(&root)
        .apply(store.as_ref(), &client)
        .await
        .unwrap();
    assert!(outcome.reconfigured, "{outcome:?}");
    let env = Env {
        systemctl: dir.path().join("bin/systemctl"),
        cert: dir.path().join("server.pem"),
        dir,
        root,
        store_dir,
        store,
        fake,
    };
    env.broadcast(unix_now() - 5).await;
    env.systemctl("active", 0);
    let now = unix_now();
    write_cert(&env.cert, now - 86_400, now + 365 * 86_400);
    Some(env)
}

impl Env {
    async fn put(&self, key: &str, node: &str, value: Option<String>) {
        self.store
            .put(key, &NodeName::new(node).unwrap(), value.as_deref())
            .await
            .unwrap();
    }

    async fn broadcast(&self, time: i64) {
        self.put(
            kv_keys::HEALTH,
            NODE,
            Some(
                json!({"time": time, "maps": {W1: {"state": "optimal", "paths-active": 2, "paths-total": 2}}})
                    .to_string(),
            ),
        )
        .await;
    }

    /// `systemctl is-active mpcluster-agent.service` prints `state` and exits with `code`.
    fn systemctl(&self, state: &str, code: u8) {
        write_script(
            &self.systemctl,
            &format!(
                "[ \"$1 $2\" = \"is-active mpcluster-agent.service\" ] || exit 99\necho {state}\nexit {code}"
            ),
        );
    }

    /// An empty settings file: nothing from the machine's /etc/mpcluster leaks in.
    fn no_settings(&self) -> PathBuf {
        let path = self.dir.path().join("empty.toml");
        std::fs::write(&path, "").unwrap();
        path
    }

    fn args(&self) -> Vec<String> {
        [
            "doctor",
            "--config",
            &self.no_settings().display().to_string(),
            "--node",
            NODE,
            "--store",
            &format!("embedded:{}", self.store_dir.display()),
            "--multipathd-socket",
            &self.fake.socket_spec().to_string(),
            "--root",
            &self.root.display().to_string(),
            "--tls-cert",
            &self.cert.display().to_string(),
            "--systemctl",
            &self.systemctl.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Run `mpcluster doctor` with the healthy arguments (`replace` swaps an option's value,
    /// `extra` adds more).
    async fn run(&self, replace: &[(&str, &str)], extra: &[&str]) -> Output {
        let mut args = self.args();
        for (option, value) in replace {
            let i = args.iter().position(|a| a == option).unwrap();
            args[i + 1] = (*value).to_owned();
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        run_mpcluster(args).await
    }

    /// `run` with `--json`: the exit code and the findings by check.
    async fn json(&self, replace: &[(&str, &str)]) -> (i32, Value) {
        let out = self.run(replace, &["--format", "json"]).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), value)
    }
}

/// Run the binary off the runtime's worker threads (the fake multipathd runs on them).
async fn run_mpcluster(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mpcluster"))
            .args(&args)
            .env("MPCLUSTER_LOG", "warn")
            .env_remove("MPCLUSTER_SERVER")
            .env_remove("MPCLUSTER_CONFIG")
            .env_remove("MPCLUSTER_STORE")
            .env_remove("MPCLUSTER_NODE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The finding of `check`.
fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no finding {check}: {report:#}"))
}

/// `check`'s finding has `severity`, says `what` and (when given) proposes `fix`; exactly the
/// findings named in `bad` are not ok or skipped.
#[track_caller]
fn assert_only(report: &Value, bad: &[(&str, &str, &str, Option<&str>)]) {
    for f in report["findings"].as_array().unwrap() {
        let check = f["check"].as_str().unwrap();
        match bad.iter().find(|(c, ..)| *c == check) {
            Some((_, severity, what, fix)) => {
                assert_eq!(f["severity"], *severity, "{check}: {f:#}");
                let said = f["what"].as_str().unwrap();
                assert!(said.contains(what), "{check}: {said:?} lacks {what:?}");
                if let Some(fix) = fix {
                    let proposed = f["fix"].as_str().unwrap_or_default();
                    assert!(
                        proposed.contains(fix),
                        "{check}: fix {proposed:?} lacks {fix:?}"
                    );
                }
            }
            None => assert!(
                f["severity"] == "ok" || f["severity"] == "skipped",
                "unexpected finding: {f:#}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_node_exits_0() {
    let Some(env) = healthy().await else { return };
    // Another node's fresh broadcast: the clock can be compared.
    env.put(
        kv_keys::HEALTH,
        "pve2",
        Some(json!({"time": unix_now() - 1, "maps": {}}).to_string()),
    )
    .await;
    let out = env.run(&[], &[]).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        format!("ok       multipath-tools  installed: {}/usr/sbin/multipath ({VERSION})", env.root.display()),
        "ok       multipathd       running: pid 569 idle".to_owned(),
        "ok       parser           multipath -t reads the configuration under".to_owned(),
        "ok       drop-ins         the drop-ins and the wwids file are what mpcluster renders for the stored configuration".to_owned(),
        "ok       find-multipaths  in force in multipathd: user_friendly_names no, find_multipaths strict".to_owned(),
        "ok       broadcast        pve1's broadcast is ".to_owned(),
        "ok       clock            this node's clock is not behind the other nodes'".to_owned(),
        format!("ok       tls              the server certificate {} is valid until", env.cert.display()),
        "ok       agent-service    mpcluster-agent.service is active".to_owned(),
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&line)),
            "no line {line:?} in:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("ERROR") && !stdout.contains("fix:"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("\npve1: no errors, no warnings\n"),
        "{stdout}"
    );

    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 0);
    assert_eq!(
        (report["node"].as_str(), report["errors"].as_u64()),
        (Some(NODE), Some(0))
    );
    assert_only(&report, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipathd_and_multipath_tools_missing() {
    let Some(env) = healthy().await else { return };
    let nowhere = env.dir.path().join("no-such.sock").display().to_string();
    let (code, report) = env.json(&[("--multipathd-socket", &nowhere)]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[
            (
                "multipathd",
                "error",
                "multipathd is not running: cannot connect to multipathd at",
                Some("systemctl enable --now multipathd"),
            ),
            (
                "find-multipaths",
                "skipped",
                "multipathd did not answer",
                None,
            ),
        ],
    );

    std::fs::remove_file(env.root.join("usr/sbin/multipath")).unwrap();
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "multipath-tools",
            "error",
            "multipath-tools is not installed (no usr/sbin/multipath or sbin/multipath under",
            Some("apt install multipath-tools"),
        )],
    );

    // The text form: the finding, its fix below it, the count.
    let out = env.run(&[], &[]).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains(
            "ERROR    multipath-tools  multipath-tools is not installed (no usr/sbin/multipath or sbin/multipath under"
        ) && stdout.contains("\n                          fix: apt install multipath-tools\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("\npve1: 1 error, no warnings\n"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parser_and_the_drop_ins() {
    let Some(env) = healthy().await else { return };
    // An admin's drop-in the real parser complains about.
    let local = env.root.join("etc/multipath/conf.d/zz-local.conf");
    std::fs::write(&local, "defaults {\n\tno_path_retry bogus\n}\n").unwrap();
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "parser",
            "error",
            "invalid value for no_path_retry: \"bogus\"",
            Some("multipath -t >/dev/null"),
        )],
    );
    std::fs::remove_file(&local).unwrap();

    // mpcluster's baseline edited by hand, then gone.
    let baseline = env.root.join(BASELINE_PATH);
    let text = std::fs::read_to_string(&baseline).unwrap();
    std::fs::write(&baseline, format!("{text}# edited by hand\n")).unwrap();
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "drop-ins",
            "error",
            "mpcluster-00-baseline.conf differs from what mpcluster renders for the stored configuration",
            Some("systemctl restart mpcluster-agent.service"),
        )],
    );
    std::fs::remove_file(&baseline).unwrap();
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "drop-ins",
            "error",
            "mpcluster-00-baseline.conf is missing",
            Some("systemctl restart mpcluster-agent.service"),
        )],
    );
    // With no-apply, the drop-ins are not mpcluster's business.
    let (code, report) = {
        let out = env.run(&[], &["--format", "json", "--no-apply"]).await;
        (
            out.status.code().unwrap(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        )
    };
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(finding(&report, "drop-ins")["severity"], "skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_multipaths_not_in_force() {
    let Some(env) = healthy().await else { return };
    env.fake.set_reply("show config", show_config("greedy"));
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "find-multipaths",
            "error",
            "multipathd runs with find_multipaths \"greedy\" (mpcluster sets \"strict\")",
            Some("multipathd reconfigure"),
        )],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broadcast_stale_or_missing() {
    let Some(env) = healthy().await else { return };
    env.broadcast(unix_now() - 600).await;
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "broadcast",
            "error",
            "pve1's last broadcast is 10 min old (limit 180 s)",
            Some("systemctl restart mpcluster-agent.service"),
        )],
    );
    // The configured staleness limit counts.
    let out = env
        .run(&[], &["--format", "json", "--stale-after", "900"])
        .await;
    assert_eq!(out.status.code(), Some(0));

    env.put(kv_keys::HEALTH, NODE, None).await;
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "broadcast",
            "error",
            "the store holds no broadcast from pve1 although multipathd has 1 map",
            Some("systemctl enable --now mpcluster-agent.service"),
        )],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_and_apply_errors_and_a_waiting_apply() {
    let Some(env) = healthy().await else { return };
    let now = unix_now();
    env.put(
        kv_keys::COLLECT,
        NODE,
        Some(json!({"error": "multipathd at @x did not complete \"show maps json\" within 5s", "time": now - 600}).to_string()),
    )
    .await;
    env.put(
        kv_keys::APPLY,
        NODE,
        Some(json!({"error": "multipathd reconfigure failed", "time": now - 120}).to_string()),
    )
    .await;
    let summary = format!("apply waiting: would rename mpatha -> {W1}");
    env.put(
        kv_keys::PLAN,
        NODE,
        Some(json!({"version": 1, "time": now, "waiting": true, "summary": summary}).to_string()),
    )
    .await;
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[
            (
                "collect",
                "error",
                "the agent cannot collect from multipathd (10 min ago): multipathd at @x did not complete",
                Some("systemctl restart multipathd"),
            ),
            (
                "apply",
                "error",
                "the last configuration apply failed (2 min ago): multipathd reconfigure failed",
                Some("systemctl restart mpcluster-agent.service"),
            ),
            (
                "plan",
                "error",
                &summary,
                Some("mpcluster config accept --node pve1"),
            ),
        ],
    );
    assert_eq!(finding(&report, "plan")["what"], summary.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_behind_the_other_nodes_and_against_a_server() {
    let Some(env) = healthy().await else { return };
    for peer in ["pve2", "pve3"] {
        env.put(
            kv_keys::HEALTH,
            peer,
            Some(json!({"time": unix_now() + 120, "maps": {}}).to_string()),
        )
        .await;
    }
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "clock",
            "error",
            "every other node's newest broadcast (2 nodes) is dated at least",
            Some("timedatectl set-ntp true  # or: systemctl restart chronyd"),
        )],
    );
    for peer in ["pve2", "pve3"] {
        env.put(kv_keys::HEALTH, peer, None).await;
    }

    // A real server's Date header (same machine, same clock: within the tolerance).
    let other_store = env.dir.path().join("server-store");
    let (_server, url) = common::start_serve(
        "serve",
        &[
            "--no-agent".to_owned(),
            "--store".to_owned(),
            format!("embedded:{}", other_store.display()),
            "--config".to_owned(),
            env.no_settings().display().to_string(),
        ],
    );
    let out = env.run(&[], &["--format", "json", "--server", &url]).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let clock = finding(&report, "clock");
    assert_eq!(clock["severity"], "ok", "{clock:#}");
    assert!(
        clock["what"].as_str().unwrap().starts_with(&format!(
            "this node's clock is within 5 s of {url}'s (offset "
        )),
        "{clock:#}"
    );
    // A server that does not answer: a warning (the clock could not be checked), exit 0.
    let out = env
        .run(&[], &["--format", "json", "--server", "http://127.0.0.1:9"])
        .await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_only(
        &report,
        &[(
            "clock",
            "warning",
            "cannot ask http://127.0.0.1:9 for its time: cannot reach http://127.0.0.1:9/health",
            None,
        )],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_certificate_expiring_or_expired() {
    let Some(env) = healthy().await else { return };
    let now = unix_now();
    write_cert(&env.cert, now - 86_400, now + 10 * 86_400 + 3600);
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 0, "a warning alone exits 0: {report:#}");
    let reload = "systemctl reload mpcluster-server.service";
    assert_only(
        &report,
        &[(
            "tls",
            "warning",
            "(CN=pve1.example) expires on",
            Some(reload),
        )],
    );
    assert!(
        finding(&report, "tls")["what"]
            .as_str()
            .unwrap()
            .ends_with("in 10 days"),
        "{report:#}"
    );
    assert_eq!(report["warnings"], 1);

    write_cert(&env.cert, now - 10 * 86_400, now - 86_400);
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[("tls", "error", "(CN=pve1.example) expired on", Some(reload))],
    );

    std::fs::write(&env.cert, "not a certificate\n").unwrap();
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "tls",
            "error",
            "cannot read the server certificate",
            Some(reload),
        )],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_service_failed_or_inactive() {
    let Some(env) = healthy().await else { return };
    env.systemctl("failed", 3);
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "agent-service",
            "error",
            "mpcluster-agent.service is failed",
            Some("systemctl restart mpcluster-agent.service"),
        )],
    );
    env.systemctl("inactive", 3);
    let (code, report) = env.json(&[]).await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "agent-service",
            "error",
            "mpcluster-agent.service is inactive",
            Some("systemctl enable --now mpcluster-agent.service"),
        )],
    );
    // No systemd to ask: skipped with the reason, not an error.
    let missing = env.dir.path().join("bin/none").display().to_string();
    let (code, report) = env.json(&[("--systemctl", &missing)]).await;
    assert_eq!(code, 0);
    assert_eq!(finding(&report, "agent-service")["severity"], "skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_opened() {
    let Some(env) = healthy().await else { return };
    let (code, report) = env
        .json(&[("--store", "embedded:/proc/mpcluster-doctor")])
        .await;
    assert_eq!(code, 1);
    assert_only(
        &report,
        &[(
            "store",
            "error",
            "cannot open the cluster store",
            Some("/etc/mpcluster/mpcluster.toml"),
        )],
    );
    for check in ["drop-ins", "broadcast", "collect", "apply", "plan"] {
        assert_eq!(finding(&report, check)["severity"], "skipped", "{check}");
    }
}

/// doctor takes what the services run with from the settings file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_settings_file_of_the_services() {
    let Some(env) = healthy().await else { return };
    let expired = env.dir.path().join("expired.pem");
    let now = unix_now();
    write_cert(&expired, now - 10 * 86_400, now - 86_400);
    let settings = env.dir.path().join("mpcluster.toml");
    std::fs::write(
        &settings,
        format!(
            "store = \"embedded:{}\"\nnode = \"{NODE}\"\nmultipathd-socket = \"{}\"\nroot = \"{}\"\n\
             tls-cert = \"{}\"\ntls-key = \"{}\"\nlisten = \"127.0.0.1:8470\"\ninterval = 2\n",
            env.store_dir.display(),
            env.fake.socket_spec(),
            env.root.display(),
            expired.display(),
            expired.with_extension("key").display(),
        ),
    )
    .unwrap();
    let out = run_mpcluster(vec![
        "doctor".to_owned(),
        "--format".to_owned(),
        "json".to_owned(),
        "--config".to_owned(),
        settings.display().to_string(),
        "--systemctl".to_owned(),
        env.systemctl.display().to_string(),
    ])
    .await;
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_only(
        &report,
        &[(
            "tls",
            "error",
            &format!(
                "the server certificate {} (CN=pve1.example) expired",
                expired.display()
            ),
            None,
        )],
    );
    // A bad settings file stops doctor like the services (exit 2, file and line named).
    std::fs::write(&settings, "stor = \"embedded\"\n").unwrap();
    let out = run_mpcluster(vec![
        "doctor".to_owned(),
        "--config".to_owned(),
        settings.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("line 1: unknown key 'stor' (did you mean 'store'?)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
