//! The multipathd knobs mpcluster manages: their typed values, the one knob table
//! ([`KNOBS`]: kebab-case name, multipath.conf keyword, value type and range, per-LUN or not,
//! description) and a validated knob set ([`Knobs`]).
//!
//! The table drives everything: parsing and validation ([`Knob::parse_json`],
//! [`Knob::parse_str`]), rendering ([`KnobValue::render`]), the stored JSON and the knob lists of
//! the API and the CLI. Values are whitelisted: every accepted value is one of the exact
//! multipath.conf spellings or a decimal integer in range, so no value can carry syntax.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::quoted;

macro_rules! word_enum {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident => $word:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant ),+
        }

        impl $name {
            /// Every value's exact multipath.conf spelling, in declaration order.
            pub const WORDS: &'static [&'static str] = &[$($word),+];

            /// The exact multipath.conf spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word ),+
                }
            }

            /// Parse the exact multipath.conf spelling (case-sensitive, like multipath).
            pub fn from_word(s: &str) -> Option<Self> {
                match s {
                    $( $word => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::from_word(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "invalid value {}: must be {}",
                        quoted(&s),
                        one_of($name::WORDS)
                    ))
                })
            }
        }
    };
}

word_enum!(
    /// `path_selector`: the kernel's path selector with its (zero) argument count.
    PathSelector {
        /// `round-robin 0`: loop through the paths of a group.
        RoundRobin => "round-robin 0",
        /// `queue-length 0`: the path with the fewest outstanding I/Os.
        QueueLength => "queue-length 0",
        /// `service-time 0`: outstanding I/O weighted by throughput (multipath's default).
        ServiceTime => "service-time 0",
        /// `historical-service-time 0`: estimated service time (kernel 5.8+).
        HistoricalServiceTime => "historical-service-time 0",
    }
);

word_enum!(
    /// `path_grouping_policy`: how paths are grouped into priority groups.
    PathGroupingPolicy {
        /// One path per group.
        Failover => "failover",
        /// All paths in one group.
        Multibus => "multibus",
        /// One group per serial number.
        GroupBySerial => "group_by_serial",
        /// One group per priority value.
        GroupByPrio => "group_by_prio",
        /// One group per target node name.
        GroupByNodeName => "group_by_node_name",
    }
);

word_enum!(
    /// `path_checker`: how path state is tested.
    PathChecker {
        /// SCSI TEST UNIT READY (asynchronous; multipath's default).
        Tur => "tur",
        /// Direct-I/O read of the first sector (asynchronous).
        Directio => "directio",
        /// Read of sector 0 (deprecated).
        Readsector0 => "readsector0",
        /// LSI/Engenio/NetApp RDAC.
        Rdac => "rdac",
        /// EMC CLARiiON / VNX.
        EmcClariion => "emc_clariion",
        /// HP StorageWorks active/standby.
        HpSw => "hp_sw",
        /// HP/COMPAQ Smart Array.
        CcissTur => "cciss_tur",
        /// Paths are always up.
        None => "none",
    }
);

word_enum!(
    /// `prio`: the path prioritizer.
    Prio {
        /// Every path priority 1.
        Const => "const",
        /// SCSI-3 ALUA.
        Alua => "alua",
        /// EMC CLARiiON / VNX.
        Emc => "emc",
        /// Hitachi HDS modular arrays.
        Hds => "hds",
        /// HP StorageWorks active/standby.
        HpSw => "hp_sw",
        /// NetApp ONTAP.
        Ontap => "ontap",
        /// LSI/Engenio/NetApp RDAC.
        Rdac => "rdac",
        /// Random priority.
        Random => "random",
        /// sysfs `access_state` (ALUA via the kernel).
        Sysfs => "sysfs",
        /// Weights from `prio_args` (set those in the overrides).
        Weightedpath => "weightedpath",
        /// Measured path latency.
        PathLatency => "path_latency",
        /// NVMe ANA.
        Ana => "ana",
        /// DataCore SANsymphony.
        Datacore => "datacore",
        /// iSCSI Enterprise Target, by IP (`prio_args preferredip=`).
        Iet => "iet",
    }
);

word_enum!(
    /// `rr_weight`: path weights for round-robin.
    RrWeight {
        /// Weight = path priority × rr_min_io.
        Priorities => "priorities",
        /// Equal weights (multipath's default).
        Uniform => "uniform",
    }
);

word_enum!(
    /// A multipath.conf boolean.
    YesNo {
        /// `yes`.
        Yes => "yes",
        /// `no`.
        No => "no",
    }
);

/// `failback`: how a map returns to the highest-priority path group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failback {
    /// `immediate`: as soon as a better group has active paths.
    Immediate,
    /// `manual`: never automatically (multipath's default).
    Manual,
    /// `followover`: only when the first path of a group comes back.
    Followover,
    /// `<seconds>`: deferred failback.
    Deferred(u32),
}

impl Failback {
    /// The word values, in multipath.conf spelling.
    pub const WORDS: &'static [&'static str] = &["immediate", "manual", "followover"];
}

/// `no_path_retry`: what to do when all paths are down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoPathRetry {
    /// `fail`: fail I/O at once (multipath's default).
    Fail,
    /// `queue`: queue I/O until a path returns (can hang I/O forever).
    Queue,
    /// `<count>`: queue for this many path-checker intervals, then fail.
    Retries(u32),
}

impl NoPathRetry {
    /// The word values, in multipath.conf spelling.
    pub const WORDS: &'static [&'static str] = &["fail", "queue"];
}

/// `fast_io_fail_tmo`: seconds the SCSI transport waits before failing I/O on a lost port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FastIoFailTmo {
    /// `off`: no fast I/O failure.
    Off,
    /// `<seconds>`.
    Seconds(u32),
}

impl FastIoFailTmo {
    /// The word values, in multipath.conf spelling.
    pub const WORDS: &'static [&'static str] = &["off"];
}

/// `dev_loss_tmo`: seconds before a lost remote port's devices are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DevLossTmo {
    /// `infinity`: never (2^31-1 seconds).
    Infinity,
    /// `<seconds>`.
    Seconds(u32),
}

impl DevLossTmo {
    /// The word values, in multipath.conf spelling.
    pub const WORDS: &'static [&'static str] = &["infinity"];
}

/// A knob's typed value. Only values that passed [`Knob::parse_str`] / [`Knob::parse_json`] (or
/// [`Knobs::set`]'s check) are ever stored, so [`KnobValue::render`] is always one of the exact
/// multipath.conf spellings or a decimal integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnobValue {
    /// A plain integer knob (`polling-interval`, `rr-min-io-rq`, ...).
    Integer(u32),
    /// `path-selector`.
    PathSelector(PathSelector),
    /// `path-grouping-policy`.
    PathGroupingPolicy(PathGroupingPolicy),
    /// `path-checker`.
    PathChecker(PathChecker),
    /// `prio`.
    Prio(Prio),
    /// `failback`.
    Failback(Failback),
    /// `no-path-retry`.
    NoPathRetry(NoPathRetry),
    /// `rr-weight`.
    RrWeight(RrWeight),
    /// `fast-io-fail-tmo`.
    FastIoFailTmo(FastIoFailTmo),
    /// `dev-loss-tmo`.
    DevLossTmo(DevLossTmo),
    /// A yes/no knob (`queue-without-daemon`).
    YesNo(YesNo),
}

/// A value as the table sees it: one of the knob's words, or an integer.
enum Raw {
    Word(&'static str),
    Int(u32),
}

impl KnobValue {
    fn raw(&self) -> Raw {
        match *self {
            KnobValue::Integer(n) => Raw::Int(n),
            KnobValue::PathSelector(v) => Raw::Word(v.as_str()),
            KnobValue::PathGroupingPolicy(v) => Raw::Word(v.as_str()),
            KnobValue::PathChecker(v) => Raw::Word(v.as_str()),
            KnobValue::Prio(v) => Raw::Word(v.as_str()),
            KnobValue::RrWeight(v) => Raw::Word(v.as_str()),
            KnobValue::YesNo(v) => Raw::Word(v.as_str()),
            KnobValue::Failback(Failback::Immediate) => Raw::Word("immediate"),
            KnobValue::Failback(Failback::Manual) => Raw::Word("manual"),
            KnobValue::Failback(Failback::Followover) => Raw::Word("followover"),
            KnobValue::Failback(Failback::Deferred(n)) => Raw::Int(n),
            KnobValue::NoPathRetry(NoPathRetry::Fail) => Raw::Word("fail"),
            KnobValue::NoPathRetry(NoPathRetry::Queue) => Raw::Word("queue"),
            KnobValue::NoPathRetry(NoPathRetry::Retries(n)) => Raw::Int(n),
            KnobValue::FastIoFailTmo(FastIoFailTmo::Off) => Raw::Word("off"),
            KnobValue::FastIoFailTmo(FastIoFailTmo::Seconds(n)) => Raw::Int(n),
            KnobValue::DevLossTmo(DevLossTmo::Infinity) => Raw::Word("infinity"),
            KnobValue::DevLossTmo(DevLossTmo::Seconds(n)) => Raw::Int(n),
        }
    }

    /// The value exactly as multipath.conf spells it (unquoted), e.g. `round-robin 0`, `queue`,
    /// `5`.
    pub fn render(&self) -> String {
        match self.raw() {
            Raw::Word(w) => w.to_owned(),
            Raw::Int(n) => n.to_string(),
        }
    }

    /// The stored/API JSON form: integers as numbers, words as strings.
    pub fn to_json(&self) -> serde_json::Value {
        match self.raw() {
            Raw::Word(w) => serde_json::Value::from(w),
            Raw::Int(n) => serde_json::Value::from(n),
        }
    }
}

impl fmt::Display for KnobValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// What values a knob takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ValueType {
    /// A decimal integer in `min..=max`.
    Integer {
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
        /// What the number counts (`seconds`, `requests`, ...).
        unit: &'static str,
    },
    /// One of a fixed set of words (exact multipath.conf spellings).
    Choice {
        /// The accepted words.
        words: &'static [&'static str],
    },
    /// One of a fixed set of words, or an integer in `min..=max`.
    ChoiceOrInteger {
        /// The accepted words.
        words: &'static [&'static str],
        /// Smallest accepted integer.
        min: u32,
        /// Largest accepted integer.
        max: u32,
        /// What the number counts.
        unit: &'static str,
    },
}

impl ValueType {
    fn words(&self) -> &'static [&'static str] {
        match *self {
            ValueType::Integer { .. } => &[],
            ValueType::Choice { words } | ValueType::ChoiceOrInteger { words, .. } => words,
        }
    }

    fn range(&self) -> Option<(u32, u32, &'static str)> {
        match *self {
            ValueType::Integer { min, max, unit }
            | ValueType::ChoiceOrInteger { min, max, unit, .. } => Some((min, max, unit)),
            ValueType::Choice { .. } => None,
        }
    }

    /// What an accepted value looks like, e.g. `"fail", "queue" or a count from 1 to 86400`.
    pub fn expectation(&self) -> String {
        match *self {
            ValueType::Integer { min, max, unit } => {
                format!("an integer from {min} to {max} ({unit})")
            }
            ValueType::Choice { words } => one_of(words),
            ValueType::ChoiceOrInteger {
                words,
                min,
                max,
                unit,
            } => format!(
                "{} or an integer from {min} to {max} ({unit})",
                words
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn one_of(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
    match quoted.as_slice() {
        [] => "nothing".to_owned(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("one of {} or {last}", init.join(", ")),
    }
}

/// One row of the knob table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KnobSpec {
    /// The knob.
    #[serde(skip)]
    pub knob: Knob,
    /// Kebab-case name used in the stored JSON, the API and the CLI (`polling-interval`).
    pub name: &'static str,
    /// multipath.conf keyword (`polling_interval`).
    pub keyword: &'static str,
    /// Accepted values.
    pub value_type: ValueType,
    /// Whether it may be set per LUN (in a `multipaths { multipath { } }` entry) as well as in
    /// `defaults`.
    pub per_lun: bool,
    /// One-line description for the API and the CLI.
    pub description: &'static str,
}

/// A knob mpcluster manages. Declaration order is the table order, which is also the order in
/// which knobs are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Knob {
    /// `polling_interval`.
    PollingInterval,
    /// `path_selector`.
    PathSelector,
    /// `path_grouping_policy`.
    PathGroupingPolicy,
    /// `path_checker`.
    PathChecker,
    /// `prio`.
    Prio,
    /// `failback`.
    Failback,
    /// `no_path_retry`.
    NoPathRetry,
    /// `rr_weight`.
    RrWeight,
    /// `rr_min_io_rq`.
    RrMinIoRq,
    /// `fast_io_fail_tmo`.
    FastIoFailTmo,
    /// `dev_loss_tmo`.
    DevLossTmo,
    /// `max_sectors_kb`.
    MaxSectorsKb,
    /// `checker_timeout`.
    CheckerTimeout,
    /// `queue_without_daemon`.
    QueueWithoutDaemon,
}

/// Seconds in a day: the upper bound of the time-like knobs that have no natural limit.
const DAY: u32 = 86_400;

/// The knob table: one row per [`Knob`], in declaration order (checked at compile time).
pub const KNOBS: &[KnobSpec] = &[
    KnobSpec {
        knob: Knob::PollingInterval,
        name: "polling-interval",
        keyword: "polling_interval",
        value_type: ValueType::Integer {
            min: 1,
            max: 3600,
            unit: "seconds",
        },
        per_lun: false,
        description: "Interval between two path checks (multipath default 5).",
    },
    KnobSpec {
        knob: Knob::PathSelector,
        name: "path-selector",
        keyword: "path_selector",
        value_type: ValueType::Choice {
            words: PathSelector::WORDS,
        },
        per_lun: true,
        description: "Kernel path selector within a path group (multipath default \"service-time 0\").",
    },
    KnobSpec {
        knob: Knob::PathGroupingPolicy,
        name: "path-grouping-policy",
        keyword: "path_grouping_policy",
        value_type: ValueType::Choice {
            words: PathGroupingPolicy::WORDS,
        },
        per_lun: true,
        description: "How paths are grouped into priority groups (multipath default failover).",
    },
    KnobSpec {
        knob: Knob::PathChecker,
        name: "path-checker",
        keyword: "path_checker",
        value_type: ValueType::Choice {
            words: PathChecker::WORDS,
        },
        per_lun: false,
        description: "How path state is tested (multipath default tur).",
    },
    KnobSpec {
        knob: Knob::Prio,
        name: "prio",
        keyword: "prio",
        value_type: ValueType::Choice { words: Prio::WORDS },
        per_lun: true,
        description: "Path prioritizer (multipath default const, or detected, e.g. alua).",
    },
    KnobSpec {
        knob: Knob::Failback,
        name: "failback",
        keyword: "failback",
        value_type: ValueType::ChoiceOrInteger {
            words: Failback::WORDS,
            min: 1,
            max: DAY,
            unit: "seconds of deferral",
        },
        per_lun: true,
        description: "Failback to the highest-priority path group (multipath default manual).",
    },
    KnobSpec {
        knob: Knob::NoPathRetry,
        name: "no-path-retry",
        keyword: "no_path_retry",
        value_type: ValueType::ChoiceOrInteger {
            words: NoPathRetry::WORDS,
            min: 1,
            max: DAY,
            unit: "path-checker intervals",
        },
        per_lun: true,
        description: "What to do when all paths are down: fail, queue forever, or queue for N checks.",
    },
    KnobSpec {
        knob: Knob::RrWeight,
        name: "rr-weight",
        keyword: "rr_weight",
        value_type: ValueType::Choice {
            words: RrWeight::WORDS,
        },
        per_lun: true,
        description: "Round-robin path weights (multipath default uniform).",
    },
    KnobSpec {
        knob: Knob::RrMinIoRq,
        name: "rr-min-io-rq",
        keyword: "rr_min_io_rq",
        value_type: ValueType::Integer {
            min: 1,
            max: 1000,
            unit: "requests",
        },
        per_lun: true,
        description: "Requests sent to a path before switching to the next (multipath default 1).",
    },
    KnobSpec {
        knob: Knob::FastIoFailTmo,
        name: "fast-io-fail-tmo",
        keyword: "fast_io_fail_tmo",
        value_type: ValueType::ChoiceOrInteger {
            words: FastIoFailTmo::WORDS,
            min: 0,
            max: 3600,
            unit: "seconds",
        },
        per_lun: false,
        description: "Seconds before I/O on a lost FC/SAS port fails (multipath default 5); keep below dev-loss-tmo.",
    },
    KnobSpec {
        knob: Knob::DevLossTmo,
        name: "dev-loss-tmo",
        keyword: "dev_loss_tmo",
        value_type: ValueType::ChoiceOrInteger {
            words: DevLossTmo::WORDS,
            min: 1,
            max: 365 * DAY,
            unit: "seconds",
        },
        per_lun: false,
        description: "Seconds before a lost FC/SAS port's devices are removed (hardware default).",
    },
    KnobSpec {
        knob: Knob::MaxSectorsKb,
        name: "max-sectors-kb",
        keyword: "max_sectors_kb",
        value_type: ValueType::Integer {
            min: 4,
            max: 1_048_576,
            unit: "KiB",
        },
        per_lun: true,
        description: "max_sectors_kb of the paths and the map (default: the device's own).",
    },
    KnobSpec {
        knob: Knob::CheckerTimeout,
        name: "checker-timeout",
        keyword: "checker_timeout",
        value_type: ValueType::Integer {
            min: 1,
            max: 3600,
            unit: "seconds",
        },
        per_lun: false,
        description: "Timeout of path checker and prioritizer commands (default: the SCSI device timeout).",
    },
    KnobSpec {
        knob: Knob::QueueWithoutDaemon,
        name: "queue-without-daemon",
        keyword: "queue_without_daemon",
        value_type: ValueType::Choice {
            words: YesNo::WORDS,
        },
        per_lun: false,
        description: "Keep queueing I/O while multipathd is stopped (multipath default no).",
    },
];

// The table is indexed by `Knob as usize`: keep it complete and in declaration order.
const _: () = {
    assert!(KNOBS.len() == Knob::ALL.len());
    let mut i = 0;
    while i < KNOBS.len() {
        assert!(KNOBS[i].knob as usize == i && Knob::ALL[i] as usize == i);
        i += 1;
    }
};

/// multipath.conf keywords that mpcluster fixes in `defaults` and never lets anyone set:
/// `(keyword, value)`.
pub const FIXED_DEFAULTS: &[(&str, &str)] =
    &[("user_friendly_names", "no"), ("find_multipaths", "strict")];

/// Kebab-case names of the fixed keywords, rejected as knob names with a clear message.
const FIXED_NAMES: &[&str] = &["user-friendly-names", "find-multipaths"];

/// Longest input string inspected for a knob value; anything longer is rejected unread.
const MAX_VALUE_LEN: usize = 64;

impl Knob {
    /// Every knob, in table order.
    pub const ALL: &'static [Knob] = &[
        Knob::PollingInterval,
        Knob::PathSelector,
        Knob::PathGroupingPolicy,
        Knob::PathChecker,
        Knob::Prio,
        Knob::Failback,
        Knob::NoPathRetry,
        Knob::RrWeight,
        Knob::RrMinIoRq,
        Knob::FastIoFailTmo,
        Knob::DevLossTmo,
        Knob::MaxSectorsKb,
        Knob::CheckerTimeout,
        Knob::QueueWithoutDaemon,
    ];

    /// This knob's table row.
    pub fn spec(self) -> &'static KnobSpec {
        &KNOBS[self as usize]
    }

    /// Kebab-case name (`polling-interval`).
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// multipath.conf keyword (`polling_interval`).
    pub fn keyword(self) -> &'static str {
        self.spec().keyword
    }

    /// Whether the knob may be set per LUN.
    pub fn per_lun(self) -> bool {
        self.spec().per_lun
    }

    /// Look a knob up by its kebab-case name.
    pub fn from_name(name: &str) -> Option<Knob> {
        KNOBS.iter().find(|s| s.name == name).map(|s| s.knob)
    }

    /// Why `name` is not a knob, for an error message.
    pub(crate) fn unknown_name_message(name: &str) -> String {
        if FIXED_NAMES.contains(&name) {
            return "fixed by mpcluster (user_friendly_names no, find_multipaths strict: map names \
                    are WWID-based and equal on every node) and cannot be set"
                .to_owned();
        }
        if let Some(k) = KNOBS.iter().find(|s| s.keyword == name) {
            return format!("unknown knob; did you mean \"{}\"?", k.name);
        }
        "unknown knob".to_owned()
    }

    /// Parse a value given as text (`"5"`, `"queue"`, `"round-robin 0"`): exact spellings only,
    /// integers as plain decimal digits within the table's range.
    pub fn parse_str(self, s: &str) -> Result<KnobValue, String> {
        let vt = self.spec().value_type;
        if let Some(w) = vt.words().iter().find(|w| **w == s) {
            return self.build(Raw::Word(w));
        }
        if let Some((min, max, _)) = vt.range()
            && !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
        {
            return match s.parse::<u32>() {
                Ok(n) if n >= min && n <= max => self.build(Raw::Int(n)),
                _ => Err(format!(
                    "{} is out of range: must be {}",
                    if s.len() > 12 {
                        quoted(s)
                    } else {
                        s.to_owned()
                    },
                    vt.expectation()
                )),
            };
        }
        let shown = if s.len() > MAX_VALUE_LEN {
            format!("{} ({} bytes)", quoted(s), s.len())
        } else {
            quoted(s)
        };
        Err(format!(
            "invalid value {shown}: must be {}",
            vt.expectation()
        ))
    }

    /// Parse a value from JSON: a string (see [`Knob::parse_str`]) or, for integer-valued knobs,
    /// a non-negative integer number.
    pub fn parse_json(self, v: &serde_json::Value) -> Result<KnobValue, String> {
        let vt = self.spec().value_type;
        match v {
            serde_json::Value::String(s) => self.parse_str(s),
            serde_json::Value::Number(n) if vt.range().is_some() => match n.as_u64() {
                Some(n) => self.parse_str(&n.to_string()),
                None => Err(format!("invalid number {n}: must be {}", vt.expectation())),
            },
            other => Err(format!(
                "invalid value {}: must be {}",
                json_kind(other),
                vt.expectation()
            )),
        }
    }

    fn build(self, raw: Raw) -> Result<KnobValue, String> {
        let v = match (self, raw) {
            (
                Knob::PollingInterval | Knob::RrMinIoRq | Knob::MaxSectorsKb | Knob::CheckerTimeout,
                Raw::Int(n),
            ) => Some(KnobValue::Integer(n)),
            (Knob::PathSelector, Raw::Word(w)) => {
                PathSelector::from_word(w).map(KnobValue::PathSelector)
            }
            (Knob::PathGroupingPolicy, Raw::Word(w)) => {
                PathGroupingPolicy::from_word(w).map(KnobValue::PathGroupingPolicy)
            }
            (Knob::PathChecker, Raw::Word(w)) => {
                PathChecker::from_word(w).map(KnobValue::PathChecker)
            }
            (Knob::Prio, Raw::Word(w)) => Prio::from_word(w).map(KnobValue::Prio),
            (Knob::RrWeight, Raw::Word(w)) => RrWeight::from_word(w).map(KnobValue::RrWeight),
            (Knob::QueueWithoutDaemon, Raw::Word(w)) => YesNo::from_word(w).map(KnobValue::YesNo),
            (Knob::Failback, Raw::Word("immediate")) => {
                Some(KnobValue::Failback(Failback::Immediate))
            }
            (Knob::Failback, Raw::Word("manual")) => Some(KnobValue::Failback(Failback::Manual)),
            (Knob::Failback, Raw::Word("followover")) => {
                Some(KnobValue::Failback(Failback::Followover))
            }
            (Knob::Failback, Raw::Int(n)) => Some(KnobValue::Failback(Failback::Deferred(n))),
            (Knob::NoPathRetry, Raw::Word("fail")) => {
                Some(KnobValue::NoPathRetry(NoPathRetry::Fail))
            }
            (Knob::NoPathRetry, Raw::Word("queue")) => {
                Some(KnobValue::NoPathRetry(NoPathRetry::Queue))
            }
            (Knob::NoPathRetry, Raw::Int(n)) => {
                Some(KnobValue::NoPathRetry(NoPathRetry::Retries(n)))
            }
            (Knob::FastIoFailTmo, Raw::Word("off")) => {
                Some(KnobValue::FastIoFailTmo(FastIoFailTmo::Off))
            }
            (Knob::FastIoFailTmo, Raw::Int(n)) => {
                Some(KnobValue::FastIoFailTmo(FastIoFailTmo::Seconds(n)))
            }
            (Knob::DevLossTmo, Raw::Word("infinity")) => {
                Some(KnobValue::DevLossTmo(DevLossTmo::Infinity))
            }
            (Knob::DevLossTmo, Raw::Int(n)) => Some(KnobValue::DevLossTmo(DevLossTmo::Seconds(n))),
            _ => None,
        };
        // Only reachable if the table and the typed values disagree (a test checks they don't).
        v.ok_or_else(|| format!("internal error: no typed value for {}", self.name()))
    }

    /// Check that a typed value belongs to this knob and is in range (for values built in code
    /// rather than parsed).
    pub fn check(self, value: &KnobValue) -> Result<(), String> {
        match self.parse_str(&value.render()) {
            Ok(v) if v == *value => Ok(()),
            Ok(_) => Err(format!("{value} is not a value of {}", self.name())),
            Err(e) => Err(e),
        }
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "(a boolean)",
        serde_json::Value::Number(_) => "(a number)",
        serde_json::Value::String(_) => "(a string)",
        serde_json::Value::Array(_) => "(an array)",
        serde_json::Value::Object(_) => "(an object)",
    }
}

/// A set of knob values, each validated for its knob. Iterates in table order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Knobs(BTreeMap<Knob, KnobValue>);

impl Knobs {
    /// No knobs.
    pub fn new() -> Self {
        Knobs::default()
    }

    /// The value of `knob`, if set.
    pub fn get(&self, knob: Knob) -> Option<&KnobValue> {
        self.0.get(&knob)
    }

    /// Set `knob` after checking that `value` is one of its values and in range; returns the
    /// previous value.
    pub fn set(&mut self, knob: Knob, value: KnobValue) -> Result<Option<KnobValue>, String> {
        knob.check(&value)?;
        Ok(self.0.insert(knob, value))
    }

    /// Unset `knob`; returns the previous value.
    pub fn remove(&mut self, knob: Knob) -> Option<KnobValue> {
        self.0.remove(&knob)
    }

    /// The set knobs, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (Knob, &KnobValue)> + '_ {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// Whether no knob is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many knobs are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The JSON object form `{"<kebab-name>": value}` (keys sorted by name).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let sorted: BTreeMap<&str, serde_json::Value> =
            self.iter().map(|(k, v)| (k.name(), v.to_json())).collect();
        sorted.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

impl Serialize for Knobs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeMap<&str, serde_json::Value> =
            self.iter().map(|(k, v)| (k.name(), v.to_json())).collect();
        sorted.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_word_and_bound_parses_to_its_own_spelling() {
        for spec in KNOBS {
            assert!(spec.name.replace('-', "_") == spec.keyword, "{}", spec.name);
            for w in spec.value_type.words() {
                let v = spec.knob.parse_str(w).unwrap();
                assert_eq!(v.render(), *w);
                spec.knob.check(&v).unwrap();
            }
            if let Some((min, max, _)) = spec.value_type.range() {
                for n in [min, max] {
                    let v = spec.knob.parse_json(&serde_json::json!(n)).unwrap();
                    assert_eq!(v.render(), n.to_string());
                }
                assert!(spec.knob.parse_json(&serde_json::json!(max + 1)).is_err());
                if min > 0 {
                    assert!(spec.knob.parse_str(&(min - 1).to_string()).is_err());
                }
            }
        }
    }

    #[test]
    fn check_rejects_foreign_values() {
        assert!(Knob::PollingInterval.check(&KnobValue::Integer(0)).is_err());
        assert!(
            Knob::Prio
                .check(&KnobValue::PathChecker(PathChecker::Tur))
                .is_err()
        );
        assert!(
            Knob::Failback
                .check(&KnobValue::Failback(Failback::Deferred(0)))
                .is_err()
        );
    }
}
