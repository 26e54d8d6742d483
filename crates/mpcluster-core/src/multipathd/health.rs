//! Map health and the node report: [`path_usable`], [`map_health`], and [`summarize`], which
//! turns a [`MapsReply`] into the serializable [`NodeReport`] (per-map summary plus per-path
//! detail) whose [`NodeReport::summaries`] feed the broadcast.
//!
//! Rules (requirement 4; `@0.9.4:multipath/main.c` `check_usable_paths` for "usable"):
//! - a path is **usable** when its `dm_st` is `active` and its `chk_st` is `ready` or `ghost`
//!   (ghost = ALUA/RDAC standby: healthy redundancy);
//! - `paths-active` = usable paths, `paths-total` = every path entry;
//! - **failed**: no usable path, or the map is suspended;
//! - **degraded**: some path not usable, or marginal (path or group `marginal_st`);
//! - **optimal** otherwise;
//! - **unknown** when the map's entry was structurally broken ([`Map::problems`]): we could
//!   not tell, which must not read as failed (nor as healthy).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{
    CheckerState, Map, MapDmState, MapsReply, MarginalState, Path, PathDmState, PathGroup,
};
use super::transport::{common_transport, transport_word};
use super::{MAX_ERRORS, Problems};
use crate::broadcast::MapSummary;
use crate::ids::Wwid;
use crate::state::MapState;

/// Longest free-text value (alias, selector, adapter, ...) copied into a report.
pub const REPORT_TEXT_MAX: usize = 256;

/// Whether a path can carry I/O: `dm_st` active and `chk_st` ready or ghost.
pub fn path_usable(path: &Path) -> bool {
    path.dm_st == Some(PathDmState::Active)
        && matches!(path.chk_st, Some(CheckerState::Ready | CheckerState::Ghost))
}

fn is_marginal(m: Option<&MarginalState>) -> bool {
    m == Some(&MarginalState::Marginal)
}

/// A map's health on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapHealth {
    /// `Optimal`, `Degraded`, `Failed`, or `Unknown` for a structurally broken entry.
    pub state: MapState,
    /// Usable paths.
    pub paths_active: u64,
    /// Path entries.
    pub paths_total: u64,
    /// No usable path while the kernel queues I/O (`queue_if_no_path`, queueing `on` or a
    /// recovery countdown): I/O to the map hangs instead of failing.
    pub queueing: bool,
}

/// Compute a map's health (see the module docs for the rules).
pub fn map_health(map: &Map) -> MapHealth {
    let mut active = 0u64;
    let mut total = 0u64;
    let mut impaired = false;
    for group in &map.path_groups {
        let group_marginal = is_marginal(group.marginal_st.as_ref());
        for path in &group.paths {
            total += 1;
            let usable = path_usable(path);
            active += u64::from(usable);
            impaired |= !usable || group_marginal || is_marginal(path.marginal_st.as_ref());
        }
    }
    let suspended = map.dm_st == Some(MapDmState::Suspend);
    let state = if !map.problems.is_empty() {
        MapState::Unknown
    } else if active == 0 || suspended {
        MapState::Failed
    } else if impaired {
        MapState::Degraded
    } else {
        MapState::Optimal
    };
    let queueing = active == 0
        && (map.queue_if_no_path() || map.queueing.as_ref().is_some_and(|q| q.holds_io()));
    MapHealth {
        state,
        paths_active: active,
        paths_total: total,
        queueing,
    }
}

/// The node report: every map with its summary and path detail, plus what went wrong.
/// JSON: `{"maps": [...], "errors": [...]}`, kebab-case keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NodeReport {
    /// The maps, in multipathd's order.
    pub maps: Vec<MapReport>,
    /// Problems met while parsing or summarizing (capped at [`super::MAX_ERRORS`] lines).
    #[serde(default)]
    pub errors: Vec<String>,
}

/// One map in the node report.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct MapReport {
    /// Alias (or the WWID).
    pub name: String,
    /// The WWID.
    pub wwid: Wwid,
    /// `dm-N`.
    #[serde(default)]
    pub sysfs: Option<String>,
    /// Size in bytes, when the caller knew it.
    #[serde(default)]
    pub size: Option<u64>,
    /// Health on this node.
    pub state: MapState,
    /// Usable paths.
    pub paths_active: u64,
    /// Path entries.
    pub paths_total: u64,
    /// Common transport word (`iscsi`, `fc`, `mixed`, ...), when the protocols are known.
    #[serde(default)]
    pub transport: Option<String>,
    /// No usable path while I/O is queued: I/O hangs ("failed (queueing)").
    #[serde(default, skip_serializing_if = "is_false")]
    pub queueing: bool,
    /// Set by the detail payload encoder when `path-groups` was left out to fit the budget.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paths_omitted: bool,
    /// The path groups with their paths.
    #[serde(default)]
    pub path_groups: Vec<GroupReport>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One path group in the node report.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct GroupReport {
    /// 1-based group number (kernel table order); `None` when unknown (raw formats).
    #[serde(default)]
    pub group: Option<u32>,
    /// The group's DM state (`active`, `enabled`, `disabled`).
    #[serde(default)]
    pub state: Option<String>,
    /// Group priority.
    #[serde(default)]
    pub pri: Option<i64>,
    /// Path selector, e.g. `service-time 0`.
    #[serde(default)]
    pub selector: Option<String>,
    /// Whether the group is marginal.
    #[serde(default)]
    pub marginal: bool,
    /// The group's paths.
    #[serde(default)]
    pub paths: Vec<PathReport>,
}

/// One path in the node report (unknown fields are left out of its JSON).
///
/// The target port a path goes through is what multipathd reports where it knows it (FC:
/// `target-wwpn`); where it does not (iSCSI: multipathd names the target IQN and the initiator
/// side, not the portal; NVMe-oF: nothing) the agent adds it from sysfs ([`PathSysfs`]):
/// `portal`, `nvme-address`, `nqn`, and `target-wwpn` from the FC remote port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct PathReport {
    /// Device name (`sdc`), `-` if vanished.
    pub dev: String,
    /// `major:minor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_t: Option<String>,
    /// Kernel (DM) state: `active`, `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_st: Option<String>,
    /// Checker state: `ready`, `ghost`, `faulty`, `i/o pending`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chk_st: Option<String>,
    /// Device state: `running`, `offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_st: Option<String>,
    /// Whether the path counts as usable.
    pub usable: bool,
    /// Whether the path (or its group) is marginal.
    #[serde(default)]
    pub marginal: bool,
    /// Path checker (`tur`, `directio`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<String>,
    /// Path priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pri: Option<i64>,
    /// `%P` protocol (`scsi:iscsi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Transport word of the protocol (`iscsi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// host:channel:id:lun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcil: Option<String>,
    /// Host adapter: PCI address (FC/SAS) or iSCSI initiator address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_adapter: Option<String>,
    /// Host WWNN (FC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_wwnn: Option<String>,
    /// Host WWPN (FC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_wwpn: Option<String>,
    /// Target WWNN (FC node name, SAS address, or the iSCSI IQN as multipathd reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_wwnn: Option<String>,
    /// Target WWPN (FC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_wwpn: Option<String>,
    /// The iSCSI target name, when the target WWNN is one (`iqn.`, `eui.`, `naa.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iscsi_target: Option<String>,
    /// LUN number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lun: Option<u64>,
    /// iSCSI: the portal the path's session is connected to, `address:port` (IPv6 in
    /// brackets), from sysfs (the connection's `persistent_address` / `persistent_port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<String>,
    /// NVMe-oF: the controller's address as sysfs gives it (`traddr=10.0.0.1,trsvcid=4420`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvme_address: Option<String>,
    /// NVMe-oF: the subsystem NQN (sysfs `subsysnqn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nqn: Option<String>,
}

/// What sysfs says about a path's target side (the agent reads it: `mpcluster_agent::sysfs`).
/// Every field is optional; [`PathReport::enrich`] fills in only what the report lacks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathSysfs {
    /// iSCSI portal `address:port`.
    pub portal: Option<String>,
    /// iSCSI target name (the session's `targetname`).
    pub iscsi_target: Option<String>,
    /// FC remote port WWPN (`fc_remote_ports/rport-*/port_name`).
    pub target_wwpn: Option<String>,
    /// FC remote port WWNN (`node_name`).
    pub target_wwnn: Option<String>,
    /// NVMe controller address.
    pub nvme_address: Option<String>,
    /// NVMe subsystem NQN.
    pub nqn: Option<String>,
}

impl PathSysfs {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == PathSysfs::default()
    }
}

/// What kind of target port a [`TargetPort`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PortKind {
    /// An iSCSI portal (`address:port`).
    Portal,
    /// An FC target port (WWPN).
    Wwpn,
    /// An NVMe-oF controller address.
    NvmeController,
    /// Only the target's name is known (iSCSI IQN, NQN or target WWNN), not the port.
    Target,
}

impl PortKind {
    /// How people call it ("target portal", ...).
    pub fn noun(self) -> &'static str {
        match self {
            PortKind::Portal => "target portal",
            PortKind::Wwpn => "target port",
            PortKind::NvmeController => "NVMe controller",
            PortKind::Target => "target",
        }
    }
}

/// The target port a path goes through, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetPort {
    /// What `id` is.
    pub kind: PortKind,
    /// The portal, WWPN, controller address or (kind `target`) target name.
    pub id: String,
    /// The target's name (IQN, NQN, WWNN), when known and not `id` itself.
    pub target: Option<String>,
}

impl PathReport {
    /// Fill in what sysfs knows and the report lacks (values are clipped like multipathd's).
    pub fn enrich(&mut self, info: PathSysfs) {
        fn fill(slot: &mut Option<String>, value: Option<String>) {
            if slot.is_none()
                && let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty())
            {
                *slot = Some(clip(v, REPORT_TEXT_MAX));
            }
        }
        fill(&mut self.portal, info.portal);
        fill(&mut self.iscsi_target, info.iscsi_target);
        fill(&mut self.target_wwpn, info.target_wwpn);
        fill(&mut self.target_wwnn, info.target_wwnn);
        fill(&mut self.nvme_address, info.nvme_address);
        fill(&mut self.nqn, info.nqn);
    }

    /// The target port this path goes through: the iSCSI portal, the FC target WWPN, the NVMe
    /// controller address, or (kind [`PortKind::Target`]) only the target's name.
    pub fn target_port(&self) -> Option<TargetPort> {
        let name = self
            .iscsi_target
            .as_deref()
            .or(self.nqn.as_deref())
            .or(self.target_wwnn.as_deref())
            .map(str::to_owned);
        let (kind, id) = if let Some(p) = &self.portal {
            (PortKind::Portal, p.clone())
        } else if let Some(w) = &self.target_wwpn {
            (PortKind::Wwpn, w.to_ascii_lowercase())
        } else if let Some(a) = &self.nvme_address {
            (PortKind::NvmeController, a.clone())
        } else {
            return name.map(|id| TargetPort {
                kind: PortKind::Target,
                id,
                target: None,
            });
        };
        Some(TargetPort {
            kind,
            id,
            target: name,
        })
    }

    /// The host adapter the path leaves this node through: the SCSI host (`host3`, from
    /// `hcil`), else the NVMe controller (`nvme0`, from the device name), else multipathd's
    /// `host-adapter` (PCI address or iSCSI initiator address).
    pub fn adapter(&self) -> Option<String> {
        if let Some(h) = self.hcil.as_deref().and_then(|h| h.split(':').next())
            && !h.is_empty()
            && h.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(format!("host{h}"));
        }
        if let Some(rest) = self.dev.strip_prefix("nvme") {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() {
                return Some(format!("nvme{digits}"));
            }
        }
        self.host_adapter.clone()
    }
}

impl MapReport {
    /// The broadcast summary of this map.
    pub fn summary(&self) -> MapSummary {
        MapSummary {
            state: self.state,
            paths_active: Some(self.paths_active),
            paths_total: Some(self.paths_total),
            transport: self.transport.as_deref().map(Arc::from),
            size: self.size,
        }
    }
}

impl NodeReport {
    /// Add what sysfs knows about each path's target side: `lookup` gets a path's device name
    /// and returns its [`PathSysfs`] (the agent reads sysfs; `None` = nothing known).
    pub fn enrich_paths(&mut self, mut lookup: impl FnMut(&str) -> Option<PathSysfs>) {
        for map in &mut self.maps {
            for group in &mut map.path_groups {
                for path in &mut group.paths {
                    if let Some(info) = lookup(&path.dev) {
                        path.enrich(info);
                    }
                }
            }
        }
    }

    /// The per-WWID summaries for the broadcast ([`crate::payload`]). Empty when no map is
    /// assembled, which clears the broadcast.
    pub fn summaries(&self) -> BTreeMap<Wwid, MapSummary> {
        self.maps
            .iter()
            .map(|m| (m.wwid.clone(), m.summary()))
            .collect()
    }
}

impl MapsReply {
    /// The `dm-N` names of the maps, for reading `/sys/block/<dm-N>/size` (each is validated
    /// as `dm-<digits>`, so it is safe in a path).
    pub fn sysfs_names(&self) -> impl Iterator<Item = &str> {
        self.maps.iter().filter_map(|m| m.sysfs.as_deref())
    }
}

/// Cut a string to `max` bytes at a character boundary, marking the cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn clip_opt(s: Option<&str>) -> Option<String> {
    s.map(|s| clip(s, REPORT_TEXT_MAX))
}

/// Build the node report. `size_of` maps a `dm-N` name to the map's size in bytes (the agent
/// reads `/sys/block/<dm-N>/size` × 512 for [`MapsReply::sysfs_names`]); `None` leaves `size`
/// out.
///
/// A map whose WWID is not a valid [`Wwid`], or repeats an earlier map's, is left out and named
/// in [`NodeReport::errors`], as are the reply's own errors and each map's problems.
pub fn summarize<F>(reply: &MapsReply, size_of: F) -> NodeReport
where
    F: Fn(&str) -> Option<u64>,
{
    summarize_maps(reply.errors.iter().cloned(), &reply.maps, size_of)
}

/// [`summarize`], consuming the reply: each map is dropped as soon as its report is built, so
/// the reply and the report are not both held whole (a collector's peak memory).
pub fn summarize_owned<F>(reply: MapsReply, size_of: F) -> NodeReport
where
    F: Fn(&str) -> Option<u64>,
{
    summarize_maps(reply.errors, reply.maps, size_of)
}

fn summarize_maps<M, F>(
    reply_errors: impl IntoIterator<Item = String>,
    reply_maps: impl IntoIterator<Item = M>,
    size_of: F,
) -> NodeReport
where
    M: std::borrow::Borrow<Map>,
    F: Fn(&str) -> Option<u64>,
{
    let mut errors = Problems::new(MAX_ERRORS);
    errors.extend(reply_errors);
    let mut seen: BTreeMap<Wwid, ()> = BTreeMap::new();
    let reply_maps = reply_maps.into_iter();
    let mut maps = Vec::with_capacity(reply_maps.size_hint().0);
    for map in reply_maps {
        let map: &Map = map.borrow();
        let name = clip(&map.name, REPORT_TEXT_MAX);
        let wwid = match Wwid::new(map.wwid.as_str()) {
            Ok(w) => w,
            Err(e) => {
                errors.push(|| format!("map {name:?}: {e}; left out"));
                continue;
            }
        };
        match seen.entry(wwid.clone()) {
            Entry::Vacant(v) => {
                v.insert(());
            }
            Entry::Occupied(_) => {
                errors.push(|| format!("map {name:?}: WWID {wwid} listed twice; left out"));
                continue;
            }
        }
        for problem in &map.problems {
            errors.push(|| format!("map {name:?} ({wwid}): {problem}; state unknown"));
        }
        let health = map_health(map);
        let transport = common_transport(map.paths().map(|p| p.protocol.as_deref()));
        maps.push(MapReport {
            size: map.sysfs.as_deref().and_then(&size_of),
            sysfs: map.sysfs.clone(),
            state: health.state,
            paths_active: health.paths_active,
            paths_total: health.paths_total,
            transport,
            queueing: health.queueing,
            paths_omitted: false,
            path_groups: map.path_groups.iter().map(group_report).collect(),
            name,
            wwid,
        });
    }
    NodeReport {
        maps,
        errors: errors.finish(),
    }
}

fn group_report(group: &PathGroup) -> GroupReport {
    let marginal = is_marginal(group.marginal_st.as_ref());
    GroupReport {
        group: group.group,
        state: group
            .dm_st
            .as_ref()
            .map(|s| clip(s.as_str(), REPORT_TEXT_MAX)),
        pri: group.pri,
        selector: clip_opt(group.selector.as_deref()),
        marginal,
        paths: group
            .paths
            .iter()
            .map(|p| path_report(p, marginal))
            .collect(),
    }
}

fn path_report(path: &Path, group_marginal: bool) -> PathReport {
    let iscsi_target = path
        .target_wwnn
        .as_deref()
        .filter(|t| ["iqn.", "eui.", "naa."].iter().any(|p| t.starts_with(p)))
        .map(|t| clip(t, REPORT_TEXT_MAX));
    PathReport {
        dev: clip(&path.dev, REPORT_TEXT_MAX),
        dev_t: clip_opt(path.dev_t.as_deref()),
        dm_st: path
            .dm_st
            .as_ref()
            .map(|s| clip(s.as_str(), REPORT_TEXT_MAX)),
        chk_st: path
            .chk_st
            .as_ref()
            .map(|s| clip(s.as_str(), REPORT_TEXT_MAX)),
        dev_st: path
            .dev_st
            .as_ref()
            .map(|s| clip(s.as_str(), REPORT_TEXT_MAX)),
        usable: path_usable(path),
        marginal: group_marginal || is_marginal(path.marginal_st.as_ref()),
        checker: clip_opt(path.checker.as_deref()),
        pri: path.pri,
        protocol: clip_opt(path.protocol.as_deref()),
        transport: path
            .protocol
            .as_deref()
            .and_then(transport_word)
            .map(|w| w.into_owned()),
        hcil: clip_opt(path.hcil.as_deref()),
        host_adapter: clip_opt(path.host_adapter.as_deref()),
        host_wwnn: clip_opt(path.host_wwnn.as_deref()),
        host_wwpn: clip_opt(path.host_wwpn.as_deref()),
        target_wwnn: clip_opt(path.target_wwnn.as_deref()),
        target_wwpn: clip_opt(path.target_wwpn.as_deref()),
        iscsi_target,
        lun: path.lun(),
        portal: None,
        nvme_address: None,
        nqn: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn path(dev: &str, dm: &str, chk: &str) -> Path {
        let mut p = Path::new(dev);
        p.dm_st = Some(PathDmState::parse(dm));
        p.chk_st = Some(CheckerState::parse(chk));
        p
    }

    fn map_with(paths: Vec<Path>) -> Map {
        let mut m = Map::new("m", "w");
        m.path_groups.push(PathGroup {
            paths,
            ..PathGroup::default()
        });
        m
    }

    #[test]
    fn usable_rules() {
        assert!(path_usable(&path("a", "active", "ready")));
        assert!(path_usable(&path("a", "active", "ghost")));
        assert!(!path_usable(&path("a", "failed", "ready")));
        assert!(!path_usable(&path("a", "active", "i/o pending")));
        assert!(!path_usable(&path("a", "active", "shaky")));
        assert!(!path_usable(&Path::new("a")));
    }

    #[test]
    fn states() {
        let h = map_health(&map_with(vec![
            path("a", "active", "ready"),
            path("b", "active", "ghost"),
        ]));
        assert_eq!(
            (h.state, h.paths_active, h.paths_total),
            (MapState::Optimal, 2, 2)
        );
        let h = map_health(&map_with(vec![
            path("a", "active", "ready"),
            path("b", "failed", "faulty"),
        ]));
        assert_eq!(
            (h.state, h.paths_active, h.paths_total),
            (MapState::Degraded, 1, 2)
        );
        let mut m = map_with(vec![path("a", "failed", "faulty")]);
        m.features = Some("1 queue_if_no_path".into());
        let h = map_health(&m);
        assert_eq!((h.state, h.queueing), (MapState::Failed, true));
        m.path_groups.clear();
        assert_eq!(map_health(&m).state, MapState::Failed);
        let mut m = map_with(vec![path("a", "active", "ready")]);
        m.dm_st = Some(MapDmState::Suspend);
        let h = map_health(&m);
        assert_eq!(
            (h.state, h.paths_active, h.queueing),
            (MapState::Failed, 1, false)
        );
        let mut m = map_with(vec![path("a", "active", "ready")]);
        m.path_groups[0].paths[0].marginal_st = Some(MarginalState::Marginal);
        assert_eq!(map_health(&m).state, MapState::Degraded);
        let mut m = map_with(vec![path("a", "active", "ready")]);
        m.path_groups[0].marginal_st = Some(MarginalState::Marginal);
        assert_eq!(map_health(&m).state, MapState::Degraded);
        let mut m = map_with(vec![path("a", "active", "ready")]);
        m.problems.push("broken".into());
        assert_eq!(map_health(&m).state, MapState::Unknown);
    }

    #[test]
    fn summarize_drops_invalid_and_duplicate_wwids() {
        let mut reply = MapsReply {
            source: super::super::ReplySource::Json,
            major_version: Some(0),
            minor_version: Some(1),
            maps: vec![
                map_with(vec![path("a", "active", "ready")]),
                map_with(vec![path("b", "active", "ready")]),
                Map::new("bad", "has space"),
            ],
            errors: vec!["earlier".into()],
        };
        reply.maps[0].sysfs = Some("dm-3".into());
        let r = summarize(&reply, |dm| (dm == "dm-3").then_some(42));
        assert_eq!(r.maps.len(), 1);
        assert_eq!(r.maps[0].size, Some(42));
        assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
        let json = serde_json::to_value(&r).unwrap();
        let m = &json["maps"][0];
        for key in [
            "name",
            "wwid",
            "sysfs",
            "size",
            "state",
            "paths-active",
            "paths-total",
            "transport",
            "path-groups",
        ] {
            assert!(m.get(key).is_some(), "{key}");
        }
        assert_eq!(m["path-groups"][0]["paths"][0]["dev"], "a");
        let back: NodeReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn enrich_and_identity() {
        let mut p = PathReport {
            dev: "sdc".into(),
            hcil: Some("3:0:0:1".into()),
            target_wwnn: Some("iqn.2003-01.org.example:vm-disks".into()),
            iscsi_target: Some("iqn.2003-01.org.example:vm-disks".into()),
            ..PathReport::default()
        };
        assert_eq!(
            p.target_port().map(|t| (t.kind, t.id)),
            Some((PortKind::Target, "iqn.2003-01.org.example:vm-disks".into()))
        );
        p.enrich(PathSysfs {
            portal: Some(" 10.0.0.1:3260\n".into()),
            iscsi_target: Some("other".into()),
            ..PathSysfs::default()
        });
        assert_eq!(p.portal.as_deref(), Some("10.0.0.1:3260"));
        let t = p.target_port().unwrap();
        assert_eq!(t.kind, PortKind::Portal);
        assert_eq!(
            t.target.as_deref(),
            Some("iqn.2003-01.org.example:vm-disks")
        );
        assert_eq!(
            p.iscsi_target.as_deref(),
            Some("iqn.2003-01.org.example:vm-disks")
        );
        assert_eq!(p.adapter().as_deref(), Some("host3"));
        let fc = PathReport {
            dev: "sdf".into(),
            target_wwpn: Some("0x201000A098C1D2E3".into()),
            host_adapter: Some("0000:3b:00.0".into()),
            ..PathReport::default()
        };
        let t = fc.target_port().unwrap();
        assert_eq!(
            (t.kind, t.id.as_str()),
            (PortKind::Wwpn, "0x201000a098c1d2e3")
        );
        assert_eq!(fc.adapter().as_deref(), Some("0000:3b:00.0"));
        let nvme = PathReport {
            dev: "nvme1n1".into(),
            nvme_address: Some("traddr=10.0.0.5,trsvcid=4420".into()),
            nqn: Some("nqn.2014-08.org.example:sub".into()),
            ..PathReport::default()
        };
        assert_eq!(nvme.adapter().as_deref(), Some("nvme1"));
        assert_eq!(nvme.target_port().unwrap().kind, PortKind::NvmeController);
        // Old reports (no new fields) still decode.
        let old: PathReport = serde_json::from_str(r#"{"dev":"sdc","usable":true}"#).unwrap();
        assert!(old.portal.is_none() && old.target_port().is_none());
    }

    #[test]
    fn clip_is_char_safe() {
        let s = "é".repeat(300);
        let c = clip(&s, 256);
        assert!(c.len() <= 256);
        assert!(c.ends_with('…'));
        assert_eq!(clip("abc", 256), "abc");
    }
}
