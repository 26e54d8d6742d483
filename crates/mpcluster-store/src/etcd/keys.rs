//! The etcd key layout of one mpcluster cluster, all under `/mpcluster/<cluster>/`:
//!
//! ```text
//! /mpcluster/<cluster>/kv/<key>/<node>   node KV value (no lease: outlives the node)
//! /mpcluster/<cluster>/nodes/<node>      "known node" registration, written at join (no lease)
//! /mpcluster/<cluster>/members/<node>    online marker, bound to the node's lease
//! /mpcluster/<cluster>/docs/<name>       document content
//! ```
//!
//! A node is a member if `nodes/<node>` exists, online if `members/<node>` exists too.

use mpcluster_core::NodeName;

use crate::StoreEvent;
use crate::names::check_name;

/// Key builder and parser for one cluster.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    root: String,
}

impl Keys {
    /// Keys of cluster `cluster` (already validated).
    pub(crate) fn new(cluster: &str) -> Keys {
        Keys {
            root: format!("/mpcluster/{cluster}/"),
        }
    }

    /// Everything of this cluster (a prefix).
    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    /// Every node KV value of every key (a prefix).
    pub(crate) fn kv_root(&self) -> String {
        format!("{}kv/", self.root)
    }

    pub(crate) fn kv_prefix(&self, key: &str) -> String {
        format!("{}kv/{key}/", self.root)
    }

    pub(crate) fn kv(&self, key: &str, node: &NodeName) -> String {
        format!("{}kv/{key}/{node}", self.root)
    }

    pub(crate) fn nodes_prefix(&self) -> String {
        format!("{}nodes/", self.root)
    }

    pub(crate) fn node(&self, node: &NodeName) -> String {
        format!("{}nodes/{node}", self.root)
    }

    pub(crate) fn members_prefix(&self) -> String {
        format!("{}members/", self.root)
    }

    pub(crate) fn member(&self, node: &NodeName) -> String {
        format!("{}members/{node}", self.root)
    }

    pub(crate) fn doc(&self, name: &str) -> String {
        format!("{}docs/{name}", self.root)
    }

    /// The event a change of `key` means; `None` for keys outside the layout.
    pub(crate) fn event_for(&self, key: &[u8]) -> Option<StoreEvent> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(&self.root)?;
        let (kind, rest) = rest.split_once('/')?;
        match kind {
            "kv" => {
                let (k, node) = rest.split_once('/')?;
                check_name("node KV key", k).ok()?;
                Some(StoreEvent::NodeKv {
                    key: k.to_owned(),
                    node: NodeName::new(node).ok()?,
                })
            }
            "members" | "nodes" => Some(StoreEvent::Members),
            "docs" => {
                check_name("document name", rest).ok()?;
                Some(StoreEvent::Document {
                    name: rest.to_owned(),
                })
            }
            _ => None,
        }
    }
}

/// The end of the range covering every key starting with `prefix` (etcd's `range_end`).
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (never for our keys): the whole keyspace from `prefix`.
    vec![0]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn layout_and_events() {
        let k = Keys::new("prod");
        let n = NodeName::new("pve1.example.com").unwrap();
        assert_eq!(
            k.kv("multipath", &n),
            "/mpcluster/prod/kv/multipath/pve1.example.com"
        );
        assert_eq!(k.kv_root(), "/mpcluster/prod/kv/");
        assert!(k.kv("multipath", &n).starts_with(&k.kv_root()));
        assert_eq!(k.member(&n), "/mpcluster/prod/members/pve1.example.com");
        assert_eq!(k.node(&n), "/mpcluster/prod/nodes/pve1.example.com");
        assert_eq!(
            k.doc("multipath-config"),
            "/mpcluster/prod/docs/multipath-config"
        );
        assert_eq!(
            k.event_for(k.kv("multipath", &n).as_bytes()),
            Some(StoreEvent::NodeKv {
                key: "multipath".into(),
                node: n.clone()
            })
        );
        assert_eq!(
            k.event_for(k.member(&n).as_bytes()),
            Some(StoreEvent::Members)
        );
        assert_eq!(
            k.event_for(k.node(&n).as_bytes()),
            Some(StoreEvent::Members)
        );
        assert_eq!(
            k.event_for(k.doc("storage").as_bytes()),
            Some(StoreEvent::Document {
                name: "storage".into()
            })
        );
        assert_eq!(k.event_for(b"/mpcluster/other/docs/storage"), None);
        assert_eq!(k.event_for(b"/mpcluster/prod/kv/Bad/n"), None);
        assert_eq!(k.event_for(b"/mpcluster/prod/kv/multipath/-bad"), None);
        assert_eq!(k.event_for(b"/mpcluster/prod/weird/x"), None);
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }
}
