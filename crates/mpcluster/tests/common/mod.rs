//! Shared support for the end-to-end tests: child processes killed on drop, the real server
//! started on an ephemeral port, HTTP polling.
//!
//! API tokens: [`start_serve`] gives the server an admin token file in a temporary directory
//! (unless the arguments name one), and registers the token it bootstrapped for the server's
//! URL; [`get_json`] and [`auth_header`] send the registered token of the URL they are given
//! ([`set_token`] registers one by hand, e.g. for a store that had tokens already).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process, killed (SIGKILL) and reaped on drop, also when a test panics.
pub struct Proc {
    pub child: Child,
    pub name: String,
    /// `serve`: the admin token file it was given.
    pub token_file: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

/// Base URL -> `Authorization` header value.
static TOKENS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Send `credential` (`<id>:<secret>`) with every request to URLs starting with `base`.
pub fn set_token(base: &str, credential: &str) {
    TOKENS.lock().unwrap().insert(
        base.trim_end_matches('/').to_owned(),
        format!("Bearer {}", credential.trim()),
    );
}

/// The `Authorization` value registered for `url`'s server, if any.
pub fn auth_header(url: &str) -> Option<String> {
    TOKENS
        .lock()
        .unwrap()
        .iter()
        .filter(|(base, _)| url.starts_with(base.as_str()))
        .max_by_key(|(base, _)| base.len())
        .map(|(_, v)| v.clone())
}

impl Proc {
    /// Spawn `mpcluster ARGS` with stderr drained to our stderr prefixed by `name`.
    pub fn mpcluster(name: &str, args: &[String]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
            .args(args)
            .env("MPCLUSTER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let tag = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
            }
        });
        Proc {
            child,
            name: name.to_owned(),
            token_file: None,
            _dir: None,
        }
    }

    /// Spawn a prepared command (e.g. `mpcluster` under `ip netns exec`) with stdout discarded
    /// and stderr drained to our stderr prefixed by `name`.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .env("MPCLUSTER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let tag = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
            }
        });
        Proc {
            child,
            name: name.to_owned(),
            token_file: None,
            _dir: None,
        }
    }

    /// Send a signal by number (e.g. 9, 15).
    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Wait for exit (at most `timeout`), returning the exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real `mpcluster serve` on 127.0.0.1:0; returns the process and its base URL. The token
/// it bootstraps (on a store without tokens) is registered for its URL ([`set_token`]).
pub fn start_serve(name: &str, args: &[String]) -> (Proc, String) {
    let mut all = vec![
        "serve".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    all.extend_from_slice(args);
    let mut dir = None;
    let token_file = match args.iter().position(|a| a == "--admin-token-file") {
        Some(i) => PathBuf::from(&args[i + 1]),
        None => {
            let d = tempfile::tempdir().unwrap();
            let f = d.path().join("admin-token");
            all.extend(["--admin-token-file".to_owned(), f.display().to_string()]);
            dir = Some(d);
            f
        }
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(&all)
        .env("MPCLUSTER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("mpcluster: serving ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
        }
        eprintln!("[{name}] {line}");
    };
    let tag = name.to_owned();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("[{tag}] {line}");
        }
    });
    if let Ok(credential) = std::fs::read_to_string(&token_file) {
        set_token(&url, &credential);
    }
    (
        Proc {
            child,
            name: name.to_owned(),
            token_file: Some(token_file),
            _dir: dir,
        },
        url,
    )
}

/// GET a JSON document: `(HTTP status, body)`; transport errors are status 0.
pub fn get_json(url: &str) -> (u16, Value) {
    let mut req = ureq::get(url).timeout(Duration::from_secs(10));
    if let Some(auth) = auth_header(url) {
        req = req.set("Authorization", &auth);
    }
    match req.call() {
        Ok(resp) => {
            let code = resp.status();
            (
                code,
                serde_json::from_str(&resp.into_string().unwrap()).unwrap(),
            )
        }
        Err(ureq::Error::Status(code, resp)) => (
            code,
            serde_json::from_str(&resp.into_string().unwrap_or_default()).unwrap_or(Value::Null),
        ),
        Err(e) => (0, serde_json::json!({ "error": e.to_string() })),
    }
}

/// Poll the cluster status until `pred(data)` holds; panics after `timeout` with the last
/// answer.
pub fn wait_status(
    base: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (code, body) = get_json(&format!("{base}/api2/json/cluster/multipath/status"));
        if code == 200 && pred(&body["data"]) {
            return body["data"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last answer: HTTP {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cell of `node` in the row of `wwid` (`Null` if absent).
pub fn cell<'a>(status: &'a Value, wwid: &str, node: &str) -> &'a Value {
    status["luns"]
        .as_array()
        .and_then(|luns| luns.iter().find(|l| l["wwid"] == wwid))
        .map_or(&Value::Null, |l| &l["nodes"][node])
}

/// The cluster state of `wwid` (`Null` if no row).
pub fn row_state<'a>(status: &'a Value, wwid: &str) -> &'a Value {
    status["luns"]
        .as_array()
        .and_then(|luns| luns.iter().find(|l| l["wwid"] == wwid))
        .map_or(&Value::Null, |l| &l["cluster-state"])
}

/// A root directory with multipath-tools "installed", for the agent's config apply.
pub fn make_root(path: &std::path::Path) {
    std::fs::create_dir_all(path.join("usr/sbin")).unwrap();
    std::fs::write(path.join("usr/sbin/multipath"), "").unwrap();
}
