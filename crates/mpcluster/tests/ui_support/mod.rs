//! Support for the browser tests: headless Chromium driven over WebDriver (chromedriver on an
//! ephemeral loopback port, killed with its browser on drop, also when a test panics), the
//! real `mpcluster serve` with its output captured (for the bootstrap admin token), an API
//! client that sends the token when the server wants one, and page helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Browser tests run one at a time: each starts a browser and a small cluster, and 2 cores
/// are all a CI machine has.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHROMIUM: &[&str] = &["/usr/lib/chromium/chromium", "/usr/bin/chromium"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// chromedriver (in its own process group, so the browsers it starts die with it) and the
/// browser profile directory; holds [`SERIAL`] until it is dropped.
pub struct Browser {
    driver: Child,
    _profile: tempfile::TempDir,
    pub client: Client,
    // Last: released after chromedriver is gone.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// End the WebDriver session (Chromium quits), then chromedriver is killed on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kill chromedriver's whole process group (it and every Chromium process it started) and
/// reap it.
fn kill_group(driver: &mut Child) {
    let pgid = driver.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    let _ = driver.kill();
    let _ = driver.wait();
}

/// Wait for the other browser tests ([`SERIAL`]), then start chromedriver and a headless
/// Chromium session. `None` (with the reason printed) when they are not installed, unless
/// CI=true: there a missing browser fails the test.
pub async fn browser(test: &str) -> Option<Browser> {
    let serial = SERIAL.lock().await;
    let chromium = first_existing(CHROMIUM);
    let driver = first_existing(CHROMEDRIVER);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        let why = "chromium / chromedriver are not installed (Debian: apt-get install chromium chromium-driver)";
        if mpcluster_testkit::under_ci() {
            panic!("{test}: {why}");
        }
        eprintln!("SKIPPED {test}: {why}");
        return None;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if ureq::get(&format!("{url}/status"))
            .timeout(Duration::from_secs(2))
            .call()
            .is_ok()
        {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("chromedriver exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium.display().to_string(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--window-size=1400,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    caps.insert("pageLoadStrategy".to_owned(), json!("normal"));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = match ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&url)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            kill_group(&mut child);
            panic!("{test}: cannot start a Chromium session: {e}");
        }
    };
    Some(Browser {
        driver: child,
        _profile: profile,
        client,
        _serial: serial,
    })
}

// ---------------------------------------------------------------------------------------------
// The server

/// The real `mpcluster serve`, killed on drop; its output lines are kept (the first serve on
/// an empty store prints the admin token).
pub struct Server {
    child: Child,
    pub url: String,
    pub store_dir: PathBuf,
    pub output: Arc<Mutex<Vec<String>>>,
    /// The credential to send (`id:secret`), when the server wants one.
    pub token: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(stream: impl std::io::Read + Send + 'static, tag: &str, out: Arc<Mutex<Vec<String>>>) {
    let tag = tag.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if !line.contains(':') || line.contains(' ') {
                eprintln!("[{tag}] {line}");
            }
            out.lock().unwrap().push(line);
        }
    });
}

/// Start `mpcluster serve --listen 127.0.0.1:0 --store embedded:<store_dir> ARGS`, wait until
/// it listens, then find out whether it wants a token and where that token is.
pub fn start_server(store_dir: &Path, args: &[String]) -> Server {
    let mut all: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--store".into(),
        format!("embedded:{}", store_dir.display()),
    ];
    all.extend_from_slice(args);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpcluster"))
        .args(&all)
        .env("MPCLUSTER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(Vec::new()));
    drain(child.stdout.take().unwrap(), "serve", output.clone());
    drain(child.stderr.take().unwrap(), "serve", output.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        let found = output.lock().unwrap().iter().find_map(|l| {
            l.split("serving ").nth(1).map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_owned()
            })
        });
        if let Some(u) = found {
            break u;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "mpcluster serve exited ({status}): {:?}",
                output.lock().unwrap()
            );
        }
        assert!(Instant::now() < deadline, "mpcluster serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut server = Server {
        child,
        url,
        store_dir: store_dir.to_path_buf(),
        output,
        token: None,
    };
    server.token = find_token(&server);
    server
}

/// A credential `id:secret` in one line of text.
fn credential_in(text: &str) -> Option<String> {
    text.lines().map(str::trim).find_map(|l| {
        let (id, secret) = l.split_once(':')?;
        let ok = !id.is_empty()
            && secret.len() >= 16
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@._-!".contains(c))
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=_-.".contains(c));
        ok.then(|| l.to_owned())
    })
}

/// Does the API want a token? If so, the bootstrap admin token: from
/// `MPCLUSTER_UI_TEST_TOKEN`, the `admin-token` file next to the store, or the credential line
/// `serve` printed.
fn find_token(server: &Server) -> Option<String> {
    let probe = format!("{}/api2/json/cluster/nodes", server.url);
    let deadline = Instant::now() + Duration::from_secs(20);
    let needs = loop {
        match ureq::get(&probe).timeout(Duration::from_secs(5)).call() {
            Ok(_) => break false,
            Err(ureq::Error::Status(401, _)) => break true,
            Err(ureq::Error::Status(_, _)) => break false,
            Err(e) => {
                assert!(Instant::now() < deadline, "server unreachable: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    if !needs {
        eprintln!("the server answers without a token: the UI runs without logging in");
        return None;
    }
    eprintln!("the server wants a token (401): logging in with its bootstrap admin token");
    loop {
        if let Ok(t) = std::env::var("MPCLUSTER_UI_TEST_TOKEN") {
            return Some(t);
        }
        for f in [
            server.store_dir.join("admin-token"),
            server
                .store_dir
                .parent()
                .unwrap_or(Path::new("/"))
                .join("admin-token"),
        ] {
            if let Some(t) = std::fs::read_to_string(&f)
                .ok()
                .and_then(|s| credential_in(&s))
            {
                return Some(t);
            }
        }
        let printed = server
            .output
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| credential_in(l));
        if printed.is_some() {
            return printed;
        }
        assert!(
            Instant::now() < deadline,
            "the server wants a token (401) but none was found next to the store or in its output"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Server {
    fn req(&self, method: &str, path: &str) -> ureq::Request {
        let mut r =
            ureq::request(method, &format!("{}{path}", self.url)).timeout(Duration::from_secs(10));
        if let Some(t) = &self.token {
            r = r.set("Authorization", &format!("Bearer {t}"));
        }
        r
    }

    /// Call the API: `(status, body)`.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = self.req(method, path);
        let res = match body {
            Some(b) => r
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => r.call(),
        };
        match res {
            Ok(resp) => (
                resp.status(),
                serde_json::from_str(&resp.into_string().unwrap()).unwrap_or(Value::Null),
            ),
            Err(ureq::Error::Status(code, resp)) => (
                code,
                serde_json::from_str(&resp.into_string().unwrap_or_default())
                    .unwrap_or(Value::Null),
            ),
            Err(e) => (0, json!({ "error": e.to_string() })),
        }
    }

    /// GET `path`'s `data`, asserting 200.
    pub fn get(&self, path: &str) -> Value {
        let (code, body) = self.call("GET", path, None);
        assert_eq!(code, 200, "GET {path}: {body}");
        body["data"].clone()
    }

    /// Poll the status until `pred(data)`; panics after `timeout` with the last answer.
    pub fn wait_status(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, body) = self.call("GET", "/api2/json/cluster/multipath/status", None);
            if code == 200 && pred(&body["data"]) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last answer: HTTP {code} {body}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Open the UI in `c`, logging in with the token when the server wants one.
    pub async fn open(&self, c: &Client, hash: &str) {
        open_ui(c, &self.url, self.token.as_deref(), hash).await;
    }
}

/// Open the UI at `url` (a server this module did not start, e.g. `mpcluster demo`) in `c`,
/// logging in with `token` when there is one.
pub async fn open_ui(c: &Client, url: &str, token: Option<&str>, hash: &str) {
    c.goto(&format!("{url}/#/login")).await.unwrap();
    let Some(t) = token else {
        c.goto(&format!("{url}/{hash}")).await.unwrap();
        return;
    };
    let input = c.wait().for_element(Locator::Id("token")).await.unwrap();
    // Land on `hash` right after the login (not on the default page).
    c.execute(
        "sessionStorage.setItem('mpcluster.returnTo', arguments[0])",
        vec![json!(hash)],
    )
    .await
    .unwrap();
    input.send_keys(t).await.unwrap();
    click(c, "login-submit").await;
    wait_js(
        c,
        "return location.hash !== '#/login'",
        "the login to finish",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Page helpers

/// Poll `script` (a function body returning a truthy value when ready) for 20 s.
pub async fn wait_js(c: &Client, script: &str, what: &str) -> Value {
    wait_js_for(c, script, what, Duration::from_secs(20)).await
}

/// Poll `script` until it returns a truthy value; panics after `timeout`.
pub async fn wait_js_for(c: &Client, script: &str, what: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let v = c.execute(script, vec![]).await.unwrap();
        let truthy = match &v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where the tests put screenshots: `target/ui-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Save a screenshot of the page as `target/ui-screenshots/<name>.png`; returns the path.
pub async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.unwrap();
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

/// The matrix as the page shows it: `{wwid: {state, cells: {node: {state, text, title}}}}`.
pub const READ_MATRIX: &str = r#"
const out = {};
for (const tr of document.querySelectorAll('#matrix tbody tr.row')) {
  const cells = {};
  for (const td of tr.querySelectorAll('td.cell')) {
    cells[td.dataset.node] = { state: td.dataset.state, text: td.textContent, title: td.title };
  }
  out[tr.dataset.wwid] = {
    state: tr.dataset.state,
    alias: tr.children[1].textContent,
    used: tr.children[2].textContent,
    size: tr.children[3].textContent,
    cells,
  };
}
return out;
"#;

/// Set an input's value by typing (clears it first).
pub async fn type_into(c: &Client, id: &str, text: &str) {
    let el = c.find(Locator::Id(id)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

/// Click the element with `id`.
pub async fn click(c: &Client, id: &str) {
    click_on(c, Locator::Id(id)).await;
}

/// Click the element `css` selects.
pub async fn click_css(c: &Client, css: &str) {
    click_on(c, Locator::Css(css)).await;
}

async fn click_on(c: &Client, at: Locator<'_>) {
    c.find(at).await.unwrap().click().await.unwrap();
}

/// Run `script` (a function body) in the page; what it returns.
pub async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// The current value of the input with `id`.
pub async fn value_of(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Wait until the text of the element with `id` contains `needle`; that text.
pub async fn wait_text(c: &Client, id: &str, needle: &str, what: &str) -> String {
    let script = format!(
        "const e = document.getElementById({}); return e && e.textContent.includes({}) ? e.textContent : null;",
        json!(id),
        json!(needle)
    );
    let text = wait_js(c, &script, what).await;
    text.as_str().unwrap_or_default().to_owned()
}

/// The text of the element with `id` ('' when hidden or absent).
pub async fn text_of(c: &Client, id: &str) -> String {
    c.execute(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
        vec![json!(id)],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_owned()
}
