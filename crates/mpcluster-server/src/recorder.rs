//! The event recorder: one server in the cluster records the matrix's changes into the event
//! history ([`mpcluster_config::events`]).
//!
//! Every server runs a recorder; the one holding the recorder lease (a document taken and
//! renewed with compare-and-swap, [`mpcluster_config::events::lead`]) records. After each
//! status recomputation the leader compares the matrix with the recorded state stored in the
//! log's head and appends the changes, in one compare-and-swap with the new recorded state, so
//! a leader change neither repeats nor skips a change. A server that loses the lease (the
//! store unreachable, another server took over after it expired) stops recording at once.
//!
//! The leadership is published ([`RecorderHandle::leader`]) for the notifier: only the
//! recording server sends notifications.

use std::sync::Arc;
use std::time::Duration;

use mpcluster_config::events::{lead, record_observation, resign};
use mpcluster_config::unix_now;
use mpcluster_core::events::Retention;
use mpcluster_store::ClusterStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cache::StatusCache;
use crate::error::chain;
use crate::metrics::Metrics;

/// How the recorder works.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// This server's id in the lease (host name and process id by default).
    pub id: String,
    /// The lease's lifetime in seconds; renewed every third of it. A dead leader is replaced
    /// at most this long after its last renewal.
    pub lease_ttl: i64,
    /// How much history is kept.
    pub retention: Retention,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        RecorderConfig {
            id: format!("{host}:{}", std::process::id()),
            lease_ttl: 15,
            retention: Retention::default(),
        }
    }
}

/// The running recorder.
pub struct RecorderHandle {
    /// Whether this server records (and so notifies) now.
    pub leader: watch::Receiver<bool>,
    /// The task; abort it to stop (the lease then runs out), or see [`RecorderHandle::stop`].
    pub task: JoinHandle<()>,
    store: Arc<dyn ClusterStore>,
    id: String,
}

impl std::fmt::Debug for RecorderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderHandle")
            .field("id", &self.id)
            .field("leader", &*self.leader.borrow())
            .finish_non_exhaustive()
    }
}

impl RecorderHandle {
    /// Stop recording and give the lease up, so another server takes over at once.
    pub async fn stop(self) {
        self.task.abort();
        if let Err(e) = resign(self.store.as_ref(), &self.id).await {
            tracing::warn!(error = %chain(&e), "cannot give the recorder lease up");
        }
    }
}

/// Start the recorder.
pub fn spawn_recorder(
    store: Arc<dyn ClusterStore>,
    cache: StatusCache,
    config: RecorderConfig,
    metrics: Metrics,
) -> RecorderHandle {
    let (tx, rx) = watch::channel(false);
    let id = config.id.clone();
    let task = tokio::spawn(run(store.clone(), cache, config, metrics, tx));
    RecorderHandle {
        leader: rx,
        task,
        store,
        id,
    }
}

async fn run(
    store: Arc<dyn ClusterStore>,
    mut cache: StatusCache,
    config: RecorderConfig,
    metrics: Metrics,
    leader_tx: watch::Sender<bool>,
) {
    let renew = Duration::from_secs((config.lease_ttl as u64 / 3).max(1));
    let mut timer = tokio::time::interval(renew);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_recorded: Option<u64> = None;
    let mut lease_until = 0i64;
    let mut last_error: Option<String> = None;
    loop {
        let mut renew_now = false;
        tokio::select! {
            _ = timer.tick() => renew_now = true,
            alive = cache.changed() => if !alive { return },
        }
        let now = unix_now();
        // Renew on the timer, and whenever the lease is about to run out.
        if renew_now || now + 2 >= lease_until {
            let was = *leader_tx.borrow();
            let leading = match lead(store.as_ref(), &config.id, now, config.lease_ttl).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "cannot renew the recorder lease");
                    false
                }
            };
            lease_until = if leading { now + config.lease_ttl } else { 0 };
            if leading != was {
                tracing::info!(id = %config.id, leading, "event recorder leadership changed");
                let _ = leader_tx.send(leading);
            }
        }
        if !*leader_tx.borrow() {
            continue;
        }
        let Some(view) = cache.latest() else { continue };
        // Only fresh pictures: the last good view while the store fails is not news.
        if view.store_error.is_some() || last_recorded == Some(view.generation) {
            continue;
        }
        match record_observation(
            store.as_ref(),
            view.computed_at,
            &view.assembly.status.luns,
            config.retention,
        )
        .await
        {
            Ok(events) => {
                last_recorded = Some(view.generation);
                if last_error.take().is_some() {
                    tracing::info!("event recording works again");
                }
                metrics.count_events(&events);
                for e in &events {
                    tracing::info!(seq = e.seq, "{}", e.kind.describe());
                }
            }
            Err(e) => {
                let message = chain(&e);
                if last_error.as_deref() != Some(&message) {
                    tracing::warn!(error = %message, "cannot record events");
                }
                metrics.count_event_error();
                last_error = Some(message);
            }
        }
    }
}
