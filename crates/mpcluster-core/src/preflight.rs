//! Maintenance pre-flight: before taking down a target port, a node or one of its adapters,
//! would every node keep a usable path to every LUN it carries?
//!
//! Entry point: [`evaluate`] (pure: an [`Assembly`], with its nodes' current path detail and
//! liveness, and a [`PreflightRequest`] in, a [`PreflightReport`] out). For each LUN on each
//! live node it counts the usable paths now and those left once every path through a
//! component going down is gone:
//! - **unsafe**: some LUN would lose its last usable path on some node;
//! - **unknown**: nothing is lost as far as is known, but some node that carries LUNs has no
//!   current detail (offline, stale, unreadable or truncated): its paths cannot be checked;
//! - **safe** otherwise. LUNs that would keep fewer than `min-paths` usable paths are listed
//!   either way (reduced redundancy is not unsafe).
//!
//! A node going down (`node=N` without an adapter) stops using its LUNs: it is not checked.
//! `target=X` matches a path's iSCSI portal (`10.0.0.1:3260`, or the address alone), FC target
//! WWPN (any case, with or without `0x` or colons), NVMe controller address (or its `traddr`),
//! or the target's name (IQN, NQN, WWNN: every port of that target). `node=N,adapter=A`
//! matches N's paths through adapter A (`host3`, `nvme0`, the PCI address or iSCSI initiator
//! address multipathd reports, or the host WWPN).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeName, Wwid};
use crate::multipathd::PathReport;
use crate::status::Assembly;

/// Default of [`PreflightRequest::min_paths`].
pub const DEFAULT_MIN_PATHS: u32 = 2;

/// Most components in one request.
pub const MAX_DOWN: usize = 64;

/// A component to take down: a target port (`target`), a node (`node`), or one adapter of a
/// node (`node` and `adapter`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Down {
    /// A target port or target: iSCSI portal, FC WWPN, NVMe controller address, IQN or NQN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeName>,
    /// One host adapter of `node` (`host3`, a PCI address, an initiator address, a host WWPN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
}

/// A component that cannot be taken as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownError {
    /// Not `key=value` pairs of `target`, `node`, `adapter`.
    #[error(
        "{text:?}: expected target=<portal|WWPN|NQN>, node=<node> or node=<node>,adapter=<adapter>"
    )]
    Syntax {
        /// The text given.
        text: String,
    },
    /// An invalid node name.
    #[error("{text:?}: invalid node name")]
    Node {
        /// The text given.
        text: String,
        /// Why.
        #[source]
        source: crate::ids::IdError,
    },
    /// A combination that means nothing (`target` with `node`, `adapter` without `node`,
    /// nothing at all).
    #[error("{text:?}: give target=..., or node=... (optionally with adapter=...), not both")]
    Combination {
        /// The component as given.
        text: String,
    },
    /// More than [`MAX_DOWN`] components.
    #[error("at most {MAX_DOWN} components can be taken down at once")]
    TooMany,
}

impl Down {
    /// Parse `target=X`, `node=N` or `node=N,adapter=A` (the CLI's `--down`).
    pub fn parse(text: &str) -> Result<Down, DownError> {
        let mut down = Down {
            target: None,
            node: None,
            adapter: None,
        };
        let syntax = || DownError::Syntax {
            text: text.to_owned(),
        };
        for part in text.split(',') {
            let (key, value) = part.split_once('=').ok_or_else(syntax)?;
            let value = value.trim();
            if value.is_empty() {
                return Err(syntax());
            }
            let slot = match key.trim() {
                "target" => &mut down.target,
                "adapter" => &mut down.adapter,
                "node" => {
                    if down.node.is_some() {
                        return Err(syntax());
                    }
                    down.node = Some(NodeName::new(value).map_err(|source| DownError::Node {
                        text: text.to_owned(),
                        source,
                    })?);
                    continue;
                }
                _ => return Err(syntax()),
            };
            if slot.is_some() {
                return Err(syntax());
            }
            *slot = Some(value.to_owned());
        }
        down.check().map_err(|_| DownError::Combination {
            text: text.to_owned(),
        })?;
        Ok(down)
    }

    /// Exactly a target, or a node with or without an adapter.
    pub fn check(&self) -> Result<(), DownError> {
        let ok = match (&self.target, &self.node, &self.adapter) {
            (Some(t), None, None) => !t.trim().is_empty(),
            (None, Some(_), None) => true,
            (None, Some(_), Some(a)) => !a.trim().is_empty(),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(DownError::Combination {
                text: self.to_string(),
            })
        }
    }

    /// Whether a path of `node` goes through this component.
    fn matches(&self, node: &NodeName, path: &PathReport) -> bool {
        match (&self.target, &self.node, &self.adapter) {
            (Some(t), _, _) => target_matches(t, path),
            (None, Some(n), Some(a)) => n == node && adapter_matches(a, path),
            (None, Some(n), None) => n == node,
            (None, None, _) => false,
        }
    }
}

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.target {
            parts.push(format!("target={t}"));
        }
        if let Some(n) = &self.node {
            parts.push(format!("node={n}"));
        }
        if let Some(a) = &self.adapter {
            parts.push(format!("adapter={a}"));
        }
        f.write_str(&parts.join(","))
    }
}

/// A WWPN without `0x`, colons or case.
fn wwn(s: &str) -> String {
    let s = s.trim().to_ascii_lowercase();
    s.strip_prefix("0x").unwrap_or(&s).replace(':', "")
}

/// The address part of a portal (`10.0.0.1:3260` -> `10.0.0.1`, `[fd00::1]:3260` -> `fd00::1`).
fn portal_address(portal: &str) -> &str {
    if let Some(rest) = portal.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    portal.rsplit_once(':').map_or(portal, |(a, _)| a)
}

fn target_matches(wanted: &str, p: &PathReport) -> bool {
    let w = wanted.trim();
    let eq = |s: &Option<String>| s.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(w));
    if let Some(portal) = &p.portal
        && (portal.eq_ignore_ascii_case(w)
            || (!w.contains(':') && portal_address(portal).eq_ignore_ascii_case(w))
            || portal_address(portal).eq_ignore_ascii_case(w.trim_matches(['[', ']'])))
    {
        return true;
    }
    if let Some(wwpn) = &p.target_wwpn
        && !wwn(w).is_empty()
        && wwn(wwpn) == wwn(w)
    {
        return true;
    }
    if let Some(addr) = &p.nvme_address {
        let traddr = addr
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix("traddr="))
            .unwrap_or("");
        let trsvcid = addr
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix("trsvcid="))
            .unwrap_or("");
        if addr.eq_ignore_ascii_case(w)
            || (!traddr.is_empty() && traddr.eq_ignore_ascii_case(w))
            || (!traddr.is_empty() && format!("{traddr}:{trsvcid}").eq_ignore_ascii_case(w))
        {
            return true;
        }
    }
    eq(&p.iscsi_target) || eq(&p.nqn) || eq(&p.target_wwnn)
}

fn adapter_matches(wanted: &str, p: &PathReport) -> bool {
    let w = wanted.trim();
    p.adapter().is_some_and(|a| a.eq_ignore_ascii_case(w))
        || p.host_adapter
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(w))
        || p.host_wwpn
            .as_deref()
            .is_some_and(|h| !wwn(w).is_empty() && wwn(h) == wwn(w))
}

/// What to check: the components going down, and the redundancy to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PreflightRequest {
    /// The components to take down (all at once).
    pub down: Vec<Down>,
    /// List LUNs that would keep fewer usable paths than this on some node (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_paths: Option<u32>,
}

impl PreflightRequest {
    /// Check every component (and the count).
    pub fn check(&self) -> Result<(), DownError> {
        if self.down.len() > MAX_DOWN {
            return Err(DownError::TooMany);
        }
        self.down.iter().try_for_each(Down::check)
    }
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every LUN keeps a usable path on every node that carries it.
    Safe,
    /// Some LUN would lose its last usable path on some node.
    Unsafe,
    /// Nothing known is lost, but some node's paths are not known (offline, stale, truncated).
    Unknown,
}

impl Verdict {
    /// The CLI's exit code: 0 safe, 2 unsafe, 3 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Safe => 0,
            Verdict::Unsafe => 2,
            Verdict::Unknown => 3,
        }
    }

    /// `SAFE`, `UNSAFE`, `UNKNOWN`.
    pub fn as_upper(self) -> &'static str {
        match self {
            Verdict::Safe => "SAFE",
            Verdict::Unsafe => "UNSAFE",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

/// A LUN on a node, and what would be left of its paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct LunImpact {
    /// The LUN.
    pub wwid: Wwid,
    /// Its name: the cluster alias, else the map name on that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The storages using it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
    /// The node.
    pub node: NodeName,
    /// Usable paths now.
    pub usable: u64,
    /// Usable paths left after the maintenance.
    pub remaining: u64,
}

/// A node (or one of its LUNs) whose paths cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct Unchecked {
    /// The node.
    pub node: NodeName,
    /// The LUN, when only that one is affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwid: Option<Wwid>,
    /// Why.
    pub reason: String,
}

/// The pre-flight's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct PreflightReport {
    /// Safe, unsafe or unknown.
    pub verdict: Verdict,
    /// The components checked.
    pub down: Vec<Down>,
    /// The redundancy asked for.
    pub min_paths: u32,
    /// LUNs that would lose their last usable path, per node.
    pub lost: Vec<LunImpact>,
    /// LUNs that would keep some but fewer than `min-paths` usable paths, per node.
    pub below: Vec<LunImpact>,
    /// LUNs that have no usable path already (not caused by the maintenance).
    pub already_failed: Vec<LunImpact>,
    /// Nodes (or LUNs) whose paths could not be checked.
    pub unchecked: Vec<Unchecked>,
    /// Components that matched no known path or node (a typo?).
    pub unmatched: Vec<Down>,
    /// Live nodes whose paths were checked.
    pub checked_nodes: Vec<NodeName>,
}

/// Evaluate a pre-flight on an assembled status (see the module docs). The request should be
/// [`PreflightRequest::check`]ed; components that mean nothing simply match nothing.
pub fn evaluate(assembly: &Assembly, request: &PreflightRequest) -> PreflightReport {
    let min_paths = request.min_paths.unwrap_or(DEFAULT_MIN_PATHS);
    let nodes_down: BTreeSet<&NodeName> = request
        .down
        .iter()
        .filter(|d| d.adapter.is_none() && d.target.is_none())
        .filter_map(|d| d.node.as_ref())
        .collect();
    let rows: BTreeMap<&Wwid, &crate::rollup::LunStatus> =
        assembly.status.luns.iter().map(|l| (&l.wwid, l)).collect();
    let mut report = PreflightReport {
        verdict: Verdict::Safe,
        down: request.down.clone(),
        min_paths,
        lost: Vec::new(),
        below: Vec::new(),
        already_failed: Vec::new(),
        unchecked: Vec::new(),
        unmatched: Vec::new(),
        checked_nodes: Vec::new(),
    };
    let mut matched = vec![false; request.down.len()];
    let known: BTreeSet<&NodeName> = assembly.node_overview.iter().map(|o| &o.node).collect();
    for (i, d) in request.down.iter().enumerate() {
        if d.adapter.is_none() && d.node.as_ref().is_some_and(|n| known.contains(n)) {
            matched[i] = true;
        }
    }
    // Whether a node carries LUNs as far as anything says (its broadcast, its detail, a
    // storage, the matrix).
    let carries = |node: &NodeName| {
        assembly
            .node_overview
            .iter()
            .find(|o| &o.node == node)
            .is_some_and(|o| o.expected || o.maps.is_some_and(|m| m > 0))
            || assembly
                .details
                .get(node)
                .is_some_and(|d| !d.maps.is_empty())
            || assembly
                .status
                .luns
                .iter()
                .any(|l| l.nodes.contains_key(node))
    };
    for o in &assembly.node_overview {
        let node = &o.node;
        if nodes_down.contains(node) {
            continue;
        }
        let live = o.online && !o.stale;
        let detail = assembly.details.get(node).filter(|_| live);
        let Some(detail) = detail else {
            if carries(node) {
                let reason = if o.stale {
                    "its broadcast is stale: its paths are not known".to_owned()
                } else if !o.online {
                    "offline: its paths are not known".to_owned()
                } else if let Some(e) = &o.issues.detail_error {
                    e.clone()
                } else {
                    "no current path detail".to_owned()
                };
                report.unchecked.push(Unchecked {
                    node: node.clone(),
                    wwid: None,
                    reason,
                });
            }
            continue;
        };
        report.checked_nodes.push(node.clone());
        if let Some(n) = detail.truncated.filter(|n| *n > 0) {
            report.unchecked.push(Unchecked {
                node: node.clone(),
                wwid: None,
                reason: format!("{n} map(s) left out of its path detail (size budget)"),
            });
        }
        for map in &detail.maps {
            let row = rows.get(&map.wwid);
            let impact = |usable: u64, remaining: u64| LunImpact {
                wwid: map.wwid.clone(),
                name: row
                    .and_then(|r| r.alias.as_ref().map(|a| a.as_str().to_owned()))
                    .or_else(|| (map.name != map.wwid.as_str()).then(|| map.name.clone())),
                used_by: row.and_then(|r| r.used_by.clone()),
                node: node.clone(),
                usable,
                remaining,
            };
            if map.paths_omitted {
                report.unchecked.push(Unchecked {
                    node: node.clone(),
                    wwid: Some(map.wwid.clone()),
                    reason: "its paths were left out of the node's detail (size budget)".to_owned(),
                });
                continue;
            }
            let mut usable = 0u64;
            let mut remaining = 0u64;
            for path in map.path_groups.iter().flat_map(|g| &g.paths) {
                let mut gone = false;
                for (i, d) in request.down.iter().enumerate() {
                    if d.matches(node, path) {
                        matched[i] = true;
                        gone = true;
                    }
                }
                if path.usable {
                    usable += 1;
                    remaining += u64::from(!gone);
                }
            }
            if usable == 0 {
                report.already_failed.push(impact(0, 0));
            } else if remaining == 0 {
                report.lost.push(impact(usable, 0));
            } else if remaining < u64::from(min_paths) && remaining < usable {
                report.below.push(impact(usable, remaining));
            }
        }
    }
    report.unmatched = request
        .down
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(d, _)| d.clone())
        .collect();
    report.verdict = if !report.lost.is_empty() {
        Verdict::Unsafe
    } else if !report.unchecked.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Safe
    };
    report
}

impl PreflightReport {
    /// The report for people: the verdict line, then what is lost, reduced or not known.
    /// Peer text is made terminal-safe.
    pub fn render(&self) -> String {
        use crate::table::terminal_safe as safe;
        let mut out = String::new();
        let what: Vec<String> = self.down.iter().map(ToString::to_string).collect();
        let what = if what.is_empty() {
            "nothing".to_owned()
        } else {
            what.join(" + ")
        };
        let _ = writeln!(
            out,
            "{}: taking down {}{}",
            self.verdict.as_upper(),
            safe(&what),
            match self.verdict {
                Verdict::Safe => " leaves every LUN a usable path on every node",
                Verdict::Unsafe => " would cut LUNs off",
                Verdict::Unknown => ": some nodes' paths are not known",
            }
        );
        let lun = |i: &LunImpact| match &i.name {
            Some(n) => format!("{} ({})", safe(n), i.wwid),
            None => i.wwid.to_string(),
        };
        let used = |i: &LunImpact| {
            i.used_by
                .as_deref()
                .map(|u| format!("; used by {}", safe(u)))
                .unwrap_or_default()
        };
        if !self.lost.is_empty() {
            let _ = writeln!(out, "\nWould lose its last usable path:");
            for i in &self.lost {
                let _ = writeln!(
                    out,
                    "  {} on {}: all {} usable path{} go down{}",
                    lun(i),
                    i.node,
                    i.usable,
                    if i.usable == 1 { "" } else { "s" },
                    used(i)
                );
            }
        }
        if !self.below.is_empty() {
            let _ = writeln!(out, "\nWould drop below {} paths:", self.min_paths);
            for i in &self.below {
                let _ = writeln!(
                    out,
                    "  {} on {}: {} of {} usable paths left{}",
                    lun(i),
                    i.node,
                    i.remaining,
                    i.usable,
                    used(i)
                );
            }
        }
        if !self.unchecked.is_empty() {
            let _ = writeln!(out, "\nNot known:");
            for u in &self.unchecked {
                match &u.wwid {
                    Some(w) => {
                        let _ = writeln!(out, "  {} on {}: {}", w, u.node, safe(&u.reason));
                    }
                    None => {
                        let _ = writeln!(out, "  {}: {}", u.node, safe(&u.reason));
                    }
                }
            }
        }
        if !self.already_failed.is_empty() {
            let _ = writeln!(
                out,
                "\nAlready without a usable path (not by this maintenance):"
            );
            for i in &self.already_failed {
                let _ = writeln!(out, "  {} on {}{}", lun(i), i.node, used(i));
            }
        }
        if !self.unmatched.is_empty() {
            let _ = writeln!(out, "\nMatched no known path or node (a typo?):");
            for d in &self.unmatched {
                let _ = writeln!(out, "  {}", safe(&d.to_string()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_components() {
        assert_eq!(
            Down::parse("target=10.0.0.1:3260")
                .unwrap()
                .target
                .as_deref(),
            Some("10.0.0.1:3260")
        );
        let d = Down::parse("node=pve2,adapter=host3").unwrap();
        assert_eq!(
            (d.node.unwrap().as_str(), d.adapter.as_deref()),
            ("pve2", Some("host3"))
        );
        assert!(Down::parse("node=pve2").unwrap().adapter.is_none());
        for bad in [
            "",
            "target",
            "target=",
            "portal=1",
            "adapter=host3",
            "target=a,node=b",
            "node=a,node=b",
            "node=bad name",
        ] {
            assert!(Down::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Down::parse("node=pve2,adapter=host3").unwrap().to_string(),
            "node=pve2,adapter=host3"
        );
    }

    #[test]
    fn target_forms() {
        let p = PathReport {
            dev: "sdc".into(),
            portal: Some("10.0.0.1:3260".into()),
            iscsi_target: Some("iqn.x:y".into()),
            ..PathReport::default()
        };
        for w in ["10.0.0.1:3260", "10.0.0.1", "IQN.x:y"] {
            assert!(target_matches(w, &p), "{w}");
        }
        for w in ["10.0.0.1:3261", "10.0.0.11", "iqn.x:z"] {
            assert!(!target_matches(w, &p), "{w}");
        }
        let v6 = PathReport {
            portal: Some("[fd00::1]:3260".into()),
            ..PathReport::default()
        };
        assert!(target_matches("fd00::1", &v6) && target_matches("[fd00::1]:3260", &v6));
        let fc = PathReport {
            target_wwpn: Some("0x201000a098c1d2e3".into()),
            host_wwpn: Some("0x10000090fa1b2c3d".into()),
            hcil: Some("6:0:0:1".into()),
            ..PathReport::default()
        };
        assert!(target_matches("20:10:00:A0:98:C1:D2:E3", &fc));
        assert!(target_matches("201000a098c1d2e3", &fc));
        assert!(adapter_matches("host6", &fc) && adapter_matches("10:00:00:90:fa:1b:2c:3d", &fc));
        let nvme = PathReport {
            nvme_address: Some("traddr=10.0.1.5,trsvcid=4420".into()),
            ..PathReport::default()
        };
        assert!(target_matches("10.0.1.5", &nvme) && target_matches("10.0.1.5:4420", &nvme));
    }
}
