//! multipath-tools 0.9.4's keyword tables, as data: which keyword each section of
//! `multipath.conf` accepts, and which of them are deprecated.
//!
//! Source: opensvc/multipath-tools tag `0.9.4` (commit
//! `db4804bc7393f2482448bdd870132522e65dd98e`), `libmultipath/dict.c`, `init_keywords()`
//! (lines 2072–2311), as transcribed in the project's `docs/multipath-keywords-0.9.4.md`
//! (shared docs). One table per section, in the order of that document (alphabetical); a
//! keyword that opens a subsection (`device`, `protocol`, `multipath`) is not in its parent's
//! table: the section structure is checked by [`super::overrides`].
//!
//! The overrides document may contain only `devices { device { } }` and
//! `overrides { protocol { } }`, so [`DEVICE`], [`OVERRIDES`] and [`PROTOCOL`] are the tables
//! it is judged against; [`DEFAULTS`] and [`MULTIPATH`] only serve better messages ("valid in
//! defaults, not here").

/// How multipath-tools 0.9.4 treats a keyword it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordStatus {
    /// Parsed and applied.
    Accepted,
    /// † Deprecated and ignored: the handler only logs `ignoring deprecated option "<name>"` and
    /// throws the value away (dict.c:322–333, 2047–2060).
    DeprecatedIgnored,
    /// ‡ Deprecated but still applied, with a warning that it "will be disabled in a future
    /// release" (dict.c:306–317). Only in `defaults`.
    DeprecatedApplied,
    /// ° Accepted, but the handler does nothing (no warning; `multipath -t` prints
    /// `"ignored"`; dict.c:905–914). Only `disable_changed_wwids`, only in `defaults`.
    Ignored,
}

/// One keyword of a section's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyword {
    /// The keyword as written in `multipath.conf`.
    pub name: &'static str,
    /// How multipath-tools 0.9.4 treats it.
    pub status: KeywordStatus,
}

const fn ok(name: &'static str) -> Keyword {
    Keyword {
        name,
        status: KeywordStatus::Accepted,
    }
}

/// †
const fn ignored(name: &'static str) -> Keyword {
    Keyword {
        name,
        status: KeywordStatus::DeprecatedIgnored,
    }
}

/// ‡
const fn deprecated(name: &'static str) -> Keyword {
    Keyword {
        name,
        status: KeywordStatus::DeprecatedApplied,
    }
}

/// °
const fn noop(name: &'static str) -> Keyword {
    Keyword {
        name,
        status: KeywordStatus::Ignored,
    }
}

/// `checker` is registered with `path_checker`'s handler (an alias; it never shows in
/// `multipath -t` output). Both set the same value, and multipath does not call the pair a
/// duplicate, so a section must not contain both.
pub const PATH_CHECKER_ALIAS: (&str, &str) = ("checker", "path_checker");

/// `defaults` (71 keywords; dict.c:2075–2150).
pub const DEFAULTS: &[Keyword] = &[
    ok("alias_prefix"),
    ok("all_tg_pt"),
    ok("allow_usb_devices"),
    deprecated("bindings_file"),
    ok("checker"),
    ok("checker_timeout"),
    ignored("config_dir"),
    ok("deferred_remove"),
    ok("delay_wait_checks"),
    ok("delay_watch_checks"),
    ok("detect_checker"),
    ok("detect_prio"),
    ok("dev_loss_tmo"),
    noop("disable_changed_wwids"),
    ok("eh_deadline"),
    ok("enable_foreign"),
    ok("failback"),
    ok("fast_io_fail_tmo"),
    ok("features"),
    ok("find_multipaths"),
    ok("find_multipaths_timeout"),
    ok("flush_on_last_del"),
    ok("force_sync"),
    ignored("getuid_callout"),
    ok("ghost_delay"),
    ok("gid"),
    ok("log_checker_err"),
    ok("marginal_path_double_failed_time"),
    ok("marginal_path_err_rate_threshold"),
    ok("marginal_path_err_recheck_gap_time"),
    ok("marginal_path_err_sample_time"),
    ok("marginal_pathgroups"),
    ok("max_fds"),
    ok("max_polling_interval"),
    ok("max_sectors_kb"),
    ok("missing_uev_wait_timeout"),
    ok("mode"),
    ignored("multipath_dir"),
    ok("no_path_retry"),
    ok("partition_delimiter"),
    ok("path_checker"),
    ok("path_grouping_policy"),
    ok("path_selector"),
    ignored("pg_timeout"),
    ok("polling_interval"),
    ok("prio"),
    ok("prio_args"),
    deprecated("prkeys_file"),
    ok("queue_without_daemon"),
    ok("reassign_maps"),
    ok("recheck_wwid"),
    ok("remove_retries"),
    ok("reservation_key"),
    ok("retain_attached_hw_handler"),
    ok("retrigger_delay"),
    ok("retrigger_tries"),
    ok("rr_min_io"),
    ok("rr_min_io_rq"),
    ok("rr_weight"),
    ok("san_path_err_forget_rate"),
    ok("san_path_err_recovery_time"),
    ok("san_path_err_threshold"),
    ok("skip_kpartx"),
    ok("strict_timing"),
    ok("uid"),
    ok("uid_attribute"),
    ok("uid_attrs"),
    ok("user_friendly_names"),
    ok("uxsock_timeout"),
    ok("verbosity"),
    deprecated("wwids_file"),
];

/// `devices` → `device` (45 keywords; dict.c:2177–2225).
pub const DEVICE: &[Keyword] = &[
    ok("alias_prefix"),
    ok("all_tg_pt"),
    ok("checker"),
    ok("deferred_remove"),
    ok("delay_wait_checks"),
    ok("delay_watch_checks"),
    ok("detect_checker"),
    ok("detect_prio"),
    ok("dev_loss_tmo"),
    ok("eh_deadline"),
    ok("failback"),
    ok("fast_io_fail_tmo"),
    ok("features"),
    ok("flush_on_last_del"),
    ignored("getuid_callout"),
    ok("ghost_delay"),
    ok("hardware_handler"),
    ok("marginal_path_double_failed_time"),
    ok("marginal_path_err_rate_threshold"),
    ok("marginal_path_err_recheck_gap_time"),
    ok("marginal_path_err_sample_time"),
    ok("max_sectors_kb"),
    ok("no_path_retry"),
    ok("path_checker"),
    ok("path_grouping_policy"),
    ok("path_selector"),
    ignored("pg_timeout"),
    ok("prio"),
    ok("prio_args"),
    ok("product"),
    ok("product_blacklist"),
    ok("recheck_wwid"),
    ok("retain_attached_hw_handler"),
    ok("revision"),
    ok("rr_min_io"),
    ok("rr_min_io_rq"),
    ok("rr_weight"),
    ok("san_path_err_forget_rate"),
    ok("san_path_err_recovery_time"),
    ok("san_path_err_threshold"),
    ok("skip_kpartx"),
    ok("uid_attribute"),
    ok("user_friendly_names"),
    ok("vendor"),
    ok("vpd_vendor"),
];

/// `overrides` (38 options; the 39th registration, the `protocol` subsection, is a section;
/// dict.c:2227–2273).
pub const OVERRIDES: &[Keyword] = &[
    ok("alias_prefix"),
    ok("all_tg_pt"),
    ok("checker"),
    ok("deferred_remove"),
    ok("delay_wait_checks"),
    ok("delay_watch_checks"),
    ok("detect_checker"),
    ok("detect_prio"),
    ok("dev_loss_tmo"),
    ok("eh_deadline"),
    ok("failback"),
    ok("fast_io_fail_tmo"),
    ok("features"),
    ok("flush_on_last_del"),
    ignored("getuid_callout"),
    ok("ghost_delay"),
    ok("marginal_path_double_failed_time"),
    ok("marginal_path_err_rate_threshold"),
    ok("marginal_path_err_recheck_gap_time"),
    ok("marginal_path_err_sample_time"),
    ok("max_sectors_kb"),
    ok("no_path_retry"),
    ok("path_checker"),
    ok("path_grouping_policy"),
    ok("path_selector"),
    ok("prio"),
    ok("prio_args"),
    ok("recheck_wwid"),
    ok("retain_attached_hw_handler"),
    ok("rr_min_io"),
    ok("rr_min_io_rq"),
    ok("rr_weight"),
    ok("san_path_err_forget_rate"),
    ok("san_path_err_recovery_time"),
    ok("san_path_err_threshold"),
    ok("skip_kpartx"),
    ok("uid_attribute"),
    ok("user_friendly_names"),
];

/// `overrides` → `protocol` (4 keywords; dict.c:2267–2273). It exists in 0.9.4 (not inside
/// `device`: that came later).
pub const PROTOCOL: &[Keyword] = &[
    ok("dev_loss_tmo"),
    ok("eh_deadline"),
    ok("fast_io_fail_tmo"),
    ok("type"),
];

/// `multipaths` → `multipath` (32 keywords; dict.c:2275–2310).
pub const MULTIPATH: &[Keyword] = &[
    ok("alias"),
    ok("deferred_remove"),
    ok("delay_wait_checks"),
    ok("delay_watch_checks"),
    ok("failback"),
    ok("features"),
    ok("flush_on_last_del"),
    ok("ghost_delay"),
    ok("gid"),
    ok("marginal_path_double_failed_time"),
    ok("marginal_path_err_rate_threshold"),
    ok("marginal_path_err_recheck_gap_time"),
    ok("marginal_path_err_sample_time"),
    ok("max_sectors_kb"),
    ok("mode"),
    ok("no_path_retry"),
    ok("path_grouping_policy"),
    ok("path_selector"),
    ignored("pg_timeout"),
    ok("prio"),
    ok("prio_args"),
    ok("reservation_key"),
    ok("rr_min_io"),
    ok("rr_min_io_rq"),
    ok("rr_weight"),
    ok("san_path_err_forget_rate"),
    ok("san_path_err_recovery_time"),
    ok("san_path_err_threshold"),
    ok("skip_kpartx"),
    ok("uid"),
    ok("user_friendly_names"),
    ok("wwid"),
];

/// The values `overrides` → `protocol` → `type` takes in multipath-tools 0.9.4 (the protocol
/// names of `libmultipath/structs.c`, as Debian 12's build accepts them; anything else logs
/// `invalid value for type` and the entry is dropped as "missing type"). Case-sensitive.
/// `tests/config_multipath_t.rs` runs every one through the real parser.
pub const PROTOCOL_TYPES: &[&str] = &[
    "scsi:fcp",
    "scsi:spi",
    "scsi:ssa",
    "scsi:sbp",
    "scsi:srp",
    "scsi:iscsi",
    "scsi:sas",
    "scsi:adt",
    "scsi:ata",
    "scsi:usb",
    "scsi:unspec",
    "ccw",
    "cciss",
    "nvme:pcie",
    "nvme:rdma",
    "nvme:fc",
    "nvme:tcp",
    "nvme:loop",
    "nvme:apple-nvme",
    "nvme:unspec",
    "undef",
];

/// Look `name` up in `table`.
pub fn find(table: &[Keyword], name: &str) -> Option<Keyword> {
    table.iter().copied().find(|k| k.name == name)
}

/// The keyword of `table` closest to `name` (a likely misspelling: at most 2 edits, or 3 for
/// longer names), for a "did you mean" hint. Only [`KeywordStatus::Accepted`] keywords are
/// suggested.
pub fn suggest(table: &[Keyword], name: &str) -> Option<&'static str> {
    let limit = if name.len() >= 12 { 3 } else { 2 };
    table
        .iter()
        .filter(|k| k.status == KeywordStatus::Accepted)
        .map(|k| (edit_distance(name, k.name), k.name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance over bytes (names are short ASCII; the caller cuts hostile input).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sizes_match_the_source() {
        // counts from dict.c's init_keywords() (see the module documentation)
        assert_eq!(DEFAULTS.len(), 71);
        assert_eq!(DEVICE.len(), 45);
        assert_eq!(OVERRIDES.len(), 38);
        assert_eq!(PROTOCOL.len(), 4);
        assert_eq!(MULTIPATH.len(), 32);
        for table in [DEFAULTS, DEVICE, OVERRIDES, PROTOCOL, MULTIPATH] {
            let mut names: Vec<&str> = table.iter().map(|k| k.name).collect();
            let sorted = {
                let mut s = names.clone();
                s.sort_unstable();
                s
            };
            assert_eq!(names, sorted, "tables are kept alphabetical");
            names.dedup();
            assert_eq!(names.len(), table.len(), "no duplicates");
        }
    }

    #[test]
    fn deprecated_markers() {
        let ignored_in = |t: &[Keyword]| -> Vec<&str> {
            t.iter()
                .filter(|k| k.status == KeywordStatus::DeprecatedIgnored)
                .map(|k| k.name)
                .collect()
        };
        assert_eq!(
            ignored_in(DEFAULTS),
            [
                "config_dir",
                "getuid_callout",
                "multipath_dir",
                "pg_timeout"
            ]
        );
        assert_eq!(ignored_in(DEVICE), ["getuid_callout", "pg_timeout"]);
        assert_eq!(ignored_in(OVERRIDES), ["getuid_callout"]);
        assert_eq!(ignored_in(MULTIPATH), ["pg_timeout"]);
        assert!(ignored_in(PROTOCOL).is_empty());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest(DEVICE, "vendr"), Some("vendor"));
        assert_eq!(suggest(DEVICE, "path_checkr"), Some("path_checker"));
        assert_eq!(suggest(DEVICE, "no_path_retries"), Some("no_path_retry"));
        assert_eq!(suggest(DEVICE, "no_such_keyword"), None);
        assert_eq!(
            suggest(DEVICE, "getuid_calout"),
            None,
            "not a deprecated one"
        );
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
