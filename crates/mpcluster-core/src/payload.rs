//! Broadcast payloads within their size budgets, and change detection.
//!
//! - [`encode_broadcast`]: the node KV value under [`BROADCAST_KEY`], exactly
//!   [`crate::broadcast::Broadcast`]'s serde form, always shorter than [`BROADCAST_BUDGET`].
//! - [`encode_detail`]: the per-path detail under [`DETAIL_KEY`] ([`DetailPayload`]), always
//!   shorter than [`DETAIL_BUDGET`].
//! - [`BroadcastPolicy`] / [`DetailPolicy`]: whether to publish, clear or leave the value.
//!
//! Over budget, encoding degrades instead of failing. Broadcast: drop the optional fields
//! (`transport`, `size`) map by map, optimal maps first; then keep the most severe maps first
//! (failed, degraded, ..., optimal last) and set `"truncated"` to the number dropped.
//! Detail: leave out the path groups of optimal maps, then drop optimal maps, then leave out
//! the path groups of the others, then drop those, least severe first (`"truncated"` counts
//! the dropped maps): the path detail of failed and degraded maps survives longest.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::broadcast::{Broadcast, MapSummary};
use crate::ids::Wwid;
use crate::multipathd::{MapReport, NodeReport};
use crate::state::MapState;

/// Node KV key of the broadcast.
pub const BROADCAST_KEY: &str = "multipath";
/// Size budget of the broadcast value (the pmxcfs node KV limit, kept as ours); an encoded
/// value is always strictly shorter.
pub const BROADCAST_BUDGET: usize = 32 * 1024;
/// Node KV key of the per-path detail.
pub const DETAIL_KEY: &str = "multipath-detail";
/// Size budget of the detail value; an encoded value is always strictly shorter.
pub const DETAIL_BUDGET: usize = 1024 * 1024;
/// Default interval after which an unchanged value is published again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// An encoded payload and how it was made to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The JSON text to publish.
    pub value: String,
    /// Maps in the input.
    pub maps_total: usize,
    /// Maps in the value.
    pub maps_kept: usize,
    /// Kept maps whose optional part was left out (broadcast: `transport`/`size`; detail:
    /// `path-groups`).
    pub reduced: usize,
    /// Maps dropped (also in the value as `"truncated"`).
    pub truncated: u64,
}

/// Encode the broadcast for `time` (unix seconds) within [`BROADCAST_BUDGET`].
pub fn encode_broadcast(time: i64, maps: &BTreeMap<Wwid, MapSummary>) -> Encoded {
    encode_broadcast_within(time, maps, BROADCAST_BUDGET)
}

/// [`encode_broadcast`] with another budget (tests, or a store with a smaller limit). A budget
/// smaller than the empty document (about 50 bytes) cannot be met; the value is then
/// `{"time":<t>,"maps":{},"truncated":<n>}`.
pub fn encode_broadcast_within(
    time: i64,
    maps: &BTreeMap<Wwid, MapSummary>,
    budget: usize,
) -> Encoded {
    let entries: Vec<(&Wwid, &MapSummary)> = maps.iter().collect();
    let reduced_of = |s: &MapSummary| MapSummary {
        transport: None,
        size: None,
        ..s.clone()
    };
    let sizes: Vec<(usize, usize)> = entries
        .iter()
        .map(|(w, s)| {
            let key = json_len(w) + 1;
            (key + json_len(s), key + json_len(&reduced_of(s)))
        })
        .collect();
    let states: Vec<MapState> = entries.iter().map(|(_, s)| s.state).collect();
    let build = |plan: &Plan| Broadcast {
        time: Some(time),
        maps: entries
            .iter()
            .zip(&plan.entries)
            .filter_map(|((w, s), e)| match e {
                Keep::Full => Some(((*w).clone(), (*s).clone())),
                Keep::Reduced => Some(((*w).clone(), reduced_of(s))),
                Keep::Dropped => None,
            })
            .collect(),
        truncated: plan.truncated(),
    };
    let empty = json_len(&Broadcast {
        time: Some(time),
        ..Broadcast::default()
    });
    fit(
        empty,
        &sizes,
        &broadcast_steps(&states),
        budget,
        build,
        || {
            format!(
                "{{\"time\":{time},\"maps\":{{}},\"truncated\":{}}}",
                entries.len()
            )
        },
    )
}

/// The per-path detail value: the node report plus its time and truncation count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct DetailPayload {
    /// Unix time (seconds) of the report.
    pub time: i64,
    /// The maps (a map's `paths-omitted` is set when its path groups were left out).
    pub maps: Vec<MapReport>,
    /// The report's errors.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Maps dropped to fit the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<u64>,
}

/// Why a detail value could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DetailDecodeError {
    /// Larger than [`DETAIL_BUDGET`].
    #[error("detail value of {len} bytes exceeds the {max}-byte budget")]
    TooLarge {
        /// Value length.
        len: usize,
        /// The budget.
        max: usize,
    },
    /// Not a detail document (bad JSON, missing keys, invalid WWID, ...).
    #[error("detail value is not a valid detail document")]
    Invalid {
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer mpcluster ([`crate::format`]).
    #[error(transparent)]
    Newer(crate::format::NewerFormat),
}

impl DetailPayload {
    /// Decode a (peer's) detail value. All or nothing: a value this node's encoder produced
    /// always decodes.
    pub fn decode(raw: &str) -> Result<DetailPayload, DetailDecodeError> {
        if raw.len() > DETAIL_BUDGET {
            return Err(DetailDecodeError::TooLarge {
                len: raw.len(),
                max: DETAIL_BUDGET,
            });
        }
        crate::format::check(
            "the path detail",
            raw,
            crate::format::FIELD,
            crate::format::DETAIL_FORMAT,
        )
        .map_err(DetailDecodeError::Newer)?;
        serde_json::from_str(raw).map_err(|source| DetailDecodeError::Invalid { source })
    }
}

/// Encode the per-path detail for `time` within [`DETAIL_BUDGET`].
pub fn encode_detail(time: i64, report: &NodeReport) -> Encoded {
    encode_detail_within(time, report, DETAIL_BUDGET)
}

/// [`encode_detail`] with another budget.
pub fn encode_detail_within(time: i64, report: &NodeReport, budget: usize) -> Encoded {
    let reduced_of = |m: &MapReport| MapReport {
        path_groups: Vec::new(),
        paths_omitted: true,
        ..m.clone()
    };
    let sizes: Vec<(usize, usize)> = report
        .maps
        .iter()
        .map(|m| (json_len(m), json_len(&reduced_of(m))))
        .collect();
    let states: Vec<MapState> = report.maps.iter().map(|m| m.state).collect();
    let build = |plan: &Plan| DetailPayload {
        time,
        maps: report
            .maps
            .iter()
            .zip(&plan.entries)
            .filter_map(|(m, e)| match e {
                Keep::Full => Some(m.clone()),
                Keep::Reduced => Some(reduced_of(m)),
                Keep::Dropped => None,
            })
            .collect(),
        errors: report.errors.clone(),
        truncated: plan.truncated(),
    };
    let empty = json_len(&DetailPayload {
        time,
        maps: Vec::new(),
        errors: report.errors.clone(),
        truncated: None,
    });
    fit(empty, &sizes, &detail_steps(&states), budget, build, || {
        format!(
            "{{\"time\":{time},\"maps\":[],\"errors\":[],\"truncated\":{}}}",
            report.maps.len()
        )
    })
}

/// Compact JSON length of a value (0 if it cannot be serialized, which these types cannot).
fn json_len<T: Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

/// What becomes of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Full,
    Reduced,
    Dropped,
}

struct Plan {
    entries: Vec<Keep>,
}

impl Plan {
    fn dropped(&self) -> u64 {
        self.entries.iter().filter(|e| **e == Keep::Dropped).count() as u64
    }

    fn truncated(&self) -> Option<u64> {
        Some(self.dropped()).filter(|n| *n > 0)
    }
}

/// Length of `,"truncated":<n>` (0 when nothing is dropped).
fn truncated_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ",\"truncated\":".len() + n.to_string().len()
    }
}

/// Importance order: non-optimal before optimal, then more severe first, then input order.
fn importance(states: &[MapState]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..states.len()).collect();
    order.sort_by_key(|&i| (states[i] == MapState::Optimal, -states[i].rank(), i));
    order
}

/// One degradation step on one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Reduce(usize),
    Drop(usize),
}

/// Broadcast degradation: drop optional fields (least important map first), then drop maps
/// (least important first).
fn broadcast_steps(states: &[MapState]) -> Vec<Step> {
    let order = importance(states);
    let reduce = order.iter().rev().map(|&i| Step::Reduce(i));
    let drop = order.iter().rev().map(|&i| Step::Drop(i));
    reduce.chain(drop).collect()
}

/// Detail degradation: leave out the paths of optimal maps, then drop optimal maps, then
/// leave out the paths of the others, then drop them (least important first each time), so
/// the path detail of failed and degraded maps is what survives longest.
fn detail_steps(states: &[MapState]) -> Vec<Step> {
    let order = importance(states);
    let (optimal, other): (Vec<usize>, Vec<usize>) = order
        .into_iter()
        .partition(|&i| states[i] == MapState::Optimal);
    let mut steps = Vec::with_capacity(states.len() * 2);
    for group in [optimal, other] {
        steps.extend(group.iter().rev().map(|&i| Step::Reduce(i)));
        steps.extend(group.iter().rev().map(|&i| Step::Drop(i)));
    }
    steps
}

/// Apply `steps` in order until the document is shorter than `budget`, serialize it with
/// `build`, and verify. `empty` is the document's length with no entries; `sizes` holds each
/// entry's (full, reduced) length inside its container. `minimal` is the last resort
/// (everything dropped), used only if even the empty document does not fit.
fn fit<T: Serialize>(
    empty: usize,
    sizes: &[(usize, usize)],
    steps: &[Step],
    budget: usize,
    build: impl Fn(&Plan) -> T,
    minimal: impl FnOnce() -> String,
) -> Encoded {
    let n = sizes.len();
    let mut plan = Plan {
        entries: vec![Keep::Full; n],
    };
    let mut body: usize = sizes.iter().map(|s| s.0).sum();
    let mut kept = n;
    let total =
        |body: usize, kept: usize| empty + body + kept.saturating_sub(1) + truncated_len(n - kept);
    for step in steps {
        if total(body, kept) < budget {
            break;
        }
        match *step {
            Step::Reduce(i) => {
                if plan.entries[i] == Keep::Full {
                    plan.entries[i] = Keep::Reduced;
                    body -= sizes[i].0.saturating_sub(sizes[i].1);
                }
            }
            Step::Drop(i) => {
                body -= match plan.entries[i] {
                    Keep::Full => sizes[i].0,
                    Keep::Reduced => sizes[i].1,
                    Keep::Dropped => continue,
                };
                plan.entries[i] = Keep::Dropped;
                kept -= 1;
            }
        }
    }
    // Serialize and verify; should the arithmetic ever be off, keep applying drops.
    let mut drops = steps.iter().filter_map(|s| match s {
        Step::Drop(i) => Some(*i),
        Step::Reduce(_) => None,
    });
    loop {
        if let Ok(value) = serde_json::to_string(&build(&plan))
            && value.len() < budget
        {
            return Encoded {
                value,
                maps_total: n,
                maps_kept: plan.entries.iter().filter(|e| **e != Keep::Dropped).count(),
                reduced: plan.entries.iter().filter(|e| **e == Keep::Reduced).count(),
                truncated: plan.dropped(),
            };
        }
        let Some(i) = drops.by_ref().find(|&i| plan.entries[i] != Keep::Dropped) else {
            break;
        };
        plan.entries[i] = Keep::Dropped;
    }
    Encoded {
        value: minimal(),
        maps_total: n,
        maps_kept: 0,
        reduced: 0,
        truncated: n as u64,
    }
}

/// What to do with a node KV value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this value.
    Publish(String),
    /// Delete the value (no multipath map is assembled on this node).
    Clear,
    /// Leave the value as it is.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq)]
enum Last<T> {
    /// Nothing decided yet (a stale value from an earlier run may exist).
    Nothing,
    Published {
        content: T,
        at: i64,
    },
    Cleared {
        at: i64,
    },
}

/// The change-detection core shared by both policies.
#[derive(Debug, Clone, PartialEq)]
struct Gate<T> {
    refresh_secs: i64,
    last: Last<T>,
}

/// What a [`Gate`] decided.
enum GateDecision {
    Publish,
    Clear,
    Unchanged,
}

impl<T: PartialEq + Clone> Gate<T> {
    fn new(refresh: Duration) -> Self {
        Gate {
            refresh_secs: i64::try_from(refresh.as_secs()).unwrap_or(i64::MAX),
            last: Last::Nothing,
        }
    }

    /// Due when `refresh` passed since `at`, or the clock went backwards.
    fn due(&self, now: i64, at: i64) -> bool {
        now < at || now.saturating_sub(at) >= self.refresh_secs
    }

    fn decide(&mut self, now: i64, content: Option<&T>) -> GateDecision {
        match (content, &self.last) {
            (None, Last::Cleared { at }) if !self.due(now, *at) => GateDecision::Unchanged,
            (None, _) => {
                self.last = Last::Cleared { at: now };
                GateDecision::Clear
            }
            (Some(c), Last::Published { content, at }) if c == content && !self.due(now, *at) => {
                GateDecision::Unchanged
            }
            (Some(c), _) => {
                self.last = Last::Published {
                    content: c.clone(),
                    at: now,
                };
                GateDecision::Publish
            }
        }
    }
}

/// Decides when to write the broadcast: when the summary changed (the time is ignored), when
/// `refresh` passed since the last write, or never yet; clears it when no map is assembled
/// (a present value means "actively multipathing"), again after each `refresh` (idempotent).
///
/// [`BroadcastPolicy::decide`] assumes the write it asks for succeeds; call
/// [`BroadcastPolicy::invalidate`] when it did not, so the next call asks again.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastPolicy {
    gate: Gate<BTreeMap<Wwid, MapSummary>>,
}

impl Default for BroadcastPolicy {
    fn default() -> Self {
        BroadcastPolicy::new(DEFAULT_REFRESH)
    }
}

impl BroadcastPolicy {
    /// A policy republishing unchanged values every `refresh` (whole seconds).
    pub fn new(refresh: Duration) -> Self {
        BroadcastPolicy {
            gate: Gate::new(refresh),
        }
    }

    /// Decide for the summaries taken at `now` (unix seconds); `Publish` carries the encoded
    /// value ([`encode_broadcast`]).
    pub fn decide(&mut self, now: i64, maps: &BTreeMap<Wwid, MapSummary>) -> Decision {
        let content = (!maps.is_empty()).then_some(maps);
        match self.gate.decide(now, content) {
            GateDecision::Publish => Decision::Publish(encode_broadcast(now, maps).value),
            GateDecision::Clear => Decision::Clear,
            GateDecision::Unchanged => Decision::Unchanged,
        }
    }

    /// Forget the last decision (its write failed): the next [`BroadcastPolicy::decide`]
    /// publishes or clears again.
    pub fn invalidate(&mut self) {
        self.gate.last = Last::Nothing;
    }
}

/// [`BroadcastPolicy`] for the per-path detail: publishes when the report changed or
/// `refresh` passed; clears when the report has neither maps nor errors.
///
/// It remembers a hash of the report last published, not the report: a node with thousands
/// of maps would otherwise keep a second copy of its whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct DetailPolicy {
    gate: Gate<u64>,
}

impl Default for DetailPolicy {
    fn default() -> Self {
        DetailPolicy::new(DEFAULT_REFRESH)
    }
}

impl DetailPolicy {
    /// A policy republishing unchanged values every `refresh` (whole seconds).
    pub fn new(refresh: Duration) -> Self {
        DetailPolicy {
            gate: Gate::new(refresh),
        }
    }

    /// Decide for the report taken at `now`; `Publish` carries [`encode_detail`]'s value.
    pub fn decide(&mut self, now: i64, report: &NodeReport) -> Decision {
        let content = (!report.maps.is_empty() || !report.errors.is_empty()).then(|| {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::hash::DefaultHasher::new();
            report.hash(&mut h);
            h.finish()
        });
        match self.gate.decide(now, content.as_ref()) {
            GateDecision::Publish => Decision::Publish(encode_detail(now, report).value),
            GateDecision::Clear => Decision::Clear,
            GateDecision::Unchanged => Decision::Unchanged,
        }
    }

    /// Forget the last decision (its write failed).
    pub fn invalidate(&mut self) {
        self.gate.last = Last::Nothing;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn summary(state: MapState) -> MapSummary {
        MapSummary {
            state,
            paths_active: Some(2),
            paths_total: Some(2),
            transport: Some("iscsi".into()),
            size: Some(1 << 40),
        }
    }

    #[test]
    fn truncated_len_matches_serde() {
        let b = Broadcast {
            time: Some(1),
            maps: BTreeMap::new(),
            truncated: Some(1234),
        };
        let with = serde_json::to_string(&b).unwrap().len();
        let without = json_len(&Broadcast {
            truncated: None,
            ..b
        });
        assert_eq!(with - without, truncated_len(1234));
    }

    #[test]
    fn tiny_budgets_never_fail() {
        let maps: BTreeMap<Wwid, MapSummary> = (0..10)
            .map(|i| {
                (
                    Wwid::new(format!("w{i}")).unwrap(),
                    summary(MapState::Optimal),
                )
            })
            .collect();
        for budget in [0, 1, 10, 40, 60, 100, 200, 1000] {
            let e = encode_broadcast_within(5, &maps, budget);
            assert_eq!(e.maps_total, 10);
            assert_eq!(e.maps_kept as u64 + e.truncated, 10);
            assert!(crate::broadcast::decode(&e.value).is_ok(), "{}", e.value);
            if budget >= 60 {
                assert!(e.value.len() < budget, "{budget}: {}", e.value);
            }
        }
    }

    #[test]
    fn gate_transitions() {
        let mut g: Gate<u8> = Gate::new(Duration::from_secs(60));
        assert!(matches!(g.decide(100, None), GateDecision::Clear));
        assert!(matches!(g.decide(110, None), GateDecision::Unchanged));
        assert!(matches!(g.decide(160, None), GateDecision::Clear));
        assert!(matches!(g.decide(161, Some(&1)), GateDecision::Publish));
        assert!(matches!(g.decide(162, Some(&1)), GateDecision::Unchanged));
        assert!(matches!(g.decide(163, Some(&2)), GateDecision::Publish));
        assert!(matches!(g.decide(222, Some(&2)), GateDecision::Unchanged));
        assert!(matches!(g.decide(223, Some(&2)), GateDecision::Publish));
        // Clock went backwards: publish again.
        assert!(matches!(g.decide(100, Some(&2)), GateDecision::Publish));
    }
}
