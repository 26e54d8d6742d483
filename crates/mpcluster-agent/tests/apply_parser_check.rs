//! The real parser judges the candidate configuration before multipathd is reconfigured: a
//! good configuration passes and multipathd gets `reconfigure`; a configuration `multipath -t`
//! complains about leaves every previous file byte for byte (a drop-in that did not exist is
//! removed again), sends no `reconfigure`, and the apply error carries the parser's words, also
//! as the node's `multipath-apply` error.
//!
//! Tests named `real_*` run Debian's multipath-tools (`/usr/sbin/multipath`) in a private mount
//! namespace (`unshare -m`, root): under `CI=true` anything missing is a failure, otherwise they
//! print why they skip. The `scripted_*` tests stand a shell script in for `multipath` (or for
//! `unshare`) and run everywhere.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcluster_agent::apply::{Applier, ApplyError, STATE_PATH};
use mpcluster_agent::parser_check::{ParserCheck, ParserCheckError, ParserRun, find_multipath};
use mpcluster_agent::run::{AgentConfig, run};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_agent::{FakeHandle, FakeMultipathd, MultipathdClient};
use mpcluster_core::NodeName;
use mpcluster_core::config::{BASELINE_PATH, OVERRIDES_PATH, Overrides, WWIDS_PATH};
use mpcluster_core::error_chain;
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::{ClusterStore, EmbeddedOptions, Expect};

const W1: &str = "3600a098038303053453f463045727a01";
const W2: &str = "3600a098038303053453f463045727a02";

const GOOD_OVERRIDES: &str = "devices {\n\tdevice {\n\t\tvendor \"NETAPP\"\n\t\tproduct \"LUN.*\"\n\t\tno_path_retry queue\n\t}\n}\n";

/// Passes mpcluster's own validation (the overrides are checked for structure and keywords;
/// values are the admin's, verbatim), but multipath-tools 0.9.4 says
/// `invalid value for no_path_retry: "bogus"` and ignores the line.
const BOGUS_OVERRIDES: &str = "overrides {\n\tno_path_retry bogus\n}\n";

const BOGUS_COMPLAINT: &str = "invalid value for no_path_retry: \"bogus\"";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skip (print why) or, under CI, fail.
fn skip(why: &str) {
    if ci() {
        panic!("CI=true and {why}");
    }
    eprintln!("skipping: {why}");
}

/// The real parser check for a temp root, if it can run here (installed, root, overlay).
async fn real_check() -> Option<ParserCheck> {
    let Some(multipath) = find_multipath() else {
        skip("multipath (multipath-tools) is not installed");
        return None;
    };
    let check = ParserCheck::namespace(multipath);
    let probe = tempfile::tempdir().unwrap();
    match check.run(probe.path()).await {
        Ok(out) if !out.has_complaints() => Some(check),
        Ok(out) => panic!("multipath -t complains about an empty configuration: {out:?}"),
        Err(e @ ParserCheckError::Setup { .. }) => {
            skip(&error_chain(&e));
            None
        }
        Err(e) => panic!("{}", error_chain(&e)),
    }
}

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: Arc<dyn ClusterStore>,
    fake: FakeHandle,
    client: MultipathdClient,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // multipath-tools "installed" under the root (the applier's own check)
    std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
    std::fs::write(root.join("usr/sbin/multipath"), "").unwrap();
    let store: Arc<dyn ClusterStore> = Arc::new(
        EmbeddedStore::open(&dir.path().join("store"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let fake = FakeMultipathd::start(dir.path().join("mpd.sock")).unwrap();
    fake.set_reply("reconfigure", "ok\n");
    fake.set_reply("show daemon", "pid 1 idle\n");
    // No maps (the real 0.9.4 reply): the apply plan renames and drops nothing.
    fake.set_reply(
        mpcluster_core::multipathd::SHOW_MAPS_JSON,
        include_str!("fixtures/no-maps-show-maps-json.json"),
    );
    let client = MultipathdClient::new(fake.socket_spec(), Duration::from_secs(2));
    Env {
        _dir: dir,
        root,
        store,
        fake,
        client,
    }
}

impl Env {
    async fn set_config(&self, wwids: &[&str]) {
        let wwids: serde_json::Map<String, serde_json::Value> = wwids
            .iter()
            .map(|w| ((*w).to_owned(), serde_json::json!({})))
            .collect();
        self.store
            .write_doc(
                doc_names::CONFIG,
                &serde_json::json!({"defaults": {"polling-interval": 7}, "wwids": wwids})
                    .to_string(),
                Expect::Any,
            )
            .await
            .unwrap();
    }

    async fn set_overrides(&self, text: &str) {
        // what the API does first: the document passes mpcluster's own validation
        Overrides::parse(text).unwrap();
        self.store
            .write_doc(
                doc_names::OVERRIDES,
                &serde_json::to_string(text).unwrap(),
                Expect::Any,
            )
            .await
            .unwrap();
    }

    fn reconfigures(&self) -> usize {
        self.fake
            .commands()
            .iter()
            .filter(|c| *c == "reconfigure")
            .count()
    }

    /// Every file under the root's etc/ and var/ with its bytes.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &self.root.join("etc"), &mut out);
        walk(&self.root, &self.root.join("var"), &mut out);
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_parser_passes_a_good_configuration_and_multipathd_reconfigures() {
    let Some(check) = real_check().await else {
        return;
    };
    let e = env().await;
    e.set_config(&[W1]).await;
    e.set_overrides(GOOD_OVERRIDES).await;
    let mut applier = Applier::new(&e.root);
    // the default for a root other than `/`: the installed multipath, in a namespace
    assert_eq!(applier.parser_check(), Some(&check));
    let outcome = applier.apply(e.store.as_ref(), &e.client).await.unwrap();
    assert!(outcome.reconfigured);
    assert_eq!(outcome.changed, [BASELINE_PATH, OVERRIDES_PATH, WWIDS_PATH]);
    assert_eq!(e.reconfigures(), 1);
    let overrides = std::fs::read_to_string(e.root.join(OVERRIDES_PATH)).unwrap();
    assert!(overrides.contains("NETAPP"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_parser_complaint_keeps_the_previous_files_and_multipathd_untouched() {
    let Some(check) = real_check().await else {
        return;
    };
    let e = env().await;
    let mut applier = Applier::new(&e.root).with_parser_check(check);

    // A working configuration without overrides.
    e.set_config(&[W1]).await;
    applier.apply(e.store.as_ref(), &e.client).await.unwrap();
    assert_eq!(e.reconfigures(), 1);
    let before = e.files();
    assert!(before.contains_key(BASELINE_PATH) && before.contains_key(WWIDS_PATH));
    assert!(before.contains_key(STATE_PATH));
    assert!(!before.contains_key(OVERRIDES_PATH));

    // A change of the allow-list and overrides the real parser complains about: the baseline,
    // the wwids file and the agent state would change and the overrides drop-in would appear.
    e.set_config(&[W1, W2]).await;
    e.set_overrides(BOGUS_OVERRIDES).await;
    let err = applier
        .apply(e.store.as_ref(), &e.client)
        .await
        .unwrap_err();
    let text = error_chain(&err);
    assert!(matches!(err, ApplyError::Rejected { .. }), "{text}");
    assert!(text.contains(BOGUS_COMPLAINT), "{text}");
    // line 5 of the drop-in: the generated 3-line header, a blank line, then the document
    assert!(
        text.contains("/etc/multipath/conf.d/mpcluster-10-overrides.conf line 5"),
        "{text}"
    );
    assert!(text.len() < 2048, "{text}");
    assert_eq!(e.files(), before, "every previous file byte for byte");
    assert_eq!(e.reconfigures(), 1, "no reconfigure");

    // Retries fail the same way, with the same words (the error is published only on change).
    let again = error_chain(
        &applier
            .apply(e.store.as_ref(), &e.client)
            .await
            .unwrap_err(),
    );
    assert_eq!(again, text);
    assert_eq!(e.files(), before);

    // Fixed: applied, one reconfigure.
    e.set_overrides(GOOD_OVERRIDES).await;
    applier.apply(e.store.as_ref(), &e.client).await.unwrap();
    assert_eq!(e.reconfigures(), 2);
    let good = e.files();
    assert!(good.contains_key(OVERRIDES_PATH));

    // Broken again: the existing overrides drop-in is restored, not removed.
    e.set_overrides(BOGUS_OVERRIDES).await;
    let err = applier
        .apply(e.store.as_ref(), &e.client)
        .await
        .unwrap_err();
    assert!(error_chain(&err).contains(BOGUS_COMPLAINT));
    assert_eq!(e.files(), good);
    assert_eq!(e.reconfigures(), 2);
}

/// The agent loop with its default applier (the real parser in a namespace for its temp root):
/// the parser's words become the node's `multipath-apply` error, and clear once fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_parser_complaint_is_the_nodes_apply_error() {
    if real_check().await.is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
    std::fs::write(root.join("usr/sbin/multipath"), "").unwrap();
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
    store
        .write_doc(
            doc_names::OVERRIDES,
            &serde_json::to_string(BOGUS_OVERRIDES).unwrap(),
            Expect::Any,
        )
        .await
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

    let deadline = Instant::now() + Duration::from_secs(20);
    let error = loop {
        if let Some(v) = store.get(kv_keys::APPLY, &node).await.unwrap() {
            break v;
        }
        assert!(Instant::now() < deadline, "no apply error published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error: serde_json::Value = serde_json::from_str(&error).unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("multipath -t rejects"), "{message}");
    assert!(message.contains(BOGUS_COMPLAINT), "{message}");
    // (The files are checked byte for byte in the test above: here the loop retries, and each
    // retry has the candidate on disk for as long as the parser reads it.)
    assert!(
        !sim.state().commands.iter().any(|c| c == "reconfigure"),
        "never reconfigured with the rejected files"
    );

    store
        .write_doc(doc_names::OVERRIDES, "\"\"", Expect::Any)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.get(kv_keys::APPLY, &node).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "apply error not cleared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sim.state().commands.iter().any(|c| c == "reconfigure"));

    stop.send(true).unwrap();
    agent.await.unwrap();
}

/// A stand-in program: a shell script at `dir/name`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_parser_complaint_restores_and_skips_reconfigure() {
    let e = env().await;
    let bin = tempfile::tempdir().unwrap();
    let quiet = script(bin.path(), "quiet", "exit 0");
    let complaining = script(
        bin.path(),
        "complaining",
        "echo '12.345678 | /etc/multipath/conf.d/mpcluster-10-overrides.conf line 2, invalid keyword in the overrides section: foo' >&2\n\
         echo '12.345679 | /etc/multipath.conf line 3, \"bindings_file\" is deprecated and will be disabled in a future release' >&2",
    );
    let notices_only = script(
        bin.path(),
        "notices",
        "echo '12.0 | /etc/multipath.conf line 3, \"wwids_file\" is deprecated and will be disabled in a future release' >&2",
    );
    let mut applier = Applier::new(&e.root).with_parser_check(ParserCheck::direct(&quiet));
    e.set_config(&[W1]).await;
    e.set_overrides(GOOD_OVERRIDES).await;
    applier.apply(e.store.as_ref(), &e.client).await.unwrap();
    assert_eq!(e.reconfigures(), 1);
    let before = e.files();

    let mut applier = applier.with_parser_check(ParserCheck::direct(&complaining));
    e.set_config(&[W1, W2]).await;
    e.set_overrides("overrides {\n\tno_path_retry 5\n}\n").await;
    let err = applier
        .apply(e.store.as_ref(), &e.client)
        .await
        .unwrap_err();
    let text = error_chain(&err);
    assert!(
        text.ends_with(
            "/etc/multipath/conf.d/mpcluster-10-overrides.conf line 2, invalid keyword in the overrides section: foo"
        ),
        "only the complaint, without its timestamp, not the notice: {text}"
    );
    assert_eq!(e.files(), before);
    assert_eq!(e.reconfigures(), 1);

    // notices alone do not stop the apply
    let mut applier = applier.with_parser_check(ParserCheck::direct(&notices_only));
    applier.apply(e.store.as_ref(), &e.client).await.unwrap();
    assert_eq!(e.reconfigures(), 2);
    assert_ne!(e.files(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_parser_failures_are_apply_errors_and_change_nothing() {
    let e = env().await;
    let bin = tempfile::tempdir().unwrap();
    e.set_config(&[W1]).await;
    let before = e.files();
    assert!(before.is_empty());

    let cases: Vec<(ParserCheck, &str)> = vec![
        (
            ParserCheck::direct("/nonexistent/sbin/multipath"),
            "cannot have multipath -t check the candidate configuration: /nonexistent/sbin/multipath is not installed (multipath-tools)",
        ),
        (
            ParserCheck::direct(script(bin.path(), "exit1", "exit 1")),
            "multipath -t rejects the candidate configuration, which was not applied (the previous one stays in force): multipath -t failed (exit status 1)",
        ),
        (
            ParserCheck {
                timeout: Duration::from_millis(300),
                ..ParserCheck::direct(script(bin.path(), "hangs", "exec sleep 30"))
            },
            "multipath -t did not finish within 300ms",
        ),
        (
            ParserCheck {
                run: ParserRun::Namespace {
                    unshare: script(
                        bin.path(),
                        "unshare",
                        "echo 'unshare: unshare failed: Operation not permitted' >&2; exit 1",
                    ),
                },
                ..ParserCheck::direct(script(bin.path(), "never-run", "exit 0"))
            },
            "cannot set up a private mount namespace for multipath -t (it needs root): unshare: unshare failed: Operation not permitted",
        ),
    ];
    for (check, expected) in cases {
        let mut applier = Applier::new(&e.root).with_parser_check(check.clone());
        let started = Instant::now();
        let err = applier
            .apply(e.store.as_ref(), &e.client)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "{check:?}");
        let text = error_chain(&err);
        assert!(
            text.contains(expected),
            "{check:?}:\n{text}\nwanted: {expected}"
        );
        assert_eq!(e.files(), before, "{check:?}: drop-ins removed again");
        assert_eq!(e.reconfigures(), 0, "{check:?}");
    }
}
