//! The event history in the cluster store: recording, the audit trail, leadership, reading.
//!
//! Layout (documents, so every backend holds it the same way):
//! - `events` ([`EVENTS_DOC`]): the log's head ([`EventLog`]): next sequence number, the
//!   recorded matrix state (gzip + base64: a 256-node matrix is mostly `optimal 2/2`), the
//!   newest events and the index of sealed chunks.
//! - `events-<first seq>`: a sealed chunk of [`CHUNK_EVENTS`] events (JSON array), written
//!   before the head that lists it and deleted after the head that no longer does.
//! - `events-leader` ([`LEADER_DOC`]): who records ([`Lease`]).
//!
//! Every change to the head is one compare-and-swap on its digest ([`update_head`]), so two
//! writers never both append the same change: the recorded state travels in the same document
//! as the events derived from it. A recorder that loses the swap re-reads and diffs against
//! what the other one recorded. Leadership only keeps two servers with slightly different
//! views from recording each other's flickers; correctness does not depend on it.
//!
//! The audit trail: every successful [`crate::edit`] appends a configuration event naming the
//! actor ([`as_actor`] around a request; [`set_default_actor`] for a process), the digests
//! before and after and the document's own summary of what changed ([`crate::Document::changes`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::events::{
    CHUNK_EVENTS, ChunkRef, Event, EventFilter, EventKind, EventLog, EventLogError, FlapRule,
    Recorded, Retention, observe,
};
use mpcluster_core::rollup::LunStatus;
use mpcluster_store::{ClusterStore, Expect, StoreError};
use serde::{Deserialize, Serialize};

/// The log head document.
pub const EVENTS_DOC: &str = "events";
/// The recorder lease document.
pub const LEADER_DOC: &str = "events-leader";
/// How often a compare-and-swap on the head is tried before giving up.
const HEAD_ATTEMPTS: u32 = 30;

/// Reading or writing the event log failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The store failed.
    #[error("cluster store operation on the event log failed")]
    Store(#[from] StoreError),
    /// The head cannot be read (or is newer than this build).
    #[error("the stored event log ('{EVENTS_DOC}') cannot be read")]
    Head(#[source] EventLogError),
    /// A chunk cannot be read.
    #[error("the stored event chunk '{doc}' cannot be read: {problem}")]
    Chunk {
        /// The chunk document.
        doc: String,
        /// Why.
        problem: String,
    },
    /// The recorded state in the head cannot be decoded.
    #[error("the event log's recorded state cannot be decoded: {0}")]
    Recorded(String),
    /// Too many concurrent writers.
    #[error("the event log kept changing under {HEAD_ATTEMPTS} attempts to append to it")]
    Contended,
}

/// Encode the recorded state for the head: JSON, gzip, base64.
pub fn encode_recorded(rec: &Recorded) -> String {
    use std::io::Write as _;
    let json = serde_json::to_vec(rec).unwrap_or_default();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(&json);
    base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap_or_default())
}

/// Decode [`encode_recorded`]'s output.
pub fn decode_recorded(text: &str) -> Result<Recorded, EventsError> {
    use std::io::Read as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| EventsError::Recorded(format!("not base64: {e}")))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .take(256 * 1024 * 1024)
        .read_to_end(&mut json)
        .map_err(|e| EventsError::Recorded(format!("not gzip: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| EventsError::Recorded(format!("not JSON: {e}")))
}

/// The head as stored (default when absent) and its digest (`None` when absent).
pub async fn read_head(
    store: &dyn ClusterStore,
) -> Result<(EventLog, Option<ConfigDigest>), EventsError> {
    match store.read_doc(EVENTS_DOC).await? {
        None => Ok((EventLog::default(), None)),
        Some((text, digest)) => Ok((
            EventLog::decode(&text).map_err(EventsError::Head)?,
            Some(digest),
        )),
    }
}

/// Apply `change` to the head under a compare-and-swap, sealing and pruning as needed; retried
/// on a lost swap (the change is re-applied to the new head). `change` returns the events it
/// appended. Chunks sealed are written before the head, chunks pruned deleted after it.
pub async fn update_head<F>(
    store: &dyn ClusterStore,
    now: i64,
    retention: Retention,
    mut change: F,
) -> Result<Vec<Event>, EventsError>
where
    F: FnMut(&mut EventLog) -> Result<Vec<Event>, EventsError>,
{
    for attempt in 0..HEAD_ATTEMPTS {
        let (mut head, digest) = read_head(store).await?;
        let before = head.clone();
        let added = change(&mut head)?;
        if head == before {
            return Ok(added);
        }
        while let Some((chunk, events)) = head.seal(CHUNK_EVENTS) {
            let text = serde_json::to_string(&events).unwrap_or_default();
            // The same content whoever writes it (sealed events never change): no precondition.
            store
                .write_doc(&chunk.doc_name(), &text, Expect::Any)
                .await?;
        }
        let pruned = head.prune(now, retention);
        let expect = digest.map_or(Expect::Absent, Expect::Digest);
        match store.write_doc(EVENTS_DOC, &head.encode(), expect).await {
            Ok(_) => {
                for chunk in pruned {
                    if let Err(e) = store.delete_doc(&chunk.doc_name(), Expect::Any).await {
                        tracing::warn!(doc = %chunk.doc_name(), error = %mpcluster_core::error_chain(&e),
                            "cannot delete a pruned event chunk");
                    }
                }
                return Ok(added);
            }
            Err(StoreError::Conflict { .. }) => {
                tokio::time::sleep(Duration::from_millis(2 + u64::from(attempt) * 5)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(EventsError::Contended)
}

/// Record an observation of the matrix: the changes since the recorded state become events at
/// `now` (none the first time: a baseline). Returns the events recorded.
pub async fn record_observation(
    store: &dyn ClusterStore,
    now: i64,
    luns: &[LunStatus],
    retention: Retention,
) -> Result<Vec<Event>, EventsError> {
    // The last decoded state, keyed by its encoding: the head is usually the one we wrote.
    static LAST: Mutex<Option<(String, Arc<Recorded>)>> = Mutex::new(None);
    update_head(store, now, retention, |head| {
        let prev = match head.recorded.as_deref() {
            None => None,
            Some(text) => {
                let cached = LAST.lock().ok().and_then(|l| {
                    l.as_ref()
                        .filter(|(t, _)| t == text)
                        .map(|(_, r)| r.clone())
                });
                Some(match cached {
                    Some(r) => r,
                    None => Arc::new(decode_recorded(text)?),
                })
            }
        };
        let (kinds, next) = observe(prev.as_deref(), luns);
        if prev.as_deref() == Some(&next) {
            return Ok(Vec::new());
        }
        let text = encode_recorded(&next);
        if let Ok(mut l) = LAST.lock() {
            *l = Some((text.clone(), Arc::new(next)));
        }
        head.recorded = Some(text);
        Ok(head.append(now, kinds))
    })
    .await
}

/// Append events (the audit trail, or anything not derived from the matrix).
pub async fn append(
    store: &dyn ClusterStore,
    now: i64,
    kinds: Vec<EventKind>,
) -> Result<Vec<Event>, EventsError> {
    update_head(store, now, Retention::default(), |head| {
        Ok(head.append(now, kinds.clone()))
    })
    .await
}

tokio::task_local! {
    static ACTOR: String;
}

static DEFAULT_ACTOR: OnceLock<String> = OnceLock::new();

/// Run `f` with `actor` as the author of every configuration change it makes (the server wraps
/// each authenticated request: `token:<id>`).
pub async fn as_actor<F: Future>(actor: String, f: F) -> F::Output {
    ACTOR.scope(actor, f).await
}

/// The author of configuration changes made outside [`as_actor`] in this process (the CLI:
/// `cli:<user>@<host>`). The first call wins.
pub fn set_default_actor(actor: String) {
    let _ = DEFAULT_ACTOR.set(actor);
}

/// Who is changing the configuration now.
pub fn current_actor() -> String {
    ACTOR
        .try_with(Clone::clone)
        .ok()
        .or_else(|| DEFAULT_ACTOR.get().cloned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Record a configuration change in the audit trail. A failure is logged, not returned: the
/// change itself is stored already.
pub async fn audit(
    store: &dyn ClusterStore,
    doc: &str,
    before: Option<ConfigDigest>,
    after: Option<ConfigDigest>,
    changes: &[String],
) {
    let mut summary = if changes.is_empty() {
        "rewritten without a visible change".to_owned()
    } else {
        changes.join("; ")
    };
    if summary.len() > 400 {
        let cut = (0..=400)
            .rev()
            .find(|&i| summary.is_char_boundary(i))
            .unwrap_or(0);
        summary.truncate(cut);
        summary.push_str(&format!(" ... ({} changes)", changes.len()));
    }
    let kind = EventKind::Config {
        doc: doc.to_owned(),
        actor: current_actor(),
        digest_before: before.map(|d| d.to_string()),
        digest_after: after.map(|d| d.to_string()),
        summary,
    };
    if let Err(e) = append(store, crate::unix_now(), vec![kind]).await {
        tracing::warn!(doc, error = %mpcluster_core::error_chain(&e),
            "configuration change stored, but not recorded in the audit trail");
    }
}

/// Sealed chunks never change: the ones read are kept (by name) for the next query.
#[derive(Debug, Default, Clone)]
pub struct ChunkCache {
    chunks: Arc<Mutex<HashMap<String, Arc<Vec<Event>>>>>,
}

impl ChunkCache {
    async fn get(
        &self,
        store: &dyn ClusterStore,
        chunk: &ChunkRef,
    ) -> Result<Arc<Vec<Event>>, EventsError> {
        let name = chunk.doc_name();
        if let Some(c) = self.chunks.lock().ok().and_then(|m| m.get(&name).cloned()) {
            return Ok(c);
        }
        let (text, _) = store
            .read_doc(&name)
            .await?
            .ok_or_else(|| EventsError::Chunk {
                doc: name.clone(),
                problem: "listed in the head but missing".to_owned(),
            })?;
        let events: Vec<Event> = serde_json::from_str(&text).map_err(|e| EventsError::Chunk {
            doc: name.clone(),
            problem: e.to_string(),
        })?;
        let events = Arc::new(events);
        if let Ok(mut m) = self.chunks.lock() {
            // Bounded: 200 chunks of 500 events is the whole default retention.
            if m.len() >= 256 {
                m.clear();
            }
            m.insert(name, events.clone());
        }
        Ok(events)
    }
}

/// What a query returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// The events, in sequence order.
    pub events: Vec<Event>,
    /// The highest sequence number recorded so far (follow from here with `after`).
    #[serde(rename = "last-seq")]
    pub last_seq: u64,
    /// More events matched than `limit`: with `after`, the oldest `limit` are returned (ask
    /// again from the last one); without, the newest `limit`.
    pub truncated: bool,
}

/// The events passing `filter`, at most `limit`.
pub async fn query(
    store: &dyn ClusterStore,
    cache: &ChunkCache,
    filter: &EventFilter,
    limit: usize,
) -> Result<EventPage, EventsError> {
    let (head, _) = read_head(store).await?;
    let mut events: Vec<Event> = Vec::new();
    for chunk in head.chunks_for(filter) {
        let c = cache.get(store, chunk).await?;
        events.extend(c.iter().filter(|e| filter.matches(e)).cloned());
    }
    events.extend(head.recent.iter().filter(|e| filter.matches(e)).cloned());
    let truncated = events.len() > limit;
    if truncated {
        if filter.after_seq.is_some() {
            events.truncate(limit);
        } else {
            events.drain(..events.len() - limit);
        }
    }
    Ok(EventPage {
        events,
        last_seq: head.next_seq - 1,
        truncated,
    })
}

/// The events of the last `lookback` seconds before `now` (flapping needs the current runs).
pub async fn recent(
    store: &dyn ClusterStore,
    cache: &ChunkCache,
    now: i64,
    lookback: i64,
) -> Result<Vec<Event>, EventsError> {
    let filter = EventFilter {
        since: Some(now - lookback),
        config: Some(false),
        ..EventFilter::default()
    };
    Ok(query(store, cache, &filter, usize::MAX).await?.events)
}

/// The recorder lease: `holder` records until `until` (unix s) unless it renews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The recording server's id (host name and process id).
    pub holder: String,
    /// Valid until (unix s).
    pub until: i64,
}

/// Take or renew the recorder lease for `me` at `now` for `ttl` seconds: `true` if `me` holds
/// it now. A lease held by someone else is taken only after it ran out.
pub async fn lead(
    store: &dyn ClusterStore,
    me: &str,
    now: i64,
    ttl: i64,
) -> Result<bool, EventsError> {
    let current = store.read_doc(LEADER_DOC).await?;
    let expect = match &current {
        None => Expect::Absent,
        Some((text, digest)) => {
            let lease: Option<Lease> = serde_json::from_str(text).ok();
            match lease {
                Some(l) if l.holder != me && l.until > now => return Ok(false),
                _ => Expect::Digest(*digest),
            }
        }
    };
    let lease = Lease {
        holder: me.to_owned(),
        until: now + ttl,
    };
    let text = serde_json::to_string(&lease).unwrap_or_default();
    match store.write_doc(LEADER_DOC, &text, expect).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Give the lease up (at shutdown), if `me` holds it.
pub async fn resign(store: &dyn ClusterStore, me: &str) -> Result<(), EventsError> {
    if let Some((text, digest)) = store.read_doc(LEADER_DOC).await?
        && serde_json::from_str::<Lease>(&text).is_ok_and(|l| l.holder == me)
    {
        match store.delete_doc(LEADER_DOC, Expect::Digest(digest)).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The current lease, if any (for `/health` and status).
pub async fn leader(store: &dyn ClusterStore) -> Result<Option<Lease>, EventsError> {
    Ok(store
        .read_doc(LEADER_DOC)
        .await?
        .and_then(|(text, _)| serde_json::from_str(&text).ok()))
}

static FLAP_RULE: OnceLock<FlapRule> = OnceLock::new();
static SHARED_CHUNKS: OnceLock<ChunkCache> = OnceLock::new();

/// Set this process's flapping rule (`serve --flap-changes/--flap-window`); the first call
/// wins. Unset: [`FlapRule::default`] (4 changes in 10 minutes).
pub fn set_flap_rule(rule: FlapRule) {
    let _ = FLAP_RULE.set(rule);
}

/// This process's flapping rule.
pub fn flap_rule() -> FlapRule {
    FLAP_RULE.get().copied().unwrap_or_default()
}

/// The process-wide chunk cache (sealed chunks never change).
pub fn shared_chunk_cache() -> &'static ChunkCache {
    SHARED_CHUNKS.get_or_init(ChunkCache::default)
}

/// The LUNs and cells flapping at `now` under [`flap_rule`], from the stored history.
pub async fn current_flapping(
    store: &dyn ClusterStore,
    now: i64,
) -> Result<Vec<mpcluster_core::events::Flap>, EventsError> {
    let rule = flap_rule();
    // A run that started earlier than this only counts from here: enough to see it flap.
    let lookback = (rule.window * 6).max(3600);
    let events = recent(store, shared_chunk_cache(), now, lookback).await?;
    Ok(mpcluster_core::events::flapping(&events, now, rule))
}
