//! multipathd output: the typed model, its parsers (JSON and the raw text formats) and map
//! health. Pure: the agent does the socket I/O and hands the reply bytes in.
//!
//! Collection, as the agent runs it:
//! 1. send [`SHOW_MAPS_JSON`], [`parse_maps_json`] the reply;
//! 2. send [`SHOW_PATHS_RAW`], [`parse_paths_raw`] the reply, [`MapsReply::join_paths`] (adds
//!    the per-path protocol `%P`, which the JSON lacks);
//! 3. if step 1 failed with [`Recovery::FallBackToRaw`] (multipathd does not escape strings:
//!    an alias with `"` breaks its JSON), send [`SHOW_MAPS_RAW`], [`parse_maps_raw`], and
//!    [`MapsReply::from_raw`] with the paths of step 2 instead;
//! 4. read `/sys/block/<dm-N>/size` × 512 for [`MapsReply::sysfs_names`], then [`summarize`]
//!    into a [`NodeReport`]; its [`NodeReport::summaries`] feed [`crate::payload`].
//!
//! Submodules: [`model`] (types and state enums), [`json`], [`raw`], [`health`],
//! [`transport`], [`error`].

pub mod error;
pub mod health;
pub mod json;
pub mod model;
pub mod raw;
pub mod transport;

pub use error::{DaemonReply, ParseError, Recovery};
pub use health::{
    GroupReport, MapHealth, MapReport, NodeReport, PathReport, PathSysfs, PortKind, TargetPort,
    map_health, path_usable, summarize, summarize_owned,
};
pub use json::parse_maps_json;
pub use model::{
    CheckerState, DevState, Failback, GroupDmState, Map, MapDmState, MapsReply, MarginalState,
    Path, PathDmState, PathGroup, Queueing, ReplySource, WriteProt,
};
pub use raw::{
    MapField, MapsFormat, PathField, PathsFormat, RawMaps, RawPath, RawPaths, parse_maps_raw,
    parse_maps_raw_with, parse_paths_raw, parse_paths_raw_with,
};
pub use transport::{MIXED, common_transport, transport_word};

/// Largest reply accepted, as libmpathcmd (`MAX_REPLY_LEN`, 32 MiB). The agent should stop
/// reading at this size too.
pub const MAX_REPLY_LEN: usize = 32 * 1024 * 1024;

/// Most error lines kept in a reply or report; the rest are counted in a final line.
pub const MAX_ERRORS: usize = 64;

/// Most problems kept per map.
pub const MAX_MAP_PROBLEMS: usize = 8;

/// Longest error line kept (bytes).
const MAX_ERROR_LEN: usize = 400;

/// The command for the JSON reply (every multipath map with groups and paths).
pub const SHOW_MAPS_JSON: &str = "show maps json";

macro_rules! maps_raw_format {
    () => {
        "%w|%d|%t|%N|%Q|%F|%r|%f|%h|%A|%0|%n"
    };
}

macro_rules! paths_raw_format {
    () => {
        "%d|%P|%w|%D|%t|%T|%o|%c|%p|%M|%i|%N|%n|%R|%r|%a|%L|%m"
    };
}

/// The map format of [`SHOW_MAPS_RAW`]: WWID, sysfs, DM state, usable paths, queueing,
/// failback, write protection, features, hwhandler, action, path faults, and the alias last
/// (free text: a `|` in it is absorbed). Every wildcard exists since 0.8.0.
pub const MAPS_RAW_FORMAT: &str = maps_raw_format!();

/// The path format of [`SHOW_PATHS_RAW`]: dev, protocol, WWID, dev_t, DM state, checker state,
/// device state, checker, priority, marginal state (0.8.3+), hcil, host WWNN, target WWNN,
/// host WWPN, target WWPN, host adapter, LUN hex (0.8.9+), and the map alias last. Wildcards
/// unknown to an older multipathd print nothing, which parses as `None`.
pub const PATHS_RAW_FORMAT: &str = paths_raw_format!();

/// The raw maps command (the fallback for [`SHOW_MAPS_JSON`]); quoted as multipathd's
/// tokenizer needs, well under its 511-byte command limit.
pub const SHOW_MAPS_RAW: &str = concat!("show maps raw format \"", maps_raw_format!(), "\"");

/// The raw paths command (always sent: it carries the per-path protocol).
pub const SHOW_PATHS_RAW: &str = concat!("show paths raw format \"", paths_raw_format!(), "\"");

/// A capped list of error lines.
pub(crate) struct Problems {
    lines: Vec<String>,
    cap: usize,
    more: usize,
}

impl Problems {
    pub(crate) fn new(cap: usize) -> Self {
        Problems {
            lines: Vec::new(),
            cap,
            more: 0,
        }
    }

    /// Add a line (built only if there is room).
    pub(crate) fn push(&mut self, line: impl FnOnce() -> String) {
        if self.lines.len() < self.cap {
            let line = line();
            self.lines.push(if line.len() > MAX_ERROR_LEN {
                error::excerpt(&line)
            } else {
                line
            });
        } else {
            self.more += 1;
        }
    }

    /// Add lines from an earlier list.
    pub(crate) fn extend(&mut self, lines: impl IntoIterator<Item = String>) {
        for line in lines {
            self.push(|| line);
        }
    }

    /// Add another list's lines (and its count of lines not kept).
    pub(crate) fn merge(&mut self, other: Problems) {
        let more = other.more;
        self.extend(other.lines);
        self.more += more;
    }

    pub(crate) fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.lines
                .push(format!("... and {} more not shown", self.more));
        }
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_short_and_quoted() {
        for cmd in [SHOW_MAPS_JSON, SHOW_MAPS_RAW, SHOW_PATHS_RAW] {
            assert!(cmd.len() < 512, "{cmd}");
        }
        assert_eq!(
            SHOW_MAPS_RAW,
            "show maps raw format \"%w|%d|%t|%N|%Q|%F|%r|%f|%h|%A|%0|%n\""
        );
        assert!(SHOW_PATHS_RAW.starts_with("show paths raw format \"%d|%P|"));
        assert!(!MAPS_RAW_FORMAT.ends_with('%') && !PATHS_RAW_FORMAT.ends_with('%'));
    }

    #[test]
    fn problems_cap() {
        let mut p = Problems::new(2);
        for i in 0..5 {
            p.push(|| i.to_string());
        }
        assert_eq!(p.finish(), ["0", "1", "... and 3 more not shown"]);
    }
}
