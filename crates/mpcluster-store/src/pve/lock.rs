//! pmxcfs-style lock directories ([`LockDirs`]): the pve store's compare-and-swap lock.
//!
//! pmxcfs has no cluster-wide `flock`/`fcntl` (the kernel handles them node-locally), so a
//! cluster lock is a directory `priv/lock/<id>`: `mkdir` takes it (EEXIST, decided in the
//! cluster's total order, means someone else holds it) and `rmdir` releases it. The rules
//! below follow `../shared/docs/proxmox.md` ("pmxcfs as a store", 3. Locking) and Proxmox's
//! own `cfs_lock_file` (`PVE::Cluster`):
//!
//! - **Waiting**: retry `mkdir` for at most [`PveOptions::lock_wait`](crate::PveOptions)
//!   (Proxmox: 10 s), then give up with [`StoreError::Unavailable`] (nothing written).
//! - **Stale locks** (a writer that died holding one): pmxcfs expires a lock 120 s
//!   (`CFS_LOCK_TIMEOUT`, memdb.c) after it first saw it, lazily: a waiter sends an unlock
//!   request with `utime(dir, 0, 0)` and the lowest node id removes the directory if it
//!   expired. On pmxcfs we do exactly that (once a second while waiting, as Proxmox does).
//!   On any other filesystem (a test root on a local disk) nobody else would, so the waiter
//!   removes a lock directory whose mtime is older than
//!   [`PveOptions::lock_timeout`](crate::PveOptions) itself; a short-lived `<id>.takeover`
//!   directory makes that removal exclusive and the lock is re-checked under it, so two
//!   waiters never both remove (and both take) the lock.
//! - **Holding**: Proxmox runs the locked code under `alarm(60)`, half the lock lifetime. A
//!   [`HeldLock`] likewise refuses to commit once it has been held for half of
//!   `lock_timeout` ([`HeldLock::check_fresh`]), so a writer stalled long enough for its lock to
//!   be taken over never overwrites the next writer's work. Locks are never renewed: a
//!   document write holds one for milliseconds.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tracing::warn;

use crate::StoreError;

/// pmxcfs's lock lifetime (`CFS_LOCK_TIMEOUT`, pve-cluster `src/pmxcfs/memdb.c`).
pub const PMXCFS_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// How long Proxmox's `cfs_lock_file` waits for a lock by default.
pub const PROXMOX_LOCK_WAIT: Duration = Duration::from_secs(10);

/// How stale locks go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// pmxcfs expires them itself when asked (`utime(dir, 0, 0)`).
    Pmxcfs,
    /// A plain directory: waiters remove expired locks (by mtime) themselves.
    Local,
}

/// The lock directory `priv/lock` of one pve root.
#[derive(Debug, Clone)]
pub(crate) struct LockDirs {
    pub(crate) dir: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) wait: Duration,
    pub(crate) expiry: Expiry,
}

/// A lock this process holds; released (`rmdir`) on drop.
#[derive(Debug)]
pub(crate) struct HeldLock {
    path: PathBuf,
    acquired: Instant,
    /// Committing is refused after this long.
    max_hold: Duration,
}

impl LockDirs {
    /// The lock directory for `id`.
    pub(crate) fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Take lock `id`, waiting at most `self.wait`. `store` names the store in errors.
    /// I/O errors are returned as [`StoreError::Io`] for the caller to interpret (pmxcfs
    /// without quorum answers EACCES).
    pub(crate) fn acquire(&self, id: &str, store: &str) -> Result<HeldLock, StoreError> {
        let path = self.path(id);
        let start = Instant::now();
        let mut delay = Duration::from_millis(5);
        let mut last_unlock_request: Option<Instant> = None;
        loop {
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    return Ok(HeldLock {
                        path,
                        acquired: Instant::now(),
                        max_hold: self.timeout / 2,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
            match self.expiry {
                Expiry::Pmxcfs => {
                    if last_unlock_request.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        last_unlock_request = Some(Instant::now());
                        request_unlock(&path);
                    }
                }
                Expiry::Local => self.take_over_if_expired(&path)?,
            }
            let waited = start.elapsed();
            if waited >= self.wait {
                let held_for = age(&path)
                    .map(|a| format!(", taken {} s ago", a.as_secs()))
                    .unwrap_or_default();
                return Err(StoreError::Unavailable {
                    store: store.to_owned(),
                    reason: format!(
                        "another writer holds the lock {}{held_for}; gave up after {:.1} s \
                         (a lock left by a crashed writer expires {} s after it was taken)",
                        path.display(),
                        waited.as_secs_f64(),
                        self.timeout.as_secs()
                    ),
                    source: None,
                });
            }
            std::thread::sleep(delay.min(self.wait - waited));
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// On a plain directory: remove `lock` if it expired, exclusively (see the module docs).
    fn take_over_if_expired(&self, lock: &Path) -> Result<(), StoreError> {
        let Some(seen) = metadata(lock)? else {
            return Ok(());
        };
        if !self.expired(&seen) {
            return Ok(());
        }
        let guard = lock.with_file_name(format!(
            "{}.takeover",
            lock.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        match fs::DirBuilder::new().mode(0o700).create(&guard) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Someone else is taking it over; their guard lives for microseconds unless
                // they died in between.
                if metadata(&guard)?.is_some_and(|m| self.expired(&m)) {
                    remove_dir(&guard)?;
                }
                return Ok(());
            }
            Err(e) => return Err(StoreError::io(&guard, e)),
        }
        // Under the guard: is it still the same expired lock (not one taken meanwhile)?
        let result = match metadata(lock) {
            Ok(Some(now))
                if now.ino() == seen.ino()
                    && now.mtime() == seen.mtime()
                    && now.mtime_nsec() == seen.mtime_nsec()
                    && self.expired(&now) =>
            {
                warn!(
                    lock = %lock.display(),
                    age_s = age_of(&now).as_secs(),
                    "taking over a lock left by a writer that did not release it"
                );
                remove_dir(lock)
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        remove_dir(&guard)?;
        result
    }

    fn expired(&self, meta: &fs::Metadata) -> bool {
        // Strictly greater, as pmxcfs.
        age_of(meta) > self.timeout
    }
}

impl HeldLock {
    /// `Ok` while committing under this lock is still safe (held for less than half the lock
    /// timeout); [`StoreError::Unavailable`] otherwise, and the caller must not commit.
    pub(crate) fn check_fresh(&self, store: &str) -> Result<(), StoreError> {
        let held = self.acquired.elapsed();
        if held < self.max_hold {
            return Ok(());
        }
        Err(StoreError::Unavailable {
            store: store.to_owned(),
            reason: format!(
                "held the lock {} for {:.1} s, too long to commit safely (another writer may \
                 have taken it over); nothing was written",
                self.path.display(),
                held.as_secs_f64()
            ),
            source: None,
        })
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        match fs::remove_dir(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => warn!(
                lock = %self.path.display(),
                "our lock was gone when we released it (taken over as stale?)"
            ),
            Err(e) => warn!(
                lock = %self.path.display(),
                error = &e as &dyn std::error::Error,
                "cannot release a lock; it expires by itself"
            ),
        }
    }
}

/// pmxcfs's unlock request: `utime(dir, 0, 0)`. pmxcfs answers EACCES and, if the lock
/// expired in the view of the lowest node id, removes it cluster-wide.
fn request_unlock(lock: &Path) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: zero,
        last_modification: zero,
    };
    // The answer carries no information (EACCES is the normal reply).
    let _ = utimensat(CWD, lock, &times, AtFlags::empty());
}

fn metadata(path: &Path) -> Result<Option<fs::Metadata>, StoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn remove_dir(path: &Path) -> Result<(), StoreError> {
    match fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// How long ago `meta` was modified (zero if in the future).
fn age_of(meta: &fs::Metadata) -> Duration {
    let modified = meta.modified().unwrap_or_else(|_| SystemTime::now());
    SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO)
}

fn age(path: &Path) -> Option<Duration> {
    fs::symlink_metadata(path).ok().map(|m| age_of(&m))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn locks(dir: &Path, timeout: Duration, wait: Duration) -> LockDirs {
        LockDirs {
            dir: dir.to_path_buf(),
            timeout,
            wait,
            expiry: Expiry::Local,
        }
    }

    fn set_age(path: &Path, ago: Duration) {
        fs::File::open(path)
            .unwrap()
            .set_modified(SystemTime::now() - ago)
            .unwrap();
    }

    #[test]
    fn mkdir_is_the_lock_and_drop_releases() {
        let tmp = tempfile::tempdir().unwrap();
        let l = locks(tmp.path(), PMXCFS_LOCK_TIMEOUT, Duration::from_millis(100));
        let held = l.acquire("x", "s").unwrap();
        assert!(tmp.path().join("x").is_dir());
        held.check_fresh("s").unwrap();
        let t = Instant::now();
        let e = l.acquire("x", "s").unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(e.is_transient(), "{e:?}");
        assert!(
            e.to_string().contains("another writer holds the lock"),
            "{e}"
        );
        // Another id is independent.
        drop(l.acquire("y", "s").unwrap());
        drop(held);
        assert!(!tmp.path().join("x").exists());
        drop(l.acquire("x", "s").unwrap());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn expired_lock_is_taken_over_fresh_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let l = locks(
            tmp.path(),
            Duration::from_secs(120),
            Duration::from_millis(200),
        );
        let lock = tmp.path().join("x");
        fs::create_dir(&lock).unwrap();
        set_age(&lock, Duration::from_secs(119));
        assert!(l.acquire("x", "s").is_err());
        set_age(&lock, Duration::from_secs(121));
        let patient = locks(tmp.path(), Duration::from_secs(120), Duration::from_secs(5));
        let t = Instant::now();
        let held = patient.acquire("x", "s").unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // The takeover guard is gone, the lock is ours (fresh).
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        assert!(age(&lock).unwrap() < Duration::from_secs(5));
        drop(held);
    }

    #[test]
    fn a_lock_expires_while_waiting() {
        let tmp = tempfile::tempdir().unwrap();
        let l = locks(tmp.path(), Duration::from_secs(1), Duration::from_secs(5));
        let crashed = l.acquire("x", "s").unwrap();
        std::mem::forget(crashed); // never released
        let t = Instant::now();
        let held = l.acquire("x", "s").unwrap();
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{took:?}"
        );
        drop(held);
    }

    #[test]
    fn a_dead_takeover_guard_is_cleared_too() {
        let tmp = tempfile::tempdir().unwrap();
        let l = locks(tmp.path(), Duration::from_secs(120), Duration::from_secs(2));
        for name in ["x", "x.takeover"] {
            let p = tmp.path().join(name);
            fs::create_dir(&p).unwrap();
            set_age(&p, Duration::from_secs(500));
        }
        drop(l.acquire("x", "s").unwrap());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn holding_too_long_refuses_to_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let l = locks(
            tmp.path(),
            Duration::from_millis(200),
            Duration::from_secs(1),
        );
        let held = l.acquire("x", "s").unwrap();
        std::thread::sleep(Duration::from_millis(120));
        let e = held.check_fresh("s").unwrap_err();
        assert!(e.to_string().contains("too long to commit safely"), "{e}");
    }

    #[test]
    fn racing_waiters_on_an_expired_lock_one_holder_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Arc::new(locks(
            tmp.path(),
            Duration::from_secs(120),
            Duration::from_secs(20),
        ));
        let lock = tmp.path().join("x");
        fs::create_dir(&lock).unwrap();
        set_age(&lock, Duration::from_secs(600));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (l, inside, max_inside) = (l.clone(), inside.clone(), max_inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let held = l.acquire("x", "s").unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_inside.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(1));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(held);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(max_inside.load(Ordering::SeqCst), 1);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
