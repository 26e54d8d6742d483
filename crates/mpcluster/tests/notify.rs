//! Issue 14, part 3: notifications, end to end. Two real `mpcluster serve` processes on one
//! store (the embedded store, and a real etcd), a simulated multipathd with the real agent
//! (in-process in the first server on the embedded store, its own `mpcluster agent` process on
//! etcd), and real receivers: an SMTP server (python3-aiosmtpd, writing a Maildir), an HTTP
//! server here that checks every webhook's HMAC signature, and an exec hook (/bin/sh writing
//! each message to a file).
//!
//! The scripted timeline (degrade, fail, recover, flap) must give exactly these messages on
//! every target, once each (two servers running): degraded, failed, optimal again, flapping,
//! stopped flapping. The webhook receiver starts late: its deliveries fail first and are
//! retried. Also the CLI (`notify add|list|test|remove`) and the API routes.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Proc, get_json, make_root, row_state, set_token, wait_status};
use mpcluster_agent::sim::{SimMap, SimNode, SimState};
use mpcluster_store::testing::{EtcdServer, require_etcd};
use serde_json::Value;

const W1: &str = "3600a098038303053453f463045727a01";
const SECRET: &str = "webhook-secret-0123456789";
const WAIT: Duration = Duration::from_secs(30);
/// Grouping window in the test (the default is 10 s).
const GROUP_WINDOW: &str = "4";
/// Flapping: 4 changes within 8 s.
const FLAP: [&str; 4] = ["--flap-changes", "4", "--flap-window", "8"];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed (SIGKILL) and reaped on drop, also when the test panics.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real SMTP receiver: `python3 -m aiosmtpd` with its Maildir handler.
struct SmtpReceiver {
    _proc: Killed,
    maildir: PathBuf,
}

/// The Python with aiosmtpd (Debian's `python3-aiosmtpd`), if any.
fn aiosmtpd_python() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

impl SmtpReceiver {
    fn start(python: &str, port: u16, maildir: &Path) -> SmtpReceiver {
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let proc = Killed(child);
        wait_for("the SMTP receiver", WAIT, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        SmtpReceiver {
            _proc: proc,
            maildir: maildir.to_path_buf(),
        }
    }

    /// Every mail received: its headers (folded lines joined) and its body.
    fn mails(&self) -> Vec<(BTreeMap<String, String>, String)> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for e in entries {
                let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
                let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
                let mut headers = BTreeMap::new();
                let mut last: Option<String> = None;
                for line in head.lines() {
                    if line.starts_with([' ', '\t']) {
                        if let Some(k) = &last {
                            let v: &mut String = headers.get_mut(k).unwrap();
                            v.push(' ');
                            v.push_str(line.trim());
                        }
                    } else if let Some((k, v)) = line.split_once(':') {
                        let k = k.to_ascii_lowercase();
                        headers.insert(k.clone(), v.trim().to_owned());
                        last = Some(k);
                    }
                }
                out.push((headers, quoted_printable(body)));
            }
        }
        out
    }

    fn subjects(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .mails()
            .into_iter()
            .map(|(h, _)| h.get("subject").cloned().unwrap_or_default())
            .collect();
        s.sort();
        s
    }
}

/// Decode a quoted-printable body (soft line breaks, `=XX`); plain text passes unchanged.
fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One webhook call received.
#[derive(Debug, Clone)]
struct Hooked {
    delivery: String,
    signature_ok: bool,
    body: Value,
}

/// A real HTTP receiver for the webhook: checks `X-Mpcluster-Signature` against the secret.
struct HttpReceiver {
    got: Arc<Mutex<Vec<Hooked>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl HttpReceiver {
    fn start(port: u16) -> HttpReceiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        if let Some(h) = Self::handle(conn) {
                            g.lock().unwrap().push(h);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HttpReceiver { got, stop }
    }

    fn handle(conn: TcpStream) -> Option<Hooked> {
        conn.set_nonblocking(false).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut reader = BufReader::new(conn.try_clone().ok()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).ok()?;
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers.get("content-length")?.parse().ok()?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        let mut w = conn;
        w.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .ok()?;
        assert!(request_line.starts_with("POST /hook "), "{request_line}");
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        let want = mpcluster_server::notify::send::signature(SECRET, &body);
        Some(Hooked {
            delivery: headers
                .get("x-mpcluster-delivery")
                .cloned()
                .unwrap_or_default(),
            signature_ok: headers.get("x-mpcluster-signature") == Some(&want),
            body: serde_json::from_slice(&body).ok()?,
        })
    }

    fn received(&self) -> Vec<Hooked> {
        self.got.lock().unwrap().clone()
    }
}

/// `mpcluster serve` on 127.0.0.1:0 with the notifier's test settings in its environment.
fn serve(name: &str, args: &[String], token_file: &Path) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token-file"])
        .arg(token_file)
        .args(args)
        .env("MPCLUSTER_LOG", "warn,mpcluster_server::notify=info")
        .env("MPCLUSTER_NOTIFY_GROUP_WINDOW", GROUP_WINDOW)
        .env("MPCLUSTER_NOTIFY_RETRY_FIRST", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("serve exited").unwrap();
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
    (Killed(child), url)
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn health_events(url: &str) -> usize {
    let (code, body) = get_json(&format!(
        "{url}/api2/json/cluster/multipath/events?wwid={W1}&kind=health&limit=10000"
    ));
    assert_eq!(code, 200, "{body}");
    body["data"]["events"].as_array().unwrap().len()
}

/// One line per LUN message: `kind state (was previous) [node before -> after, ...]`.
fn describe(m: &Value) -> String {
    let cell = |c: &Value| match c {
        Value::Null => "-".to_owned(),
        c => format!(
            "{} {}/{}",
            c["state"].as_str().unwrap(),
            c["paths-active"],
            c["paths-total"]
        ),
    };
    let nodes: Vec<String> = m["nodes"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .map(|n| {
                    format!(
                        "{} {} -> {}",
                        n["node"].as_str().unwrap(),
                        cell(&n["before"]),
                        cell(&n["after"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} {} (was {}) [{}]",
        m["kind"].as_str().unwrap(),
        m["state"].as_str().unwrap_or("-"),
        m["previous"].as_str().unwrap_or("-"),
        nodes.join(", ")
    )
}

/// The LUN messages of a list of JSON messages, in the order they were made.
fn lun_lines(mut msgs: Vec<Value>) -> Vec<String> {
    msgs.retain(|m| m["kind"] != "test");
    msgs.sort_by_key(|m| {
        m["id"]
            .as_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    msgs.iter().map(describe).collect()
}

const EXPECTED: [&str; 5] = [
    "state degraded (was optimal) [n1 optimal 4/4 -> degraded 3/4]",
    "state failed (was degraded) [n1 degraded 3/4 -> failed 0/4]",
    "recovered optimal (was failed) [n1 failed 0/4 -> optimal 4/4]",
    "flapping optimal (was -) []",
    "recovered optimal (was optimal) []",
];

/// Where the timeline runs: the store, and how the agent runs.
enum Backend {
    /// The embedded store in the test's directory; the agent in-process in the first server.
    Embedded,
    /// A real etcd (this store spec); the agent as its own `mpcluster agent` process (on etcd
    /// `serve` runs no agent).
    Etcd(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_messages_once_on_every_target_with_two_servers() {
    // The simulated multipathd runs on this runtime; the rest blocks.
    tokio::task::block_in_place(|| timeline(Backend::Embedded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_messages_once_on_every_target_with_two_servers_on_etcd() {
    if require_etcd("timeline_messages_once_on_every_target_with_two_servers_on_etcd").is_none() {
        return;
    }
    let etcd = EtcdServer::start().await.unwrap();
    let spec = etcd.spec("notify").to_string();
    tokio::task::block_in_place(|| timeline(Backend::Etcd(spec)));
}

fn timeline(backend: Backend) {
    let Some(python) = aiosmtpd_python() else {
        assert!(
            !mpcluster_testkit::under_ci(),
            "python3 with aiosmtpd (Debian python3-aiosmtpd) is required under CI"
        );
        eprintln!("SKIPPED: no python3-aiosmtpd");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = match &backend {
        Backend::Embedded => format!("embedded:{}", dir.path().join("store").display()),
        Backend::Etcd(spec) => spec.clone(),
    };
    let sim = SimNode::start(
        &dir.path().join("n1.sock"),
        &dir.path().join("n1-sys"),
        SimState {
            maps: vec![SimMap::new(W1, 0, 1 << 30, 4, "scsi:iscsi", 0)],
            ..SimState::default()
        },
    )
    .unwrap();
    let root = dir.path().join("root");
    make_root(&root);

    // Receivers: SMTP now, the webhook's later; an exec hook writing files.
    let smtp_port = free_port();
    let smtp = SmtpReceiver::start(python, smtp_port, &dir.path().join("maildir"));
    let hook_port = free_port();
    let exec_dir = dir.path().join("exec");
    std::fs::create_dir_all(&exec_dir).unwrap();
    let secret_file = dir.path().join("hook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();

    // Targets, with the CLI against the store.
    let (ok, _, err) = cli(&["wwid", "add", W1, "--store", &spec]);
    assert!(ok, "{err}");
    let url_arg = format!("http://127.0.0.1:{hook_port}/hook");
    let port_arg = smtp_port.to_string();
    let exec_arg = exec_dir.display().to_string();
    for args in [
        vec![
            "notify",
            "add",
            "webhook",
            "hook",
            "--url",
            &url_arg,
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--store",
            &spec,
        ],
        vec![
            "notify",
            "add",
            "smtp",
            "mail",
            "--server",
            "127.0.0.1",
            "--port",
            &port_arg,
            "--security",
            "none",
            "--from",
            "mpcluster@example.org",
            "--to",
            "ops@example.org",
            "--to",
            "storage@example.org",
            "--store",
            &spec,
        ],
        vec![
            "notify",
            "add",
            "exec",
            "exec",
            "--store",
            &spec,
            "--",
            "/bin/sh",
            "-c",
            "cat > \"$1/$MPCLUSTER_DELIVERY.json\"",
            "sh",
            &exec_arg,
        ],
    ] {
        let (ok, out, err) = cli(&args);
        assert!(ok, "{args:?}: {err}");
        assert!(out.starts_with("added notification target"), "{out}");
    }
    // Bad input: every field error at once, exit 2, nothing added.
    let out = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args([
            "notify", "add", "smtp", "Bad_Id", "--server", "a b", "--from", "nobody", "--to",
            "x@y", "--store", &spec,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("id: only lowercase letters, digits and '-' are allowed")
            && err.contains("server: must be a host name")
            && err.contains("from: \"nobody\" is not a mail address"),
        "{err}"
    );
    let (ok, listed, _) = cli(&["notify", "list", "--store", &spec]);
    assert!(ok);
    assert!(
        listed.contains(&format!("hook  webhook  {url_arg} (secret set)"))
            && listed.contains(&format!(
                "mail  smtp     127.0.0.1:{smtp_port} (none) from mpcluster@example.org to ops@example.org, storage@example.org"
            ))
            && !listed.contains(SECRET),
        "{listed}"
    );
    let (ok, json_list, _) = cli(&["notify", "list", "--store", &spec, "--format", "json"]);
    assert!(ok);
    assert!(
        !json_list.contains(SECRET) && json_list.contains("\"secret\": \"set\""),
        "{json_list}"
    );
    // A test message: mail accepted, the webhook (nobody listening yet) not.
    let (ok, out, err) = cli(&["notify", "test", "mail", "--store", &spec]);
    assert!(ok, "{err}");
    assert_eq!(out, "test message sent to 'mail'\n");
    wait_for("the test mail", WAIT, || {
        smtp.subjects() == ["[mpcluster] test message"]
    });
    let (ok, _, err) = cli(&["notify", "test", "hook", "--store", &spec]);
    assert!(!ok);
    assert!(err.contains(&format!("webhook {url_arg}: ")), "{err}");

    // Two servers on the store; only the leader sends. The agent: in-process in the first
    // server on the embedded store, its own process on etcd (where both servers are alike).
    let tokens = tempfile::tempdir().unwrap();
    let token_file = tokens.path().join("admin-token");
    let agent_args: Vec<String> = vec![
        "--store".to_owned(),
        spec.clone(),
        "--node".into(),
        "n1".into(),
        "--interval".into(),
        "0.2".into(),
        "--multipathd-socket".into(),
        sim.socket_spec().to_string(),
        "--sysfs-root".into(),
        sim.sysfs_root().display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    let mut b: Vec<String> = vec![
        "--store".into(),
        spec.clone(),
        "--no-agent".into(),
        "--node".into(),
        "n1".into(),
    ];
    b.extend(FLAP.map(String::from));
    let (_agent, a) = match &backend {
        Backend::Embedded => {
            let mut a = agent_args;
            a.extend(FLAP.map(String::from));
            (None, a)
        }
        Backend::Etcd(_) => {
            let mut args = vec!["agent".to_owned()];
            args.extend(agent_args);
            args.extend(["--member-ttl".to_owned(), "3".into()]);
            (Some(Proc::mpcluster("agent", &args)), b.clone())
        }
    };
    let (_one, url1) = serve("serve1", &a, &token_file);
    let credential = std::fs::read_to_string(&token_file).unwrap();
    set_token(&url1, &credential);
    let (_two, url2) = serve("serve2", &b, &tokens.path().join("unused-token"));
    set_token(&url2, &credential);
    let url = url1.clone();

    wait_status(&url, "W1 optimal", WAIT, |s| row_state(s, W1) == "optimal");
    // Its arrival (unknown -> optimal) is recorded and its group closed (no message: nobody
    // was told it was anything else). On etcd the recorder's first observation (a baseline,
    // no event) may already include it: no arrival to wait for there.
    if matches!(backend, Backend::Embedded) {
        wait_for("W1's arrival recorded", WAIT, || health_events(&url) > 0);
    }
    std::thread::sleep(Duration::from_secs(5));
    // The notifier started (its outbox begins at the log's end), read through the store API.
    let rt = tokio::runtime::Handle::current();
    let store = rt
        .block_on(mpcluster_store::open(
            &spec.parse().unwrap(),
            &mpcluster_store::StoreOptions::default(),
        ))
        .unwrap();
    wait_for("the notification outbox", WAIT, || {
        rt.block_on(store.read_doc("notify-outbox"))
            .is_ok_and(|doc| doc.is_some())
    });
    let smtp_ref = &smtp;
    let mail_count = |n: usize| move || smtp_ref.mails().len() >= n;

    let change = |what: &str, f: &dyn Fn(&mut SimState)| {
        let n = health_events(&url);
        sim.update(f);
        wait_status(&url, what, WAIT, |s| row_state(s, W1) == what);
        wait_for("the change recorded", WAIT, || health_events(&url) > n);
    };
    change("degraded", &|st| st.maps[0].paths[0].up = false);
    wait_for("the degraded mail", WAIT, mail_count(2));
    // The webhook failed at least once by now; its receiver comes up now.
    std::thread::sleep(Duration::from_secs(2));
    let hook = HttpReceiver::start(hook_port);
    change("failed", &|st| {
        st.maps[0].paths.iter_mut().for_each(|p| p.up = false)
    });
    wait_for("the failed mail", WAIT, mail_count(3));
    change("optimal", &|st| {
        st.maps[0].paths.iter_mut().for_each(|p| p.up = true)
    });
    wait_for("the recovery mail", WAIT, mail_count(4));
    // Quiet for longer than the flap window, then four quick changes.
    std::thread::sleep(Duration::from_secs(9));
    for i in 0..4 {
        let up = i % 2 == 1;
        change(if up { "optimal" } else { "degraded" }, &|st| {
            st.maps[0].paths[0].up = up;
        });
    }
    wait_for("the flapping mail", WAIT, mail_count(5));
    // Stable for the flap window: the last message.
    wait_for("the stopped-flapping mail", WAIT, mail_count(6));
    // Time for a second server to (wrongly) send again, and for the webhook's retries.
    wait_for("every webhook delivery", WAIT, || {
        hook.received().len() >= 5
    });
    std::thread::sleep(Duration::from_secs(4));

    // Mail: exactly these subjects, each Message-ID once.
    let w = W1;
    let mut want_subjects = vec![
        "[mpcluster] test message".to_owned(),
        format!("[mpcluster] LUN {w} degraded (was optimal) on n1"),
        format!("[mpcluster] LUN {w} failed (was degraded) on n1"),
        format!("[mpcluster] LUN {w} optimal again (was failed) on n1"),
        format!("[mpcluster] LUN {w} is flapping (now optimal)"),
        format!("[mpcluster] LUN {w} stopped flapping: optimal again"),
    ];
    want_subjects.sort();
    let (_, ev) = get_json(&format!(
        "{url}/api2/json/cluster/multipath/events?limit=10000"
    ));
    assert_eq!(smtp.subjects(), want_subjects, "events: {ev:#}");
    let mails = smtp.mails();
    let ids: std::collections::BTreeSet<&String> =
        mails.iter().map(|(h, _)| &h["message-id"]).collect();
    assert_eq!(ids.len(), mails.len(), "{ids:?}");
    for (h, body) in &mails {
        assert_eq!(h["from"], "mpcluster@example.org");
        assert!(
            h["to"].contains("ops@example.org") && h["to"].contains("storage@example.org"),
            "{h:?}"
        );
        let id = h["message-id"]
            .trim_matches(['<', '>'])
            .trim_end_matches("@mpcluster");
        assert!(body.contains(&format!("Message id: {id}")), "{body}");
    }
    let (_, body) = mails
        .iter()
        .find(|(h, _)| h["subject"].contains("failed (was degraded)"))
        .unwrap();
    assert!(
        body.contains(&format!(
            "LUN {w} is failed (was degraded).\n  n1: degraded 3/4 -> failed 0/4\n"
        )),
        "{body}"
    );

    // Webhook: the same messages, each once, every signature valid, retried after it was down.
    let got = hook.received();
    assert!(got.iter().all(|h| h.signature_ok), "{got:#?}");
    assert!(got.iter().all(|h| h.delivery == h.body["id"]), "{got:#?}");
    let ids: std::collections::BTreeSet<&String> = got.iter().map(|h| &h.delivery).collect();
    assert_eq!(ids.len(), got.len(), "no duplicates: {got:#?}");
    assert_eq!(
        lun_lines(got.iter().map(|h| h.body.clone()).collect()),
        EXPECTED
    );
    assert!(got.iter().all(|h| h.body["wwid"] == W1));
    let metrics: String = [&url1, &url2]
        .iter()
        .map(|u| {
            ureq::get(&format!("{u}/metrics"))
                .set("Authorization", &common::auth_header(u).unwrap())
                .call()
                .unwrap()
                .into_string()
                .unwrap()
        })
        .collect();
    let failed_hook = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "mpcluster_notifications_total{target=\"hook\",kind=\"state\",result=\"failed\"}",
            )
        })
        .unwrap_or_else(|| panic!("no failed webhook attempt counted:\n{metrics}"));
    assert!(!failed_hook.ends_with(" 0"), "{failed_hook}");
    assert!(
        metrics.contains(
            "mpcluster_notifications_total{target=\"mail\",kind=\"flapping\",result=\"sent\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("mpcluster_notifications_pending 0"),
        "{metrics}"
    );

    // Exec hook: the same messages, one file per delivery.
    let execs: Vec<Value> = std::fs::read_dir(&exec_dir)
        .unwrap()
        .map(|e| {
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(lun_lines(execs), EXPECTED);

    // The API: list (secret hidden), test, remove.
    let api = |method: &str, path: &str, body: Option<&str>| -> (u16, Value) {
        let req = ureq::request(method, &format!("{url}{path}"))
            .set("Authorization", &common::auth_header(&url).unwrap());
        let r = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        };
        match r {
            Ok(r) => (
                r.status(),
                serde_json::from_str(&r.into_string().unwrap()).unwrap(),
            ),
            Err(ureq::Error::Status(c, r)) => {
                (c, serde_json::from_str(&r.into_string().unwrap()).unwrap())
            }
            Err(e) => panic!("{e}"),
        }
    };
    let (code, list) = api("GET", "/api2/json/cluster/multipath/notify", None);
    assert_eq!(code, 200);
    assert!(!list.to_string().contains(SECRET), "{list}");
    let (code, t) = api(
        "POST",
        "/api2/json/cluster/multipath/notify/hook/test",
        None,
    );
    assert_eq!((code, &t["data"]["sent"]), (200, &Value::Bool(true)), "{t}");
    wait_for("the API's test message", WAIT, || {
        hook.received().iter().any(|h| h.body["kind"] == "test")
    });
    let (code, _) = api("DELETE", "/api2/json/cluster/multipath/notify/exec", None);
    assert_eq!(code, 200);
    let (ok, out, _) = cli(&["notify", "remove", "hook", "--store", &spec]);
    assert!(
        ok && out.starts_with("removed notification target 'hook'"),
        "{out}"
    );
    let (ok, listed, _) = cli(&["notify", "list", "--store", &spec]);
    assert!(
        ok && listed.starts_with("ID") && listed.lines().count() == 2,
        "{listed}"
    );
}

/// The pid in a recorder lease holder (`<host>:<pid>`).
fn lease_pid(holder: &str) -> u32 {
    holder.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_within_the_window_message_sent_once_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let spec = format!("embedded:{}", store_dir.display());
    let sim = SimNode::start(
        &dir.path().join("n1.sock"),
        &dir.path().join("n1-sys"),
        SimState {
            maps: vec![SimMap::new(W1, 0, 1 << 30, 4, "scsi:iscsi", 0)],
            ..SimState::default()
        },
    )
    .unwrap();
    let root = dir.path().join("root");
    make_root(&root);
    let hook_port = free_port();
    let hook = HttpReceiver::start(hook_port);
    let secret_file = dir.path().join("hook.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let url_arg = format!("http://127.0.0.1:{hook_port}/hook");
    let store = mpcluster_store::embedded::EmbeddedStore::open(
        &store_dir,
        mpcluster_store::EmbeddedOptions::default(),
    )
    .await
    .unwrap();

    let (_agent, _tokens, one, url1, two, url2) = tokio::task::block_in_place(|| {
        let (ok, _, err) = cli(&["wwid", "add", W1, "--store", &spec]);
        assert!(ok, "{err}");
        let (ok, _, err) = cli(&[
            "notify",
            "add",
            "webhook",
            "hook",
            "--url",
            &url_arg,
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--store",
            &spec,
        ]);
        assert!(ok, "{err}");
        // The agent on its own, so that killing a server leaves it running.
        let agent = common::Proc::mpcluster(
            "agent",
            &[
                "agent".to_owned(),
                "--store".into(),
                spec.clone(),
                "--node".into(),
                "n1".into(),
                "--interval".into(),
                "0.2".into(),
                "--multipathd-socket".into(),
                sim.socket_spec().to_string(),
                "--sysfs-root".into(),
                sim.sysfs_root().display().to_string(),
                "--root".into(),
                root.display().to_string(),
            ],
        );
        let tokens = tempfile::tempdir().unwrap();
        let token_file = tokens.path().join("admin-token");
        let mut s = vec![
            "--store".to_owned(),
            spec.clone(),
            "--no-agent".into(),
            "--node".into(),
            "n1".into(),
        ];
        s.extend(FLAP.map(String::from));
        let (one, url1) = serve("serve1", &s, &token_file);
        let credential = std::fs::read_to_string(&token_file).unwrap();
        set_token(&url1, &credential);
        let (two, url2) = serve("serve2", &s, &tokens.path().join("unused"));
        set_token(&url2, &credential);
        wait_status(&url1, "W1 optimal", WAIT, |s| row_state(s, W1) == "optimal");
        wait_for("W1's arrival recorded", WAIT, || health_events(&url1) > 0);
        std::thread::sleep(Duration::from_secs(5));
        (agent, tokens, one, url1, two, url2)
    });
    let lease = mpcluster_config::events::leader(&store)
        .await
        .unwrap()
        .unwrap();
    let pid = lease_pid(&lease.holder);
    let (mut leader, survivor) = if pid == one.0.id() {
        (one, (two, url2))
    } else {
        assert_eq!(pid, two.0.id(), "{lease:?}");
        (two, (one, url1))
    };
    let survivor_url = survivor.1.clone();
    tokio::task::block_in_place(|| {
        let n = health_events(&survivor_url);
        sim.update(|st| st.maps[0].paths[0].up = false);
        wait_for("the change recorded", WAIT, || {
            health_events(&survivor_url) > n
        });
        // Within the grouping window: the message is not due yet. The leader dies.
        leader.0.kill().unwrap();
        leader.0.wait().unwrap();
        assert!(hook.received().is_empty(), "{:?}", hook.received());
        // The survivor takes the lease over (15 s) and sends it, once.
        wait_for(
            "the message from the new leader",
            Duration::from_secs(60),
            || !hook.received().is_empty(),
        );
        std::thread::sleep(Duration::from_secs(4));
    });
    let got = hook.received();
    assert_eq!(
        lun_lines(got.iter().map(|h| h.body.clone()).collect()),
        ["state degraded (was optimal) [n1 optimal 4/4 -> degraded 3/4]"],
        "{got:#?}"
    );
    assert!(got[0].signature_ok);
    let lease = mpcluster_config::events::leader(&store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease_pid(&lease.holder), survivor.0.0.id());
}
