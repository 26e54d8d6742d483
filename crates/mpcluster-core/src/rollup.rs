//! The cluster roll-up: fold per-node map summaries, liveness and expectations into one
//! LUN x node matrix with one cluster state per LUN.
//!
//! Entry point: [`aggregate`]. Semantics (the contract, from the Proxmox series' status patch):
//!
//! - Rows are the allow-list plus every WWID any node reports (online or not), sorted by WWID.
//! - An offline node gets an `unknown` cell only where it reported the WWID; it never drives the
//!   roll-up.
//! - An online reporter's cell carries its state (unrecognized strings were already clamped to
//!   `unknown`), `paths-active`, `paths-total` and `transport` when given.
//! - An online node in the LUN's expected set that lacks the map is `missing`, whether it
//!   broadcasts other maps or nothing at all; an expected node without any cell yet is `missing`
//!   if online and `unknown` if offline.
//! - The expected set applies to allow-listed WWIDs only. When it is empty it falls back to every
//!   actively multipathing online node (an online node with a broadcast). Off-list WWIDs list only
//!   the nodes that report them.
//! - A node whose broadcast was truncated to fit its size budget gets `unknown`, not `missing`,
//!   for an expected map its broadcast does not list (the map was probably dropped, not lost).
//! - `size` is the first defined size among online reporters in node-name order.
//! - `cluster-state` is the worst of optimal < degraded < missing < failed over the online cells,
//!   or `unknown` when no online node reports the LUN (a clamped `unknown` is no report) and none
//!   is expected to carry it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::broadcast::MapSummary;
use crate::ids::{Alias, NodeName, Wwid};
use crate::state::MapState;

/// The inputs of [`aggregate`], all borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RollupInput<'a> {
    /// The cluster WWID allow-list.
    pub allow: &'a BTreeSet<Wwid>,
    /// Configured aliases.
    pub aliases: &'a BTreeMap<Wwid, Alias>,
    /// The storage(s) consuming each LUN, already joined (`"a,b"`).
    pub consumers: &'a BTreeMap<Wwid, String>,
    /// Each broadcasting node's decoded maps (offline and stale nodes included), borrowed so a
    /// caller can keep decoded broadcasts across recomputations.
    pub node_maps: &'a BTreeMap<NodeName, &'a BTreeMap<Wwid, MapSummary>>,
    /// The nodes that are live; every other node counts as offline.
    pub online: &'a BTreeSet<NodeName>,
    /// Nodes expected to carry each allow-listed LUN.
    pub expected: &'a BTreeMap<Wwid, BTreeSet<NodeName>>,
    /// Nodes whose broadcast was truncated to fit its size budget: a map absent from such a
    /// broadcast may well be assembled, so it reads `unknown` there instead of `missing`.
    pub truncated: &'a BTreeSet<NodeName>,
}

/// One cell of the matrix: a LUN on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Cell {
    /// The map's state on this node.
    pub state: MapState,
    /// Usable paths. Present (possibly `null`) on cells of online reporters, absent on synthesized
    /// `missing`/`unknown` cells.
    #[serde(
        rename = "paths-active",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::present_or_null"
    )]
    #[cfg_attr(feature = "schema", schema(value_type = Option<u64>))]
    pub paths_active: Option<Option<u64>>,
    /// All paths; present exactly when `paths_active` is.
    #[serde(
        rename = "paths-total",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::present_or_null"
    )]
    #[cfg_attr(feature = "schema", schema(value_type = Option<u64>))]
    pub paths_total: Option<Option<u64>>,
    /// The transport the reporter named, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub transport: Option<Arc<str>>,
}

impl Cell {
    /// A synthesized cell that carries only a state (`missing` or `unknown`).
    pub fn bare(state: MapState) -> Cell {
        Cell {
            state,
            paths_active: None,
            paths_total: None,
            transport: None,
        }
    }

    /// A cell from an online node's report.
    pub fn reported(summary: &MapSummary) -> Cell {
        Cell {
            state: summary.state,
            paths_active: Some(summary.paths_active),
            paths_total: Some(summary.paths_total),
            transport: summary.transport.clone(),
        }
    }
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct LunStatus {
    /// The LUN's WWID.
    pub wwid: Wwid,
    /// The configured alias, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<Alias>,
    /// The storage(s) consuming this LUN, if any.
    #[serde(rename = "used-by", default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
    /// LUN size in bytes, as reported by a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The rolled-up state.
    #[serde(rename = "cluster-state")]
    pub cluster_state: MapState,
    /// Per-node cells.
    pub nodes: BTreeMap<NodeName, Cell>,
}

/// Fold the inputs into the matrix. Pure and deterministic; see the module docs for the rules.
///
/// Runs in one pass over the cells: every node's maps are sorted by WWID, so the rows are
/// produced by merging the per-node iterators instead of looking each WWID up in every node.
pub fn aggregate(input: &RollupInput<'_>) -> Vec<LunStatus> {
    let RollupInput {
        allow,
        aliases,
        consumers,
        node_maps,
        online,
        expected,
        truncated,
    } = *input;

    // Actively multipathing = online and broadcasting; the fallback expected set.
    let active_nodes: BTreeSet<NodeName> = node_maps
        .keys()
        .filter(|n| online.contains(*n))
        .cloned()
        .collect();
    let no_expectation = BTreeSet::new();

    struct Cursor<'a> {
        node: &'a NodeName,
        online: bool,
        maps: std::iter::Peekable<std::collections::btree_map::Iter<'a, Wwid, MapSummary>>,
    }
    let mut cursors: Vec<Cursor<'_>> = node_maps
        .iter()
        .map(|(node, maps)| Cursor {
            node,
            online: online.contains(node),
            maps: maps.iter().peekable(),
        })
        .collect();
    let mut allow_iter = allow.iter().peekable();

    let mut rows = Vec::new();
    loop {
        // The next row: the smallest WWID among the allow-list and every node's next map.
        let mut next: Option<&Wwid> = allow_iter.peek().copied();
        for c in &mut cursors {
            if let Some((w, _)) = c.maps.peek()
                && next.is_none_or(|n| *w < n)
            {
                next = Some(*w);
            }
        }
        let Some(wwid) = next else { break };
        let listed = allow_iter.next_if(|w| *w == wwid).is_some();

        let exp: &BTreeSet<NodeName> = if listed {
            match expected.get(wwid) {
                Some(set) if !set.is_empty() => set,
                _ => &active_nodes,
            }
        } else {
            &no_expectation
        };

        // Cells in node-name order (cursors are in node order).
        let mut cells: Vec<(NodeName, Cell)> = Vec::with_capacity(cursors.len());
        let mut worst = MapState::Optimal;
        let mut have_active = false;
        let mut size = None;

        for c in &mut cursors {
            let entry = c.maps.next_if(|(w, _)| *w == wwid).map(|(_, s)| s);
            if !c.online {
                if entry.is_some() {
                    cells.push((c.node.clone(), Cell::bare(MapState::Unknown)));
                }
                continue;
            }
            if let Some(summary) = entry {
                if summary.state != MapState::Unknown {
                    have_active = true;
                }
                worst = worst.worst(summary.state);
                size = size.or(summary.size);
                cells.push((c.node.clone(), Cell::reported(summary)));
            } else if exp.contains(c.node) {
                if truncated.contains(c.node) {
                    cells.push((c.node.clone(), Cell::bare(MapState::Unknown)));
                } else {
                    have_active = true;
                    worst = worst.worst(MapState::Missing);
                    cells.push((c.node.clone(), Cell::bare(MapState::Missing)));
                }
            }
        }

        // Expected nodes with no broadcast at all: missing when online (it lost every path
        // and cleared its broadcast), unknown when offline.
        if !exp.is_empty() {
            let reporters = cells.len();
            for node in exp {
                if cells[..reporters]
                    .binary_search_by(|(n, _)| n.cmp(node))
                    .is_ok()
                {
                    continue;
                }
                if online.contains(node) {
                    have_active = true;
                    worst = worst.worst(MapState::Missing);
                    cells.push((node.clone(), Cell::bare(MapState::Missing)));
                } else {
                    cells.push((node.clone(), Cell::bare(MapState::Unknown)));
                }
            }
        }

        rows.push(LunStatus {
            wwid: wwid.clone(),
            alias: aliases.get(wwid).cloned(),
            used_by: consumers.get(wwid).cloned(),
            size,
            cluster_state: if have_active {
                worst
            } else {
                MapState::Unknown
            },
            nodes: cells.into_iter().collect(),
        });
    }
    rows
}
