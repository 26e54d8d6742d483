//! Telling systemd how `mpcluster serve` is doing (`Type=notify` in mpcluster-server.service),
//! so units ordered after it start once it answers.
//!
//! Entry points: [`ready_when_answering`] (spawned once the listener is bound) and
//! [`stopping`]. Both do nothing unless systemd set `NOTIFY_SOCKET`.

use std::time::Duration;

use mpcluster_server::cache::StatusCache;
use sd_notify::NotifyState;

/// How long READY waits for the first status after the listener is bound. The listener
/// already accepts connections (they queue until the server loop runs); waiting for the first
/// status means clients started after us get a matrix rather than a 503, but a store that is
/// down must not hold the unit in "activating" until systemd's start timeout kills it.
pub const FIRST_STATUS_WAIT: Duration = Duration::from_secs(10);

fn under_systemd() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Under systemd: send `READY=1` once the status cache has computed its first status or the
/// store has answered with an error, at the latest after [`FIRST_STATUS_WAIT`]. Call it once
/// the listener is bound. Returns the task (`None` when not under systemd).
pub fn ready_when_answering(
    cache: StatusCache,
    listening: String,
) -> Option<tokio::task::JoinHandle<()>> {
    if !under_systemd() {
        return None;
    }
    Some(tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + FIRST_STATUS_WAIT;
        let status = loop {
            if cache.latest().is_some() {
                break format!("serving {listening}");
            }
            if let Some(e) = cache.startup_error() {
                break format!("serving {listening}; the store does not answer: {e}");
            }
            if tokio::time::Instant::now() >= deadline {
                break format!("serving {listening}; no status computed yet");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }))
}

/// Under systemd: send `STOPPING=1`.
pub fn stopping() {
    if under_systemd() {
        notify(&[NotifyState::Stopping]);
    }
}
