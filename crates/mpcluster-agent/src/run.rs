//! The agent loop: keep this node's membership alive, collect every `interval`, broadcast the
//! summary and the per-path detail when they change (or every `refresh`), publish collection
//! failures, and leave the cluster cleanly on shutdown.
//!
//! Entry points: [`run`]; [`run_reporting`] also reports whether publishing works (a server
//! running the agent in-process shows a node that cannot publish as such, see
//! [`PublishHealth`]).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mpcluster_config::unix_now;
use mpcluster_core::broadcast::MapSummary;
use mpcluster_core::payload::{BroadcastPolicy, Decision, DetailPolicy};
use mpcluster_core::plan::ApplyPlan;
use mpcluster_core::snapshot::{PublishError, doc_names, kv_keys};
use mpcluster_core::{MapState, NodeName, Wwid, error_chain as chain};
use mpcluster_store::{ClusterStore, MembershipHandle, StoreError, StoreEvent};
use serde_json::json;
use tokio::sync::watch;

use crate::apply::{Applier, ApplyOutcome};
use crate::client::MultipathdClient;
use crate::collect::{CollectError, Collected, Collector};

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This node's name.
    pub node: NodeName,
    /// Collection interval (missed ticks are skipped, not bunched).
    pub interval: Duration,
    /// Republish unchanged values this often.
    pub refresh: Duration,
    /// Membership TTL: the node reads offline this long after the agent stops keeping alive.
    pub member_ttl: Duration,
    /// The sysfs root for map sizes (`/sys`).
    pub sysfs_root: PathBuf,
    /// Apply the cluster configuration under this root (`/` in production); `None` leaves
    /// multipath's configuration alone.
    pub apply_root: Option<PathBuf>,
    /// Retry a failed apply this often.
    pub apply_retry: Duration,
    /// Have the installed `multipath -t` judge every candidate configuration before
    /// multipathd sees it (always for the agent command; the demo turns it off on a machine
    /// without multipath-tools).
    pub parser_check: bool,
    /// Collect at once on kernel uevents of the devices collected from (a path failed or
    /// reinstated, a map reloaded, a path added or removed), this long after the first event
    /// of a burst; `None`: collect on the interval only. Polling goes on either way.
    pub uevents: Option<Duration>,
}

impl AgentConfig {
    /// Defaults: 2 s interval, 60 s refresh, 15 s membership TTL, `/sys`.
    pub fn new(node: NodeName) -> Self {
        AgentConfig {
            node,
            interval: Duration::from_secs(2),
            refresh: mpcluster_core::payload::DEFAULT_REFRESH,
            member_ttl: mpcluster_store::DEFAULT_MEMBER_TTL,
            sysfs_root: PathBuf::from("/sys"),
            apply_root: None,
            apply_retry: Duration::from_secs(10),
            parser_check: true,
            uevents: None,
        }
    }
}

/// The per-node state of the loop (what was last published), kept apart from the I/O so a
/// failed write only means "try again next tick".
struct Publisher {
    node: NodeName,
    health: BroadcastPolicy,
    detail: DetailPolicy,
    /// The collection error last published (`None`: cleared / never set).
    collect_error: Option<String>,
    collect_error_at: i64,
    refresh_secs: i64,
    /// The last maps published, to demote to `unknown` when collection fails.
    last_maps: std::collections::BTreeMap<Wwid, MapSummary>,
}

impl Publisher {
    async fn put(
        &self,
        store: &dyn ClusterStore,
        key: &str,
        decision: &Decision,
    ) -> Result<bool, StoreError> {
        match decision {
            Decision::Publish(v) => store.put(key, &self.node, Some(v)).await.map(|()| true),
            Decision::Clear => store.put(key, &self.node, None).await.map(|()| true),
            Decision::Unchanged => Ok(false),
        }
    }

    async fn publish_collect_error(
        &mut self,
        store: &dyn ClusterStore,
        now: i64,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let due = now.saturating_sub(self.collect_error_at) >= self.refresh_secs;
        if error == self.collect_error && !(error.is_some() && due) {
            return Ok(());
        }
        let value = error
            .as_ref()
            .map(|e| json!({ "error": e, "time": now }).to_string());
        store
            .put(kv_keys::COLLECT, &self.node, value.as_deref())
            .await?;
        self.collect_error = error;
        self.collect_error_at = now;
        Ok(())
    }

    /// One tick's worth of publishing.
    async fn tick(
        &mut self,
        store: &dyn ClusterStore,
        result: Result<std::sync::Arc<Collected>, CollectError>,
    ) -> Result<(), StoreError> {
        let now = unix_now();
        match result {
            Ok(collected) => {
                let maps = &collected.summaries;
                let report = &collected.report;
                let health = self.health.decide(now, maps);
                if let Err(e) = self.put(store, kv_keys::HEALTH, &health).await {
                    self.health.invalidate();
                    return Err(e);
                }
                if self.last_maps != *maps {
                    self.last_maps = maps.clone();
                }
                let detail = self.detail.decide(now, report);
                if let Err(e) = self.put(store, kv_keys::DETAIL, &detail).await {
                    self.detail.invalidate();
                    return Err(e);
                }
                self.publish_collect_error(store, now, None).await
            }
            Err(e) => {
                let message = chain(&e);
                if self.collect_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, hint = e.hint().unwrap_or(""), "collection failed");
                }
                // We cannot tell how the maps are now: never leave an old "optimal" standing.
                // Known maps are republished as `unknown`; with none known, nothing is claimed.
                let unknown: std::collections::BTreeMap<Wwid, MapSummary> = self
                    .last_maps
                    .keys()
                    .map(|w| {
                        (
                            w.clone(),
                            MapSummary {
                                state: MapState::Unknown,
                                paths_active: None,
                                paths_total: None,
                                transport: None,
                                size: None,
                            },
                        )
                    })
                    .collect();
                let health = self.health.decide(now, &unknown);
                if let Err(err) = self.put(store, kv_keys::HEALTH, &health).await {
                    self.health.invalidate();
                    return Err(err);
                }
                self.publish_collect_error(store, now, Some(message)).await
            }
        }
    }
}

/// Publishes the outcome of config applies as `multipath-apply`.
struct ApplyReporter {
    node: NodeName,
    /// The error last published; `Some("")` forces a clear at start.
    last: Option<String>,
}

impl ApplyReporter {
    async fn report(&mut self, store: &dyn ClusterStore, error: Option<String>) {
        if error == self.last {
            return;
        }
        let value = error
            .as_ref()
            .map(|e| json!({ "error": e, "time": unix_now() }).to_string());
        match store
            .put(kv_keys::APPLY, &self.node, value.as_deref())
            .await
        {
            Ok(()) => self.last = error,
            Err(e) => tracing::warn!(error = %chain(&e), "cannot publish the apply status"),
        }
    }
}

/// Publishes what the next apply would change as `multipath-plan`, when it changed (its time
/// aside).
struct PlanReporter {
    node: NodeName,
    /// The plan last published, its time zeroed.
    last: Option<ApplyPlan>,
}

impl PlanReporter {
    async fn report(&mut self, store: &dyn ClusterStore, plan: Option<&ApplyPlan>) {
        let Some(plan) = plan else { return };
        let mut key = plan.clone();
        key.time = 0;
        if self.last.as_ref() == Some(&key) {
            return;
        }
        match store
            .put(kv_keys::PLAN, &self.node, Some(&plan.encode()))
            .await
        {
            Ok(()) => self.last = Some(key),
            Err(e) => tracing::warn!(error = %chain(&e), "cannot publish the apply plan"),
        }
    }
}

/// Join the cluster (retrying while the store is unavailable, until `shutdown`).
async fn join_with_retry(
    store: &dyn ClusterStore,
    config: &AgentConfig,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Option<MembershipHandle> {
    let mut delay = Duration::from_millis(500);
    loop {
        match store.join(&config.node, config.member_ttl).await {
            Ok(h) => return Some(h),
            Err(e) => {
                tracing::warn!(error = %chain(&e), "cannot join the cluster yet; retrying");
            }
        }
        tokio::select! {
            _ = &mut *shutdown => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Whether the agent's writes to the store work: `None` while they do, the failure (the last
/// error, and since when) while they do not. Nobody else can know: a store that refuses the
/// agent's writes still serves its old broadcast, which looks fresh for up to the staleness
/// limit (180 s). The server that runs the agent in-process hands the receiver to its status
/// cache, which then shows this node's cells `unknown` with a `publish-error`. (On etcd the
/// membership lease covers it: an agent that cannot reach the store loses its lease.)
pub type PublishHealth = watch::Sender<Option<PublishError>>;

/// Record one tick's publishing outcome in `health` (unchanged values notify nobody).
fn report_publish(health: &PublishHealth, outcome: Result<(), String>) {
    health.send_if_modified(|current| match (outcome, current.as_mut()) {
        (Ok(()), None) => false,
        (Ok(()), Some(_)) => {
            *current = None;
            true
        }
        (Err(error), Some(failure)) => {
            if failure.error == error {
                return false;
            }
            failure.error = error;
            true
        }
        (Err(error), None) => {
            *current = Some(PublishError {
                error,
                since: unix_now(),
            });
            true
        }
    });
}

/// Run the agent until `shutdown` resolves; then leave the cluster (the node reads offline at
/// once) and return.
pub async fn run(
    store: Arc<dyn ClusterStore>,
    client: MultipathdClient,
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) {
    run_reporting(store, client, config, watch::channel(None).0, shutdown).await;
}

/// [`run`], keeping `publish` up to date with whether the agent's writes to the store work
/// ([`PublishHealth`]).
pub async fn run_reporting(
    store: Arc<dyn ClusterStore>,
    client: MultipathdClient,
    config: AgentConfig,
    publish: PublishHealth,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let Some(membership) = join_with_retry(store.as_ref(), &config, &mut shutdown).await else {
        return;
    };
    tracing::info!(node = %config.node, store = %store.describe(), "agent running");
    let mut publisher = Publisher {
        node: config.node.clone(),
        health: BroadcastPolicy::new(config.refresh),
        detail: DetailPolicy::new(config.refresh),
        collect_error: None,
        collect_error_at: 0,
        refresh_secs: i64::try_from(config.refresh.as_secs()).unwrap_or(i64::MAX),
        last_maps: Default::default(),
    };
    // An earlier run's collection error must not linger: clear it at start.
    publisher.collect_error = Some(String::new());

    let mut interval = tokio::time::interval(config.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut store_failing = false;

    let mut collector = Collector::new(client.clone(), config.sysfs_root.clone(), config.refresh);
    let mut events = store.subscribe().await;
    let mut applier = config.apply_root.clone().map(|root| {
        let applier = Applier::new(root).for_node(config.node.clone());
        if config.parser_check {
            applier
        } else {
            applier.without_parser_check()
        }
    });
    let mut apply_reporter = ApplyReporter {
        node: config.node.clone(),
        last: Some(String::new()),
    };
    let mut plan_reporter = PlanReporter {
        node: config.node.clone(),
        last: None,
    };
    // Apply at start, then on every configuration change, and retry while failing or
    // waiting for an acceptance (the maps may change meanwhile).
    let mut apply_due = applier.is_some();
    let mut apply_retry = tokio::time::interval(config.apply_retry);
    apply_retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut apply_failing = false;
    // Kernel uevents wake the loop early; without the socket the interval alone drives it.
    let uevents = config
        .uevents
        .and_then(crate::uevent::UeventListener::spawn);
    let uevent_wake = async || match &uevents {
        Some(listener) => listener.wake().notified().await,
        None => std::future::pending().await,
    };

    loop {
        let collect_now = tokio::select! {
            _ = &mut shutdown => break,
            _ = interval.tick() => true,
            () = uevent_wake() => true,
            ev = events.recv(), if applier.is_some() => {
                match ev {
                    Some(StoreEvent::Document { name }) if [doc_names::CONFIG, doc_names::OVERRIDES, doc_names::STORAGE, doc_names::ACCEPT].contains(&name.as_str()) => apply_due = true,
                    Some(StoreEvent::Resync) => apply_due = true,
                    _ => {}
                }
                false
            }
            _ = apply_retry.tick(), if apply_failing => { apply_due = true; false }
        };
        if apply_due && let Some(applier) = applier.as_mut() {
            apply_due = false;
            let result = applier.apply(store.as_ref(), &client).await;
            plan_reporter.report(store.as_ref(), applier.plan()).await;
            match result {
                Ok(ApplyOutcome {
                    waiting: Some(summary),
                    ..
                }) => {
                    if !apply_failing {
                        tracing::warn!(plan = %summary, "the apply waits for an acceptance: mpcluster config accept --node {}", config.node);
                    }
                    // Not a failure (nothing was tried), but look again: maps come and go.
                    apply_failing = true;
                    apply_reporter.report(store.as_ref(), None).await;
                }
                Ok(outcome) => {
                    if !outcome.changed.is_empty() || outcome.reconfigured {
                        tracing::info!(changed = ?outcome.changed, reconfigured = outcome.reconfigured, "configuration applied");
                    }
                    apply_failing = false;
                    apply_reporter.report(store.as_ref(), None).await;
                }
                Err(e) => {
                    let message = chain(&e);
                    if !apply_failing {
                        tracing::warn!(error = %message, "applying the configuration failed; will retry");
                    }
                    apply_failing = true;
                    apply_reporter.report(store.as_ref(), Some(message)).await;
                }
            }
        }
        if !collect_now {
            continue;
        }
        let result = collector.collect().await;
        if let (Some(listener), Ok(collected)) = (&uevents, &result) {
            listener.set_known(crate::uevent::known_devices(&collected.report));
        }
        match publisher.tick(store.as_ref(), result).await {
            Ok(()) => {
                if store_failing {
                    tracing::info!("store writable again");
                    store_failing = false;
                }
                report_publish(&publish, Ok(()));
            }
            Err(e) => {
                let message = chain(&e);
                if !store_failing {
                    tracing::warn!(error = %message, "cannot publish to the store; will retry every tick");
                    store_failing = true;
                }
                report_publish(&publish, Err(message));
            }
        }
    }
    if let Err(e) = membership.leave().await {
        tracing::warn!(error = %chain(&e), "leaving the cluster failed; the membership expires by TTL");
    }
    tracing::info!(node = %config.node, "agent stopped");
}
