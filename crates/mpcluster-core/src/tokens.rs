//! API tokens: the pure model. Token ids, privileges, expiry, the stored `tokens` document
//! ([`doc_names::TOKENS`](crate::snapshot::doc_names::TOKENS)) and the `Authorization` header
//! forms. No I/O and no hashing here: secrets are hashed (argon2id, PHC strings) and verified
//! by the server crate (`mpcluster_server::auth`); this module only stores the hash text.
//!
//! - [`TokenId`]: 1 to 64 characters `[A-Za-z0-9._-]`, starting with a letter or digit (so it
//!   never contains the `:` / `=` separators of the header forms).
//! - [`Privilege`]: Proxmox-style `Sys.Audit` (every read) and `Sys.Modify` (every write);
//!   [`required_privilege`] maps an HTTP method to the one it needs.
//! - [`TokensDoc`]: `{"version": 1, "tokens": {"<id>": {"privs": [...], "hash": "$argon2id$...",
//!   "created": <unix s>, "expire"?: <unix s>, "comment"?: "..."}}}`.
//! - [`parse_authorization`]: `Bearer <id>:<secret>` or `PVEAPIToken=<id>=<secret>`.
//! - [`parse_expire`] / [`format_time`]: `--expire` values and UTC timestamps for listings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The version of the tokens document this build reads and writes.
pub const TOKENS_VERSION: u32 = 1;

/// The longest token id.
pub const TOKEN_ID_MAX_LEN: usize = 64;

/// The longest secret accepted in a header (generated secrets are 64 hex digits).
pub const SECRET_MAX_LEN: usize = 256;

/// The id of the token `serve` creates on an empty store.
pub const ADMIN_TOKEN_ID: &str = "admin";

/// A token id that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token id {value:?}: {reason}")]
pub struct TokenIdError {
    /// The rejected value, cut to 80 characters.
    pub value: String,
    /// The rule it broke.
    pub reason: &'static str,
}

/// A validated token id: 1 to [`TOKEN_ID_MAX_LEN`] characters of `[A-Za-z0-9._-]`, starting
/// with a letter or a digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenId(String);

impl TokenId {
    /// Validate `value`.
    pub fn new(value: impl Into<String>) -> Result<TokenId, TokenIdError> {
        let value = value.into();
        let err = |reason| TokenIdError {
            value: value.chars().take(80).collect(),
            reason,
        };
        if value.is_empty() {
            return Err(err("must not be empty"));
        }
        if value.len() > TOKEN_ID_MAX_LEN {
            return Err(err("longer than 64 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(err(
                "only letters, digits, '.', '_' and '-' are allowed (no ':' or '=')",
            ));
        }
        if !value.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(err("must start with a letter or a digit"));
        }
        Ok(TokenId(value))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TokenId {
    type Err = TokenIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenId::new(s)
    }
}

impl Serialize for TokenId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TokenId::new(s).map_err(serde::de::Error::custom)
    }
}

/// A privilege, as in Proxmox VE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// `Sys.Audit`: read anything (every GET).
    SysAudit,
    /// `Sys.Modify`: change anything (every write: POST, PUT, DELETE, ...).
    SysModify,
}

impl Privilege {
    /// Every privilege.
    pub const ALL: [Privilege; 2] = [Privilege::SysAudit, Privilege::SysModify];

    /// The Proxmox name (`Sys.Audit`, `Sys.Modify`).
    pub fn name(self) -> &'static str {
        match self {
            Privilege::SysAudit => "Sys.Audit",
            Privilege::SysModify => "Sys.Modify",
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown privilege name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown privilege {0:?}: expected Sys.Audit or Sys.Modify")]
pub struct PrivilegeError(pub String);

impl FromStr for Privilege {
    type Err = PrivilegeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Privilege::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| PrivilegeError(s.chars().take(80).collect()))
    }
}

impl Serialize for Privilege {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Privilege {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parse a privilege list: `Sys.Audit,Sys.Modify` (separated by `,`, `;` or spaces; at least
/// one).
pub fn parse_privileges(text: &str) -> Result<BTreeSet<Privilege>, PrivilegeError> {
    let set: BTreeSet<Privilege> = text
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if set.is_empty() {
        return Err(PrivilegeError(text.to_owned()));
    }
    Ok(set)
}

/// `Sys.Audit, Sys.Modify` (for listings).
pub fn format_privileges(privs: &BTreeSet<Privilege>) -> String {
    privs.iter().map(|p| p.name()).collect::<Vec<_>>().join(",")
}

/// The privilege a request with this HTTP method needs: `Sys.Audit` for the safe methods
/// (GET, HEAD, OPTIONS), `Sys.Modify` for everything else.
pub fn required_privilege(method: &str) -> Privilege {
    match method {
        "GET" | "HEAD" | "OPTIONS" => Privilege::SysAudit,
        _ => Privilege::SysModify,
    }
}

/// One stored token. The secret itself is never stored, only its salted slow hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// What the token may do.
    pub privs: BTreeSet<Privilege>,
    /// The secret's hash, a PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    pub hash: String,
    /// When it was created (unix s).
    pub created: i64,
    /// When it stops working (unix s); `None` = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<i64>,
    /// A note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl TokenEntry {
    /// Whether the token has expired at `now` (unix s): at or after its `expire` time.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expire.is_some_and(|e| now >= e)
    }

    /// Whether the token grants `p`.
    pub fn grants(&self, p: Privilege) -> bool {
        self.privs.contains(&p)
    }
}

/// The stored tokens document ([`doc_names::TOKENS`](crate::snapshot::doc_names::TOKENS)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensDoc {
    /// Always [`TOKENS_VERSION`].
    pub version: u32,
    /// The tokens by id.
    #[serde(default)]
    pub tokens: BTreeMap<TokenId, TokenEntry>,
}

impl Default for TokensDoc {
    fn default() -> Self {
        TokensDoc {
            version: TOKENS_VERSION,
            tokens: BTreeMap::new(),
        }
    }
}

/// Why a stored tokens document cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TokensDocError {
    /// Not JSON of the expected shape.
    #[error("the tokens document is malformed at {path}: {message}")]
    Malformed {
        /// Where (JSON path).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A version this build does not know.
    #[error("the tokens document has version {0}; this build reads version {TOKENS_VERSION}")]
    Version(u32),
    /// A privilege-less token (stored by hand).
    #[error("token '{0}' has no privileges")]
    NoPrivileges(String),
}

impl TokensDoc {
    /// Parse the stored text.
    pub fn from_json(text: &str) -> Result<TokensDoc, TokensDocError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let doc: TokensDoc =
            serde_path_to_error::deserialize(de).map_err(|e| TokensDocError::Malformed {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        if doc.version != TOKENS_VERSION {
            return Err(TokensDocError::Version(doc.version));
        }
        if let Some((id, _)) = doc.tokens.iter().find(|(_, e)| e.privs.is_empty()) {
            return Err(TokensDocError::NoPrivileges(id.to_string()));
        }
        Ok(doc)
    }

    /// The text to store (pretty JSON, one trailing newline).
    pub fn to_json(&self) -> String {
        // Our own types with string keys always encode.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The entry of `id` (looked up by its text, valid or not).
    pub fn get(&self, id: &str) -> Option<&TokenEntry> {
        let id = TokenId::new(id).ok()?;
        self.tokens.get(&id)
    }
}

/// Credentials as presented in an `Authorization` header. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    /// The token id (not validated: it is only looked up).
    pub id: String,
    /// The secret.
    pub secret: String,
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// Why an `Authorization` header is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthHeaderError {
    /// Neither `Bearer ...` nor `PVEAPIToken=...`.
    #[error(
        "unsupported Authorization scheme: use 'Bearer <id>:<secret>' or 'PVEAPIToken=<id>=<secret>'"
    )]
    Scheme,
    /// The scheme is right but the id or secret is missing, too long or not printable.
    #[error("malformed API token: expected <id>:<secret> (Bearer) or <id>=<secret> (PVEAPIToken)")]
    Malformed,
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

/// Parse an `Authorization` header value: `Bearer <id>:<secret>` (scheme case-insensitive)
/// or Proxmox's `PVEAPIToken=<id>=<secret>`.
pub fn parse_authorization(value: &str) -> Result<Presented, AuthHeaderError> {
    let value = value.trim();
    let (rest, sep) = if let Some(rest) = value.strip_prefix("PVEAPIToken=") {
        (rest, '=')
    } else if value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") {
        (value[7..].trim_start(), ':')
    } else {
        return Err(AuthHeaderError::Scheme);
    };
    parse_credential(rest, sep).ok_or(AuthHeaderError::Malformed)
}

/// Parse `<id><sep><secret>` (both non-empty, printable ASCII, the secret at most
/// [`SECRET_MAX_LEN`]). Also reads token files (`<id>:<secret>`).
pub fn parse_credential(text: &str, sep: char) -> Option<Presented> {
    let (id, secret) = text.split_once(sep)?;
    if id.is_empty()
        || id.len() > TOKEN_ID_MAX_LEN
        || secret.is_empty()
        || secret.len() > SECRET_MAX_LEN
        || !printable(id)
        || !printable(secret)
    {
        return None;
    }
    Some(Presented {
        id: id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// An `--expire` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpireError {
    /// Not one of the accepted forms.
    #[error(
        "invalid expiry {0:?}: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z (UTC), @UNIXSECONDS or +N[smhd]"
    )]
    Syntax(String),
    /// In the past (the token would never work).
    #[error("expiry {0} is not in the future")]
    Past(String),
}

/// `s` if it is exactly `len` ASCII digits.
fn num<T: FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`, a real calendar date.
fn parse_date(s: &str) -> Option<time::Date> {
    let mut it = s.split('-');
    let (y, m, d) = (
        num(it.next()?, 4)?,
        num::<u8>(it.next()?, 2)?,
        num(it.next()?, 2)?,
    );
    if it.next().is_some() {
        return None;
    }
    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

/// `HH:MM` or `HH:MM:SS` (no leap second).
fn parse_clock(s: &str) -> Option<time::Time> {
    let parts: Vec<&str> = s.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (num(h, 2)?, num(m, 2)?, 0),
        [h, m, s] => (num(h, 2)?, num(m, 2)?, num(s, 2)?),
        _ => return None,
    };
    time::Time::from_hms(h, m, sec).ok()
}

/// Unix seconds of `date` at `clock`, UTC.
fn unix_utc(date: time::Date, clock: time::Time) -> i64 {
    time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp()
}

/// Parse an expiry (unix s), which must lie after `now`:
/// - `YYYY-MM-DD`: the start of that day, UTC (the token works until the day before);
/// - `YYYY-MM-DDTHH:MM[:SS]Z` (or with a space instead of `T`): that instant, UTC;
/// - `@SECONDS`: a unix time;
/// - `+N[smhd]`: that long from `now` (e.g. `+90d`).
pub fn parse_expire(text: &str, now: i64) -> Result<i64, ExpireError> {
    let t = text.trim();
    let syntax = || ExpireError::Syntax(text.chars().take(80).collect());
    let at = if let Some(secs) = t.strip_prefix('@') {
        secs.parse::<i64>().map_err(|_| syntax())?
    } else if let Some(rel) = t.strip_prefix('+') {
        let (n, unit) = rel.split_at(rel.len().saturating_sub(1));
        let n: i64 = n.parse().map_err(|_| syntax())?;
        let unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(syntax()),
        };
        if n <= 0 {
            return Err(syntax());
        }
        n.checked_mul(unit)
            .and_then(|d| now.checked_add(d))
            .ok_or_else(syntax)?
    } else if let Some((date, clock)) = t.split_once(['T', ' ']) {
        let clock = clock.strip_suffix('Z').ok_or_else(syntax)?;
        unix_utc(
            parse_date(date).ok_or_else(syntax)?,
            parse_clock(clock).ok_or_else(syntax)?,
        )
    } else {
        unix_utc(parse_date(t).ok_or_else(syntax)?, time::Time::MIDNIGHT)
    };
    if at <= now {
        return Err(ExpireError::Past(format_time(at)));
    }
    Ok(at)
}

/// A unix time as `YYYY-MM-DD HH:MM:SS UTC` (the same text as
/// [`table::format_unix_utc`](crate::table::format_unix_utc)).
pub fn format_time(unix: i64) -> String {
    crate::table::format_unix_utc(unix)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn token_ids() {
        for ok in ["admin", "a", "ci-bot.ro_1", "0", &"x".repeat(64)] {
            assert!(TokenId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a:b",
            "a=b",
            "-x",
            ".x",
            "a b",
            "ü",
            &"x".repeat(65),
            "a/b",
        ] {
            assert!(TokenId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn privileges() {
        assert_eq!(
            parse_privileges("Sys.Audit,Sys.Modify").unwrap(),
            BTreeSet::from(Privilege::ALL)
        );
        assert_eq!(
            parse_privileges(" Sys.Audit ").unwrap(),
            BTreeSet::from([Privilege::SysAudit])
        );
        assert!(parse_privileges("").is_err());
        assert!(parse_privileges("Sys.audit").is_err());
        assert!(parse_privileges("Sys.Audit,Root").is_err());
        assert_eq!(
            format_privileges(&BTreeSet::from(Privilege::ALL)),
            "Sys.Audit,Sys.Modify"
        );
        assert_eq!(required_privilege("GET"), Privilege::SysAudit);
        assert_eq!(required_privilege("HEAD"), Privilege::SysAudit);
        for m in ["POST", "PUT", "DELETE", "PATCH", "WHATEVER"] {
            assert_eq!(required_privilege(m), Privilege::SysModify, "{m}");
        }
    }

    #[test]
    fn headers() {
        let p = parse_authorization("Bearer admin:s3cr=t").unwrap();
        assert_eq!((p.id.as_str(), p.secret.as_str()), ("admin", "s3cr=t"));
        let p = parse_authorization("bearer  ro:abc:def").unwrap();
        assert_eq!((p.id.as_str(), p.secret.as_str()), ("ro", "abc:def"));
        let p = parse_authorization("PVEAPIToken=ro=abc").unwrap();
        assert_eq!((p.id.as_str(), p.secret.as_str()), ("ro", "abc"));
        assert_eq!(
            parse_authorization("Basic YWRtaW46eA=="),
            Err(AuthHeaderError::Scheme)
        );
        assert_eq!(parse_authorization("Bearer"), Err(AuthHeaderError::Scheme));
        for bad in [
            "Bearer admin",
            "Bearer :x",
            "Bearer admin:",
            "PVEAPIToken=admin",
            "PVEAPIToken==x",
            "Bearer a:b c",
        ] {
            assert_eq!(
                parse_authorization(bad),
                Err(AuthHeaderError::Malformed),
                "{bad}"
            );
        }
        let long = format!("Bearer a:{}", "x".repeat(SECRET_MAX_LEN + 1));
        assert_eq!(parse_authorization(&long), Err(AuthHeaderError::Malformed));
        assert!(!format!("{p:?}").contains("abc"), "Debug hides the secret");
    }

    #[test]
    fn expiry() {
        let now = 1_700_000_000; // 2023-11-14 22:13:20 UTC
        assert_eq!(format_time(now), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(parse_expire("2024-01-01", now).unwrap(), 1_704_067_200);
        assert_eq!(parse_expire("2024-02-29", now).unwrap(), 1_709_164_800);
        assert_eq!(
            parse_expire("2024-01-01T12:30Z", now).unwrap(),
            1_704_067_200 + 12 * 3600 + 1800
        );
        assert_eq!(
            parse_expire("2024-01-01 00:00:05Z", now).unwrap(),
            1_704_067_205
        );
        assert_eq!(parse_expire("@1800000000", now).unwrap(), 1_800_000_000);
        assert_eq!(parse_expire("+90d", now).unwrap(), now + 90 * 86_400);
        assert_eq!(parse_expire("+2s", now).unwrap(), now + 2);
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "24-01-01",
            "2024-01-01T25:00Z",
            "2024-01-01T10:00",
            "+0d",
            "+5w",
            "tomorrow",
            "",
        ] {
            assert!(
                matches!(parse_expire(bad, now), Err(ExpireError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_expire("2020-01-01", now),
            Err(ExpireError::Past(_))
        ));
        for date in ["2024-02-29", "2100-03-01", "2400-02-29", "9999-12-31"] {
            let at = parse_expire(date, now).unwrap();
            assert_eq!(format_time(at), format!("{date} 00:00:00 UTC"));
        }
        assert!(parse_expire("2100-02-29", now).is_err(), "not a leap year");
    }

    #[test]
    fn document_round_trip_and_validation() {
        let mut doc = TokensDoc::default();
        doc.tokens.insert(
            TokenId::new("ro").unwrap(),
            TokenEntry {
                privs: BTreeSet::from([Privilege::SysAudit]),
                hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                created: 1,
                expire: Some(2),
                comment: None,
            },
        );
        let text = doc.to_json();
        assert_eq!(TokensDoc::from_json(&text).unwrap(), doc);
        assert!(text.contains("\"Sys.Audit\""), "{text}");
        assert!(doc.get("ro").unwrap().is_expired(2));
        assert!(!doc.get("ro").unwrap().is_expired(1));
        assert!(doc.get("nope").is_none());
        assert!(doc.get("a:b").is_none());

        for bad in [
            r#"{"version": 2, "tokens": {}}"#,
            r#"{"version": 1, "tokens": {"a:b": {"privs": [], "hash": "", "created": 0}}}"#,
            r#"{"version": 1, "tokens": {"a": {"privs": ["Sys.Root"], "hash": "", "created": 0}}}"#,
            r#"{"version": 1, "tokens": {"a": {"privs": [], "hash": "", "created": 0}}}"#,
            r#"{"version": 1, "tokens": {"a": {"privs": ["Sys.Audit"], "hash": "", "created": 0, "secret": "x"}}}"#,
            "[]",
        ] {
            assert!(TokensDoc::from_json(bad).is_err(), "{bad}");
        }
    }
}
