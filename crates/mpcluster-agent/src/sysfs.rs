//! Thin sysfs reads. Entry point: [`read_map_size`].
//!
//! multipathd's JSON has no byte size for a map (only the rounded `%S` text such as `64M`),
//! so the agent reads `/sys/block/dm-N/size`, which the kernel reports in 512-byte sectors
//! regardless of the device's logical block size.

use std::num::ParseIntError;
use std::path::{Path, PathBuf};

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
}
