//! Synthetic cluster snapshots of any size, for benchmarks, load tests and the demo.
//!
//! Entry point: [`synthetic_snapshot`]. Deterministic for a given [`SyntheticSpec`].

use std::collections::BTreeMap;

use serde_json::json;

use crate::ids::{Alias, NodeName, Wwid};
use crate::snapshot::{KvSnapshot, Member, SNAPSHOT_VERSION, Snapshot, SnapshotConfig};
use crate::storage::Expectations;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticSpec {
    /// Number of nodes.
    pub nodes: usize,
    /// Number of LUNs, each reported by every node that is not silent.
    pub luns: usize,
    /// Percentage (0..=100) of node x LUN cells that are degraded.
    pub degraded_pct: u32,
    /// Percentage of nodes that are offline members.
    pub offline_pct: u32,
    /// Percentage of nodes whose broadcast is stale.
    pub stale_pct: u32,
    /// Snapshot clock.
    pub now: i64,
}

impl SyntheticSpec {
    /// `nodes` x `luns` with 10% degraded cells and 5% offline + 5% stale nodes.
    pub fn new(nodes: usize, luns: usize) -> Self {
        SyntheticSpec {
            nodes,
            luns,
            degraded_pct: 10,
            offline_pct: 5,
            stale_pct: 5,
            now: 1_796_000_000,
        }
    }
}

/// A cheap deterministic hash (SplitMix64 finalizer) so the picks are spread, not clustered.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn pick(pct: u32, a: u64, b: u64) -> bool {
    mix(a.wrapping_mul(1_000_003) ^ b) % 100 < u64::from(pct)
}

/// The WWID of synthetic LUN `i` (a realistic 33-character NAA form).
pub fn synthetic_wwid(i: usize) -> Wwid {
    #[allow(clippy::unwrap_used)] // the format always yields a valid WWID
    Wwid::new(format!("3600a0980383030534{:015x}", i)).unwrap()
}

/// The name of synthetic node `i`.
pub fn synthetic_node(i: usize) -> NodeName {
    #[allow(clippy::unwrap_used)] // the format always yields a valid node name
    NodeName::new(format!("node{:03}", i + 1)).unwrap()
}

/// Generate a snapshot.
pub fn synthetic_snapshot(spec: SyntheticSpec) -> Snapshot {
    let wwids: Vec<Wwid> = (0..spec.luns).map(synthetic_wwid).collect();
    let nodes: Vec<NodeName> = (0..spec.nodes).map(synthetic_node).collect();
    let mut members = BTreeMap::new();
    let mut multipath = BTreeMap::new();
    for (ni, node) in nodes.iter().enumerate() {
        let online = !pick(spec.offline_pct, ni as u64, 1);
        let stale = pick(spec.stale_pct, ni as u64, 2);
        members.insert(node.clone(), Member { online });
        let mut maps = serde_json::Map::new();
        for (li, w) in wwids.iter().enumerate() {
            let degraded = pick(spec.degraded_pct, ni as u64, li as u64 + 10);
            maps.insert(
                w.to_string(),
                json!({
                    "state": if degraded { "degraded" } else { "optimal" },
                    "paths-active": if degraded { 2 } else { 4 },
                    "paths-total": 4,
                    "transport": "iscsi",
                    "size": (li as u64 + 1) << 30,
                }),
            );
        }
        let time = if stale { spec.now - 3600 } else { spec.now - 5 };
        multipath.insert(
            node.clone(),
            json!({"time": time, "maps": maps}).to_string(),
        );
    }
    let mut aliases = BTreeMap::new();
    let mut consumers = BTreeMap::new();
    for (li, w) in wwids.iter().enumerate() {
        if li % 2 == 0 {
            #[allow(clippy::unwrap_used)] // always a valid alias
            aliases.insert(w.clone(), Alias::new(format!("lun{li}")).unwrap());
        }
        if li % 10 == 0 {
            consumers.insert(w.clone(), format!("lvm{li}"));
        }
    }
    Snapshot {
        version: SNAPSHOT_VERSION,
        now: spec.now,
        stale_after: None,
        config: SnapshotConfig {
            wwids: wwids.clone(),
            aliases,
        },
        members,
        kv: KvSnapshot {
            multipath,
            multipath_apply: BTreeMap::new(),
            multipath_collect: BTreeMap::new(),
            multipath_plan: BTreeMap::new(),
            multipath_detail: BTreeMap::new(),
        },
        expectations: Expectations {
            nodes: nodes.iter().cloned().collect(),
            wwid_nodes: BTreeMap::new(),
            consumers,
        },
        publish_errors: BTreeMap::new(),
        hint_since: BTreeMap::new(),
        flapping: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::assemble;

    #[test]
    fn shape() {
        let snap = synthetic_snapshot(SyntheticSpec::new(16, 256));
        let st = assemble(&snap).status;
        assert_eq!(st.luns.len(), 256);
        assert!(st.luns.iter().all(|l| l.nodes.len() == 16));
        let degraded = st
            .luns
            .iter()
            .filter(|l| l.cluster_state == crate::MapState::Degraded)
            .count();
        assert!(degraded > 0 && degraded < 256, "{degraded}");
        assert_eq!(synthetic_wwid(0).as_str().len(), 33);
    }
}
