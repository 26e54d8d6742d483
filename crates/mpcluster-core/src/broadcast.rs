//! The per-node health broadcast: the wire form an agent publishes under the node KV key
//! `multipath`, and its tolerant decoder used by every reader.
//!
//! Wire form (JSON object):
//! `{"time": <unix s>, "maps": {"<wwid>": {"state", "paths-active", "paths-total", "transport"?,
//! "size"?}}, "truncated"?: <count>}`.
//!
//! A peer's value is untrusted input: [`decode`] never panics, ignores whatever it cannot use and
//! says what it ignored. Encoding (with the size budget) lives in [`crate::payload`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::Wwid;
use crate::state::MapState;

/// Longest transport word kept from a peer; longer values are dropped as malformed.
pub const TRANSPORT_MAX_LEN: usize = 32;

/// One map's summary in a broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSummary {
    /// The map's health on the broadcasting node (unrecognized strings clamp to `unknown`).
    pub state: MapState,
    /// Usable paths; `None` when the peer sent something that is not a non-negative integer.
    #[serde(rename = "paths-active")]
    pub paths_active: Option<u64>,
    /// All paths; `None` as for `paths_active`.
    #[serde(rename = "paths-total")]
    pub paths_total: Option<u64>,
    /// Transport as a short word (`iscsi`, `fc`, `mixed`, ...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transport: Option<String>,
    /// Map size in bytes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size: Option<u64>,
}

/// A whole broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Broadcast {
    /// Unix time (seconds) the summary was taken; `None` when absent or not a number, which
    /// makes the reader treat the node as stale.
    pub time: Option<i64>,
    /// Per-WWID summaries.
    pub maps: BTreeMap<Wwid, MapSummary>,
    /// How many maps the sender dropped to stay within the size budget.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub truncated: Option<u64>,
}

/// Why a whole broadcast was unusable (the node is then ignored by the reader).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The value is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The value is JSON but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// `maps` is missing or not an object.
    #[error("\"maps\" is missing or not an object")]
    MapsNotObject,
}

/// A decoded broadcast plus what was ignored in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    /// What could be used.
    pub broadcast: Broadcast,
    /// One line per ignored entry or field, naming it and why.
    pub ignored: Vec<String>,
}

/// A JSON number that is a non-negative integer, else `None`.
pub fn non_negative_int(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_u64)
}

/// A unix timestamp: any finite JSON number (fractions are cut), else `None`.
pub fn unix_time(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    // Large u64 values and floats: clamp into i64, refusing NaN/inf (serde_json cannot produce
    // them from text, but be explicit).
    let f = v.as_f64()?;
    f.is_finite()
        .then(|| f.trunc().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
}

/// Decode one map entry of a broadcast. `None` when the entry is not an object.
pub fn decode_map_entry(v: &Value) -> Option<MapSummary> {
    let obj = v.as_object()?;
    let state = obj
        .get("state")
        .and_then(Value::as_str)
        .map_or(MapState::Unknown, MapState::clamp);
    let transport = obj
        .get("transport")
        .and_then(Value::as_str)
        .filter(|t| {
            !t.is_empty() && t.len() <= TRANSPORT_MAX_LEN && !t.chars().any(char::is_control)
        })
        .map(str::to_owned);
    Some(MapSummary {
        state,
        paths_active: non_negative_int(obj.get("paths-active")),
        paths_total: non_negative_int(obj.get("paths-total")),
        transport,
        size: non_negative_int(obj.get("size")),
    })
}

/// Tolerantly decode a peer's raw broadcast.
///
/// Whole-value problems (not JSON, not an object, `maps` not an object) are errors: the reader
/// ignores that node. Entry-level problems (a map entry that is not an object, a key that is not
/// a valid WWID) drop only that entry and are listed in [`Decoded::ignored`]. Counts and sizes
/// that are not non-negative integers become `None`; unknown fields are ignored.
pub fn decode(raw: &str) -> Result<Decoded, DecodeError> {
    let value: Value =
        serde_json::from_str(raw).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(DecodeError::NotObject);
    };
    let Some(Value::Object(maps)) = obj.get("maps") else {
        return Err(DecodeError::MapsNotObject);
    };
    let mut out = Decoded::default();
    for (key, entry) in maps {
        let wwid = match Wwid::new(key.as_str()) {
            Ok(w) => w,
            Err(e) => {
                out.ignored.push(format!("maps: {e}"));
                continue;
            }
        };
        match decode_map_entry(entry) {
            Some(summary) => {
                out.broadcast.maps.insert(wwid, summary);
            }
            None => out
                .ignored
                .push(format!("maps.{key}: entry is not an object")),
        }
    }
    out.broadcast.time = unix_time(obj.get("time"));
    out.broadcast.truncated = non_negative_int(obj.get("truncated"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_valid() {
        let d = decode(
            r#"{"time": 100, "maps": {"wA": {"state":"degraded","paths-active":1,"paths-total":2,"transport":"iscsi","size":42,"extra":1}}, "x": 1}"#,
        )
        .unwrap();
        assert!(d.ignored.is_empty());
        assert_eq!(d.broadcast.time, Some(100));
        let m = &d.broadcast.maps[&Wwid::new("wA").unwrap()];
        assert_eq!(m.state, MapState::Degraded);
        assert_eq!((m.paths_active, m.paths_total), (Some(1), Some(2)));
        assert_eq!(m.transport.as_deref(), Some("iscsi"));
        assert_eq!(m.size, Some(42));
    }

    #[test]
    fn whole_value_errors() {
        assert!(matches!(decode("nope"), Err(DecodeError::NotJson(_))));
        assert_eq!(decode("[1]"), Err(DecodeError::NotObject));
        assert_eq!(decode("\"s\""), Err(DecodeError::NotObject));
        assert_eq!(decode("{}"), Err(DecodeError::MapsNotObject));
        assert_eq!(decode(r#"{"maps": []}"#), Err(DecodeError::MapsNotObject));
        let deep = "[".repeat(10_000);
        assert!(decode(&deep).is_err());
    }

    #[test]
    fn entry_level_tolerance() {
        let d = decode(
            r#"{"maps": {"ok": {"state":"optimal","paths-active":-1,"paths-total":"2","size":1.5,"transport":7},
                         "str": "optimal", "arr": [], "bad wwid": {"state":"optimal"},
                         "weird": {"state": {"x":1}}}}"#,
        )
        .unwrap();
        assert_eq!(d.broadcast.time, None);
        assert_eq!(d.broadcast.maps.len(), 2);
        let ok = &d.broadcast.maps[&Wwid::new("ok").unwrap()];
        assert_eq!(
            (
                ok.paths_active,
                ok.paths_total,
                ok.size,
                ok.transport.as_deref()
            ),
            (None, None, None, None)
        );
        assert_eq!(
            d.broadcast.maps[&Wwid::new("weird").unwrap()].state,
            MapState::Unknown
        );
        assert_eq!(d.ignored.len(), 3, "{:?}", d.ignored);
    }

    #[test]
    fn time_forms() {
        assert_eq!(unix_time(Some(&serde_json::json!(1.9))), Some(1));
        assert_eq!(unix_time(Some(&serde_json::json!("1"))), None);
        assert_eq!(
            unix_time(Some(&serde_json::json!(u64::MAX))),
            Some(i64::MAX)
        );
    }

    #[test]
    fn round_trip_through_serde() {
        let d = decode(
            r#"{"time": 5, "maps": {"w": {"state":"failed","paths-active":0,"paths-total":4}}}"#,
        )
        .unwrap();
        let text = serde_json::to_string(&d.broadcast).unwrap();
        assert_eq!(
            text,
            r#"{"time":5,"maps":{"w":{"state":"failed","paths-active":0,"paths-total":4}}}"#
        );
        assert_eq!(decode(&text).unwrap().broadcast, d.broadcast);
    }
}
