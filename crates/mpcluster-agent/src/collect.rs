//! One collection: ask multipathd, parse, read map sizes from sysfs, summarize into a
//! [`NodeReport`]. The parsing and summarizing are `mpcluster-core`'s; this module only does
//! the I/O in the order `mpcluster_core::multipathd` documents.
//!
//! Entry point: [`collect`].

use std::path::Path;

use mpcluster_core::multipathd::{
    self, MapsReply, NodeReport, ParseError, RawMaps, RawPaths, Recovery, SHOW_MAPS_JSON,
    parse_maps_json, parse_maps_raw, parse_paths_raw, summarize_owned,
};

use crate::client::{ClientError, MultipathdClient};
use crate::sysfs::{read_map_size, read_path_info};

/// Why a collection produced no report. Never turned into a health state: the agent publishes
/// it as `multipath-collect` and the status shows "couldn't collect", not "failed".
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// multipathd could not be asked (not running, timeout, refused the command, ...).
    #[error("multipathd did not answer {command:?}")]
    Client {
        /// The command.
        command: &'static str,
        /// What the client saw.
        #[source]
        source: ClientError,
    },
    /// The collector's parsing thread stopped (a bug: parsing never panics).
    #[error("the collector's parsing thread stopped")]
    Worker,
    /// multipathd answered something that cannot be used.
    #[error("cannot use multipathd's reply to {command:?}")]
    Parse {
        /// The command.
        command: &'static str,
        /// What is wrong with the reply.
        #[source]
        source: ParseError,
    },
}

impl CollectError {
    /// A hint for people, when there is one (e.g. "is multipath-tools installed ...").
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CollectError::Client { source, .. } => source.hint(),
            CollectError::Parse { .. } | CollectError::Worker => None,
        }
    }
}

const SHOW_PATHS_RAW: &str = "show paths raw format";
const SHOW_MAPS_RAW: &str = "show maps raw format";

/// Collect this node's multipath state once (no caching; the agent loop uses [`Collector`]).
///
/// `show maps json` first; if multipathd does not know it or its JSON is broken (an alias
/// with `"`: multipathd does not escape strings), the raw text formats instead. The raw paths
/// format is always asked for: it carries each path's transport, which the JSON lacks.
/// Map sizes come from `<sysfs_root>/block/<dm-N>/size`; a size that cannot be read is left
/// out and noted in the report's errors.
pub async fn collect(
    client: &MultipathdClient,
    sysfs_root: &Path,
) -> Result<NodeReport, CollectError> {
    let (paths, json) = ask_json(client).await?;
    let parsed = json.map(|text| parse_maps_json(text.as_bytes()));
    finish(client, paths, parsed).await?.report(sysfs_root)
}

/// multipathd's current maps by name and WWID (for the apply plan): `show maps json`, or the
/// raw maps format when this multipathd has no usable JSON. Entries with an invalid WWID are
/// left out (they cannot be in any allow-list).
pub async fn current_maps(
    client: &MultipathdClient,
) -> Result<Vec<mpcluster_core::plan::CurrentMap>, CollectError> {
    let maps = match client.show_maps_json().await {
        Ok(text) if text.trim().is_empty() => return Ok(Vec::new()),
        Ok(text) => match parse_maps_json(text.as_bytes()) {
            Ok(reply) => Some(reply.maps),
            Err(e) if e.recovery() != Recovery::FallBackToRaw => {
                return Err(CollectError::Parse {
                    command: SHOW_MAPS_JSON,
                    source: e,
                });
            }
            Err(_) => None,
        },
        Err(ClientError::UnknownCommand { .. }) => None,
        Err(source) => {
            return Err(CollectError::Client {
                command: SHOW_MAPS_JSON,
                source,
            });
        }
    };
    let maps = match maps {
        Some(maps) => maps,
        None => {
            let raw = client
                .show_maps_raw(multipathd::MAPS_RAW_FORMAT)
                .await
                .map_err(|source| CollectError::Client {
                    command: SHOW_MAPS_RAW,
                    source,
                })?;
            if raw.trim().is_empty() {
                return Ok(Vec::new());
            }
            let parsed = parse_maps_raw(raw.as_bytes()).map_err(|source| CollectError::Parse {
                command: SHOW_MAPS_RAW,
                source,
            })?;
            multipathd::MapsReply::from_raw(parsed, &RawPaths::default()).maps
        }
    };
    Ok(maps
        .into_iter()
        .filter_map(|m| {
            Some(mpcluster_core::plan::CurrentMap {
                wwid: mpcluster_core::Wwid::new(m.wwid).ok()?,
                name: m.name,
            })
        })
        .collect())
}

/// multipathd's maps: the JSON reply parsed (its text already dropped), or the raw-format
/// reply (the fallback) as text.
#[derive(Debug)]
enum Maps {
    Json(MapsReply),
    Raw(String),
}

/// The replies one collection is made of.
#[derive(Debug)]
struct Replies {
    paths: String,
    maps: Maps,
}

/// Ask for the paths and the JSON maps (`None`: this multipathd does not know `show maps json`).
async fn ask_json(client: &MultipathdClient) -> Result<(String, Option<String>), CollectError> {
    let paths = client
        .show_paths_raw(multipathd::PATHS_RAW_FORMAT)
        .await
        .map_err(|source| CollectError::Client {
            command: SHOW_PATHS_RAW,
            source,
        })?;
    match client.show_maps_json().await {
        Ok(text) => Ok((paths, Some(text))),
        Err(ClientError::UnknownCommand { .. }) => Ok((paths, None)),
        Err(source) => Err(CollectError::Client {
            command: SHOW_MAPS_JSON,
            source,
        }),
    }
}

/// Use the parsed JSON reply (`None`: multipathd does not know the command), or fall back to
/// the raw formats (asking for the raw maps) when the JSON is unusable.
async fn finish(
    client: &MultipathdClient,
    paths: String,
    json: Option<Result<MapsReply, ParseError>>,
) -> Result<Replies, CollectError> {
    if let Some(parsed) = json {
        match parsed {
            Ok(reply) => {
                return Ok(Replies {
                    paths,
                    maps: Maps::Json(reply),
                });
            }
            Err(e) if e.recovery() != Recovery::FallBackToRaw => {
                return Err(CollectError::Parse {
                    command: SHOW_MAPS_JSON,
                    source: e,
                });
            }
            Err(e) => {
                tracing::info!(error = %e, "show maps json unusable; using the raw formats");
            }
        }
    }
    let raw = client
        .show_maps_raw(multipathd::MAPS_RAW_FORMAT)
        .await
        .map_err(|source| CollectError::Client {
            command: SHOW_MAPS_RAW,
            source,
        })?;
    Ok(Replies {
        paths,
        maps: Maps::Raw(raw),
    })
}

impl Replies {
    /// Parse the paths, join, read sizes, summarize. Consumes the replies: each text is
    /// dropped once parsed, so a big reply is not held next to its model.
    fn report(self, sysfs_root: &Path) -> Result<NodeReport, CollectError> {
        // multipathd answers `ok` (the client gives "") when there are no paths: that is an
        // empty list, not an empty (daemon-stopped) reply.
        let paths = if self.paths.is_empty() {
            RawPaths::default()
        } else {
            parse_paths_raw(self.paths.as_bytes()).map_err(|source| CollectError::Parse {
                command: SHOW_PATHS_RAW,
                source,
            })?
        };
        drop(self.paths);
        let reply = match self.maps {
            Maps::Json(mut reply) => {
                reply.join_paths(&paths);
                reply
            }
            Maps::Raw(raw) => {
                let maps = if raw.is_empty() {
                    RawMaps::default()
                } else {
                    parse_maps_raw(raw.as_bytes()).map_err(|source| CollectError::Parse {
                        command: SHOW_MAPS_RAW,
                        source,
                    })?
                };
                drop(raw);
                multipathd::MapsReply::from_raw(maps, &paths)
            }
        };
        drop(paths);
        let size_errors = std::cell::RefCell::new(Vec::new());
        let mut report = summarize_owned(reply, |dm| match read_map_size(sysfs_root, dm) {
            Ok(size) => Some(size),
            Err(e) => {
                size_errors.borrow_mut().push(e.to_string());
                None
            }
        });
        report.enrich_paths(|dev| Some(read_path_info(sysfs_root, dev)).filter(|i| !i.is_empty()));
        let size_errors = size_errors.into_inner();
        if !size_errors.is_empty() {
            report.errors.push(format!(
                "map size unknown for {} map(s): {}",
                size_errors.len(),
                size_errors[0]
            ));
        }
        Ok(report)
    }
}

/// What the replies of a collection were, without keeping them: a keyed hash and the length of
/// each text (the JSON or raw maps reply, and the paths reply). Keeping the texts themselves
/// for comparison cost up to two 32 MiB replies per collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    paths: (u64, usize),
    /// `true`: the JSON maps reply; `false`: the raw fallback.
    json: bool,
    maps: (u64, usize),
}

impl Fingerprint {
    fn of(keys: &std::hash::RandomState, paths: &str, json: bool, maps: &str) -> Fingerprint {
        use std::hash::BuildHasher as _;
        Fingerprint {
            paths: (keys.hash_one(paths), paths.len()),
            json,
            maps: (keys.hash_one(maps), maps.len()),
        }
    }
}

/// A job for the [`Worker`].
type Job = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// One long-lived thread (with its own single-threaded runtime) for the collector's asking,
/// parsing and summarizing. The allocator (glibc) gives each thread its own arena and keeps
/// freed memory there: a collection that hops between the runtime's worker threads leaves a
/// big reply's worth of freed memory in each of them; on one thread the next collection
/// reuses it. The runtime's workers are not blocked by a long parse either.
#[derive(Debug, Default)]
struct Worker {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

impl Worker {
    /// Run `f` to completion on the worker thread (started on first use; on the caller's
    /// runtime if it cannot be started).
    async fn run<T: Send + 'static>(
        &mut self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, CollectError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::pin(async move {
            let _ = tx.send(f.await);
        });
        if self.jobs.is_none() {
            self.jobs = Worker::start();
        }
        match &self.jobs {
            Some(jobs) => {
                if let Err(std::sync::mpsc::SendError(job)) = jobs.send(job) {
                    self.jobs = None;
                    job.await;
                }
            }
            None => job.await,
        }
        rx.await.map_err(|_| CollectError::Worker)
    }

    fn start() -> Option<std::sync::mpsc::Sender<Job>> {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the collector's runtime; collecting inline");
                return None;
            }
        };
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("mpcluster-collect".to_owned())
            .spawn(move || {
                for job in queue {
                    runtime.block_on(job);
                }
            });
        match started {
            Ok(_) => Some(jobs),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the collector's thread; collecting inline");
                None
            }
        }
    }
}

/// The agent loop's collector: asks multipathd every time, but parses and summarizes again
/// only when a reply changed (or every `reparse_after`, which also re-reads the map sizes).
/// On a quiet node a tick then costs two socket round trips and hashing the two replies.
///
/// Memory: the replies are not kept (only their [`Fingerprint`]), a reply's text is dropped
/// as soon as it is parsed, and the previous report is dropped before the next is built, so a
/// collection holds at most one reply with its parsed model, next to the report being built.
#[derive(Debug)]
pub struct Collector {
    client: MultipathdClient,
    sysfs_root: std::path::PathBuf,
    reparse_after: std::time::Duration,
    /// Keys of the reply fingerprints (random, so a crafted reply cannot collide on purpose).
    keys: std::hash::RandomState,
    /// Where replies are parsed and summarized.
    worker: Worker,
    last: Option<(Fingerprint, std::sync::Arc<Collected>, std::time::Instant)>,
}

/// A collection's report with its per-WWID summaries (shared while nothing changes).
#[derive(Debug, PartialEq)]
pub struct Collected {
    /// The node report (detail).
    pub report: NodeReport,
    /// Its summaries (the broadcast).
    pub summaries:
        std::collections::BTreeMap<mpcluster_core::Wwid, mpcluster_core::broadcast::MapSummary>,
}

impl Collector {
    /// A collector re-reading sizes at least every `reparse_after`.
    pub fn new(
        client: MultipathdClient,
        sysfs_root: impl Into<std::path::PathBuf>,
        reparse_after: std::time::Duration,
    ) -> Self {
        Collector {
            client,
            sysfs_root: sysfs_root.into(),
            reparse_after,
            keys: std::hash::RandomState::new(),
            worker: Worker::default(),
            last: None,
        }
    }

    /// The client (for other commands such as `reconfigure`).
    pub fn client(&self) -> &MultipathdClient {
        &self.client
    }

    /// Collect; the same report as [`collect`].
    pub async fn collect(&mut self) -> Result<std::sync::Arc<Collected>, CollectError> {
        let result = self.collect_inner().await;
        if result.is_err() {
            self.last = None;
        }
        result
    }

    async fn collect_inner(&mut self) -> Result<std::sync::Arc<Collected>, CollectError> {
        let client = self.client.clone();
        let (paths, json) = self
            .worker
            .run(async move { ask_json(&client).await })
            .await??;
        let fresh = self
            .last
            .as_ref()
            .is_some_and(|(_, _, at)| at.elapsed() < self.reparse_after);
        let unchanged = |last: &Option<(Fingerprint, std::sync::Arc<Collected>, _)>,
                         fingerprint: &Fingerprint| match last {
            Some((seen, report, _)) if fresh && seen == fingerprint => {
                Some(std::sync::Arc::clone(report))
            }
            _ => None,
        };
        // Same JSON as last time (which parsed): nothing to do.
        let json_fingerprint = json
            .as_deref()
            .map(|j| Fingerprint::of(&self.keys, &paths, true, j));
        if let Some(fp) = &json_fingerprint {
            if let Some(report) = unchanged(&self.last, fp) {
                return Ok(report);
            }
            // A new JSON reply: the previous report is not needed any more, do not hold it
            // next to the new reply and its parse.
            self.last = None;
        }
        // Parsed on the worker thread; the text is dropped there as soon as it is parsed.
        let parsed = match json {
            Some(text) => Some(
                self.worker
                    .run(async move { parse_maps_json(text.as_bytes()) })
                    .await?,
            ),
            None => None,
        };
        let replies = finish(&self.client, paths, parsed).await?;
        let fingerprint = match &replies.maps {
            Maps::Raw(raw) => {
                let fp = Fingerprint::of(&self.keys, &replies.paths, false, raw);
                if let Some(report) = unchanged(&self.last, &fp) {
                    return Ok(report);
                }
                fp
            }
            // A parsed JSON reply always had a text, so a fingerprint.
            Maps::Json(_) => json_fingerprint.unwrap_or(Fingerprint {
                paths: (0, 0),
                json: true,
                maps: (0, 0),
            }),
        };
        // The previous report is not needed any more: do not hold it next to the new one.
        self.last = None;
        let sysfs_root = self.sysfs_root.clone();
        let collected = self
            .worker
            .run(async move {
                replies.report(&sysfs_root).map(|report| {
                    std::sync::Arc::new(Collected {
                        summaries: report.summaries(),
                        report,
                    })
                })
            })
            .await??;
        self.last = Some((
            fingerprint,
            std::sync::Arc::clone(&collected),
            std::time::Instant::now(),
        ));
        Ok(collected)
    }
}
