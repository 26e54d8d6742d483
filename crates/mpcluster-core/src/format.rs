//! Format versions of everything mpcluster stores, for rolling upgrades.
//!
//! Nodes are upgraded one by one, so agents, servers and CLIs of two consecutive releases share
//! one store. The rule, the same for every document and node value:
//!
//! - Each stored JSON object may carry a top-level `"format": N`. **Absent means 1**, and a
//!   writer at format 1 leaves it out, so what this release writes is byte-compatible with the
//!   previous release (which knew no `format` field).
//! - A reader that meets a format newer than it knows refuses it with [`NewerFormat`], naming
//!   both versions, instead of misreading it: a node error for a peer's value, a CLI or API
//!   error for a document.
//! - A writer never overwrites a newer document: every configuration edit reads (and so checks)
//!   the document before its compare-and-swap write.
//!
//! [`FORMATS`] lists what this build reads and writes; values that had a version field before
//! this rule (tokens, apply plans, snapshots: `version`) keep theirs and follow the same rule.

use serde::de::{self, IgnoredAny, MapAccess, Visitor};

/// The field that carries the format.
pub const FIELD: &str = "format";

/// A stored thing and the newest format this build reads (and the one it writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// Where it is stored: a document name or a node KV key.
    pub name: &'static str,
    /// What people call it.
    pub title: &'static str,
    /// The field holding the version (`format`, or `version` for older kinds).
    pub field: &'static str,
    /// The newest format this build reads; it writes this one.
    pub current: u32,
}

/// Every stored document and node value this build reads, with its format.
pub const FORMATS: &[Format] = &[
    f(
        "multipath-config",
        "the multipath configuration document",
        FIELD,
        1,
    ),
    f(
        "multipath-overrides",
        "the overrides (a JSON string in format 1)",
        FIELD,
        1,
    ),
    f("storage", "the storage document", FIELD, 1),
    f(
        "tokens",
        "the API tokens document",
        "version",
        crate::tokens::TOKENS_VERSION,
    ),
    f(
        "multipath-accept",
        "the apply acceptance document",
        FIELD,
        1,
    ),
    f(
        "events",
        "the event log",
        FIELD,
        crate::events::EVENTS_FORMAT,
    ),
    f(
        "multipath",
        "a node's health broadcast",
        FIELD,
        BROADCAST_FORMAT,
    ),
    f(
        "multipath-plan",
        "a node's apply plan",
        "version",
        crate::plan::PLAN_VERSION,
    ),
    f(
        "multipath-detail",
        "a node's path detail",
        FIELD,
        DETAIL_FORMAT,
    ),
];

const fn f(name: &'static str, title: &'static str, field: &'static str, current: u32) -> Format {
    Format {
        name,
        title,
        field,
        current,
    }
}

/// The health broadcast's format.
pub const BROADCAST_FORMAT: u32 = 1;
/// The path detail's format.
pub const DETAIL_FORMAT: u32 = 1;

/// A stored value of a newer format than this build reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} has format {found}, newer than format {known} that this mpcluster ({}) reads: \
     upgrade this node (it neither reads nor changes it meanwhile)",
    env!("CARGO_PKG_VERSION")
)]
pub struct NewerFormat {
    /// What was read.
    pub what: String,
    /// Its format.
    pub found: u32,
    /// The newest this build reads.
    pub known: u32,
}

/// The format of a stored JSON text: its top-level `field` (`format` or `version`) when the
/// text is an object holding a non-negative integer there, 1 when the field is absent, `None`
/// when the text is no JSON object (its parser reports that). Only the top level is looked at;
/// nothing is kept.
pub fn probe(text: &str, field: &str) -> Option<u32> {
    struct V<'f>(&'f str);
    impl<'de> Visitor<'de> for V<'_> {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<u32>, A::Error> {
            let mut found = 1;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.0 {
                    let v: serde_json::Value = map.next_value()?;
                    found = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| de::Error::custom("format is not a number"))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Some(found))
        }
    }
    struct Probe<'f>(&'f str, Option<u32>);
    impl<'de> de::DeserializeSeed<'de> for &mut Probe<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            self.1 = d.deserialize_any(V(self.0)).ok().flatten();
            Ok(())
        }
    }
    let mut p = Probe(field, None);
    let mut de = serde_json::Deserializer::from_str(text);
    de::DeserializeSeed::deserialize(&mut p, &mut de).ok()?;
    p.1
}

/// Refuse `text` if it is of a newer format than `known`.
pub fn check(what: &str, text: &str, field: &str, known: u32) -> Result<(), NewerFormat> {
    match probe(text, field) {
        Some(found) if found > known => Err(NewerFormat {
            what: what.to_owned(),
            found,
            known,
        }),
        _ => Ok(()),
    }
}

/// [`check`] for one of [`FORMATS`] by its name. An unknown name is not checked.
pub fn check_named(name: &str, text: &str) -> Result<(), NewerFormat> {
    match FORMATS.iter().find(|f| f.name == name) {
        Some(f) => check(f.title, text, f.field, f.current),
        None => Ok(()),
    }
}

/// `Deserialize` helper: the `format` field of a struct (absent = 1).
pub fn one() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_only_the_top_level_field() {
        assert_eq!(probe(r#"{"a": 1}"#, FIELD), Some(1), "absent = 1");
        assert_eq!(
            probe(r#"{"format": 3, "x": {"format": 9}}"#, FIELD),
            Some(3)
        );
        assert_eq!(probe(r#"{"x": {"format": 9}}"#, FIELD), Some(1));
        assert_eq!(probe(r#"{"version": 2}"#, "version"), Some(2));
        assert_eq!(probe(r#""a string""#, FIELD), None);
        assert_eq!(probe("not json", FIELD), None);
        assert_eq!(probe(r#"{"format": "two"}"#, FIELD), None);
    }

    #[test]
    fn newer_is_refused_naming_both_versions() {
        let e = check_named("storage", r#"{"format": 2, "storages": []}"#).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("the storage document has format 2, newer than format 1"),
            "{text}"
        );
        assert!(text.contains("upgrade this node"), "{text}");
        assert!(check_named("storage", r#"{"format": 1}"#).is_ok());
        assert!(check_named("storage", r#"{"storages": []}"#).is_ok());
        assert!(check_named("unknown-doc", r#"{"format": 99}"#).is_ok());
    }

    #[test]
    fn every_format_is_listed_once() {
        let mut names: Vec<&str> = FORMATS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FORMATS.len());
    }
}
