//! The multipathd CLI socket protocol as pure functions: framing, command validation and
//! reply classification. No sockets here; [`crate::client`] and the fake daemon (`fake`, a
//! feature for tests) do the I/O.
//!
//! Wire format (multipath-tools 0.8.x to 0.14.x, `libmpathcmd/mpath_cmd.c`, `multipathd/uxlsnr.c`):
//! a frame is a native-endian `size_t` length (8 bytes on 64-bit) followed by that many bytes,
//! the last of which is a NUL; the length **includes** the NUL. Requests and replies are framed
//! alike. The client (`mpath_recv_reply_len`) rejects reply lengths of 0 or `>= 32 MiB`; the
//! daemon closes the connection without a reply on commands longer than 511 characters.
//!
//! Reply texts (see `multipath-tools.md`, section 2): `ok\n` (success, no data), `fail\n`,
//! `timeout\n`, `permission deny: need to be root[\n]`, and for a command the parser does not
//! know, a help text (`<cmd>: not found\n`, the version line, `CLI commands reference:\n`, one
//! line per command). From 0.9.8 every error starts with `fail\n`, optionally followed by one
//! of those texts or `map or partition in use\n` / `device not found\n`.

use std::mem::size_of;
use std::str::Utf8Error;

/// Size of the length prefix: the daemon's `size_t`, which is `usize` on the same host.
pub const HEADER_LEN: usize = size_of::<usize>();

/// Replies announcing this many bytes or more are refused (`MAX_REPLY_LEN`, `mpath_cmd.h`).
pub const MAX_REPLY_LEN: usize = 32 * 1024 * 1024;

/// Replies announcing this many bytes or more are not read by the agent's client
/// ([`crate::ClientError::ReplyTooLarge`], a collection error): 8 MiB, about 2 700 maps with 4
/// paths each in `show maps json` (256 maps with 4 paths are 770 KB; the status broadcast
/// carries about 300 maps fully). multipathd itself allows [`MAX_REPLY_LEN`]; the lower limit
/// bounds the agent's memory (a collection peaks at a few times the reply size).
pub const MAX_ACCEPTED_REPLY_LEN: usize = 8 * 1024 * 1024;

/// Largest request frame length (command plus its NUL) the daemon accepts (`_MAX_CMD_LEN`,
/// `libmpathutil/uxsock.h`): commands may be at most `MAX_CMD_LEN - 1` = 511 bytes.
pub const MAX_CMD_LEN: usize = 512;

/// The line every multipathd help text contains (`genhelp_handler`, `multipathd/cli.c`).
pub const HELP_MARKER: &str = "CLI commands reference:";

/// Why an announced frame length was refused. Checked before anything is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Length 0: a frame always carries at least its NUL.
    #[error("announced frame length is 0 (a frame always carries at least its NUL)")]
    Empty,
    /// Length at or above the limit for this direction.
    #[error("announced frame length {len} is not below the limit of {limit} bytes")]
    TooLong {
        /// The announced length.
        len: usize,
        /// The exclusive limit it was checked against.
        limit: usize,
    },
}

/// Why a command was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command is empty or only whitespace (multipathd would answer with its help text).
    #[error("the command is empty")]
    Empty,
    /// The command contains a NUL byte, which would end the C string early.
    #[error("the command contains a NUL byte")]
    ContainsNul,
    /// The command is longer than multipathd accepts; it would reset the connection.
    #[error("the command is {len} bytes long; multipathd accepts at most {max}")]
    TooLong {
        /// Length of the command in bytes.
        len: usize,
        /// The largest accepted length (511).
        max: usize,
    },
    /// A `format` argument that cannot be sent safely.
    #[error("invalid format string: {reason}")]
    InvalidFormat {
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why a reply body is not usable text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyDecodeError {
    /// A NUL before the final byte: multipathd replies are C strings (`len = strlen + 1`).
    #[error("reply contains a NUL byte at offset {offset} before its end")]
    InteriorNul {
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// The bytes are not UTF-8.
    #[error("reply is not valid UTF-8")]
    NotUtf8(#[source] Utf8Error),
}

/// Encodes one frame: `payload.len() + 1` as a native-endian `usize`, the payload, a NUL.
///
/// The payload must not contain a NUL itself (see [`validate_command`] for requests).
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    // A slice is at most isize::MAX bytes long, so this cannot overflow.
    let len = payload.len() + 1;
    let mut frame = Vec::with_capacity(HEADER_LEN + len);
    frame.extend_from_slice(&len.to_ne_bytes());
    frame.extend_from_slice(payload);
    frame.push(0);
    frame
}

/// Decodes and checks a **reply** length prefix: 0 and `>= MAX_REPLY_LEN` are refused.
pub fn decode_len(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    decode_len_below(header, MAX_REPLY_LEN)
}

/// Decodes a length prefix and checks it is non-zero and below `limit` (exclusive).
///
/// The fake daemon uses this with `MAX_CMD_LEN + 1` for requests.
pub fn decode_len_below(header: [u8; HEADER_LEN], limit: usize) -> Result<usize, FrameError> {
    match usize::from_ne_bytes(header) {
        0 => Err(FrameError::Empty),
        len if len >= limit => Err(FrameError::TooLong { len, limit }),
        len => Ok(len),
    }
}

/// Turns a received frame body into text: strips the trailing NUL (if any), refuses interior
/// NULs and non-UTF-8 bytes.
pub fn decode_reply(body: &[u8]) -> Result<&str, ReplyDecodeError> {
    let body = body.strip_suffix(&[0]).unwrap_or(body);
    if let Some(offset) = body.iter().position(|&b| b == 0) {
        return Err(ReplyDecodeError::InteriorNul { offset });
    }
    std::str::from_utf8(body).map_err(ReplyDecodeError::NotUtf8)
}

/// [`decode_reply`] on an owned body, without copying it: the buffer becomes the text.
pub fn decode_reply_owned(mut body: Vec<u8>) -> Result<String, ReplyDecodeError> {
    if body.last() == Some(&0) {
        body.pop();
    }
    if let Some(offset) = body.iter().position(|&b| b == 0) {
        return Err(ReplyDecodeError::InteriorNul { offset });
    }
    String::from_utf8(body).map_err(|e| ReplyDecodeError::NotUtf8(e.utf8_error()))
}

/// Checks that a command can be sent: not blank, no NUL, at most 511 bytes.
pub fn validate_command(cmd: &str) -> Result<(), CommandError> {
    if cmd.trim().is_empty() {
        return Err(CommandError::Empty);
    }
    if cmd.contains('\0') {
        return Err(CommandError::ContainsNul);
    }
    let max = MAX_CMD_LEN - 1;
    if cmd.len() > max {
        return Err(CommandError::TooLong {
            len: cmd.len(),
            max,
        });
    }
    Ok(())
}

/// Builds `<prefix> raw format "<format>"`, refusing formats that cannot be quoted for
/// multipathd's tokenizer (a `"` cannot be escaped), control characters, and a trailing `%`
/// (the out-of-bounds read fixed by the 2026 security release).
pub fn raw_format_command(prefix: &str, format: &str) -> Result<String, CommandError> {
    if format.trim().is_empty() {
        return Err(CommandError::InvalidFormat {
            reason: "empty format",
        });
    }
    if format.contains('"') {
        return Err(CommandError::InvalidFormat {
            reason: "a double quote cannot be escaped in a multipathd command",
        });
    }
    if format.chars().any(char::is_control) {
        return Err(CommandError::InvalidFormat {
            reason: "control characters are not allowed",
        });
    }
    // An odd run of '%' at the end leaves a dangling wildcard ("%%" is a literal percent).
    let trailing = format.bytes().rev().take_while(|&b| b == b'%').count();
    if trailing % 2 == 1 {
        return Err(CommandError::InvalidFormat {
            reason: "a format must not end with '%'",
        });
    }
    let cmd = format!("{prefix} raw format \"{format}\"");
    validate_command(&cmd)?;
    Ok(cmd)
}

/// What a reply text means. Produced by [`classify_reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyClass<'a> {
    /// `ok`: success without data. For `show` commands this means "nothing to show" (0.9.4
    /// prints `ok` for `show maps` / `show paths` / `format` variants when there are none).
    Ok,
    /// Anything else: the command's output.
    Data(&'a str),
    /// `fail`, with the text after the `fail` line when there is one (e.g. `device not found`).
    Fail {
        /// Trimmed text after `fail\n`, `None` for a bare `fail`.
        detail: Option<&'a str>,
    },
    /// The daemon's own `uxsock_timeout` expired (`timeout`, or `fail\ntimeout` from 0.9.8).
    Timeout,
    /// `permission deny: need to be root`: only `list`/`show` are allowed for non-root.
    PermissionDenied,
    /// The help text multipathd sends for a command it cannot parse.
    Usage {
        /// The first line, e.g. `frobnicate: not found`, or the version line.
        message: &'a str,
    },
}

/// Classifies a decoded reply text (trailing NUL already removed).
///
/// Errors are recognised only by their exact, documented forms so that data is never
/// mistaken for an error. The protocol itself is ambiguous for a `show maps raw format "%n"`
/// whose only map is named `ok` or `fail`; multipathd's own CLI has the same ambiguity.
pub fn classify_reply(reply: &str) -> ReplyClass<'_> {
    let fail_rest = if reply == "fail" {
        Some("")
    } else {
        reply.strip_prefix("fail\n")
    };
    if let Some(rest) = fail_rest {
        return match classify_error_text(rest) {
            Some(class) => class,
            None => {
                let detail = rest.trim();
                ReplyClass::Fail {
                    detail: (!detail.is_empty()).then_some(detail),
                }
            }
        };
    }
    if reply.trim_end_matches('\n') == "ok" {
        return ReplyClass::Ok;
    }
    classify_error_text(reply).unwrap_or(ReplyClass::Data(reply))
}

/// Recognises `timeout`, `permission deny...` and help texts.
fn classify_error_text(text: &str) -> Option<ReplyClass<'_>> {
    if text.trim_end_matches('\n') == "timeout" {
        return Some(ReplyClass::Timeout);
    }
    if text.starts_with("permission deny") {
        return Some(ReplyClass::PermissionDenied);
    }
    if is_help_text(text) {
        let message = text.lines().next().unwrap_or_default().trim();
        return Some(ReplyClass::Usage { message });
    }
    None
}

/// A help text has [`HELP_MARKER`] as one of its first three lines (optional
/// `<cmd>: not found` line, version line, marker).
fn is_help_text(text: &str) -> bool {
    text.lines()
        .take(3)
        .any(|line| line.trim_end() == HELP_MARKER)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn encode_frame_counts_the_nul() {
        let frame = encode_frame(b"show maps json");
        assert_eq!(frame.len(), HEADER_LEN + 15);
        assert_eq!(&frame[..HEADER_LEN], &15usize.to_ne_bytes());
        assert_eq!(&frame[HEADER_LEN..HEADER_LEN + 14], b"show maps json");
        assert_eq!(frame.last(), Some(&0));
    }

    #[test]
    fn encode_frame_of_empty_payload_is_a_lone_nul() {
        let frame = encode_frame(b"");
        assert_eq!(&frame[..HEADER_LEN], &1usize.to_ne_bytes());
        assert_eq!(&frame[HEADER_LEN..], &[0]);
    }

    #[test]
    fn decode_len_roundtrips_encode_frame() {
        let frame = encode_frame(b"ok\n");
        let header: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().unwrap();
        assert_eq!(decode_len(header), Ok(4));
    }

    #[test]
    fn decode_len_refuses_zero_and_limit() {
        assert_eq!(decode_len(0usize.to_ne_bytes()), Err(FrameError::Empty));
        assert_eq!(decode_len(1usize.to_ne_bytes()), Ok(1));
        assert_eq!(
            decode_len((MAX_REPLY_LEN - 1).to_ne_bytes()),
            Ok(MAX_REPLY_LEN - 1)
        );
        assert_eq!(
            decode_len(MAX_REPLY_LEN.to_ne_bytes()),
            Err(FrameError::TooLong {
                len: MAX_REPLY_LEN,
                limit: MAX_REPLY_LEN
            })
        );
        assert!(matches!(
            decode_len((64 * 1024 * 1024usize).to_ne_bytes()),
            Err(FrameError::TooLong { .. })
        ));
        assert!(matches!(
            decode_len(usize::MAX.to_ne_bytes()),
            Err(FrameError::TooLong { .. })
        ));
    }

    #[test]
    fn decode_len_below_applies_the_request_limit() {
        assert_eq!(
            decode_len_below(512usize.to_ne_bytes(), MAX_CMD_LEN + 1),
            Ok(512)
        );
        assert!(decode_len_below(513usize.to_ne_bytes(), MAX_CMD_LEN + 1).is_err());
    }

    #[test]
    fn decode_reply_strips_one_trailing_nul() {
        assert_eq!(decode_reply(b"ok\n\0"), Ok("ok\n"));
        assert_eq!(decode_reply(b"ok\n"), Ok("ok\n"));
        assert_eq!(decode_reply(b"\0"), Ok(""));
    }

    #[test]
    fn decode_reply_refuses_interior_nul_and_binary() {
        assert_eq!(
            decode_reply(b"ab\0cd\0"),
            Err(ReplyDecodeError::InteriorNul { offset: 2 })
        );
        assert_eq!(decode_reply_owned(b"ab\0".to_vec()).unwrap(), "ab");
        assert_eq!(decode_reply_owned(b"ab".to_vec()).unwrap(), "ab");
        assert_eq!(
            decode_reply_owned(b"ab\0cd\0".to_vec()),
            Err(ReplyDecodeError::InteriorNul { offset: 2 })
        );
        assert!(matches!(
            decode_reply_owned(vec![0xff, 0xfe, 0x80, 0]),
            Err(ReplyDecodeError::NotUtf8(_))
        ));
        assert!(matches!(
            decode_reply(&[0xff, 0xfe, 0x80, 0]),
            Err(ReplyDecodeError::NotUtf8(_))
        ));
    }

    #[test]
    fn validate_command_limits() {
        assert_eq!(validate_command("show maps json"), Ok(()));
        assert_eq!(validate_command("  "), Err(CommandError::Empty));
        assert_eq!(
            validate_command("show\0maps"),
            Err(CommandError::ContainsNul)
        );
        assert_eq!(validate_command(&"x".repeat(511)), Ok(()));
        assert_eq!(
            validate_command(&"x".repeat(512)),
            Err(CommandError::TooLong { len: 512, max: 511 })
        );
    }

    #[test]
    fn raw_format_command_quotes_and_validates() {
        assert_eq!(
            raw_format_command("show maps", "%n %w %d").unwrap(),
            "show maps raw format \"%n %w %d\""
        );
        assert_eq!(
            raw_format_command("show paths", "100%%").unwrap(),
            "show paths raw format \"100%%\""
        );
        for bad in ["", "%n \"x\"", "%n\n%w", "%n %"] {
            assert!(
                matches!(
                    raw_format_command("show maps", bad),
                    Err(CommandError::InvalidFormat { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            raw_format_command("show maps", &"%n ".repeat(200)),
            Err(CommandError::TooLong { .. })
        ));
    }

    const HELP_094: &str = "frobnicate: not found\nmultipath-tools v0.9.4 (12/19, 2022)\n\
        CLI commands reference:\n list|show paths\n list|show maps|multipaths\n";

    #[test]
    fn classify_ok_and_data() {
        assert_eq!(classify_reply("ok\n"), ReplyClass::Ok);
        assert_eq!(classify_reply("ok"), ReplyClass::Ok);
        assert_eq!(
            classify_reply("pid 569 idle\n"),
            ReplyClass::Data("pid 569 idle\n")
        );
        let json = "{\n   \"major_version\": 0,\n   \"maps\": []\n}\n";
        assert_eq!(classify_reply(json), ReplyClass::Data(json));
        // Words that merely start like an error are data.
        assert_eq!(
            classify_reply("failover 1\n"),
            ReplyClass::Data("failover 1\n")
        );
        assert_eq!(
            classify_reply("okapi dm-3\n"),
            ReplyClass::Data("okapi dm-3\n")
        );
        assert_eq!(classify_reply(""), ReplyClass::Data(""));
    }

    #[test]
    fn classify_fail_forms() {
        assert_eq!(classify_reply("fail\n"), ReplyClass::Fail { detail: None });
        assert_eq!(classify_reply("fail"), ReplyClass::Fail { detail: None });
        assert_eq!(
            classify_reply("fail\ndevice not found\n"),
            ReplyClass::Fail {
                detail: Some("device not found")
            }
        );
        assert_eq!(
            classify_reply("fail\nmap or partition in use\n"),
            ReplyClass::Fail {
                detail: Some("map or partition in use")
            }
        );
    }

    #[test]
    fn classify_timeout_and_permission_in_both_generations() {
        assert_eq!(classify_reply("timeout\n"), ReplyClass::Timeout);
        assert_eq!(classify_reply("fail\ntimeout\n"), ReplyClass::Timeout);
        // 0.8.x: no newline; 0.9.4: newline; 0.9.8+: after "fail\n".
        for r in [
            "permission deny: need to be root",
            "permission deny: need to be root\n",
            "fail\npermission deny: need to be root\n",
        ] {
            assert_eq!(classify_reply(r), ReplyClass::PermissionDenied, "{r:?}");
        }
    }

    #[test]
    fn classify_help_text_in_both_generations() {
        assert_eq!(
            classify_reply(HELP_094),
            ReplyClass::Usage {
                message: "frobnicate: not found"
            }
        );
        let help_098 = format!("fail\n{HELP_094}");
        assert_eq!(
            classify_reply(&help_098),
            ReplyClass::Usage {
                message: "frobnicate: not found"
            }
        );
        let missing = "show map: Missing argument\nmultipath-tools v0.9.4 (12/19, 2022)\n\
            CLI commands reference:\n";
        assert_eq!(
            classify_reply(missing),
            ReplyClass::Usage {
                message: "show map: Missing argument"
            }
        );
        // Help without an error line (parse error on a known but incomplete command).
        let bare =
            "multipath-tools v0.9.4 (12/19, 2022)\nCLI commands reference:\n list|show paths\n";
        assert_eq!(
            classify_reply(bare),
            ReplyClass::Usage {
                message: "multipath-tools v0.9.4 (12/19, 2022)"
            }
        );
    }

    #[test]
    fn help_marker_deep_in_data_is_still_data() {
        let data = "a\nb\nc\nCLI commands reference:\n";
        assert_eq!(classify_reply(data), ReplyClass::Data(data));
    }
}
