//! Crash-safe file primitives for the file-backed stores (blocking; call from
//! [`super::blocking`]).
//!
//! - [`stage`] + [`Staged::commit`] (or both at once, [`atomic_write`]): the content goes whole
//!   into a temp file next to the target, which is then renamed over the target. A reader sees
//!   the old or the new content, never a mix; after a crash the target holds one of them. With
//!   [`WriteOptions::fsync`] the temp file and the directory are synced too (local disks; on
//!   pmxcfs every request is already committed cluster-wide when it returns).
//! - [`remove_durable`]: `unlink` (+ `fsync` of the directory).
//! - [`remove_stale_temp_files`]: temp files of writers that died between creating and
//!   renaming; which ones are stale is the caller's rule ([`hidden_temp_of_dead_writer`] for
//!   one host, [`proxmox_temp_older_than`] for a cluster filesystem).
//!
//! Temp names never pass the store naming rule (`[a-z0-9-]`: no '.'), so listings that accept
//! only valid names skip them.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::StoreError;

/// Suffix of every [`TempStyle::Hidden`] temp file.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Marker inside every [`TempStyle::Proxmox`] temp file name.
const PROXMOX_TEMP_MARK: &str = ".tmp.";

/// How temp files are named (always in the target's directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TempStyle {
    /// `.<target>.<pid>.<random>.tmp`: hidden; the writer's PID tells whether it still runs
    /// (one host: the embedded store).
    Hidden,
    /// `<target>.tmp.<pid>.<random>`: Proxmox's own `file_set_contents` naming
    /// (`<file>.tmp.<pid>`) plus a random part, so threads of one process never collide.
    Proxmox,
}

/// How [`stage`] and [`atomic_write`] write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteOptions {
    /// Temp file naming.
    pub(crate) style: TempStyle,
    /// `fsync` the temp file before the rename and the directory after it.
    pub(crate) fsync: bool,
}

/// Create `dir` (and missing parents) with mode 0700 (pmxcfs ignores the mode).
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

/// A temp file holding the whole new content of `target`, not yet renamed over it. Dropping
/// it removes the temp file and leaves the target untouched.
pub(crate) struct Staged {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
    fsync: bool,
}

impl Staged {
    /// Rename the temp file over the target (the one atomic step).
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        let Staged { tmp, target, fsync } = self;
        // On failure `persist` hands the temp file back; dropping it removes it.
        tmp.persist(&target)
            .map_err(|e| StoreError::io(&target, e.error))?;
        if fsync {
            fsync_dir(parent_of(&target))?;
        }
        Ok(())
    }
}

/// Write `content` whole into a temp file next to `path` (see the module docs). On error
/// nothing is left behind.
pub(crate) fn stage(path: &Path, content: &[u8], opts: WriteOptions) -> Result<Staged, StoreError> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    let mut builder = tempfile::Builder::new();
    let (prefix, suffix) = match opts.style {
        TempStyle::Hidden => (format!(".{name}.{pid}."), TEMP_SUFFIX),
        TempStyle::Proxmox => (format!("{name}{PROXMOX_TEMP_MARK}{pid}."), ""),
    };
    builder.prefix(&prefix).suffix(suffix);
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| StoreError::io(dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    // One write call for the whole buffer (`write_all` loops only on short writes).
    tmp.write_all(content)
        .and_then(|()| {
            if opts.fsync {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .map_err(|e| StoreError::io(&tmp_path, e))?;
    Ok(Staged {
        tmp,
        target: path.to_path_buf(),
        fsync: opts.fsync,
    })
}

/// Replace `path` with `content` atomically: [`stage`], then [`Staged::commit`]. On error the
/// target is untouched and the temp file removed.
pub(crate) fn atomic_write(
    path: &Path,
    content: &[u8],
    opts: WriteOptions,
) -> Result<(), StoreError> {
    stage(path, content, opts)?.commit()
}

/// Remove `path` (durably with `fsync`); `Ok(false)` if it did not exist.
pub(crate) fn remove_durable(path: &Path, fsync: bool) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => {
            if fsync {
                fsync_dir(parent_of(path))?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// The writer PID encoded in a [`TempStyle::Hidden`] temp file name
/// (`.<target>.<pid>.<random>.tmp`).
fn temp_file_pid(name: &str) -> Option<i32> {
    let body = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let (rest, _random) = body.rsplit_once('.')?;
    let (_target, pid) = rest.rsplit_once('.')?;
    pid.parse().ok()
}

/// Whether a file name is one of our temp files (either style).
pub(crate) fn is_temp_name(name: &str) -> bool {
    temp_file_pid(name).is_some() || name.contains(PROXMOX_TEMP_MARK)
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

/// Stale-temp rule for one host: a [`TempStyle::Hidden`] temp file whose writer no longer
/// runs.
pub(crate) fn hidden_temp_of_dead_writer(name: &str, _meta: &fs::Metadata) -> bool {
    temp_file_pid(name).is_some_and(|pid| !process_is_alive(pid))
}

/// Stale-temp rule for a cluster filesystem, where the writer may be a process on another
/// node (its PID means nothing here): a [`TempStyle::Proxmox`] temp file not modified for
/// `age`. Writes take milliseconds, so any generous age works; clock skew between nodes only
/// shifts it.
pub(crate) fn proxmox_temp_older_than(name: &str, meta: &fs::Metadata, age: Duration) -> bool {
    if !name.contains(PROXMOX_TEMP_MARK) {
        return false;
    }
    let modified =
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(meta.mtime()).unwrap_or(0));
    SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|d| d > age)
}

/// Remove the temp files in `dir` that `is_stale` calls stale. Returns the removed paths.
pub(crate) fn remove_stale_temp_files(
    dir: &Path,
    is_stale: impl Fn(&str, &fs::Metadata) -> bool,
) -> Result<Vec<PathBuf>, StoreError> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_temp_name(&name) {
            continue;
        }
        let path = entry.path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        if !is_stale(&name, &meta) {
            continue;
        }
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

    const HIDDEN: WriteOptions = WriteOptions {
        style: TempStyle::Hidden,
        fsync: true,
    };

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn temp_names() {
        assert_eq!(temp_file_pid(".multipath.123.AbC9x.tmp"), Some(123));
        assert_eq!(temp_file_pid(".node-a.example.com.77.zz.tmp"), Some(77));
        assert_eq!(temp_file_pid("multipath"), None);
        assert_eq!(temp_file_pid(".lock"), None);
        assert_eq!(temp_file_pid(".x.y.tmp"), None);
        assert!(is_temp_name("multipath.tmp.123.aBc"));
        assert!(is_temp_name(".multipath.123.AbC9x.tmp"));
        assert!(!is_temp_name("multipath"));
        assert!(!is_temp_name("node-a.example.com"));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        for opts in [
            HIDDEN,
            WriteOptions {
                style: TempStyle::Proxmox,
                fsync: false,
            },
        ] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("doc");
            atomic_write(&p, b"one", opts).unwrap();
            atomic_write(&p, b"two", opts).unwrap();
            assert_eq!(fs::read(&p).unwrap(), b"two");
            assert_eq!(names(dir.path()), vec!["doc".to_owned()]);
            assert!(remove_durable(&p, opts.fsync).unwrap());
            assert!(!remove_durable(&p, opts.fsync).unwrap());
        }
    }

    #[test]
    fn staged_write_touches_nothing_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("doc");
        fs::write(&p, "old").unwrap();
        let opts = WriteOptions {
            style: TempStyle::Proxmox,
            fsync: false,
        };
        let staged = stage(&p, b"new", opts).unwrap();
        let during = names(dir.path());
        assert_eq!(during.len(), 2, "{during:?}");
        assert!(
            during[1].starts_with(&format!("doc.tmp.{}.", std::process::id())),
            "{during:?}"
        );
        assert_eq!(fs::read(&p).unwrap(), b"old");
        drop(staged);
        assert_eq!(names(dir.path()), vec!["doc".to_owned()]);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        stage(&p, b"new", opts).unwrap().commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
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
        let removed = remove_stale_temp_files(dir.path(), hidden_temp_of_dead_writer).unwrap();
        assert_eq!(removed, vec![dead.clone()]);
        assert!(live.exists());
    }

    #[test]
    fn old_proxmox_style_temp_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("multipath.tmp.4194305.abc");
        let fresh = dir.path().join("multipath.tmp.77.xyz");
        let value = dir.path().join("multipath");
        for p in [&old, &fresh, &value] {
            fs::write(p, "x").unwrap();
        }
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        // The value file is old too, but not a temp file.
        File::options()
            .write(true)
            .open(&value)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let removed = remove_stale_temp_files(dir.path(), |n, m| {
            proxmox_temp_older_than(n, m, Duration::from_secs(600))
        })
        .unwrap();
        assert_eq!(removed, vec![old]);
        assert!(fresh.exists() && value.exists());
    }
}
