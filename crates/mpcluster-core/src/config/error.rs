//! Errors of the configuration model: [`ConfigError`] (one field, one reason),
//! [`ConfigErrors`] (every field error of one request or document, so the API can show each next
//! to its field), [`DocumentError`] (a stored document that cannot be loaded) and
//! [`RenderError`] (the renderer's last line of defence).

use std::fmt;

use serde::Serialize;

/// One rejected field: where (a dotted, JSON-pointer-ish path such as
/// `defaults.polling-interval`, `wwids.<wwid>.alias` or `overrides`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// Path of the field, e.g. `wwids.3600a0980383030.no-path-retry`.
    pub field: String,
    /// The reason, e.g. `must be "fail", "queue" or a count from 1 to 86400`.
    pub message: String,
}

impl ConfigError {
    /// Build an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every field error found in one request or document (never empty when returned as an error).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// The first error about `field`, if any.
    pub fn for_field(&self, field: &str) -> Option<&ConfigError> {
        self.0.iter().find(|e| e.field == field)
    }

    /// `Err(self)` when there is at least one error, else `Ok(())`.
    pub fn into_result(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(field, message));
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("invalid configuration"),
            [one] => write!(f, "{one}"),
            [first, rest @ ..] => write!(f, "{first} (and {} more)", rest.len()),
        }
    }
}

/// A stored configuration document that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON at all (truncated write, wrong file).
    #[error("stored {document} is not valid JSON")]
    Json {
        /// Which document (`multipath configuration`, `overrides`).
        document: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but it fails validation (hand-edited, or written by an incompatible version).
    #[error("stored {document} is invalid")]
    Invalid {
        /// Which document.
        document: &'static str,
        /// Every field error.
        #[source]
        source: ConfigErrors,
    },
    /// Written by a newer mpcluster ([`crate::format`]).
    #[error(transparent)]
    Newer(#[from] crate::format::NewerFormat),
}

/// The renderer refused a value that could change the structure of the generated file. Values
/// are validated long before rendering, so this means a validation rule is missing: it is an
/// internal error, not the admin's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to render {field}: its value contains {found:?}, which could change the file's structure"
)]
pub struct RenderError {
    /// The field (same paths as [`ConfigError::field`]).
    pub field: String,
    /// The offending character.
    pub found: char,
}

/// A short, printable form of an arbitrary (possibly hostile) string for messages and field
/// paths: as-is when it is short and printable ASCII without quotes, else Rust-escaped and cut
/// to 40 characters.
pub(crate) fn shown(s: &str) -> String {
    if s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return s.to_owned();
    }
    let cut: String = s.chars().take(40).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < s.len() {
        out.push('…');
    }
    out
}

/// `s` quoted and escaped for a message, cut to 40 characters.
pub(crate) fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < s.len() {
        out.push('…');
    }
    out
}
