//! The settings file of `agent` and `serve` against the real binary: precedence (command line >
//! environment > file > default), and that an unknown key, a bad value or a missing named file
//! stops the command before anything starts, with the file, line and key in the message.
//! (The parser's cases one by one: the unit tests in src/config_file.rs.)
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every variable the tests' commands read, removed so the caller's environment cannot leak in.
const ENV: &[&str] = &[
    "MPCLUSTER_CONFIG",
    "MPCLUSTER_STORE",
    "MPCLUSTER_NODE",
    "MPCLUSTER_LOG",
    "MPCLUSTER_ADMIN_TOKEN_FILE",
    "MPCLUSTER_ETCD_CA",
    "MPCLUSTER_ETCD_CERT",
    "MPCLUSTER_ETCD_KEY",
    "MPCLUSTER_ETCD_USER",
    "MPCLUSTER_ETCD_PASSWORD_FILE",
    "NOTIFY_SOCKET",
];

fn mpcluster(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpcluster"));
    cmd.args(args);
    for v in ENV {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A `serve` child, SIGKILLed on drop (a failing test leaves nothing running).
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run `serve` until it listens, stop it (SIGTERM) and return its stderr.
fn serve_once(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = Serve(
        mpcluster(args, env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("serve did not start listening; stderr:\n{text}"));
        let listening = line.starts_with("mpcluster: serving ");
        text.push_str(&line);
        text.push('\n');
        if listening {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    // (Its exit status is not the point here: a SIGTERM this early may come before serve
    // handles the signal.)
    child.0.wait().unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    mpcluster(args, env).stdin(Stdio::null()).output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn precedence_is_command_line_then_environment_then_file_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = |name: &str| format!("embedded:{}", d.join(name).display());
    let file = write(
        d,
        "mpcluster.toml",
        &format!(
            "# serve's settings\nstore = \"{}\"\nlisten = \"127.0.0.1:0\"\nno-agent = true\nadmin-token-file = \"{}\"\nlog = \"info\"\n",
            store("file-store").replace('\\', "\\\\"),
            s(&d.join("file-token"))
        ),
    );
    let config = s(&file);

    // File over default: the store, the token file and --no-agent come from the file.
    let out = serve_once(&["serve", "--config", &config], &[]);
    assert!(
        out.contains(&format!("{}", d.join("file-store").display())),
        "{out}"
    );
    assert!(d.join("file-token").exists(), "{out}");
    assert!(
        !out.contains("local agent"),
        "no-agent = true was ignored:\n{out}"
    );

    // Environment over file.
    let out = serve_once(
        &["serve", "--config", &config],
        &[
            ("MPCLUSTER_STORE", &store("env-store")),
            ("MPCLUSTER_ADMIN_TOKEN_FILE", &s(&d.join("env-token"))),
        ],
    );
    assert!(
        out.contains(&format!("{}", d.join("env-store").display())),
        "{out}"
    );
    assert!(
        !out.contains(&format!("{}", d.join("file-store").display())),
        "{out}"
    );
    assert!(d.join("env-token").exists(), "{out}");

    // Command line over environment (and file).
    let cli_token = s(&d.join("cli-token"));
    let cli_store = store("cli-store");
    let out = serve_once(
        &[
            "serve",
            "--config",
            &config,
            "--store",
            &cli_store,
            "--admin-token-file",
            &cli_token,
        ],
        &[
            ("MPCLUSTER_STORE", &store("env-store-2")),
            ("MPCLUSTER_ADMIN_TOKEN_FILE", &s(&d.join("env-token-2"))),
        ],
    );
    assert!(
        out.contains(&format!("{}", d.join("cli-store").display())),
        "{out}"
    );
    assert!(d.join("cli-token").exists(), "{out}");
    assert!(!d.join("env-store-2").exists() && !d.join("env-token-2").exists());

    // Default when neither says: the token goes next to the store; the file named by
    // MPCLUSTER_CONFIG is read like --config.
    let bare = write(
        d,
        "bare.toml",
        &format!(
            "store = \"{}\"\nlisten = \"127.0.0.1:0\"\nno-agent = true\n",
            store("bare-store")
        ),
    );
    let out = serve_once(&["serve"], &[("MPCLUSTER_CONFIG", &s(&bare))]);
    assert!(d.join("bare-store").join("admin-token").exists(), "{out}");
}

#[test]
fn an_unknown_key_stops_serve_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write(
        d,
        "mpcluster.toml",
        &format!(
            "# line 1\n\nstore = \"embedded:{}\"\n\n# listen on every address\n\nlistn = \"0.0.0.0:8470\"\n",
            d.join("store").display()
        ),
    );
    let out = run(&["serve", "--config", &s(&file)], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "mpcluster: {} line 7: unknown key 'listn' (did you mean 'listen'?)",
            file.display()
        )
    );
    assert!(!d.join("store").exists(), "the store was opened");
}

#[test]
fn a_bad_value_stops_the_agent_with_the_key_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write(d, "a.toml", "node = \"pve1\"\ninterval = \"fast\"\n");
    let out = run(&["agent", "--config", &s(&file)], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} line 2: 'interval' must be a number of seconds",
            file.display()
        )),
        "{stderr}"
    );

    // A key of the other command is checked too (one file serves both services).
    let file = write(d, "b.toml", "\n\nlisten = \"everywhere\"\n");
    let out = run(&["agent", "--config", &s(&file)], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} line 3: bad value \"everywhere\" for 'listen': ",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn file_settings_must_go_with_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // tls-cert without tls-key: the same rule as on the command line.
    let file = write(
        d,
        "tls.toml",
        &format!(
            "store = \"embedded:{}\"\ntls-cert = \"{}\"\n",
            d.join("store").display(),
            d.join("cert.pem").display()
        ),
    );
    let out = run(&["serve", "--config", &s(&file)], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the command line, with the settings from {}, is not valid",
            file.display()
        )) && stderr.contains("--tls-key"),
        "{stderr}"
    );
    // Given on the command line, the missing half completes it.
    let out = run(
        &[
            "serve",
            "--config",
            &s(&file),
            "--tls-key",
            &s(&d.join("key.pem")),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("is not valid") && stderr.contains("cert.pem"),
        "the certificate from the file was not used: {stderr}"
    );
}

#[test]
fn a_missing_named_file_is_an_error_and_other_commands_never_read_it() {
    let missing = "/nonexistent/mpcluster.toml";
    for (args, env) in [
        (vec!["agent", "--config", missing], vec![]),
        (vec!["serve"], vec![("MPCLUSTER_CONFIG", missing)]),
    ] {
        let out = run(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot read the settings file {missing}")),
            "{stderr}"
        );
    }
    let snapshot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster-snapshot.json");
    let out = run(
        &["status", "--snapshot", &s(&snapshot)],
        &[("MPCLUSTER_CONFIG", missing)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
