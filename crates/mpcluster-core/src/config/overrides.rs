//! The admin's hardware overrides: verbatim `devices { device { ... } }` and `overrides { ... }`
//! sections, stored as their own document and rendered into their own drop-in.
//!
//! Entry point: [`Overrides::parse`]. The text is checked with a port of multipath's own line
//! reader and tokenizer (`libmpathutil/parser.c`: `read_line` with its 1024-byte `MAXBUF`,
//! `alloc_strvec`, `validate_config_strvec`), so quotes, `""` doubling and `#`/`!` comments are
//! read exactly as multipath reads them, and every construct multipath would only warn about
//! (and then read differently from how it looks: text after a `{` or `}`, an unclosed quote, a
//! split long line, an unknown section whose `}` would close its parent) is rejected.
//!
//! Not allowed: `defaults` (the cluster's knobs), `blacklist*` (the allow-list), `multipaths`
//! (per-LUN settings), unknown or repeated top-level sections, anything outside a section,
//! unbalanced braces, lines of 1023 bytes or more, NUL and control characters other than tab.
//!
//! Every keyword is judged against multipath-tools 0.9.4's own table for its section
//! ([`super::keywords`]: `device`, `overrides`, `protocol`), because multipath only logs
//! "invalid keyword in the <section> section" and skips the line, so a misspelled keyword
//! would be stored, applied and silently do nothing. Also refused: deprecated keywords
//! multipath ignores (†), a keyword repeated in one section (multipath warns "duplicate
//! keyword"), a `device` entry without `vendor` or `product` and a `protocol` entry without a
//! known `type` (multipath drops such entries).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{ConfigErrors, DocumentError};
use super::keywords::{self, Keyword, KeywordStatus};

/// multipath's line buffer (`MAXBUF`): `fgets` reads at most 1023 bytes including the newline.
pub const MULTIPATH_MAXBUF: usize = 1024;

/// Longest accepted line in bytes, without its newline: a longer line would be split by
/// multipath's reader into two lines.
pub const MAX_LINE_LEN: usize = MULTIPATH_MAXBUF - 2;

/// Largest accepted overrides document in bytes.
pub const MAX_OVERRIDES_LEN: usize = 128 * 1024;

/// At most this many errors are reported for one document.
const MAX_ERRORS: usize = 50;

/// The field name used in errors about the overrides document.
pub const OVERRIDES_FIELD: &str = "overrides";

/// One token of a config line, as multipath's `alloc_strvec` splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A bare word, or the text between quotes (with `""` already turned into `"`).
    Word(String),
    /// A `"` opening or closing a quoted string.
    Quote,
    /// `{` outside quotes.
    Open,
    /// `}` outside quotes.
    Close,
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Split one line into tokens the way multipath's `alloc_strvec` does: whitespace and
/// non-ASCII bytes separate tokens outside quotes; `{` and `}` are tokens of their own outside
/// quotes; `#` or `!` outside quotes ends the line; inside quotes everything is literal except
/// `"`, and `""` stands for one `"`. A line that is blank or a comment gives no tokens.
pub fn tokenize_line(line: &str) -> Vec<Token> {
    let b = line.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && (is_c_space(b[i]) || !b[i].is_ascii()) {
        i += 1;
    }
    if i >= b.len() || b[i] == b'!' || b[i] == b'#' {
        return out;
    }
    let mut in_string = false;
    loop {
        if at(i) == b'"' && !(in_string && at(i + 1) == b'"') {
            i += 1;
            out.push(Token::Quote);
            in_string = !in_string;
        } else if !in_string && (at(i) == b'{' || at(i) == b'}') {
            out.push(if at(i) == b'{' {
                Token::Open
            } else {
                Token::Close
            });
            i += 1;
        } else {
            let start = i;
            loop {
                while i < b.len()
                    && b[i] != b'"'
                    && (in_string
                        || (!is_c_space(b[i])
                            && b[i].is_ascii()
                            && !matches!(b[i], b'!' | b'#' | b'{' | b'}')))
                {
                    i += 1;
                }
                if in_string && at(i) == b'"' && at(i + 1) == b'"' {
                    i += 2;
                    continue;
                }
                break;
            }
            let raw = String::from_utf8_lossy(&b[start..i]);
            out.push(Token::Word(raw.replace("\"\"", "\"")));
        }
        while !in_string && i < b.len() && (is_c_space(b[i]) || !b[i].is_ascii()) {
            i += 1;
        }
        if i >= b.len() || (!in_string && (b[i] == b'!' || b[i] == b'#')) {
            return out;
        }
    }
}

/// Which section a line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Devices,
    Device,
    Overrides,
    Protocol,
    /// A section already refused (reported once at its opening line): its braces are still
    /// counted, its content is not judged again.
    Refused,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Devices => "devices",
            Section::Device => "device",
            Section::Overrides => "overrides",
            Section::Protocol => "protocol",
            Section::Refused => "(refused)",
        }
    }

    /// The subsection a section may contain.
    fn child(self) -> Option<Section> {
        match self {
            Section::Devices => Some(Section::Device),
            // `protocol` inside `device` is unknown to multipath-tools 0.9.4 (Debian 12): it
            // would log an invalid keyword and the protocol's `}` would close the device.
            Section::Device | Section::Protocol | Section::Refused => None,
            Section::Overrides => Some(Section::Protocol),
        }
    }

    /// Whether keyword/value lines may appear directly in it.
    fn takes_values(self) -> bool {
        !matches!(self, Section::Devices)
    }

    /// multipath-tools 0.9.4's keyword table for the section (`None`: not judged).
    fn keywords(self) -> Option<&'static [Keyword]> {
        match self {
            Section::Device => Some(keywords::DEVICE),
            Section::Overrides => Some(keywords::OVERRIDES),
            Section::Protocol => Some(keywords::PROTOCOL),
            Section::Devices | Section::Refused => None,
        }
    }

    /// The keywords an entry of this section cannot do without (multipath drops the entry).
    fn required(self) -> &'static [&'static str] {
        match self {
            Section::Device => &["vendor", "product"],
            Section::Protocol => &["type"],
            _ => &[],
        }
    }
}

/// An open section: what it is, its name as written, where it started and the keywords seen
/// in it (keyword, line).
struct Open {
    section: Section,
    name: String,
    line: usize,
    seen: Vec<(String, usize)>,
}

/// Why `keyword` is refused in `section`, or `None` when multipath-tools 0.9.4 accepts it.
fn keyword_refusal(section: Section, keyword: &str) -> Option<String> {
    let table = section.keywords()?;
    let sec = section.name();
    let kw = shown_token(keyword);
    match keywords::find(table, keyword).map(|k| k.status) {
        Some(KeywordStatus::Accepted) => None,
        // ‡ does not occur in the sections the overrides may contain (only in `defaults`);
        // were it to, it would be accepted: multipath still applies the value and only warns
        // that a future release will drop it.
        Some(KeywordStatus::DeprecatedApplied) => None,
        Some(KeywordStatus::DeprecatedIgnored) => Some(format!(
            "keyword \"{kw}\" is deprecated: multipath-tools 0.9.4 ignores it (it logs \
             'ignoring deprecated option \"{kw}\"' and discards the value); remove it"
        )),
        // ° (only `disable_changed_wwids`, only in `defaults`): accepted without a word but
        // does nothing, and the 0.9.4 man page calls it deprecated and ignored, so it would
        // be refused like †.
        Some(KeywordStatus::Ignored) => Some(format!(
            "keyword \"{kw}\" does nothing in multipath-tools 0.9.4 (deprecated and ignored); \
             remove it"
        )),
        None => {
            let elsewhere: Vec<&str> = [
                ("defaults", keywords::DEFAULTS),
                ("device", keywords::DEVICE),
                ("overrides", keywords::OVERRIDES),
                ("protocol", keywords::PROTOCOL),
                ("multipath", keywords::MULTIPATH),
            ]
            .into_iter()
            .filter(|(_, t)| keywords::find(t, keyword).is_some())
            .map(|(name, _)| name)
            .collect();
            let skipped = format!(
                "multipath-tools 0.9.4 would log \"invalid keyword in the {sec} section\" and \
                 skip the line"
            );
            if elsewhere.is_empty() {
                let hint = keywords::suggest(table, keyword)
                    .map(|s| format!("; did you mean \"{s}\"?"))
                    .unwrap_or_default();
                Some(format!(
                    "unknown keyword \"{kw}\" in section \"{sec}\": {skipped}{hint}"
                ))
            } else {
                let list = elsewhere
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let managed = if elsewhere
                    .iter()
                    .all(|s| matches!(*s, "defaults" | "multipath"))
                {
                    " (mpcluster writes those sections from the cluster configuration)"
                } else {
                    ""
                };
                Some(format!(
                    "keyword \"{kw}\" is not valid in section \"{sec}\", only in {list}{managed}: \
                     {skipped}"
                ))
            }
        }
    }
}

/// The value of a keyword line (`word`, `"quoted"` or `""`), if it is well-formed.
fn value_of(rest: &[Token]) -> Option<&str> {
    match rest {
        [Token::Word(v)] | [Token::Quote, Token::Word(v), Token::Quote] => Some(v),
        [Token::Quote, Token::Quote] => Some(""),
        _ => None,
    }
}

/// Why a top-level section name is refused.
fn top_level_refusal(name: &str) -> String {
    match name {
        "defaults" => "section \"defaults\" is not allowed in the overrides: global knobs are \
                       set in the cluster configuration's defaults (and multipath does not accept \
                       a second defaults section)"
            .to_owned(),
        "multipaths" | "multipath" => format!(
            "section \"{name}\" is not allowed in the overrides: per-LUN settings belong to the \
             allow-list entries of the cluster configuration"
        ),
        n if n.starts_with("blacklist") => format!(
            "section \"{n}\" is not allowed in the overrides: mpcluster owns the blacklist (the \
             WWID allow-list)"
        ),
        "device" => "section \"device\" must be inside a \"devices\" section".to_owned(),
        "protocol" => "section \"protocol\" must be inside an \"overrides\" section".to_owned(),
        n => format!(
            "unknown section \"{}\"; the overrides may contain only \"devices\" and \"overrides\" \
             sections",
            shown_token(n)
        ),
    }
}

fn shown_token(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    let cut = cut.escape_debug().to_string();
    if s.chars().count() > 40 {
        format!("{cut}…")
    } else {
        cut
    }
}

fn control_name(c: char) -> String {
    match c {
        '\0' => "a NUL byte".to_owned(),
        '\r' => "a carriage return (use Unix line endings)".to_owned(),
        c => format!("control character U+{:04X}", u32::from(c)),
    }
}

/// The validated overrides document: the admin's verbatim text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    text: String,
    sections: usize,
}

impl Overrides {
    /// No overrides.
    pub fn empty() -> Self {
        Overrides::default()
    }

    /// Validate the admin's text (see the module documentation for the rules). Every problem is
    /// reported (up to 50), each as field `overrides` with a message starting `line N:`.
    pub fn parse(text: impl Into<String>) -> Result<Overrides, ConfigErrors> {
        let text = text.into();
        let mut errs = ConfigErrors::default();
        if text.len() > MAX_OVERRIDES_LEN {
            errs.push(
                OVERRIDES_FIELD,
                format!(
                    "{} bytes long; at most {MAX_OVERRIDES_LEN} bytes are accepted",
                    text.len()
                ),
            );
            return Err(errs);
        }
        let mut stack: Vec<Open> = Vec::new();
        let mut top_seen: Vec<Section> = Vec::new();
        let mut sections = 0;
        let err = |errs: &mut ConfigErrors, line: usize, msg: String| {
            if errs.0.len() < MAX_ERRORS {
                errs.push(OVERRIDES_FIELD, format!("line {line}: {msg}"));
            }
        };
        for (idx, line) in text.split('\n').enumerate() {
            let n = idx + 1;
            if line.len() > MAX_LINE_LEN {
                err(
                    &mut errs,
                    n,
                    format!(
                        "{} bytes long; multipath reads lines of at most {MAX_LINE_LEN} bytes \
                         (its {MULTIPATH_MAXBUF}-byte buffer) and would split it",
                        line.len()
                    ),
                );
                continue;
            }
            if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
                err(&mut errs, n, format!("contains {}", control_name(c)));
                continue;
            }
            let tokens = tokenize_line(line);
            let Some(first) = tokens.first() else {
                continue;
            };
            match first {
                Token::Close => {
                    if tokens.len() > 1 {
                        err(
                            &mut errs,
                            n,
                            "'}' must stand alone on its line (multipath ignores what follows it)"
                                .to_owned(),
                        );
                    }
                    match stack.pop() {
                        None => err(
                            &mut errs,
                            n,
                            "unbalanced braces: '}' without a section to close".to_owned(),
                        ),
                        Some(open) => {
                            if let Some(msg) = missing_required(&open) {
                                err(&mut errs, n, msg);
                            }
                        }
                    }
                }
                Token::Open => err(
                    &mut errs,
                    n,
                    "'{' must follow a section name on the same line".to_owned(),
                ),
                Token::Quote => err(
                    &mut errs,
                    n,
                    "a line must start with a keyword, not a quote".to_owned(),
                ),
                Token::Word(word) => {
                    let opens = tokens.get(1) == Some(&Token::Open)
                        || matches!(
                            word.as_str(),
                            "defaults"
                                | "blacklist"
                                | "blacklist_exceptions"
                                | "devices"
                                | "device"
                                | "multipaths"
                                | "multipath"
                                | "overrides"
                                | "protocol"
                        );
                    if opens {
                        if tokens.len() != 2 || tokens.get(1) != Some(&Token::Open) {
                            err(
                                &mut errs,
                                n,
                                format!(
                                    "a section line must be exactly \"{} {{\" (multipath ignores \
                                     anything after the '{{', and needs the '{{' on this line)",
                                    shown_token(word)
                                ),
                            );
                            // multipath still opens the section (the keyword has a subsection),
                            // so keep counting braces as it does
                        }
                        let section = match stack.last() {
                            None => match word.as_str() {
                                "devices" => Some(Section::Devices),
                                "overrides" => Some(Section::Overrides),
                                other => {
                                    err(&mut errs, n, top_level_refusal(other));
                                    None
                                }
                            },
                            // inside a refused section: refused too, without a second message
                            Some(parent) if parent.section == Section::Refused => None,
                            Some(parent) => match parent.section.child() {
                                Some(child) if child.name() == word => Some(child),
                                _ => {
                                    let allowed = match parent.section.child() {
                                        Some(c) => format!("only \"{}\" subsections", c.name()),
                                        None => "no subsections".to_owned(),
                                    };
                                    err(
                                        &mut errs,
                                        n,
                                        format!(
                                            "section \"{}\" is not allowed in \"{}\" (it takes {allowed})",
                                            shown_token(word),
                                            parent.section.name()
                                        ),
                                    );
                                    None
                                }
                            },
                        };
                        // Track the section even when refused, so its '}' does not read as
                        // unbalanced and later lines are not misattributed.
                        let section = section.unwrap_or(Section::Refused);
                        if stack.is_empty() {
                            if top_seen.contains(&section) && section != Section::Refused {
                                err(
                                    &mut errs,
                                    n,
                                    format!(
                                        "a second \"{}\" section: multipath warns about the \
                                         duplicate; put everything into one",
                                        section.name()
                                    ),
                                );
                            }
                            top_seen.push(section);
                        }
                        stack.push(Open {
                            section,
                            name: shown_token(word),
                            line: n,
                            seen: Vec::new(),
                        });
                        sections += 1;
                        continue;
                    }
                    let Some(open) = stack.last_mut() else {
                        err(
                            &mut errs,
                            n,
                            format!(
                                "\"{}\" is outside of any section; keywords belong inside \
                                 \"devices {{ device {{ }} }}\" or \"overrides {{ }}\"",
                                shown_token(word)
                            ),
                        );
                        continue;
                    };
                    let section = open.section;
                    if !section.takes_values() {
                        err(
                            &mut errs,
                            n,
                            format!(
                                "\"{}\" directly in \"{}\": only \"{}\" subsections are allowed \
                                 there",
                                shown_token(word),
                                section.name(),
                                section.child().map_or("", Section::name)
                            ),
                        );
                        continue;
                    }
                    if let Some(msg) = check_value_tokens(word, &tokens[1..]) {
                        err(&mut errs, n, msg);
                    }
                    if section == Section::Refused {
                        continue;
                    }
                    if let Some(msg) = keyword_refusal(section, word) {
                        err(&mut errs, n, msg);
                        continue;
                    }
                    // `checker` is `path_checker` under another name: one value, one line
                    let canonical = if word == keywords::PATH_CHECKER_ALIAS.0 {
                        keywords::PATH_CHECKER_ALIAS.1
                    } else {
                        word.as_str()
                    };
                    if let Some((first, at)) = open.seen.iter().find(|(k, _)| {
                        k == canonical
                            || (k == keywords::PATH_CHECKER_ALIAS.0
                                && canonical == keywords::PATH_CHECKER_ALIAS.1)
                    }) {
                        let msg = if first == word {
                            format!(
                                "\"{}\" repeats line {at} of this \"{}\" section: multipath \
                                 logs \"duplicate keyword\" and uses the later value; give it once",
                                shown_token(word),
                                section.name()
                            )
                        } else {
                            format!(
                                "\"{}\" and \"{first}\" (line {at}) set the same value (\"checker\" \
                                 is another name for \"path_checker\"); give only one",
                                shown_token(word)
                            )
                        };
                        err(&mut errs, n, msg);
                        continue;
                    }
                    open.seen.push((word.clone(), n));
                    if section == Section::Protocol
                        && word == "type"
                        && let Some(v) = value_of(&tokens[1..])
                        && !keywords::PROTOCOL_TYPES.contains(&v)
                    {
                        err(
                            &mut errs,
                            n,
                            format!(
                                "protocol type \"{}\" is unknown to multipath-tools 0.9.4, which \
                                 would drop this protocol entry (\"missing type\"); it takes one \
                                 of {}",
                                shown_token(v),
                                keywords::PROTOCOL_TYPES.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        if let Some(open) = stack.last() {
            errs.push(
                OVERRIDES_FIELD,
                format!(
                    "unbalanced braces: \"{}\" opened at line {} is not closed",
                    open.name, open.line
                ),
            );
        }
        errs.into_result()?;
        Ok(Overrides { text, sections })
    }

    /// Load the stored document (a JSON string), telling JSON errors from invalid content.
    pub fn from_json(text: &str) -> Result<Self, DocumentError> {
        crate::format::check_named("multipath-overrides", text)?;
        let s: String = serde_json::from_str(text).map_err(|source| DocumentError::Json {
            document: "overrides",
            source,
        })?;
        Overrides::parse(s).map_err(|source| DocumentError::Invalid {
            document: "overrides",
            source,
        })
    }

    /// The verbatim text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it contains no section (blank or only comments): nothing to render.
    pub fn is_empty(&self) -> bool {
        self.sections == 0
    }
}

/// The message for a closed `device` / `protocol` entry that lacks a keyword multipath needs.
fn missing_required(open: &Open) -> Option<String> {
    let missing: Vec<&str> = open
        .section
        .required()
        .iter()
        .copied()
        .filter(|r| !open.seen.iter().any(|(k, _)| k == r))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let what = missing
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(" and no ");
    let why = match open.section {
        Section::Device => {
            "multipath-tools 0.9.4 drops a device entry without both vendor and \
                           product (\"device config in <file> missing vendor or product parameter\")"
        }
        _ => {
            "multipath-tools 0.9.4 drops a protocol entry without a type (\"protocol section in \
              <file> missing type\")"
        }
    };
    Some(format!(
        "the \"{}\" entry opened at line {} has no {what}: {why}",
        open.section.name(),
        open.line
    ))
}

/// Check the tokens after a keyword: one bare word, or one quoted string, and nothing after.
fn check_value_tokens(keyword: &str, rest: &[Token]) -> Option<String> {
    let kw = shown_token(keyword);
    let brace = |t: &Token| matches!(t, Token::Open | Token::Close);
    if rest.iter().any(brace) {
        return Some(format!(
            "braces after \"{kw}\": '{{' belongs only after a section name and '}}' on a line of \
             its own (quote the value if it contains braces)"
        ));
    }
    match rest {
        [] => Some(format!("missing value for \"{kw}\"")),
        [Token::Word(_)] => None,
        [Token::Word(_), ..] => Some(format!(
            "extra text after the value of \"{kw}\" (multipath ignores it; quote values that \
             contain spaces)"
        )),
        [Token::Quote] | [Token::Quote, Token::Word(_)] => {
            Some(format!("missing closing quote in the value of \"{kw}\""))
        }
        [Token::Quote, Token::Quote] | [Token::Quote, Token::Word(_), Token::Quote] => None,
        _ => Some(format!(
            "extra text after the quoted value of \"{kw}\" (multipath ignores it)"
        )),
    }
}

impl fmt::Display for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Overrides {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Overrides {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Overrides::parse(s).map_err(|errs| {
            let all: Vec<String> = errs.errors().iter().map(ToString::to_string).collect();
            serde::de::Error::custom(format!("invalid overrides: {}", all.join("; ")))
        })
    }
}
