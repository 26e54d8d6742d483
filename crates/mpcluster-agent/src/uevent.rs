//! Event-driven collection: the kernel's uevents (netlink `NETLINK_KOBJECT_UEVENT`) for the
//! block devices the agent collects from wake the agent loop at once, instead of waiting for
//! the next tick. Polling stays: events only make a collection come sooner.
//!
//! dm-multipath announces every path it fails or reinstates with a `change` uevent on the map
//! (`DM_ACTION=PATH_FAILED` / `PATH_REINSTATED`, `DM_UUID=mpath-<wwid>`), whether the kernel
//! failed the path on an I/O error or multipathd's checker told it to; a map reload (a path
//! added or removed, a reconfigure) ends with a `change` on resume (with `DM_COOKIE` only).
//! Paths come and go with `add` / `remove` of their disks. The test messages are real ones,
//! captured in the lab (docs/LAB.md).
//!
//! - [`parse`]: one kernel message (`ACTION@DEVPATH\0KEY=VALUE\0...`) into a [`Uevent`], pure;
//!   udev's own re-broadcasts (`libudev` header) are not kernel messages and are refused.
//! - [`TriggerRule`]: whether an event can change what the agent reports (pure; the devices
//!   of the last collection are its input).
//! - [`Debounce`]: a burst of events (a reload sends several) is one collection, a short
//!   while after the first event.
//! - [`UeventListener`]: the socket (rustix), read on a thread of its own; [`UeventListener::spawn`]
//!   returns `None` (logged) when the socket cannot be opened, e.g. unprivileged or in a
//!   container without netlink: the agent then only polls.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The default debounce: the collection starts this long after the first event of a burst.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);

/// One kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// `add`, `remove`, `change`, `move`, `online`, `offline`, `bind`, `unbind`.
    pub action: String,
    /// The sysfs path below `/sys` (`/devices/virtual/block/dm-0`).
    pub devpath: String,
    /// The environment (`SUBSYSTEM`, `DEVNAME`, `DEVTYPE`, `DM_ACTION`, ...).
    pub env: BTreeMap<String, String>,
}

impl Uevent {
    /// One environment value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// The kernel device name: `DEVNAME`, else the devpath's last component.
    pub fn kernel_name(&self) -> &str {
        match self.get("DEVNAME") {
            Some(name) => name.rsplit('/').next().unwrap_or(name),
            None => self.devpath.rsplit('/').next().unwrap_or(&self.devpath),
        }
    }
}

/// Why a message is not a kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UeventError {
    /// udev's re-broadcast (`libudev` magic header), not the kernel's message.
    #[error("a udev monitor message, not a kernel uevent")]
    Udev,
    /// The header is not `ACTION@DEVPATH`.
    #[error("no ACTION@DEVPATH header")]
    Header,
    /// Not UTF-8.
    #[error("not UTF-8")]
    Encoding,
}

/// Parse one kernel uevent message: `ACTION@DEVPATH\0KEY=VALUE\0...`. Entries without `=`
/// are skipped; `ACTION` / `DEVPATH` in the environment win over the header's (they are the
/// same in every kernel message).
pub fn parse(message: &[u8]) -> Result<Uevent, UeventError> {
    if message.starts_with(b"libudev\0") {
        return Err(UeventError::Udev);
    }
    let mut fields = message.split(|&b| b == 0).filter(|f| !f.is_empty());
    let header = fields.next().ok_or(UeventError::Header)?;
    let header = std::str::from_utf8(header).map_err(|_| UeventError::Encoding)?;
    let (action, devpath) = header.split_once('@').ok_or(UeventError::Header)?;
    if action.is_empty() || !devpath.starts_with('/') {
        return Err(UeventError::Header);
    }
    let mut env = BTreeMap::new();
    for field in fields {
        let Ok(field) = std::str::from_utf8(field) else {
            continue;
        };
        if let Some((k, v)) = field.split_once('=') {
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok(Uevent {
        action: env
            .get("ACTION")
            .cloned()
            .unwrap_or_else(|| action.to_owned()),
        devpath: env
            .get("DEVPATH")
            .cloned()
            .unwrap_or_else(|| devpath.to_owned()),
        env,
    })
}

/// Whether an event can change what the agent reports, given the devices of the last
/// collection (the maps' `dm-N` and the paths' kernel names).
///
/// - only `SUBSYSTEM=block`, never partitions;
/// - a multipath map (`dm-N`): `change` with `DM_ACTION` `PATH_FAILED` / `PATH_REINSTATED`
///   (any map: they carry `DM_TARGET=multipath`); any other `change` (a reload: path added or
///   removed, reconfigure) of a map the agent reported or whose `DM_UUID` starts with
///   `mpath-` (the resume after a reload carries only `DM_COOKIE`, so the known devices
///   matter); `remove` of a map the agent reported;
/// - a path device (`sd*`, `nvme*`, and any device the agent reported as a path): `add`
///   (it may join a map), `remove` and `change` of a device the agent reported;
/// - nothing else (the root disk, loop devices, other dm targets).
#[derive(Debug, Clone, Default)]
pub struct TriggerRule {
    known: BTreeSet<String>,
}

/// Why an event triggers a collection (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// dm-multipath failed a path.
    PathFailed,
    /// dm-multipath reinstated a path.
    PathReinstated,
    /// A multipath map changed otherwise (reload) or went away.
    MapChanged,
    /// A path device appeared, went away or changed.
    PathDevice,
}

impl TriggerRule {
    /// A rule knowing these devices (kernel names: `dm-3`, `sdc`, `nvme0n1`).
    pub fn new(known: impl IntoIterator<Item = String>) -> Self {
        TriggerRule {
            known: known.into_iter().collect(),
        }
    }

    /// Replace the known devices (after a collection).
    pub fn set_known(&mut self, known: impl IntoIterator<Item = String>) {
        self.known = known.into_iter().collect();
    }

    /// Whether (and why) `event` should make the agent collect now.
    pub fn check(&self, event: &Uevent) -> Option<Trigger> {
        if event.get("SUBSYSTEM") != Some("block") || event.get("DEVTYPE") == Some("partition") {
            return None;
        }
        let name = event.kernel_name();
        let known = self.known.contains(name);
        let action = event.action.as_str();
        if name.starts_with("dm-") {
            let multipath = event
                .get("DM_UUID")
                .is_some_and(|u| u.starts_with("mpath-"))
                || event.get("DM_TARGET") == Some("multipath");
            return match (action, event.get("DM_ACTION")) {
                ("change", Some("PATH_FAILED")) => Some(Trigger::PathFailed),
                ("change", Some("PATH_REINSTATED")) => Some(Trigger::PathReinstated),
                ("change", _) if multipath || known => Some(Trigger::MapChanged),
                ("remove", _) if known => Some(Trigger::MapChanged),
                _ => None,
            };
        }
        let path_like = name.starts_with("sd") || name.starts_with("nvme") || known;
        match action {
            "add" if path_like => Some(Trigger::PathDevice),
            "remove" | "change" | "offline" | "online" if known => Some(Trigger::PathDevice),
            _ => None,
        }
    }
}

/// The kernel names of the maps and paths in a node report (what [`TriggerRule`] knows).
pub fn known_devices(report: &mpcluster_core::multipathd::NodeReport) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for map in &report.maps {
        if let Some(dm) = &map.sysfs {
            names.insert(dm.clone());
        }
        for group in &map.path_groups {
            for path in &group.paths {
                names.insert(path.dev.clone());
            }
        }
    }
    names
}

/// Coalesces a burst of triggering events into one wake-up: the first event arms a deadline
/// `delay` later; events until then join it. Pure (time is passed in), so it is tested
/// without sleeping.
#[derive(Debug, Clone)]
pub struct Debounce {
    delay: Duration,
    deadline: Option<Instant>,
}

impl Debounce {
    /// A debounce of `delay`.
    pub fn new(delay: Duration) -> Self {
        Debounce {
            delay,
            deadline: None,
        }
    }

    /// A triggering event at `now`; returns the (possibly earlier armed) deadline.
    pub fn event(&mut self, now: Instant) -> Instant {
        *self.deadline.get_or_insert(now + self.delay)
    }

    /// The armed deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the deadline has passed at `now`; disarms it when it has.
    pub fn fire(&mut self, now: Instant) -> bool {
        match self.deadline {
            Some(d) if now >= d => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }
}

/// The uevent socket and its thread: wakes [`UeventListener::wake`] (debounced) on every
/// triggering event. Dropping it stops the thread (within a second).
#[derive(Debug)]
pub struct UeventListener {
    wake: Arc<Notify>,
    rule: Arc<Mutex<TriggerRule>>,
    stop: Arc<AtomicBool>,
}

impl Drop for UeventListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The kernel's uevent multicast group (udev's own re-broadcasts go to group 2).
const KERNEL_GROUP: u32 = 1;

/// How long one blocking read waits at most (the thread looks at its stop flag this often).
const IDLE_WAIT: Duration = Duration::from_secs(1);

fn open_socket() -> std::io::Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, netlink};
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::KOBJECT_UEVENT),
    )?;
    // A large receive buffer: a burst (many paths at once) must not overflow it. The forced
    // size needs CAP_NET_ADMIN; the plain one is capped by rmem_max, which is fine.
    if rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, 4 << 20).is_err() {
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 1 << 20);
    }
    rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, KERNEL_GROUP))?;
    Ok(fd)
}

/// What one read from the socket gave.
enum Received {
    /// A message from the kernel (sender port 0).
    Kernel(usize),
    /// From a process (not trusted: anyone may send to the group on old kernels).
    Other,
    /// The socket's buffer overflowed: events were lost.
    Overflow,
    /// Nothing within the wait.
    Nothing,
}

fn receive(fd: &OwnedFd, buf: &mut [u8], wait: Duration) -> std::io::Result<Received> {
    use rustix::io::Errno;
    use rustix::net::{RecvFlags, netlink::SocketAddrNetlink, sockopt};
    // SO_RCVTIMEO: zero would mean "forever".
    sockopt::set_socket_timeout(
        fd,
        sockopt::Timeout::Recv,
        Some(wait.max(Duration::from_millis(1))),
    )?;
    match rustix::net::recvfrom(fd, &mut *buf, RecvFlags::empty()) {
        Ok((n, _, from)) => {
            let kernel = from
                .and_then(|a| SocketAddrNetlink::try_from(a).ok())
                .is_some_and(|a| a.pid() == 0);
            Ok(if kernel {
                Received::Kernel(n.min(buf.len()))
            } else {
                Received::Other
            })
        }
        Err(Errno::NOBUFS) => Ok(Received::Overflow),
        Err(Errno::AGAIN | Errno::INTR) => Ok(Received::Nothing),
        Err(e) => Err(e.into()),
    }
}

impl UeventListener {
    /// Open the uevent socket and start listening on a thread of its own. `None` when the
    /// socket cannot be opened: logged, and the agent polls only.
    pub fn spawn(debounce: Duration) -> Option<UeventListener> {
        let fd = match open_socket() {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen to kernel uevents (netlink); collecting on the interval only");
                return None;
            }
        };
        let wake = Arc::new(Notify::new());
        let rule = Arc::new(Mutex::new(TriggerRule::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let listener = Listener {
            fd,
            wake: wake.clone(),
            rule: rule.clone(),
            stop: stop.clone(),
            debounce: Debounce::new(debounce),
        };
        if let Err(e) = std::thread::Builder::new()
            .name("uevents".into())
            .spawn(move || listener.run())
        {
            tracing::warn!(error = %e, "cannot start the uevent thread; collecting on the interval only");
            return None;
        }
        tracing::info!("listening to kernel uevents: path failures are collected at once");
        Some(UeventListener { wake, rule, stop })
    }

    /// Notified (debounced) when a triggering event came in.
    pub fn wake(&self) -> &Notify {
        &self.wake
    }

    /// Tell the rule which devices the last collection saw.
    pub fn set_known(&self, known: BTreeSet<String>) {
        if let Ok(mut rule) = self.rule.lock() {
            rule.set_known(known);
        }
    }
}

struct Listener {
    fd: OwnedFd,
    wake: Arc<Notify>,
    rule: Arc<Mutex<TriggerRule>>,
    stop: Arc<AtomicBool>,
    debounce: Debounce,
}

impl Listener {
    fn run(mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        while !self.stop.load(Ordering::Relaxed) {
            let wait = match self.debounce.deadline() {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => IDLE_WAIT,
            };
            let triggered = match receive(&self.fd, &mut buf, wait) {
                Ok(Received::Kernel(n)) => self.triggers(&buf[..n]),
                Ok(Received::Other | Received::Nothing) => false,
                // Events were lost: one of them may have mattered.
                Ok(Received::Overflow) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the uevent socket failed; collecting on the interval only");
                    return;
                }
            };
            let now = Instant::now();
            if triggered {
                self.debounce.event(now);
            }
            if self.debounce.fire(now) {
                self.wake.notify_one();
            }
        }
    }

    fn triggers(&self, message: &[u8]) -> bool {
        let Ok(event) = parse(message) else {
            return false;
        };
        let trigger = self.rule.lock().ok().and_then(|r| r.check(&event));
        if let Some(trigger) = trigger {
            tracing::debug!(?trigger, action = %event.action, device = event.kernel_name(), "uevent");
        }
        trigger.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(parts: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for p in parts {
            v.extend_from_slice(p.as_bytes());
            v.push(0);
        }
        v
    }

    // Kernel messages captured in the lab (scripts/lab.sh, docs/LAB.md): Debian kernel
    // 6.1.0-50-amd64 (6.1.176-1), multipath-tools 0.9.4, scsi_debug paths; read from a
    // NETLINK_KOBJECT_UEVENT socket bound to group 1 by lab/guest/scenarios.py, byte-exact.

    /// dm-multipath failed a path (the kernel, on a direct read of the map after
    /// `echo offline > /sys/block/sdb/device/state`).
    const PATH_FAILED: &[u8] = b"change@/devices/virtual/block/dm-1\0ACTION=change\0DEVPATH=/devices/virtual/block/dm-1\0SUBSYSTEM=block\0DM_TARGET=multipath\0DM_ACTION=PATH_FAILED\0DM_SEQNUM=1\0DM_PATH=8:16\0DM_NR_VALID_PATHS=2\0DM_NAME=1Linux_scsi_debug_2000\0DM_UUID=mpath-1Linux_scsi_debug_2000\0MAJOR=253\0MINOR=1\0DEVNAME=dm-1\0DEVTYPE=disk\0DISKSEQ=26\0SEQNUM=1778\0";
    /// multipathd's checker reinstated a path (`echo running > .../state`).
    const PATH_REINSTATED: &[u8] = b"change@/devices/virtual/block/dm-1\0ACTION=change\0DEVPATH=/devices/virtual/block/dm-1\0SUBSYSTEM=block\0DM_TARGET=multipath\0DM_ACTION=PATH_REINSTATED\0DM_SEQNUM=6\0DM_PATH=8:128\0DM_NR_VALID_PATHS=3\0DM_NAME=1Linux_scsi_debug_2000\0DM_UUID=mpath-1Linux_scsi_debug_2000\0MAJOR=253\0MINOR=1\0DEVNAME=dm-1\0DEVTYPE=disk\0DISKSEQ=26\0SEQNUM=1781\0";
    /// A map resumed after a reload (multipathd's reconfigure): no DM_UUID, no DM_NAME.
    const MAP_RELOAD: &[u8] = b"change@/devices/virtual/block/dm-0\0ACTION=change\0DEVPATH=/devices/virtual/block/dm-0\0SUBSYSTEM=block\0DM_COOKIE=6291456\0MAJOR=253\0MINOR=0\0DEVNAME=dm-0\0DEVTYPE=disk\0DISKSEQ=25\0SEQNUM=1775\0";
    /// A path's SCSI device deleted (`echo 1 > /sys/block/sdj/device/delete`).
    const PATH_REMOVE: &[u8] = b"remove@/devices/pseudo_0/adapter4/host6/target6:0:0/6:0:0:1/block/sdj\0ACTION=remove\0DEVPATH=/devices/pseudo_0/adapter4/host6/target6:0:0/6:0:0:1/block/sdj\0SUBSYSTEM=block\0MAJOR=8\0MINOR=144\0DEVNAME=sdj\0DEVTYPE=disk\0DISKSEQ=22\0SEQNUM=1789\0";

    fn path_failed() -> Vec<u8> {
        PATH_FAILED.to_vec()
    }

    #[test]
    fn the_captured_messages_trigger() {
        // Knowing the devices of the last collection, as the agent does.
        let r = TriggerRule::new(["dm-0", "dm-1", "sdb", "sdj"].map(String::from));
        let check = |m: &[u8]| r.check(&parse(m).unwrap());
        assert_eq!(check(PATH_FAILED), Some(Trigger::PathFailed));
        assert_eq!(check(PATH_REINSTATED), Some(Trigger::PathReinstated));
        assert_eq!(check(MAP_RELOAD), Some(Trigger::MapChanged));
        assert_eq!(check(PATH_REMOVE), Some(Trigger::PathDevice));
        // Knowing nothing yet: path failures still count; a reload or a removal of devices
        // the agent never reported does not.
        let r = TriggerRule::default();
        let check = |m: &[u8]| r.check(&parse(m).unwrap());
        assert_eq!(check(PATH_FAILED), Some(Trigger::PathFailed));
        assert_eq!(check(PATH_REINSTATED), Some(Trigger::PathReinstated));
        assert_eq!(check(MAP_RELOAD), None);
        assert_eq!(check(PATH_REMOVE), None);
    }

    #[test]
    fn parses_a_kernel_message() {
        let e = parse(&path_failed()).unwrap();
        assert_eq!(e.action, "change");
        assert_eq!(e.devpath, "/devices/virtual/block/dm-1");
        assert_eq!(e.get("DM_ACTION"), Some("PATH_FAILED"));
        assert_eq!(e.get("DM_PATH"), Some("8:16"));
        assert_eq!(e.get("DM_UUID"), Some("mpath-1Linux_scsi_debug_2000"));
        assert_eq!(e.kernel_name(), "dm-1");
        assert_eq!(e.env.len(), 16);
        let e = parse(PATH_REMOVE).unwrap();
        assert_eq!((e.action.as_str(), e.kernel_name()), ("remove", "sdj"));
    }

    #[test]
    fn refuses_udev_messages_and_garbage() {
        let mut udev = b"libudev\0".to_vec();
        udev.extend_from_slice(&[0xfe, 0xed, 0xca, 0xfe]);
        udev.extend_from_slice(&path_failed());
        assert_eq!(parse(&udev), Err(UeventError::Udev));
        assert_eq!(parse(b""), Err(UeventError::Header));
        assert_eq!(parse(b"\0\0"), Err(UeventError::Header));
        assert_eq!(parse(b"change\0ACTION=change\0"), Err(UeventError::Header));
        assert_eq!(parse(b"@/devices\0"), Err(UeventError::Header));
        assert_eq!(parse(b"change@relative\0"), Err(UeventError::Header));
        assert_eq!(parse(b"chan\xffge@/d\0"), Err(UeventError::Encoding));
    }

    #[test]
    fn tolerates_odd_entries_and_a_missing_trailing_nul() {
        let e = parse(b"add@/devices/x/block/sdc\0NOEQUALS\0K=V=W\0\xff=1\0DEVNAME=sdc").unwrap();
        assert_eq!(e.action, "add");
        assert_eq!(e.get("K"), Some("V=W"));
        assert_eq!(e.get("DEVNAME"), Some("sdc"));
        assert_eq!(e.kernel_name(), "sdc");
        // No DEVNAME: the devpath's last component.
        let e = parse(b"remove@/devices/platform/host3/block/sdq\0SUBSYSTEM=block\0").unwrap();
        assert_eq!(e.kernel_name(), "sdq");
    }

    fn event(action: &str, name: &str, extra: &[&str]) -> Uevent {
        let mut parts = vec![
            format!("{action}@/devices/virtual/block/{name}"),
            format!("ACTION={action}"),
            "SUBSYSTEM=block".to_owned(),
            format!("DEVNAME={name}"),
        ];
        parts.extend(extra.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        parse(&msg(&refs)).unwrap()
    }

    fn rule() -> TriggerRule {
        TriggerRule::new(["dm-0", "sdc", "sde", "sdi", "nvme0n1"].map(String::from))
    }

    #[test]
    fn path_failures_and_reinstatements_trigger() {
        let r = TriggerRule::default();
        assert_eq!(
            r.check(&parse(&path_failed()).unwrap()),
            Some(Trigger::PathFailed)
        );
        let e = event(
            "change",
            "dm-7",
            &["DM_ACTION=PATH_REINSTATED", "DM_TARGET=multipath"],
        );
        assert_eq!(r.check(&e), Some(Trigger::PathReinstated));
    }

    #[test]
    fn map_reloads_and_removals_trigger() {
        let r = rule();
        let reload = event("change", "dm-3", &["DM_UUID=mpath-360014051", "DM_NAME=x"]);
        assert_eq!(r.check(&reload), Some(Trigger::MapChanged));
        assert_eq!(
            r.check(&event("change", "dm-0", &[])),
            Some(Trigger::MapChanged)
        );
        assert_eq!(
            r.check(&event("remove", "dm-0", &[])),
            Some(Trigger::MapChanged)
        );
        // Not a multipath map: an LVM volume, an unknown dm device going away.
        assert_eq!(
            r.check(&event("change", "dm-5", &["DM_UUID=LVM-abc"])),
            None
        );
        assert_eq!(r.check(&event("remove", "dm-5", &[])), None);
        assert_eq!(r.check(&event("add", "dm-5", &[])), None);
    }

    #[test]
    fn path_devices_trigger() {
        let r = rule();
        assert_eq!(
            r.check(&event("add", "sdz", &["DEVTYPE=disk"])),
            Some(Trigger::PathDevice)
        );
        assert_eq!(
            r.check(&event("add", "nvme1n1", &[])),
            Some(Trigger::PathDevice)
        );
        assert_eq!(
            r.check(&event("remove", "sdc", &["DEVTYPE=disk"])),
            Some(Trigger::PathDevice)
        );
        assert_eq!(
            r.check(&event("change", "sde", &[])),
            Some(Trigger::PathDevice)
        );
        // A disk the agent never reported changing or going: not ours.
        assert_eq!(r.check(&event("remove", "sdy", &[])), None);
        assert_eq!(r.check(&event("change", "sdy", &[])), None);
    }

    #[test]
    fn other_events_do_not_trigger() {
        let r = rule();
        // Partitions, the root disk, loop devices, other subsystems.
        assert_eq!(r.check(&event("add", "sdc1", &["DEVTYPE=partition"])), None);
        assert_eq!(r.check(&event("add", "vda", &[])), None);
        assert_eq!(r.check(&event("change", "loop0", &[])), None);
        let scsi = parse(&msg(&[
            "change@/devices/platform/host3/target3:0:0/3:0:0:0",
            "ACTION=change",
            "SUBSYSTEM=scsi",
            "SDEV_MEDIA_CHANGE=1",
        ]))
        .unwrap();
        assert_eq!(r.check(&scsi), None);
        let no_subsystem = parse(b"change@/devices/virtual/block/dm-0\0DEVNAME=dm-0\0").unwrap();
        assert_eq!(r.check(&no_subsystem), None);
    }

    #[test]
    fn known_devices_follow_the_collection() {
        let mut r = TriggerRule::default();
        assert_eq!(r.check(&event("remove", "sdc", &[])), None);
        r.set_known(["sdc".to_owned()]);
        assert_eq!(
            r.check(&event("remove", "sdc", &[])),
            Some(Trigger::PathDevice)
        );
        // A known device whose name is neither sd* nor nvme* (e.g. a vd path).
        r.set_known(["vdb".to_owned()]);
        assert_eq!(
            r.check(&event("change", "vdb", &[])),
            Some(Trigger::PathDevice)
        );
    }

    #[test]
    fn known_devices_of_a_report() {
        let json = r#"{"maps":[{"name":"mpatha","wwid":"3600a","sysfs":"dm-0","state":"degraded",
            "paths-active":1,"paths-total":2,"path-groups":[{"paths":[{"dev":"sdc","usable":true},
            {"dev":"sde","usable":false}]}]}]}"#;
        let report: mpcluster_core::multipathd::NodeReport = serde_json::from_str(json).unwrap();
        let names: Vec<String> = known_devices(&report).into_iter().collect();
        assert_eq!(names, ["dm-0", "sdc", "sde"]);
    }

    #[test]
    fn debounce_coalesces_a_burst() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(150));
        assert_eq!(d.deadline(), None);
        assert!(!d.fire(t0));
        assert_eq!(d.event(t0), t0 + ms(150));
        // Later events of the burst join the armed deadline.
        assert_eq!(d.event(t0 + ms(100)), t0 + ms(150));
        assert!(!d.fire(t0 + ms(149)));
        assert!(d.fire(t0 + ms(150)));
        // Disarmed: nothing more until the next event.
        assert!(!d.fire(t0 + ms(400)));
        assert_eq!(d.event(t0 + ms(500)), t0 + ms(650));
        // A zero debounce fires at once.
        let mut z = Debounce::new(Duration::ZERO);
        z.event(t0);
        assert!(z.fire(t0));
    }

    #[test]
    fn listener_opens_or_falls_back() {
        // As root this opens the socket; unprivileged or without netlink it must just be
        // `None` (polling only), never a panic.
        let listener = UeventListener::spawn(DEFAULT_DEBOUNCE);
        if let Some(l) = listener {
            l.set_known(["dm-0".to_owned()].into());
            drop(l);
        }
    }
}
