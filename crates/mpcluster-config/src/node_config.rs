//! What a node applies: the stored multipath configuration and overrides, parsed into the core
//! model the agent renders ([`read_node_config`], or [`parse_node_config`] on texts already
//! read). Absent documents are empty; a document that does not validate is an error, never
//! guessed at.

use mpcluster_core::config::{DocumentError, MultipathConfig, Overrides};
use mpcluster_core::snapshot::doc_names;
use mpcluster_store::{ClusterStore, StoreError};

/// The configuration a node applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeConfig {
    /// `defaults` knobs and the allow-list (`multipath-config`).
    pub config: MultipathConfig,
    /// The admin's verbatim sections (`multipath-overrides`).
    pub overrides: Overrides,
}

/// Why the node configuration cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// The store could not be read.
    #[error("cannot read the cluster configuration")]
    Store(#[source] StoreError),
    /// A stored document does not validate (written by a newer or broken writer).
    #[error("the stored configuration is invalid")]
    Document(#[source] DocumentError),
}

/// Parse the stored texts of `multipath-config` and `multipath-overrides` (`None`: absent).
pub fn parse_node_config(
    config: Option<&str>,
    overrides: Option<&str>,
) -> Result<NodeConfig, DocumentError> {
    Ok(NodeConfig {
        config: config
            .map(MultipathConfig::from_json)
            .transpose()?
            .unwrap_or_default(),
        overrides: overrides
            .map(Overrides::from_json)
            .transpose()?
            .unwrap_or_else(Overrides::empty),
    })
}

/// Read and parse both documents from the store.
pub async fn read_node_config(store: &dyn ClusterStore) -> Result<NodeConfig, NodeConfigError> {
    let config = store
        .read_doc(doc_names::CONFIG)
        .await
        .map_err(NodeConfigError::Store)?;
    let overrides = store
        .read_doc(doc_names::OVERRIDES)
        .await
        .map_err(NodeConfigError::Store)?;
    parse_node_config(
        config.as_ref().map(|(t, _)| t.as_str()),
        overrides.as_ref().map(|(t, _)| t.as_str()),
    )
    .map_err(NodeConfigError::Document)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn absent_is_empty_and_invalid_is_an_error() {
        let c = parse_node_config(None, None).unwrap();
        assert!(c.config.is_empty() && c.overrides.as_str().is_empty());
        let c = parse_node_config(
            Some(r#"{"wwids": {"3600a098038303053453f463045727a01": {"alias": "a"}}}"#),
            None,
        )
        .unwrap();
        assert_eq!(c.config.allow_list().len(), 1);
        assert!(parse_node_config(Some("{"), None).is_err());
        assert!(parse_node_config(None, Some("[]")).is_err());
    }
}
