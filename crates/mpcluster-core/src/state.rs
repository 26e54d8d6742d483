//! The per-cell and per-LUN health states and their severity order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A map's health on one node (a matrix cell), or a LUN's rolled-up cluster state.
///
/// Severity for the roll-up is `Optimal < Degraded < Missing < Failed`. `Unknown` means "no
/// current information" (offline or stale node, unrecognized peer state) and never drives the
/// roll-up: it ranks below `Optimal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum MapState {
    /// Every path usable.
    Optimal,
    /// Some paths down or marginal, at least one usable.
    Degraded,
    /// An online node that is expected to carry the LUN has not assembled the map.
    Missing,
    /// No usable path (or the map is suspended).
    Failed,
    /// No current information.
    Unknown,
}

impl MapState {
    /// Every state, from least to most severe (`Unknown` first, as it never drives a roll-up).
    pub const ALL: [MapState; 5] = [
        MapState::Unknown,
        MapState::Optimal,
        MapState::Degraded,
        MapState::Missing,
        MapState::Failed,
    ];

    /// The wire name (`optimal`, `degraded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MapState::Optimal => "optimal",
            MapState::Degraded => "degraded",
            MapState::Missing => "missing",
            MapState::Failed => "failed",
            MapState::Unknown => "unknown",
        }
    }

    /// Parse a state name as found in a peer's broadcast. Anything unrecognized (a newer or buggy
    /// peer) clamps to `Unknown` so it cannot inject an unrankable state into the matrix.
    pub fn clamp(s: &str) -> MapState {
        match s {
            "optimal" => MapState::Optimal,
            "degraded" => MapState::Degraded,
            "missing" => MapState::Missing,
            "failed" => MapState::Failed,
            _ => MapState::Unknown,
        }
    }

    /// Severity rank for the roll-up; higher is worse, `Unknown` is below `Optimal`.
    pub fn rank(self) -> i8 {
        match self {
            MapState::Unknown => -1,
            MapState::Optimal => 0,
            MapState::Degraded => 1,
            MapState::Missing => 2,
            MapState::Failed => 3,
        }
    }

    /// The worse of two states by [`MapState::rank`].
    pub fn worst(self, other: MapState) -> MapState {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// Ordered by severity ([`MapState::rank`]), so the greatest state is the worst.
impl Ord for MapState {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for MapState {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for MapState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_clamp() {
        assert!(MapState::Failed.rank() > MapState::Missing.rank());
        assert!(MapState::Missing.rank() > MapState::Degraded.rank());
        assert!(MapState::Degraded.rank() > MapState::Optimal.rank());
        assert!(MapState::Optimal.rank() > MapState::Unknown.rank());
        assert_eq!(MapState::clamp("frobnicated"), MapState::Unknown);
        assert_eq!(MapState::clamp("Optimal"), MapState::Unknown);
        for s in MapState::ALL {
            assert_eq!(MapState::clamp(s.as_str()), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(
            MapState::Optimal.worst(MapState::Unknown),
            MapState::Optimal
        );
    }
}
