//! Reading a [`Snapshot`] out of the cluster store: membership, the node KV keys the status
//! needs, the multipath configuration's allow-list and the storage expectations.
//!
//! Entry point: [`read_snapshot`]. Used by the server's status cache and snapshot export, the
//! CLI's `--store` mode and [`crate::nodes::remove_node`], so all of them see the cluster the
//! same way.

use std::collections::BTreeSet;
use std::path::PathBuf;

use mpcluster_core::snapshot::{
    KvSnapshot, SNAPSHOT_VERSION, Snapshot, SnapshotConfig, doc_names, kv_keys,
};
use mpcluster_core::storage::{StorageConfig, expectations};
use mpcluster_core::{Alias, NodeName, Wwid};
use mpcluster_store::{ClusterStore, StoreError};

use crate::document::Document as _;
use crate::pve::PveMode;

/// A snapshot plus what could not be used from the documents (a broken document never takes
/// the status down: it is reported and treated as empty).
#[derive(Debug, Clone)]
pub struct ReadSnapshot {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Problems with stored documents (and in Proxmox mode with storage.cfg).
    pub notes: Vec<String>,
    /// Proxmox mode: the storage.cfg the expectations come from (`None`: the storage
    /// document).
    pub storage_source: Option<PathBuf>,
}

/// The allow-list and aliases of the stored multipath configuration document
/// (`{"wwids": {"<wwid>": {"alias": "..."}}}`; other fields are the agents' business).
pub fn allow_list(doc: &str) -> Result<SnapshotConfig, String> {
    mpcluster_core::format::check_named(doc_names::CONFIG, doc).map_err(|e| e.to_string())?;
    let value: serde_json::Value =
        serde_json::from_str(doc).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = SnapshotConfig::default();
    let Some(wwids) = value.get("wwids") else {
        return Ok(out);
    };
    let wwids = wwids
        .as_object()
        .ok_or_else(|| "\"wwids\" is not an object".to_owned())?;
    for (key, entry) in wwids {
        let wwid = Wwid::new(key.as_str()).map_err(|e| format!("wwids: {e}"))?;
        if let Some(alias) = entry.get("alias").and_then(|a| a.as_str()) {
            let alias = Alias::new(alias).map_err(|e| format!("wwids.{key}.alias: {e}"))?;
            out.aliases.insert(wwid.clone(), alias);
        }
        out.wwids.push(wwid);
    }
    Ok(out)
}

/// Read everything the status needs. `local_node` names this node for a standalone store,
/// where membership is empty and the cluster's node list is this node plus every reporter.
///
/// The expectations come from the storage document, or in Proxmox mode (`pve`) from
/// storage.cfg, read now (so a long-lived reader that recomputes follows the file; see
/// [`crate::pve`]); [`ReadSnapshot::storage_source`] records which.
pub async fn read_snapshot(
    store: &dyn ClusterStore,
    now: i64,
    stale_after: Option<u64>,
    local_node: Option<&NodeName>,
    pve: Option<&PveMode>,
) -> Result<ReadSnapshot, StoreError> {
    let members = store.members().await?;
    let multipath = store.get_all(kv_keys::HEALTH).await?;
    let multipath_apply = store.get_all(kv_keys::APPLY).await?;
    let multipath_collect = store.get_all(kv_keys::COLLECT).await?;
    let multipath_plan = store.get_all(kv_keys::PLAN).await?;
    let multipath_detail = store.get_all(kv_keys::DETAIL).await?;
    let config_doc = store.read_doc(doc_names::CONFIG).await?;
    let mut notes = Vec::new();
    let storage = match pve {
        None => match store.read_doc(doc_names::STORAGE).await? {
            None => StorageConfig::default(),
            Some((text, _)) => mpcluster_core::format::check_named(doc_names::STORAGE, &text)
                .map_err(|e| e.into())
                .and_then(|()| StorageConfig::parse(&text))
                .unwrap_or_else(|e| {
                    notes.push(format!("document '{}' unreadable: {e}", doc_names::STORAGE));
                    StorageConfig::default()
                }),
        },
        Some(pve) => {
            let s = pve.read_storages().await?;
            notes.extend(s.problems);
            s.config
        }
    };

    let config = match config_doc {
        None => SnapshotConfig::default(),
        Some((text, _)) => allow_list(&text).unwrap_or_else(|e| {
            notes.push(format!("document '{}' unreadable: {e}", doc_names::CONFIG));
            SnapshotConfig::default()
        }),
    };

    let mut cluster_nodes: BTreeSet<NodeName> = members.keys().cloned().collect();
    if members.is_empty() {
        cluster_nodes.extend(local_node.cloned());
        cluster_nodes.extend(multipath.keys().cloned());
    }
    let expectations = expectations(&storage, &cluster_nodes);
    let flapping = match crate::events::current_flapping(store, now).await {
        Ok(f) => f,
        Err(e) => {
            notes.push(format!(
                "event history unreadable, flapping not known: {}",
                mpcluster_core::error_chain(&e)
            ));
            Vec::new()
        }
    };

    Ok(ReadSnapshot {
        snapshot: Snapshot {
            version: SNAPSHOT_VERSION,
            now,
            stale_after,
            config,
            members,
            kv: KvSnapshot {
                multipath,
                multipath_apply,
                multipath_collect,
                multipath_plan,
                multipath_detail,
            },
            expectations,
            publish_errors: Default::default(),
            hint_since: Default::default(),
            flapping,
        },
        notes,
        storage_source: pve.map(PveMode::storage_cfg),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn allow_list_forms() {
        let c = allow_list(
            r#"{"defaults": {"polling-interval": 5}, "wwids": {"w1": {"alias": "a"}, "w2": {}}}"#,
        )
        .unwrap();
        assert_eq!(c.wwids.len(), 2);
        assert_eq!(c.aliases.len(), 1);
        assert!(allow_list("{}").unwrap().wwids.is_empty());
        assert!(allow_list(r#"{"wwids": []}"#).is_err());
        assert!(
            allow_list(r#"{"wwids": {"bad wwid": {}}}"#)
                .unwrap_err()
                .contains("invalid WWID")
        );
    }
}
