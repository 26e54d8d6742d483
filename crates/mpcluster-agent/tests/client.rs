//! The real client against the fake multipathd over real Unix sockets (temp dirs and private
//! abstract names; the host's multipathd is never contacted).
#![allow(clippy::unwrap_used)]

use std::error::Error as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpcluster_agent::client::{CONNECT_HINT, FramePart};
use mpcluster_agent::fake::OVERSIZED_LEN;
use mpcluster_agent::protocol::{self, FrameError, HEADER_LEN, ReplyDecodeError};
use mpcluster_agent::{
    ClientError, FakeHandle, FakeMultipathd, Misbehaviour, MultipathdClient, Reply, SocketAddrSpec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAPS_FORMAT: &str = "%n %w %d %N %Q %t %S";
const PATHS_FORMAT: &str = "%w %i %d %D %t %T %o %P %a %r %R";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// A fake on a path socket in its own temp dir, and a client for it.
struct Env {
    fake: FakeHandle,
    client: MultipathdClient,
    _dir: tempfile::TempDir,
}

fn start() -> Env {
    start_with_timeout(Duration::from_secs(5))
}

fn start_with_timeout(timeout: Duration) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeMultipathd::start(dir.path().join("multipathd.sock")).unwrap();
    let client = MultipathdClient::new(fake.socket_spec(), timeout)
        .with_retry_delay(Duration::from_millis(20));
    Env {
        fake,
        client,
        _dir: dir,
    }
}

#[tokio::test]
async fn show_maps_json_returns_the_fixture_bytes() {
    let env = start();
    let json = fixture("healthy-show-maps-json.json");
    env.fake.set_reply("show maps json", json.clone());
    let got = env.client.show_maps_json().await.unwrap();
    assert_eq!(got, json);
    assert_eq!(env.fake.commands(), ["show maps json"]);
}

#[tokio::test]
async fn raw_formats_are_sent_quoted_and_answered() {
    let env = start();
    let maps = fixture("healthy-show-maps-format-raw.txt");
    let paths = fixture("healthy-show-paths-format-raw.txt");
    let maps_cmd = format!("show maps raw format \"{MAPS_FORMAT}\"");
    let paths_cmd = format!("show paths raw format \"{PATHS_FORMAT}\"");
    env.fake.set_reply(&maps_cmd, maps.clone());
    env.fake.set_reply(&paths_cmd, paths.clone());
    assert_eq!(env.client.show_maps_raw(MAPS_FORMAT).await.unwrap(), maps);
    assert_eq!(
        env.client.show_paths_raw(PATHS_FORMAT).await.unwrap(),
        paths
    );
    assert_eq!(env.fake.commands(), [maps_cmd, paths_cmd]);
}

#[tokio::test]
async fn ok_for_a_raw_format_means_no_maps() {
    let env = start();
    let ok = fixture("no-maps-show-maps-format-raw.txt");
    assert_eq!(ok, "ok\n");
    env.fake
        .set_reply(format!("show maps raw format \"{MAPS_FORMAT}\""), ok);
    assert_eq!(env.client.show_maps_raw(MAPS_FORMAT).await.unwrap(), "");
}

#[tokio::test]
async fn ok_for_show_maps_json_is_unexpected() {
    let env = start();
    env.fake.set_reply("show maps json", "ok\n");
    let err = env.client.show_maps_json().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::UnexpectedReply { socket, .. } if socket.ends_with("multipathd.sock")),
        "{err:?}"
    );
}

#[tokio::test]
async fn reconfigure_succeeds_on_ok_and_is_recorded() {
    let env = start();
    env.fake.set_reply("reconfigure", "ok\n");
    env.client.reconfigure().await.unwrap();
    assert_eq!(env.fake.commands(), ["reconfigure"]);

    env.fake.set_reply("reconfigure", "something else\n");
    let err = env.client.reconfigure().await.unwrap_err();
    assert!(
        matches!(err, ClientError::UnexpectedReply { ref excerpt, .. } if excerpt == "something else\n"),
        "{err:?}"
    );
}

#[tokio::test]
async fn generic_command_returns_text_or_ok() {
    let env = start();
    env.fake
        .set_reply("show daemon", fixture("healthy-show-daemon.txt"));
    env.fake.set_reply("show paths", "ok\n");
    assert_eq!(
        env.client.command("show daemon").await.unwrap(),
        Reply::Text("pid 569 idle\n".into())
    );
    assert_eq!(env.client.command("show paths").await.unwrap(), Reply::Ok);
}

#[tokio::test]
async fn slow_reply_beyond_the_timeout_times_out_quickly() {
    let env = start_with_timeout(Duration::from_millis(200));
    env.fake.set_reply("show maps json", "{}\n");
    env.fake
        .set_misbehaviour(Some(Misbehaviour::Slow(Duration::from_secs(30))));
    let started = Instant::now();
    let err = env.client.show_maps_json().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, ClientError::Timeout { timeout, .. } if timeout == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(err.to_string().contains("show maps json"), "{err}");
}

#[tokio::test]
async fn slow_reply_within_the_timeout_succeeds() {
    let env = start_with_timeout(Duration::from_secs(5));
    env.fake.set_reply("show maps json", "{}\n");
    env.fake
        .set_misbehaviour(Some(Misbehaviour::Slow(Duration::from_millis(100))));
    assert_eq!(env.client.show_maps_json().await.unwrap(), "{}\n");
}

#[tokio::test]
async fn truncated_reply_is_reported_with_byte_counts() {
    let env = start();
    let json = fixture("healthy-show-maps-json.json");
    env.fake.set_reply("show maps json", json.clone());
    env.fake.set_misbehaviour(Some(Misbehaviour::Truncated));
    let err = env.client.show_maps_json().await.unwrap_err();
    let expected_len = json.len() + 1;
    match err {
        ClientError::Truncated {
            part: FramePart::Body,
            expected,
            received,
            ..
        } => {
            assert_eq!(expected, expected_len);
            assert_eq!(received, expected_len / 2);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oversized_length_is_refused_immediately() {
    // The fake keeps the connection open after announcing 64 MiB: a client trying to read
    // them would run into the 10 s timeout instead of failing at once.
    let env = start_with_timeout(Duration::from_secs(10));
    env.fake
        .set_misbehaviour(Some(Misbehaviour::OversizedLength));
    let started = Instant::now();
    let err = env.client.show_maps_json().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match &err {
        ClientError::InvalidLength { source, .. } => assert_eq!(
            *source,
            FrameError::TooLong {
                len: OVERSIZED_LEN,
                limit: protocol::MAX_REPLY_LEN
            }
        ),
        other => panic!("{other:?}"),
    }
    assert!(err.source().is_some());
}

#[tokio::test]
async fn zero_length_is_refused() {
    let env = start();
    env.fake.set_misbehaviour(Some(Misbehaviour::ZeroLength));
    let err = env.client.show_maps_json().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::InvalidLength {
                source: FrameError::Empty,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn persistent_fail_is_retried_once_then_reported() {
    let env = start();
    env.fake.set_reply("show maps json", "{}\n");
    env.fake.set_misbehaviour(Some(Misbehaviour::Fail));
    let err = env.client.show_maps_json().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Failed { detail: None, .. }),
        "{err:?}"
    );
    assert_eq!(env.fake.commands(), ["show maps json", "show maps json"]);
}

#[tokio::test]
async fn fail_once_succeeds_after_the_single_retry() {
    let env = start();
    let json = fixture("healthy-show-maps-json.json");
    env.fake.set_reply("show maps json", json.clone());
    env.fake.set_misbehaviour(Some(Misbehaviour::FailOnce));
    assert_eq!(env.client.show_maps_json().await.unwrap(), json);
    assert_eq!(env.fake.commands(), ["show maps json", "show maps json"]);
}

#[tokio::test]
async fn fail_with_detail_is_not_retried() {
    let env = start();
    env.fake
        .set_reply("del map mpatha", "fail\nmap or partition in use\n");
    let err = env.client.command("del map mpatha").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Failed { detail: Some(ref d), .. } if d == "map or partition in use"),
        "{err:?}"
    );
    assert_eq!(env.fake.commands().len(), 1);
}

#[tokio::test]
async fn garbage_is_a_malformed_reply() {
    let env = start();
    env.fake.set_misbehaviour(Some(Misbehaviour::Garbage));
    let err = env.client.show_maps_json().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::MalformedReply {
                source: ReplyDecodeError::InteriorNul { .. } | ReplyDecodeError::NotUtf8(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn help_text_is_an_unknown_command_error() {
    let env = start();
    env.fake.set_reply("show maps json", "{}\n");
    env.fake.set_misbehaviour(Some(Misbehaviour::HelpText));
    let err = env.client.show_maps_json().await.unwrap_err();
    assert!(
        matches!(err, ClientError::UnknownCommand { ref message, .. } if message == "show maps json: not found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn unscripted_command_gets_the_help_text() {
    let env = start();
    let err = env.client.command("frobnicate maps").await.unwrap_err();
    assert!(
        matches!(err, ClientError::UnknownCommand { ref message, .. } if message == "frobnicate maps: not found"),
        "{err:?}"
    );
    // 0.9.8+ prefixes the same help with "fail\n"; still not data, and not retried.
    env.fake.set_reply(
        "frobnicate maps",
        format!(
            "fail\n{}",
            mpcluster_agent::fake::help_text("frobnicate maps")
        ),
    );
    env.fake.clear_commands();
    let err = env.client.command("frobnicate maps").await.unwrap_err();
    assert!(matches!(err, ClientError::UnknownCommand { .. }), "{err:?}");
    assert_eq!(env.fake.commands().len(), 1);
}

#[tokio::test]
async fn close_without_reply_is_reported() {
    let env = start();
    env.fake
        .set_misbehaviour(Some(Misbehaviour::CloseWithoutReply));
    let err = env.client.show_maps_json().await.unwrap_err();
    assert!(
        matches!(err, ClientError::ClosedWithoutReply { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn daemon_error_replies_are_typed() {
    let env = start();
    env.fake
        .set_reply("reconfigure", "permission deny: need to be root\n");
    env.fake.set_reply("show maps json", "timeout\n");
    env.fake.set_reply("show paths", "fail\ntimeout\n");
    assert!(matches!(
        env.client.reconfigure().await.unwrap_err(),
        ClientError::PermissionDenied { .. }
    ));
    assert!(matches!(
        env.client.show_maps_json().await.unwrap_err(),
        ClientError::DaemonTimeout { .. }
    ));
    assert!(matches!(
        env.client.command("show paths").await.unwrap_err(),
        ClientError::DaemonTimeout { .. }
    ));
    // None of these is retried.
    assert_eq!(env.fake.commands().len(), 3);
}

#[tokio::test]
async fn missing_socket_is_a_connect_error_with_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-multipathd.sock");
    let client = MultipathdClient::new(SocketAddrSpec::Path(path.clone()), Duration::from_secs(2));
    let err = client.show_maps_json().await.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(
        shown.contains("is multipath-tools installed and multipathd running?"),
        "{shown}"
    );
    assert_eq!(err.hint(), Some(CONNECT_HINT));
    match &err {
        ClientError::Connect { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    // The OS error is the source, not part of the message.
    let source = err.source().unwrap().to_string();
    assert!(!shown.contains(&source), "{shown} / {source}");
}

#[tokio::test]
async fn missing_abstract_socket_is_a_connect_error() {
    let name = format!("mpcluster-test/absent/{}", std::process::id());
    let client = MultipathdClient::new(
        SocketAddrSpec::Abstract(name.clone().into_bytes()),
        Duration::from_secs(2),
    );
    let err = client.command("show daemon").await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("@{name}")), "{err}");
}

#[tokio::test]
async fn abstract_socket_round_trip() {
    // Unique per process and test: abstract names are shared by the network namespace.
    let name = format!("mpcluster-test/fake/{}/round-trip", std::process::id());
    let fake = FakeMultipathd::start_abstract(name.clone().into_bytes()).unwrap();
    assert_eq!(fake.path(), None);
    let spec: SocketAddrSpec = format!("@{name}").parse().unwrap();
    assert_eq!(spec, fake.socket_spec());
    let json = fixture("healthy-show-maps-json.json");
    fake.set_reply("show maps json", json.clone());
    let client = MultipathdClient::new(spec, Duration::from_secs(5));
    assert_eq!(client.show_maps_json().await.unwrap(), json);
    assert_eq!(fake.commands(), ["show maps json"]);
    drop(fake);
    // The name disappears with the listener.
    let err = client.show_maps_json().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn reply_changes_between_two_requests() {
    let env = start();
    let healthy = fixture("healthy-show-maps-json.json");
    let degraded = fixture("one-path-offline-show-maps-json.json");
    assert_ne!(healthy, degraded);
    env.fake.set_reply("show maps json", healthy.clone());
    assert_eq!(env.client.show_maps_json().await.unwrap(), healthy);
    env.fake
        .controller()
        .set_reply("show maps json", degraded.clone());
    assert_eq!(env.client.show_maps_json().await.unwrap(), degraded);
    env.fake.remove_reply("show maps json");
    assert!(matches!(
        env.client.show_maps_json().await.unwrap_err(),
        ClientError::UnknownCommand { .. }
    ));
}

#[tokio::test]
async fn handler_computes_replies() {
    let env = start();
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    env.fake.set_handler(move |cmd| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        (cmd == "show daemon").then(|| format!("pid {n} idle\n"))
    });
    env.fake.set_reply("reconfigure", "ok\n");
    assert_eq!(
        env.client.command("show daemon").await.unwrap(),
        Reply::Text("pid 1 idle\n".into())
    );
    assert_eq!(
        env.client.command("show daemon").await.unwrap(),
        Reply::Text("pid 2 idle\n".into())
    );
    // Falls through to the script for other commands.
    env.client.reconfigure().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn commands_are_recorded_in_order() {
    let env = start();
    env.fake.set_reply("show maps json", "{}\n");
    env.fake.set_reply("reconfigure", "ok\n");
    env.client.show_maps_json().await.unwrap();
    env.client.reconfigure().await.unwrap();
    let _ = env.client.command("show bogus").await;
    assert_eq!(
        env.fake.commands(),
        ["show maps json", "reconfigure", "show bogus"]
    );
    env.fake.clear_commands();
    assert!(env.fake.commands().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_are_served() {
    let env = start();
    let json = fixture("healthy-show-maps-json.json");
    env.fake.set_reply("show maps json", json.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let client = env.client.clone();
        tasks.spawn(async move { client.show_maps_json().await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), json);
    }
    assert_eq!(env.fake.commands().len(), 16);
}

#[tokio::test]
async fn invalid_commands_are_refused_before_connecting() {
    let env = start();
    let long = "show ".repeat(200);
    for cmd in ["", "show\0maps", long.as_str()] {
        let err = env.client.command(cmd).await.unwrap_err();
        assert!(matches!(err, ClientError::InvalidCommand { .. }), "{err:?}");
    }
    let err = env.client.show_maps_raw("%n %").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidCommand { .. }), "{err:?}");
    assert!(env.fake.commands().is_empty());
}

#[tokio::test]
async fn dropping_the_fake_removes_its_socket() {
    let env = start();
    let path = env.fake.path().unwrap().to_owned();
    assert!(path.exists());
    let client = env.client.clone();
    drop(env.fake);
    assert!(!path.exists());
    let err = client.show_maps_json().await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn fake_binds_fail_on_an_existing_path() {
    let env = start();
    let path = env.fake.path().unwrap().to_owned();
    let err = FakeMultipathd::start(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

/// Protocol fidelity of the fake, checked with hand-made frames: connections are reusable
/// and an over-long command is answered by closing the connection, as multipathd does.
#[tokio::test]
async fn fake_speaks_the_wire_protocol() {
    let env = start();
    env.fake.set_reply("show daemon", "pid 1 idle\n");
    let path = env.fake.path().unwrap().to_owned();
    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(&protocol::encode_frame(b"show daemon"))
            .await
            .unwrap();
        let mut header = [0u8; HEADER_LEN];
        stream.read_exact(&mut header).await.unwrap();
        let len = protocol::decode_len(header).unwrap();
        assert_eq!(len, "pid 1 idle\n".len() + 1);
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.unwrap();
        assert_eq!(body, b"pid 1 idle\n\0");
    }
    let long = vec![b'x'; protocol::MAX_CMD_LEN];
    stream.write_all(&protocol::encode_frame(&long)).await.ok();
    // Closed without a reply: EOF, or ECONNRESET because the fake left bytes unread.
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest).await {
        Ok(_) => assert!(rest.is_empty()),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
    }
}

/// The apply plan's view of the maps: names and WWIDs from the real 0.9.4 reply (user friendly
/// names `mpatha`/`mpathb`), an empty list from the real no-maps reply, and the raw format
/// when the JSON is not understood.
#[tokio::test]
async fn current_maps_from_real_replies() {
    use mpcluster_agent::collect::current_maps;
    let env = start();
    env.fake
        .set_reply("show maps json", fixture("healthy-show-maps-json.json"));
    let maps = current_maps(&env.client).await.unwrap();
    let named: Vec<(&str, &str)> = maps
        .iter()
        .map(|m| (m.name.as_str(), m.wwid.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("mpatha", "1Linux_scsi_debug_2000"),
            ("mpathb", "1Linux_scsi_debug_2001")
        ]
    );
    env.fake
        .set_reply("show maps json", fixture("no-maps-show-maps-json.json"));
    assert!(current_maps(&env.client).await.unwrap().is_empty());
    // A multipathd without `show maps json`: the raw maps format, with our own format string.
    env.fake.remove_reply("show maps json");
    env.fake.set_reply(
        format!(
            "show maps raw format \"{}\"",
            mpcluster_core::multipathd::MAPS_RAW_FORMAT
        ),
        "1Linux_scsi_debug_2000|dm-0|active|3|5 chk|immediate|rw|1 queue_if_no_path|1 alua|0|0|mpatha\n",
    );
    let maps = current_maps(&env.client).await.unwrap();
    assert_eq!(maps.len(), 1, "{maps:?}");
    assert_eq!(maps[0].name, "mpatha");
}
