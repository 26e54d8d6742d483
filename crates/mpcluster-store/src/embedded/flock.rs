//! [`FileLock`]: the embedded store's compare-and-swap lock, an exclusive `flock(2)` on a
//! lock file. Fine on a local filesystem shared by the processes of one host; never used on
//! pmxcfs, which handles POSIX locks node-locally only (the pve store uses lock directories).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::StoreError;

/// An exclusive `flock` on a lock file, released on drop (closing the file).
///
/// `flock` locks belong to the open file description, so two threads of one process that
/// each take a `FileLock` exclude each other as two processes do.
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Block until the lock on `path` (created 0600 if missing) is ours.
    pub(crate) fn acquire(path: &Path) -> Result<FileLock, StoreError> {
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
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(StoreError::io(path, e.into())),
            }
        }
    }
}
