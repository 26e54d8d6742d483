//! Parser for `show maps json` (and `show map X json`): [`parse_maps_json`].
//!
//! Tolerant by design: unknown fields are ignored, every field is optional except a map's
//! `uuid`, a field of the wrong type becomes `None` (listed in [`MapsReply::errors`]), and a
//! structurally broken map is kept with its [`Map::problems`] listed so its health reads
//! `unknown` instead of failed. Only whole-document problems are errors ([`ParseError`]).
//!
//! Memory is the input plus the model's own size: the reply is deserialized straight into
//! lenient structs (any JSON type accepted per field, unknown fields and nested junk skipped
//! without being stored), not into a `serde_json::Value` tree, and each map is converted into
//! the model as soon as it has been read ([`MapsField`]), so the lenient form of only one map
//! exists at a time. Nesting is bounded by serde_json's recursion limit (128), input size by
//! [`MAX_REPLY_LEN`].

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

#[cfg(doc)]
use super::MAX_REPLY_LEN;
use super::error::{ParseError, classify, excerpt, first_line, prepare};
use super::model::{
    CheckerState, DevState, Failback, GroupDmState, Map, MapDmState, MapsReply, MarginalState,
    Path, PathDmState, PathGroup, Queueing, ReplySource, WriteProt, is_placeholder, valid_sysfs,
};
use super::{MAX_ERRORS, MAX_MAP_PROBLEMS, Problems};

/// Which command a JSON reply answers (for error messages).
const COMMAND: &str = super::SHOW_MAPS_JSON;

/// Parse the reply to `show maps json` (or `show map X json`; a trailing NUL from the socket is
/// fine).
///
/// Whole-reply problems are a [`ParseError`]; check [`ParseError::recovery`]: a JSON syntax
/// error (typically an alias containing `"`) asks for the raw-format fallback. Entry-level
/// problems leave a partial result with [`MapsReply::errors`] filled in. A key repeated inside
/// one object is refused as malformed (multipathd never repeats one).
pub fn parse_maps_json(input: &[u8]) -> Result<MapsReply, ParseError> {
    let body = prepare(input)?;
    if body.first() != Some(&b'{') {
        return Err(
            classify(body, COMMAND).unwrap_or_else(|| ParseError::Unexpected {
                first_line: first_line(body),
                command: COMMAND,
            }),
        );
    }
    let top: JTop = serde_json::from_slice(body).map_err(|source| ParseError::Json {
        line: source.line(),
        column: source.column(),
        source,
    })?;
    let mut errors = Problems::new(MAX_ERRORS);
    let mut conv = Conv {
        loc: "",
        errors: &mut errors,
    };
    let major_version = conv.u64("major_version", top.major_version);
    if let Some(found) = major_version
        && found != 0
    {
        return Err(ParseError::UnsupportedVersion { found });
    }
    let minor_version = conv.u64("minor_version", top.minor_version);
    let maps = match (top.maps, top.map) {
        (Some(MapsField::List(converted)), _) => {
            errors.merge(converted.errors);
            converted.maps
        }
        (None, Some(entry)) => {
            let mut converted = ConvertedMaps::default();
            converted.add(entry);
            errors.merge(converted.errors);
            converted.maps
        }
        (Some(MapsField::Bad(kind)), _) => {
            return Err(ParseError::Shape {
                what: format!("\"maps\" is {kind}, not an array"),
            });
        }
        (None, None) => {
            return Err(ParseError::Shape {
                what: "neither \"maps\" nor \"map\" is present".into(),
            });
        }
    };
    Ok(MapsReply {
        source: ReplySource::Json,
        major_version,
        minor_version,
        maps,
        errors: errors.finish(),
    })
}

/// Any JSON value, keeping only what a field can use.
enum Loose {
    Str(String),
    U64(u64),
    I64(i64),
    Null,
    /// Another type, by its kind (the value itself is skipped, not stored).
    Other(&'static str),
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Loose, E> {
        Ok(Loose::Str(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
        Ok(Loose::U64(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose::I64(v))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Loose, E> {
        Ok(Loose::Other("a non-integer number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose, E> {
        Ok(Loose::Other("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other("an object"))
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// An array element that should be an object of type `T`.
enum Elem<T> {
    Ok(T),
    Bad(&'static str),
}

/// A field that should be an array of `T` objects.
enum Elems<T> {
    List(Vec<Elem<T>>),
    Bad(&'static str),
}

/// Kind of a value from its [`Loose`] reading.
fn loose_kind(v: &Loose) -> &'static str {
    match v {
        Loose::Str(_) => "a string",
        Loose::U64(_) | Loose::I64(_) => "a number",
        Loose::Null => "null",
        Loose::Other(kind) => kind,
    }
}

struct ElemVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ElemVisitor<T> {
    type Value = Elem<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Elem<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Elem::Ok)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Elem<T>, E> {
        Ok(Elem::Bad("a string"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Elem<T>, E> {
        Ok(Elem::Bad("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Elem<T>, E> {
        Ok(Elem::Bad("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Elem<T>, E> {
        Ok(Elem::Bad("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Elem<T>, E> {
        Ok(Elem::Bad("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Elem<T>, E> {
        Ok(Elem::Bad("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Elem<T>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Elem::Bad("an array"))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Elem<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElemVisitor(PhantomData))
    }
}

struct ElemsVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ElemsVisitor<T> {
    type Value = Elems<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Elems<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(elem) = seq.next_element::<Elem<T>>()? {
            out.push(elem);
        }
        Ok(Elems::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Elems<T>, A::Error> {
        LooseVisitor
            .visit_map(map)
            .map(|v| Elems::Bad(loose_kind(&v)))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Elems<T>, E> {
        Ok(Elems::Bad("a string"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Elems<T>, E> {
        Ok(Elems::Bad("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Elems<T>, E> {
        Ok(Elems::Bad("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Elems<T>, E> {
        Ok(Elems::Bad("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Elems<T>, E> {
        Ok(Elems::Bad("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Elems<T>, E> {
        Ok(Elems::Bad("null"))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Elems<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElemsVisitor(PhantomData))
    }
}

/// Maps converted into the model one by one, as they are read, with their problems.
struct ConvertedMaps {
    maps: Vec<Map>,
    errors: Problems,
    next: usize,
}

impl Default for ConvertedMaps {
    fn default() -> Self {
        ConvertedMaps {
            maps: Vec::new(),
            errors: Problems::new(MAX_ERRORS),
            next: 0,
        }
    }
}

impl ConvertedMaps {
    fn add(&mut self, entry: Elem<JMap>) {
        let loc = format!("maps[{}]", self.next);
        self.next += 1;
        match entry {
            Elem::Ok(jmap) => {
                if let Some(map) = map_from_json(jmap, &loc, &mut self.errors) {
                    self.maps.push(map);
                }
            }
            Elem::Bad(kind) => self
                .errors
                .push(|| format!("{loc}: {kind} instead of an object; skipped")),
        }
    }
}

/// The `maps` field: an array whose elements are converted as they are read.
enum MapsField {
    List(ConvertedMaps),
    Bad(&'static str),
}

struct MapsFieldVisitor;

impl<'de> Visitor<'de> for MapsFieldVisitor {
    type Value = MapsField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MapsField, A::Error> {
        let mut converted = ConvertedMaps::default();
        while let Some(entry) = seq.next_element::<Elem<JMap>>()? {
            converted.add(entry);
        }
        Ok(MapsField::List(converted))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MapsField, A::Error> {
        LooseVisitor
            .visit_map(map)
            .map(|v| MapsField::Bad(loose_kind(&v)))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<MapsField, E> {
        Ok(MapsField::Bad("a string"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<MapsField, E> {
        Ok(MapsField::Bad("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<MapsField, E> {
        Ok(MapsField::Bad("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<MapsField, E> {
        Ok(MapsField::Bad("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<MapsField, E> {
        Ok(MapsField::Bad("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<MapsField, E> {
        Ok(MapsField::Bad("null"))
    }
}

impl<'de> Deserialize<'de> for MapsField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MapsFieldVisitor)
    }
}

/// The document. Unknown fields are skipped.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct JTop {
    major_version: Option<Loose>,
    minor_version: Option<Loose>,
    maps: Option<MapsField>,
    map: Option<Elem<JMap>>,
}

/// A map object (0.8.0 to 0.14.3 keys).
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct JMap {
    name: Option<Loose>,
    uuid: Option<Loose>,
    sysfs: Option<Loose>,
    failback: Option<Loose>,
    queueing: Option<Loose>,
    paths: Option<Loose>,
    write_prot: Option<Loose>,
    dm_st: Option<Loose>,
    features: Option<Loose>,
    hwhandler: Option<Loose>,
    action: Option<Loose>,
    path_faults: Option<Loose>,
    vend: Option<Loose>,
    prod: Option<Loose>,
    rev: Option<Loose>,
    switch_grp: Option<Loose>,
    map_loads: Option<Loose>,
    total_q_time: Option<Loose>,
    q_timeouts: Option<Loose>,
    path_groups: Option<Elems<JGroup>>,
}

/// A path group object.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct JGroup {
    selector: Option<Loose>,
    pri: Option<Loose>,
    dm_st: Option<Loose>,
    marginal_st: Option<Loose>,
    group: Option<Loose>,
    paths: Option<Elems<JPath>>,
}

/// A path object.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct JPath {
    dev: Option<Loose>,
    dev_t: Option<Loose>,
    dm_st: Option<Loose>,
    dev_st: Option<Loose>,
    chk_st: Option<Loose>,
    checker: Option<Loose>,
    pri: Option<Loose>,
    host_wwnn: Option<Loose>,
    target_wwnn: Option<Loose>,
    host_wwpn: Option<Loose>,
    target_wwpn: Option<Loose>,
    host_adapter: Option<Loose>,
    lun_hex: Option<Loose>,
    marginal_st: Option<Loose>,
}

/// Field conversion for one object, recording type mismatches.
struct Conv<'a> {
    loc: &'a str,
    errors: &'a mut Problems,
}

impl Conv<'_> {
    fn mismatch(&mut self, key: &str, expected: &str, found: &Loose) {
        let loc = self.loc;
        let sep = if loc.is_empty() { "" } else { "." };
        let found = loose_kind(found);
        self.errors
            .push(|| format!("{loc}{sep}{key}: {found} instead of {expected}; ignored"));
    }

    /// A string field; numbers are accepted as their text. Missing or null is `None`.
    fn string(&mut self, key: &str, v: Option<Loose>) -> Option<String> {
        match v? {
            Loose::Str(s) => Some(s),
            Loose::U64(n) => Some(n.to_string()),
            Loose::I64(n) => Some(n.to_string()),
            Loose::Null => None,
            other => {
                self.mismatch(key, "a string", &other);
                None
            }
        }
    }

    /// A string field with multipathd's "not known" placeholders mapped to `None`.
    fn defined(&mut self, key: &str, v: Option<Loose>) -> Option<String> {
        self.string(key, v).filter(|s| !is_placeholder(s))
    }

    fn u64(&mut self, key: &str, v: Option<Loose>) -> Option<u64> {
        match v? {
            Loose::U64(n) => Some(n),
            Loose::Null => None,
            other => {
                self.mismatch(key, "a non-negative integer", &other);
                None
            }
        }
    }

    fn i64(&mut self, key: &str, v: Option<Loose>) -> Option<i64> {
        match v? {
            Loose::I64(n) => Some(n),
            Loose::U64(n) => match i64::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.mismatch(key, "an integer in range", &Loose::U64(n));
                    None
                }
            },
            Loose::Null => None,
            other => {
                self.mismatch(key, "an integer", &other);
                None
            }
        }
    }
}

fn map_from_json(j: JMap, loc: &str, errors: &mut Problems) -> Option<Map> {
    let mut c = Conv { loc, errors };
    let Some(wwid) = c.string("uuid", j.uuid).filter(|w| !w.is_empty()) else {
        c.errors
            .push(|| format!("{loc}: no \"uuid\" (WWID); map skipped"));
        return None;
    };
    let name = c.string("name", j.name).filter(|n| !n.is_empty());
    let mut map = Map::new(name.unwrap_or_else(|| wwid.clone()), wwid);
    map.sysfs = match c.string("sysfs", j.sysfs) {
        Some(s) if valid_sysfs(&s) => Some(s),
        Some(s) if is_placeholder(&s) => None,
        Some(s) => {
            let shown = excerpt(&s);
            c.errors
                .push(|| format!("{loc}.sysfs: {shown:?} is not dm-<minor>; ignored"));
            None
        }
        None => None,
    };
    map.failback = c
        .string("failback", j.failback)
        .map(|s| Failback::parse(&s));
    map.queueing = c
        .string("queueing", j.queueing)
        .map(|s| Queueing::parse(&s));
    map.reported_active = c.u64("paths", j.paths);
    map.write_prot = c
        .string("write_prot", j.write_prot)
        .map(|s| WriteProt::parse(&s));
    map.dm_st = c.string("dm_st", j.dm_st).map(|s| MapDmState::parse(&s));
    map.features = c.string("features", j.features);
    map.hwhandler = c.string("hwhandler", j.hwhandler);
    map.action = c.string("action", j.action);
    map.path_faults = c.u64("path_faults", j.path_faults);
    map.switch_grp = c.u64("switch_grp", j.switch_grp);
    map.map_loads = c.u64("map_loads", j.map_loads);
    map.total_q_time = c.u64("total_q_time", j.total_q_time);
    map.q_timeouts = c.u64("q_timeouts", j.q_timeouts);
    map.vendor = c.defined("vend", j.vend);
    map.product = c.defined("prod", j.prod);
    map.revision = c.defined("rev", j.rev);

    let mut problems = Problems::new(MAX_MAP_PROBLEMS);
    match j.path_groups {
        Some(Elems::List(groups)) => {
            map.path_groups.reserve_exact(groups.len());
            for (g, group) in groups.into_iter().enumerate() {
                match group {
                    Elem::Ok(jgroup) => {
                        let gloc = format!("{loc}.path_groups[{g}]");
                        map.path_groups.push(group_from_json(
                            jgroup,
                            &gloc,
                            c.errors,
                            &mut problems,
                        ));
                    }
                    Elem::Bad(kind) => problems.push(|| format!("path_groups[{g}] is {kind}")),
                }
            }
        }
        Some(Elems::Bad(kind)) => {
            problems.push(|| format!("\"path_groups\" is {kind} instead of an array"))
        }
        None => problems.push(|| "no \"path_groups\"".into()),
    }
    map.problems = problems.finish();
    Some(map)
}

fn group_from_json(
    j: JGroup,
    loc: &str,
    errors: &mut Problems,
    problems: &mut Problems,
) -> PathGroup {
    let mut c = Conv { loc, errors };
    let mut group = PathGroup {
        group: c.u64("group", j.group).and_then(|n| u32::try_from(n).ok()),
        selector: c.defined("selector", j.selector),
        pri: c.i64("pri", j.pri),
        dm_st: c.string("dm_st", j.dm_st).map(|s| GroupDmState::parse(&s)),
        marginal_st: c
            .string("marginal_st", j.marginal_st)
            .map(|s| MarginalState::parse(&s)),
        paths: Vec::new(),
    };
    match j.paths {
        Some(Elems::List(paths)) => {
            group.paths.reserve_exact(paths.len());
            for (k, path) in paths.into_iter().enumerate() {
                match path {
                    Elem::Ok(jpath) => {
                        let ploc = format!("{loc}.paths[{k}]");
                        group
                            .paths
                            .push(path_from_json(jpath, &ploc, c.errors, problems));
                    }
                    Elem::Bad(kind) => {
                        problems.push(|| format!("{}.paths[{k}] is {kind}", short(loc)));
                    }
                }
            }
        }
        Some(Elems::Bad(kind)) => {
            problems.push(|| format!("{}: \"paths\" is {kind} instead of an array", short(loc)));
        }
        None => problems.push(|| format!("{}: no \"paths\"", short(loc))),
    }
    group
}

/// The location inside a map (drops the leading `maps[i].`), for per-map problems.
fn short(loc: &str) -> &str {
    loc.split_once('.').map_or(loc, |(_, rest)| rest)
}

fn path_from_json(j: JPath, loc: &str, errors: &mut Problems, problems: &mut Problems) -> Path {
    let mut c = Conv { loc, errors };
    let dev = c.string("dev", j.dev).filter(|d| !d.is_empty());
    let mut path = Path::new(dev.clone().unwrap_or_else(|| "-".into()));
    path.dev_t = c.defined("dev_t", j.dev_t);
    path.dm_st = c.string("dm_st", j.dm_st).map(|s| PathDmState::parse(&s));
    path.dev_st = c.string("dev_st", j.dev_st).map(|s| DevState::parse(&s));
    path.chk_st = c
        .string("chk_st", j.chk_st)
        .map(|s| CheckerState::parse(&s));
    path.checker = c.defined("checker", j.checker);
    path.pri = c.i64("pri", j.pri);
    path.host_wwnn = c.defined("host_wwnn", j.host_wwnn);
    path.target_wwnn = c.defined("target_wwnn", j.target_wwnn);
    path.host_wwpn = c.defined("host_wwpn", j.host_wwpn);
    path.target_wwpn = c.defined("target_wwpn", j.target_wwpn);
    path.host_adapter = c.defined("host_adapter", j.host_adapter);
    path.lun_hex = c.defined("lun_hex", j.lun_hex);
    path.marginal_st = c
        .string("marginal_st", j.marginal_st)
        .map(|s| MarginalState::parse(&s));
    if dev.is_none() {
        c.errors.push(|| format!("{loc}: no \"dev\""));
    }
    if path.dm_st.is_none() || path.chk_st.is_none() {
        let shown = short(loc).to_owned();
        problems.push(|| format!("{shown} ({}) has no dm_st or chk_st", path.dev));
    }
    path
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::multipathd::error::Recovery;

    #[test]
    fn minimal_and_single_map_forms() {
        let r = parse_maps_json(
            b"{\n   \"major_version\": 0,\n   \"minor_version\": 1,\n   \"maps\": []\n}\n\0",
        )
        .unwrap();
        assert!(r.maps.is_empty() && r.errors.is_empty());
        assert_eq!((r.major_version, r.minor_version), (Some(0), Some(1)));
        let r = parse_maps_json(br#"{"major_version": 0, "minor_version": 1, "map":{"name":"a","uuid":"w","path_groups":[]}}"#)
            .unwrap();
        assert_eq!(r.maps.len(), 1);
        assert_eq!(r.maps[0].name, "a");
    }

    #[test]
    fn tolerant_fields() {
        let r = parse_maps_json(
            br#"{"maps": [
                {"uuid": "w1", "sysfs": "../../etc", "paths": "3", "new_field": {"x": [1]},
                 "path_groups": [{"group": 1, "paths": [{"dev": "sda", "dm_st": "active", "chk_st": "ready", "pri": "x"}]}, 7]},
                {"name": "no-uuid"},
                "string",
                {"uuid": "w2", "path_groups": {"not": "an array"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(r.maps.len(), 2);
        let m = &r.maps[0];
        assert_eq!(m.name, "w1");
        assert_eq!(m.sysfs, None);
        assert_eq!(m.reported_active, None);
        assert_eq!(m.path_groups.len(), 1);
        assert_eq!(m.problems, vec!["path_groups[1] is a number".to_string()]);
        assert_eq!(r.maps[1].problems.len(), 1);
        assert_eq!(r.errors.len(), 5, "{:#?}", r.errors);
    }

    #[test]
    fn whole_reply_errors() {
        let rec = |b: &[u8]| parse_maps_json(b).unwrap_err().recovery();
        assert_eq!(rec(b"fail\n"), Recovery::Retry);
        assert_eq!(rec(b""), Recovery::Retry);
        assert_eq!(rec(b"[1]"), Recovery::GiveUp);
        assert_eq!(rec(b"{\"maps\": 1}"), Recovery::FallBackToRaw);
        assert_eq!(
            rec(b"{\"major_version\": 1, \"maps\": []}"),
            Recovery::FallBackToRaw
        );
        assert_eq!(
            rec(b"{\"maps\": [{\"name\" : \"a\"b\"}]}"),
            Recovery::FallBackToRaw
        );
    }
}
