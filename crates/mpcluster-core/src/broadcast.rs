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
use std::sync::Arc;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
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
    pub transport: Option<Arc<str>>,
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
    /// Written by a newer mpcluster ([`crate::format`]).
    #[error(transparent)]
    Newer(crate::format::NewerFormat),
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

/// A JSON value as the tolerant decoder sees it: numbers and strings are kept, anything else
/// (null, bool, array, object) is consumed and forgotten.
enum Loose<'de> {
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'de, str>),
    Other,
}

impl Loose<'_> {
    fn non_negative_int(&self) -> Option<u64> {
        match *self {
            Loose::U64(v) => Some(v),
            _ => None,
        }
    }

    fn unix_time(&self) -> Option<i64> {
        match *self {
            Loose::U64(v) => Some(i64::try_from(v).unwrap_or(i64::MAX)),
            Loose::I64(v) => Some(v),
            Loose::F64(f) if f.is_finite() => {
                Some(f.trunc().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
            }
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Loose::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose::U64(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::I64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::F64(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// A string key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Loose::deserialize(d)? {
            Loose::Str(s) => Ok(Key(s)),
            _ => Err(de::Error::custom("expected a string key")),
        }
    }
}

/// One map entry: `Some` for an object (fields decoded tolerantly), `None` for anything else.
struct Entry(Option<MapSummary>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map summary object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let mut summary = MapSummary {
                    state: MapState::Unknown,
                    paths_active: None,
                    paths_total: None,
                    transport: None,
                    size: None,
                };
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let value: Loose<'de> = map.next_value()?;
                    match &*key {
                        "state" => {
                            summary.state =
                                value.as_str().map_or(MapState::Unknown, MapState::clamp)
                        }
                        "paths-active" => summary.paths_active = value.non_negative_int(),
                        "paths-total" => summary.paths_total = value.non_negative_int(),
                        "size" => summary.size = value.non_negative_int(),
                        "transport" => {
                            summary.transport = value
                                .as_str()
                                .filter(|t| {
                                    !t.is_empty()
                                        && t.len() <= TRANSPORT_MAX_LEN
                                        && !t.chars().any(char::is_control)
                                })
                                .map(Arc::from)
                        }
                        _ => {}
                    }
                }
                Ok(Entry(Some(summary)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Entry(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry, E> {
                Ok(Entry(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
                Ok(Entry(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Every node's broadcast names mostly the same WWIDs: each decoding thread keeps the ones it
/// validated (shared `Arc`s), so a WWID is checked and allocated once per thread, not once per
/// node. Bounded: cleared when it holds [`INTERNED_MAX`].
fn interned_wwid(key: &str) -> Result<Wwid, crate::ids::IdError> {
    thread_local! {
        static SEEN: std::cell::RefCell<std::collections::HashSet<Wwid>> =
            std::cell::RefCell::new(std::collections::HashSet::new());
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(w) = seen.get(key) {
            return Ok(w.clone());
        }
        let w = Wwid::new(key)?;
        if seen.len() >= INTERNED_MAX {
            seen.clear();
        }
        seen.insert(w.clone());
        Ok(w)
    })
}

/// At most this many WWIDs are kept per thread by [`interned_wwid`].
const INTERNED_MAX: usize = 65_536;

/// The `maps` object: every entry decoded, problems listed.
struct Maps {
    maps: BTreeMap<Wwid, MapSummary>,
    ignored: Vec<String>,
}

impl<'de> Deserialize<'de> for Maps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Maps;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of map summaries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Maps, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
                let mut ignored = Vec::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let Entry(entry) = map.next_value()?;
                    match (interned_wwid(&key), entry) {
                        (Ok(wwid), Some(summary)) => entries.push((wwid, summary)),
                        (Err(e), _) => ignored.push(format!("maps: {e}")),
                        (Ok(_), None) => {
                            ignored.push(format!("maps.{key}: entry is not an object"))
                        }
                    }
                }
                // Bulk build: our own encoder writes keys sorted, so this is linear; a
                // repeated key keeps its last value, as JSON object semantics say.
                Ok(Maps {
                    maps: entries.into_iter().collect(),
                    ignored,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// The top level: `Ok` for an object, `Err(NotObject)` for any other JSON value.
struct Top(Result<Decoded, DecodeError>);

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a broadcast object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut maps: Option<Maps> = None;
                let mut maps_bad = false;
                let mut time = None;
                let mut truncated = None;
                let mut format = 1u64;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match &*key {
                        crate::format::FIELD => {
                            // Not a number: as unknown as a newer one.
                            format = map
                                .next_value::<Loose<'de>>()?
                                .non_negative_int()
                                .unwrap_or(u64::MAX)
                        }
                        "maps" => {
                            // Peek the kind without buffering: a non-object `maps` is consumed
                            // as a loose value.
                            match map.next_value::<MaybeMaps>()? {
                                MaybeMaps(Some(m)) => {
                                    maps = Some(m);
                                    maps_bad = false;
                                }
                                MaybeMaps(None) => {
                                    maps = None;
                                    maps_bad = true;
                                }
                            }
                        }
                        "time" => time = map.next_value::<Loose<'de>>()?.unix_time(),
                        "truncated" => {
                            truncated = map.next_value::<Loose<'de>>()?.non_negative_int()
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if format > u64::from(crate::format::BROADCAST_FORMAT) {
                    return Ok(Top(Err(DecodeError::Newer(crate::format::NewerFormat {
                        what: "the broadcast".to_owned(),
                        found: u32::try_from(format).unwrap_or(u32::MAX),
                        known: crate::format::BROADCAST_FORMAT,
                    }))));
                }
                let Some(maps) = maps.filter(|_| !maps_bad) else {
                    return Ok(Top(Err(DecodeError::MapsNotObject)));
                };
                Ok(Top(Ok(Decoded {
                    broadcast: Broadcast {
                        time,
                        maps: maps.maps,
                        truncated,
                    },
                    ignored: maps.ignored,
                })))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Top(Err(DecodeError::NotObject)))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
                Ok(Top(Err(DecodeError::NotObject)))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
                Ok(Top(Err(DecodeError::NotObject)))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
                Ok(Top(Err(DecodeError::NotObject)))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
                Ok(Top(Err(DecodeError::NotObject)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
                Ok(Top(Err(DecodeError::NotObject)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
                Ok(Top(Err(DecodeError::NotObject)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `maps` when it is an object, `None` (value consumed) otherwise.
struct MaybeMaps(Option<Maps>);

impl<'de> Deserialize<'de> for MaybeMaps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeMaps;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeMaps, A::Error> {
                Maps::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|m| MaybeMaps(Some(m)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeMaps, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeMaps(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeMaps, E> {
                Ok(MaybeMaps(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeMaps, E> {
                Ok(MaybeMaps(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeMaps, E> {
                Ok(MaybeMaps(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeMaps, E> {
                Ok(MaybeMaps(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeMaps, E> {
                Ok(MaybeMaps(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeMaps, E> {
                Ok(MaybeMaps(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Tolerantly decode a peer's raw broadcast.
///
/// Whole-value problems (not JSON, not an object, `maps` not an object) are errors: the reader
/// ignores that node. Entry-level problems (a map entry that is not an object, a key that is not
/// a valid WWID) drop only that entry and are listed in [`Decoded::ignored`]. Counts and sizes
/// that are not non-negative integers become `None`; unknown fields are ignored.
///
/// Streams over the input without building a `serde_json::Value` tree (this runs for every
/// node on every status recomputation).
pub fn decode(raw: &str) -> Result<Decoded, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let top = Top::deserialize(&mut de).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    de.end().map_err(|e| DecodeError::NotJson(e.to_string()))?;
    top.0
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
