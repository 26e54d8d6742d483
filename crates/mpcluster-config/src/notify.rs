//! Notifications in the cluster store: the targets document (`notify-targets`, a
//! [`Document`]: digest-guarded and audited like every configuration document) with
//! [`add`], [`remove`], [`list`] and [`get`], and the outbox (`notify-outbox`), changed only
//! with a compare-and-swap on its digest ([`update_outbox`]): the sending server moves the
//! event cursor, the open groups and the deliveries in one write, so a server taking over
//! after a crash or a change of leader continues exactly where the last write left off.
//!
//! The outbox is not audited: it is the notifier's working state, not configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use mpcluster_core::config::ConfigErrors;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::notify::{Outbox, OutboxError, Target, TargetId, TargetView, TargetsDoc};
use mpcluster_core::snapshot::doc_names;
use mpcluster_store::{BoxError, ClusterStore, Expect, StoreError};
use serde_json::Value;

use crate::document::{Document, Loaded, edit, keyed_changes, load};
use crate::error::EditError;

impl Document for TargetsDoc {
    const NAME: &'static str = doc_names::NOTIFY_TARGETS;
    const TITLE: &'static str = "the notification targets";

    fn empty() -> Self {
        TargetsDoc::default()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(TargetsDoc::from_json(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(self.to_json())
    }

    fn changes(before: &Self, after: &Self) -> Vec<String> {
        keyed_changes(
            "notification target",
            before.targets.iter(),
            after.targets.iter(),
        )
    }
}

/// The targets as clients see them (secrets as `"set"`), sorted by id, and the digest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TargetList {
    /// The targets.
    pub targets: Vec<TargetView>,
    /// The document's digest.
    pub digest: ConfigDigest,
}

/// Every target (an absent document reads empty).
pub async fn list(store: &dyn ClusterStore) -> Result<TargetList, EditError> {
    let Loaded { value, digest, .. } = load::<TargetsDoc>(store).await?;
    Ok(TargetList {
        targets: value
            .targets
            .iter()
            .map(|(id, t)| TargetView::of(id, t))
            .collect(),
        digest,
    })
}

/// Target `id` with its secret (for sending), or [`EditError::NotFound`].
pub async fn get(store: &dyn ClusterStore, id: &TargetId) -> Result<Target, EditError> {
    load::<TargetsDoc>(store)
        .await?
        .value
        .targets
        .get(id)
        .cloned()
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &TargetId) -> EditError {
    EditError::NotFound {
        what: format!("notification target '{id}'"),
    }
}

/// Add a target from a request's properties (`type`, `id`, the type's properties; every
/// field error at once). `expected`: the digest the client read, if it sent one.
/// [`EditError::Exists`] if the id is taken.
pub async fn add(
    store: &dyn ClusterStore,
    props: BTreeMap<String, Value>,
    expected: Option<ConfigDigest>,
) -> Result<TargetView, EditError> {
    let (id, target) = mpcluster_core::notify::new_target(props)
        .map_err(|e: ConfigErrors| EditError::Invalid(e))?;
    let view = TargetView::of(&id, &target);
    edit::<TargetsDoc, (), _>(store, expected, |doc| {
        if doc.targets.contains_key(&id) {
            return Err(EditError::Exists {
                what: format!("notification target '{id}'"),
            });
        }
        doc.targets.insert(id.clone(), target.clone());
        Ok(())
    })
    .await?;
    Ok(view)
}

/// Remove target `id` (its pending deliveries are dropped by the notifier).
pub async fn remove(
    store: &dyn ClusterStore,
    id: &TargetId,
    expected: Option<ConfigDigest>,
) -> Result<ConfigDigest, EditError> {
    Ok(edit::<TargetsDoc, (), _>(store, expected, |doc| {
        doc.targets
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| not_found(id))
    })
    .await?
    .digest)
}

/// Reading or writing the outbox failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxStoreError {
    /// The store failed.
    #[error("cluster store operation on the notification outbox failed")]
    Store(#[from] StoreError),
    /// The stored outbox cannot be read.
    #[error(
        "the stored notification outbox ('{}') cannot be read",
        doc_names::NOTIFY_OUTBOX
    )]
    Unreadable(#[source] OutboxError),
    /// Too many concurrent writers.
    #[error("the notification outbox kept changing under {OUTBOX_ATTEMPTS} attempts to update it")]
    Contended,
}

/// How often a compare-and-swap on the outbox is tried.
const OUTBOX_ATTEMPTS: u32 = 30;

/// The outbox as stored (default when absent) and its digest (`None` when absent).
pub async fn read_outbox(
    store: &dyn ClusterStore,
) -> Result<(Outbox, Option<ConfigDigest>), OutboxStoreError> {
    match store.read_doc(doc_names::NOTIFY_OUTBOX).await? {
        None => Ok((Outbox::default(), None)),
        Some((text, digest)) => Ok((
            Outbox::decode(&text).map_err(OutboxStoreError::Unreadable)?,
            Some(digest),
        )),
    }
}

/// Apply `change` to the outbox under a compare-and-swap on its digest, retried on a lost
/// swap (re-read, `change` applied again to the new outbox; it must be a function of the
/// outbox it is given). Returns what `change` returned on the outbox that was written (or
/// left unchanged).
pub async fn update_outbox<R, F>(
    store: &dyn ClusterStore,
    mut change: F,
) -> Result<R, OutboxStoreError>
where
    F: FnMut(&mut Outbox) -> R,
{
    for attempt in 0..OUTBOX_ATTEMPTS {
        let (mut outbox, digest) = read_outbox(store).await?;
        let before = outbox.clone();
        let out = change(&mut outbox);
        if outbox == before && digest.is_some() {
            return Ok(out);
        }
        let expect = digest.map_or(Expect::Absent, Expect::Digest);
        match store
            .write_doc(doc_names::NOTIFY_OUTBOX, &outbox.encode(), expect)
            .await
        {
            Ok(_) => return Ok(out),
            Err(StoreError::Conflict { .. }) => {
                tokio::time::sleep(Duration::from_millis(2 + u64::from(attempt) * 5)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(OutboxStoreError::Contended)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use mpcluster_store::EmbeddedOptions;
    use mpcluster_store::embedded::EmbeddedStore;
    use serde_json::json;

    use super::*;

    fn props(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn targets_add_list_remove_and_concurrent_outbox_updates() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ClusterStore> = Arc::new(
            EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
                .await
                .unwrap(),
        );
        let s = store.as_ref();
        let v = add(
            s,
            props(json!({"type": "webhook", "id": "ops", "url": "http://127.0.0.1:9/x", "secret": "0123456789abcdef"})),
            None,
        )
        .await
        .unwrap();
        assert_eq!(v.secret.as_deref(), Some("set"));
        let err = add(
            s,
            props(json!({"type": "webhook", "id": "ops", "url": "http://127.0.0.1:9/x", "secret": "0123456789abcdef"})),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "notification target 'ops' exists already (remove it first)"
        );
        let err = add(s, props(json!({"type": "exec", "id": "e"})), None)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "command: required");
        let listed = list(s).await.unwrap();
        assert_eq!(listed.targets.len(), 1);
        let (text, _) = s
            .read_doc(doc_names::NOTIFY_TARGETS)
            .await
            .unwrap()
            .unwrap();
        assert!(
            text.contains("0123456789abcdef"),
            "the secret is stored for signing"
        );
        let id = TargetId::new("ops").unwrap();
        assert!(matches!(get(s, &id).await.unwrap(), Target::Webhook(_)));
        // A stale digest is refused.
        let stale = remove(s, &id, Some(crate::absent_digest()))
            .await
            .unwrap_err();
        assert!(stale.is_conflict(), "{stale}");
        remove(s, &id, Some(listed.digest)).await.unwrap();
        assert!(matches!(
            remove(s, &id, None).await.unwrap_err(),
            EditError::NotFound { .. }
        ));

        // Concurrent outbox updates never lose one.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                update_outbox(store.as_ref(), |o| o.next_message += 1)
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (o, d) = read_outbox(s).await.unwrap();
        assert!(d.is_some());
        assert_eq!(o.next_message, 1 + 8);
    }
}
