//! Parsers for the raw text formats, the fallback when `show maps json` is unusable
//! (multipathd does not escape strings, so an alias containing `"` breaks the JSON):
//! `show maps raw format "<fmt>"` ([`parse_maps_raw`]) and `show paths raw format "<fmt>"`
//! ([`parse_paths_raw`]), then [`MapsReply::from_raw`] to build the same typed model, or
//! [`MapsReply::join_paths`] to add the per-path protocol (`%P`) to a JSON reply.
//!
//! The agent sends [`super::SHOW_MAPS_RAW`] and [`super::SHOW_PATHS_RAW`]: `|`-separated
//! wildcards, every field a single token except the alias (`%n` / `%m`), which is the last
//! field so a `|` inside it is absorbed. Any other format of `%X` wildcards joined by one
//! separator can be parsed with [`MapsFormat::new`] / [`PathsFormat::new`], including
//! space-separated ones (multi-word values such as `6 chk`, `i/o pending` or
//! `1 queue_if_no_path` are recognised by their shape), which is how the captured 0.9.4
//! outputs are tested.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::error::{ParseError, classify, excerpt, first_line, prepare};
use super::model::{
    CheckerState, DevState, Failback, Map, MapDmState, MapsReply, MarginalState, Path, PathDmState,
    PathGroup, Queueing, ReplySource, WriteProt, defined, is_placeholder, is_progress_bar,
    valid_sysfs,
};
use super::{MAPS_RAW_FORMAT, MAX_ERRORS, PATHS_RAW_FORMAT, Problems};

/// Longest record line accepted; longer lines are skipped with an error.
pub const MAX_LINE_LEN: usize = 64 * 1024;
/// Most tokens a free-text field (the alias) may span when it contains the separator.
const MAX_FREE_TOKENS: usize = 256;
/// Longest format string accepted (multipathd refuses commands over 511 bytes).
const MAX_FORMAT_LEN: usize = 400;

/// How many separator-delimited tokens a field spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One token.
    Word,
    /// Arbitrary text, may contain the separator (at most one per format).
    FreeText,
    /// `%Q`: `6 chk`, `25 sec`, or one word.
    Queueing,
    /// `%T`: `i/o pending`, `i/o timeout`, or one word.
    ChkState,
    /// `%f`, `%h`: a count `n` followed by `n` words (`1 queue_if_no_path`).
    Counted,
    /// `%F`, `%C`: a progress bar `XXX....... 3/10`, or one word.
    Progress,
}

/// A wildcard of `show maps format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapField {
    /// `%n` alias (or WWID).
    Name,
    /// `%w` WWID.
    Wwid,
    /// `%d` `dm-N`.
    Sysfs,
    /// `%F` failback.
    Failback,
    /// `%Q` queueing.
    Queueing,
    /// `%N` usable paths (multipathd's count).
    PathsActive,
    /// `%r` write protection.
    WriteProt,
    /// `%t` DM state.
    DmState,
    /// `%S` size, rounded (`64M`); not stored: the agent reads exact sizes from sysfs.
    Size,
    /// `%f` DM table features.
    Features,
    /// `%x` map failures (not stored).
    Failures,
    /// `%h` hardware handler.
    Hwhandler,
    /// `%A` last action.
    Action,
    /// `%0` path faults.
    PathFaults,
    /// `%1` path group switches.
    SwitchGroup,
    /// `%2` map loads.
    MapLoads,
    /// `%3` total queueing time.
    TotalQueueTime,
    /// `%4` queueing timeouts.
    QueueTimeouts,
    /// `%v` vendor.
    Vendor,
    /// `%p` product.
    Product,
    /// `%e` revision.
    Revision,
    /// Any other wildcard: parsed as free text and ignored.
    Other(char),
}

impl MapField {
    /// The field of a wildcard letter.
    pub fn from_wildcard(c: char) -> Self {
        match c {
            'n' => MapField::Name,
            'w' => MapField::Wwid,
            'd' => MapField::Sysfs,
            'F' => MapField::Failback,
            'Q' => MapField::Queueing,
            'N' => MapField::PathsActive,
            'r' => MapField::WriteProt,
            't' => MapField::DmState,
            'S' => MapField::Size,
            'f' => MapField::Features,
            'x' => MapField::Failures,
            'h' => MapField::Hwhandler,
            'A' => MapField::Action,
            '0' => MapField::PathFaults,
            '1' => MapField::SwitchGroup,
            '2' => MapField::MapLoads,
            '3' => MapField::TotalQueueTime,
            '4' => MapField::QueueTimeouts,
            'v' => MapField::Vendor,
            'p' => MapField::Product,
            'e' => MapField::Revision,
            other => MapField::Other(other),
        }
    }

    fn shape(self) -> Shape {
        match self {
            MapField::Name
            | MapField::Vendor
            | MapField::Product
            | MapField::Revision
            | MapField::Other(_) => Shape::FreeText,
            MapField::Queueing => Shape::Queueing,
            MapField::Features | MapField::Hwhandler => Shape::Counted,
            MapField::Failback => Shape::Progress,
            _ => Shape::Word,
        }
    }
}

/// A wildcard of `show paths format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathField {
    /// `%d` device name.
    Dev,
    /// `%P` protocol (`scsi:iscsi`, `nvme:tcp`, ...).
    Protocol,
    /// `%w` the path's WWID.
    Wwid,
    /// `%D` `major:minor`.
    DevT,
    /// `%t` DM state.
    DmState,
    /// `%T` checker state.
    ChkState,
    /// `%o` device state.
    DevState,
    /// `%c` checker name.
    Checker,
    /// `%p` priority.
    Pri,
    /// `%M` marginal state.
    Marginal,
    /// `%i` host:channel:id:lun.
    Hcil,
    /// `%N` host WWNN.
    HostWwnn,
    /// `%n` target WWNN (or iSCSI target IQN).
    TargetWwnn,
    /// `%R` host WWPN.
    HostWwpn,
    /// `%r` target WWPN.
    TargetWwpn,
    /// `%a` host adapter.
    HostAdapter,
    /// `%L` LUN in hex.
    LunHex,
    /// `%m` the map's alias, `[orphan]`, `[unknown]` or `[offline]`.
    Multipath,
    /// `%C` next check (progress bar; not stored).
    NextCheck,
    /// `%S` size, rounded (not stored).
    Size,
    /// `%0` failures (not stored).
    Failures,
    /// `%I` init state (not stored).
    InitState,
    /// Any other wildcard: parsed as free text and ignored.
    Other(char),
}

impl PathField {
    /// The field of a wildcard letter.
    pub fn from_wildcard(c: char) -> Self {
        match c {
            'd' => PathField::Dev,
            'P' => PathField::Protocol,
            'w' => PathField::Wwid,
            'D' => PathField::DevT,
            't' => PathField::DmState,
            'T' => PathField::ChkState,
            'o' => PathField::DevState,
            'c' => PathField::Checker,
            'p' => PathField::Pri,
            'M' => PathField::Marginal,
            'i' => PathField::Hcil,
            'N' => PathField::HostWwnn,
            'n' => PathField::TargetWwnn,
            'R' => PathField::HostWwpn,
            'r' => PathField::TargetWwpn,
            'a' => PathField::HostAdapter,
            'L' => PathField::LunHex,
            'm' => PathField::Multipath,
            'C' => PathField::NextCheck,
            'S' => PathField::Size,
            '0' => PathField::Failures,
            'I' => PathField::InitState,
            other => PathField::Other(other),
        }
    }

    fn shape(self) -> Shape {
        match self {
            PathField::Multipath | PathField::Other(_) => Shape::FreeText,
            PathField::ChkState => Shape::ChkState,
            PathField::NextCheck => Shape::Progress,
            _ => Shape::Word,
        }
    }
}

/// Split a format string into its wildcard letters and the separator between them.
fn split_format(format: &str) -> Result<(Vec<char>, char), ParseError> {
    let err = |reason: &str| ParseError::Format {
        format: excerpt(format),
        reason: reason.to_owned(),
    };
    if format.len() > MAX_FORMAT_LEN {
        return Err(err("too long"));
    }
    let mut chars = format.chars();
    let mut letters = Vec::new();
    let mut separator = None;
    loop {
        if chars.next() != Some('%') {
            return Err(err(
                "expected `%X` wildcards joined by one separator character",
            ));
        }
        match chars.next() {
            Some(c) if c.is_ascii_alphanumeric() => letters.push(c),
            _ => return Err(err("`%` must be followed by a wildcard letter")),
        }
        match chars.next() {
            None => break,
            Some(c) if c == '%' || c == '"' || c == '\n' || c.is_ascii_alphanumeric() => {
                return Err(err("wildcards must be joined by one separator character"));
            }
            Some(c) => match separator {
                None => separator = Some(c),
                Some(s) if s == c => {}
                Some(_) => return Err(err("mixed separators")),
            },
        }
    }
    match separator {
        Some(sep) if letters.len() >= 2 => Ok((letters, sep)),
        _ => Err(err("at least two wildcards are needed")),
    }
}

fn check_shapes(format: &str, shapes: &[Shape]) -> Result<(), ParseError> {
    if shapes.iter().filter(|s| **s == Shape::FreeText).count() > 1 {
        return Err(ParseError::Format {
            format: excerpt(format),
            reason: "more than one free-text field (alias, vendor, product, unknown wildcards): \
                     records would be ambiguous"
                .into(),
        });
    }
    Ok(())
}

/// A `show maps raw format` layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsFormat {
    format: String,
    separator: char,
    fields: Vec<MapField>,
}

impl MapsFormat {
    /// Parse a format string of `%X` wildcards joined by one separator character. It must
    /// contain `%w` and at most one free-text field (`%n`, `%v`, `%p`, `%e`, unknown ones).
    pub fn new(format: &str) -> Result<Self, ParseError> {
        let (letters, separator) = split_format(format)?;
        let fields: Vec<MapField> = letters.into_iter().map(MapField::from_wildcard).collect();
        if !fields.contains(&MapField::Wwid) {
            return Err(ParseError::Format {
                format: excerpt(format),
                reason: "needs %w (the WWID)".into(),
            });
        }
        let shapes: Vec<Shape> = fields.iter().map(|f| f.shape()).collect();
        check_shapes(format, &shapes)?;
        Ok(MapsFormat {
            format: format.to_owned(),
            separator,
            fields,
        })
    }

    /// The layout of [`MAPS_RAW_FORMAT`], the one the agent sends.
    pub fn standard() -> Self {
        use MapField::*;
        MapsFormat {
            format: MAPS_RAW_FORMAT.to_owned(),
            separator: '|',
            fields: vec![
                Wwid,
                Sysfs,
                DmState,
                PathsActive,
                Queueing,
                Failback,
                WriteProt,
                Features,
                Hwhandler,
                Action,
                PathFaults,
                Name,
            ],
        }
    }

    /// The format string.
    pub fn as_str(&self) -> &str {
        &self.format
    }

    /// The fields in order.
    pub fn fields(&self) -> &[MapField] {
        &self.fields
    }

    /// The separator between fields.
    pub fn separator(&self) -> char {
        self.separator
    }
}

/// A `show paths raw format` layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathsFormat {
    format: String,
    separator: char,
    fields: Vec<PathField>,
}

impl PathsFormat {
    /// Parse a format string of `%X` wildcards joined by one separator character. It must
    /// contain `%d` and at most one free-text field (`%m`, unknown wildcards).
    pub fn new(format: &str) -> Result<Self, ParseError> {
        let (letters, separator) = split_format(format)?;
        let fields: Vec<PathField> = letters.into_iter().map(PathField::from_wildcard).collect();
        if !fields.contains(&PathField::Dev) {
            return Err(ParseError::Format {
                format: excerpt(format),
                reason: "needs %d (the device name)".into(),
            });
        }
        let shapes: Vec<Shape> = fields.iter().map(|f| f.shape()).collect();
        check_shapes(format, &shapes)?;
        Ok(PathsFormat {
            format: format.to_owned(),
            separator,
            fields,
        })
    }

    /// The layout of [`PATHS_RAW_FORMAT`], the one the agent sends.
    pub fn standard() -> Self {
        use PathField::*;
        PathsFormat {
            format: PATHS_RAW_FORMAT.to_owned(),
            separator: '|',
            fields: vec![
                Dev,
                Protocol,
                Wwid,
                DevT,
                DmState,
                ChkState,
                DevState,
                Checker,
                Pri,
                Marginal,
                Hcil,
                HostWwnn,
                TargetWwnn,
                HostWwpn,
                TargetWwpn,
                HostAdapter,
                LunHex,
                Multipath,
            ],
        }
    }

    /// The format string.
    pub fn as_str(&self) -> &str {
        &self.format
    }

    /// The fields in order.
    pub fn fields(&self) -> &[PathField] {
        &self.fields
    }

    /// The separator between fields.
    pub fn separator(&self) -> char {
        self.separator
    }
}

/// The maps of a `show maps raw format` reply. Their `path_groups` are empty: the paths come
/// from [`parse_paths_raw`], joined by [`MapsReply::from_raw`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawMaps {
    /// One map per record, in reply order.
    pub maps: Vec<Map>,
    /// Records that were skipped and why (capped at [`super::MAX_ERRORS`]).
    pub errors: Vec<String>,
}

/// One record of a `show paths raw format` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPath {
    /// The path (with `protocol`, `hcil` and `wwid` set when the format has them).
    pub path: Path,
    /// `%m`: the map's alias, or `[orphan]` / `[unknown]` / `[offline]`.
    pub multipath: Option<String>,
}

/// The paths of a `show paths raw format` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawPaths {
    /// One entry per record, in reply order (orphans included).
    pub paths: Vec<RawPath>,
    /// Records that were skipped and why (capped at [`super::MAX_ERRORS`]).
    pub errors: Vec<String>,
}

/// Parse the reply to [`super::SHOW_MAPS_RAW`].
pub fn parse_maps_raw(input: &[u8]) -> Result<RawMaps, ParseError> {
    parse_maps_raw_with(&MapsFormat::standard(), input)
}

/// Parse the reply to `show maps raw format "<format>"` for any [`MapsFormat`].
pub fn parse_maps_raw_with(format: &MapsFormat, input: &[u8]) -> Result<RawMaps, ParseError> {
    const COMMAND: &str = "show maps raw format";
    let shapes: Vec<Shape> = format.fields.iter().map(|f| f.shape()).collect();
    let mut errors = Problems::new(MAX_ERRORS);
    let mut maps = Vec::new();
    for_each_record(
        input,
        format.separator,
        &shapes,
        COMMAND,
        &mut errors,
        |n, values, errors| {
            if let Some(map) = map_from_record(&format.fields, &values, n, errors) {
                maps.push(map);
            }
        },
    )?;
    Ok(RawMaps {
        maps,
        errors: errors.finish(),
    })
}

/// Parse the reply to [`super::SHOW_PATHS_RAW`].
pub fn parse_paths_raw(input: &[u8]) -> Result<RawPaths, ParseError> {
    parse_paths_raw_with(&PathsFormat::standard(), input)
}

/// Parse the reply to `show paths raw format "<format>"` for any [`PathsFormat`].
pub fn parse_paths_raw_with(format: &PathsFormat, input: &[u8]) -> Result<RawPaths, ParseError> {
    const COMMAND: &str = "show paths raw format";
    let shapes: Vec<Shape> = format.fields.iter().map(|f| f.shape()).collect();
    let mut errors = Problems::new(MAX_ERRORS);
    let mut paths = Vec::new();
    for_each_record(
        input,
        format.separator,
        &shapes,
        COMMAND,
        &mut errors,
        |n, values, errors| {
            if let Some(path) = path_from_record(&format.fields, &values, n, errors) {
                paths.push(path);
            }
        },
    )?;
    Ok(RawPaths {
        paths,
        errors: errors.finish(),
    })
}

/// Split a reply into records and each record into field values; call `record` with the
/// 1-based line number and the values. Whole-reply problems are errors; a bad line is
/// recorded and skipped.
fn for_each_record(
    input: &[u8],
    separator: char,
    shapes: &[Shape],
    command: &'static str,
    errors: &mut Problems,
    mut record: impl FnMut(usize, Vec<&str>, &mut Problems),
) -> Result<(), ParseError> {
    let body = prepare(input)?;
    if body == b"ok" {
        return Ok(());
    }
    if let Some(canned) = classify(body, command) {
        return Err(canned);
    }
    let first = body.split(|&b| b == b'\n').next().unwrap_or_default();
    if !String::from_utf8_lossy(first).contains(separator) {
        // A record always has separators.
        return Err(ParseError::Unexpected {
            first_line: first_line(body),
            command,
        });
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_LINE_LEN {
            errors.push(|| {
                format!(
                    "line {n}: {} bytes, longer than {MAX_LINE_LEN}; skipped",
                    line.len()
                )
            });
            continue;
        }
        let line = String::from_utf8_lossy(line);
        match split_record(&line, shapes, separator) {
            Ok(values) => record(n, values, errors),
            Err(why) => {
                let shown = excerpt(&line);
                errors.push(|| format!("line {n} {shown:?}: {why}; skipped"));
            }
        }
    }
    Ok(())
}

/// Tokens a non-free-text field spans at the start of `rest` (at least 1, at most
/// `rest.len()`; `rest` is not empty).
fn span(shape: Shape, rest: &[&str], space_separated: bool) -> usize {
    if !space_separated || rest.len() < 2 {
        return 1;
    }
    match shape {
        Shape::Word | Shape::FreeText => 1,
        Shape::Queueing => {
            if rest[0].parse::<u64>().is_ok() && matches!(rest[1], "sec" | "chk") {
                2
            } else {
                1
            }
        }
        Shape::ChkState => {
            if rest[0] == "i/o" {
                2
            } else {
                1
            }
        }
        Shape::Counted => match rest[0].parse::<usize>() {
            Ok(n) if n < rest.len() => 1 + n,
            _ => 1,
        },
        Shape::Progress => {
            if is_progress_bar(rest[0]) {
                2
            } else {
                1
            }
        }
    }
}

/// Walk `shapes` over `tokens` from `pos`; the token ranges taken, or `None` if the tokens run
/// out.
fn walk(
    shapes: &[Shape],
    tokens: &[&str],
    mut pos: usize,
    space: bool,
) -> Option<Vec<(usize, usize)>> {
    let mut ranges = Vec::with_capacity(shapes.len());
    for &shape in shapes {
        if pos >= tokens.len() {
            return None;
        }
        let n = span(shape, &tokens[pos..], space);
        ranges.push((pos, pos + n));
        pos += n;
    }
    Some(ranges)
}

/// Split one record into one value per field.
fn split_record<'l>(
    line: &'l str,
    shapes: &[Shape],
    separator: char,
) -> Result<Vec<&'l str>, String> {
    let space = separator == ' ';
    // Byte offsets of each token.
    let mut bounds = Vec::with_capacity(shapes.len() + 1);
    let mut start = 0;
    for (at, _) in line.match_indices(separator) {
        bounds.push((start, at));
        start = at + separator.len_utf8();
        if bounds.len() > shapes.len() + MAX_FREE_TOKENS {
            return Err("too many fields".into());
        }
    }
    bounds.push((start, line.len()));
    let tokens: Vec<&str> = bounds.iter().map(|&(a, b)| &line[a..b]).collect();
    let too_few = || format!("{} fields for {} wildcards", tokens.len(), shapes.len());

    let free = shapes.iter().position(|s| *s == Shape::FreeText);
    let prefix_len = free.unwrap_or(shapes.len());
    let mut ranges = walk(&shapes[..prefix_len], &tokens, 0, space).ok_or_else(too_few)?;
    let pos = ranges.last().map_or(0, |r| r.1);
    match free {
        None => {
            if pos != tokens.len() {
                return Err(format!(
                    "{} fields for {} wildcards",
                    tokens.len(),
                    shapes.len()
                ));
            }
        }
        Some(at) => {
            let suffix = &shapes[at + 1..];
            let remaining = tokens.len().saturating_sub(pos);
            if remaining < 1 + suffix.len() {
                return Err(too_few());
            }
            if suffix.is_empty() {
                ranges.push((pos, tokens.len()));
            } else {
                let max_k = (remaining - suffix.len()).min(MAX_FREE_TOKENS);
                let found = (1..=max_k).find_map(|k| {
                    walk(suffix, &tokens, pos + k, space)
                        .filter(|r| r.last().map(|l| l.1) == Some(tokens.len()))
                        .map(|r| (k, r))
                });
                let Some((k, rest)) = found else {
                    return Err(format!(
                        "{} fields do not match the {} wildcards",
                        tokens.len(),
                        shapes.len()
                    ));
                };
                ranges.push((pos, pos + k));
                ranges.extend(rest);
            }
        }
    }
    Ok(ranges
        .into_iter()
        .map(|(a, b)| &line[bounds[a].0..bounds[b - 1].1])
        .collect())
}

/// Parse a number field; empty (an unknown wildcard on an older multipathd) is `None`.
fn number<T: std::str::FromStr>(
    text: &str,
    what: &str,
    n: usize,
    errors: &mut Problems,
) -> Option<T> {
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            let shown = excerpt(text);
            errors.push(|| format!("line {n}: {what} {shown:?} is not a number; ignored"));
            None
        }
    }
}

/// `Some(parse(text))` unless the field is empty.
fn nonempty<T>(text: &str, parse: impl FnOnce(&str) -> T) -> Option<T> {
    (!text.is_empty()).then(|| parse(text))
}

fn map_from_record(
    fields: &[MapField],
    values: &[&str],
    n: usize,
    errors: &mut Problems,
) -> Option<Map> {
    let mut map = Map::new(String::new(), String::new());
    for (field, &text) in fields.iter().zip(values) {
        match field {
            MapField::Name => map.name = text.to_owned(),
            MapField::Wwid => map.wwid = text.to_owned(),
            MapField::Sysfs => {
                if valid_sysfs(text) {
                    map.sysfs = Some(text.to_owned());
                } else if !is_placeholder(text) {
                    let shown = excerpt(text);
                    errors.push(|| format!("line {n}: sysfs {shown:?} is not dm-<minor>; ignored"));
                }
            }
            MapField::Failback => map.failback = nonempty(text, Failback::parse),
            MapField::Queueing => map.queueing = nonempty(text, Queueing::parse),
            MapField::PathsActive => map.reported_active = number(text, "paths", n, errors),
            MapField::WriteProt => map.write_prot = nonempty(text, WriteProt::parse),
            MapField::DmState => map.dm_st = nonempty(text, MapDmState::parse),
            MapField::Features => map.features = nonempty(text, str::to_owned),
            MapField::Hwhandler => map.hwhandler = nonempty(text, str::to_owned),
            MapField::Action => map.action = Some(text.to_owned()),
            MapField::PathFaults => map.path_faults = number(text, "path_faults", n, errors),
            MapField::SwitchGroup => map.switch_grp = number(text, "switch_grp", n, errors),
            MapField::MapLoads => map.map_loads = number(text, "map_loads", n, errors),
            MapField::TotalQueueTime => map.total_q_time = number(text, "total_q_time", n, errors),
            MapField::QueueTimeouts => map.q_timeouts = number(text, "q_timeouts", n, errors),
            MapField::Vendor => map.vendor = defined(text),
            MapField::Product => map.product = defined(text),
            MapField::Revision => map.revision = defined(text),
            MapField::Size | MapField::Failures | MapField::Other(_) => {}
        }
    }
    if is_placeholder(&map.wwid) {
        errors.push(|| format!("line {n}: no WWID; record skipped"));
        return None;
    }
    if map.name.is_empty() {
        map.name = map.wwid.clone();
    }
    Some(map)
}

fn path_from_record(
    fields: &[PathField],
    values: &[&str],
    n: usize,
    errors: &mut Problems,
) -> Option<RawPath> {
    let mut path = Path::default();
    let mut multipath = None;
    for (field, &text) in fields.iter().zip(values) {
        match field {
            PathField::Dev => path.dev = text.to_owned(),
            PathField::Protocol => path.protocol = defined(text),
            PathField::Wwid => path.wwid = defined(text),
            PathField::DevT => path.dev_t = defined(text),
            PathField::DmState => path.dm_st = nonempty(text, PathDmState::parse),
            PathField::ChkState => path.chk_st = nonempty(text, CheckerState::parse),
            PathField::DevState => path.dev_st = nonempty(text, DevState::parse),
            PathField::Checker => path.checker = defined(text),
            PathField::Pri => path.pri = number(text, "pri", n, errors),
            PathField::Marginal => path.marginal_st = nonempty(text, MarginalState::parse),
            PathField::Hcil => path.hcil = defined(text).filter(|h| h != "#:#:#:#"),
            PathField::HostWwnn => path.host_wwnn = defined(text),
            PathField::TargetWwnn => path.target_wwnn = defined(text),
            PathField::HostWwpn => path.host_wwpn = defined(text),
            PathField::TargetWwpn => path.target_wwpn = defined(text),
            PathField::HostAdapter => path.host_adapter = defined(text),
            PathField::LunHex => path.lun_hex = defined(text),
            PathField::Multipath => multipath = nonempty(text, str::to_owned),
            PathField::NextCheck
            | PathField::Size
            | PathField::Failures
            | PathField::InitState
            | PathField::Other(_) => {}
        }
    }
    if path.dev.is_empty() {
        errors.push(|| format!("line {n}: no device name; record skipped"));
        return None;
    }
    Some(RawPath { path, multipath })
}

/// `%m` values that name no map.
fn is_mapless(multipath: &str) -> bool {
    multipath == "[orphan]"
}

impl MapsReply {
    /// Build the typed model from the raw formats: each map gets one path group (`group:
    /// None`, the raw formats carry no group information) holding its paths, matched on the
    /// path's WWID (`%w`), else on its map alias (`%m`). Orphan paths are left out.
    ///
    /// A map that multipathd counts usable paths for (`%N` > 0) but that no path record
    /// belongs to gets a [`Map::problems`] entry (its health is then `unknown`, not failed).
    pub fn from_raw(maps: RawMaps, paths: &RawPaths) -> MapsReply {
        let mut errors = Problems::new(MAX_ERRORS);
        errors.extend(maps.errors);
        errors.extend(paths.errors.iter().cloned());
        let mut maps = maps.maps;
        let mut by_wwid: HashMap<&str, usize> = HashMap::with_capacity(maps.len());
        let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(maps.len());
        for (i, map) in maps.iter().enumerate() {
            match by_wwid.entry(map.wwid.as_str()) {
                Entry::Vacant(v) => {
                    v.insert(i);
                }
                Entry::Occupied(_) => {
                    let shown = excerpt(&map.wwid);
                    errors.push(|| format!("maps: WWID {shown:?} listed twice"));
                }
            }
            by_name.entry(map.name.as_str()).or_insert(i);
        }
        let mut grouped: Vec<Vec<Path>> = vec![Vec::new(); maps.len()];
        for raw in &paths.paths {
            let alias = raw.multipath.as_deref();
            if alias.is_some_and(is_mapless) {
                continue;
            }
            let target = raw
                .path
                .wwid
                .as_deref()
                .and_then(|w| by_wwid.get(w))
                .or_else(|| alias.and_then(|a| by_name.get(a)));
            match target {
                Some(&i) => grouped[i].push(raw.path.clone()),
                None => {
                    if let Some(alias) = alias.filter(|a| !a.starts_with('[')) {
                        let (dev, alias) = (excerpt(&raw.path.dev), excerpt(alias));
                        errors.push(|| {
                            format!(
                                "paths: {dev} belongs to map {alias:?}, which the maps reply does \
                                 not list (changed between the two commands?)"
                            )
                        });
                    }
                }
            }
        }
        drop(by_wwid);
        drop(by_name);
        for (map, paths) in maps.iter_mut().zip(grouped) {
            if paths.is_empty() {
                if let Some(n) = map.reported_active.filter(|n| *n > 0) {
                    map.problems.push(format!(
                        "the maps reply counts {n} usable paths but the paths reply has none for this map"
                    ));
                }
            } else {
                map.path_groups = vec![PathGroup {
                    paths,
                    ..PathGroup::default()
                }];
            }
        }
        MapsReply {
            source: ReplySource::Raw,
            major_version: None,
            minor_version: None,
            maps,
            errors: errors.finish(),
        }
    }

    /// Add what only the paths raw format has (`%P` protocol, `%i` hcil, `%w` WWID) to the
    /// paths of this reply, joined on the device name. Paths without a match keep `None`.
    pub fn join_paths(&mut self, paths: &RawPaths) {
        let mut by_dev: HashMap<&str, &Path> = HashMap::with_capacity(paths.paths.len());
        for raw in &paths.paths {
            if raw.path.dev != "-" {
                by_dev.entry(raw.path.dev.as_str()).or_insert(&raw.path);
            }
        }
        for path in self
            .maps
            .iter_mut()
            .flat_map(|m| m.path_groups.iter_mut())
            .flat_map(|g| g.paths.iter_mut())
        {
            let Some(raw) = by_dev.get(path.dev.as_str()) else {
                continue;
            };
            if path.protocol.is_none() {
                path.protocol.clone_from(&raw.protocol);
            }
            if path.hcil.is_none() {
                path.hcil.clone_from(&raw.hcil);
            }
            if path.wwid.is_none() {
                path.wwid.clone_from(&raw.wwid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn standard_layouts_match_their_strings() {
        assert_eq!(
            MapsFormat::new(MAPS_RAW_FORMAT).unwrap(),
            MapsFormat::standard()
        );
        assert_eq!(
            PathsFormat::new(PATHS_RAW_FORMAT).unwrap(),
            PathsFormat::standard()
        );
    }

    #[test]
    fn format_errors() {
        for bad in [
            "", "%w", "%w|%d %n", "%w||%d", "w|d", "%w|%n|%v", "%d|%P", "%w|%",
        ] {
            assert!(MapsFormat::new(bad).is_err(), "{bad:?}");
        }
        assert!(PathsFormat::new("%d|%m|%G").is_err());
        assert!(PathsFormat::new("%d %P").is_ok());
    }

    #[test]
    fn space_separated_multi_word_values() {
        let shapes = [
            Shape::FreeText,
            Shape::Word,
            Shape::Queueing,
            Shape::Counted,
            Shape::Word,
        ];
        let v = split_record("my lun w 6 chk 1 queue_if_no_path active", &shapes, ' ').unwrap();
        assert_eq!(v, ["my lun", "w", "6 chk", "1 queue_if_no_path", "active"]);
        let v = split_record("a w off 0 active", &shapes, ' ').unwrap();
        assert_eq!(v, ["a", "w", "off", "0", "active"]);
        assert!(split_record("a w", &shapes, ' ').is_err());
        let shapes = [Shape::Word, Shape::ChkState, Shape::Progress, Shape::Word];
        let v = split_record("sdc i/o pending XXX....... 3/10 x", &shapes, ' ').unwrap();
        assert_eq!(v, ["sdc", "i/o pending", "XXX....... 3/10", "x"]);
        assert!(split_record("sdc ready x y z", &shapes, ' ').is_err());
    }

    #[test]
    fn pipe_in_alias_is_absorbed() {
        let r =
            parse_maps_raw(b"w1|dm-0|active|2|off|-|rw|0|0||0|odd|alias\"with|pipes\n").unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.maps[0].name, "odd|alias\"with|pipes");
        assert_eq!(r.maps[0].action.as_deref(), Some(""));
    }

    #[test]
    fn canned_and_garbage() {
        assert!(parse_maps_raw(b"ok\n\0").unwrap().maps.is_empty());
        assert!(matches!(
            parse_paths_raw(b"fail\n").unwrap_err().recovery(),
            crate::multipathd::Recovery::Retry
        ));
        assert!(matches!(
            parse_paths_raw(b"\x00\xff\xfe garbage").unwrap_err(),
            ParseError::Unexpected { .. }
        ));
        let r = parse_paths_raw(b"sdc|scsi:iscsi|w|8:32|active|ready|running|tur|50|normal|1:0:0:1|[undef]|iqn.x|[undef]|[undef]|10.0.0.1|0x0001000000000000|mp\nbroken|line\n|no|dev\n")
            .unwrap();
        assert_eq!(r.paths.len(), 1);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        let p = &r.paths[0].path;
        assert_eq!(p.protocol.as_deref(), Some("scsi:iscsi"));
        assert_eq!(p.lun(), Some(1));
        assert_eq!(p.host_wwnn, None);
    }
}
