//! Apply plans and their acceptance: what each node's next apply would change (published by
//! its agent under the node KV key `multipath-plan`, see [`mpcluster_core::plan`]) and the
//! `multipath-accept` document an admin edits to let an apply that renames or drops maps go
//! ahead ([`accept_node`], [`set_always`]).

use std::collections::BTreeMap;

use mpcluster_core::NodeName;
use mpcluster_core::plan::{Acceptance, ApplyPlan};
use mpcluster_core::snapshot::{doc_names, kv_keys};
use mpcluster_store::{BoxError, ClusterStore};
use serde::{Deserialize, Serialize};

use crate::document::{Document, edit_retrying, load};
use crate::error::EditError;

impl Document for Acceptance {
    const NAME: &'static str = doc_names::ACCEPT;
    const TITLE: &'static str = "the apply acceptance";

    fn empty() -> Self {
        Acceptance::default()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(serde_json::from_str(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    fn changes(before: &Self, after: &Self) -> Vec<String> {
        let mut out = crate::document::keyed_changes(
            "acceptance for node",
            before.nodes.iter(),
            after.nodes.iter(),
        );
        if before.always != after.always {
            out.push(format!("always-accept set to {}", after.always));
        }
        out
    }
}

/// One node's plan as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NodePlan {
    /// The node.
    pub node: NodeName,
    /// Its last published plan (`None` when it published none, or it is unreadable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ApplyPlan>,
    /// Why its published plan cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// An admin accepted exactly this plan for this node (or the cluster always accepts).
    pub accepted: bool,
}

/// Every node's plan (or one node's) and the cluster's acceptance setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct PlansView {
    /// Applies that rename or drop maps go ahead without an acceptance.
    pub always_accept: bool,
    /// Per node, sorted by name.
    pub nodes: Vec<NodePlan>,
}

/// Read the published plans (of `only`, or of every node that published one).
pub async fn plans(
    store: &dyn ClusterStore,
    only: Option<&NodeName>,
) -> Result<PlansView, EditError> {
    let acceptance = load::<Acceptance>(store).await?.value;
    let store_err = |source| EditError::Store {
        doc: kv_keys::PLAN,
        source,
    };
    let raw: BTreeMap<NodeName, String> = match only {
        None => store.get_all(kv_keys::PLAN).await.map_err(store_err)?,
        Some(node) => {
            let mut m = BTreeMap::new();
            if let Some(v) = store.get(kv_keys::PLAN, node).await.map_err(store_err)? {
                m.insert(node.clone(), v);
            }
            m
        }
    };
    let mut nodes: Vec<NodePlan> = raw
        .into_iter()
        .map(|(node, raw)| match ApplyPlan::decode(&raw) {
            Ok(plan) => NodePlan {
                accepted: plan.needs_acceptance() && acceptance.accepts(&node, &plan.digest),
                node,
                plan: Some(plan),
                error: None,
            },
            Err(e) => NodePlan {
                node,
                plan: None,
                error: Some(e.to_string()),
                accepted: false,
            },
        })
        .collect();
    if let Some(node) = only
        && nodes.is_empty()
    {
        nodes.push(NodePlan {
            node: node.clone(),
            plan: None,
            error: None,
            accepted: false,
        });
    }
    Ok(PlansView {
        always_accept: acceptance.always,
        nodes,
    })
}

/// What [`accept_node`] accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Accepted {
    /// The node.
    pub node: NodeName,
    /// The digest of the plan accepted.
    pub digest: String,
    /// What the accepted plan does ("apply waiting: would rename ...").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// Accept `node`'s current plan: its agent then applies it (renames and drops included). Only
/// the plan as published now is accepted: if the node later works out a different one, that
/// one waits again. Refused when the node published no plan, or one that renames and drops
/// nothing.
pub async fn accept_node(store: &dyn ClusterStore, node: &NodeName) -> Result<Accepted, EditError> {
    let raw = store
        .get(kv_keys::PLAN, node)
        .await
        .map_err(|source| EditError::Store {
            doc: kv_keys::PLAN,
            source,
        })?
        .ok_or_else(|| EditError::NotFound {
            what: format!(
                "an apply plan of node '{node}' (its agent has not published one: is it running \
                 and applying the configuration?)"
            ),
        })?;
    let plan = ApplyPlan::decode(&raw).map_err(|e| {
        EditError::Rejected(format!(
            "the apply plan of node '{node}' cannot be read: {e}"
        ))
    })?;
    if !plan.needs_acceptance() {
        return Err(EditError::Rejected(format!(
            "node '{node}' has nothing waiting: its next apply renames or drops no map that \
             was not asked for"
        )));
    }
    let digest = plan.digest.clone();
    let wanted = digest.clone();
    // Concurrent writers are retried whatever they changed: the last acceptance wins (each
    // names a plan its admin saw).
    edit_retrying::<Acceptance, _, _, _>(store, Some(|_: &Acceptance| ()), |a| {
        a.nodes.insert(node.clone(), wanted.clone());
        Ok(())
    })
    .await?;
    Ok(Accepted {
        node: node.clone(),
        digest,
        summary: plan.summary,
    })
}

/// Set whether applies that rename or drop maps go ahead without an acceptance.
pub async fn set_always(store: &dyn ClusterStore, always: bool) -> Result<(), EditError> {
    edit_retrying::<Acceptance, _, _, _>(store, Some(|a: &Acceptance| a.always), |a| {
        a.always = always;
        Ok(())
    })
    .await?;
    Ok(())
}

/// The acceptance document as stored (absent: nothing accepted).
pub async fn acceptance(store: &dyn ClusterStore) -> Result<Acceptance, EditError> {
    Ok(load::<Acceptance>(store).await?.value)
}

/// Forget `node`'s acceptance (node removal).
pub async fn forget_acceptance(store: &dyn ClusterStore, node: &NodeName) -> Result<(), EditError> {
    if !load::<Acceptance>(store)
        .await?
        .value
        .nodes
        .contains_key(node)
    {
        return Ok(());
    }
    let key = node.clone();
    edit_retrying::<Acceptance, _, _, _>(
        store,
        Some(move |a: &Acceptance| a.nodes.get(&key).cloned()),
        |a| {
            a.nodes.remove(node);
            Ok(())
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mpcluster_core::Wwid;
    use mpcluster_core::plan::Rename;
    use mpcluster_store::embedded::EmbeddedStore;

    fn plan(renames: usize) -> ApplyPlan {
        let renames = (0..renames)
            .map(|i| Rename {
                wwid: Wwid::new(format!("3600a0980383030534{i:014}")).unwrap(),
                from: format!("mpath{i}"),
                to: "x".into(),
                requested: false,
            })
            .collect();
        let mut p = ApplyPlan::new(1, renames, vec![], vec![], vec![], vec![]);
        p.set_waiting(true);
        p
    }

    #[tokio::test]
    async fn accept_takes_the_published_plan_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), mpcluster_store::EmbeddedOptions::default())
            .await
            .unwrap();
        let n = NodeName::new("pve1").unwrap();
        // Nothing published: refused, naming the node.
        let e = accept_node(&store, &n).await.unwrap_err();
        assert!(e.to_string().contains("pve1"), "{e}");
        // A plan without renames: nothing to accept.
        store
            .put(kv_keys::PLAN, &n, Some(&plan(0).encode()))
            .await
            .unwrap();
        let e = accept_node(&store, &n).await.unwrap_err();
        assert!(e.to_string().contains("nothing waiting"), "{e}");
        // A waiting plan: accepted by its digest.
        let p = plan(2);
        store
            .put(kv_keys::PLAN, &n, Some(&p.encode()))
            .await
            .unwrap();
        let a = accept_node(&store, &n).await.unwrap();
        assert_eq!(a.digest, p.digest);
        let acc = acceptance(&store).await.unwrap();
        assert!(acc.accepts(&n, &p.digest) && !acc.accepts(&n, &plan(3).digest));
        let view = plans(&store, None).await.unwrap();
        assert!(view.nodes[0].accepted && !view.always_accept);
        // A broken plan shows as an error, not as nothing.
        store
            .put(kv_keys::PLAN, &n, Some("{not json"))
            .await
            .unwrap();
        let view = plans(&store, Some(&n)).await.unwrap();
        assert!(view.nodes[0].error.is_some() && view.nodes[0].plan.is_none());
        set_always(&store, true).await.unwrap();
        assert!(plans(&store, None).await.unwrap().always_accept);
        forget_acceptance(&store, &n).await.unwrap();
        assert!(acceptance(&store).await.unwrap().nodes.is_empty());
    }
}
