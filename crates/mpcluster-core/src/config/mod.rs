//! The cluster-wide multipath configuration model (pure: no I/O).
//!
//! - [`knobs`]: the knob table [`KNOBS`] (kebab-case name, multipath.conf keyword, value type and
//!   range, per-LUN or not, description) and the typed values; it drives validation, rendering,
//!   the API's knob list and the CLI.
//! - [`model`]: [`MultipathConfig`] (`defaults` knobs + the WWID allow-list with alias and
//!   per-LUN knobs), its stored JSON document and the partial updates the API uses.
//! - [`overrides`]: the admin's verbatim `devices` / `overrides` sections, checked with a port of
//!   multipath's own tokenizer and against [`keywords`], multipath-tools 0.9.4's keyword table
//!   of each section.
//! - [`parser_output`]: what `multipath -t`'s stderr says about a configuration (the agent has
//!   the real parser judge the candidate files before it reconfigures).
//! - [`render`]: the generated drop-ins ([`render_baseline`], [`render_overrides`]).
//! - [`wwids_file`]: merging the allow-list into `/etc/multipath/wwids` ([`merge_wwids_file`]).
//! - [`error`]: [`ConfigError`] / [`ConfigErrors`] (field + reason), [`DocumentError`],
//!   [`RenderError`].
//!
//! File locations are relative (`etc/...`): the agent joins them to its root (`/` in
//! production, a temp dir in tests).

pub mod error;
pub mod keywords;
pub mod knobs;
pub mod model;
pub mod overrides;
pub mod parser_output;
pub mod render;
pub mod wwids_file;

pub use error::{ConfigError, ConfigErrors, DocumentError, RenderError};
pub use knobs::{
    DevLossTmo, FIXED_DEFAULTS, Failback, FastIoFailTmo, KNOBS, Knob, KnobSpec, KnobValue, Knobs,
    NoPathRetry, PathChecker, PathGroupingPolicy, PathSelector, Prio, RrWeight, ValueType, YesNo,
};
pub use model::{
    ALIAS_PROPERTY, MultipathConfig, RESERVED_IDS, WwidEntry, add_wwid, apply_defaults_update,
    remove_wwid, set_wwid_entry,
};
pub use overrides::{MAX_LINE_LEN, MAX_OVERRIDES_LEN, Overrides};
pub use parser_output::{ParserOutput, read_parser_stderr};
pub use render::{
    BASELINE_HEADER, OVERRIDES_HEADER, render_baseline, render_baseline_keeping, render_overrides,
};
pub use wwids_file::{WWIDS_FILE_HEADER, WwidsMerge, merge_wwids_file};

/// multipath's drop-in directory, relative to the root (`/etc/multipath/conf.d`; compiled into
/// multipath-tools, read in alphabetical order after `/etc/multipath.conf`).
pub const CONF_DIR: &str = "etc/multipath/conf.d";

/// File name of the generated baseline drop-in (sorts before the overrides).
pub const BASELINE_FILE_NAME: &str = "mpcluster-00-baseline.conf";

/// File name of the generated overrides drop-in (read after the baseline).
pub const OVERRIDES_FILE_NAME: &str = "mpcluster-10-overrides.conf";

/// The baseline drop-in, relative to the root.
pub const BASELINE_PATH: &str = "etc/multipath/conf.d/mpcluster-00-baseline.conf";

/// The overrides drop-in, relative to the root.
pub const OVERRIDES_PATH: &str = "etc/multipath/conf.d/mpcluster-10-overrides.conf";

/// multipath's wwids file, relative to the root (compiled in from multipath-tools 0.9.7).
pub const WWIDS_PATH: &str = "etc/multipath/wwids";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_agree() {
        assert_eq!(BASELINE_PATH, format!("{CONF_DIR}/{BASELINE_FILE_NAME}"));
        assert_eq!(OVERRIDES_PATH, format!("{CONF_DIR}/{OVERRIDES_FILE_NAME}"));
        assert!(BASELINE_FILE_NAME < OVERRIDES_FILE_NAME);
    }
}
