//! Crash-safe file primitives for the embedded store (blocking; call from `spawn_blocking`).
//!
//! - [`atomic_write`]: temp file next to the target (`.<target>.<pid>.<random>.tmp`, mode
//!   0600) + `fsync` + `rename` over the target + `fsync` of the directory. A reader sees the
//!   old or the new content, never a mix; after a crash the target holds one of them.
//! - [`remove_durable`]: `unlink` + `fsync` of the directory.
//! - [`DirLock`]: an exclusive `flock` on a lock file, held for a read-compare-write across
//!   processes.
//! - [`remove_stale_temp_files`]: temp files of writers that died mid-write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// Suffix of every temp file.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Create `dir` (and missing parents) with mode 0700.
pub(crate) fn create_dir_private(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::io(dir, e))
}

/// Read a file; `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// `fsync` a directory so a rename or unlink in it survives a crash.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Replace `path` with `content` crash-safely (see the module docs). On error the target is
/// untouched and the temp file removed.
pub(crate) fn atomic_write(path: &Path, content: &[u8]) -> Result<(), StoreError> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.{}.", std::process::id());
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| StoreError::io(dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    tmp.write_all(content)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| StoreError::io(&tmp_path, e))?;
    // On failure `persist` hands the temp file back; dropping it removes it.
    tmp.persist(path)
        .map_err(|e| StoreError::io(path, e.error))?;
    fsync_dir(dir)
}

/// Remove `path` durably; `Ok(false)` if it did not exist.
pub(crate) fn remove_durable(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => {
            fsync_dir(parent_of(path))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// An exclusive `flock` on a lock file, released on drop (closing the file).
///
/// `flock` locks belong to the open file description, so two threads of one process that
/// each take a `DirLock` exclude each other as two processes do.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Block until the lock on `path` (created 0600 if missing) is ours.
    pub(crate) fn acquire(path: &Path) -> Result<DirLock, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::io(path, e))?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(StoreError::io(path, e.into())),
            }
        }
    }
}

/// The writer PID encoded in a temp file name (`.<target>.<pid>.<random>.tmp`).
fn temp_file_pid(name: &str) -> Option<i32> {
    let body = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let (rest, _random) = body.rsplit_once('.')?;
    let (_target, pid) = rest.rsplit_once('.')?;
    pid.parse().ok()
}

/// Whether a file name is one of our temp files.
pub(crate) fn is_temp_name(name: &str) -> bool {
    temp_file_pid(name).is_some()
}

fn process_is_alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        None => false,
        // EPERM: it exists but belongs to someone else.
        Some(p) => !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        ),
    }
}

/// Remove temp files in `dir` left by writers that no longer run (they crashed between
/// creating and renaming). Returns the removed paths. Temp files of live writers stay.
pub(crate) fn remove_stale_temp_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_file_pid) else {
            continue;
        };
        if process_is_alive(pid) {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn temp_names() {
        assert_eq!(temp_file_pid(".multipath.123.AbC9x.tmp"), Some(123));
        assert_eq!(temp_file_pid(".node-a.example.com.77.zz.tmp"), Some(77));
        assert_eq!(temp_file_pid("multipath"), None);
        assert_eq!(temp_file_pid(".lock"), None);
        assert_eq!(temp_file_pid(".x.y.tmp"), None);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("doc");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("doc")]);
        assert!(remove_durable(&p).unwrap());
        assert!(!remove_durable(&p).unwrap());
    }

    #[test]
    fn stale_temp_files_of_dead_writers_go() {
        let dir = tempfile::tempdir().unwrap();
        // PID 2^22+1 is above the kernel limit (PID_MAX_LIMIT = 2^22): never alive.
        let dead = dir.path().join(".doc.4194305.abc.tmp");
        let live = dir
            .path()
            .join(format!(".doc.{}.abc.tmp", std::process::id()));
        fs::write(&dead, "x").unwrap();
        fs::write(&live, "x").unwrap();
        let removed = remove_stale_temp_files(dir.path()).unwrap();
        assert_eq!(removed, vec![dead.clone()]);
        assert!(live.exists());
    }
}
