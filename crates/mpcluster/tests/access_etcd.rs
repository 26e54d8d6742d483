//! Secured store connections end to end: a real etcd serving TLS with client certificates and
//! password authentication enabled; an agent and `serve` with `--etcd-ca/--etcd-cert/
//! --etcd-key/--etcd-user/--etcd-password-file` work; a wrong password fails with an error
//! naming the store, and is not retried in a storm.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, cell, make_root, start_serve, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_store::testing::{EtcdServer, EtcdServerConfig, TestCerts, require_etcd};

const W1: &str = "3600a098038303053453f463045727a01";
const PASSWORD: &str = "r00t-pw for etcd";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_with_tls_and_auth_agent_and_server_work_wrong_password_is_clear() {
    if require_etcd("etcd_with_tls_and_auth").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(&dir.path().join("certs")).unwrap();
    let mut etcd = EtcdServer::start_with(EtcdServerConfig {
        members: 1,
        tls: Some(certs.clone()),
    })
    .await
    .unwrap();
    // Over TLS with the client certificate, through mpcluster-store's own etcd client.
    etcd.enable_auth("root", PASSWORD).await.unwrap();

    let good_pw = dir.path().join("pw");
    std::fs::write(&good_pw, format!("{PASSWORD}\n")).unwrap();
    let bad_pw = dir.path().join("bad-pw");
    std::fs::write(&bad_pw, "wrong\n").unwrap();
    let spec = etcd.spec("secure").to_string();
    let store_args = |pw: &std::path::Path| -> Vec<String> {
        vec![
            "--store".into(),
            spec.clone(),
            "--etcd-ca".into(),
            certs.ca.display().to_string(),
            "--etcd-cert".into(),
            certs.client_cert.display().to_string(),
            "--etcd-key".into(),
            certs.client_key.display().to_string(),
            "--etcd-user".into(),
            "root".into(),
            "--etcd-password-file".into(),
            pw.display().to_string(),
        ]
    };

    // An agent and the server with the right credentials.
    let sim = SimNode::start(
        &dir.path().join("n1.sock"),
        &dir.path().join("n1-sys"),
        SimState {
            maps: vec![SimMap::new(W1, 0, 1 << 30, 2, "scsi:iscsi", 0)],
            ..SimState::default()
        },
    )
    .unwrap();
    let root = dir.path().join("n1-root");
    make_root(&root);
    let mut agent_args: Vec<String> = vec![
        "agent".into(),
        "--node".into(),
        "n1".into(),
        "--interval".into(),
        "0.3".into(),
        "--no-apply".into(),
        "--multipathd-socket".into(),
        sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        sim.sysfs_root().display().to_string(),
    ];
    agent_args.extend(store_args(&good_pw));
    let _agent = Proc::mpcluster("agent", &agent_args);
    let (_server, url) = start_serve("serve", &store_args(&good_pw));
    tokio::task::block_in_place(|| {
        wait_status(
            &url,
            "n1 optimal through TLS + auth",
            Duration::from_secs(30),
            |s| cell(s, W1, "n1")["state"] == "optimal",
        )
    });
    let mut list: Vec<String> = vec!["token".into(), "list".into()];
    list.extend(store_args(&good_pw));
    let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(&list)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin"));

    // A wrong password: a clear error naming the store and the user, at once.
    let needle = "refused authentication for user 'root'";
    let describe = format!("etcd store https://{}", etcd.endpoints()[0]);
    let mut list: Vec<String> = vec!["token".into(), "list".into()];
    list.extend(store_args(&bad_pw));
    let mut serve: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--admin-token-file".into(),
        dir.path().join("unused-token").display().to_string(),
    ];
    serve.extend(store_args(&bad_pw));
    for args in [&list, &serve] {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
            .args(args)
            .env("MPCLUSTER_LOG", "warn")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.contains(&describe),
            "{args:?}: {err}"
        );
        assert!(!err.contains("wrong"), "the password is not shown: {err}");
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    }

    // An agent with a wrong password keeps running but backs off: a handful of failures in
    // four seconds, not one per request.
    let mut bad_agent_args = agent_args[..agent_args.len() - 12].to_vec();
    bad_agent_args.extend(store_args(&bad_pw));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(&bad_agent_args)
        .env("MPCLUSTER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    std::thread::sleep(Duration::from_secs(4));
    let _ = child.kill();
    let _ = child.wait();
    let lines = reader.join().unwrap();
    let failures = lines.iter().filter(|l| l.contains(needle)).count();
    eprintln!("wrong password: {failures} refusals logged by the agent in 4 s");
    assert!(failures >= 1, "the agent reports the refusal: {lines:#?}");
    assert!(failures <= 12, "{failures} failures in 4 s: {lines:#?}");
}
