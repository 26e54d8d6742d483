//! The digest-guarded cluster documents ([`Document`]) and the one way to read ([`load`]) and
//! change ([`edit`], [`edit_retrying`]) them.
//!
//! [`edit`] re-reads the document, checks the caller's digest (when given) against the stored
//! one ([`EditError::Stale`]), applies the change with the core model's validating,
//! all-or-nothing updates ([`EditError::Invalid`]) and writes with a compare-and-swap on the
//! digest it read ([`Expect::Digest`], or [`Expect::Absent`] for a document that does not
//! exist yet), so a concurrent writer loses with a conflict and a rejected write stores nothing.
//!
//! An absent document reads as empty, with the digest of empty content ([`absent_digest`]): a
//! client that saw nothing and sends that digest still loses against a concurrent creator.

use mpcluster_core::config::{MultipathConfig, Overrides};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::snapshot::doc_names;
use mpcluster_core::storage::StorageConfig;
use mpcluster_store::{BoxError, ClusterStore, Expect};

use crate::error::EditError;

/// The digest an absent document reads with: that of empty content.
pub fn absent_digest() -> ConfigDigest {
    ConfigDigest::of("")
}

/// A digest-guarded cluster document.
pub trait Document: Sized + Send + 'static {
    /// The store document name ([`doc_names`]).
    const NAME: &'static str;
    /// The empty document (what an absent one reads as).
    fn empty() -> Self;
    /// Load the stored text (validating it).
    fn parse(text: &str) -> Result<Self, BoxError>;
    /// The text to store.
    fn render(&self) -> Result<String, serde_json::Error>;
}

impl Document for MultipathConfig {
    const NAME: &'static str = doc_names::CONFIG;

    fn empty() -> Self {
        MultipathConfig::new()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(MultipathConfig::from_json(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string_pretty(&self.to_json())? + "\n")
    }
}

impl Document for Overrides {
    const NAME: &'static str = doc_names::OVERRIDES;

    fn empty() -> Self {
        Overrides::empty()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(Overrides::from_json(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string(self)? + "\n")
    }
}

impl Document for StorageConfig {
    const NAME: &'static str = doc_names::STORAGE;

    fn empty() -> Self {
        StorageConfig::default()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(serde_json::from_str(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }
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
        Some((text, digest)) => Ok(Loaded {
            value: T::parse(&text).map_err(|source| EditError::Unreadable {
                doc: T::NAME,
                source,
            })?,
            digest,
            stored: true,
        }),
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
/// digest just read.
pub async fn edit<T, R, F>(
    store: &dyn ClusterStore,
    expected: Option<ConfigDigest>,
    op: F,
) -> Result<Edited<R>, EditError>
where
    T: Document,
    F: FnOnce(&mut T) -> Result<R, EditError> + Send,
    R: Send,
{
    let current = load::<T>(store).await?;
    if expected.is_some_and(|want| want != current.digest) {
        return Err(EditError::Stale);
    }
    let mut next = current.value;
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
    let digest = store
        .write_doc(T::NAME, &text, expect)
        .await
        .map_err(|source| EditError::Store {
            doc: T::NAME,
            source,
        })?;
    Ok(Edited { output, digest })
}

/// Edit document `T` with a compare-and-swap on the digest read just before, retrying once on
/// a conflict if `scope` (the part of the document the change touches) is the same in the
/// document read before and after the conflict: then the other writer changed something else,
/// and `op` is applied once more to the new document (re-validated, so e.g. an alias taken
/// meanwhile is still refused). `scope: None` never retries. Used where nobody saw a digest
/// (the CLI edits the store directly).
pub async fn edit_retrying<T, S, R, F>(
    store: &dyn ClusterStore,
    scope: Option<impl Fn(&T) -> S>,
    op: F,
) -> Result<Edited<R>, EditError>
where
    T: Document,
    S: PartialEq,
    R: Send,
    F: Fn(&mut T) -> Result<R, EditError> + Sync,
{
    let before: Loaded<T> = load(store).await?;
    match edit::<T, R, _>(store, Some(before.digest), |t| op(t)).await {
        Err(e) if e.is_conflict() => {
            let Some(scope) = scope else {
                return Err(e);
            };
            let after: Loaded<T> = load(store).await?;
            if scope(&before.value) != scope(&after.value) {
                return Err(e);
            }
            tracing::info!(
                "the document changed meanwhile, but not the part this change touches: retrying"
            );
            edit::<T, R, _>(store, Some(after.digest), |t| op(t)).await
        }
        r => r,
    }
}
