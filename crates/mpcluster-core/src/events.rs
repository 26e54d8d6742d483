//! The event history: what changed in the matrix and in the configuration, and when.
//!
//! - **Health events** ([`EventKind::Lun`], [`EventKind::Cell`]): a LUN's cluster state or a
//!   cell's (LUN x node) state or path counts changed. [`observe`] compares a new matrix with
//!   the state recorded last ([`Recorded`]) and returns the changes plus the new recorded
//!   state. The first observation ever records a baseline and no events; a LUN that appears
//!   or disappears is one LUN event (its cells are not listed one by one).
//! - **Configuration events** ([`EventKind::Config`]): the audit trail: which document, who
//!   (the token id, or the CLI user), the digest before and after, a one-line summary.
//! - **Flapping** ([`flapping`]): a LUN or cell with at least [`FlapRule::changes`] changes
//!   within [`FlapRule::window`] seconds, until it has been stable for that window.
//! - **The log** ([`EventLog`]): the head of the stored log: the next sequence number, the
//!   recorded state, the newest events and an index of sealed chunks. [`EventLog::append`]
//!   numbers new events, [`EventLog::seal`] moves a full head into a chunk, [`EventLog::prune`]
//!   drops chunks past the retention. The store I/O is the config crate's.
//!
//! Everything here is pure and deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::ids::{Alias, NodeName, Wwid};
use crate::rollup::{Cell, LunStatus};
use crate::state::MapState;

/// The only event log format this build writes; a newer one is refused by name.
pub const EVENTS_FORMAT: u32 = 1;

/// Events kept in the log's head before they are sealed into a chunk.
pub const CHUNK_EVENTS: usize = 500;

/// A cell's recorded value: state and path counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CellValue {
    /// The cell's state.
    pub state: MapState,
    /// Usable paths, when the node reported them.
    #[serde(
        rename = "paths-active",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub active: Option<u64>,
    /// All paths, when the node reported them.
    #[serde(
        rename = "paths-total",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub total: Option<u64>,
}

impl CellValue {
    /// The value of a matrix cell.
    pub fn of(cell: &Cell) -> CellValue {
        CellValue {
            state: cell.state,
            active: cell.paths_active.flatten(),
            total: cell.paths_total.flatten(),
        }
    }
}

impl std::fmt::Display for CellValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.state.as_str())?;
        match (self.active, self.total) {
            (Some(a), Some(t)) => write!(f, " {a}/{t}"),
            _ => Ok(()),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventKind {
    /// A LUN's cluster state changed (`before` absent: the LUN entered the matrix; `after`
    /// absent: it left it).
    Lun {
        /// The LUN.
        #[cfg_attr(feature = "schema", schema(value_type = String))]
        wwid: Wwid,
        /// Its alias at the time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
        alias: Option<Alias>,
        /// The state before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<MapState>,
        /// The state after.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<MapState>,
    },
    /// A cell's state or path counts changed (`before`/`after` absent: the cell appeared or
    /// disappeared on a LUN that stayed in the matrix).
    Cell {
        /// The LUN.
        #[cfg_attr(feature = "schema", schema(value_type = String))]
        wwid: Wwid,
        /// Its alias at the time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
        alias: Option<Alias>,
        /// The node.
        #[cfg_attr(feature = "schema", schema(value_type = String))]
        node: NodeName,
        /// The cell before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<CellValue>,
        /// The cell after.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<CellValue>,
    },
    /// A configuration change (the audit trail).
    Config {
        /// The document changed (`multipath-config`, `tokens`, ...; `node` for a node
        /// removal).
        doc: String,
        /// Who: `token:<id>` for an API token, `cli:<user>@<host>` for the CLI on a node.
        actor: String,
        /// The document's digest before (absent: it did not exist).
        #[serde(
            rename = "digest-before",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        digest_before: Option<String>,
        /// The document's digest after (absent: deleted).
        #[serde(
            rename = "digest-after",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        digest_after: Option<String>,
        /// One line: what changed.
        summary: String,
    },
}

impl EventKind {
    /// The LUN the event is about, if any.
    pub fn wwid(&self) -> Option<&Wwid> {
        match self {
            EventKind::Lun { wwid, .. } | EventKind::Cell { wwid, .. } => Some(wwid),
            EventKind::Config { .. } => None,
        }
    }

    /// The node the event is about, if any.
    pub fn node(&self) -> Option<&NodeName> {
        match self {
            EventKind::Cell { node, .. } => Some(node),
            _ => None,
        }
    }

    /// Whether this is an audit (configuration) event.
    pub fn is_config(&self) -> bool {
        matches!(self, EventKind::Config { .. })
    }

    /// One line for people: `vm-disks (3600...): degraded -> failed`.
    pub fn describe(&self) -> String {
        fn lun(wwid: &Wwid, alias: &Option<Alias>) -> String {
            match alias {
                Some(a) => format!("{a} ({wwid})"),
                None => wwid.to_string(),
            }
        }
        fn opt<T: std::fmt::Display>(v: &Option<T>, none: &str) -> String {
            v.as_ref()
                .map_or_else(|| none.to_owned(), |v| v.to_string())
        }
        match self {
            EventKind::Lun {
                wwid,
                alias,
                before,
                after,
            } => format!(
                "LUN {}: {} -> {}",
                lun(wwid, alias),
                opt(&before.map(|s| s.as_str()), "(new)"),
                opt(&after.map(|s| s.as_str()), "(removed)")
            ),
            EventKind::Cell {
                wwid,
                alias,
                node,
                before,
                after,
            } => format!(
                "LUN {} on {node}: {} -> {}",
                lun(wwid, alias),
                opt(before, "(none)"),
                opt(after, "(none)")
            ),
            EventKind::Config {
                doc,
                actor,
                summary,
                ..
            } => format!("{doc} changed by {actor}: {summary}"),
        }
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Event {
    /// Its sequence number: unique and increasing cluster-wide, without gaps.
    pub seq: u64,
    /// When it was observed (unix s).
    pub time: i64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The state the last observation recorded: per LUN its cluster state, alias and cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Per LUN.
    pub luns: BTreeMap<Wwid, RecordedLun>,
}

/// One LUN in [`Recorded`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLun {
    /// The cluster state.
    #[serde(rename = "s")]
    pub state: MapState,
    /// The cells.
    #[serde(rename = "c", default)]
    pub cells: BTreeMap<NodeName, CellValue>,
}

/// Compare the matrix `luns` with what was recorded (`None`: nothing ever was) and return the
/// changes (LUN events first, then cell events, each in WWID/node order) and the new recorded
/// state. Nothing recorded: a baseline, no events.
pub fn observe(prev: Option<&Recorded>, luns: &[LunStatus]) -> (Vec<EventKind>, Recorded) {
    let mut next = Recorded::default();
    for lun in luns {
        next.luns.insert(
            lun.wwid.clone(),
            RecordedLun {
                state: lun.cluster_state,
                cells: lun
                    .nodes
                    .iter()
                    .map(|(n, c)| (n.clone(), CellValue::of(c)))
                    .collect(),
            },
        );
    }
    let Some(prev) = prev else {
        return (Vec::new(), next);
    };
    let alias_of: HashMap<&Wwid, &Option<Alias>> =
        luns.iter().map(|l| (&l.wwid, &l.alias)).collect();
    let mut lun_events = Vec::new();
    let mut cell_events = Vec::new();
    let wwids: BTreeSet<&Wwid> = prev.luns.keys().chain(next.luns.keys()).collect();
    for wwid in wwids {
        let alias = alias_of.get(wwid).copied().cloned().flatten();
        match (prev.luns.get(wwid), next.luns.get(wwid)) {
            (None, Some(now)) => lun_events.push(EventKind::Lun {
                wwid: wwid.clone(),
                alias,
                before: None,
                after: Some(now.state),
            }),
            (Some(was), None) => lun_events.push(EventKind::Lun {
                wwid: wwid.clone(),
                alias,
                before: Some(was.state),
                after: None,
            }),
            (Some(was), Some(now)) => {
                if was.state != now.state {
                    lun_events.push(EventKind::Lun {
                        wwid: wwid.clone(),
                        alias: alias.clone(),
                        before: Some(was.state),
                        after: Some(now.state),
                    });
                }
                let nodes: BTreeSet<&NodeName> = was.cells.keys().chain(now.cells.keys()).collect();
                for node in nodes {
                    let (b, a) = (was.cells.get(node), now.cells.get(node));
                    if b != a {
                        cell_events.push(EventKind::Cell {
                            wwid: wwid.clone(),
                            alias: alias.clone(),
                            node: node.clone(),
                            before: b.copied(),
                            after: a.copied(),
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    lun_events.extend(cell_events);
    (lun_events, next)
}

/// When a LUN or cell counts as flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapRule {
    /// At least this many changes ...
    pub changes: u32,
    /// ... within this many seconds; flapping ends after this long without a change.
    pub window: i64,
}

impl Default for FlapRule {
    /// 4 changes in 10 minutes.
    fn default() -> Self {
        FlapRule {
            changes: 4,
            window: 600,
        }
    }
}

/// A flapping LUN (`node` absent) or cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Flap {
    /// The LUN.
    #[cfg_attr(feature = "schema", schema(value_type = String))]
    pub wwid: Wwid,
    /// The node, for a flapping cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub node: Option<NodeName>,
    /// Changes in the current unstable run (a run ends after `window` seconds without one).
    pub changes: u32,
    /// When the run reached the rule's count (unix s).
    pub since: i64,
    /// The last change (unix s); flapping ends at `last + window` without another.
    pub last: i64,
}

/// The LUNs and cells flapping at `now` under `rule`, from `events` (in sequence order; any
/// subset that holds every health event of the last unstable runs: older events only make a
/// run longer, they never start one). Sorted by WWID, LUN before its cells.
pub fn flapping(events: &[Event], now: i64, rule: FlapRule) -> Vec<Flap> {
    let mut times: BTreeMap<(&Wwid, Option<&NodeName>), Vec<i64>> = BTreeMap::new();
    for e in events {
        let key = match &e.kind {
            EventKind::Lun { wwid, .. } => (wwid, None),
            EventKind::Cell { wwid, node, .. } => (wwid, Some(node)),
            EventKind::Config { .. } => continue,
        };
        times.entry(key).or_default().push(e.time);
    }
    let mut out = Vec::new();
    let need = rule.changes.max(1) as usize;
    for ((wwid, node), mut ts) in times {
        ts.sort_unstable();
        let Some(&last) = ts.last() else { continue };
        if now - last >= rule.window {
            continue;
        }
        // The current run: back from the last change while gaps stay below the window.
        let mut start = ts.len() - 1;
        while start > 0 && ts[start] - ts[start - 1] < rule.window {
            start -= 1;
        }
        let run = &ts[start..];
        // The first moment in the run at which `need` changes fell within one window.
        let since = (need - 1..run.len())
            .find(|&i| run[i] - run[i + 1 - need] < rule.window)
            .map(|i| run[i]);
        if let Some(since) = since {
            out.push(Flap {
                wwid: wwid.clone(),
                node: node.cloned(),
                changes: run.len() as u32,
                since,
                last,
            });
        }
    }
    out
}

/// A time given as unix seconds or as an age before `now` (`90s`, `15m`, `1h`, `7d`).
pub fn parse_time(value: &str, now: i64) -> Result<i64, String> {
    if let Ok(t) = value.parse::<i64>() {
        return Ok(t);
    }
    let (number, unit) = value.split_at(value.len().saturating_sub(1));
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "'{value}' is neither unix seconds nor an age such as 15m, 1h or 7d"
            ));
        }
    };
    number
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(factor))
        .map(|age| now - age)
        .ok_or_else(|| {
            format!("'{value}' is neither unix seconds nor an age such as 15m, 1h or 7d")
        })
}

/// Which events a reader wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// From this time on (unix s, inclusive).
    pub since: Option<i64>,
    /// Before this time (unix s, exclusive).
    pub until: Option<i64>,
    /// With a sequence number above this (following a log).
    pub after_seq: Option<u64>,
    /// About this LUN.
    pub wwid: Option<Wwid>,
    /// About this node (cell events).
    pub node: Option<NodeName>,
    /// Only configuration events (`Some(true)`), only health events (`Some(false)`), or all.
    pub config: Option<bool>,
}

/// An event filter as text (the API's query parameters, the CLI's options), for
/// [`EventFilter::parse`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FilterText<'a> {
    /// `since`: unix seconds or an age ([`parse_time`]).
    pub since: Option<&'a str>,
    /// `until`: likewise.
    pub until: Option<&'a str>,
    /// `after`: a sequence number.
    pub after: Option<u64>,
    /// `wwid`.
    pub wwid: Option<&'a str>,
    /// `node`.
    pub node: Option<&'a str>,
    /// `kind`: `config` or `health`.
    pub kind: Option<&'a str>,
}

impl EventFilter {
    /// Parse a filter given as text at `now`; every problem at once, as `(field, message)`.
    pub fn parse(t: &FilterText<'_>, now: i64) -> Result<EventFilter, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let mut time = |field: &'static str, v: Option<&str>| {
            v.and_then(|v| parse_time(v, now).map_err(|m| errors.push((field, m))).ok())
        };
        let since = time("since", t.since);
        let until = time("until", t.until);
        let wwid = t.wwid.and_then(|w| {
            Wwid::new(w)
                .map_err(|e| errors.push(("wwid", e.to_string())))
                .ok()
        });
        let node = t.node.and_then(|n| {
            NodeName::new(n)
                .map_err(|e| errors.push(("node", e.to_string())))
                .ok()
        });
        let config = match t.kind {
            None => None,
            Some("config") => Some(true),
            Some("health") => Some(false),
            Some(other) => {
                errors.push((
                    "kind",
                    format!("'{other}' is not a kind of event: use 'config' or 'health'"),
                ));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(EventFilter {
            since,
            until,
            after_seq: t.after,
            wwid,
            node,
            config,
        })
    }

    /// Whether `e` passes the filter.
    pub fn matches(&self, e: &Event) -> bool {
        self.since.is_none_or(|t| e.time >= t)
            && self.until.is_none_or(|t| e.time < t)
            && self.after_seq.is_none_or(|s| e.seq > s)
            && self.wwid.as_ref().is_none_or(|w| e.kind.wwid() == Some(w))
            && self.node.as_ref().is_none_or(|n| e.kind.node() == Some(n))
            && self.config.is_none_or(|c| e.kind.is_config() == c)
    }
}

/// How long and how much of the history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Events older than this many seconds are dropped (a chunk at a time).
    pub max_age: i64,
    /// At most about this many events are kept (a chunk at a time).
    pub max_events: u64,
}

impl Default for Retention {
    /// 30 days, 100 000 events.
    fn default() -> Self {
        Retention {
            max_age: 30 * 86_400,
            max_events: 100_000,
        }
    }
}

/// A sealed chunk of the log: its events are in the document [`ChunkRef::doc_name`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The first event's sequence number.
    pub first: u64,
    /// The last event's sequence number.
    pub last: u64,
    /// The first event's time.
    pub from: i64,
    /// The last event's time.
    pub to: i64,
}

impl ChunkRef {
    /// The chunk's document name: `events-<first>` (zero-padded so that names sort).
    pub fn doc_name(&self) -> String {
        chunk_doc_name(self.first)
    }

    /// How many events it holds.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never empty (a chunk holds at least one event); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The document name of the chunk starting at `first`.
pub fn chunk_doc_name(first: u64) -> String {
    format!("events-{first:012}")
}

/// The head of the event log (the stored document `events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLog {
    /// Format ([`EVENTS_FORMAT`]); absent in nothing this build wrote, so required.
    pub format: u32,
    /// The sequence number the next event gets.
    #[serde(rename = "next-seq")]
    pub next_seq: u64,
    /// The recorded matrix state, encoded by the store layer (compressed): `None` before the
    /// first observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    /// The newest events, not yet sealed into a chunk, in sequence order.
    #[serde(default)]
    pub recent: Vec<Event>,
    /// The sealed chunks, oldest first.
    #[serde(default)]
    pub chunks: Vec<ChunkRef>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            format: EVENTS_FORMAT,
            next_seq: 1,
            recorded: None,
            recent: Vec::new(),
            chunks: Vec::new(),
        }
    }
}

/// The log head cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// Written by a newer mpcluster.
    #[error(
        "the event log has format {found}, this mpcluster reads format {EVENTS_FORMAT}: \
         upgrade this node"
    )]
    NewerFormat {
        /// The format found.
        found: u32,
    },
    /// Not JSON of the expected shape.
    #[error("the event log is unreadable")]
    Unreadable(#[source] serde_json::Error),
}

impl EventLog {
    /// Decode a stored head.
    pub fn decode(text: &str) -> Result<EventLog, EventLogError> {
        #[derive(Deserialize)]
        struct Probe {
            format: u32,
        }
        let probe: Probe = serde_json::from_str(text).map_err(EventLogError::Unreadable)?;
        if probe.format > EVENTS_FORMAT {
            return Err(EventLogError::NewerFormat {
                found: probe.format,
            });
        }
        serde_json::from_str(text).map_err(EventLogError::Unreadable)
    }

    /// Encode for storing.
    pub fn encode(&self) -> String {
        // Our own plain data types: encoding cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Number the events `kinds` at `time` and add them to the head; returns them.
    pub fn append(&mut self, time: i64, kinds: Vec<EventKind>) -> Vec<Event> {
        let mut added = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let e = Event {
                seq: self.next_seq,
                time,
                kind,
            };
            self.next_seq += 1;
            self.recent.push(e.clone());
            added.push(e);
        }
        added
    }

    /// If the head holds at least `chunk` events, move the oldest `chunk` of them into a new
    /// chunk: returns its reference and events (to be stored under [`ChunkRef::doc_name`]
    /// before this head is written).
    pub fn seal(&mut self, chunk: usize) -> Option<(ChunkRef, Vec<Event>)> {
        if chunk == 0 || self.recent.len() < chunk {
            return None;
        }
        let sealed: Vec<Event> = self.recent.drain(..chunk).collect();
        let (first, last) = (sealed.first()?, sealed.last()?);
        let r = ChunkRef {
            first: first.seq,
            last: last.seq,
            from: first.time,
            to: last.time,
        };
        self.chunks.push(r.clone());
        Some((r, sealed))
    }

    /// Drop the oldest chunks past `retention` at `now`; returns them (their documents are to
    /// be deleted after this head is written). The head's own events are never dropped.
    pub fn prune(&mut self, now: i64, retention: Retention) -> Vec<ChunkRef> {
        let mut total: u64 =
            self.recent.len() as u64 + self.chunks.iter().map(ChunkRef::len).sum::<u64>();
        let mut drop = 0;
        for c in &self.chunks {
            let too_old = now - c.to > retention.max_age;
            let too_many = total > retention.max_events;
            if !(too_old || too_many) {
                break;
            }
            total -= c.len();
            drop += 1;
        }
        self.chunks.drain(..drop).collect()
    }

    /// The chunks that may hold events passing `filter` (by time and sequence range).
    pub fn chunks_for<'a>(&'a self, filter: &'a EventFilter) -> impl Iterator<Item = &'a ChunkRef> {
        self.chunks.iter().filter(move |c| {
            filter.since.is_none_or(|t| c.to >= t)
                && filter.until.is_none_or(|t| c.from < t)
                && filter.after_seq.is_none_or(|s| c.last > s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::Cell;

    fn wwid(n: u8) -> Wwid {
        format!("36000000000000000000000000000000{n:02}")
            .parse()
            .unwrap()
    }
    fn node(n: &str) -> NodeName {
        n.parse().unwrap()
    }
    fn cell(state: MapState, a: u64, t: u64) -> Cell {
        let mut c = Cell::bare(state);
        c.paths_active = Some(Some(a));
        c.paths_total = Some(Some(t));
        c
    }
    fn lun(w: u8, state: MapState, cells: &[(&str, Cell)]) -> LunStatus {
        LunStatus {
            wwid: wwid(w),
            alias: None,
            used_by: None,
            size: None,
            cluster_state: state,
            nodes: cells.iter().map(|(n, c)| (node(n), c.clone())).collect(),
        }
    }

    #[test]
    fn first_observation_is_a_baseline() {
        let m = vec![lun(
            1,
            MapState::Optimal,
            &[("a", cell(MapState::Optimal, 2, 2))],
        )];
        let (events, rec) = observe(None, &m);
        assert!(events.is_empty());
        assert_eq!(rec.luns.len(), 1);
        let (again, rec2) = observe(Some(&rec), &m);
        assert!(again.is_empty(), "no change, no event: {again:?}");
        assert_eq!(rec, rec2);
    }

    #[test]
    fn changes_become_lun_then_cell_events() {
        let before = vec![
            lun(
                1,
                MapState::Optimal,
                &[
                    ("a", cell(MapState::Optimal, 2, 2)),
                    ("b", cell(MapState::Optimal, 2, 2)),
                ],
            ),
            lun(
                2,
                MapState::Optimal,
                &[("a", cell(MapState::Optimal, 2, 2))],
            ),
        ];
        let (_, rec) = observe(None, &before);
        let after = vec![
            lun(
                1,
                MapState::Degraded,
                &[
                    ("a", cell(MapState::Degraded, 1, 2)),
                    ("b", cell(MapState::Optimal, 2, 2)),
                ],
            ),
            lun(
                3,
                MapState::Optimal,
                &[("a", cell(MapState::Optimal, 2, 2))],
            ),
        ];
        let (events, _) = observe(Some(&rec), &after);
        let lines: Vec<String> = events.iter().map(EventKind::describe).collect();
        assert_eq!(
            lines,
            vec![
                format!("LUN {}: optimal -> degraded", wwid(1)),
                format!("LUN {}: optimal -> (removed)", wwid(2)),
                format!("LUN {}: (new) -> optimal", wwid(3)),
                format!("LUN {} on a: optimal 2/2 -> degraded 1/2", wwid(1)),
            ]
        );
    }

    #[test]
    fn a_path_count_change_alone_is_a_cell_event() {
        let (_, rec) = observe(
            None,
            &[lun(
                1,
                MapState::Optimal,
                &[("a", cell(MapState::Optimal, 4, 4))],
            )],
        );
        let (events, _) = observe(
            Some(&rec),
            &[lun(
                1,
                MapState::Optimal,
                &[("a", cell(MapState::Optimal, 2, 2))],
            )],
        );
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], EventKind::Cell { before: Some(b), after: Some(a), .. }
            if b.total == Some(4) && a.total == Some(2))
        );
    }

    fn ev(seq: u64, time: i64, w: u8, n: Option<&str>) -> Event {
        let kind = match n {
            None => EventKind::Lun {
                wwid: wwid(w),
                alias: None,
                before: Some(MapState::Optimal),
                after: Some(MapState::Degraded),
            },
            Some(n) => EventKind::Cell {
                wwid: wwid(w),
                alias: None,
                node: node(n),
                before: None,
                after: None,
            },
        };
        Event { seq, time, kind }
    }

    #[test]
    fn flapping_needs_n_changes_within_the_window_and_ends_after_a_quiet_window() {
        let rule = FlapRule::default();
        // Three changes in 10 min: not yet.
        let mut es = vec![ev(1, 0, 1, None), ev(2, 100, 1, None), ev(3, 200, 1, None)];
        assert!(flapping(&es, 250, rule).is_empty());
        // The fourth: flapping since its time.
        es.push(ev(4, 300, 1, None));
        let f = flapping(&es, 310, rule);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].since, f[0].changes, f[0].last), (300, 4, 300));
        // Stable for less than the window: still flapping; for the window: over.
        assert_eq!(flapping(&es, 899, rule).len(), 1);
        assert!(flapping(&es, 900, rule).is_empty());
        // Four changes spread wider than the window never flap.
        let slow: Vec<Event> = (0..4).map(|i| ev(i, i as i64 * 700, 1, None)).collect();
        assert!(flapping(&slow, 2200, rule).is_empty());
        // A run that keeps going stays flapping, from the first moment it qualified.
        let long: Vec<Event> = (0..20).map(|i| ev(i, i as i64 * 150, 1, None)).collect();
        let f = flapping(&long, 19 * 150 + 10, rule);
        assert_eq!(f[0].since, 450);
        assert_eq!(f[0].changes, 20);
    }

    #[test]
    fn cells_and_luns_flap_separately() {
        let es: Vec<Event> = (0..4).map(|i| ev(i, i as i64 * 10, 1, Some("a"))).collect();
        let f = flapping(&es, 40, FlapRule::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].node, Some(node("a")));
    }

    #[test]
    fn append_seal_and_prune() {
        let mut log = EventLog::default();
        for t in 0..12 {
            log.append(t * 86_400, vec![ev(0, 0, 1, None).kind]);
        }
        assert_eq!(log.next_seq, 13);
        let (c1, sealed) = log.seal(5).unwrap();
        assert_eq!((c1.first, c1.last, sealed.len()), (1, 5, 5));
        assert_eq!(c1.doc_name(), "events-000000000001");
        let (c2, _) = log.seal(5).unwrap();
        assert_eq!((c2.first, c2.last), (6, 10));
        assert!(log.seal(5).is_none(), "2 left in the head");
        // Count: 12 kept > 7 allowed: the oldest chunk goes, the next one fits (7 <= 7).
        let dropped = log.prune(
            11 * 86_400,
            Retention {
                max_age: 100 * 86_400,
                max_events: 7,
            },
        );
        assert_eq!(dropped, vec![c1]);
        // Age: chunk 2 ends on day 9; with a 1-day limit at day 11 it goes.
        let dropped = log.prune(
            11 * 86_400,
            Retention {
                max_age: 86_400,
                max_events: 1000,
            },
        );
        assert_eq!(dropped, vec![c2]);
        assert_eq!(log.recent.len(), 2, "the head's events are never pruned");
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let err = EventLog::decode(r#"{"format": 2, "next-seq": 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the event log has format 2, this mpcluster reads format 1: upgrade this node"
        );
        let log = EventLog::decode(&EventLog::default().encode()).unwrap();
        assert_eq!(log, EventLog::default());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1767225600", 0), Ok(1_767_225_600));
        assert_eq!(parse_time("90s", 1000), Ok(910));
        assert_eq!(parse_time("15m", 1000), Ok(100));
        assert_eq!(parse_time("1h", 3600), Ok(0));
        assert_eq!(parse_time("2d", 200_000), Ok(200_000 - 172_800));
        for bad in ["", "h", "1w", "-1h", "soon"] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn filter() {
        let e = ev(5, 100, 1, Some("a"));
        assert!(EventFilter::default().matches(&e));
        let f = EventFilter {
            since: Some(100),
            until: Some(101),
            after_seq: Some(4),
            wwid: Some(wwid(1)),
            node: Some(node("a")),
            config: Some(false),
        };
        assert!(f.matches(&e));
        for bad in [
            EventFilter {
                since: Some(101),
                ..Default::default()
            },
            EventFilter {
                until: Some(100),
                ..Default::default()
            },
            EventFilter {
                after_seq: Some(5),
                ..Default::default()
            },
            EventFilter {
                wwid: Some(wwid(2)),
                ..Default::default()
            },
            EventFilter {
                node: Some(node("b")),
                ..Default::default()
            },
            EventFilter {
                config: Some(true),
                ..Default::default()
            },
        ] {
            assert!(!bad.matches(&e), "{bad:?}");
        }
    }
}
