//! Whole-reply failures ([`ParseError`]), what the agent should do about them ([`Recovery`]),
//! and recognising multipathd's canned replies (`fail`, `timeout`, help text, ...).

use super::MAX_REPLY_LEN;

/// A canned multipathd reply that carries no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaemonReply {
    /// `fail` (0.9.8+: possibly followed by a reason line). `show maps json` fails this way when
    /// refreshing a map fails: retry.
    Fail,
    /// `timeout`: the daemon did not get its lock within `uxsock_timeout`.
    Timeout,
    /// `permission deny: need to be root`.
    PermissionDenied,
    /// The command was not understood (help text, `not found`, `Missing argument`): this
    /// multipathd does not know the command or a keyword. For `show maps json` the recovery is
    /// the raw fallback; for the raw commands there is nothing left to try.
    NotUnderstood,
}

impl DaemonReply {
    /// A short human name.
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonReply::Fail => "fail",
            DaemonReply::Timeout => "timeout",
            DaemonReply::PermissionDenied => "permission denied",
            DaemonReply::NotUnderstood => "command not understood",
        }
    }
}

/// What the caller should do after a [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recovery {
    /// Transient: ask again (next cycle or after a short pause).
    Retry,
    /// The JSON is unusable (an unescaped `"` in an alias or vendor string breaks it, or this
    /// multipathd speaks a JSON we do not know): use the raw text formats
    /// ([`super::SHOW_MAPS_RAW`] + [`super::SHOW_PATHS_RAW`]).
    FallBackToRaw,
    /// Asking again will not help: report a collection error.
    GiveUp,
}

/// Why a whole multipathd reply could not be used. Entry-level problems are not errors: they
/// are listed in [`super::MapsReply::errors`] / [`super::RawMaps::errors`] instead.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The reply exceeds [`MAX_REPLY_LEN`] (libmpathcmd's own limit).
    #[error("reply of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Reply length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The reply is empty (multipathd not running gives an empty CLI output).
    #[error("empty reply from multipathd")]
    Empty,
    /// multipathd answered with a canned reply instead of data.
    #[error("multipathd replied {first_line:?} ({}) to {command:?}", reply.as_str())]
    Daemon {
        /// Which canned reply.
        reply: DaemonReply,
        /// The reply's first line (cut to 120 characters).
        first_line: String,
        /// Which kind of command was answered.
        command: &'static str,
    },
    /// The reply is neither the expected data nor a known canned reply.
    #[error("unexpected reply to {command:?}, starting {first_line:?}")]
    Unexpected {
        /// The reply's first line (cut to 120 characters).
        first_line: String,
        /// Which kind of command was answered.
        command: &'static str,
    },
    /// Not well-formed JSON: most likely an unescaped `"` or `\` in an alias or an INQUIRY
    /// string (multipathd does not escape), else a truncated or corrupted reply.
    #[error("malformed JSON at line {line}, column {column}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Well-formed JSON that is not a `show maps json` / `show map X json` document.
    #[error("JSON reply is not a multipathd maps document: {what}")]
    Shape {
        /// What is wrong with it.
        what: String,
    },
    /// A JSON `major_version` other than 0 (libdmmp refuses those too).
    #[error("unsupported multipathd JSON major_version {found}")]
    UnsupportedVersion {
        /// The version found.
        found: u64,
    },
    /// A raw format string the parser cannot use.
    #[error("unusable raw format {format:?}: {reason}")]
    Format {
        /// The format string.
        format: String,
        /// Why.
        reason: String,
    },
}

impl ParseError {
    /// What the caller should do about this error.
    pub fn recovery(&self) -> Recovery {
        match self {
            ParseError::Empty => Recovery::Retry,
            ParseError::Daemon { reply, command, .. } => match reply {
                DaemonReply::Fail | DaemonReply::Timeout => Recovery::Retry,
                DaemonReply::PermissionDenied => Recovery::GiveUp,
                // A multipathd without `show maps json` may still have the raw formats.
                DaemonReply::NotUnderstood if *command == super::SHOW_MAPS_JSON => {
                    Recovery::FallBackToRaw
                }
                DaemonReply::NotUnderstood => Recovery::GiveUp,
            },
            ParseError::Json { .. }
            | ParseError::Shape { .. }
            | ParseError::UnsupportedVersion { .. } => Recovery::FallBackToRaw,
            ParseError::TooLarge { .. }
            | ParseError::Unexpected { .. }
            | ParseError::Format { .. } => Recovery::GiveUp,
        }
    }
}

/// Longest excerpt of a reply kept in an error.
const EXCERPT_CHARS: usize = 120;

/// Cut a string for an error message, marking the cut.
pub(crate) fn excerpt(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if s.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The first line of a reply (lossy UTF-8, cut).
pub(crate) fn first_line(body: &[u8]) -> String {
    let end = body
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(body.len())
        .min(4 * EXCERPT_CHARS);
    excerpt(String::from_utf8_lossy(&body[..end]).trim_end())
}

/// Size check, then strip the socket's trailing NUL(s) and surrounding whitespace.
pub(crate) fn prepare(input: &[u8]) -> Result<&[u8], ParseError> {
    if input.len() > MAX_REPLY_LEN {
        return Err(ParseError::TooLarge {
            len: input.len(),
            max: MAX_REPLY_LEN,
        });
    }
    let end = input
        .iter()
        .rposition(|&b| b != 0 && !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let start = input[..end]
        .iter()
        .position(|&b| !b.is_ascii_whitespace())
        .unwrap_or(end);
    let body = &input[start..end];
    if body.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(body)
}

/// Recognise a canned reply. `None` when the body does not look like one.
pub(crate) fn classify(body: &[u8], command: &'static str) -> Option<ParseError> {
    let line = first_line(body);
    let reply = if line == "fail" {
        DaemonReply::Fail
    } else if line == "timeout" {
        DaemonReply::Timeout
    } else if line.starts_with("permission deny") {
        DaemonReply::PermissionDenied
    } else if line.ends_with(": not found")
        || line.ends_with(": Missing argument")
        || line.starts_with("multipath-tools v")
        || contains(body, b"CLI commands reference")
    {
        DaemonReply::NotUnderstood
    } else {
        return None;
    };
    Some(ParseError::Daemon {
        reply,
        first_line: line,
        command,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    // Only the start of a reply matters for help text; bound the scan.
    let hay = &haystack[..haystack.len().min(64 * 1024)];
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_replies() {
        let r = |s: &str| classify(s.as_bytes(), "show maps json").map(|e| e.recovery());
        assert_eq!(r("fail"), Some(Recovery::Retry));
        assert_eq!(r("fail\ntimeout"), Some(Recovery::Retry));
        assert_eq!(r("timeout"), Some(Recovery::Retry));
        assert_eq!(
            r("permission deny: need to be root"),
            Some(Recovery::GiveUp)
        );
        assert_eq!(
            r(
                "show maps jsn: not found\nmultipath-tools v0.9.4 (12/19, 2022)\nCLI commands reference:\n"
            ),
            Some(Recovery::FallBackToRaw)
        );
        assert_eq!(r("{"), None);
    }

    #[test]
    fn prepare_strips_nul_and_space() {
        assert_eq!(prepare(b"  {}\n\0").ok(), Some(&b"{}"[..]));
        assert!(matches!(prepare(b"\0\0\n"), Err(ParseError::Empty)));
        assert!(matches!(prepare(b""), Err(ParseError::Empty)));
    }

    #[test]
    fn excerpt_is_bounded() {
        let long = "x".repeat(10_000);
        assert!(excerpt(&long).chars().count() <= EXCERPT_CHARS + 1);
        assert_eq!(excerpt("a\u{1b}b"), "a\u{fffd}b");
    }
}
