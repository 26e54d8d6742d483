//! [`PveMembers`]: corosync membership as pmxcfs shows it in `<root>/.members`.
//!
//! pmxcfs generates the file on every read (`cfs_create_memberlist_msg`, pve-cluster
//! `src/pmxcfs/status.c`; see `../shared/docs/proxmox.md`, "get_members() / .members"):
//!
//! ```text
//! { "nodename": "<local node>", "version": <clinfo_version>,
//!   "cluster": { "name": "<cluster>", "version": <config_version>, "nodes": <count>, "quorate": 0|1 },
//!   "nodelist": { "<node>": { "id": <nodeid>, "online": 0|1, "ip": "<addr>" }, ... } }
//! ```
//!
//! Without a corosync cluster (a single Proxmox node never joined to a cluster) only
//! `{"nodename": ..., "version": ...}` is written: `PVE::Cluster::get_members()` is then
//! `undef`, the node is standalone. mpcluster treats it exactly like the seed does: an empty
//! membership, i.e. a standalone store in which every node with a fresh broadcast is online.
//! `online` is corosync's CPG membership of the node; it is the seed's notion of online.
//!
//! Parsing is strict about what liveness depends on (every node needs a valid name and an
//! `online` flag) and never yields an empty membership silently: pmxcfs never writes an empty
//! `nodelist`, so one is reported as an error. Unknown fields are ignored.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use mpcluster_core::NodeName;
use mpcluster_core::snapshot::Member;
use serde_json::{Map, Value};

use crate::StoreError;
use crate::files::watch::Fingerprint;

/// The file name under the pmxcfs root.
pub const MEMBERS_FILE: &str = ".members";

/// What `.members` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveMembers {
    /// This host's Proxmox node name (`nodename`).
    pub local: NodeName,
    /// The corosync cluster; `None` for a standalone node (no `nodelist`).
    pub cluster: Option<PveCluster>,
}

/// A configured corosync cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveCluster {
    /// The cluster name (`cluster.name`; empty if not given).
    pub name: String,
    /// Whether the cluster is quorate (`cluster.quorate`), if given. pmxcfs refuses every
    /// change while it is not.
    pub quorate: Option<bool>,
    /// Every configured node (never empty), online or not.
    pub nodes: BTreeMap<NodeName, PveNode>,
}

/// One node of the `nodelist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveNode {
    /// The corosync node id, if given.
    pub id: Option<u32>,
    /// Whether the node is in the cluster's CPG membership now.
    pub online: bool,
    /// Its address, if pmxcfs knows it.
    pub ip: Option<String>,
}

impl PveMembers {
    /// Parse the file's text. The error is the problem, in one line (the caller adds the
    /// file).
    pub fn parse(text: &str) -> Result<PveMembers, String> {
        if text.trim().is_empty() {
            return Err("the file is empty".to_owned());
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(top) = value else {
            return Err(format!("not a JSON object but {}", kind(&value)));
        };
        let local = match top.get("nodename") {
            None => return Err("no \"nodename\"".to_owned()),
            Some(Value::String(s)) => NodeName::new(s.as_str()).map_err(|e| {
                format!("\"nodename\" {s:?} is not a valid node name: {}", e.reason)
            })?,
            Some(other) => return Err(format!("\"nodename\" is {}, not a string", kind(other))),
        };
        let cluster = match (top.get("nodelist"), top.get("cluster")) {
            (None | Some(Value::Null), None | Some(Value::Null)) => None,
            (None | Some(Value::Null), Some(_)) => {
                return Err("\"cluster\" is given but \"nodelist\" is missing".to_owned());
            }
            (Some(Value::Object(list)), cluster) => Some(parse_cluster(list, cluster)?),
            (Some(other), _) => {
                return Err(format!("\"nodelist\" is {}, not an object", kind(other)));
            }
        };
        Ok(PveMembers { local, cluster })
    }

    /// Read and parse `path`; `store` names the store in errors. A missing file is
    /// [`StoreError::Unavailable`] (pmxcfs generates it whenever it runs), a malformed one
    /// [`StoreError::Corrupt`] naming the file and the problem.
    pub fn read(path: &Path, store: &str) -> Result<PveMembers, StoreError> {
        let text = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Unavailable {
                    store: store.to_owned(),
                    reason: format!(
                        "{} does not exist: pmxcfs is not running or not mounted there \
                         (is pve-cluster running?)",
                        path.display()
                    ),
                    source: None,
                });
            }
            Err(e) => return Err(StoreError::io(path, e)),
        };
        let corrupt = |problem: String| StoreError::Corrupt {
            store: store.to_owned(),
            location: path.display().to_string(),
            problem,
        };
        let text = String::from_utf8(text).map_err(|_| corrupt("not UTF-8".to_owned()))?;
        PveMembers::parse(&text).map_err(corrupt)
    }

    /// `true` without a corosync cluster.
    pub fn is_standalone(&self) -> bool {
        self.cluster.is_none()
    }

    /// The membership as [`crate::ClusterStore::members`] returns it: every configured node,
    /// online per its flag; empty when standalone.
    pub fn members(&self) -> BTreeMap<NodeName, Member> {
        self.cluster
            .iter()
            .flat_map(|c| &c.nodes)
            .map(|(n, node)| {
                (
                    n.clone(),
                    Member {
                        online: node.online,
                    },
                )
            })
            .collect()
    }

    /// `Ok` if `node` may join: it is listed in the `nodelist`, or the node is standalone.
    /// Otherwise [`StoreError::NotMember`]; `path` is the `.members` file, for the message.
    pub fn check_join(&self, node: &NodeName, path: &Path) -> Result<(), StoreError> {
        match &self.cluster {
            Some(c) if !c.nodes.contains_key(node) => Err(StoreError::NotMember {
                node: node.to_string(),
                membership: format!("the corosync membership in {}", path.display()),
                listed: c
                    .nodes
                    .keys()
                    .map(NodeName::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            _ => Ok(()),
        }
    }

    /// Whether pmxcfs accepts changes: standalone nodes always do; a cluster only while
    /// quorate (unknown counts as yes).
    pub fn accepts_writes(&self) -> bool {
        self.cluster
            .as_ref()
            .is_none_or(|c| c.quorate != Some(false))
    }
}

/// The membership's fingerprint for change detection: what `path` says (or why it cannot be
/// read), so that only changes of membership or liveness are announced, not of `version` or
/// addresses. Records in `standalone` what a good read said.
pub(crate) fn fingerprint(path: &Path, store: &str, standalone: &AtomicBool) -> Fingerprint {
    let text = match PveMembers::read(path, store) {
        Ok(m) => {
            standalone.store(m.is_standalone(), Ordering::SeqCst);
            format!("ok standalone={} {:?}", m.is_standalone(), m.members())
        }
        Err(e) => format!("error {e}"),
    };
    Fingerprint::content(text.as_bytes())
}

fn parse_cluster(list: &Map<String, Value>, cluster: Option<&Value>) -> Result<PveCluster, String> {
    if list.is_empty() {
        return Err(
            "\"nodelist\" is empty (pmxcfs lists every configured node, this one included)"
                .to_owned(),
        );
    }
    let (name, quorate) = match cluster {
        None | Some(Value::Null) => (String::new(), None),
        Some(Value::Object(c)) => {
            let name = match c.get("name") {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(format!(
                        "\"cluster\".\"name\" is {}, not a string",
                        kind(other)
                    ));
                }
            };
            let quorate = match c.get("quorate") {
                None => None,
                Some(v) => Some(flag(v).ok_or_else(|| {
                    format!("\"cluster\".\"quorate\" is {}, not 0 or 1", shown(v))
                })?),
            };
            (name, quorate)
        }
        Some(other) => return Err(format!("\"cluster\" is {}, not an object", kind(other))),
    };
    let mut nodes = BTreeMap::new();
    for (raw, entry) in list {
        let name = NodeName::new(raw.as_str()).map_err(|e| {
            format!(
                "node {raw:?} in \"nodelist\": not a valid node name: {}",
                e.reason
            )
        })?;
        let Value::Object(entry) = entry else {
            return Err(format!(
                "node {raw:?} in \"nodelist\" is {}, not an object",
                kind(entry)
            ));
        };
        let online = match entry.get("online") {
            None => {
                return Err(format!(
                    "node {raw:?} in \"nodelist\" has no \"online\" flag"
                ));
            }
            Some(v) => flag(v).ok_or_else(|| {
                format!(
                    "node {raw:?} in \"nodelist\": \"online\" is {}, not 0 or 1",
                    shown(v)
                )
            })?,
        };
        let id =
            match entry.get("id") {
                None => None,
                Some(v) => Some(v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(
                    || {
                        format!(
                            "node {raw:?} in \"nodelist\": \"id\" is {}, not a node id",
                            shown(v)
                        )
                    },
                )?),
            };
        let ip = match entry.get("ip") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(format!(
                    "node {raw:?} in \"nodelist\": \"ip\" is {}, not a string",
                    kind(other)
                ));
            }
        };
        nodes.insert(name, PveNode { id, online, ip });
    }
    Ok(PveCluster {
        name,
        quorate,
        nodes,
    })
}

/// pmxcfs writes flags as 0/1; true/false are accepted too.
fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value for a message, cut short.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn node(n: &str) -> NodeName {
        NodeName::new(n).unwrap()
    }

    /// Byte for byte what pmxcfs's `cfs_create_memberlist_msg` prints for a 3-node cluster
    /// with one node down (it knows no IP for that one).
    const THREE_NODES: &str = "{\n\"nodename\": \"pve1\",\n\"version\": 7,\n\"cluster\": { \"name\": \"prod\", \"version\": 3, \"nodes\": 3, \"quorate\": 1 },\n\"nodelist\": {\n  \"pve1\": { \"id\": 1, \"online\": 1, \"ip\": \"10.0.0.1\"},\n  \"pve2\": { \"id\": 2, \"online\": 1, \"ip\": \"10.0.0.2\"},\n  \"pve3\": { \"id\": 3, \"online\": 0}\n  }\n}\n";

    /// What it prints without a cluster configuration.
    const STANDALONE: &str = "{\n\"nodename\": \"pve1\",\n\"version\": 0\n}\n";

    #[test]
    fn parses_a_cluster() {
        let m = PveMembers::parse(THREE_NODES).unwrap();
        assert_eq!(m.local, node("pve1"));
        assert!(!m.is_standalone());
        assert!(m.accepts_writes());
        let c = m.cluster.as_ref().unwrap();
        assert_eq!(c.name, "prod");
        assert_eq!(c.quorate, Some(true));
        assert_eq!(
            c.nodes[&node("pve1")],
            PveNode {
                id: Some(1),
                online: true,
                ip: Some("10.0.0.1".into())
            }
        );
        assert_eq!(
            c.nodes[&node("pve3")],
            PveNode {
                id: Some(3),
                online: false,
                ip: None
            }
        );
        assert_eq!(
            m.members(),
            BTreeMap::from([
                (node("pve1"), Member { online: true }),
                (node("pve2"), Member { online: true }),
                (node("pve3"), Member { online: false }),
            ])
        );
    }

    #[test]
    fn standalone_has_no_membership() {
        let m = PveMembers::parse(STANDALONE).unwrap();
        assert_eq!(m.local, node("pve1"));
        assert!(m.is_standalone());
        assert!(m.members().is_empty());
        assert!(m.accepts_writes());
        // Explicit nulls read the same.
        let m =
            PveMembers::parse(r#"{"nodename": "a", "nodelist": null, "cluster": null}"#).unwrap();
        assert!(m.is_standalone());
    }

    #[test]
    fn a_single_node_cluster_is_a_cluster() {
        let m = PveMembers::parse(
            r#"{"nodename": "solo", "version": 2, "cluster": {"name": "c", "version": 1, "nodes": 1, "quorate": 1},
                "nodelist": {"solo": {"id": 1, "online": 1, "ip": "192.0.2.1"}}}"#,
        )
        .unwrap();
        assert!(!m.is_standalone());
        assert_eq!(m.members().len(), 1);
    }

    #[test]
    fn not_quorate_refuses_writes() {
        let text = THREE_NODES.replace("\"quorate\": 1", "\"quorate\": 0");
        let m = PveMembers::parse(&text).unwrap();
        assert!(!m.accepts_writes());
    }

    #[test]
    fn booleans_and_missing_optional_fields_are_fine() {
        let m = PveMembers::parse(
            r#"{"nodename": "a", "nodelist": {"a": {"online": true}, "b": {"online": false, "extra": [1]}}}"#,
        )
        .unwrap();
        let c = m.cluster.unwrap();
        assert_eq!(c.name, "");
        assert_eq!(c.quorate, None);
        assert!(c.nodes[&node("a")].online && !c.nodes[&node("b")].online);
    }

    #[test]
    fn malformed_files_are_explained() {
        let cases: &[(&str, &str)] = &[
            ("", "the file is empty"),
            ("  \n", "the file is empty"),
            ("{\"nodename\": \"a\",", "not valid JSON"),
            ("[1, 2]", "not a JSON object but an array"),
            ("{}", "no \"nodename\""),
            (
                r#"{"nodename": 5}"#,
                "\"nodename\" is a number, not a string",
            ),
            (
                r#"{"nodename": "a b"}"#,
                "\"nodename\" \"a b\" is not a valid node name",
            ),
            (
                r#"{"nodename": "a", "cluster": {"name": "c"}}"#,
                "\"cluster\" is given but \"nodelist\" is missing",
            ),
            (
                r#"{"nodename": "a", "nodelist": []}"#,
                "\"nodelist\" is an array, not an object",
            ),
            (
                r#"{"nodename": "a", "nodelist": {}}"#,
                "\"nodelist\" is empty",
            ),
            (
                r#"{"nodename": "a", "nodelist": {"a": 1}}"#,
                "node \"a\" in \"nodelist\" is a number, not an object",
            ),
            (
                r#"{"nodename": "a", "nodelist": {"a": {"id": 1}}}"#,
                "node \"a\" in \"nodelist\" has no \"online\" flag",
            ),
            (
                r#"{"nodename": "a", "nodelist": {"a": {"online": "yes"}}}"#,
                "node \"a\" in \"nodelist\": \"online\" is \"yes\", not 0 or 1",
            ),
            (
                r#"{"nodename": "a", "nodelist": {"a": {"online": 2}}}"#,
                "\"online\" is 2, not 0 or 1",
            ),
            (
                r#"{"nodename": "a", "nodelist": {"a/b": {"online": 1}}}"#,
                "node \"a/b\" in \"nodelist\": not a valid node name",
            ),
            (
                r#"{"nodename": "a", "nodelist": {"a": {"online": 1, "id": -1}}}"#,
                "\"id\" is -1, not a node id",
            ),
            (
                r#"{"nodename": "a", "nodelist": {"a": {"online": 1, "ip": 1}}}"#,
                "\"ip\" is a number, not a string",
            ),
            (
                r#"{"nodename": "a", "cluster": [], "nodelist": {"a": {"online": 1}}}"#,
                "\"cluster\" is an array, not an object",
            ),
            (
                r#"{"nodename": "a", "cluster": {"quorate": "x"}, "nodelist": {"a": {"online": 1}}}"#,
                "\"cluster\".\"quorate\" is \"x\", not 0 or 1",
            ),
        ];
        for (text, want) in cases {
            let e = PveMembers::parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MEMBERS_FILE);
        let e = PveMembers::read(&path, "pve store X").unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert!(e.to_string().contains("pmxcfs is not running"), "{e}");
        std::fs::write(&path, r#"{"nodename": "a", "nodelist": {}}"#).unwrap();
        let e = PveMembers::read(&path, "pve store X").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "pve store X holds unreadable data at {}: \"nodelist\" is empty (pmxcfs lists every configured node, this one included)",
                path.display()
            )
        );
        std::fs::write(&path, b"\xff\xfe").unwrap();
        let e = PveMembers::read(&path, "pve store X").unwrap_err();
        assert!(e.to_string().ends_with("not UTF-8"), "{e}");
        std::fs::write(&path, STANDALONE).unwrap();
        assert!(PveMembers::read(&path, "s").unwrap().is_standalone());
    }
}
