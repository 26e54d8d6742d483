//! HTTPS end to end: `serve --tls-cert/--tls-key` with a generated certificate (openssl, via
//! `mpcluster_testkit::ServingCert`); the CLI trusts it with `--ca` or `--fingerprint`, refuses it
//! otherwise; plain HTTP gets nowhere; SIGHUP reloads the certificate.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::start_serve;
use mpcluster_testkit::ServingCert;

fn status(url: &str, token_file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args([
            "status",
            "--format",
            "json",
            "--server",
            url,
            "--token-file",
        ])
        .arg(token_file)
        .args(extra)
        .env("MPCLUSTER_LOG", "warn")
        .output()
        .unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `openssl x509 -fingerprint -sha256`: `AB:CD:...`.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().rsplit('=').next().unwrap().to_owned()
}

fn wait_ok(what: &str, f: impl Fn() -> Output) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = f();
        if out.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {}", err(&out));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn https_with_ca_or_fingerprint_plain_http_refused_and_sighup_reload() {
    let dir = tempfile::tempdir().unwrap();
    let Some(serving) = ServingCert::new(dir.path()) else {
        return;
    };
    let first = serving.install("first").unwrap();
    let (server, url) = start_serve(
        "serve",
        &[
            "--store".into(),
            format!("embedded:{}", dir.path().join("store").display()),
            "--no-agent".into(),
            "--tls-cert".into(),
            serving.cert.display().to_string(),
            "--tls-key".into(),
            serving.key.display().to_string(),
        ],
    );
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let token = server.token_file.clone().unwrap();
    let ca = first.ca.display().to_string();

    // Trusted by CA (retrying while the status is computed), and by fingerprint.
    wait_ok("status over https with --ca", || {
        status(&url, &token, &["--ca", &ca])
    });
    let out = status(&url, &token, &["--ca", &ca]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["luns"].is_array(), "{v}");
    let fp = openssl_fingerprint(&first.server_cert);
    assert_eq!(fp.len(), 95, "{fp}");
    let out = status(&url, &token, &["--fingerprint", &fp]);
    assert!(out.status.success(), "{}", err(&out));

    // Refused: unknown issuer, another fingerprint, a bad fingerprint, no token.
    let out = status(&url, &token, &[]);
    assert!(!out.status.success());
    let out = status(&url, &token, &["--fingerprint", &"ab".repeat(32)]);
    assert!(!out.status.success());
    assert!(err(&out).contains("fingerprint"), "{}", err(&out));
    let out = status(&url, &token, &["--fingerprint", "12:34"]);
    assert!(!out.status.success());
    assert!(
        err(&out).contains("invalid certificate fingerprint"),
        "{}",
        err(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(["status", "--server", &url, "--ca", &ca])
        .env_remove("MPCLUSTER_TOKEN")
        .output()
        .unwrap();
    assert!(err(&out).contains("HTTP 401"), "{}", err(&out));

    // Plain HTTP to the TLS port: no answer, from the CLI nor from a plain client.
    let plain = url.replacen("https://", "http://", 1);
    let out = status(&plain, &token, &[]);
    assert!(!out.status.success());
    match ureq::get(&format!("{plain}/health"))
        .timeout(Duration::from_secs(5))
        .call()
    {
        Ok(r) => panic!("plain HTTP answered {}", r.status()),
        Err(ureq::Error::Status(code, _)) => panic!("plain HTTP answered {code}"),
        Err(ureq::Error::Transport(_)) => {}
    }

    // SIGHUP: a certificate from another CA replaces the first one.
    let second = serving.install("second").unwrap();
    server.signal("HUP");
    let ca2 = second.ca.display().to_string();
    wait_ok("the reloaded certificate", || {
        status(&url, &token, &["--ca", &ca2])
    });
    let out = status(&url, &token, &["--ca", &ca]);
    assert!(!out.status.success(), "the old CA no longer matches");
    let fp2 = openssl_fingerprint(&second.server_cert);
    let out = status(&url, &token, &["--fingerprint", &fp2]);
    assert!(out.status.success(), "{}", err(&out));
}
