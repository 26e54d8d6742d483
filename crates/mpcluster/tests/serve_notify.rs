//! `serve` under systemd (`Type=notify`): with `NOTIFY_SOCKET` set it sends `READY=1` once it
//! listens and has the first status, and `STOPPING=1` on SIGTERM; without it, nothing.
#![allow(clippy::unwrap_used)]

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn recv(sock: &UnixDatagram, within: Duration) -> Option<String> {
    sock.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn serve_reports_ready_and_stopping_to_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    let started = Instant::now();
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_mpcluster"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-agent", "--store"])
            .arg(format!("embedded:{}", dir.path().join("store").display()))
            .arg("--config")
            .arg("/dev/null")
            .env("NOTIFY_SOCKET", &socket_path)
            .env("MPCLUSTER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = recv(&sock, Duration::from_secs(30)).expect("no READY=1 within 30 s");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // The first status of a fresh embedded store is there at once, long before the bounded
    // wait for it would give up.
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=serving http://127.0.0.1:")),
        "{ready:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{ready:?}");
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    let stopping = recv(&sock, Duration::from_secs(10)).expect("no STOPPING=1");
    assert_eq!(stopping.trim(), "STOPPING=1");
    assert!(child.0.wait().unwrap().success());
}
