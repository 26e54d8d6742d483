//! A fake multipathd speaking the real CLI socket protocol, for tests and the `demo` command.
//! Entry point: [`FakeMultipathd::start`] (path socket) or [`FakeMultipathd::start_abstract`].
//!
//! Replies are looked up by command string in a shared, mutable script ([`FakeController`]),
//! so a test or a simulated node can change state between requests. Commands without a
//! scripted reply get multipathd 0.9.4's answer to an unknown command (its help text, see
//! [`help_text`]). Every received command is recorded ([`FakeController::commands`]).
//! [`Misbehaviour`] makes the daemon slow, truncate, lie about lengths, fail, or hang up.
//!
//! The server runs as a Tokio task; dropping the [`FakeHandle`] aborts it (and every
//! connection task) and removes the socket file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use crate::protocol::{self, HEADER_LEN, MAX_CMD_LEN};
use crate::socket::{ResolvedSocket, SocketAddrSpec};

/// The version line of the multipath-tools release the fake imitates (Debian 12).
pub const VERSION_LINE: &str = "multipath-tools v0.9.4 (12/19, 2022)";

/// Length announced by [`Misbehaviour::OversizedLength`]: 64 MiB, twice the client limit.
pub const OVERSIZED_LEN: usize = 64 * 1024 * 1024;

/// Body of a [`Misbehaviour::Garbage`] reply: invalid UTF-8 with an interior NUL.
pub const GARBAGE: &[u8] = &[0xde, 0xad, 0xbe, 0xef, 0xff, 0xfe, 0x00, 0x80, 0x81, 0x82];

/// The command lines of the help text (abbreviated; constructed from the 0.9.4 `cli.c`
/// handler table and `genhelp_handler` layout, not captured from a live daemon).
const HELP_COMMANDS: &[&str] = &[
    "list|show paths",
    "list|show paths format $format",
    "list|show paths raw format $format",
    "list|show path $path",
    "list|show status",
    "list|show daemon",
    "list|show maps|multipaths",
    "list|show maps|multipaths status",
    "list|show maps|multipaths stats",
    "list|show maps|multipaths format $format",
    "list|show maps|multipaths raw format $format",
    "list|show maps|multipaths topology",
    "list|show maps|multipaths json",
    "list|show topology",
    "list|show map|multipath $map topology",
    "list|show map|multipath $map json",
    "list|show config",
    "list|show blacklist",
    "list|show devices",
    "list|show wildcards",
    "add path $path",
    "remove|del path $path",
    "add map|multipath $map",
    "remove|del map|multipath $map",
    "switch|switchgroup map|multipath $map group $group",
    "reconfigure",
    "suspend map|multipath $map",
    "resume map|multipath $map",
    "resize map|multipath $map",
    "reload map|multipath $map",
    "reinstate path $path",
    "fail path $path",
    "quit|exit",
    "shutdown",
];

/// multipathd 0.9.4's reply to a command it cannot parse: `<cmd>: not found`, the version
/// line, `CLI commands reference:` and one line per command (abbreviated here).
pub fn help_text(cmd: &str) -> String {
    let mut text = format!(
        "{cmd}: not found\n{VERSION_LINE}\n{}\n",
        protocol::HELP_MARKER
    );
    for line in HELP_COMMANDS {
        text.push(' ');
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Ways the fake daemon misbehaves, for every command until changed (except `FailOnce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Wait this long before sending the normal reply.
    Slow(Duration),
    /// Announce the normal reply's length, send half of it, close.
    Truncated,
    /// Announce [`OVERSIZED_LEN`] bytes, then send nothing and keep the connection open.
    OversizedLength,
    /// Announce a length of 0, then close.
    ZeroLength,
    /// Reply `fail\n`.
    Fail,
    /// Reply `fail\n` once, then behave normally (the misbehaviour clears itself).
    FailOnce,
    /// Reply with [`GARBAGE`] (correctly framed).
    Garbage,
    /// Reply with the help text, as for an unknown command.
    HelpText,
    /// Read the command, then close without replying.
    CloseWithoutReply,
}

/// Computes a reply from the command; `None` falls through to the scripted replies.
pub type ReplyHandler = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// Binding the listening socket failed (e.g. the path exists already).
    #[error("cannot listen on {socket} for the fake multipathd")]
    Bind {
        /// The socket address.
        socket: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The mutable script and the record of received commands.
#[derive(Default)]
struct FakeState {
    replies: HashMap<String, String>,
    misbehaviour: Option<Misbehaviour>,
    handler: Option<ReplyHandler>,
    commands: Vec<String>,
}

/// A cloneable handle on the fake's script; also reachable through [`FakeHandle`]'s methods.
#[derive(Clone, Default)]
pub struct FakeController {
    state: Arc<Mutex<FakeState>>,
}

impl fmt::Debug for FakeController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("FakeController")
            .field("replies", &state.replies.keys().collect::<Vec<_>>())
            .field("misbehaviour", &state.misbehaviour)
            .field("handler", &state.handler.is_some())
            .field("commands", &state.commands.len())
            .finish()
    }
}

impl FakeController {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panic in a test thread must not take the fake down with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Scripts the reply text (without NUL; e.g. `ok\n` or JSON) for a command. The command
    /// is matched after trimming surrounding whitespace.
    pub fn set_reply(&self, cmd: impl Into<String>, reply: impl Into<String>) {
        let cmd = cmd.into().trim().to_owned();
        self.lock().replies.insert(cmd, reply.into());
    }

    /// Removes a scripted reply (the command then gets the help text).
    pub fn remove_reply(&self, cmd: &str) {
        self.lock().replies.remove(cmd.trim());
    }

    /// Sets (or with `None` clears) the misbehaviour.
    pub fn set_misbehaviour(&self, misbehaviour: Option<Misbehaviour>) {
        self.lock().misbehaviour = misbehaviour;
    }

    /// Installs a callback consulted before the scripted replies. It runs outside the lock,
    /// so it may use this controller.
    pub fn set_handler(&self, handler: impl Fn(&str) -> Option<String> + Send + Sync + 'static) {
        self.lock().handler = Some(Arc::new(handler));
    }

    /// Removes the callback.
    pub fn clear_handler(&self) {
        self.lock().handler = None;
    }

    /// Every command received so far, in order (NUL stripped, as sent).
    pub fn commands(&self) -> Vec<String> {
        self.lock().commands.clone()
    }

    /// Forgets the recorded commands.
    pub fn clear_commands(&self) {
        self.lock().commands.clear();
    }

    /// Records `cmd` and decides what to send.
    fn respond(&self, cmd: &str) -> Action {
        let (handler, misbehaviour) = {
            let mut state = self.lock();
            state.commands.push(cmd.to_owned());
            let misbehaviour = state.misbehaviour;
            if misbehaviour == Some(Misbehaviour::FailOnce) {
                state.misbehaviour = None;
            }
            (state.handler.clone(), misbehaviour)
        };
        let normal = || {
            handler
                .as_ref()
                .and_then(|h| h(cmd))
                .or_else(|| self.lock().replies.get(cmd.trim()).cloned())
                .unwrap_or_else(|| help_text(cmd))
                .into_bytes()
        };
        match misbehaviour {
            None => Action::Reply(normal()),
            Some(Misbehaviour::Slow(delay)) => Action::Slow(delay, normal()),
            Some(Misbehaviour::Truncated) => Action::Truncated(normal()),
            Some(Misbehaviour::OversizedLength) => Action::Oversized,
            Some(Misbehaviour::ZeroLength) => Action::ZeroLength,
            Some(Misbehaviour::Fail | Misbehaviour::FailOnce) => Action::Reply(b"fail\n".to_vec()),
            Some(Misbehaviour::Garbage) => Action::Reply(GARBAGE.to_vec()),
            Some(Misbehaviour::HelpText) => Action::Reply(help_text(cmd).into_bytes()),
            Some(Misbehaviour::CloseWithoutReply) => Action::Close,
        }
    }
}

/// What the connection task does with one command.
enum Action {
    Reply(Vec<u8>),
    Slow(Duration, Vec<u8>),
    Truncated(Vec<u8>),
    Oversized,
    ZeroLength,
    Close,
}

/// Starts fake multipathd servers.
#[derive(Debug)]
pub struct FakeMultipathd;

impl FakeMultipathd {
    /// Listens on a path socket (which must not exist yet).
    ///
    /// # Panics
    /// If called outside a Tokio runtime with I/O enabled.
    pub fn start(path: impl Into<PathBuf>) -> Result<FakeHandle, FakeError> {
        Self::start_on(ResolvedSocket::Path(path.into()))
    }

    /// Listens on an abstract socket (name without the leading NUL). Abstract names are per
    /// network namespace and vanish with the listener.
    ///
    /// # Panics
    /// If called outside a Tokio runtime with I/O enabled.
    pub fn start_abstract(name: impl Into<Vec<u8>>) -> Result<FakeHandle, FakeError> {
        Self::start_on(ResolvedSocket::Abstract(name.into()))
    }

    fn start_on(socket: ResolvedSocket) -> Result<FakeHandle, FakeError> {
        let listener = socket
            .to_socket_addr()
            .and_then(|addr| UnixListener::bind_addr(&addr.into()))
            .map_err(|source| FakeError::Bind {
                socket: socket.to_string(),
                source,
            })?;
        let controller = FakeController::default();
        let task = tokio::spawn(serve(listener, controller.clone()));
        debug!(%socket, "fake multipathd listening");
        Ok(FakeHandle {
            controller,
            socket,
            task,
        })
    }
}

/// A running fake multipathd. Dropping it stops the server and removes the socket file.
#[derive(Debug)]
pub struct FakeHandle {
    controller: FakeController,
    socket: ResolvedSocket,
    task: JoinHandle<()>,
}

impl FakeHandle {
    /// The address a [`crate::MultipathdClient`] should use.
    pub fn socket_spec(&self) -> SocketAddrSpec {
        self.socket.clone().into()
    }

    /// The socket path, for a path socket.
    pub fn path(&self) -> Option<&Path> {
        match &self.socket {
            ResolvedSocket::Path(path) => Some(path),
            ResolvedSocket::Abstract(_) => None,
        }
    }

    /// A cloneable controller for the script (e.g. to hand to another task).
    pub fn controller(&self) -> FakeController {
        self.controller.clone()
    }

    /// See [`FakeController::set_reply`].
    pub fn set_reply(&self, cmd: impl Into<String>, reply: impl Into<String>) {
        self.controller.set_reply(cmd, reply);
    }

    /// See [`FakeController::remove_reply`].
    pub fn remove_reply(&self, cmd: &str) {
        self.controller.remove_reply(cmd);
    }

    /// See [`FakeController::set_misbehaviour`].
    pub fn set_misbehaviour(&self, misbehaviour: Option<Misbehaviour>) {
        self.controller.set_misbehaviour(misbehaviour);
    }

    /// See [`FakeController::set_handler`].
    pub fn set_handler(&self, handler: impl Fn(&str) -> Option<String> + Send + Sync + 'static) {
        self.controller.set_handler(handler);
    }

    /// See [`FakeController::commands`].
    pub fn commands(&self) -> Vec<String> {
        self.controller.commands()
    }

    /// See [`FakeController::clear_commands`].
    pub fn clear_commands(&self) {
        self.controller.clear_commands();
    }
}

impl Drop for FakeHandle {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
        if let ResolvedSocket::Path(path) = &self.socket
            && let Err(err) = std::fs::remove_file(path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            warn!(path = %path.display(), error = %err, "cannot remove fake multipathd socket");
        }
    }
}

async fn serve(listener: UnixListener, controller: FakeController) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _addr)) => {
                    connections.spawn(serve_connection(stream, controller.clone()));
                }
                Err(err) => {
                    warn!(error = %err, "fake multipathd accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves commands on one connection until the client closes it (connections are reusable,
/// as with the real daemon) or a misbehaviour ends it.
async fn serve_connection(mut stream: UnixStream, controller: FakeController) {
    loop {
        let mut header = [0u8; HEADER_LEN];
        if stream.read_exact(&mut header).await.is_err() {
            return;
        }
        // Like multipathd: an empty or over-long command closes the connection.
        let Ok(len) = protocol::decode_len_below(header, MAX_CMD_LEN + 1) else {
            return;
        };
        let mut body = vec![0u8; len];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let body = body.strip_suffix(&[0]).unwrap_or(&body);
        let cmd = String::from_utf8_lossy(body).into_owned();
        debug!(command = %cmd, "fake multipathd received");
        let keep_open = match controller.respond(&cmd) {
            Action::Reply(reply) => send(&mut stream, &protocol::encode_frame(&reply)).await,
            Action::Slow(delay, reply) => {
                tokio::time::sleep(delay).await;
                send(&mut stream, &protocol::encode_frame(&reply)).await
            }
            Action::Truncated(reply) => {
                let frame = protocol::encode_frame(&reply);
                let cut = HEADER_LEN + (frame.len() - HEADER_LEN) / 2;
                send(&mut stream, &frame[..cut]).await;
                false
            }
            Action::Oversized => {
                if send(&mut stream, &OVERSIZED_LEN.to_ne_bytes()).await {
                    // Hold the connection: a client that tried to read 64 MiB would hang
                    // here until its timeout instead of failing fast.
                    let mut sink = [0u8; 64];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                }
                false
            }
            Action::ZeroLength => {
                send(&mut stream, &0usize.to_ne_bytes()).await;
                false
            }
            Action::Close => false,
        };
        if !keep_open {
            return;
        }
    }
}

/// Writes bytes; `false` if the client went away.
async fn send(stream: &mut UnixStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ReplyClass, classify_reply};

    #[test]
    fn help_text_is_classified_as_usage() {
        let text = help_text("frobnicate");
        assert!(text.starts_with("frobnicate: not found\nmultipath-tools v0.9.4"));
        assert_eq!(
            classify_reply(&text),
            ReplyClass::Usage {
                message: "frobnicate: not found"
            }
        );
    }

    #[test]
    fn fail_once_clears_itself_and_commands_are_recorded() {
        let controller = FakeController::default();
        controller.set_reply("show daemon", "pid 1 idle\n");
        controller.set_misbehaviour(Some(Misbehaviour::FailOnce));
        assert!(matches!(controller.respond("show daemon"), Action::Reply(r) if r == b"fail\n"));
        assert!(
            matches!(controller.respond("show daemon"), Action::Reply(r) if r == b"pid 1 idle\n")
        );
        assert!(
            matches!(controller.respond("bogus"), Action::Reply(r) if r.starts_with(b"bogus: not found"))
        );
        assert_eq!(
            controller.commands(),
            ["show daemon", "show daemon", "bogus"]
        );
    }

    #[test]
    fn handler_takes_precedence_and_may_fall_through() {
        let controller = FakeController::default();
        controller.set_reply("show maps json", "scripted");
        let inner = controller.clone();
        controller.set_handler(move |cmd| {
            // May use the controller: it is not locked while the handler runs.
            (cmd == "show daemon")
                .then(|| format!("pid 1 idle ({} commands)\n", inner.commands().len()))
        });
        assert!(
            matches!(controller.respond("show daemon"), Action::Reply(r) if r == b"pid 1 idle (1 commands)\n")
        );
        assert!(
            matches!(controller.respond("show maps json"), Action::Reply(r) if r == b"scripted")
        );
    }
}
