//! [`ConfigDigest`]: the SHA-256 of a stored document's content, used for optimistic
//! concurrency on every configuration write.
//!
//! A reader gets `(content, digest)`; a writer sends back the digest it last saw and the store
//! refuses the write if the document changed meanwhile (Proxmox `proxmox-config-digest`
//! semantics). The digest is a pure function of the content bytes, so every backend, the API and
//! the CLI compute the same value for the same text. Shown and parsed as 64 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// SHA-256 of a document's content. `Copy`, 32 bytes; displayed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigDigest([u8; 32]);

/// A string that is not a digest (not 64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {value:?}: expected 64 hexadecimal digits")]
pub struct DigestParseError {
    /// The rejected value, cut to 80 characters.
    pub value: String,
}

impl ConfigDigest {
    /// The digest of `content` (its UTF-8 bytes, exactly as stored).
    pub fn of(content: &str) -> ConfigDigest {
        ConfigDigest::of_bytes(content.as_bytes())
    }

    /// The digest of raw bytes.
    pub fn of_bytes(content: &[u8]) -> ConfigDigest {
        ConfigDigest(Sha256::digest(content).into())
    }

    /// The raw 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64-digit lowercase hex form (same as `Display`).
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ConfigDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConfigDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigDigest({self})")
    }
}

impl FromStr for ConfigDigest {
    type Err = DigestParseError;

    /// Parse 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DigestParseError {
            value: s.chars().take(80).collect(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(err)?;
            let lo = hex_value(pair[1]).ok_or_else(err)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(ConfigDigest(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Serialize for ConfigDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConfigDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            ConfigDigest::of("").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            ConfigDigest::of("abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_round_trip_and_case() {
        let d = ConfigDigest::of("multipath");
        assert_eq!(d.to_hex().parse::<ConfigDigest>().unwrap(), d);
        assert_eq!(
            d.to_hex().to_uppercase().parse::<ConfigDigest>().unwrap(),
            d
        );
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65), &"é".repeat(32)] {
            assert!(bad.parse::<ConfigDigest>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_is_hex_string() {
        let d = ConfigDigest::of("x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<ConfigDigest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<ConfigDigest>("\"zz\"").is_err());
    }

    #[test]
    fn different_content_different_digest() {
        assert_ne!(ConfigDigest::of("a"), ConfigDigest::of("a\n"));
    }
}
