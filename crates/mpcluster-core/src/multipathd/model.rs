//! The typed model of what multipathd reports: [`MapsReply`] → [`Map`] → [`PathGroup`] →
//! [`Path`], and the state enums of its fields.
//!
//! Every enum parsed from multipathd text has an `Unknown(String)` fallback that keeps the
//! verbatim value, so a multipath-tools upgrade adding a state does not blank the matrix. Fields
//! multipathd prints as "not known" (`[undef]`, `undef`, `#:#`, `##`, ...) are `None`. Fields added
//! in later schema versions (`marginal_st` in 0.8.3, `lun_hex` in 0.8.9) are optional, and so is
//! everything the raw text formats cannot provide (path groups, for one).
//!
//! Entry points: [`super::parse_maps_json`] and [`MapsReply::from_raw`] build a [`MapsReply`].

use std::fmt;

use serde::{Serialize, Serializer};

/// Defines a multipathd state enum: fixed variants with their wire text plus `Unknown(String)`.
macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A value this version of mpcluster does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Parse multipathd's text; anything unrecognised becomes `Unknown`.
            pub fn parse(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }

            /// The text multipathd prints for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(text) => text,
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
    };
}

wire_enum!(
    /// A map's device-mapper state (JSON map `dm_st`, map wildcard `%t`).
    MapDmState {
        /// The table is live.
        Active => "active",
        /// The map is suspended: I/O is held.
        Suspend => "suspend",
        /// multipathd could not tell.
        Undef => "undef",
    }
);

wire_enum!(
    /// A path group's device-mapper state (JSON group `dm_st`).
    GroupDmState {
        /// The group I/O currently goes to.
        Active => "active",
        /// A usable standby group.
        Enabled => "enabled",
        /// A group the kernel bypasses.
        Disabled => "disabled",
        /// multipathd could not tell.
        Undef => "undef",
    }
);

wire_enum!(
    /// A path's device-mapper (kernel) state (JSON path `dm_st`, path wildcard `%t`).
    PathDmState {
        /// The kernel uses the path.
        Active => "active",
        /// The kernel failed the path.
        Failed => "failed",
        /// multipathd could not tell.
        Undef => "undef",
    }
);

wire_enum!(
    /// A path's device state (JSON `dev_st`, path wildcard `%o`). multipathd's own `unknown`
    /// (a path in no map) is kept as `Unknown("unknown")`.
    DevState {
        /// The device is online.
        Running => "running",
        /// The device is offline (SCSI `offline`; NVMe `dead` from 0.11.0).
        Offline => "offline",
    }
);

wire_enum!(
    /// The path checker's verdict (JSON `chk_st`, path wildcard `%T`). Note the values with a
    /// space and a slash.
    CheckerState {
        /// Up (`PATH_UP`).
        Ready => "ready",
        /// Down.
        Faulty => "faulty",
        /// Up but flapping.
        Shaky => "shaky",
        /// Up but standby (ALUA/RDAC): usable after a failover, healthy redundancy.
        Ghost => "ghost",
        /// A check is in flight.
        Pending => "i/o pending",
        /// The check timed out.
        Timeout => "i/o timeout",
        /// Reinstatement delayed (marginal path handling).
        Delayed => "delayed",
        /// multipathd could not tell.
        Undef => "undef",
        /// 0.14.0+: the device disappeared (documented as ephemeral, rarely printed).
        Disconnected => "disconnected",
    }
);

wire_enum!(
    /// Marginal state of a path or path group (JSON `marginal_st`, 0.8.3+).
    MarginalState {
        /// Flagged marginal (shaky-path detection or FC FPIN).
        Marginal => "marginal",
        /// Not marginal.
        Normal => "normal",
    }
);

wire_enum!(
    /// A map's write protection (JSON `write_prot`, map wildcard `%r`).
    WriteProt {
        /// Read-write.
        Rw => "rw",
        /// Read-only.
        Ro => "ro",
        /// multipathd could not tell.
        Undef => "undef",
    }
);

/// A map's failback setting and progress (JSON `failback`, map wildcard `%F`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Failback {
    /// `immediate`.
    Immediate,
    /// `followover`.
    Followover,
    /// `manual` (0.9.9+).
    Manual,
    /// `undef` (0.9.9+).
    Undef,
    /// `-`: manual, or deferred and not counting down (0.9.4 and earlier print this).
    Inactive,
    /// A deferred failback counting down, printed as a progress bar, e.g. `XXXXX..... 5/10`.
    Progress {
        /// Ticks elapsed.
        done: u32,
        /// Ticks in total.
        total: u32,
    },
    /// `deferred:<secs>` (0.9.9+).
    Deferred {
        /// The configured delay in seconds.
        secs: u32,
    },
    /// A value this version of mpcluster does not know, kept verbatim.
    Unknown(String),
}

impl Failback {
    /// Parse multipathd's text; anything unrecognised becomes `Unknown`.
    pub fn parse(text: &str) -> Self {
        match text {
            "immediate" => return Failback::Immediate,
            "followover" => return Failback::Followover,
            "manual" => return Failback::Manual,
            "undef" => return Failback::Undef,
            "-" => return Failback::Inactive,
            _ => {}
        }
        if let Some(secs) = text.strip_prefix("deferred:").and_then(|s| s.parse().ok()) {
            return Failback::Deferred { secs };
        }
        if let Some((bar, count)) = text.split_once(' ')
            && is_progress_bar(bar)
            && let Some((done, total)) = count.split_once('/')
            && let (Ok(done), Ok(total)) = (done.parse(), total.parse())
        {
            return Failback::Progress { done, total };
        }
        Failback::Unknown(text.to_owned())
    }
}

/// `snprint_progress`: ten characters of `X` (done) and `.` (to do).
pub(crate) fn is_progress_bar(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b == b'X' || b == b'.')
}

impl fmt::Display for Failback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failback::Immediate => f.write_str("immediate"),
            Failback::Followover => f.write_str("followover"),
            Failback::Manual => f.write_str("manual"),
            Failback::Undef => f.write_str("undef"),
            Failback::Inactive => f.write_str("-"),
            Failback::Progress { done, total } => {
                // Re-render the bar as multipathd does; clamp hostile counts to the 10 cells.
                let cells = if *total == 0 {
                    0
                } else {
                    ((u64::from(*done) * 10) / u64::from(*total)).min(10) as usize
                };
                write!(
                    f,
                    "{}{} {done}/{total}",
                    "X".repeat(cells),
                    ".".repeat(10 - cells)
                )
            }
            Failback::Deferred { secs } => write!(f, "deferred:{secs}"),
            Failback::Unknown(text) => f.write_str(text),
        }
    }
}

impl Serialize for Failback {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A map's queueing state (JSON `queueing`, map wildcard `%Q`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Queueing {
    /// `off`: I/O fails when no path is usable.
    Off,
    /// `on`: I/O queues forever when no path is usable.
    On,
    /// `-`: undefined.
    Undef,
    /// `<n> sec`: in recovery, queueing stops in `secs` seconds.
    Recovery {
        /// Seconds left.
        secs: u64,
    },
    /// `<n> chk`: `no_path_retry n`, not in recovery.
    Retries {
        /// The configured number of checker intervals.
        checks: u64,
    },
    /// A value this version of mpcluster does not know, kept verbatim.
    Unknown(String),
}

impl Queueing {
    /// Parse multipathd's text; anything unrecognised becomes `Unknown`.
    pub fn parse(text: &str) -> Self {
        match text {
            "off" => return Queueing::Off,
            "on" => return Queueing::On,
            "-" => return Queueing::Undef,
            _ => {}
        }
        if let Some((n, unit)) = text.split_once(' ')
            && let Ok(n) = n.parse()
        {
            match unit {
                "sec" => return Queueing::Recovery { secs: n },
                "chk" => return Queueing::Retries { checks: n },
                _ => {}
            }
        }
        Queueing::Unknown(text.to_owned())
    }

    /// Whether I/O is queued (hangs) while the map has no usable path: `on`, or a running
    /// recovery countdown.
    pub fn holds_io(&self) -> bool {
        matches!(self, Queueing::On | Queueing::Recovery { .. })
    }
}

impl fmt::Display for Queueing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Queueing::Off => f.write_str("off"),
            Queueing::On => f.write_str("on"),
            Queueing::Undef => f.write_str("-"),
            Queueing::Recovery { secs } => write!(f, "{secs} sec"),
            Queueing::Retries { checks } => write!(f, "{checks} chk"),
            Queueing::Unknown(text) => f.write_str(text),
        }
    }
}

impl Serialize for Queueing {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which multipathd output a [`MapsReply`] was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplySource {
    /// `show maps json` (or `show map X json`).
    Json,
    /// `show maps raw format` + `show paths raw format` (the fallback when the JSON is broken).
    Raw,
}

/// A parsed multipathd reply: the maps it lists and what could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapsReply {
    /// Which output this was built from.
    pub source: ReplySource,
    /// JSON `major_version` (always 0 so far); `None` for the raw formats.
    pub major_version: Option<u64>,
    /// JSON `minor_version` (1 in every release, never bumped); `None` for the raw formats.
    pub minor_version: Option<u64>,
    /// The multipath maps, in multipathd's order.
    pub maps: Vec<Map>,
    /// Entry-level problems (an entry skipped, a field of the wrong type), each naming its
    /// location. Capped at [`super::MAX_ERRORS`] lines.
    pub errors: Vec<String>,
}

/// One multipath map (a LUN as assembled on this node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Map {
    /// `name` (`%n`): the alias, or the WWID when there is none.
    pub name: String,
    /// `uuid` (`%w`): the WWID (DM UUID without the `mpath-` prefix). Not validated here.
    pub wwid: String,
    /// `sysfs` (`%d`): the dm device name, `dm-<minor>`. `None` for `undef` or anything not of
    /// the form `dm-<digits>` (so it is safe to put into `/sys/block/<sysfs>/size`).
    pub sysfs: Option<String>,
    /// `failback` (`%F`).
    pub failback: Option<Failback>,
    /// `queueing` (`%Q`).
    pub queueing: Option<Queueing>,
    /// `paths` (`%N`): multipathd's own count of paths with checker state ready or ghost
    /// (ignoring `dm_st`). **Not** the total; health uses its own count.
    pub reported_active: Option<u64>,
    /// `write_prot` (`%r`).
    pub write_prot: Option<WriteProt>,
    /// `dm_st` (`%t`).
    pub dm_st: Option<MapDmState>,
    /// `features` (`%f`), the raw DM table string, e.g. `1 queue_if_no_path`.
    pub features: Option<String>,
    /// `hwhandler` (`%h`), e.g. `1 alua`.
    pub hwhandler: Option<String>,
    /// `action` (`%A`): the last map action (`create`, `reload`, ...); empty means none.
    pub action: Option<String>,
    /// `path_faults` (`%0`).
    pub path_faults: Option<u64>,
    /// `switch_grp` (`%1`).
    pub switch_grp: Option<u64>,
    /// `map_loads` (`%2`).
    pub map_loads: Option<u64>,
    /// `total_q_time` (`%3`).
    pub total_q_time: Option<u64>,
    /// `q_timeouts` (`%4`).
    pub q_timeouts: Option<u64>,
    /// `vend` (`%v`); `None` for `##`.
    pub vendor: Option<String>,
    /// `prod` (`%p`); `None` for `##`.
    pub product: Option<String>,
    /// `rev` (`%e`); `None` for `##`.
    pub revision: Option<String>,
    /// The path groups in kernel table order. The raw formats carry no group information: a
    /// map built from them has one group with `group: None` holding all its paths.
    pub path_groups: Vec<PathGroup>,
    /// Structural problems in this map's entry (a group or path that is not an object, a path
    /// without `dm_st`/`chk_st`, ...). When non-empty the map's health is `unknown`: we could
    /// not tell, which is different from failed.
    pub problems: Vec<String>,
}

impl Map {
    /// A map with only its name and WWID set.
    pub fn new(name: impl Into<String>, wwid: impl Into<String>) -> Self {
        Map {
            name: name.into(),
            wwid: wwid.into(),
            sysfs: None,
            failback: None,
            queueing: None,
            reported_active: None,
            write_prot: None,
            dm_st: None,
            features: None,
            hwhandler: None,
            action: None,
            path_faults: None,
            switch_grp: None,
            map_loads: None,
            total_q_time: None,
            q_timeouts: None,
            vendor: None,
            product: None,
            revision: None,
            path_groups: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Every path of every group.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.path_groups.iter().flat_map(|g| g.paths.iter())
    }

    /// Whether the DM table has `queue_if_no_path` among its features.
    pub fn queue_if_no_path(&self) -> bool {
        self.features
            .as_deref()
            .is_some_and(|f| f.split_whitespace().any(|w| w == "queue_if_no_path"))
    }
}

/// One path group of a map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PathGroup {
    /// `group`: 1-based number in kernel table order; `None` when unknown (raw formats).
    pub group: Option<u32>,
    /// `selector`, e.g. `service-time 0`.
    pub selector: Option<String>,
    /// `pri`: the group priority (0 when all its paths failed).
    pub pri: Option<i64>,
    /// `dm_st`.
    pub dm_st: Option<GroupDmState>,
    /// `marginal_st` (0.8.3+).
    pub marginal_st: Option<MarginalState>,
    /// The paths of the group.
    pub paths: Vec<Path>,
}

/// One path (a block device) of a map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Path {
    /// `dev` (`%d`): the kernel name (`sdc`, `nvme0n1`) or `-` for a vanished device.
    pub dev: String,
    /// `dev_t` (`%D`): `major:minor`; `None` for `#:#`.
    pub dev_t: Option<String>,
    /// `dm_st` (`%t`): the kernel's view.
    pub dm_st: Option<PathDmState>,
    /// `dev_st` (`%o`).
    pub dev_st: Option<DevState>,
    /// `chk_st` (`%T`): multipathd's checker verdict.
    pub chk_st: Option<CheckerState>,
    /// `checker` (`%c`), e.g. `tur`; `None` for `(null)`.
    pub checker: Option<String>,
    /// `pri` (`%p`): the path priority.
    pub pri: Option<i64>,
    /// `host_wwnn` (`%N`): FC only.
    pub host_wwnn: Option<String>,
    /// `target_wwnn` (`%n`): FC rport node name, SAS address, or the iSCSI target IQN.
    pub target_wwnn: Option<String>,
    /// `host_wwpn` (`%R`): FC only.
    pub host_wwpn: Option<String>,
    /// `target_wwpn` (`%r`): FC rport port name.
    pub target_wwpn: Option<String>,
    /// `host_adapter` (`%a`): PCI bus id (FC/SAS/SRP) or the iSCSI initiator address.
    pub host_adapter: Option<String>,
    /// `lun_hex` (`%L`, 0.8.9+), e.g. `0x0001000000000000`.
    pub lun_hex: Option<String>,
    /// `marginal_st` (`%M`, 0.8.3+).
    pub marginal_st: Option<MarginalState>,
    /// `%P`, e.g. `scsi:iscsi` (not in the JSON: joined from `show paths raw format`).
    pub protocol: Option<String>,
    /// `%i`, host:channel:id:lun (not in the JSON).
    pub hcil: Option<String>,
    /// `%w`, the WWID the path reports (not in the JSON).
    pub wwid: Option<String>,
}

impl Path {
    /// A path with only its device name set.
    pub fn new(dev: impl Into<String>) -> Self {
        Path {
            dev: dev.into(),
            ..Path::default()
        }
    }

    /// The LUN number decoded from `lun_hex` (SAM byte order, as `scsilun_to_int`), or from the
    /// last element of `hcil`. `None` when neither is known or `lun_hex` is the invalid marker.
    pub fn lun(&self) -> Option<u64> {
        if let Some(hex) = self.lun_hex.as_deref() {
            return decode_lun_hex(hex);
        }
        self.hcil
            .as_deref()
            .and_then(|h| h.rsplit(':').next())
            .and_then(|l| l.parse().ok())
    }
}

/// Decode `0x%016x` in SAM / `int_to_scsilun` byte order: LUN 1 is `0x0001000000000000`.
/// `0xffffffffffffffff` (multipathd's "invalid") and malformed text give `None`.
pub fn decode_lun_hex(hex: &str) -> Option<u64> {
    let digits = hex.strip_prefix("0x").or_else(|| hex.strip_prefix("0X"))?;
    if digits.len() != 16 {
        return None;
    }
    let raw = u64::from_str_radix(digits, 16).ok()?;
    if raw == u64::MAX {
        return None;
    }
    let bytes = raw.to_be_bytes();
    // scsilun_to_int: each 2-byte level, most significant byte first, levels ascending.
    let mut lun = 0u64;
    for (level, pair) in bytes.chunks_exact(2).enumerate() {
        let word = (u64::from(pair[0]) << 8) | u64::from(pair[1]);
        lun |= word << (level * 16);
    }
    Some(lun)
}

/// The "not known" placeholders multipathd prints.
pub(crate) fn is_placeholder(s: &str) -> bool {
    matches!(
        s,
        "" | "[undef]" | "[unknown]" | "undef" | "#:#" | "##" | "(null)" | "--"
    )
}

/// `Some(owned)` unless the text is a "not known" placeholder.
pub(crate) fn defined(s: &str) -> Option<String> {
    (!is_placeholder(s)).then(|| s.to_owned())
}

/// Accept a sysfs name only in the form `dm-<digits>`: it ends up in a sysfs path.
pub(crate) fn valid_sysfs(s: &str) -> bool {
    s.strip_prefix("dm-")
        .is_some_and(|n| !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn enums_round_trip_and_fall_back() {
        for s in [
            "ready",
            "faulty",
            "shaky",
            "ghost",
            "i/o pending",
            "i/o timeout",
            "delayed",
            "undef",
            "disconnected",
        ] {
            let c = CheckerState::parse(s);
            assert!(!matches!(c, CheckerState::Unknown(_)), "{s}");
            assert_eq!(c.as_str(), s);
        }
        assert_eq!(
            CheckerState::parse("wild"),
            CheckerState::Unknown("wild".into())
        );
        assert_eq!(DevState::parse("unknown").as_str(), "unknown");
        assert_eq!(GroupDmState::parse("enabled"), GroupDmState::Enabled);
        assert_eq!(
            serde_json::to_string(&CheckerState::Pending).unwrap(),
            "\"i/o pending\""
        );
    }

    #[test]
    fn failback_forms() {
        assert_eq!(Failback::parse("immediate"), Failback::Immediate);
        assert_eq!(Failback::parse("-"), Failback::Inactive);
        assert_eq!(
            Failback::parse("XXXXX..... 5/10"),
            Failback::Progress { done: 5, total: 10 }
        );
        assert_eq!(
            Failback::parse("deferred:30"),
            Failback::Deferred { secs: 30 }
        );
        assert_eq!(
            Failback::parse("deferred:x"),
            Failback::Unknown("deferred:x".into())
        );
        assert_eq!(
            Failback::parse("XXXX 5/10"),
            Failback::Unknown("XXXX 5/10".into())
        );
        for s in [
            "immediate",
            "-",
            "XXXXX..... 5/10",
            "deferred:30",
            "manual",
            "weird",
        ] {
            assert_eq!(Failback::parse(s).to_string(), s);
        }
        // Hostile counts do not panic the renderer.
        let _ = Failback::Progress {
            done: u32::MAX,
            total: 1,
        }
        .to_string();
        let _ = Failback::Progress { done: 1, total: 0 }.to_string();
    }

    #[test]
    fn queueing_forms() {
        assert_eq!(Queueing::parse("6 chk"), Queueing::Retries { checks: 6 });
        assert_eq!(Queueing::parse("25 sec"), Queueing::Recovery { secs: 25 });
        assert_eq!(Queueing::parse("off"), Queueing::Off);
        assert_eq!(Queueing::parse("-"), Queueing::Undef);
        assert_eq!(Queueing::parse("6 min"), Queueing::Unknown("6 min".into()));
        assert!(Queueing::On.holds_io() && Queueing::Recovery { secs: 1 }.holds_io());
        assert!(!Queueing::Retries { checks: 6 }.holds_io());
        for s in ["6 chk", "25 sec", "off", "on", "-"] {
            assert_eq!(Queueing::parse(s).to_string(), s);
        }
    }

    #[test]
    fn lun_decoding() {
        assert_eq!(decode_lun_hex("0x0000000000000000"), Some(0));
        assert_eq!(decode_lun_hex("0x0001000000000000"), Some(1));
        assert_eq!(decode_lun_hex("0x000e000000000000"), Some(14));
        assert_eq!(decode_lun_hex("0x4001000000000000"), Some(0x4001));
        assert_eq!(decode_lun_hex("0x0001000200000000"), Some(1 | (2 << 16)));
        assert_eq!(decode_lun_hex("0xffffffffffffffff"), None);
        assert_eq!(decode_lun_hex("0x01"), None);
        assert_eq!(decode_lun_hex("zz"), None);
        let mut p = Path::new("sdc");
        p.hcil = Some("3:0:0:7".into());
        assert_eq!(p.lun(), Some(7));
    }

    #[test]
    fn sysfs_names() {
        assert!(valid_sysfs("dm-0"));
        assert!(valid_sysfs("dm-123"));
        for bad in [
            "undef",
            "dm-",
            "dm-1/../../x",
            "../dm-1",
            "dm-12345678901",
            "sda",
        ] {
            assert!(!valid_sysfs(bad), "{bad}");
        }
    }
}
