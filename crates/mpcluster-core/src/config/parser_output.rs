//! What the real parser says about a configuration: reading `multipath -t`'s stderr (pure).
//!
//! Entry point: [`read_parser_stderr`]. `multipath -t` parses `/etc/multipath.conf` and
//! `/etc/multipath/conf.d/*.conf`, prints the merged configuration on stdout and exits 0 even
//! when it skipped or dropped something: its complaints go to stderr only, one per line, each
//! behind a timestamp (`326.292404 | ` in 0.9.4, a wall-clock time in older releases). The agent
//! runs it (`mpcluster-agent`'s `parser_check`); deciding what the lines mean is done here.
//!
//! Every non-blank line is a complaint, except the one kind of line that reports no problem
//! with the configuration's effect: ‡ "is deprecated and will be disabled in a future
//! release" (dict.c:306–317; the value is still applied, and mpcluster never writes those
//! `defaults`-only keywords; only an admin's own `multipath.conf` can hold them). Unknown
//! lines are complaints: a message we have not seen is more likely a problem than not.

/// Longest complaint text kept for an error message, in bytes (the apply error is published in
/// the node's key and shown in the status).
pub const MAX_COMPLAINTS_LEN: usize = 1024;

/// The lines of `multipath -t`'s stderr, classified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParserOutput {
    /// Lines that report a problem with the configuration (its timestamp removed).
    pub complaints: Vec<String>,
    /// Lines that report no problem (deprecation notices of still-applied options).
    pub notices: Vec<String>,
}

impl ParserOutput {
    /// Whether the parser complained.
    pub fn has_complaints(&self) -> bool {
        !self.complaints.is_empty()
    }

    /// The complaints joined with `"; "`, cut to [`MAX_COMPLAINTS_LEN`] bytes (with how many
    /// lines were left out).
    pub fn complaints_summary(&self) -> String {
        summarize(&self.complaints, MAX_COMPLAINTS_LEN)
    }
}

/// The message of one log line without multipath's timestamp prefix (`"<time> | "`): the
/// prefix is removed when it is short and looks like a time (digits, `.`, `:`, spaces and
/// month names), never otherwise, so a message that contains `" | "` stays whole.
pub fn strip_log_prefix(line: &str) -> &str {
    match line.split_once(" | ") {
        Some((prefix, rest))
            if !prefix.is_empty()
                && prefix.len() <= 32
                && prefix.bytes().any(|b| b.is_ascii_digit())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b' ')) =>
        {
            rest
        }
        _ => line,
    }
}

/// Whether a message (prefix removed) reports no problem with the configuration.
fn is_notice(message: &str) -> bool {
    message.contains("is deprecated and will be disabled in a future release")
}

/// Classify `multipath -t`'s stderr (see the module documentation). Control characters are
/// replaced, so the result is safe to publish.
pub fn read_parser_stderr(stderr: &str) -> ParserOutput {
    let mut out = ParserOutput::default();
    for line in stderr.lines() {
        let message = strip_log_prefix(line.trim_end()).trim();
        if message.is_empty() {
            continue;
        }
        let message: String = message
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if is_notice(&message) {
            out.notices.push(message);
        } else {
            out.complaints.push(message);
        }
    }
    out
}

/// `lines` joined with `"; "`, at most `max_len` bytes: whole lines while they fit, then
/// `… (N more)`. A single line longer than `max_len` is cut at a character boundary.
pub fn summarize(lines: &[String], max_len: usize) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if out.is_empty() { "" } else { "; " };
        let left = lines.len() - i;
        // room for the separator, the line and, if more follow, a "… (N more)" tail
        let tail = if left > 1 { 32 } else { 0 };
        if out.len() + sep.len() + line.len() + tail <= max_len {
            out.push_str(sep);
            out.push_str(line);
            continue;
        }
        if out.is_empty() {
            let mut cut = max_len.saturating_sub(32).min(line.len());
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&line[..cut]);
            out.push('…');
            if left > 1 {
                out.push_str(&format!(" ({} more)", left - 1));
            }
        } else {
            out.push_str(&format!("; … ({left} more)"));
        }
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// stderr of Debian 12's `multipath -t` (multipath-tools 0.9.4-3+deb12u2) on a drop-in
    /// with mistakes of every kind (captured).
    const REAL: &str = r#"326.292404 | /etc/multipath/conf.d/a.conf line 5, invalid keyword in the device section: no_such
326.292445 | /etc/multipath/conf.d/a.conf line 12, invalid value for no_path_retry: "bogus"
326.292451 | /etc/multipath/conf.d/a.conf line 13, invalid value for path_grouping_policy: "foo"
326.292465 | /etc/multipath/conf.d/a.conf line 18, invalid value for type: "bogus"
326.292471 | /etc/multipath/conf.d/a.conf line 20: ignoring deprecated option "getuid_callout"
326.292480 | /etc/multipath/conf.d/a.conf line 22, duplicate keyword: dev_loss_tmo
326.292494 | device config in a.conf missing vendor or product parameter
326.292499 | protocol section in a.conf missing type
326.292503 | protocol section in a.conf missing type
"#;

    #[test]
    fn real_complaints() {
        let out = read_parser_stderr(REAL);
        assert!(out.notices.is_empty());
        assert_eq!(
            out.complaints,
            [
                "/etc/multipath/conf.d/a.conf line 5, invalid keyword in the device section: no_such",
                "/etc/multipath/conf.d/a.conf line 12, invalid value for no_path_retry: \"bogus\"",
                "/etc/multipath/conf.d/a.conf line 13, invalid value for path_grouping_policy: \"foo\"",
                "/etc/multipath/conf.d/a.conf line 18, invalid value for type: \"bogus\"",
                "/etc/multipath/conf.d/a.conf line 20: ignoring deprecated option \"getuid_callout\"",
                "/etc/multipath/conf.d/a.conf line 22, duplicate keyword: dev_loss_tmo",
                "device config in a.conf missing vendor or product parameter",
                "protocol section in a.conf missing type",
                "protocol section in a.conf missing type",
            ]
        );
    }

    #[test]
    fn clean_output_has_no_complaints() {
        assert!(!read_parser_stderr("").has_complaints());
        assert!(!read_parser_stderr("\n  \n").has_complaints());
    }

    #[test]
    fn deprecation_notices_of_applied_options_are_not_complaints() {
        let out = read_parser_stderr(
            "12.000001 | /etc/multipath.conf line 3, \"bindings_file\" is deprecated and will be disabled in a future release\n",
        );
        assert!(!out.has_complaints());
        assert_eq!(out.notices.len(), 1);
        // but the ignored ones (†) are complaints
        let out = read_parser_stderr(
            "12.000001 | /etc/multipath.conf line 3: ignoring deprecated option \"pg_timeout\"\n",
        );
        assert!(out.has_complaints());
    }

    #[test]
    fn prefixes() {
        assert_eq!(strip_log_prefix("326.292404 | message"), "message");
        assert_eq!(strip_log_prefix("Dec 19 10:00:01 | message"), "message");
        assert_eq!(
            strip_log_prefix("message without prefix"),
            "message without prefix"
        );
        assert_eq!(
            strip_log_prefix("error parsing config file | something"),
            "error parsing config file | something",
            "not a time"
        );
        assert_eq!(strip_log_prefix(" | x"), " | x");
        // unknown lines count as complaints, control characters are replaced
        let out = read_parser_stderr("error parsing config file\n1.0 | a\u{1b}[31mb\n");
        assert_eq!(out.complaints, ["error parsing config file", "a?[31mb"]);
    }

    #[test]
    fn summaries_are_bounded() {
        let lines: Vec<String> = (0..100)
            .map(|i| format!("/etc/multipath/conf.d/x.conf line {i}, invalid keyword in the device section: k{i}"))
            .collect();
        let s = summarize(&lines, MAX_COMPLAINTS_LEN);
        assert!(s.len() <= MAX_COMPLAINTS_LEN, "{}", s.len());
        assert!(s.starts_with("/etc/multipath/conf.d/x.conf line 0, invalid keyword"));
        assert!(s.ends_with(" more)"), "{s}");
        assert_eq!(
            summarize(&lines[..2], 1000),
            format!("{}; {}", lines[0], lines[1])
        );
        let long = vec!["é".repeat(2000), "x".into()];
        let s = summarize(&long, 100);
        assert!(s.len() <= 100 && s.ends_with("… (1 more)"), "{s}");
        assert_eq!(summarize(&[], 100), "");
    }
}
