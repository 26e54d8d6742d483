//! Storage definitions (`multipath` and `lvm` on a multipath base) and the expectations the
//! status engine derives from them: which nodes should carry which LUN, and who consumes it.
//!
//! Entry points: [`StorageConfig::validate`] and [`expectations`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{IdError, NodeName, StorageId, Wwid};

/// Longest LVM volume group name accepted (LVM's own limit is 127).
pub const VGNAME_MAX_LEN: usize = 127;

/// A `multipath` storage: exposes the allow-listed maps on the nodes where it is enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipathStorage {
    /// Storage id.
    pub id: StorageId,
    /// Nodes where the storage is available; `None` = every cluster node.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "node_list")]
    pub nodes: Option<BTreeSet<NodeName>>,
    /// Disabled storages count nowhere.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable: bool,
}

/// An `lvm` storage whose volume group sits on one multipath LUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvmStorage {
    /// Storage id.
    pub id: StorageId,
    /// The volume group name.
    pub vgname: VgName,
    /// The base volume: `<multipath-storage-id>:<wwid>`.
    pub base: LvmBase,
    /// Nodes where the storage is available; `None` = every cluster node.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "node_list")]
    pub nodes: Option<BTreeSet<NodeName>>,
    /// Disabled storages count nowhere.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One storage definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Storage {
    /// A multipath storage.
    Multipath(MultipathStorage),
    /// An LVM storage on a multipath base.
    Lvm(LvmStorage),
}

impl Storage {
    /// The storage's id.
    pub fn id(&self) -> &StorageId {
        match self {
            Storage::Multipath(s) => &s.id,
            Storage::Lvm(s) => &s.id,
        }
    }

    /// The type name (`multipath`, `lvm`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Storage::Multipath(_) => "multipath",
            Storage::Lvm(_) => "lvm",
        }
    }
}

/// An LVM volume group name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VgName(String);

impl VgName {
    /// Validate: 1..=127 characters of `[A-Za-z0-9+_.-]`, not starting with `-`, not `.`/`..`.
    pub fn new(v: impl Into<String>) -> Result<Self, IdError> {
        let v = v.into();
        let err = |reason: &str| IdError {
            kind: "volume group name",
            value: v.chars().take(80).collect(),
            reason: reason.to_owned(),
        };
        if v.is_empty() || v.len() > VGNAME_MAX_LEN {
            return Err(err("must be 1 to 127 characters"));
        }
        if v.starts_with('-') || v == "." || v == ".." {
            return Err(err("must not start with '-' or be '.' or '..'"));
        }
        if v.chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '.' | '-')))
        {
            return Err(err("only A-Z, a-z, 0-9, '+', '_', '.' and '-' are allowed"));
        }
        Ok(VgName(v))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for VgName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for VgName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        VgName::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An LVM storage's base volume: a WWID on a multipath storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LvmBase {
    /// The multipath storage.
    pub storage: StorageId,
    /// The LUN.
    pub wwid: Wwid,
}

impl FromStr for LvmBase {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let Some((storage, wwid)) = s.split_once(':') else {
            return Err(IdError {
                kind: "base volume",
                value: s.chars().take(80).collect(),
                reason: "must be <multipath-storage-id>:<wwid>".to_owned(),
            });
        };
        Ok(LvmBase {
            storage: storage.parse()?,
            wwid: wwid.parse()?,
        })
    }
}

impl fmt::Display for LvmBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.storage, self.wwid)
    }
}

impl Serialize for LvmBase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LvmBase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `nodes` as a list: accepts a JSON array of names or a Proxmox-style comma/space separated
/// string; serializes as an array. An empty list is rejected (it would make the storage
/// available nowhere, which is what `disable` is for).
mod node_list {
    use std::collections::BTreeSet;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::ids::NodeName;

    pub fn serialize<S: Serializer>(
        v: &Option<BTreeSet<NodeName>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(set) => s.collect_seq(set),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeSet<NodeName>>, D::Error> {
        let names: Vec<String> = match Option::<Form>::deserialize(d)? {
            None => return Ok(None),
            Some(Form::List(v)) => v,
            Some(Form::Text(s)) => s
                .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        if names.is_empty() {
            return Err(D::Error::custom(
                "nodes must name at least one node (omit it for all nodes)",
            ));
        }
        names
            .into_iter()
            .map(|n| NodeName::new(n).map_err(D::Error::custom))
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Some)
    }
}

/// The storage definitions document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Every storage, in the order the admin added them.
    #[serde(default)]
    pub storages: Vec<Storage>,
    /// The document's format ([`crate::format`]): absent (1) in what this build writes; a
    /// newer one is refused before this type is parsed.
    #[serde(default, rename = "format", skip_serializing)]
    pub format: Option<u32>,
}

/// A storage document that is not consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageConfigError {
    /// Two storages share an id.
    #[error("storage id '{id}' is defined twice")]
    DuplicateId {
        /// The id.
        id: StorageId,
    },
    /// An LVM storage's base names a storage that does not exist.
    #[error("storage '{id}': base storage '{base}' does not exist")]
    UnknownBase {
        /// The LVM storage.
        id: StorageId,
        /// The missing base storage.
        base: StorageId,
    },
    /// An LVM storage's base is not a multipath storage.
    #[error("storage '{id}': base storage '{base}' is of type '{kind}', not 'multipath'")]
    BaseNotMultipath {
        /// The LVM storage.
        id: StorageId,
        /// The base storage.
        base: StorageId,
        /// Its type.
        kind: &'static str,
    },
}

impl StorageConfig {
    /// Look a storage up by id.
    pub fn get(&self, id: &str) -> Option<&Storage> {
        self.storages.iter().find(|s| s.id().as_str() == id)
    }

    /// Check cross-references: unique ids; every LVM base names an existing multipath storage.
    pub fn validate(&self) -> Result<(), StorageConfigError> {
        let mut seen = BTreeSet::new();
        for s in &self.storages {
            if !seen.insert(s.id()) {
                return Err(StorageConfigError::DuplicateId { id: s.id().clone() });
            }
        }
        for s in &self.storages {
            if let Storage::Lvm(lvm) = s {
                match self.get(lvm.base.storage.as_str()) {
                    None => {
                        return Err(StorageConfigError::UnknownBase {
                            id: lvm.id.clone(),
                            base: lvm.base.storage.clone(),
                        });
                    }
                    Some(Storage::Multipath(_)) => {}
                    Some(other) => {
                        return Err(StorageConfigError::BaseNotMultipath {
                            id: lvm.id.clone(),
                            base: lvm.base.storage.clone(),
                            kind: other.type_name(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The storages whose base is on `id` (what would break if `id` were removed).
    pub fn users_of(&self, id: &str) -> Vec<&StorageId> {
        self.storages
            .iter()
            .filter_map(|s| match s {
                Storage::Lvm(l) if l.base.storage.as_str() == id => Some(&l.id),
                _ => None,
            })
            .collect()
    }
}

/// What the storage configuration says about where LUNs should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Expectations {
    /// Every node on which an enabled multipath storage is available.
    #[serde(default, with = "node_set")]
    pub nodes: BTreeSet<NodeName>,
    /// Per WWID consumed by an enabled LVM storage (on an enabled multipath storage): the nodes
    /// where that chain is available. Empty sets are left out.
    #[serde(rename = "wwid-nodes", default, with = "wwid_node_sets")]
    pub wwid_nodes: BTreeMap<Wwid, BTreeSet<NodeName>>,
    /// Per WWID: the consuming LVM storage ids, sorted and comma-joined.
    #[serde(default)]
    pub consumers: BTreeMap<Wwid, String>,
}

/// Derive [`Expectations`] from the storage definitions and the cluster's node list.
///
/// - `nodes` = every node on which an enabled multipath storage is available (no `nodes` on the
///   storage = every cluster node).
/// - `wwid-nodes[w]` = union over enabled LVM storages on `w` whose base multipath storage is
///   enabled of `nodes(lvm) ∩ nodes(base)`.
/// - `consumers[w]` = the enabled LVM storages on `w`, sorted and comma-joined.
///
/// Disabled storages count nowhere; LVM storages on an unknown or non-multipath base are skipped.
pub fn expectations(config: &StorageConfig, cluster_nodes: &BTreeSet<NodeName>) -> Expectations {
    // Borrowed, not cloned: with one LVM storage per LUN, cloning the base's node set for
    // every LVM storage was O(LUNs x nodes) allocations per status recomputation.
    fn on<'a>(
        nodes: &'a Option<BTreeSet<NodeName>>,
        cluster_nodes: &'a BTreeSet<NodeName>,
    ) -> &'a BTreeSet<NodeName> {
        nodes.as_ref().unwrap_or(cluster_nodes)
    }
    let mut out = Expectations::default();
    let mut multipath: BTreeMap<&StorageId, &MultipathStorage> = BTreeMap::new();
    for s in &config.storages {
        if let Storage::Multipath(mp) = s {
            multipath.insert(&mp.id, mp);
            if !mp.disable {
                out.nodes
                    .extend(on(&mp.nodes, cluster_nodes).iter().cloned());
            }
        }
    }
    let mut consumers: BTreeMap<Wwid, BTreeSet<&StorageId>> = BTreeMap::new();
    for s in &config.storages {
        let Storage::Lvm(lvm) = s else { continue };
        if lvm.disable {
            continue;
        }
        let Some(base) = multipath.get(&lvm.base.storage) else {
            continue;
        };
        consumers
            .entry(lvm.base.wwid.clone())
            .or_default()
            .insert(&lvm.id);
        if base.disable {
            continue;
        }
        let both: BTreeSet<NodeName> = on(&lvm.nodes, cluster_nodes)
            .intersection(on(&base.nodes, cluster_nodes))
            .cloned()
            .collect();
        if !both.is_empty() {
            out.wwid_nodes
                .entry(lvm.base.wwid.clone())
                .or_default()
                .extend(both);
        }
    }
    out.consumers = consumers
        .into_iter()
        .map(|(w, ids)| {
            let joined = ids
                .into_iter()
                .map(StorageId::as_str)
                .collect::<Vec<_>>()
                .join(",");
            (w, joined)
        })
        .collect();
    out
}

/// A node set as a JSON object `{"<node>": 1}` (the Proxmox hash-set form). On input also
/// accepts `true` values, `0`/`false` (not in the set) and a plain array of names.
pub mod node_set {
    use std::collections::BTreeSet;
    use std::fmt;

    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    use crate::ids::NodeName;

    /// Serialize as `{"<node>": 1}`.
    pub fn serialize<S: Serializer>(v: &BTreeSet<NodeName>, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(v.len()))?;
        for n in v {
            m.serialize_entry(n, &1)?;
        }
        m.end()
    }

    struct SetVisitor;

    impl<'de> Visitor<'de> for SetVisitor {
        type Value = BTreeSet<NodeName>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object {\"<node>\": 1, ...} or an array of node names")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeSet::new();
            while let Some(node) = map.next_key::<NodeName>()? {
                let member = match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::Bool(b) => b,
                    serde_json::Value::Number(n) if n.as_u64() == Some(1) => true,
                    serde_json::Value::Number(n) if n.as_u64() == Some(0) => false,
                    other => {
                        return Err(de::Error::custom(format!(
                            "node '{node}': expected 1, 0, true or false, found {other}"
                        )));
                    }
                };
                if member {
                    out.insert(node);
                }
            }
            Ok(out)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeSet::new();
            while let Some(node) = seq.next_element::<NodeName>()? {
                out.insert(node);
            }
            Ok(out)
        }
    }

    /// Deserialize from an object or array.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<NodeName>, D::Error> {
        d.deserialize_any(SetVisitor)
    }
}

mod wwid_node_sets {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::ids::{NodeName, Wwid};

    #[derive(Serialize, Deserialize)]
    struct Set(#[serde(with = "super::node_set")] BTreeSet<NodeName>);

    pub fn serialize<S: Serializer>(
        v: &BTreeMap<Wwid, BTreeSet<NodeName>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(v.iter().map(|(k, v)| (k, Set(v.clone()))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Wwid, BTreeSet<NodeName>>, D::Error> {
        let m = BTreeMap::<Wwid, Set>::deserialize(d)?;
        Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn nodes(v: &[&str]) -> BTreeSet<NodeName> {
        v.iter().map(|n| NodeName::new(*n).unwrap()).collect()
    }

    fn cfg(v: serde_json::Value) -> StorageConfig {
        let c: StorageConfig = serde_json::from_value(v).unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn multipath_without_nodes_means_every_cluster_node() {
        let c = cfg(json!({"storages": [{"type": "multipath", "id": "mp"}]}));
        let e = expectations(&c, &nodes(&["a", "b", "c"]));
        assert_eq!(e.nodes, nodes(&["a", "b", "c"]));
        assert!(e.wwid_nodes.is_empty() && e.consumers.is_empty());
    }

    #[test]
    fn lvm_chain_intersects_node_restrictions() {
        let c = cfg(json!({"storages": [
            {"type": "multipath", "id": "mp", "nodes": "a,b"},
            {"type": "multipath", "id": "mp2", "nodes": ["c"]},
            {"type": "lvm", "id": "vm1", "vgname": "vg1", "base": "mp:w1", "nodes": ["b", "c"]},
            {"type": "lvm", "id": "vm0", "vgname": "vg0", "base": "mp:w1"},
            {"type": "lvm", "id": "vm2", "vgname": "vg2", "base": "mp2:w2"},
        ]}));
        let e = expectations(&c, &nodes(&["a", "b", "c", "d"]));
        assert_eq!(e.nodes, nodes(&["a", "b", "c"]));
        let w1 = Wwid::new("w1").unwrap();
        // vm1: {b,c} ∩ {a,b} = {b}; vm0: all ∩ {a,b} = {a,b}
        assert_eq!(e.wwid_nodes[&w1], nodes(&["a", "b"]));
        assert_eq!(e.consumers[&w1], "vm0,vm1");
        assert_eq!(e.wwid_nodes[&Wwid::new("w2").unwrap()], nodes(&["c"]));
    }

    #[test]
    fn disabled_storages_count_nowhere() {
        let c = cfg(json!({"storages": [
            {"type": "multipath", "id": "mp", "disable": true},
            {"type": "multipath", "id": "mp2", "nodes": ["a"]},
            {"type": "lvm", "id": "off", "vgname": "vg", "base": "mp2:w1", "disable": true},
            {"type": "lvm", "id": "onbad", "vgname": "vg", "base": "mp:w2"},
        ]}));
        let e = expectations(&c, &nodes(&["a", "b"]));
        assert_eq!(e.nodes, nodes(&["a"]));
        assert!(!e.consumers.contains_key(&Wwid::new("w1").unwrap()));
        // the LVM storage itself is enabled, so it is labelled as the consumer, but its chain is
        // broken by the disabled base: no expectation from it
        assert_eq!(e.consumers[&Wwid::new("w2").unwrap()], "onbad");
        assert!(e.wwid_nodes.is_empty());
    }

    #[test]
    fn disjoint_chain_leaves_no_empty_entry() {
        let c = cfg(json!({"storages": [
            {"type": "multipath", "id": "mp", "nodes": ["a"]},
            {"type": "lvm", "id": "lv", "vgname": "vg", "base": "mp:w1", "nodes": ["b"]},
        ]}));
        let e = expectations(&c, &nodes(&["a", "b"]));
        assert!(e.wwid_nodes.is_empty());
    }

    #[test]
    fn validation_errors_name_the_problem() {
        let c: StorageConfig = serde_json::from_value(json!({"storages": [
            {"type": "multipath", "id": "mp"}, {"type": "multipath", "id": "mp"}]}))
        .unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "storage id 'mp' is defined twice"
        );
        let c: StorageConfig = serde_json::from_value(json!({"storages": [
            {"type": "lvm", "id": "l1", "vgname": "vg", "base": "nope:w"}]}))
        .unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "storage 'l1': base storage 'nope' does not exist"
        );
        let c: StorageConfig = serde_json::from_value(json!({"storages": [
            {"type": "lvm", "id": "l1", "vgname": "vg", "base": "l2:w"},
            {"type": "lvm", "id": "l2", "vgname": "vg", "base": "l1:w"}]}))
        .unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("not 'multipath'")
        );
        for bad in [
            json!({"type": "lvm", "id": "l1", "vgname": "vg", "base": "nocolon"}),
            json!({"type": "lvm", "id": "l1", "vgname": "-vg", "base": "mp:w"}),
            json!({"type": "multipath", "id": "mp", "nodes": []}),
            json!({"type": "multipath", "id": "mp", "nodes": "a b\"c"}),
            json!({"type": "multipath", "id": "mp", "bogus": 1}),
            json!({"type": "iscsi", "id": "mp"}),
        ] {
            assert!(
                serde_json::from_value::<Storage>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn serde_round_trip() {
        let c = cfg(json!({"storages": [
            {"type": "multipath", "id": "mp", "nodes": "b,a"},
            {"type": "lvm", "id": "lv", "vgname": "vg", "base": "mp:w1", "disable": true},
        ]}));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({"storages": [
                {"type": "multipath", "id": "mp", "nodes": ["a", "b"]},
                {"type": "lvm", "id": "lv", "vgname": "vg", "base": "mp:w1", "disable": true},
            ]})
        );
        assert_eq!(serde_json::from_value::<StorageConfig>(v).unwrap(), c);
        assert_eq!(c.users_of("mp").len(), 1);
    }

    #[test]
    fn expectations_json_form() {
        let e: Expectations = serde_json::from_value(json!({
            "nodes": {"a": 1, "b": true, "c": 0},
            "wwid-nodes": {"w": ["a"]},
            "consumers": {"w": "lv"}
        }))
        .unwrap();
        assert_eq!(e.nodes, nodes(&["a", "b"]));
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"nodes": {"a": 1, "b": 1}, "wwid-nodes": {"w": {"a": 1}}, "consumers": {"w": "lv"}})
        );
        assert!(serde_json::from_value::<Expectations>(json!({"nodes": {"a": 2}})).is_err());
    }
}
