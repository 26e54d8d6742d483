//! The multipathd CLI socket client. Entry point: [`MultipathdClient`].
//!
//! One command per connection: connect, send the framed command, read the framed reply,
//! close. The whole exchange (connect included) runs under one timeout. Replies are
//! classified ([`crate::protocol::classify_reply`]) so that `fail`, `timeout`,
//! `permission deny` and help texts come back as typed [`ClientError`]s, never as data.
//! A bare `fail` is retried once after a short delay: `show maps json` answers `fail` when
//! refreshing any map failed, which is usually gone a moment later.
//!
//! Parsing the output is not done here (see `mpcluster_core::multipathd`).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::{Instant, timeout_at};
use tracing::{debug, warn};

use crate::protocol::{self, CommandError, FrameError, HEADER_LEN, ReplyClass, ReplyDecodeError};
use crate::socket::{ResolvedSocket, SocketAddrSpec};

/// Default timeout for one exchange. multipathd's own `uxsock_timeout` defaults to 4 s and
/// it answers `timeout` when that expires, so 5 s leaves room for that answer to arrive.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default delay before the single retry of a transient `fail`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);

/// The hint attached to connection failures.
pub const CONNECT_HINT: &str = "is multipath-tools installed and multipathd running?";

/// Initial reply buffer; the buffer grows with the bytes actually received, never with the
/// announced length, so a lying peer cannot make us allocate up to 32 MiB for nothing.
const INITIAL_REPLY_CAPACITY: usize = 64 * 1024;

/// A reply that was not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `ok`: success without output (also what `show maps` prints when there are no maps).
    Ok,
    /// The command's output, trailing NUL removed.
    Text(String),
}

impl Reply {
    /// The output text; [`Reply::Ok`] is the empty string.
    pub fn into_text(self) -> String {
        match self {
            Self::Ok => String::new(),
            Self::Text(text) => text,
        }
    }
}

/// Which part of a frame was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    /// The `size_t` length prefix.
    Header,
    /// The reply bytes.
    Body,
}

impl std::fmt::Display for FramePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Header => "length prefix",
            Self::Body => "reply",
        })
    }
}

/// Everything that can go wrong asking multipathd something. Each variant names the socket
/// (`socket`, as tried: a path or `@name`) and the command; OS errors are the `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The command was not sent because multipathd could not accept it.
    #[error("refusing to send {command:?} to multipathd")]
    InvalidCommand {
        /// The command as given.
        command: String,
        /// What is wrong with it.
        #[source]
        source: CommandError,
    },
    /// No socket could be connected to.
    #[error(
        "cannot connect to multipathd at {socket}: is multipath-tools installed and multipathd running?"
    )]
    Connect {
        /// The socket(s) tried, e.g. `/run/multipathd.socket, then @/org/kernel/linux/storage/multipathd`.
        socket: String,
        /// The command that was to be sent.
        command: String,
        /// The OS error of the last connection attempt.
        #[source]
        source: io::Error,
    },
    /// The exchange (connect, send, receive) did not finish within the timeout.
    #[error("multipathd at {socket} did not complete {command:?} within {timeout:?}")]
    Timeout {
        /// The socket (or sockets, if still connecting).
        socket: String,
        /// The command.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Writing the command failed.
    #[error("cannot send {command:?} to multipathd at {socket}")]
    Send {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading the reply failed.
    #[error("cannot read the reply to {command:?} from multipathd at {socket}")]
    Receive {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The daemon closed the connection before sending any reply byte (what multipathd does
    /// with an over-long command, or when it is shutting down).
    #[error("multipathd at {socket} closed the connection without replying to {command:?}")]
    ClosedWithoutReply {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
    },
    /// The connection ended in the middle of a frame.
    #[error(
        "multipathd at {socket} closed the connection after {received} of {expected} bytes of the {part} for {command:?}"
    )]
    Truncated {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// Header or body.
        part: FramePart,
        /// Bytes announced (or header size).
        expected: usize,
        /// Bytes received.
        received: usize,
    },
    /// The announced reply length was 0 or at least 32 MiB; nothing was allocated for it.
    #[error("multipathd at {socket} announced an invalid reply length for {command:?}")]
    InvalidLength {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// The length and the limit.
        #[source]
        source: FrameError,
    },
    /// The announced reply is valid for multipathd but larger than the agent accepts
    /// ([`crate::protocol::MAX_ACCEPTED_REPLY_LEN`]); it was not read.
    #[error(
        "multipathd at {socket} announced a reply of {len} bytes to {command:?}; mpcluster reads replies below {limit} bytes (about 2 700 multipath maps with 4 paths each), so this node's state cannot be collected"
    )]
    ReplyTooLarge {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// The announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The reply is not text (binary bytes, interior NUL).
    #[error("the reply of multipathd at {socket} to {command:?} is not text")]
    MalformedReply {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// What is wrong with the bytes.
        #[source]
        source: ReplyDecodeError,
    },
    /// multipathd answered `fail` (with its explanation, if it gave one).
    #[error("multipathd at {socket} failed {command:?}{}", detail_suffix(.detail.as_deref()))]
    Failed {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// The text after `fail`, e.g. `device not found`; `None` for a bare `fail`.
        detail: Option<String>,
    },
    /// multipathd's own `uxsock_timeout` expired (it answered `timeout`), typically because
    /// it was busy (reconfigure, path storm) holding its lock.
    #[error("multipathd at {socket} timed out internally handling {command:?} (uxsock_timeout)")]
    DaemonTimeout {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
    },
    /// `permission deny: need to be root`: non-root may only send `list`/`show` commands.
    #[error(
        "multipathd at {socket} refused {command:?}: permission denied (only root may send commands other than list/show)"
    )]
    PermissionDenied {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
    },
    /// multipathd answered with its help text: it does not know this command (in this
    /// version) or an argument is missing.
    #[error("multipathd at {socket} does not understand {command:?}: {message}")]
    UnknownCommand {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// The first line of the help text, e.g. `frobnicate: not found`.
        message: String,
    },
    /// A reply that is valid but not what this command should produce (e.g. data for
    /// `reconfigure`, `ok` for `show maps json`).
    #[error("unexpected reply from multipathd at {socket} to {command:?}: {excerpt:?}")]
    UnexpectedReply {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// The start of the reply.
        excerpt: String,
    },
}

fn detail_suffix(detail: Option<&str>) -> String {
    detail.map(|d| format!(": {d}")).unwrap_or_default()
}

impl ClientError {
    /// Whether one retry may help: a bare `fail` (e.g. a map refresh failed during
    /// `show maps json`).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Failed { detail: None, .. })
    }

    /// The operator hint for this error, if there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Connect { .. } => Some(CONNECT_HINT),
            Self::ReplyTooLarge { .. } => {
                Some("more multipath maps than mpcluster handles on one node; see README (Limits)")
            }
            _ => None,
        }
    }
}

/// Client for multipathd's CLI socket. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct MultipathdClient {
    socket: SocketAddrSpec,
    timeout: Duration,
    retry_delay: Duration,
}

impl MultipathdClient {
    /// A client for `socket` whose exchanges each time out after `timeout`.
    pub fn new(socket: SocketAddrSpec, timeout: Duration) -> Self {
        Self {
            socket,
            timeout,
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }

    /// Sets the delay before the single retry of a transient `fail`.
    #[must_use]
    pub fn with_retry_delay(mut self, retry_delay: Duration) -> Self {
        self.retry_delay = retry_delay;
        self
    }

    /// The configured socket.
    pub fn socket(&self) -> &SocketAddrSpec {
        &self.socket
    }

    /// The per-exchange timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one command and returns its classified reply. Error replies become errors; a
    /// bare `fail` is retried once after the retry delay (each try has the full timeout).
    #[tracing::instrument(level = "debug", skip(self), fields(socket = %self.socket))]
    pub async fn command(&self, cmd: &str) -> Result<Reply, ClientError> {
        self.command_from(cmd).await.map(|(reply, _socket)| reply)
    }

    /// [`Self::command`], also returning the socket that answered (for error context).
    async fn command_from(&self, cmd: &str) -> Result<(Reply, String), ClientError> {
        protocol::validate_command(cmd).map_err(|source| ClientError::InvalidCommand {
            command: cmd.to_owned(),
            source,
        })?;
        match self.attempt(cmd).await {
            Err(err) if err.is_transient() => {
                warn!(error = %err, delay = ?self.retry_delay, "multipathd answered fail; retrying once");
                tokio::time::sleep(self.retry_delay).await;
                self.attempt(cmd).await
            }
            other => other,
        }
    }

    /// `show maps json`: the JSON document as text.
    pub async fn show_maps_json(&self) -> Result<String, ClientError> {
        self.expect_text("show maps json").await
    }

    /// `show maps raw format "<format>"`: one line per map, no header or padding; empty when
    /// there are no maps (multipathd then answers `ok`).
    pub async fn show_maps_raw(&self, format: &str) -> Result<String, ClientError> {
        self.raw_format("show maps", format).await
    }

    /// `show paths raw format "<format>"`: one line per path; empty when there are none.
    pub async fn show_paths_raw(&self, format: &str) -> Result<String, ClientError> {
        self.raw_format("show paths", format).await
    }

    /// `reconfigure`: re-read `multipath.conf` (root only). Succeeds on `ok`.
    pub async fn reconfigure(&self) -> Result<(), ClientError> {
        let cmd = "reconfigure";
        match self.command_from(cmd).await? {
            (Reply::Ok, _) => Ok(()),
            (Reply::Text(text), socket) => Err(unexpected(socket, cmd, &text)),
        }
    }

    async fn raw_format(&self, prefix: &str, format: &str) -> Result<String, ClientError> {
        let cmd = protocol::raw_format_command(prefix, format).map_err(|source| {
            ClientError::InvalidCommand {
                command: format!("{prefix} raw format {format:?}"),
                source,
            }
        })?;
        Ok(self.command(&cmd).await?.into_text())
    }

    async fn expect_text(&self, cmd: &str) -> Result<String, ClientError> {
        match self.command_from(cmd).await? {
            (Reply::Text(text), _) => Ok(text),
            (Reply::Ok, socket) => Err(unexpected(socket, cmd, "ok")),
        }
    }

    /// One connection, one command, one reply, all under the timeout.
    async fn attempt(&self, cmd: &str) -> Result<(Reply, String), ClientError> {
        let deadline = Instant::now() + self.timeout;
        let candidates = self.socket.candidates();
        let (mut stream, socket) = match timeout_at(deadline, connect_any(&candidates)).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    socket: describe(&candidates),
                    command: cmd.to_owned(),
                    source,
                });
            }
            Err(_elapsed) => {
                return Err(ClientError::Timeout {
                    socket: describe(&candidates),
                    command: cmd.to_owned(),
                    timeout: self.timeout,
                });
            }
        };
        let socket = socket.to_string();
        debug!(%socket, "connected");
        let body = match timeout_at(deadline, exchange(&mut stream, cmd)).await {
            Ok(Ok(body)) => body,
            Ok(Err(err)) => return Err(err.into_client_error(socket, cmd)),
            Err(_elapsed) => {
                return Err(ClientError::Timeout {
                    socket,
                    command: cmd.to_owned(),
                    timeout: self.timeout,
                });
            }
        };
        // The receive buffer becomes the reply text (no copy: replies can be 32 MiB).
        let text =
            protocol::decode_reply_owned(body).map_err(|source| ClientError::MalformedReply {
                socket: socket.clone(),
                command: cmd.to_owned(),
                source,
            })?;
        debug!(bytes = text.len(), "reply received");
        let reply = classify(text, socket.clone(), cmd)?;
        Ok((reply, socket))
    }
}

fn unexpected(socket: String, cmd: &str, text: &str) -> ClientError {
    ClientError::UnexpectedReply {
        socket,
        command: cmd.to_owned(),
        excerpt: text.chars().take(80).collect(),
    }
}

/// Maps a reply text to a [`Reply`] (data keeps the text itself) or the matching error.
fn classify(text: String, socket: String, cmd: &str) -> Result<Reply, ClientError> {
    let command = cmd.to_owned();
    match protocol::classify_reply(&text) {
        ReplyClass::Ok => Ok(Reply::Ok),
        // `Data` is always the whole text.
        ReplyClass::Data(_) => Ok(Reply::Text(text)),
        ReplyClass::Fail { detail } => Err(ClientError::Failed {
            socket,
            command,
            detail: detail.map(str::to_owned),
        }),
        ReplyClass::Timeout => Err(ClientError::DaemonTimeout { socket, command }),
        ReplyClass::PermissionDenied => Err(ClientError::PermissionDenied { socket, command }),
        ReplyClass::Usage { message } => Err(ClientError::UnknownCommand {
            socket,
            command,
            message: message.to_owned(),
        }),
    }
}

/// `a, then b` for error messages.
fn describe(candidates: &[ResolvedSocket]) -> String {
    candidates
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", then ")
}

/// Connects to the first candidate that accepts. Non-blocking (tokio/mio): a listener whose
/// backlog is full fails with `EAGAIN` instead of blocking a thread.
async fn connect_any(candidates: &[ResolvedSocket]) -> io::Result<(UnixStream, &ResolvedSocket)> {
    let mut last_err = io::Error::new(io::ErrorKind::NotFound, "no socket to try");
    for candidate in candidates {
        let result = match candidate.to_socket_addr() {
            Ok(addr) => UnixStream::connect_addr(&addr.into()).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(stream) => return Ok((stream, candidate)),
            Err(err) => {
                debug!(socket = %candidate, error = %err, "connect failed");
                last_err = err;
            }
        }
    }
    Err(last_err)
}

/// Errors of [`exchange`], before socket and command context is attached.
#[derive(Debug)]
enum ExchangeError {
    Send(io::Error),
    Receive(io::Error),
    Closed,
    Truncated {
        part: FramePart,
        expected: usize,
        received: usize,
    },
    Length(FrameError),
    TooLarge(usize),
}

impl ExchangeError {
    fn into_client_error(self, socket: String, cmd: &str) -> ClientError {
        let command = cmd.to_owned();
        match self {
            Self::Send(source) => ClientError::Send {
                socket,
                command,
                source,
            },
            Self::Receive(source) => ClientError::Receive {
                socket,
                command,
                source,
            },
            Self::Closed => ClientError::ClosedWithoutReply { socket, command },
            Self::Truncated {
                part,
                expected,
                received,
            } => ClientError::Truncated {
                socket,
                command,
                part,
                expected,
                received,
            },
            Self::Length(source) => ClientError::InvalidLength {
                socket,
                command,
                source,
            },
            Self::TooLarge(len) => ClientError::ReplyTooLarge {
                socket,
                command,
                len,
                limit: protocol::MAX_ACCEPTED_REPLY_LEN,
            },
        }
    }
}

/// Sends the framed command and reads one framed reply body (NUL still attached).
async fn exchange(stream: &mut UnixStream, cmd: &str) -> Result<Vec<u8>, ExchangeError> {
    stream
        .write_all(&protocol::encode_frame(cmd.as_bytes()))
        .await
        .map_err(ExchangeError::Send)?;

    let mut header = [0u8; HEADER_LEN];
    let received = read_full(stream, &mut header).await?;
    if received == 0 {
        return Err(ExchangeError::Closed);
    }
    if received < HEADER_LEN {
        return Err(ExchangeError::Truncated {
            part: FramePart::Header,
            expected: HEADER_LEN,
            received,
        });
    }
    let len = protocol::decode_len(header).map_err(ExchangeError::Length)?;
    if len >= protocol::MAX_ACCEPTED_REPLY_LEN {
        return Err(ExchangeError::TooLarge(len));
    }

    // Grow with what arrives; `take` bounds it to the (checked) announced length.
    let mut body = Vec::with_capacity(len.min(INITIAL_REPLY_CAPACITY));
    let limit = u64::try_from(len).unwrap_or(u64::MAX);
    (&mut *stream)
        .take(limit)
        .read_to_end(&mut body)
        .await
        .map_err(ExchangeError::Receive)?;
    if body.len() < len {
        return Err(ExchangeError::Truncated {
            part: FramePart::Body,
            expected: len,
            received: body.len(),
        });
    }
    Ok(body)
}

/// Like `read_exact`, but reports how many bytes arrived before end-of-file.
async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, ExchangeError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(ExchangeError::Receive(err)),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn connect_error_names_socket_and_hint_but_not_source() {
        let err = ClientError::Connect {
            socket: "/tmp/none.sock".into(),
            command: "show maps json".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let shown = err.to_string();
        assert!(shown.contains("/tmp/none.sock"), "{shown}");
        assert!(shown.contains(CONNECT_HINT), "{shown}");
        assert!(!shown.contains("not found"), "source interpolated: {shown}");
        assert!(err.source().is_some());
        assert_eq!(err.hint(), Some(CONNECT_HINT));
    }

    #[test]
    fn failed_display_includes_daemon_detail() {
        let err = ClientError::Failed {
            socket: "@x".into(),
            command: "del map mpatha".into(),
            detail: Some("map or partition in use".into()),
        };
        assert_eq!(
            err.to_string(),
            "multipathd at @x failed \"del map mpatha\": map or partition in use"
        );
        assert!(!err.is_transient());
        let bare = ClientError::Failed {
            socket: "@x".into(),
            command: "show maps json".into(),
            detail: None,
        };
        assert_eq!(
            bare.to_string(),
            "multipathd at @x failed \"show maps json\""
        );
        assert!(bare.is_transient());
    }

    #[test]
    fn classify_maps_every_class() {
        let sock = || "@s".to_owned();
        assert_eq!(
            classify("ok\n".into(), sock(), "reconfigure").ok(),
            Some(Reply::Ok)
        );
        assert_eq!(
            classify("pid 1 idle\n".into(), sock(), "show daemon").ok(),
            Some(Reply::Text("pid 1 idle\n".into()))
        );
        assert!(matches!(
            classify("fail\n".into(), sock(), "c"),
            Err(ClientError::Failed { detail: None, .. })
        ));
        assert!(matches!(
            classify("timeout\n".into(), sock(), "c"),
            Err(ClientError::DaemonTimeout { .. })
        ));
        assert!(matches!(
            classify("permission deny: need to be root\n".into(), sock(), "c"),
            Err(ClientError::PermissionDenied { .. })
        ));
        assert!(matches!(
            classify(
                String::from("c: not found\nmultipath-tools v0.9.4 (12/19, 2022)\nCLI commands reference:\n"),
                sock(),
                "c"
            ),
            Err(ClientError::UnknownCommand { message, .. }) if message == "c: not found"
        ));
    }

    #[test]
    fn reply_into_text() {
        assert_eq!(Reply::Ok.into_text(), "");
        assert_eq!(Reply::Text("x\n".into()).into_text(), "x\n");
    }
}
