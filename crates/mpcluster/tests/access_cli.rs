//! Access control end to end with the real binary and an embedded store: the first `serve`
//! bootstraps an admin token (printed once, saved 0600), `token add|list|remove`, `status
//! --server` with a token, plain HTTP on a public address refused without `--insecure-http`,
//! an oversized body over the wire.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{get_json, set_token, start_serve};
use serde_json::Value;

/// A child killed on drop.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mpcluster(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpcluster"));
    cmd.args(args)
        .env("MPCLUSTER_LOG", "warn")
        .env_remove("MPCLUSTER_TOKEN")
        .env_remove("MPCLUSTER_TOKEN_FILE")
        .env_remove("MPCLUSTER_STORE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `serve` with stdout to a file; returns the process, its URL and its stderr lines so far.
fn serve_capturing(args: &[&str], stdout: &Path) -> (Kill, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .arg("serve")
        .args(args)
        .env("MPCLUSTER_LOG", "warn")
        .stdout(std::fs::File::create(stdout).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let url = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        eprintln!("[serve] {line}");
        if let Some(rest) = line.strip_prefix("mpcluster: serving ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
        }
        seen.push(line);
    };
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("[serve] {line}");
        }
    });
    (Kill(child), url, seen)
}

fn is_credential(s: &str, id: &str) -> bool {
    s.strip_prefix(id)
        .and_then(|r| r.strip_prefix(':'))
        .is_some_and(|secret| secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_serve_bootstraps_an_admin_token_printed_once_and_saved_0600() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let spec = format!("embedded:{}", store_dir.display());
    let out1 = dir.path().join("out1");
    let args = ["--listen", "127.0.0.1:0", "--store", &spec, "--no-agent"];
    let (server, url, stderr) = serve_capturing(&args, &out1);
    let token_file = store_dir.join("admin-token");
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("created the API token 'admin'")
                && l.contains(&token_file.display().to_string())),
        "{stderr:?}"
    );
    let printed = std::fs::read_to_string(&out1).unwrap();
    let credential = printed.trim().to_owned();
    assert!(is_credential(&credential, "admin"), "{printed:?}");
    assert_eq!(printed.lines().count(), 1);
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        format!("{credential}\n")
    );
    assert_eq!(mode(&token_file), 0o600, "root-only file");
    assert!(
        !stderr.iter().any(|l| l.contains(&credential[6..])),
        "the secret is not logged"
    );

    // It works; nothing works without it.
    let status = format!("{url}/api2/json/cluster/multipath/config");
    let (code, body) = get_json(&status);
    assert_eq!(code, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("authentication required")
    );
    set_token(&url, &credential);
    let (code, body) = get_json(&status);
    assert_eq!(code, 200, "{body}");
    let (code, _) = get_json(&format!("{url}/health"));
    assert_eq!(code, 200);
    drop(server);

    // The next start on the same store creates nothing and prints nothing.
    let out2 = dir.path().join("out2");
    let (_server, url, stderr) = serve_capturing(&args, &out2);
    assert!(
        !stderr.iter().any(|l| l.contains("created the API token")),
        "{stderr:?}"
    );
    assert_eq!(std::fs::read_to_string(&out2).unwrap(), "");
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        format!("{credential}\n")
    );
    set_token(&url, &credential);
    let (code, body) = get_json(&format!("{url}/api2/json/cluster/multipath/config"));
    assert_eq!(code, 200, "{body}");
}

#[test]
fn plain_http_on_a_public_address_needs_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("embedded:{}", dir.path().join("store").display());
    let t = Instant::now();
    let out = mpcluster(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--store",
            &spec,
            "--no-agent",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("refusing to serve plain HTTP") && err.contains("--insecure-http"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        !dir.path().join("store").join("admin-token").exists(),
        "refused before touching the store"
    );

    let (_server, url, stderr) = serve_capturing(
        &[
            "--listen",
            "0.0.0.0:0",
            "--insecure-http",
            "--store",
            &spec,
            "--no-agent",
            "--admin-token-file",
            &dir.path().join("tok").display().to_string(),
        ],
        &dir.path().join("out"),
    );
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("WARNING") && l.contains("unencrypted")),
        "{stderr:?}"
    );
    let port = url.rsplit(':').next().unwrap();
    let (code, _) = get_json(&format!("http://127.0.0.1:{port}/health"));
    assert_eq!(code, 200);
}

#[test]
fn token_add_list_remove_and_status_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("embedded:{}", dir.path().join("store").display());
    let store = ["--store", spec.as_str()];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = vec!["token"];
        all.extend_from_slice(args);
        all.extend_from_slice(&store);
        mpcluster(&all, &[])
    };

    let out = run(&["add", "ci", "--privs", "Sys.Audit"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ci = text(&out.stdout).trim().to_owned();
    assert!(is_credential(&ci, "ci"), "{ci}");
    assert!(text(&out.stderr).contains("shown only this once"));

    for (args, needle) in [
        (vec!["add", "ci", "--privs", "Sys.Audit"], "exists already"),
        (
            vec!["add", "a:b", "--privs", "Sys.Audit"],
            "invalid token id",
        ),
        (vec!["add", "x", "--privs", "Sys.Root"], "unknown privilege"),
        (
            vec!["add", "x", "--privs", "Sys.Audit", "--expire", "2000-01-01"],
            "not in the future",
        ),
        (
            vec!["add", "x", "--privs", "Sys.Audit", "--expire", "soon"],
            "invalid expiry",
        ),
        (vec!["remove", "nope"], "does not exist"),
    ] {
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    let admin_file = dir.path().join("admin.token");
    let out = run(&[
        "add",
        "ops",
        "--privs",
        "Sys.Audit,Sys.Modify",
        "--expire",
        "+30d",
        "--comment",
        "on-call",
        "--output",
        &admin_file.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "the secret goes to the file only");
    let ops = std::fs::read_to_string(&admin_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(is_credential(&ops, "ops"));
    assert_eq!(mode(&admin_file), 0o600);

    let out = run(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed.contains("ci") && listed.contains("ops") && listed.contains("on-call"));
    assert!(listed.contains("Sys.Audit,Sys.Modify") && listed.contains("never"));
    for secret_part in [&ci[3..], &ops[4..], "$argon2"] {
        assert!(!listed.contains(secret_part), "{listed}");
    }
    let out = run(&["list", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ci", "ops"]);
    assert!(!text(&out.stdout).contains("hash"));

    // A server on this store (tokens exist: no bootstrap) and `status --server` with tokens.
    let (_server, url) = start_serve(
        "serve",
        &["--store".into(), spec.clone(), "--no-agent".into()],
    );
    let status = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["status", "--format", "json", "--server", url.as_str()];
        args.extend_from_slice(extra);
        mpcluster(&args, env)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = status(&[], &[("MPCLUSTER_TOKEN", &ci)]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline && text(&out.stderr).contains("503"),
            "{}",
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = status(&["--token-file", &admin_file.display().to_string()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = status(&[], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("HTTP 401") && err.contains("--token-file"),
        "{err}"
    );
    // A token file that holds no token: named, its content not shown.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "s3cr3t-without-id\n").unwrap();
    let out = status(&["--token-file", &junk.display().to_string()], &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("junk"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");

    // Removed: refused on the next request.
    let out = run(&["remove", "ci"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = status(&[], &[("MPCLUSTER_TOKEN", &ci)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("HTTP 401"),
        "{}",
        text(&out.stderr)
    );
    assert!(!std::path::Path::new(&dir.path().join("store").join("admin-token")).exists());
}

#[test]
fn oversized_body_over_the_wire_is_413_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("embedded:{}", dir.path().join("store").display());
    let (_server, url) = start_serve("serve", &["--store".into(), spec, "--no-agent".into()]);
    let config = format!("{url}/api2/json/cluster/multipath/config");
    let (code, before) = get_json(&config);
    assert_eq!(code, 200, "{before}");
    let auth = common::auth_header(&url).unwrap();
    let big = format!(
        "{{\"polling-interval\": 7, \"x\": \"{}\"}}",
        "a".repeat(2 << 20)
    );
    let r = ureq::put(&config)
        .set("Authorization", &auth)
        .set("Content-Type", "application/json")
        .timeout(Duration::from_secs(20))
        .send_string(&big);
    match r {
        Err(ureq::Error::Status(code, resp)) => {
            assert_eq!(code, 413);
            let v: Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
            assert!(
                v["message"].as_str().unwrap().contains("larger than"),
                "{v}"
            );
        }
        // The server may close before the whole body is sent.
        Err(ureq::Error::Transport(t)) => eprintln!("transport error (accepted): {t}"),
        Ok(resp) => panic!("accepted: HTTP {}", resp.status()),
    }
    let (code, after) = get_json(&config);
    assert_eq!(code, 200);
    assert_eq!(before, after, "nothing written");
}
