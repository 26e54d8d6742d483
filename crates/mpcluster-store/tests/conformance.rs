//! Store tests: the conformance suite ([`suite`]) against all three backends, plus what only
//! one backend has (embedded: crash safety, cross-process polling, directory mode; pve:
//! membership from `.members`, lock directories, pmxcfs limits, no rewrite of unchanged
//! values; etcd: failover, outage and recovery, authentication).
//!
//! The pve store runs on a temporary directory standing in for `/etc/pve`
//! (`mpcluster_store::testing::PveRoot`), whose `.members` the tests write.
//!
//! etcd tests (`etcd_*`) start real etcd processes on 127.0.0.1 ephemeral ports via
//! `mpcluster_store::testing::EtcdServer`. Without an etcd binary they print why and pass,
//! except under `CI=true`, where they fail. Skip them with `cargo test -- --skip etcd_`.
#![allow(clippy::unwrap_used)]

#[path = "conformance/suite.rs"]
mod suite;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mpcluster_store::embedded::EmbeddedStore;
use mpcluster_store::pve::{PveMembership, PveStore};
use mpcluster_store::testing::PveRoot;
use mpcluster_store::{ClusterStore, EmbeddedOptions, NodeName, PveOptions, StoreSpec};
use suite::{Backend, ExternalMembership, Namespace};

const TEST_POLL: Duration = Duration::from_millis(100);

fn embedded_options() -> EmbeddedOptions {
    EmbeddedOptions {
        poll_interval: TEST_POLL,
    }
}

/// Embedded backend: one temporary directory per namespace.
struct Embedded;

impl Backend for Embedded {
    fn namespace(&self, _case: &str) -> Namespace {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Namespace::new(move || {
            let dir = dir.clone();
            Box::pin(async move {
                let store = EmbeddedStore::open(dir.path(), embedded_options())
                    .await
                    .unwrap();
                Arc::new(store) as Arc<dyn ClusterStore>
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_conformance() {
    suite::run_all("embedded", &Embedded).await;
}

fn pve_options() -> PveOptions {
    PveOptions {
        poll_interval: TEST_POLL,
        ..PveOptions::default()
    }
}

/// The local node every pve namespace starts with (a real `.members` lists it).
const PVE_LOCAL: &str = "pve-local";

/// The harness plays corosync: it writes `.members`.
impl ExternalMembership for PveRoot {
    fn set(&self, node: &NodeName, online: bool) {
        self.set_online(node.as_str(), online).unwrap();
    }

    fn remove(&self, node: &NodeName) {
        PveRoot::remove(self, node.as_str()).unwrap();
    }
}

/// pve backend: one pmxcfs-like root per namespace, a cluster whose only node at first is
/// [`PVE_LOCAL`].
struct Pve;

impl Backend for Pve {
    fn namespace(&self, _case: &str) -> Namespace {
        let root = Arc::new(PveRoot::cluster("conformance", PVE_LOCAL).unwrap());
        let dir = root.path().to_path_buf();
        Namespace::new(move || {
            let dir = dir.clone();
            Box::pin(async move {
                let store = PveStore::open(&dir, pve_options()).await.unwrap();
                Arc::new(store) as Arc<dyn ClusterStore>
            })
        })
        .with_external_membership(root)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pve_conformance() {
    suite::run_all("pve", &Pve).await;
}

/// The embedded store with corosync's membership (`--membership pve`): one embedded
/// directory and one pmxcfs-like root per namespace.
struct EmbeddedWithPveMembership;

impl Backend for EmbeddedWithPveMembership {
    fn namespace(&self, _case: &str) -> Namespace {
        let root = Arc::new(PveRoot::cluster("conformance", PVE_LOCAL).unwrap());
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let pve_root = root.path().to_path_buf();
        Namespace::new(move || {
            let (dir, pve_root) = (dir.clone(), pve_root.clone());
            Box::pin(async move {
                let inner = EmbeddedStore::open(dir.path(), embedded_options())
                    .await
                    .unwrap();
                let store = PveMembership::new(Arc::new(inner), &pve_root, TEST_POLL)
                    .await
                    .unwrap();
                Arc::new(store) as Arc<dyn ClusterStore>
            })
        })
        .with_external_membership(root)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pve_membership_over_embedded_conformance() {
    suite::run_all("embedded+pve-membership", &EmbeddedWithPveMembership).await;
}

mod embedded {
    //! Embedded-only behaviour.
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use mpcluster_store::{Expect, NodeName, StoreOptions};

    use super::*;

    const CRASH_WRITER_ENV: &str = "MPCLUSTER_STORE_TEST_CRASH_WRITER";

    fn all_files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn open_by_spec_creates_private_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/state");
        let spec: StoreSpec = format!("embedded:{}", dir.display()).parse().unwrap();
        let store = mpcluster_store::open(&spec, &StoreOptions::default())
            .await
            .unwrap();
        assert_eq!(
            store.describe(),
            format!("embedded store {}", dir.display())
        );
        assert!(store.is_standalone());
        for d in [&dir, &dir.join("docs"), &dir.join("kv")] {
            let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        store
            .put("multipath", &NodeName::new("n").unwrap(), Some("v"))
            .await
            .unwrap();
        let f = dir.join("kv/multipath/n");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_to_string(f).unwrap(), "v");
    }

    #[tokio::test]
    async fn no_temp_files_left_after_operations() {
        let tmp = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(tmp.path(), embedded_options())
            .await
            .unwrap();
        let n = NodeName::new("n1").unwrap();
        for i in 0..20 {
            store
                .put("multipath", &n, Some(&format!("v{i}")))
                .await
                .unwrap();
            store
                .write_doc("cfg", &format!("c{i}"), Expect::Any)
                .await
                .unwrap();
        }
        let _ = store.write_doc("cfg", "x", Expect::Absent).await;
        let _ = store.put("multipath", &n, Some(&"x".repeat(40_000))).await;
        store.delete_doc("cfg", Expect::Any).await.unwrap();
        store.write_doc("cfg2", "kept", Expect::Any).await.unwrap();
        let root = tmp.path().display().to_string();
        assert_eq!(
            all_files(tmp.path()),
            vec![
                format!("{root}/.lock"),
                format!("{root}/docs/cfg2"),
                format!("{root}/kv/multipath/n1"),
            ]
        );
    }

    /// Not a test by itself: the child process of `crash_mid_write_never_half_writes`
    /// (runs only with the environment variable set). Writes two large versions of one
    /// document and one node KV value alternately, forever.
    #[tokio::test]
    async fn crash_writer_child() {
        let Some(dir) = std::env::var_os(CRASH_WRITER_ENV) else {
            return;
        };
        let store = EmbeddedStore::open(Path::new(&dir), embedded_options())
            .await
            .unwrap();
        let n = NodeName::new("n").unwrap();
        let (a, b) = versions();
        let mut i = 0u64;
        loop {
            let v = if i.is_multiple_of(2) { &a } else { &b };
            store.write_doc("big", v, Expect::Any).await.unwrap();
            store.put("multipath-detail", &n, Some(v)).await.unwrap();
            i += 1;
            store
                .put("progress", &n, Some(&format!("{} {i}", std::process::id())))
                .await
                .unwrap();
        }
    }

    fn versions() -> (String, String) {
        (
            "A".repeat(700_000) + "\nend A\n",
            "B".repeat(900_000) + "\nend B\n",
        )
    }

    #[tokio::test]
    async fn crash_mid_write_never_half_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = versions();
        let n = NodeName::new("n").unwrap();
        {
            let store = EmbeddedStore::open(tmp.path(), embedded_options())
                .await
                .unwrap();
            store.write_doc("big", &a, Expect::Absent).await.unwrap();
        }
        let exe = std::env::current_exe().unwrap();
        for round in 0..10 {
            let mut child = Command::new(&exe)
                .args([
                    "embedded::crash_writer_child",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CRASH_WRITER_ENV, tmp.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Wait until it is in its write loop, then kill it at a different phase each round.
            let progress_file = tmp.path().join("kv/progress/n");
            let pid = child.id().to_string();
            let t0 = Instant::now();
            while !std::fs::read_to_string(&progress_file).is_ok_and(|p| p.starts_with(&pid)) {
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "child writer never started"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(Duration::from_millis(3 + 23 * round)).await;
            child.kill().unwrap();
            child.wait().unwrap();
            let left_by_crash = all_files(tmp.path())
                .into_iter()
                .filter(|f| f.ends_with(".tmp"))
                .count();
            // Also plant what a writer killed mid-write leaves (pid above PID_MAX_LIMIT: dead), so
            // the cleanup is exercised whatever the timing was.
            std::fs::write(tmp.path().join("docs/.big.4194305.aBcDeF.tmp"), "partial").unwrap();
            // Opening cleans up temp files of the dead writer.
            let store = EmbeddedStore::open(tmp.path(), embedded_options())
                .await
                .unwrap();
            let (content, digest) = store.read_doc("big").await.unwrap().unwrap();
            assert!(
                content == a || content == b,
                "round {round}: half-written document"
            );
            assert_eq!(digest, mpcluster_store::ConfigDigest::of(&content));
            if let Some(v) = store.get("multipath-detail", &n).await.unwrap() {
                assert!(v == a || v == b, "round {round}: half-written KV value");
            }
            let temps: Vec<String> = all_files(tmp.path())
                .into_iter()
                .filter(|f| f.ends_with(".tmp"))
                .collect();
            assert!(
                temps.is_empty(),
                "round {round}: temp files left: {temps:?}"
            );
            let progress = store.get("progress", &n).await.unwrap();
            eprintln!(
                "round {round}: writer killed after {progress:?} iterations; \
                 {left_by_crash} temp file(s) left by the crash; all cleaned at open"
            );
        }
    }

    #[tokio::test]
    async fn readers_never_see_partial_documents() {
        let tmp = tempfile::tempdir().unwrap();
        let w = EmbeddedStore::open(tmp.path(), embedded_options())
            .await
            .unwrap();
        let r = EmbeddedStore::open(tmp.path(), embedded_options())
            .await
            .unwrap();
        let (a, b) = versions();
        w.write_doc("big", &a, Expect::Absent).await.unwrap();
        let writer = {
            let (a, b) = (a.clone(), b.clone());
            tokio::spawn(async move {
                for i in 0..12 {
                    let v = if i % 2 == 0 { &b } else { &a };
                    w.write_doc("big", v, Expect::Any).await.unwrap();
                }
            })
        };
        let start = Instant::now();
        let mut reads = 0;
        while !writer.is_finished() {
            let (c, _) = r.read_doc("big").await.unwrap().unwrap();
            assert!(c == a || c == b, "partial read");
            reads += 1;
        }
        writer.await.unwrap();
        eprintln!(
            "{reads} consistent reads during 12 writes in {:?}",
            start.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------------------
// pve

mod pve {
    //! pve-only behaviour, on a temporary root standing in for `/etc/pve`.
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::path::{Path, PathBuf};
    use std::time::{Instant, SystemTime};

    use mpcluster_store::pve::{DATA_DIR, LOCK_DIR, PMXCFS_MAX_FILE_SIZE};
    use mpcluster_store::{Expect, StoreError, StoreEvent, StoreOptions, names};

    use super::suite::{expect_event, node};
    use super::*;

    async fn open(root: &PveRoot) -> PveStore {
        PveStore::open(root.path(), pve_options()).await.unwrap()
    }

    /// Every directory and file under `dir` (but `.members`), relative, sorted.
    fn tree(dir: &Path) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                if rel == ".members" {
                    continue;
                }
                if e.file_type().unwrap().is_dir() {
                    out.push(format!("{rel}/"));
                    walk(base, &p, out);
                } else {
                    out.push(rel);
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    /// What a rename or a rewrite would change: inode, mtime and ctime (nanoseconds).
    fn identity(p: &Path) -> (u64, i64, i64, i64, i64) {
        let m = std::fs::metadata(p).unwrap();
        (
            m.ino(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    }

    fn value_path(root: &Path, n: &str, key: &str) -> PathBuf {
        root.join(DATA_DIR).join("nodes").join(n).join(key)
    }

    fn doc_path(root: &Path, name: &str) -> PathBuf {
        root.join(DATA_DIR).join("docs").join(name)
    }

    fn lock_path(root: &Path, doc: &str) -> PathBuf {
        root.join(LOCK_DIR).join(format!("mpcluster-doc-{doc}"))
    }

    fn set_mtime(p: &Path, ago: Duration) {
        std::fs::File::open(p)
            .unwrap()
            .set_modified(SystemTime::now() - ago)
            .unwrap();
    }

    /// No event within `wait` but `Resync`s.
    async fn expect_quiet(sub: &mut mpcluster_store::StoreSubscription, wait: Duration) {
        let start = Instant::now();
        while start.elapsed() < wait {
            match tokio::time::timeout(wait - start.elapsed(), sub.recv()).await {
                Err(_) => return,
                Ok(Some(StoreEvent::Resync)) => {}
                Ok(other) => panic!("unexpected event {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn pve_open_by_spec_and_layout() {
        let root = PveRoot::cluster("prod", "pve1").unwrap();
        let spec: StoreSpec = format!("pve:{}", root.path().display()).parse().unwrap();
        assert_eq!(spec, root.spec());
        let store = mpcluster_store::open(&spec, &StoreOptions::default())
            .await
            .unwrap();
        assert_eq!(
            store.describe(),
            format!("pve store {}", root.path().display())
        );
        assert!(!store.is_standalone());
        // Opening writes nothing.
        assert!(tree(root.path()).is_empty(), "{:?}", tree(root.path()));

        let n = node("pve1");
        store.put("multipath", &n, Some("v")).await.unwrap();
        // Node names may hold dots, even ".tmp.": a directory name, never taken for a temp file.
        let dotted = node("odd.tmp.name");
        store.put("multipath", &dotted, Some("d")).await.unwrap();
        store
            .write_doc("storage", "s", Expect::Absent)
            .await
            .unwrap();
        assert_eq!(
            tree(root.path()),
            vec![
                "priv/",
                "priv/lock/",
                "priv/mpcluster/",
                "priv/mpcluster/docs/",
                "priv/mpcluster/docs/storage",
                "priv/mpcluster/nodes/",
                "priv/mpcluster/nodes/odd.tmp.name/",
                "priv/mpcluster/nodes/odd.tmp.name/multipath",
                "priv/mpcluster/nodes/pve1/",
                "priv/mpcluster/nodes/pve1/multipath",
            ]
        );
        assert_eq!(
            std::fs::read_to_string(value_path(root.path(), "pve1", "multipath")).unwrap(),
            "v"
        );
        assert_eq!(store.get_all("multipath").await.unwrap().len(), 2);
        // On a plain directory the modes are those pmxcfs gives priv/: 0700 and 0600.
        for (p, mode) in [
            (root.path().join("priv"), 0o700),
            (root.path().join(DATA_DIR).join("nodes/pve1"), 0o700),
            (value_path(root.path(), "pve1", "multipath"), 0o600),
            (doc_path(root.path(), "storage"), 0o600),
        ] {
            let got = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(got, mode, "{}", p.display());
        }
        // The default root is /etc/pve.
        let spec: StoreSpec = "pve".parse().unwrap();
        assert_eq!(spec.pve_root().unwrap(), Path::new("/etc/pve"));
    }

    #[tokio::test]
    async fn pve_open_refuses_what_is_not_a_pmxcfs_root() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let e = PveStore::open(&missing, pve_options()).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Config { problem, .. } if problem.ends_with("nope does not exist")),
            "{e:?}"
        );
        // An empty directory: pmxcfs is not mounted there.
        let e = PveStore::open(tmp.path(), pve_options()).await.unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains(".members does not exist"), "{shown}");
        assert!(shown.contains("is pve-cluster running"), "{shown}");
        assert!(tree(tmp.path()).is_empty(), "opening must write nothing");
        // A malformed .members.
        std::fs::write(tmp.path().join(".members"), "{").unwrap();
        let e = PveStore::open(tmp.path(), pve_options()).await.unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
        assert!(tree(tmp.path()).is_empty(), "opening must write nothing");
    }

    /// The agent publishes only on change and on its 60 s refresh; a put of the stored value
    /// must not reach pmxcfs at all: no temp file, no rename, no mtime change, no event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pve_unchanged_writes_touch_nothing() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        let store = open(&root).await;
        let n = node("pve1");
        let payload = r#"{"time":1700000000,"maps":{"wA":{"state":"optimal"}}}"#;
        store.put("multipath", &n, Some(payload)).await.unwrap();
        let d = store
            .write_doc("multipath-config", "c1", Expect::Absent)
            .await
            .unwrap();
        let value = value_path(root.path(), "pve1", "multipath");
        let node_dir = value.parent().unwrap().to_path_buf();
        let doc = doc_path(root.path(), "multipath-config");
        let docs_dir = doc.parent().unwrap().to_path_buf();
        let lock_dir = root.path().join(LOCK_DIR);
        let watched = [&value, &node_dir, &doc, &docs_dir, &lock_dir];
        let before: Vec<_> = watched.iter().map(|p| identity(p)).collect();
        let tree_before = tree(root.path());

        let mut sub = store.subscribe().await;
        // Coarse-grained timestamps would hide a rewrite: make sure time moves on.
        tokio::time::sleep(Duration::from_millis(20)).await;
        for _ in 0..3 {
            store.put("multipath", &n, Some(payload)).await.unwrap();
            assert_eq!(
                store
                    .write_doc("multipath-config", "c1", Expect::Digest(d))
                    .await
                    .unwrap(),
                d
            );
            assert_eq!(
                store
                    .write_doc("multipath-config", "c1", Expect::Any)
                    .await
                    .unwrap(),
                d
            );
            // Clearing what is not there (the agent clears every refresh while no map exists).
            store.put("multipath-collect", &n, None).await.unwrap();
            store
                .put("multipath-apply", &node("other"), None)
                .await
                .unwrap();
        }
        expect_quiet(&mut sub, Duration::from_millis(500)).await;
        let after: Vec<_> = watched.iter().map(|p| identity(p)).collect();
        assert_eq!(
            before, after,
            "an unchanged write touched a file or directory"
        );
        assert_eq!(tree(root.path()), tree_before);

        // The refresh carries a new timestamp: that is a change, written by rename.
        let refreshed = payload.replace("1700000000", "1700000060");
        store.put("multipath", &n, Some(&refreshed)).await.unwrap();
        expect_event(
            &mut sub,
            Duration::from_secs(2),
            &StoreEvent::NodeKv {
                key: "multipath".into(),
                node: n.clone(),
            },
        )
        .await;
        assert_ne!(
            identity(&value).0,
            before[0].0,
            "a change is a new file (rename)"
        );
        assert_eq!(std::fs::read_to_string(&value).unwrap(), refreshed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pve_members_follow_dot_members() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        let store = open(&root).await;
        let other = open(&root).await; // another process reading the same /etc/pve
        let mut sub = store.subscribe().await;
        let online = |m: &std::collections::BTreeMap<NodeName, mpcluster_store::Member>| {
            m.iter()
                .map(|(n, m)| format!("{n}={}", u8::from(m.online)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(online(&store.members().await.unwrap()), "pve1=1");

        let steps: &[(&str, Option<bool>, &str)] = &[
            ("pve2", Some(true), "pve1=1 pve2=1"), // a node joins the cluster
            ("pve2", Some(false), "pve1=1 pve2=0"), // it goes offline (still configured)
            ("pve2", Some(true), "pve1=1 pve2=1"), // it comes back
            ("pve3", Some(false), "pve1=1 pve2=1 pve3=0"), // added, not yet booted
            ("pve3", Some(true), "pve1=1 pve2=1 pve3=1"),
            ("pve2", None, "pve1=1 pve3=1"), // pvecm delnode
        ];
        for (n, state, want) in steps {
            match state {
                Some(on) => root.set_online(n, *on).unwrap(),
                None => root.remove(n).unwrap(),
            }
            assert_eq!(online(&store.members().await.unwrap()), *want);
            assert_eq!(online(&other.members().await.unwrap()), *want);
            expect_event(&mut sub, Duration::from_secs(3), &StoreEvent::Members).await;
        }
        // Quorum and version changes are not membership changes: no event.
        root.set_quorate(false).unwrap();
        expect_quiet(&mut sub, Duration::from_millis(400)).await;
        assert!(!store.is_standalone());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pve_standalone_node_is_a_standalone_store() {
        let root = PveRoot::standalone("solo").unwrap();
        let store = open(&root).await;
        assert!(store.is_standalone());
        assert!(store.members().await.unwrap().is_empty());
        // Any name may join (no membership to check); nothing is kept alive.
        let h = store
            .join(&node("solo"), Duration::from_secs(2))
            .await
            .unwrap();
        assert!(h.is_alive());
        h.leave().await.unwrap();
        store
            .join(&node("x"), Duration::from_secs(2))
            .await
            .unwrap();
        // `pvecm create` + `pvecm add`: now a cluster.
        let mut sub = store.subscribe().await;
        root.set_online("pve2", true).unwrap();
        expect_event(&mut sub, Duration::from_secs(3), &StoreEvent::Members).await;
        assert!(!store.is_standalone(), "the poller saw the cluster");
        assert_eq!(store.members().await.unwrap().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pve_malformed_members_is_a_clear_error() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        let store = open(&root).await;
        let mut sub = store.subscribe().await;
        let path = root.members_path().display().to_string();
        let cases = [
            ("", "the file is empty"),
            ("{\"nodename\": \"pve1\", \"nodelist\": {", "not valid JSON"),
            (
                r#"{"nodename": "pve1", "cluster": {"name": "c"}, "nodelist": {}}"#,
                "\"nodelist\" is empty",
            ),
            (
                r#"{"nodename": "pve1", "nodelist": {"pve1": {"id": 1}}}"#,
                "node \"pve1\" in \"nodelist\" has no \"online\" flag",
            ),
            (
                r#"{"nodename": "pve1", "nodelist": {"pve1": {"online": "1"}}}"#,
                "\"online\" is \"1\", not 0 or 1",
            ),
        ];
        for (text, want) in cases {
            root.write_members_raw(text).unwrap();
            for e in [
                store.members().await.unwrap_err(),
                store
                    .join(&node("pve1"), Duration::from_secs(1))
                    .await
                    .unwrap_err(),
            ] {
                match &e {
                    StoreError::Corrupt {
                        location, problem, ..
                    } => {
                        assert_eq!(location, &path);
                        assert!(problem.contains(want), "{text:?}: {problem}");
                    }
                    other => panic!("{text:?}: {other:?}"),
                }
                assert!(e.to_string().contains(&path), "{e}");
            }
            // Still the last good answer, never "standalone" by accident.
            assert!(!store.is_standalone());
        }
        // Readers are told to look again (and then see the error).
        expect_event(&mut sub, Duration::from_secs(3), &StoreEvent::Members).await;
        // The values are still readable meanwhile.
        store
            .put("multipath", &node("pve1"), Some("v"))
            .await
            .unwrap();
        assert_eq!(store.get_all("multipath").await.unwrap().len(), 1);
        root.set_online("pve1", true).unwrap();
        assert_eq!(store.members().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn pve_join_refuses_a_node_corosync_does_not_list() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        root.set_online("pve2", false).unwrap();
        let store = open(&root).await;
        let e = store
            .join(&node("pve9"), Duration::from_secs(5))
            .await
            .unwrap_err();
        match &e {
            StoreError::NotMember { node, listed, .. } => {
                assert_eq!(node, "pve9");
                assert_eq!(listed, "pve1, pve2");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string().contains(&format!(
                "not a member according to the corosync membership in {}",
                root.members_path().display()
            )),
            "{e}"
        );
        // A listed node joins, offline or not; its liveness stays corosync's.
        let h = store
            .join(&node("pve2"), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(h.is_alive());
        assert!(!store.members().await.unwrap()[&node("pve2")].online);
        h.leave().await.unwrap();
        assert!(store.members().await.unwrap().contains_key(&node("pve2")));
    }

    #[tokio::test]
    async fn pve_forget_node_leaves_corosync_membership_alone() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        root.set_online("pve2", false).unwrap();
        let store = open(&root).await;
        let gone = node("pve2");
        for key in ["multipath", "multipath-detail", "custom"] {
            store.put(key, &gone, Some("x")).await.unwrap();
        }
        store
            .put("multipath", &node("pve1"), Some("y"))
            .await
            .unwrap();
        // A temp file a crashed writer left in the node's directory goes too.
        let node_dir = root.path().join(DATA_DIR).join("nodes/pve2");
        std::fs::write(node_dir.join("multipath.tmp.4194305.abcdef"), "partial").unwrap();
        let members_before = std::fs::read(root.members_path()).unwrap();

        assert!(store.forget_node(&gone).await.unwrap());
        assert!(!node_dir.exists());
        assert_eq!(std::fs::read(root.members_path()).unwrap(), members_before);
        // Still configured in corosync: listed (offline) until `pvecm delnode`.
        assert!(!store.members().await.unwrap()[&gone].online);
        assert_eq!(
            store
                .get_all("multipath")
                .await
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec![&node("pve1")]
        );
        assert!(!store.forget_node(&gone).await.unwrap());
    }

    #[tokio::test]
    async fn pve_lock_left_by_a_crashed_writer_is_taken_over_after_the_timeout() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        let with = |timeout: u64, wait_ms: u64| PveOptions {
            lock_timeout: Duration::from_secs(timeout),
            lock_wait: Duration::from_millis(wait_ms),
            ..pve_options()
        };
        let store = PveStore::open(root.path(), with(120, 400)).await.unwrap();
        let d1 = store.write_doc("cfg", "v1", Expect::Absent).await.unwrap();
        let lock = lock_path(root.path(), "cfg");
        assert!(!lock.exists(), "released after the write");

        // A writer died holding the lock a moment ago: writes wait, then fail, unchanged.
        std::fs::create_dir(&lock).unwrap();
        let t = Instant::now();
        let e = store
            .write_doc("cfg", "v2", Expect::Digest(d1))
            .await
            .unwrap_err();
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
        match &e {
            StoreError::Unavailable { reason, .. } => {
                assert!(reason.contains(&lock.display().to_string()), "{reason}");
                assert!(
                    reason.contains("expires 120 s after it was taken"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_transient());
        let e = store.delete_doc("cfg", Expect::Any).await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert_eq!(store.read_doc("cfg").await.unwrap().unwrap().0, "v1");
        assert!(lock.exists(), "a live lock is never removed early");
        // Reads, no-op writes and conflicts need no lock.
        assert_eq!(store.write_doc("cfg", "v1", Expect::Any).await.unwrap(), d1);
        assert!(matches!(
            store.write_doc("cfg", "v2", Expect::Absent).await,
            Err(StoreError::Conflict { .. })
        ));

        // Older than pmxcfs's 120 s: taken over at once, not after waiting (5 s here).
        set_mtime(&lock, Duration::from_secs(121));
        let patient = PveStore::open(root.path(), with(120, 5000)).await.unwrap();
        let t = Instant::now();
        let d2 = patient
            .write_doc("cfg", "v2", Expect::Digest(d1))
            .await
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(!lock.exists());
        assert_eq!(
            store.read_doc("cfg").await.unwrap().unwrap(),
            ("v2".to_owned(), d2)
        );

        // With a short timeout, a waiting writer takes the lock over once it expires.
        let quick = PveStore::open(root.path(), with(1, 5000)).await.unwrap();
        std::fs::create_dir(&lock).unwrap();
        let t = Instant::now();
        quick
            .write_doc("cfg", "v3", Expect::Digest(d2))
            .await
            .unwrap();
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{took:?}"
        );
        assert!(!lock.exists());
        assert!(tree(&root.path().join(LOCK_DIR)).is_empty());
    }

    #[tokio::test]
    async fn pve_too_large_values_are_refused_with_nothing_written() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        let store = open(&root).await;
        let n = node("pve1");
        // Everything the store accepts fits into one pmxcfs file (1 MiB).
        assert_eq!(PMXCFS_MAX_FILE_SIZE, 1 << 20);
        const {
            assert!(names::DOC_MAX_LEN <= PMXCFS_MAX_FILE_SIZE);
            assert!(names::KV_DETAIL_MAX_LEN <= PMXCFS_MAX_FILE_SIZE);
        }

        // Nothing stored yet: not even a directory appears.
        let big_detail = "d".repeat(PMXCFS_MAX_FILE_SIZE + 1);
        let e = store
            .put("multipath-detail", &n, Some(&big_detail))
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::ValueTooLarge { limit, .. } if limit == PMXCFS_MAX_FILE_SIZE),
            "{e:?}"
        );
        let e = store
            .write_doc("big", &"x".repeat(PMXCFS_MAX_FILE_SIZE + 1), Expect::Any)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::DocumentTooLarge { .. }), "{e:?}");
        assert!(tree(root.path()).is_empty(), "{:?}", tree(root.path()));

        // With values stored: they stay byte for byte, same file.
        store.put("multipath", &n, Some("small")).await.unwrap();
        store
            .put(
                "multipath-detail",
                &n,
                Some(&"d".repeat(PMXCFS_MAX_FILE_SIZE)),
            )
            .await
            .unwrap();
        store.write_doc("big", "doc", Expect::Absent).await.unwrap();
        let files = [
            value_path(root.path(), "pve1", "multipath"),
            value_path(root.path(), "pve1", "multipath-detail"),
            doc_path(root.path(), "big"),
        ];
        let before: Vec<_> = files.iter().map(|p| identity(p)).collect();
        let tree_before = tree(root.path());
        let e = store
            .put("multipath", &n, Some(&"x".repeat(32 * 1024)))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::ValueTooLarge { .. }), "{e:?}");
        assert!(
            store
                .put("multipath-detail", &n, Some(&big_detail))
                .await
                .is_err()
        );
        assert!(
            store
                .write_doc("big", &"x".repeat(PMXCFS_MAX_FILE_SIZE + 1), Expect::Any)
                .await
                .is_err()
        );
        assert_eq!(
            files.iter().map(|p| identity(p)).collect::<Vec<_>>(),
            before
        );
        assert_eq!(tree(root.path()), tree_before);
        assert_eq!(
            store.get("multipath", &n).await.unwrap().as_deref(),
            Some("small")
        );
    }

    #[tokio::test]
    async fn pve_writes_are_refused_while_pmxcfs_is_not_mounted() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        let store = open(&root).await;
        let n = node("pve1");
        store.put("multipath", &n, Some("v")).await.unwrap();
        let tree_before = tree(root.path());
        // pmxcfs stopped: /etc/pve is an empty directory of the root filesystem again.
        std::fs::remove_file(root.members_path()).unwrap();
        let calls: Vec<(&str, Result<(), StoreError>)> = vec![
            ("put", store.put("multipath", &n, Some("w")).await),
            (
                "put new node",
                store.put("multipath", &node("pve2"), Some("w")).await,
            ),
            ("clear", store.put("multipath", &n, None).await),
            (
                "write_doc",
                store.write_doc("cfg", "x", Expect::Any).await.map(|_| ()),
            ),
            ("forget_node", store.forget_node(&n).await.map(|_| ())),
            ("members", store.members().await.map(|_| ())),
            (
                "join",
                store.join(&n, Duration::from_secs(1)).await.map(|_| ()),
            ),
        ];
        for (what, r) in calls {
            match r {
                Err(e @ StoreError::Unavailable { .. }) => {
                    assert!(
                        e.to_string().contains(".members does not exist"),
                        "{what}: {e}"
                    )
                }
                other => panic!("{what}: expected Unavailable, got {other:?}"),
            }
        }
        assert_eq!(tree(root.path()), tree_before, "something was written");
    }

    #[tokio::test]
    async fn pve_open_removes_old_temp_files_of_crashed_writers() {
        let root = PveRoot::cluster("c", "pve1").unwrap();
        {
            let store = open(&root).await;
            store
                .put("multipath", &node("pve1"), Some("v"))
                .await
                .unwrap();
            store.write_doc("cfg", "c", Expect::Absent).await.unwrap();
        }
        let node_dir = root.path().join(DATA_DIR).join("nodes/pve1");
        let docs = root.path().join(DATA_DIR).join("docs");
        let old = [
            node_dir.join("multipath.tmp.123.aaaaaa"),
            docs.join("cfg.tmp.77.bbbbbb"),
        ];
        // Maybe another node's write in flight right now: kept.
        let fresh = node_dir.join("multipath.tmp.456.cccccc");
        for p in old.iter().chain([&fresh]) {
            std::fs::write(p, "partial").unwrap();
        }
        for p in &old {
            set_mtime(p, Duration::from_secs(2 * 3600));
        }
        let store = open(&root).await;
        assert!(old.iter().all(|p| !p.exists()));
        assert!(fresh.exists());
        // Temp files are never values.
        assert_eq!(
            store.get_all("multipath").await.unwrap()[&node("pve1")],
            "v"
        );
        assert!(store.get_all("multipath.tmp.456.cccccc").await.is_err());
    }
}

// ---------------------------------------------------------------------------------------
// etcd

mod etcd {
    //! etcd-only behaviour, against real etcd processes.
    use std::time::Instant;

    use mpcluster_store::etcd::EtcdStore;
    use mpcluster_store::testing::{
        EtcdServer, EtcdServerConfig, TestCerts, openssl_available, require_etcd,
    };
    use mpcluster_store::{
        EtcdAuth, EtcdOptions, EtcdSpec, EtcdTls, Expect, NodeName, PasswordSource, Secret,
        StoreError, StoreEvent, StoreOptions,
    };

    use super::suite::{eventually, expect_event, node};
    use super::*;

    fn options(timeout: Duration) -> EtcdOptions {
        EtcdOptions {
            request_timeout: timeout,
            connect_timeout: Duration::from_secs(1),
            ..EtcdOptions::default()
        }
    }

    fn etcd_spec(server: &EtcdServer, cluster: &str) -> EtcdSpec {
        match server.spec(cluster) {
            StoreSpec::Etcd(e) => e,
            other => panic!("{other:?}"),
        }
    }

    async fn open(server: &EtcdServer, cluster: &str, timeout: Duration) -> Arc<dyn ClusterStore> {
        Arc::new(
            EtcdStore::open(&etcd_spec(server, cluster), options(timeout))
                .await
                .unwrap(),
        )
    }

    /// etcd backend: one mpcluster cluster name per namespace on one etcd.
    struct Etcd {
        spec: StoreSpec,
        next: AtomicUsize,
    }

    impl Backend for Etcd {
        fn namespace(&self, case: &str) -> Namespace {
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            let cluster = format!("{}-{n}", case.replace('_', "-"));
            let StoreSpec::Etcd(mut spec) = self.spec.clone() else {
                unreachable!()
            };
            spec.cluster = cluster;
            Namespace::new(move || {
                let spec = spec.clone();
                Box::pin(async move {
                    let store = EtcdStore::open(&spec, options(Duration::from_secs(5)))
                        .await
                        .unwrap();
                    Arc::new(store) as Arc<dyn ClusterStore>
                })
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn etcd_conformance() {
        if require_etcd("etcd_conformance").is_none() {
            return;
        }
        let server = EtcdServer::start().await.unwrap();
        let backend = Etcd {
            spec: server.spec("unused"),
            next: AtomicUsize::new(0),
        };
        suite::run_all("etcd", &backend).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_open_is_lazy_and_spec_round_trips() {
        // Needs no etcd: nothing listens on port 1.
        // Opening works, the first call is Unavailable quickly.
        let spec: StoreSpec = "etcd://127.0.0.1:1/lazy".parse().unwrap();
        let opts = StoreOptions {
            etcd: options(Duration::from_secs(1)),
            ..StoreOptions::default()
        };
        let store = mpcluster_store::open(&spec, &opts).await.unwrap();
        assert_eq!(
            store.describe(),
            "etcd store http://127.0.0.1:1 (cluster 'lazy')"
        );
        let t = Instant::now();
        let e = store.get_all("multipath").await.unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        match &e {
            StoreError::Unavailable { store, reason, .. } => {
                assert!(store.contains("127.0.0.1:1"));
                assert!(reason.contains("no endpoint answered"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_transient());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_failover_one_of_three_killed() {
        if require_etcd("etcd_failover_one_of_three_killed").is_none() {
            return;
        }
        let mut server = EtcdServer::start_cluster(3).await.unwrap();
        let store = open(&server, "failover", Duration::from_secs(3)).await;
        let observer = open(&server, "failover", Duration::from_secs(3)).await;
        let mut sub = observer.subscribe().await;
        let (a, b) = (node("pve1"), node("pve2"));
        let ha = store.join(&a, Duration::from_secs(2)).await.unwrap();
        store.put("multipath", &a, Some("before")).await.unwrap();
        expect_event(
            &mut sub,
            Duration::from_secs(5),
            &StoreEvent::NodeKv {
                key: "multipath".into(),
                node: a.clone(),
            },
        )
        .await;
        let d = store.write_doc("cfg", "v1", Expect::Absent).await.unwrap();

        // Member 0 is where both stores started; kill it.
        let t = Instant::now();
        server.kill(0);
        let mut d = d;
        for i in 0..10 {
            store
                .put("multipath", &a, Some(&format!("after {i}")))
                .await
                .unwrap();
            assert_eq!(
                store.get_all("multipath").await.unwrap()[&a],
                format!("after {i}")
            );
            d = store
                .write_doc("cfg", &format!("v{}", i + 2), Expect::Digest(d))
                .await
                .unwrap();
        }
        eprintln!(
            "10 write/read rounds after killing a member: {:?}",
            t.elapsed()
        );
        let hb = store.join(&b, Duration::from_secs(5)).await.unwrap();
        let m = observer.members().await.unwrap();
        assert!(m[&a].online && m[&b].online, "{m:?}");
        // The watch followed: a Resync, then live events again.
        store
            .put("multipath", &b, Some("b after kill"))
            .await
            .unwrap();
        expect_event(
            &mut sub,
            Duration::from_secs(8),
            &StoreEvent::NodeKv {
                key: "multipath".into(),
                node: b.clone(),
            },
        )
        .await;
        // The lease of `a` (TTL 2 s) is kept alive through the surviving members.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(observer.members().await.unwrap()[&a].online);
        assert!(ha.is_alive());
        // The killed member comes back and catches up.
        server.restart(0).await.unwrap();
        let only0 = Arc::new(
            EtcdStore::open(
                &EtcdSpec {
                    endpoints: vec![server.endpoints()[0].clone()],
                    cluster: "failover".into(),
                },
                options(Duration::from_secs(3)),
            )
            .await
            .unwrap(),
        );
        assert_eq!(only0.get_all("multipath").await.unwrap()[&a], "after 9");
        ha.leave().await.unwrap();
        hb.leave().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_all_members_down_unavailable_then_recovers() {
        if require_etcd("etcd_all_members_down_unavailable_then_recovers").is_none() {
            return;
        }
        let mut server = EtcdServer::start_cluster(3).await.unwrap();
        let store = open(&server, "outage", Duration::from_secs(2)).await;
        let mut sub = store.subscribe().await;
        let a = node("pve1");
        store.put("multipath", &a, Some("v1")).await.unwrap();
        let h = store.join(&a, Duration::from_secs(10)).await.unwrap();

        server.stop_all();
        let calls: Vec<(&str, Result<(), StoreError>)> = vec![
            ("get_all", store.get_all("multipath").await.map(|_| ())),
            ("put", store.put("multipath", &a, Some("v2")).await),
            ("members", store.members().await.map(|_| ())),
            ("read_doc", store.read_doc("cfg").await.map(|_| ())),
            (
                "write_doc",
                store.write_doc("cfg", "x", Expect::Any).await.map(|_| ()),
            ),
            (
                "join",
                store
                    .join(&node("pve2"), Duration::from_secs(5))
                    .await
                    .map(|_| ()),
            ),
        ];
        for (what, r) in calls {
            match r {
                Err(StoreError::Unavailable { reason, source, .. }) => {
                    assert!(!reason.is_empty());
                    assert!(source.is_some(), "{what}: no source");
                }
                other => panic!("{what}: expected Unavailable, got {other:?}"),
            }
        }
        // Bounded: each call gives up after the 2 s request timeout.
        let t = Instant::now();
        let e = store.get_all("multipath").await.unwrap_err();
        let took = t.elapsed();
        assert!(took < Duration::from_millis(3500), "took {took:?}");
        eprintln!("all members down: Unavailable after {took:?}: {e}");

        // Same store object recovers after the restart.
        server.restart_all().await.unwrap();
        let t = Instant::now();
        eventually(Duration::from_secs(15), "the store to answer again", || {
            let store = store.clone();
            async move { store.get_all("multipath").await.is_ok() }
        })
        .await;
        eprintln!("recovered {:?} after restart_all", t.elapsed());
        assert_eq!(store.get_all("multipath").await.unwrap()[&a], "v1");
        // Watch reconnected: Resync, then events.
        expect_event(&mut sub, Duration::from_secs(10), &StoreEvent::Resync).await;
        store.put("multipath", &a, Some("v3")).await.unwrap();
        expect_event(
            &mut sub,
            Duration::from_secs(5),
            &StoreEvent::NodeKv {
                key: "multipath".into(),
                node: a.clone(),
            },
        )
        .await;
        // The membership survived (TTL 10 s > outage) or re-joined by itself.
        eventually(Duration::from_secs(10), "the member to be online", || {
            let store = store.clone();
            let a = a.clone();
            async move {
                store
                    .members()
                    .await
                    .is_ok_and(|m| m.get(&a).is_some_and(|m| m.online))
            }
        })
        .await;
        h.leave().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_tls_with_client_certificates() {
        if require_etcd("etcd_tls_with_client_certificates").is_none() {
            return;
        }
        if !openssl_available() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "openssl is required under CI=true"
            );
            eprintln!("SKIPPED etcd_tls_with_client_certificates: no openssl command");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let certs = TestCerts::generate(dir.path()).unwrap();
        let server = EtcdServer::start_with(EtcdServerConfig {
            members: 1,
            tls: Some(certs.clone()),
        })
        .await
        .unwrap();
        let spec = etcd_spec(&server, "tls");
        let store = EtcdStore::open(
            &spec,
            EtcdOptions {
                tls: Some(certs.etcd_tls()),
                ..options(Duration::from_secs(3))
            },
        )
        .await
        .unwrap();
        assert!(
            store
                .describe()
                .starts_with("etcd store https://127.0.0.1:"),
            "{}",
            store.describe()
        );
        let mut sub = store.subscribe().await;
        let n = node("tls-node");
        store.put("multipath", &n, Some("over tls")).await.unwrap();
        expect_event(
            &mut sub,
            Duration::from_secs(5),
            &StoreEvent::NodeKv {
                key: "multipath".into(),
                node: n.clone(),
            },
        )
        .await;
        assert_eq!(
            store.get("multipath", &n).await.unwrap().as_deref(),
            Some("over tls")
        );
        let h = store.join(&n, Duration::from_secs(3)).await.unwrap();
        assert!(store.members().await.unwrap()[&n].online);
        h.leave().await.unwrap();

        // Without a client certificate the server refuses us: Unavailable, not a hang.
        let no_client_cert = EtcdStore::open(
            &spec,
            EtcdOptions {
                tls: Some(EtcdTls {
                    ca_file: Some(certs.ca.clone()),
                    ..EtcdTls::default()
                }),
                ..options(Duration::from_secs(1))
            },
        )
        .await
        .unwrap();
        let t = Instant::now();
        assert!(no_client_cert.get_all("multipath").await.is_err());
        assert!(t.elapsed() < Duration::from_secs(3));
        // A missing key file is reported with its path when opening.
        let e = EtcdStore::open(
            &spec,
            EtcdOptions {
                tls: Some(EtcdTls {
                    key_file: Some(dir.path().join("missing.key")),
                    ..certs.etcd_tls()
                }),
                ..options(Duration::from_secs(1))
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, StoreError::Io { path, .. } if path.ends_with("missing.key")),
            "{e:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_auth_wrong_password_is_auth_error_with_backoff() {
        if require_etcd("etcd_auth_wrong_password_is_auth_error_with_backoff").is_none() {
            return;
        }
        let mut server = EtcdServer::start().await.unwrap();
        server.enable_auth("root", "rootpw").await.unwrap();
        let spec = etcd_spec(&server, "auth");
        let with_password = |pw: &str| EtcdOptions {
            auth: Some(EtcdAuth {
                user: "root".into(),
                password: PasswordSource::Value(Secret::new(pw)),
            }),
            ..options(Duration::from_secs(2))
        };

        let bad = EtcdStore::open(&spec, with_password("wrong"))
            .await
            .unwrap();
        let e = bad.get_all("multipath").await.unwrap_err();
        match &e {
            StoreError::Auth { store, user, .. } => {
                assert_eq!(store, &bad.describe());
                assert_eq!(user.as_deref(), Some("root"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string()
                .contains("refused authentication for user 'root'"),
            "{e}"
        );
        // Backing off: the next calls fail at once without contacting etcd.
        let t = Instant::now();
        for _ in 0..20 {
            assert!(matches!(
                bad.put("multipath", &node("n"), Some("v")).await,
                Err(StoreError::Auth { .. })
            ));
        }
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );

        // No credentials at all.
        let anon = EtcdStore::open(&spec, options(Duration::from_secs(2)))
            .await
            .unwrap();
        let e = anon.get_all("multipath").await.unwrap_err();
        assert!(matches!(e, StoreError::Auth { user: None, .. }), "{e:?}");

        // Password from a file; works.
        let dir = tempfile::tempdir().unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "rootpw\n").unwrap();
        let good = EtcdStore::open(
            &spec,
            EtcdOptions {
                auth: Some(EtcdAuth {
                    user: "root".into(),
                    password: PasswordSource::File(pwfile),
                }),
                ..options(Duration::from_secs(2))
            },
        )
        .await
        .unwrap();
        let n = NodeName::new("n").unwrap();
        good.put("multipath", &n, Some("v")).await.unwrap();
        assert_eq!(
            good.get("multipath", &n).await.unwrap().as_deref(),
            Some("v")
        );
        let h = good.join(&n, Duration::from_secs(3)).await.unwrap();
        let mut sub = good.subscribe().await;
        good.write_doc("cfg", "x", Expect::Absent).await.unwrap();
        expect_event(
            &mut sub,
            Duration::from_secs(5),
            &StoreEvent::Document { name: "cfg".into() },
        )
        .await;
        h.leave().await.unwrap();
    }
}
