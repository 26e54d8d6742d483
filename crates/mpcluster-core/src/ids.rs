//! Validated identifiers: [`Wwid`], [`NodeName`], [`Alias`].
//!
//! Each is parsed once at a boundary (API body, CLI argument, snapshot, peer broadcast) and is
//! valid from then on. The rules live in one place per type so the API, the CLI, the config
//! renderer and the status engine agree on what is acceptable.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was rejected. Names the kind of identifier, the offending value
/// (truncated for display) and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct IdError {
    /// Which identifier ("WWID", "node name", "alias").
    pub kind: &'static str,
    /// The rejected value, cut to 80 characters so a 10 KB attack string does not flood logs.
    pub value: String,
    /// The rule that was broken.
    pub reason: String,
}

impl IdError {
    fn new(kind: &'static str, value: &str, reason: impl Into<String>) -> Self {
        let mut shown: String = value.chars().take(80).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        IdError {
            kind,
            value: shown,
            reason: reason.into(),
        }
    }
}

/// A rule for the first or last character: the test, and the reason when it fails.
type Edge = (fn(char) -> bool, &'static str);

/// The rule of one identifier type, as data: checked in this order (the first broken part is
/// the error), by [`Rule::check`].
struct Rule {
    /// Which identifier ("WWID", "node name", ...), for the error.
    kind: &'static str,
    /// Shortest length in bytes, and what is said below it.
    min_len: usize,
    too_short: &'static str,
    /// Longest length in bytes, and its unit in the message (`longer than 64 characters`);
    /// `show_len` adds the actual length.
    max_len: usize,
    unit: &'static str,
    show_len: bool,
    /// What the first and the last character must be, if anything, and what is said otherwise.
    first: Option<Edge>,
    last: Option<Edge>,
    /// Characters that may not appear anywhere, and the rule said after `contains 'x'; `.
    forbidden: fn(char) -> bool,
    charset: &'static str,
}

impl Rule {
    fn check(&self, v: &str) -> Result<(), IdError> {
        // The common case, checked without decoding characters: an ASCII value of a fitting
        // length whose every byte passes. Anything else takes the full path below, which also
        // finds the reason.
        if v.is_ascii()
            && (self.min_len..=self.max_len).contains(&v.len())
            && v.bytes().all(|b| !(self.forbidden)(char::from(b)))
            && self.edges_ok(v)
        {
            return Ok(());
        }
        self.check_slow(v)
    }

    fn edges_ok(&self, v: &str) -> bool {
        let ok = |c: Option<char>, rule: Option<Edge>| match (c, rule) {
            (Some(c), Some((test, _))) => test(c),
            _ => true,
        };
        ok(v.chars().next(), self.first) && ok(v.chars().last(), self.last)
    }

    fn check_slow(&self, v: &str) -> Result<(), IdError> {
        let err = |reason: String| Err(IdError::new(self.kind, v, reason));
        if v.len() < self.min_len {
            return err(self.too_short.to_owned());
        }
        if v.len() > self.max_len {
            let actual = if self.show_len {
                format!(" ({} {})", v.len(), self.unit)
            } else {
                String::new()
            };
            return err(format!(
                "longer than {} {}{actual}",
                self.max_len, self.unit
            ));
        }
        for (edge, rule) in [
            (v.chars().next(), self.first),
            (v.chars().last(), self.last),
        ] {
            if let (Some(c), Some((ok, reason))) = (edge, rule)
                && !ok(c)
            {
                return err(reason.to_owned());
            }
        }
        if let Some(c) = v.chars().find(|c| (self.forbidden)(*c)) {
            return err(format!("contains {c:?}; {}", self.charset));
        }
        Ok(())
    }
}

/// `[A-Za-z0-9._-]`, the character set of aliases, node names and storage ids.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

const NAME_CHARSET: &str = "only A-Z, a-z, 0-9, '.', '_' and '-' are allowed";

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        $(#[$doc])*
        ///
        /// Shared (`Arc<str>`): cloning is a reference-count bump, which matters where the
        /// status matrix repeats node names and WWIDs in every cell.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            const RULE: Rule = $rule;

            /// Validate and wrap.
            pub fn new(value: impl AsRef<str>) -> Result<Self, IdError> {
                let value = value.as_ref();
                Self::RULE.check(value)?;
                Ok($name(Arc::from(value)))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier as an owned string.
            pub fn into_string(self) -> String {
                self.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $name::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Longest WWID accepted. multipath-tools keeps WWIDs in a 128-byte buffer (`WWID_SIZE`)
/// including the terminating NUL.
pub const WWID_MAX_LEN: usize = 127;
/// Longest alias accepted.
pub const ALIAS_MAX_LEN: usize = 64;
/// Longest node name accepted (a DNS name).
pub const NODE_NAME_MAX_LEN: usize = 253;
/// Longest storage id accepted.
pub const STORAGE_ID_MAX_LEN: usize = 64;

string_newtype!(
    /// A LUN's World Wide Identifier as multipathd reports it (e.g. `3600a098038303053453f463045727a2f`).
    /// Any text a multipath.conf section can quote safely: NAA hex, T10 with `_`, `eui.`/`nvme.`
    /// with `.` and `-`.
    Wwid,
    Rule {
        kind: "WWID",
        min_len: 1,
        too_short: "must not be empty",
        max_len: WWID_MAX_LEN,
        unit: "bytes",
        show_len: true,
        first: None,
        last: None,
        forbidden: |c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '"' | '\'' | '/' | '#' | '!' | '{' | '}' | '\\')
        },
        charset: "whitespace, quotes, '/', '#', '!', braces, backslashes and control characters are not allowed",
    }
);
string_newtype!(
    /// A multipath map alias (`alias` in a `multipath` section).
    Alias,
    Rule {
        kind: "alias",
        min_len: 1,
        too_short: "must not be empty",
        max_len: ALIAS_MAX_LEN,
        unit: "characters",
        show_len: false,
        first: None,
        last: None,
        forbidden: |c| !name_char(c),
        charset: NAME_CHARSET,
    }
);
string_newtype!(
    /// A storage definition's id (Proxmox `pve-storage-id` rules).
    StorageId,
    Rule {
        kind: "storage id",
        min_len: 2,
        too_short: "must be at least 2 characters",
        max_len: STORAGE_ID_MAX_LEN,
        unit: "characters",
        show_len: false,
        first: Some((|c| c.is_ascii_alphabetic(), "must start with a letter")),
        last: Some((|c| c.is_ascii_alphanumeric(), "must end with a letter or digit")),
        forbidden: |c| !name_char(c),
        charset: NAME_CHARSET,
    }
);
string_newtype!(
    /// A cluster node's name (its host name).
    NodeName,
    Rule {
        kind: "node name",
        min_len: 1,
        too_short: "must not be empty",
        max_len: NODE_NAME_MAX_LEN,
        unit: "characters",
        show_len: false,
        first: Some((|c| c.is_ascii_alphanumeric(), "must start with a letter or digit")),
        last: None,
        forbidden: |c| !name_char(c),
        charset: NAME_CHARSET,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wwid_accepts_real_forms() {
        for w in [
            "3600a098038303053453f463045727a2f",
            "1Linux_scsi_debug_2000",
            "eui.0025388b71b0e2c4",
            "nvme.1b36-3132333435-51454d55204e564d65204374726c-00000001",
            "wA",
        ] {
            Wwid::new(w).unwrap();
        }
    }

    #[test]
    fn wwid_rejects_injection() {
        for bad in [
            "", "a b", "a\"b", "a\nb", "a\rb", "a}b", "a{b", "a#b", "a!b", "a/b", "a\\b", "a'b",
            "a\u{0}b",
        ] {
            let e = Wwid::new(bad).unwrap_err();
            assert_eq!(e.kind, "WWID");
        }
        let long = "a".repeat(128);
        assert!(Wwid::new(&long[..127]).is_ok());
        let e = Wwid::new(long).unwrap_err();
        assert!(e.reason.contains("longer than 127"), "{e}");
    }

    #[test]
    fn alias_rules() {
        assert!(Alias::new("lun-a_1.x").is_ok());
        assert!(Alias::new("a".repeat(64)).is_ok());
        assert!(Alias::new("a".repeat(65)).is_err());
        for bad in ["", "a b", "a\"", "a/b", "ä", "a{"] {
            assert!(Alias::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn node_name_rules() {
        assert!(NodeName::new("pve1").is_ok());
        assert!(NodeName::new("node-a.example.com").is_ok());
        for bad in ["", "-x", "a b", "a/b", "a:b"] {
            assert!(NodeName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn storage_id_rules() {
        assert!(StorageId::new("san1-lvm").is_ok());
        assert!(StorageId::new("mp.1_x").is_ok());
        for bad in ["", "a", "1abc", "abc-", "a b", "a:b"] {
            assert!(StorageId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_rule_has_its_message() {
        let reason = |e: IdError| e.reason;
        let cases = [
            (reason(Wwid::new("").unwrap_err()), "must not be empty"),
            (
                reason(Wwid::new("a".repeat(128)).unwrap_err()),
                "longer than 127 bytes (128 bytes)",
            ),
            (
                reason(Wwid::new("a\tb").unwrap_err()),
                "contains '\\t'; whitespace, quotes, '/', '#', '!', braces, backslashes and control characters are not allowed",
            ),
            (
                reason(Alias::new("a".repeat(65)).unwrap_err()),
                "longer than 64 characters",
            ),
            (
                reason(StorageId::new("a").unwrap_err()),
                "must be at least 2 characters",
            ),
            (
                reason(StorageId::new("x".repeat(65)).unwrap_err()),
                "longer than 64 characters",
            ),
            (
                reason(StorageId::new("1abc").unwrap_err()),
                "must start with a letter",
            ),
            (
                reason(StorageId::new("abc-").unwrap_err()),
                "must end with a letter or digit",
            ),
            (
                reason(StorageId::new("a:b").unwrap_err()),
                "contains ':'; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed",
            ),
            (reason(NodeName::new("").unwrap_err()), "must not be empty"),
            (
                reason(NodeName::new("-x").unwrap_err()),
                "must start with a letter or digit",
            ),
            (
                reason(NodeName::new("x".repeat(254)).unwrap_err()),
                "longer than 253 characters",
            ),
            (
                reason(NodeName::new("a/b").unwrap_err()),
                "contains '/'; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn error_message_names_value_and_rule() {
        let e = Alias::new("bad alias").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid alias \"bad alias\": contains ' '; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"
        );
        let e = Wwid::new("x".repeat(10_000)).unwrap_err();
        assert!(e.to_string().len() < 300);
    }

    #[test]
    fn serde_validates() {
        let w: Result<Wwid, _> = serde_json::from_str("\"a b\"");
        assert!(w.is_err());
        let w: Wwid = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(serde_json::to_string(&w).unwrap(), "\"abc\"");
    }
}
