//! Applying the cluster configuration on this node: render the drop-ins, have the real parser
//! check them, update the wwids file, tell multipathd to reconfigure, wait until it is idle.
//!
//! Entry point: [`Applier::apply`]. Rendering and the wwids merge are `mpcluster-core`'s; this
//! module reads the documents, does the file I/O (atomic: temp file + fsync + rename + fsync of
//! the directory; unchanged files are not rewritten) and talks to multipathd. Every path is
//! under a root directory (`/` in production), so tests run the whole apply in a temp dir.
//!
//! Before any `reconfigure`, the installed `multipath -t` reads the candidate configuration
//! ([`crate::parser_check`]). When it complains, or cannot be run, the drop-ins are put back
//! byte for byte as they were (a drop-in that did not exist is removed again), the wwids file
//! is not touched, multipathd is not reconfigured, and the apply fails with the parser's own
//! words: the configuration multipathd runs stays in force. File I/O runs on Tokio's blocking
//! pool and the parser as a `tokio::process` child, so neither holds up the workers.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mpcluster_config::node_config::{NodeConfig, NodeConfigError, read_node_config};
use mpcluster_core::config::{
    BASELINE_PATH, DocumentError, MultipathConfig, OVERRIDES_PATH, Overrides, RenderError,
    WWIDS_PATH, merge_wwids_file, render_baseline_keeping, render_overrides,
    wwids_file::{foreign_entries, listed_wwids},
};
use mpcluster_core::plan::{ApplyPlan, FileAction, FileChange, plan_maps};
use mpcluster_core::{NodeName, Wwid};
use mpcluster_store::{ClusterStore, StoreError};

use crate::client::{ClientError, MultipathdClient};
use crate::collect::CollectError;
use crate::parser_check::{ParserCheck, ParserCheckError};

/// Where the agent records the WWIDs it added to the wwids file (relative to the root).
pub const STATE_PATH: &str = "var/lib/mpcluster/agent-wwids.json";

/// Where the agent records the allow-list of its last successful apply (relative to the root):
/// changes to those LUNs are what an admin asked for (see [`mpcluster_core::plan`]).
pub const APPLIED_PATH: &str = "var/lib/mpcluster/agent-applied.json";

/// Where multipath-tools' binary is looked for (relative to the root), to tell "not installed"
/// apart from "not running".
pub const MULTIPATH_BINARIES: [&str; 2] = ["usr/sbin/multipath", "sbin/multipath"];

/// Why an apply failed. Published as `multipath-apply` `{"error", "time"}`.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The store could not be read.
    #[error("cannot read the cluster configuration")]
    Store(#[source] StoreError),
    /// A stored document does not validate (written by a newer or broken writer).
    #[error("the stored configuration is invalid")]
    Document(#[source] DocumentError),
    /// The acceptance document cannot be read.
    #[error("cannot read the apply acceptance")]
    Acceptance(#[source] mpcluster_config::EditError),
    /// multipathd's current maps cannot be listed, so what the apply would rename or drop is
    /// unknown: nothing is applied.
    #[error(
        "cannot list multipathd's maps to work out what the apply would rename or drop (nothing was applied)"
    )]
    Maps(#[source] CollectError),
    /// Rendering refused a value (a defence in depth; validation should have caught it).
    #[error("cannot render the configuration")]
    Render(#[source] RenderError),
    /// multipath-tools is not installed under the root.
    #[error("multipath-tools is not installed (no {} or {} under {root})", MULTIPATH_BINARIES[0], MULTIPATH_BINARIES[1])]
    NotInstalled {
        /// The root searched.
        root: PathBuf,
    },
    /// A file could not be written or removed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The real parser could not be run on the candidate configuration (the previous drop-ins
    /// were restored).
    #[error("cannot have multipath -t check the candidate configuration")]
    ParserCheck(#[source] ParserCheckError),
    /// The real parser complained about the candidate configuration (the previous drop-ins
    /// were restored, multipathd was not reconfigured).
    #[error(
        "multipath -t rejects the candidate configuration, which was not applied (the previous one stays in force): {complaints}"
    )]
    Rejected {
        /// The parser's complaint lines, joined and cut to a sane length.
        complaints: String,
    },
    /// The candidate was refused (or could not be checked or written) and putting the previous
    /// drop-ins back failed too: candidate files may be in place (multipathd was not
    /// reconfigured with them).
    #[error("{refused}; restoring the previous drop-ins failed too")]
    NotRestored {
        /// Why the candidate was refused (the whole chain).
        refused: String,
        /// The restore's failure.
        #[source]
        source: Box<ApplyError>,
    },
    /// A blocking file task died (a bug: it panicked).
    #[error("the file task of the apply failed")]
    Task(#[source] tokio::task::JoinError),
    /// multipathd refused or failed the reconfigure.
    #[error("multipathd reconfigure failed")]
    Reconfigure(#[source] ClientError),
    /// multipathd did not become idle after the reconfigure.
    #[error("multipathd did not finish reconfiguring within {0:?}")]
    ReconfigureTimeout(Duration),
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyOutcome {
    /// Files written or removed (relative to the root).
    pub changed: Vec<String>,
    /// Whether multipathd was told to reconfigure.
    pub reconfigured: bool,
    /// Nothing was applied: the apply would rename or drop maps nobody asked for and waits
    /// for an acceptance (the plan's summary). [`Applier::plan`] has the whole plan.
    pub waiting: Option<String>,
}

/// Applies the cluster configuration under one root.
#[derive(Debug, Clone)]
pub struct Applier {
    root: PathBuf,
    reconfigure_timeout: Duration,
    /// Reconfigure even if no file changed (set after a failed attempt and at start, so a
    /// multipathd that missed an earlier change catches up).
    force_reconfigure: bool,
    /// The real parser's check of the candidate files.
    /// `None`: candidates are not checked (only where no `multipath` can run, e.g. the demo
    /// without multipath-tools; never the agent command).
    parser_check: Option<ParserCheck>,
    /// The node applying (for its acceptance); `None` accepts only with the cluster's
    /// always-accept setting.
    node: Option<NodeName>,
    /// What the next apply would change, as of the last attempt.
    plan: Option<ApplyPlan>,
}

impl Applier {
    /// An applier for `root` (`/` in production), checking with the installed `multipath`
    /// ([`ParserCheck::for_root`]: directly for `/`, in a private mount namespace otherwise).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Applier {
            parser_check: Some(ParserCheck::for_root(&root)),
            root,
            reconfigure_timeout: Duration::from_secs(30),
            force_reconfigure: true,
            node: None,
            plan: None,
        }
    }

    /// Apply as `node` (its acceptance of a disruptive plan counts).
    pub fn for_node(mut self, node: NodeName) -> Self {
        self.node = Some(node);
        self
    }

    /// What the next apply would change, as of the last attempt: the held plan while
    /// waiting, the failed one after an error, an empty one after a successful apply; `None`
    /// before the first attempt or when the attempt failed before planning.
    pub fn plan(&self) -> Option<&ApplyPlan> {
        self.plan.as_ref()
    }

    /// Check candidates with `check` instead (another `multipath`, another way to run it).
    pub fn with_parser_check(mut self, check: ParserCheck) -> Self {
        self.parser_check = Some(check);
        self
    }

    /// Apply candidates without asking the real parser first. Only for simulations where no
    /// `multipath` can run (the demo on a machine without multipath-tools).
    pub fn without_parser_check(mut self) -> Self {
        self.parser_check = None;
        self
    }

    /// The parser check in use (`None`: unchecked).
    pub fn parser_check(&self) -> Option<&ParserCheck> {
        self.parser_check.as_ref()
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Read the documents, write what changed, reconfigure multipathd if anything changed.
    pub async fn apply(
        &mut self,
        store: &dyn ClusterStore,
        client: &MultipathdClient,
    ) -> Result<ApplyOutcome, ApplyError> {
        let result = self.apply_inner(store, client).await;
        if result.is_err() {
            self.force_reconfigure = true;
        }
        result
    }

    async fn apply_inner(
        &mut self,
        store: &dyn ClusterStore,
        client: &MultipathdClient,
    ) -> Result<ApplyOutcome, ApplyError> {
        self.plan = None;
        let NodeConfig { config, overrides } =
            read_node_config(store).await.map_err(|e| match e {
                NodeConfigError::Store(e) => ApplyError::Store(e),
                NodeConfigError::Document(e) => ApplyError::Document(e),
            })?;
        let acceptance = mpcluster_config::plan::acceptance(store)
            .await
            .map_err(ApplyError::Acceptance)?;

        let root = self.root.clone();
        let (cfg, ovr) = (config.clone(), overrides.clone());
        let prepared = blocking(move || prepare(&root, &cfg, &ovr)).await?;

        // What the apply would do to the maps there are now; held while it renames or drops
        // maps nobody asked for and no admin accepted that.
        let maps = crate::collect::current_maps(client)
            .await
            .map_err(ApplyError::Maps)?;
        let (renames, dropped) = plan_maps(
            &maps,
            &config,
            &overrides,
            &prepared.foreign,
            &prepared.applied_before,
        );
        let mut plan = ApplyPlan::new(
            mpcluster_config::unix_now(),
            renames,
            dropped,
            prepared.file_changes(),
            prepared.wwids_added.clone(),
            prepared.wwids_removed.clone(),
        );
        let accepted = match &self.node {
            Some(node) => acceptance.accepts(node, &plan.digest),
            None => acceptance.always,
        };
        plan.set_waiting(plan.needs_acceptance() && !accepted);
        let waiting = plan
            .waiting
            .then(|| plan.summary.clone().unwrap_or_default());
        self.plan = Some(plan);
        if let Some(summary) = waiting {
            return Ok(ApplyOutcome {
                waiting: Some(summary),
                ..ApplyOutcome::default()
            });
        }

        let root = self.root.clone();
        let candidate = blocking(move || write_candidate(&root, prepared)).await?;
        let mut outcome = ApplyOutcome {
            changed: candidate.changed_dropins.clone(),
            ..ApplyOutcome::default()
        };
        if candidate.wwids.is_some() {
            outcome.changed.push(WWIDS_PATH.to_owned());
        }
        if outcome.changed.is_empty() && !self.force_reconfigure {
            let records = vec![
                (self.path(STATE_PATH), candidate.state),
                (self.path(APPLIED_PATH), candidate.applied),
            ];
            blocking(move || write_each(records)).await?;
            self.plan = Some(ApplyPlan::nothing(mpcluster_config::unix_now()));
            return Ok(outcome);
        }

        // The real parser judges the candidate before multipathd sees it.
        let checked = match &self.parser_check {
            Some(check) => Some(check.run(&self.root).await),
            None => None,
        };
        let refused = match checked {
            None => None,
            Some(Ok(output)) => {
                for notice in &output.notices {
                    tracing::info!(notice = %notice, "multipath -t");
                }
                output.has_complaints().then(|| ApplyError::Rejected {
                    complaints: output.complaints_summary(),
                })
            }
            Some(Err(e)) => Some(ApplyError::ParserCheck(e)),
        };
        if let Some(refused) = refused {
            let previous = candidate.previous;
            if let Err(restore) = blocking(move || restore(&previous)).await {
                return Err(ApplyError::NotRestored {
                    refused: mpcluster_core::error_chain(&refused),
                    source: Box::new(restore),
                });
            }
            return Err(refused);
        }

        let files = vec![
            (self.path(WWIDS_PATH), candidate.wwids),
            (self.path(STATE_PATH), candidate.state),
        ];
        blocking(move || write_each(files)).await?;

        client
            .reconfigure()
            .await
            .map_err(ApplyError::Reconfigure)?;
        self.wait_idle(client).await?;
        // Only now is the allow-list applied: changes to these LUNs are requested from here on.
        let applied = vec![(self.path(APPLIED_PATH), candidate.applied)];
        blocking(move || write_each(applied)).await?;
        outcome.reconfigured = true;
        self.force_reconfigure = false;
        self.plan = Some(ApplyPlan::nothing(mpcluster_config::unix_now()));
        Ok(outcome)
    }

    /// Poll `show daemon` until multipathd reports itself idle or running without a pending
    /// reconfigure (the reconfigure itself is asynchronous).
    async fn wait_idle(&self, client: &MultipathdClient) -> Result<(), ApplyError> {
        let deadline = tokio::time::Instant::now() + self.reconfigure_timeout;
        loop {
            match client.command("show daemon").await {
                Ok(reply) => {
                    let text = reply.into_text();
                    let busy = text.contains("configure") || text.contains("pending");
                    if !busy && (text.contains("idle") || text.contains("running")) {
                        return Ok(());
                    }
                }
                Err(e) if !e.is_transient() => return Err(ApplyError::Reconfigure(e)),
                Err(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApplyError::ReconfigureTimeout(self.reconfigure_timeout));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Run blocking file work on Tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApplyError> + Send + 'static,
) -> Result<T, ApplyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApplyError::Task)?
}

/// What an apply would write, worked out without writing anything.
struct Prepared {
    /// The drop-ins that differ from what is on disk: (relative path, wanted content;
    /// `None`: remove).
    dropins: Vec<(&'static str, Option<String>)>,
    /// The new wwids file, when it changes.
    wwids: Option<String>,
    /// WWIDs the new wwids file adds and removes.
    wwids_added: Vec<Wwid>,
    wwids_removed: Vec<Wwid>,
    /// The new agent state, when it changes.
    state: Option<String>,
    /// The allow-list to record as applied once the apply succeeded, when it changes.
    applied: Option<String>,
    /// The allow-list of the last successful apply.
    applied_before: BTreeSet<Wwid>,
    /// wwids-file entries mpcluster did not add (kept as blacklist exceptions).
    foreign: BTreeSet<Wwid>,
}

impl Prepared {
    fn file_changes(&self) -> Vec<FileChange> {
        let mut files: Vec<FileChange> = self
            .dropins
            .iter()
            .map(|(rel, content)| FileChange {
                path: format!("/{rel}"),
                action: if content.is_some() {
                    FileAction::Write
                } else {
                    FileAction::Remove
                },
            })
            .collect();
        if self.wwids.is_some() {
            files.push(FileChange {
                path: format!("/{WWIDS_PATH}"),
                action: FileAction::Write,
            });
        }
        files
    }
}

/// Render the configuration and compare with what is on disk (reads only).
fn prepare(
    root: &Path,
    config: &MultipathConfig,
    overrides: &Overrides,
) -> Result<Prepared, ApplyError> {
    if !MULTIPATH_BINARIES.iter().any(|b| root.join(b).exists()) {
        return Err(ApplyError::NotInstalled {
            root: root.to_path_buf(),
        });
    }

    // The wwids file first: it decides which foreign entries the baseline must keep.
    let existing = read_optional(&root.join(WWIDS_PATH))?;
    let ours_before = read_state(&root.join(STATE_PATH))?;
    // Before this file existed (an older agent), what we had added is the best record of
    // what was applied.
    let applied_before = read_wwid_set(&root.join(APPLIED_PATH))?.unwrap_or(ours_before.clone());
    let wanted = config.allow_list();
    let merge = merge_wwids_file(&existing, &wanted, &ours_before);
    let foreign = foreign_entries(&existing, &wanted, &ours_before);
    let wwids = (merge.changed && !(existing.is_empty() && wanted.is_empty()))
        .then(|| merge.content.clone());
    let (mut wwids_added, mut wwids_removed) = (Vec::new(), Vec::new());
    if let Some(new) = &wwids {
        let (before, after) = (listed_wwids(&existing), listed_wwids(new));
        wwids_added = after
            .difference(&before)
            .filter_map(|w| Wwid::new(*w).ok())
            .collect();
        wwids_removed = before
            .difference(&after)
            .filter_map(|w| Wwid::new(*w).ok())
            .collect();
    }

    let baseline = render_baseline_keeping(config, &foreign).map_err(ApplyError::Render)?;
    let overrides_text = render_overrides(overrides);
    let mut dropins = Vec::new();
    for (rel, content) in [(BASELINE_PATH, baseline), (OVERRIDES_PATH, overrides_text)] {
        let current = match std::fs::read(root.join(rel)) {
            Ok(c) => Some(c),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ApplyError::Io {
                    action: "read",
                    path: root.join(rel),
                    source,
                });
            }
        };
        if current.as_deref() != content.as_deref().map(str::as_bytes) {
            dropins.push((rel, content));
        }
    }
    Ok(Prepared {
        dropins,
        wwids,
        wwids_added,
        wwids_removed,
        state: (merge.added_by_us != ours_before)
            .then(|| serde_json::to_string(&merge.added_by_us).unwrap_or_default()),
        applied: (wanted != applied_before)
            .then(|| serde_json::to_string(&wanted).unwrap_or_default()),
        applied_before,
        foreign,
    })
}

/// The candidate configuration, its drop-ins written.
struct Candidate {
    /// Drop-ins written or removed (relative to the root).
    changed_dropins: Vec<String>,
    /// What the changed drop-ins held before (`None`: they did not exist).
    previous: Vec<(PathBuf, Option<Vec<u8>>)>,
    /// The new wwids file, when it changes (written only once the parser agreed).
    wwids: Option<String>,
    /// The new agent state, when it changes.
    state: Option<String>,
    /// The applied allow-list to record once multipathd took the configuration.
    applied: Option<String>,
}

/// Write the drop-ins that changed (remembering what they held). On a write failure the
/// drop-ins already written are restored.
fn write_candidate(root: &Path, prepared: Prepared) -> Result<Candidate, ApplyError> {
    let mut candidate = Candidate {
        changed_dropins: Vec::new(),
        previous: Vec::new(),
        wwids: prepared.wwids,
        state: prepared.state,
        applied: prepared.applied,
    };
    for (rel, content) in prepared.dropins {
        let path = root.join(rel);
        match sync_file(&path, content.as_deref()) {
            Ok(Synced::Unchanged) => {}
            Ok(Synced::Changed { previous }) => {
                candidate.changed_dropins.push(rel.to_owned());
                candidate.previous.push((path, previous));
            }
            Err(e) => {
                if let Err(restore_err) = restore(&candidate.previous) {
                    return Err(ApplyError::NotRestored {
                        refused: mpcluster_core::error_chain(&e),
                        source: Box::new(restore_err),
                    });
                }
                return Err(e);
            }
        }
    }
    Ok(candidate)
}

/// Put the drop-ins back as they were: the same bytes, or no file.
fn restore(previous: &[(PathBuf, Option<Vec<u8>>)]) -> Result<(), ApplyError> {
    for (path, content) in previous.iter().rev() {
        match content {
            Some(bytes) => write_atomic(path, bytes)?,
            None => match std::fs::remove_file(path) {
                Ok(()) => fsync_dir(path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ApplyError::Io {
                        action: "remove",
                        path: path.clone(),
                        source,
                    });
                }
            },
        }
    }
    Ok(())
}

fn read_optional(path: &Path) -> Result<String, ApplyError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(ApplyError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A recorded set of WWIDs; `None` when the file does not exist or cannot be read as one (a
/// damaged record is not trusted).
fn read_wwid_set(path: &Path) -> Result<Option<BTreeSet<Wwid>>, ApplyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ApplyError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Ok(serde_json::from_str(&text).ok())
}

fn read_state(path: &Path) -> Result<BTreeSet<Wwid>, ApplyError> {
    let text = read_optional(path)?;
    if text.trim().is_empty() {
        return Ok(BTreeSet::new());
    }
    // A damaged state file must not make us prune foreign entries: start over with nothing
    // recorded (we then prune nothing until we add again).
    Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
        tracing::warn!(path = %path.display(), error = %e, "agent state file unreadable; ignoring it");
        BTreeSet::new()
    }))
}

/// What [`sync_file`] did.
enum Synced {
    /// The file already was as wanted.
    Unchanged,
    /// It was written or removed; it held `previous` before (`None`: it did not exist).
    Changed { previous: Option<Vec<u8>> },
}

/// Make `path` hold `content` (`None`: not exist).
fn sync_file(path: &Path, content: Option<&str>) -> Result<Synced, ApplyError> {
    let current = match std::fs::read(path) {
        Ok(c) => Some(c),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ApplyError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    match (content, current) {
        (Some(want), Some(have)) if want.as_bytes() == have.as_slice() => Ok(Synced::Unchanged),
        (Some(want), previous) => {
            write_atomic(path, want.as_bytes())?;
            Ok(Synced::Changed { previous })
        }
        (None, None) => Ok(Synced::Unchanged),
        (None, Some(current)) => {
            std::fs::remove_file(path).map_err(|source| ApplyError::Io {
                action: "remove",
                path: path.to_path_buf(),
                source,
            })?;
            fsync_dir(path)?;
            Ok(Synced::Changed {
                previous: Some(current),
            })
        }
    }
}

/// [`write_atomic`] each file that has new content (`None`: unchanged, left alone), in order.
fn write_each(files: Vec<(PathBuf, Option<String>)>) -> Result<(), ApplyError> {
    for (path, content) in files {
        if let Some(content) = content {
            write_atomic(&path, content.as_bytes())?;
        }
    }
    Ok(())
}

/// Temp file in the same directory + fsync + rename + fsync of the directory.
fn write_atomic(path: &Path, content: &[u8]) -> Result<(), ApplyError> {
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| ApplyError::Io {
            action,
            path: p,
            source,
        }
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io("create the directory of", path))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".mpcluster-")
        .tempfile_in(dir)
        .map_err(io("create a temporary file for", path))?;
    tmp.write_all(content).map_err(io("write", path))?;
    tmp.as_file().sync_all().map_err(io("sync", path))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io("set permissions of", path))?;
    }
    tmp.persist(path).map_err(|e| ApplyError::Io {
        action: "replace",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    fsync_dir(path)
}

fn fsync_dir(path: &Path) -> Result<(), ApplyError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| ApplyError::Io {
            action: "sync the directory of",
            path: path.to_path_buf(),
            source,
        })
}
