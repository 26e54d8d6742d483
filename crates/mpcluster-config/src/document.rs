//! The digest-guarded cluster documents ([`Document`]) and the one way to read ([`load`]) and
//! change ([`edit`], [`edit_retrying`]) them.
//!
//! [`edit`] re-reads the document, checks the caller's digest (when given) against the stored
//! one ([`EditError::Stale`]), applies the change with the core model's validating,
//! all-or-nothing updates ([`EditError::Invalid`]) and writes with a compare-and-swap on the
//! digest it read ([`Expect::Digest`], or [`Expect::Absent`] for a document that does not
//! exist yet), so a concurrent writer never gets overwritten and a rejected write stores
//! nothing.
//!
//! A lost compare-and-swap means different things with and without a digest:
//! - **with a digest** the caller changes the version it read: the edit fails with
//!   [`EditError::Stale`], whose message names what changed ([`Document::changes`] between the
//!   version the digest stands for and the current one);
//! - **without a digest** the caller asks for an operation ("add this WWID"), not a version:
//!   the document is read again and the operation applied again (re-validated, so e.g. an
//!   alias taken meanwhile is still refused), up to [`EDIT_ATTEMPTS`] times with a growing,
//!   jittered pause; concurrent edits of different entries all succeed.
//!
//! To explain a stale digest the edit needs the version that digest stands for: the texts of
//! recently read and written versions are remembered (a few MiB at most), keyed by digest.
//!
//! An absent document reads as empty, with the digest of empty content ([`absent_digest`]): a
//! client that saw nothing and sends that digest still loses against a concurrent creator.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpcluster_core::config::{MultipathConfig, Overrides};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::doc_names;
use mpcluster_core::storage::StorageConfig;
use mpcluster_store::{BoxError, ClusterStore, Expect, StoreError};

use crate::error::EditError;

/// The digest an absent document reads with: that of empty content.
pub fn absent_digest() -> ConfigDigest {
    ConfigDigest::of("")
}

/// A digest-guarded cluster document.
pub trait Document: Sized + Clone + Send + 'static {
    /// The store document name ([`doc_names`]).
    const NAME: &'static str;
    /// What people call it, for messages ("the multipath configuration").
    const TITLE: &'static str;
    /// The empty document (what an absent one reads as).
    fn empty() -> Self;
    /// Load the stored text (validating it).
    fn parse(text: &str) -> Result<Self, BoxError>;
    /// The text to store.
    fn render(&self) -> Result<String, serde_json::Error>;
    /// What changed from `before` to `after`, one short item each ("WWID 3600... added"),
    /// for conflict messages.
    fn changes(before: &Self, after: &Self) -> Vec<String>;
}

/// Items for every key of two maps whose values differ: `<what> <key> added|removed|changed`.
pub(crate) fn keyed_changes<'a, K, V>(
    what: &str,
    before: impl IntoIterator<Item = (K, &'a V)>,
    after: impl IntoIterator<Item = (K, &'a V)>,
) -> Vec<String>
where
    K: Ord + std::fmt::Display,
    V: PartialEq + 'a,
{
    let before: std::collections::BTreeMap<K, &V> = before.into_iter().collect();
    let after: std::collections::BTreeMap<K, &V> = after.into_iter().collect();
    let keys: BTreeSet<&K> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (before.get(k), after.get(k)) {
            (None, Some(_)) => Some(format!("{what} {k} added")),
            (Some(_), None) => Some(format!("{what} {k} removed")),
            (Some(a), Some(b)) if a != b => Some(format!("{what} {k} changed")),
            _ => None,
        })
        .collect()
}

impl Document for MultipathConfig {
    const NAME: &'static str = doc_names::CONFIG;
    const TITLE: &'static str = "the multipath configuration";

    fn empty() -> Self {
        MultipathConfig::new()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(MultipathConfig::from_json(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string_pretty(&self.to_json())? + "\n")
    }

    fn changes(before: &Self, after: &Self) -> Vec<String> {
        let mut out = keyed_changes("WWID", before.wwids().iter(), after.wwids().iter());
        out.extend(keyed_changes(
            "defaults knob",
            before.defaults().iter().map(|(k, v)| (k.name(), v)),
            after.defaults().iter().map(|(k, v)| (k.name(), v)),
        ));
        out
    }
}

impl Document for Overrides {
    const NAME: &'static str = doc_names::OVERRIDES;
    const TITLE: &'static str = "the overrides";

    fn empty() -> Self {
        Overrides::empty()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(Overrides::from_json(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string(self)? + "\n")
    }

    fn changes(before: &Self, after: &Self) -> Vec<String> {
        if before == after {
            Vec::new()
        } else {
            vec!["the devices / overrides text changed".to_owned()]
        }
    }
}

impl Document for StorageConfig {
    const NAME: &'static str = doc_names::STORAGE;
    const TITLE: &'static str = "the storage definitions";

    fn empty() -> Self {
        StorageConfig::default()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(serde_json::from_str(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    fn changes(before: &Self, after: &Self) -> Vec<String> {
        let mut out = keyed_changes(
            "storage",
            before.storages.iter().map(|s| (s.id(), s)),
            after.storages.iter().map(|s| (s.id(), s)),
        );
        if out.is_empty() && before != after {
            out.push("the order of the storages changed".to_owned());
        }
        out
    }
}

/// Recently read or written versions, by digest: the text a digest stands for, so that a stale
/// digest can be explained. Bounded in entries and bytes; texts over [`VERSION_MAX_BYTES`] are
/// not kept (their conflicts are explained without the list of changes).
struct Versions {
    entries: VecDeque<(&'static str, ConfigDigest, Arc<str>)>,
    bytes: usize,
}

const VERSIONS_MAX: usize = 64;
const VERSIONS_MAX_BYTES: usize = 4 << 20;
const VERSION_MAX_BYTES: usize = 1 << 20;

static VERSIONS: Mutex<Versions> = Mutex::new(Versions {
    entries: VecDeque::new(),
    bytes: 0,
});

fn versions() -> std::sync::MutexGuard<'static, Versions> {
    VERSIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Remember the text of version `digest` of document `name`.
fn remember(name: &'static str, digest: ConfigDigest, text: &str) {
    if text.len() > VERSION_MAX_BYTES {
        return;
    }
    let mut v = versions();
    if let Some(i) = v
        .entries
        .iter()
        .position(|(n, d, _)| *n == name && *d == digest)
    {
        // Most recently used last.
        if let Some(e) = v.entries.remove(i) {
            v.entries.push_back(e);
        }
        return;
    }
    v.bytes += text.len();
    v.entries.push_back((name, digest, Arc::from(text)));
    while v.entries.len() > VERSIONS_MAX || v.bytes > VERSIONS_MAX_BYTES {
        match v.entries.pop_front() {
            Some((_, _, t)) => v.bytes -= t.len(),
            None => break,
        }
    }
}

/// The text of version `digest` of document `name`, if it was read or written lately.
fn recall(name: &str, digest: ConfigDigest) -> Option<Arc<str>> {
    versions()
        .entries
        .iter()
        .find(|(n, d, _)| *n == name && *d == digest)
        .map(|(_, _, t)| t.clone())
}

/// Items listed in a conflict message, at most.
const CHANGES_LISTED: usize = 8;

/// [`EditError::Stale`] naming what another writer changed from `before` to `after`.
fn stale<T: Document>(before: Option<&T>, after: &Loaded<T>) -> EditError {
    let detail = match before.map(|b| T::changes(b, &after.value)) {
        Some(changes) if !changes.is_empty() => {
            let mut listed: Vec<String> = changes.iter().take(CHANGES_LISTED).cloned().collect();
            if changes.len() > CHANGES_LISTED {
                listed.push(format!("and {} more", changes.len() - CHANGES_LISTED));
            }
            format!(
                "{} changed meanwhile: {} by another writer",
                T::TITLE,
                listed.join(", ")
            )
        }
        Some(_) => format!(
            "{} was rewritten meanwhile by another writer (same entries; its digest is now {})",
            T::TITLE,
            after.digest
        ),
        None => format!(
            "{} is no longer at the digest the request carries (it is now at {}); reload it to \
             see what changed",
            T::TITLE,
            after.digest
        ),
    };
    EditError::Stale { detail }
}

/// How often an edit without a digest is tried when concurrent writers keep winning the
/// compare-and-swap (each try re-reads the document and applies the operation again).
pub const EDIT_ATTEMPTS: u32 = 50;

/// The pause before try `attempt + 1`: random, up to 2 ms doubled per try, at most 100 ms
/// (random so that writers that collided once do not collide again in step).
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    let cap_us = (2_000u64 << attempt.min(6)).min(100_000);
    // A freshly keyed SipHash of nothing: a random number without a random-number crate.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(random % cap_us)
}

/// A document as read, with the digest it was read at.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The document ([`Document::empty`] when absent).
    pub value: T,
    /// Its digest ([`absent_digest`] when absent).
    pub digest: ConfigDigest,
    /// Whether the document exists in the store.
    pub stored: bool,
}

/// Read document `T`.
pub async fn load<T: Document>(store: &dyn ClusterStore) -> Result<Loaded<T>, EditError> {
    match store
        .read_doc(T::NAME)
        .await
        .map_err(|source| EditError::Store {
            doc: T::NAME,
            source,
        })? {
        None => Ok(Loaded {
            value: T::empty(),
            digest: absent_digest(),
            stored: false,
        }),
        Some((text, digest)) => {
            // A newer format is neither read nor overwritten (rolling upgrades).
            mpcluster_core::format::check_named(T::NAME, &text).map_err(|e| {
                EditError::Unreadable {
                    doc: T::NAME,
                    source: Box::new(e),
                }
            })?;
            let value = T::parse(&text).map_err(|source| EditError::Unreadable {
                doc: T::NAME,
                source,
            })?;
            remember(T::NAME, digest, &text);
            Ok(Loaded {
                value,
                digest,
                stored: true,
            })
        }
    }
}

/// The result of a successful [`edit`].
#[derive(Debug, Clone)]
pub struct Edited<R> {
    /// What the change returned.
    pub output: R,
    /// The new digest of the document.
    pub digest: ConfigDigest,
}

/// Change document `T`: re-read it, refuse if `expected` is given and is not its digest, apply
/// `op` (which validates; on error nothing is written) and write with a compare-and-swap on the
/// digest just read. A lost compare-and-swap is [`EditError::Stale`] with a digest; without
/// one the edit is tried again on the new document (see the [module docs](self)).
pub async fn edit<T, R, F>(
    store: &dyn ClusterStore,
    expected: Option<ConfigDigest>,
    op: F,
) -> Result<Edited<R>, EditError>
where
    T: Document,
    F: FnMut(&mut T) -> Result<R, EditError>,
{
    edit_loop(store, expected, None::<fn(&T, &T) -> bool>, op).await
}

/// Edit document `T` without a digest (where nobody saw one: the CLI edits the store
/// directly). A lost compare-and-swap is retried as [`edit`] does without a digest, but only
/// while `scope` (the part of the document the change touches: the WWID entry, the named knobs,
/// the storage) is the same before and after the other write: then the other writer changed
/// something else. If it changed the same part, the edit fails with [`EditError::Stale`] naming
/// what changed. `scope: None` never retries (the change replaces the whole document).
pub async fn edit_retrying<T, S, R, F>(
    store: &dyn ClusterStore,
    scope: Option<impl Fn(&T) -> S>,
    op: F,
) -> Result<Edited<R>, EditError>
where
    T: Document,
    S: PartialEq,
    F: FnMut(&mut T) -> Result<R, EditError>,
{
    let touched = move |before: &T, after: &T| match &scope {
        Some(scope) => scope(before) != scope(after),
        None => true,
    };
    edit_loop(store, None, Some(touched), op).await
}

/// The edit loop: read, check the digest, apply, compare-and-swap; on a lost compare-and-swap
/// fail (with a digest, or when `touched(before, after)` says the other writer changed what
/// this edit changes) or try again.
async fn edit_loop<T, R, F, C>(
    store: &dyn ClusterStore,
    expected: Option<ConfigDigest>,
    touched: Option<C>,
    mut op: F,
) -> Result<Edited<R>, EditError>
where
    T: Document,
    F: FnMut(&mut T) -> Result<R, EditError>,
    C: Fn(&T, &T) -> bool,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = load::<T>(store).await?;
        if let Some(want) = expected
            && want != current.digest
        {
            let seen = if want == absent_digest() {
                Some(T::empty())
            } else {
                recall(T::NAME, want).and_then(|text| T::parse(&text).ok())
            };
            return Err(stale(seen.as_ref(), &current));
        }
        let mut next = current.value.clone();
        let output = op(&mut next)?;
        let text = next.render().map_err(|source| EditError::Encode {
            doc: T::NAME,
            source,
        })?;
        let expect = if current.stored {
            Expect::Digest(current.digest)
        } else {
            Expect::Absent
        };
        match store.write_doc(T::NAME, &text, expect).await {
            Ok(digest) => {
                remember(T::NAME, digest, &text);
                if !current.stored || digest != current.digest {
                    crate::events::audit(
                        store,
                        T::NAME,
                        current.stored.then_some(current.digest),
                        Some(digest),
                        &T::changes(&current.value, &next),
                    )
                    .await;
                }
                return Ok(Edited { output, digest });
            }
            Err(StoreError::Conflict { .. }) => {
                let after = load::<T>(store).await?;
                let same_part = touched
                    .as_ref()
                    .is_some_and(|t| t(&current.value, &after.value));
                if expected.is_some() || same_part || attempt >= EDIT_ATTEMPTS {
                    if attempt >= EDIT_ATTEMPTS {
                        tracing::warn!(
                            doc = T::NAME,
                            attempts = attempt,
                            "edit lost the compare-and-swap on every attempt"
                        );
                    }
                    return Err(stale(Some(&current.value), &after));
                }
                tracing::debug!(
                    doc = T::NAME,
                    attempt,
                    "the document changed meanwhile; applying the edit again"
                );
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(source) => {
                return Err(EditError::Store {
                    doc: T::NAME,
                    source,
                });
            }
        }
    }
}
