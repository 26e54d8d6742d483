//! The notifier: while this server leads the event recording, it turns the event log into
//! notifications ([`mpcluster_core::notify`]) and sends them ([`send`]).
//!
//! Entry point: [`spawn_notifier`]. Every [`NotifierSettings::tick`] (and when the status
//! changes) the leader
//!
//! 1. reads the events after the outbox's cursor, the LUNs flapping now, the targets and the
//!    cached status (LUN states and hints), and advances the outbox
//!    ([`mpcluster_core::notify::advance`]) in one compare-and-swap
//!    ([`mpcluster_config::notify::update_outbox`]): cursor, groups and new deliveries
//!    together, so a leader change loses nothing and repeats nothing;
//! 2. claims the deliveries that are due (another server skips a claimed one until its claim
//!    runs out), sends each and records the result (sent: removed; failed: retried with
//!    back-off, dropped after a day with a warning).
//!
//! Delivery is at least once: a server that crashes between sending a message and recording
//! it leaves it claimed, and after the claim runs out the next leader sends it again. Every
//! message carries its delivery id (webhook: `X-Mpcluster-Delivery` and the body's `id`; mail:
//! `Message-ID: <id@mpcluster>`; exec: the JSON's `id` and `MPCLUSTER_DELIVERY`) so a
//! receiver can drop that rare second copy.

use std::sync::Arc;
use std::time::Duration;

use mpcluster_config::events::{ChunkCache, query, read_head, recent};
use mpcluster_config::notify::update_outbox;
use mpcluster_config::{load, unix_now};
use mpcluster_core::events::{EventFilter, flapping};
use mpcluster_core::notify::{
    AdvanceInput, Delivery, NotifySettings, Settled, Target, TargetId, TargetsDoc, advance,
};
use mpcluster_store::ClusterStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cache::StatusCache;
use crate::error::chain;
use crate::metrics::Metrics;

pub mod send;

pub use send::{SendError, send};

/// Events read per step.
const EVENTS_PER_STEP: usize = 1000;
/// Deliveries claimed per step.
const CLAIMS_PER_STEP: usize = 8;

/// How the notifier runs.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// Grouping window, reminder interval, flapping rule, retries.
    pub rules: NotifySettings,
    /// Look for work this often (and whenever the status changes).
    pub tick: Duration,
    /// One send may take this long.
    pub send_timeout: Duration,
    /// This server's name in delivery claims (host name and process id).
    pub holder: String,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        NotifierSettings {
            rules: NotifySettings::default(),
            tick: Duration::from_secs(1),
            send_timeout: Duration::from_secs(10),
            holder: default_holder(),
        }
    }
}

impl NotifierSettings {
    /// The defaults, the process's flapping rule ([`mpcluster_config::events::flap_rule`],
    /// `serve --flap-changes/--flap-window`) and, from the environment (for tests and unusual
    /// set-ups), `MPCLUSTER_NOTIFY_GROUP_WINDOW` (seconds, default 10),
    /// `MPCLUSTER_NOTIFY_REMINDER` (seconds, default 14400) and `MPCLUSTER_NOTIFY_RETRY_FIRST`
    /// (seconds before the first retry, default 2). A bad value names the variable.
    pub fn from_env() -> Result<NotifierSettings, String> {
        let mut s = NotifierSettings::default();
        s.rules.flap = mpcluster_config::events::flap_rule();
        for (var, field, min, max) in [
            (
                "MPCLUSTER_NOTIFY_GROUP_WINDOW",
                &mut s.rules.group_window,
                0,
                3600,
            ),
            (
                "MPCLUSTER_NOTIFY_REMINDER",
                &mut s.rules.reminder,
                1,
                30 * 86_400,
            ),
            (
                "MPCLUSTER_NOTIFY_RETRY_FIRST",
                &mut s.rules.retry_first,
                1,
                3600,
            ),
        ] {
            if let Ok(v) = std::env::var(var) {
                *field = v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| {
                        format!("{var}={v:?}: must be a number of seconds from {min} to {max}")
                    })?;
            }
        }
        Ok(s)
    }
}

/// `<host name>-<pid>`.
pub fn default_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Start the notifier. It works only while `leader` is `true` and ends when `leader`'s sender
/// is dropped (or the handle aborted).
pub fn spawn_notifier(
    store: Arc<dyn ClusterStore>,
    cache: StatusCache,
    leader: watch::Receiver<bool>,
    metrics: Metrics,
    settings: NotifierSettings,
) -> JoinHandle<()> {
    tokio::spawn(run(store, cache, leader, metrics, settings))
}

async fn run(
    store: Arc<dyn ClusterStore>,
    mut cache: StatusCache,
    mut leader: watch::Receiver<bool>,
    metrics: Metrics,
    settings: NotifierSettings,
) {
    let chunks = ChunkCache::default();
    let mut last_error: Option<String> = None;
    loop {
        if !*leader.borrow_and_update() {
            if leader.changed().await.is_err() {
                return;
            }
            continue;
        }
        let more = match step(store.as_ref(), &cache, &chunks, &metrics, &settings).await {
            Ok(more) => {
                if last_error.take().is_some() {
                    tracing::info!("notifications work again");
                }
                more
            }
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "notification step failed; trying again");
                }
                last_error = Some(e);
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(settings.tick) => {}
            _ = cache.changed() => {}
            r = leader.changed() => if r.is_err() { return },
        }
    }
}

/// One step: advance the outbox, send what is due. `Ok(true)` when more events wait.
async fn step(
    store: &dyn ClusterStore,
    cache: &StatusCache,
    chunks: &ChunkCache,
    metrics: &Metrics,
    settings: &NotifierSettings,
) -> Result<bool, String> {
    let Some(view) = cache.latest() else {
        return Ok(false);
    };
    let targets_doc = load::<TargetsDoc>(store)
        .await
        .map_err(|e| chain(&e))?
        .value;
    let target_ids: Vec<TargetId> = targets_doc.targets.keys().cloned().collect();
    let now = unix_now();
    let mut more = false;
    // A status the store could not refresh is not the matrix now: advance only with a good one.
    if view.store_error.is_none() {
        let (outbox, _) = mpcluster_config::notify::read_outbox(store)
            .await
            .map_err(|e| chain(&e))?;
        let (events, last_seq) = match outbox.cursor {
            None => {
                let (head, _) = read_head(store).await.map_err(|e| chain(&e))?;
                (Vec::new(), head.next_seq.saturating_sub(1))
            }
            Some(cursor) => {
                let filter = EventFilter {
                    after_seq: Some(cursor),
                    ..EventFilter::default()
                };
                let page = query(store, chunks, &filter, EVENTS_PER_STEP)
                    .await
                    .map_err(|e| chain(&e))?;
                more = page.truncated;
                (page.events, page.last_seq)
            }
        };
        let rule = settings.rules.flap;
        let flaps = flapping(
            &recent(store, chunks, now, rule.window)
                .await
                .map_err(|e| chain(&e))?,
            now,
            rule,
        );
        let status = &view.assembly.status;
        let input = AdvanceInput {
            events: &events,
            last_seq,
            luns: &status.luns,
            hints: &status.hints,
            flaps: &flaps,
            targets: &target_ids,
            now,
            settings: &settings.rules,
        };
        let made = update_outbox(store, |o| advance(o, &input))
            .await
            .map_err(|e| chain(&e))?;
        for m in &made {
            tracing::info!(kind = m.kind.as_str(), id = %m.id, subject = %m.subject, "notification queued");
        }
    }
    deliver(store, &targets_doc, metrics, settings).await?;
    Ok(more)
}

/// Send what is due, one delivery at a time: claim it (so that no other server sends it
/// meanwhile), send it, record the result. At most [`CLAIMS_PER_STEP`] per step.
async fn deliver(
    store: &dyn ClusterStore,
    targets: &TargetsDoc,
    metrics: &Metrics,
    settings: &NotifierSettings,
) -> Result<(), String> {
    let ids: Vec<TargetId> = targets.targets.keys().cloned().collect();
    // A send takes at most twice the timeout (SMTP: connecting, then the dialogue).
    let ttl = i64::try_from(settings.send_timeout.as_secs()).unwrap_or(60) * 2 + 10;
    let holder = settings.holder.as_str();
    for _ in 0..CLAIMS_PER_STEP {
        let now = unix_now();
        let (claimed, pending): (Vec<Delivery>, usize) = update_outbox(store, |o| {
            (
                o.claim_due(holder, now, now + ttl, &ids, 1),
                o.deliveries.len(),
            )
        })
        .await
        .map_err(|e| chain(&e))?;
        metrics.set_notifications_pending(pending as u64);
        let Some(d) = claimed.into_iter().next() else {
            return Ok(());
        };
        let Some(target) = targets.targets.get(&d.target) else {
            continue;
        };
        let result = send(target, &d.message, settings.send_timeout)
            .await
            .map_err(|e| chain(&e));
        metrics.notification(d.target.as_str(), d.message.kind.as_str(), result.is_ok());
        let done = unix_now();
        let error = result.as_ref().err().cloned();
        let (settled, pending) = update_outbox(store, |o| {
            (
                o.settle(&d.id, result.clone(), done, &settings.rules),
                o.deliveries.len(),
            )
        })
        .await
        .map_err(|e| chain(&e))?;
        metrics.set_notifications_pending(pending as u64);
        match settled {
            Settled::Sent => {
                tracing::info!(delivery = %d.id, target = %d.target, "notification sent");
            }
            Settled::Retry(at) => {
                tracing::warn!(delivery = %d.id, target = %d.target, error = %error.unwrap_or_default(),
                    retry_in = at - done, "notification not sent; will retry");
            }
            Settled::GaveUp => {
                tracing::error!(delivery = %d.id, target = %d.target, error = %error.unwrap_or_default(),
                    subject = %d.message.subject, "notification dropped: it kept failing for a day");
            }
            Settled::Unknown => {}
        }
    }
    Ok(())
}

/// Send a test message to target `target` now. `Ok(())` when it was accepted.
pub async fn send_test(
    target_id: &TargetId,
    target: &Target,
    timeout: Duration,
) -> Result<(), SendError> {
    let m = mpcluster_core::notify::test_message(target_id, unix_now());
    send(target, &m, timeout).await
}
