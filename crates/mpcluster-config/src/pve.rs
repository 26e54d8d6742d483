//! Proxmox mode ([`PveMode`]): on a Proxmox VE node mpcluster takes node names, membership
//! and liveness from corosync (`<root>/.members`, exactly the seed's notion of online) and the
//! storage definitions from Proxmox's own `<root>/storage.cfg`, which it follows as it changes
//! and never edits (that is `pvesm`'s job). `<root>` is `/etc/pve` (pmxcfs), or a fixture
//! directory in tests (`--pve-root DIR`).
//!
//! The mode is one value, resolved once at startup ([`PveMode::resolve`], from `--membership`,
//! `--pve-root` and the store spec) and handed to everything that behaves differently in it:
//! the store's membership ([`PveMode::membership_store`]), the agent's default node name
//! ([`PveMode::local_node`]), the status's expectations ([`crate::read_snapshot`]), the storage
//! operations ([`crate::storage`]: listed from storage.cfg with their lines, writes refused
//! with [`EditError::ReadOnly`]) and the server's status cache ([`StorageCfgWatch`]).
//!
//! # storage.cfg, followed live
//!
//! Every reader parses the file when it needs the storages ([`read_storage_cfg`], with
//! [`mpcluster_core::pve_import`]'s reader; a Proxmox storage.cfg is a few KiB and pmxcfs
//! serves reads from local RAM): nothing is imported once, so nothing can drift from what
//! Proxmox uses. A long-lived reader (the server's status cache) additionally needs to know
//! *when* it changed; pmxcfs sends no inotify events for other nodes' writes and its mtimes
//! have a 1 s resolution and the writer's clock, so [`StorageCfgWatch`] compares the file's
//! content digest every [`STORAGE_CFG_POLL`] instead.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::pve_import::{self, SkipKind};
use mpcluster_core::storage::StorageConfig;
use mpcluster_core::{NodeName, StorageId};
use mpcluster_store::pve::{DEFAULT_PVE_ROOT, MEMBERS_FILE, PveMembers, PveMembership};
use mpcluster_store::{ClusterStore, StoreError, StoreSpec};

use crate::error::EditError;

/// Proxmox's storage definitions, under the root.
pub const STORAGE_CFG: &str = "storage.cfg";

/// How often [`StorageCfgWatch`] looks at storage.cfg (pmxcfs's mtime resolution, and the
/// pve store's own polling interval).
pub const STORAGE_CFG_POLL: Duration = Duration::from_secs(1);

/// The largest storage.cfg read (pmxcfs's own file limit is 1 MiB).
const STORAGE_CFG_MAX: u64 = 4 * 1024 * 1024;

/// Where membership comes from (`--membership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MembershipChoice {
    /// Proxmox mode when `<root>/.members` exists (or the store is the pve store).
    #[default]
    Auto,
    /// Proxmox mode; `<root>/.members` must exist.
    Pve,
    /// Never Proxmox mode: membership is the store's own (etcd leases, or none).
    Store,
}

/// Why the mode cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PveModeError {
    /// Proxmox mode was asked for (or a root named) but the root has no `.members`.
    #[error(
        "{} does not exist: not a Proxmox VE cluster filesystem (is pve-cluster running?{})",
        members.display(),
        if *explicit_root {
            ""
        } else {
            " --pve-root names another root, --membership store turns Proxmox mode off"
        }
    )]
    NoMembers {
        /// The file looked for.
        members: PathBuf,
        /// Whether the root was given with `--pve-root`.
        explicit_root: bool,
    },
    /// `--pve-root` and the pve store's directory differ.
    #[error(
        "--pve-root {} and the pve store's root {} differ: the pve store takes its membership \
         from its own root",
        pve_root.display(),
        store_root.display()
    )]
    RootMismatch {
        /// `--pve-root`.
        pve_root: PathBuf,
        /// The store spec's root.
        store_root: PathBuf,
    },
    /// `--membership store` with the pve store, whose membership is corosync's.
    #[error("--membership store cannot be used with the pve store: its membership is corosync's")]
    PveStoreMembership,
}

/// Proxmox mode; see the [module docs](self). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveMode {
    root: PathBuf,
}

impl PveMode {
    /// Proxmox mode on `root` (no checks; [`PveMode::resolve`] decides whether it applies).
    pub fn new(root: impl Into<PathBuf>) -> PveMode {
        PveMode { root: root.into() }
    }

    /// Decide whether this process runs in Proxmox mode, once at startup. The root is
    /// `pve_root` (`--pve-root`), else the pve store's directory, else `/etc/pve`.
    ///
    /// - [`MembershipChoice::Store`]: never (refused with the pve store).
    /// - [`MembershipChoice::Pve`]: always; `<root>/.members` must exist.
    /// - [`MembershipChoice::Auto`]: with the pve store, or when `<root>/.members` exists; a
    ///   root named with `--pve-root` must have it.
    pub fn resolve(
        choice: MembershipChoice,
        pve_root: Option<&Path>,
        spec: &StoreSpec,
    ) -> Result<Option<PveMode>, PveModeError> {
        let store_root = spec.pve_root();
        if let (Some(p), Some(s)) = (pve_root, &store_root)
            && p != s.as_path()
        {
            return Err(PveModeError::RootMismatch {
                pve_root: p.to_path_buf(),
                store_root: s.clone(),
            });
        }
        let root = pve_root
            .map(Path::to_path_buf)
            .or_else(|| store_root.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PVE_ROOT));
        let members = root.join(MEMBERS_FILE);
        let exists = std::fs::symlink_metadata(&members).is_ok();
        let missing = || PveModeError::NoMembers {
            members: members.clone(),
            explicit_root: pve_root.is_some(),
        };
        match choice {
            MembershipChoice::Store if store_root.is_some() => {
                Err(PveModeError::PveStoreMembership)
            }
            MembershipChoice::Store => Ok(None),
            // The pve store checks its root itself when it opens.
            _ if store_root.is_some() => Ok(Some(PveMode::new(root))),
            MembershipChoice::Pve if !exists => Err(missing()),
            MembershipChoice::Auto if !exists && pve_root.is_some() => Err(missing()),
            MembershipChoice::Auto if !exists => Ok(None),
            _ => Ok(Some(PveMode::new(root))),
        }
    }

    /// The root (`/etc/pve`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/.members`.
    pub fn members_file(&self) -> PathBuf {
        self.root.join(MEMBERS_FILE)
    }

    /// `<root>/storage.cfg`.
    pub fn storage_cfg(&self) -> PathBuf {
        self.root.join(STORAGE_CFG)
    }

    /// The store with its membership from `.members`: the pve store (`spec` names it) has it
    /// already; any other store is wrapped in [`PveMembership`], polled every `poll` while
    /// someone is subscribed.
    pub async fn membership_store(
        &self,
        store: Arc<dyn ClusterStore>,
        spec: &StoreSpec,
        poll: Duration,
    ) -> Result<Arc<dyn ClusterStore>, StoreError> {
        if spec.pve_root().is_some() {
            return Ok(store);
        }
        Ok(Arc::new(PveMembership::new(store, &self.root, poll).await?))
    }

    /// This host's node name as corosync knows it (`.members`' `nodename`): the agent's name
    /// unless `--node` gives one.
    pub async fn local_node(&self) -> Result<NodeName, StoreError> {
        let path = self.members_file();
        blocking(move || {
            let describe = format!("Proxmox membership {}", path.display());
            PveMembers::read(&path, &describe).map(|m| m.local)
        })
        .await
    }

    /// Read and parse storage.cfg now ([`read_storage_cfg`]).
    pub async fn read_storages(&self) -> Result<PveStorages, StoreError> {
        let path = self.storage_cfg();
        blocking(move || read_storage_cfg(&path)).await
    }

    /// A watch on storage.cfg's content, for long-lived readers.
    pub fn watch_storage_cfg(&self, poll: Duration) -> StorageCfgWatch {
        StorageCfgWatch {
            path: self.storage_cfg(),
            poll,
            known: None,
            tick: None,
        }
    }

    /// Why storages cannot be edited through mpcluster in this mode (the message of every
    /// refused storage write, CLI and API alike).
    pub fn read_only_message(&self) -> String {
        format!(
            "storages are read from {} in Proxmox mode and cannot be changed through mpcluster: \
             use pvesm (pvesm add|set|remove) or the Proxmox VE web interface; mpcluster \
             follows the file",
            self.storage_cfg().display()
        )
    }

    /// [`EditError::ReadOnly`] with [`read_only_message`](Self::read_only_message).
    pub fn read_only(&self) -> EditError {
        EditError::ReadOnly(self.read_only_message())
    }
}

/// Where a storage of storage.cfg comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveOrigin {
    /// 1-based line of its section.
    pub line: usize,
    /// For a multipath storage standing for an iSCSI storage of the file: that storage.
    pub iscsi: Option<StorageId>,
}

/// storage.cfg as mpcluster uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveStorages {
    /// The file.
    pub path: PathBuf,
    /// Whether it exists (a missing file holds no storages).
    pub exists: bool,
    /// Digest of its content (of the empty text when missing).
    pub digest: ConfigDigest,
    /// The multipath and LVM storages it defines, as [`pve_import::import`] reads them
    /// (an iSCSI storage under an LVM storage stands in as a multipath storage).
    pub config: StorageConfig,
    /// Per storage id: where it comes from.
    pub origins: BTreeMap<StorageId, PveOrigin>,
    /// Sections mpcluster would use but cannot (bad values, malformed lines), one sentence
    /// each with its line. Other storage types and local volume groups are not problems.
    pub problems: Vec<String>,
}

/// Read and parse a storage.cfg (blocking; small). A missing file holds no storages; a file
/// that cannot be read is an error (`Unavailable` when pmxcfs does not answer).
pub fn read_storage_cfg(path: &Path) -> Result<PveStorages, StoreError> {
    let io = |source: std::io::Error| {
        // ENOTCONN: a dead FUSE daemon ("transport endpoint is not connected").
        if source.kind() == std::io::ErrorKind::NotConnected {
            StoreError::Unavailable {
                store: format!("Proxmox storage configuration {}", path.display()),
                reason: "pmxcfs does not answer: is pve-cluster running?".to_owned(),
                source: Some(Box::new(source)),
            }
        } else {
            StoreError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let (exists, text) = match std::fs::File::open(path) {
        Ok(f) => {
            let mut bytes = Vec::new();
            f.take(STORAGE_CFG_MAX)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            // Proxmox writes UTF-8; anything else is shown replaced rather than refused.
            (true, String::from_utf8_lossy(&bytes).into_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (false, String::new()),
        Err(e) => return Err(io(e)),
    };
    Ok(parse_storage_cfg(path, exists, &text))
}

/// Parse storage.cfg's text (pure).
pub fn parse_storage_cfg(path: &Path, exists: bool, text: &str) -> PveStorages {
    let digest = ConfigDigest::of(text);
    let mut problems = Vec::new();
    let (config, origins) = match pve_import::import(&StorageConfig::default(), text) {
        Ok(import) => {
            for s in &import.skipped {
                if matches!(
                    s.kind,
                    SkipKind::UnsupportedType | SkipKind::NoBase | SkipKind::OtherBase
                ) {
                    continue;
                }
                let section = s
                    .section
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                problems.push(format!(
                    "{} line {}{section}: {}",
                    path.display(),
                    s.line,
                    s.reason
                ));
            }
            let origins = import
                .added
                .iter()
                .map(|a| {
                    (
                        a.storage.id().clone(),
                        PveOrigin {
                            line: a.line,
                            iscsi: a.from_iscsi.clone(),
                        },
                    )
                })
                .collect();
            (import.config, origins)
        }
        // The reader checks every base it adds: a bug, reported rather than fatal.
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            (StorageConfig::default(), BTreeMap::new())
        }
    };
    PveStorages {
        path: path.to_path_buf(),
        exists,
        digest,
        config,
        origins,
        problems,
    }
}

/// Run blocking file work off the async threads (pmxcfs reads can stall while it recovers).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StoreError::Config {
            store: "Proxmox mode".to_owned(),
            problem: format!("a file task failed: {e}"),
        })
    })
}

/// Notices changes of storage.cfg by its content ([`PveMode::watch_storage_cfg`]).
#[derive(Debug)]
pub struct StorageCfgWatch {
    path: PathBuf,
    poll: Duration,
    /// The content digest last seen (`Some(None)`: missing or unreadable); `None` before
    /// the first look.
    known: Option<Option<ConfigDigest>>,
    tick: Option<tokio::time::Interval>,
}

impl StorageCfgWatch {
    /// Resolves when the file's content differs from what it was at the previous call (the
    /// first call only records it). Cancel-safe: a dropped call loses nothing but its look.
    pub async fn changed(&mut self) {
        loop {
            let poll = self.poll;
            let tick = self.tick.get_or_insert_with(|| {
                let mut t = tokio::time::interval(poll);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                t
            });
            tick.tick().await;
            let path = self.path.clone();
            let now = tokio::task::spawn_blocking(move || {
                read_storage_cfg(&path)
                    .ok()
                    .map(|s| s.exists.then_some(s.digest))
                    .unwrap_or(None)
            })
            .await
            .unwrap_or(None);
            match &self.known {
                None => self.known = Some(now),
                Some(k) if *k == now => {}
                Some(_) => {
                    self.known = Some(now);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const W1: &str = "3600a098038303053453f463045727a01";

    fn spec(s: &str) -> StoreSpec {
        s.parse().unwrap()
    }

    #[test]
    fn resolve_follows_the_choice_and_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let none = tempfile::tempdir().unwrap();
        let embedded = spec("embedded:/tmp/x");
        // No .members: auto means no Proxmox mode, unless the root was named.
        assert_eq!(
            PveMode::resolve(MembershipChoice::Auto, None, &embedded).unwrap(),
            if Path::new("/etc/pve/.members").exists() {
                Some(PveMode::new("/etc/pve"))
            } else {
                None
            }
        );
        let e = PveMode::resolve(MembershipChoice::Auto, Some(none.path()), &embedded);
        assert!(matches!(e, Err(PveModeError::NoMembers { .. })), "{e:?}");
        let e = PveMode::resolve(MembershipChoice::Pve, Some(none.path()), &embedded);
        assert!(
            e.unwrap_err()
                .to_string()
                .contains(".members does not exist")
        );
        std::fs::write(root.join(MEMBERS_FILE), "{}").unwrap();
        for choice in [MembershipChoice::Auto, MembershipChoice::Pve] {
            assert_eq!(
                PveMode::resolve(choice, Some(root), &embedded).unwrap(),
                Some(PveMode::new(root))
            );
        }
        assert_eq!(
            PveMode::resolve(MembershipChoice::Store, Some(root), &embedded).unwrap(),
            None
        );
        // The pve store: its own root, always Proxmox mode.
        let pve = StoreSpec::Pve {
            root: Some(root.to_path_buf()),
        };
        assert_eq!(
            PveMode::resolve(MembershipChoice::Auto, None, &pve).unwrap(),
            Some(PveMode::new(root))
        );
        assert!(PveMode::resolve(MembershipChoice::Store, None, &pve).is_err());
        let e = PveMode::resolve(MembershipChoice::Auto, Some(none.path()), &pve);
        assert!(matches!(e, Err(PveModeError::RootMismatch { .. })), "{e:?}");
    }

    #[test]
    fn storage_cfg_is_read_with_lines_and_problems() {
        let text = format!(
            "dir: local\n\tpath /var/lib/vz\n\n\
             iscsi: san1\n\tportal 10.0.0.1\n\ttarget iqn.x\n\tnodes pve1,pve2\n\n\
             lvm: data\n\tvgname vg_data\n\tbase san1:0.0.1.scsi-{W1}\n\tshared 1\n\n\
             lvm: broken\n\tvgname -bad\n\tbase san1:0.0.2.scsi-{W1}\n\n\
             lvm: local-vg\n\tvgname pve\n"
        );
        let s = parse_storage_cfg(Path::new("/etc/pve/storage.cfg"), true, &text);
        let ids: Vec<&str> = s.config.storages.iter().map(|s| s.id().as_str()).collect();
        assert_eq!(ids, ["san1", "data"]);
        let san1 = &s.origins[&StorageId::new("san1").unwrap()];
        assert_eq!(san1.line, 4);
        assert_eq!(san1.iscsi.as_ref().unwrap().as_str(), "san1");
        assert_eq!(s.origins[&StorageId::new("data").unwrap()].line, 9);
        // The bad vgname is a problem; `dir` and the local volume group are not.
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert!(
            s.problems[0].starts_with("/etc/pve/storage.cfg line 15 (lvm: broken): vgname"),
            "{:?}",
            s.problems
        );
        assert_eq!(s.digest, ConfigDigest::of(&text));
    }

    #[test]
    fn a_missing_storage_cfg_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = read_storage_cfg(&dir.path().join(STORAGE_CFG)).unwrap();
        assert!(!s.exists && s.config.storages.is_empty() && s.problems.is_empty());
        let e = read_storage_cfg(dir.path()).unwrap_err();
        assert!(matches!(e, StoreError::Io { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn the_watch_sees_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mode = PveMode::new(dir.path());
        let mut watch = mode.watch_storage_cfg(Duration::from_millis(20));
        async fn changed(w: &mut StorageCfgWatch) -> Result<(), tokio::time::error::Elapsed> {
            tokio::time::timeout(Duration::from_millis(300), w.changed()).await
        }
        // The first look records; nothing changed since.
        assert!(changed(&mut watch).await.is_err());
        std::fs::write(mode.storage_cfg(), "multipath: mp\n").unwrap();
        assert!(changed(&mut watch).await.is_ok());
        assert!(changed(&mut watch).await.is_err());
        // Same size, other content.
        std::fs::write(mode.storage_cfg(), "multipath: mq\n").unwrap();
        assert!(changed(&mut watch).await.is_ok());
        std::fs::remove_file(mode.storage_cfg()).unwrap();
        assert!(changed(&mut watch).await.is_ok());
        assert_eq!(mode.read_storages().await.unwrap().config.storages.len(), 0);
    }
}
