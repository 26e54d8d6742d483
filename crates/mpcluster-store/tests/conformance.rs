//! Store tests: the conformance suite ([`suite`]) against both backends, plus what only one
//! backend has (embedded: crash safety, cross-process polling, directory mode; etcd:
//! failover, outage and recovery, authentication).
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
use mpcluster_store::{ClusterStore, EmbeddedOptions, StoreSpec};
use suite::{Backend, Namespace};

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
