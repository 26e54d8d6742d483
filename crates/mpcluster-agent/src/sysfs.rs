//! Thin sysfs reads. Entry points: [`read_map_size`], [`read_path_info`].
//!
//! multipathd's JSON has no byte size for a map (only the rounded `%S` text such as `64M`),
//! so the agent reads `/sys/block/dm-N/size`, which the kernel reports in 512-byte sectors
//! regardless of the device's logical block size.
//!
//! Nor does it say which target port a path goes through where the transport does not tell it
//! (iSCSI: the target IQN and the initiator address, not the portal; NVMe-oF: nothing), so
//! [`read_path_info`] follows `/sys/block/<dev>/device` to the transport objects:
//! - iSCSI: the `sessionN` in the device path, its connection's `persistent_address` and
//!   `persistent_port` (`/sys/class/iscsi_connection/connectionN:C/`, kept through a
//!   session's recovery, when multipathd shows `[undef]`) and the session's `targetname`;
//! - FC: the `rport-H:C-R` in the device path, `/sys/class/fc_remote_ports/<rport>/port_name`
//!   and `node_name`;
//! - NVMe: `/sys/block/nvmeXnY/device` is the controller: its `address` and `subsysnqn`.

use std::num::ParseIntError;
use std::path::{Path, PathBuf};

use mpcluster_core::multipathd::PathSysfs;

/// Bytes per sysfs `size` unit.
pub const SECTOR_BYTES: u64 = 512;

/// Longest plausible `dm-N` name (`dm-` and up to 10 digits): bounds the input we accept.
const MAX_DM_NAME_LEN: usize = 13;

/// Why a map size could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    /// The name is not `dm-<digits>` (rejects path traversal and other block devices).
    #[error("invalid device-mapper kernel name {name:?} (expected dm-<number>)")]
    InvalidDmName {
        /// The name as given.
        name: String,
    },
    /// The size file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a sector count.
    #[error("unexpected content {content:?} in {} (expected a sector count)", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The start of the content.
        content: String,
        /// The integer parse error.
        #[source]
        source: ParseIntError,
    },
    /// The sector count does not fit a byte count in `u64`.
    #[error("{sectors} sectors in {} overflow a 64-bit byte count", .path.display())]
    Overflow {
        /// The file.
        path: PathBuf,
        /// The sector count read.
        sectors: u64,
    },
}

/// Whether `name` is a device-mapper kernel name: `dm-` followed by ASCII digits only.
pub fn is_dm_name(name: &str) -> bool {
    name.len() <= MAX_DM_NAME_LEN
        && name
            .strip_prefix("dm-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads `<sysfs_root>/block/<dm_name>/size` and returns the map size in bytes.
///
/// `sysfs_root` is `/sys` on a real host (a temp dir in tests); `dm_name` is the kernel
/// name from multipathd (`sysfs` in `show maps json`, `%d` in formats), e.g. `dm-0`.
pub fn read_map_size(sysfs_root: &Path, dm_name: &str) -> Result<u64, SysfsError> {
    if !is_dm_name(dm_name) {
        return Err(SysfsError::InvalidDmName {
            name: dm_name.chars().take(64).collect(),
        });
    }
    let path = sysfs_root.join("block").join(dm_name).join("size");
    let content = std::fs::read_to_string(&path).map_err(|source| SysfsError::Read {
        path: path.clone(),
        source,
    })?;
    let sectors: u64 = content.trim().parse().map_err(|source| SysfsError::Parse {
        path: path.clone(),
        content: content.chars().take(64).collect(),
        source,
    })?;
    sectors
        .checked_mul(SECTOR_BYTES)
        .ok_or(SysfsError::Overflow { path, sectors })
}

/// Longest kernel block device name accepted for a path (`sdabc`, `nvme12n3`).
const MAX_DEV_NAME_LEN: usize = 32;

/// Most bytes read from one sysfs attribute.
const MAX_ATTR_LEN: u64 = 1024;

/// Whether `dev` can be a path's kernel name: lower-case ASCII letters and digits only (no
/// `/`, no `..`), so it is safe to put into a sysfs path.
pub fn is_path_dev_name(dev: &str) -> bool {
    !dev.is_empty()
        && dev.len() <= MAX_DEV_NAME_LEN
        && dev
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// One sysfs attribute, trimmed; `None` when absent, unreadable, empty or not text.
fn read_attr(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MAX_ATTR_LEN).read_to_string(&mut text).ok()?;
    let text = text.trim();
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_owned())
}

/// `address:port`, IPv6 addresses in brackets.
fn portal(address: &str, port: Option<&str>) -> String {
    let address = if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_owned()
    };
    match port {
        Some(port) => format!("{address}:{port}"),
        None => address,
    }
}

/// What sysfs says about the target side of path `dev` (`sdc`, `nvme0n1`): best effort, every
/// field that cannot be read is `None` (a path of another transport has none of them).
pub fn read_path_info(sysfs_root: &Path, dev: &str) -> PathSysfs {
    let mut info = PathSysfs::default();
    if !is_path_dev_name(dev) {
        return info;
    }
    let device = sysfs_root.join("block").join(dev).join("device");
    if dev.starts_with("nvme") {
        info.nvme_address = read_attr(&device.join("address"));
        info.nqn = read_attr(&device.join("subsysnqn"));
        return info;
    }
    let Ok(real) = std::fs::canonicalize(&device) else {
        return info;
    };
    for component in real.components() {
        let name = component.as_os_str().to_string_lossy();
        if let Some(n) = name.strip_prefix("session")
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
        {
            info.iscsi_target = read_attr(
                &sysfs_root
                    .join("class/iscsi_session")
                    .join(name.as_ref())
                    .join("targetname"),
            );
            info.portal = iscsi_portal(sysfs_root, n);
        } else if name.starts_with("rport-") {
            let rport = sysfs_root.join("class/fc_remote_ports").join(name.as_ref());
            info.target_wwpn = read_attr(&rport.join("port_name"));
            info.target_wwnn = read_attr(&rport.join("node_name"));
        }
    }
    info
}

/// The portal of iSCSI session `session` (its digits): the first of its connections
/// (`connection<session>:<cid>`) with a `persistent_address`.
fn iscsi_portal(sysfs_root: &Path, session: &str) -> Option<String> {
    let dir = sysfs_root.join("class/iscsi_connection");
    let prefix = format!("connection{session}:");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let conn = dir.join(&n);
        let address = read_attr(&conn.join("persistent_address"))
            .or_else(|| read_attr(&conn.join("address")))?;
        let port =
            read_attr(&conn.join("persistent_port")).or_else(|| read_attr(&conn.join("port")));
        Some(portal(&address, port.as_deref()))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sysfs_with(name: &str, content: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("block").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("size"), content).unwrap();
        root
    }

    #[test]
    fn reads_sectors_as_bytes() {
        // 64 MiB scsi_debug LUN, as in the 0.9.4 fixtures.
        let root = sysfs_with("dm-0", "131072\n");
        assert_eq!(
            read_map_size(root.path(), "dm-0").unwrap(),
            64 * 1024 * 1024
        );
        let root = sysfs_with("dm-12", "0\n");
        assert_eq!(read_map_size(root.path(), "dm-12").unwrap(), 0);
    }

    #[test]
    fn rejects_names_that_are_not_dm_n() {
        let root = sysfs_with("dm-0", "1\n");
        for bad in [
            "",
            "dm-",
            "dm",
            "sda",
            "dm-0/../dm-0",
            "../dm-0",
            "dm-0/",
            "dm-a",
            "dm--1",
            "dm-+1",
            "DM-0",
            " dm-0",
            "dm-0\n",
            "dm-12345678901",
        ] {
            assert!(
                matches!(
                    read_map_size(root.path(), bad),
                    Err(SysfsError::InvalidDmName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(is_dm_name("dm-1234567890"));
    }

    #[test]
    fn missing_file_is_a_read_error_naming_the_path() {
        let root = tempfile::tempdir().unwrap();
        let err = read_map_size(root.path(), "dm-3").unwrap_err();
        assert!(matches!(err, SysfsError::Read { .. }));
        assert!(err.to_string().contains("block/dm-3/size"), "{err}");
    }

    #[test]
    fn garbage_and_overflow_are_reported() {
        let root = sysfs_with("dm-1", "lots\n");
        assert!(matches!(
            read_map_size(root.path(), "dm-1"),
            Err(SysfsError::Parse { .. })
        ));
        let root = sysfs_with("dm-1", "-5\n");
        assert!(matches!(
            read_map_size(root.path(), "dm-1"),
            Err(SysfsError::Parse { .. })
        ));
        let root = sysfs_with("dm-1", &format!("{}\n", u64::MAX));
        assert!(matches!(
            read_map_size(root.path(), "dm-1"),
            Err(SysfsError::Overflow { .. })
        ));
    }

    /// A constructed sysfs tree (not captured from a host): the layout of a Linux 6.1 host
    /// with one iSCSI session (two LUNs), one FC remote port and one NVMe/TCP controller.
    fn constructed_tree() -> tempfile::TempDir {
        use std::os::unix::fs::symlink;
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let write = |rel: &str, content: &str| {
            let p = r.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        };
        let link = |dev: &str, target: &str| {
            std::fs::create_dir_all(r.join(target)).unwrap();
            std::fs::create_dir_all(r.join("block").join(dev)).unwrap();
            symlink(r.join(target), r.join("block").join(dev).join("device")).unwrap();
        };
        // iSCSI session 4 on host 3, target 3:0:0, LUNs 0 and 1.
        let session = "devices/platform/host3/session4";
        link("sdc", &format!("{session}/target3:0:0/3:0:0:0"));
        link("sdd", &format!("{session}/target3:0:0/3:0:0:1"));
        write(
            "class/iscsi_session/session4/targetname",
            "iqn.2003-01.org.linux-iscsi.array:vm-disks\n",
        );
        write(
            "class/iscsi_connection/connection4:0/persistent_address",
            "10.0.0.1\n",
        );
        write(
            "class/iscsi_connection/connection4:0/persistent_port",
            "3260\n",
        );
        // An IPv6 session without a persistent address (older kernels: `address`/`port`).
        link("sde", "devices/platform/host5/session7/target5:0:0/5:0:0:0");
        write("class/iscsi_connection/connection7:0/address", "fd00::1\n");
        write("class/iscsi_connection/connection7:0/port", "3260\n");
        // FC: host 6, remote port rport-6:0-2.
        link(
            "sdf",
            "devices/pci0000:00/0000:3b:00.0/host6/rport-6:0-2/target6:0:0/6:0:0:1",
        );
        write(
            "class/fc_remote_ports/rport-6:0-2/port_name",
            "0x201000a098c1d2e3\n",
        );
        write(
            "class/fc_remote_ports/rport-6:0-2/node_name",
            "0x200000a098c1d2e3\n",
        );
        // NVMe/TCP: /sys/block/nvme1n1/device is the controller.
        write(
            "block/nvme1n1/device/address",
            "traddr=10.0.1.5,trsvcid=4420,src_addr=10.0.1.100\n",
        );
        write(
            "block/nvme1n1/device/subsysnqn",
            "nqn.2014-08.org.nvmexpress:uuid:f81d4fae\n",
        );
        // scsi_debug-like SCSI disk with no transport objects.
        link("sdg", "devices/pseudo_0/adapter0/host7/target7:0:0/7:0:0:0");
        root
    }

    #[test]
    fn path_info_from_a_constructed_tree() {
        let root = constructed_tree();
        let r = root.path();
        for dev in ["sdc", "sdd"] {
            let info = read_path_info(r, dev);
            assert_eq!(info.portal.as_deref(), Some("10.0.0.1:3260"), "{dev}");
            assert_eq!(
                info.iscsi_target.as_deref(),
                Some("iqn.2003-01.org.linux-iscsi.array:vm-disks")
            );
            assert!(info.target_wwpn.is_none() && info.nvme_address.is_none());
        }
        assert_eq!(
            read_path_info(r, "sde").portal.as_deref(),
            Some("[fd00::1]:3260")
        );
        let fc = read_path_info(r, "sdf");
        assert_eq!(fc.target_wwpn.as_deref(), Some("0x201000a098c1d2e3"));
        assert_eq!(fc.target_wwnn.as_deref(), Some("0x200000a098c1d2e3"));
        assert!(fc.portal.is_none());
        let nvme = read_path_info(r, "nvme1n1");
        assert_eq!(
            nvme.nvme_address.as_deref(),
            Some("traddr=10.0.1.5,trsvcid=4420,src_addr=10.0.1.100")
        );
        assert_eq!(
            nvme.nqn.as_deref(),
            Some("nqn.2014-08.org.nvmexpress:uuid:f81d4fae")
        );
        assert!(read_path_info(r, "sdg").is_empty());
        // Absent devices and hostile names read nothing (and never leave the tree).
        for dev in ["sdz", "", "../sdc", "sdc/..", "SDC", "-"] {
            assert!(read_path_info(r, dev).is_empty(), "{dev:?}");
        }
    }

    #[test]
    fn enriches_a_report() {
        use mpcluster_core::multipathd::{GroupReport, MapReport, NodeReport, PathReport};
        let root = constructed_tree();
        let path = |dev: &str| PathReport {
            dev: dev.into(),
            usable: false,
            ..PathReport::default()
        };
        let mut report = NodeReport {
            maps: vec![MapReport {
                name: "vm-disks".into(),
                wwid: mpcluster_core::Wwid::new("36001405aabbccdd").unwrap(),
                sysfs: None,
                size: None,
                state: mpcluster_core::MapState::Degraded,
                paths_active: 0,
                paths_total: 2,
                transport: None,
                queueing: false,
                paths_omitted: false,
                path_groups: vec![GroupReport {
                    group: Some(1),
                    state: None,
                    pri: None,
                    selector: None,
                    marginal: false,
                    paths: vec![path("sdc"), path("sdf")],
                }],
            }],
            errors: Vec::new(),
        };
        report.enrich_paths(|dev| Some(read_path_info(root.path(), dev)));
        let paths = &report.maps[0].path_groups[0].paths;
        assert_eq!(paths[0].portal.as_deref(), Some("10.0.0.1:3260"));
        assert_eq!(paths[1].target_wwpn.as_deref(), Some("0x201000a098c1d2e3"));
    }
}
