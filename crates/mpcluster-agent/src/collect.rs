//! One collection: ask multipathd, parse, read map sizes from sysfs, summarize into a
//! [`NodeReport`]. The parsing and summarizing are `mpcluster-core`'s; this module only does
//! the I/O in the order `mpcluster_core::multipathd` documents.
//!
//! Entry point: [`collect`].

use std::path::Path;

use mpcluster_core::multipathd::{
    self, NodeReport, ParseError, RawMaps, RawPaths, Recovery, SHOW_MAPS_JSON, parse_maps_json,
    parse_maps_raw, parse_paths_raw, summarize,
};

use crate::client::{ClientError, MultipathdClient};
use crate::sysfs::read_map_size;

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
            CollectError::Parse { .. } => None,
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
    let replies = ask(client).await?;
    replies.report(sysfs_root)
}

/// The replies one collection is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replies {
    paths: String,
    /// `Ok(json)`, or `Err(raw maps)` when the JSON was unusable.
    maps: Result<String, String>,
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

/// Decide between the JSON and the raw fallback (asking for the raw maps if needed).
async fn finish(
    client: &MultipathdClient,
    paths: String,
    json: Option<String>,
) -> Result<Replies, CollectError> {
    if let Some(text) = json {
        match parse_maps_json(text.as_bytes()) {
            Ok(_) => {
                return Ok(Replies {
                    paths,
                    maps: Ok(text),
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
        maps: Err(raw),
    })
}

async fn ask(client: &MultipathdClient) -> Result<Replies, CollectError> {
    let (paths, json) = ask_json(client).await?;
    finish(client, paths, json).await
}

impl Replies {
    /// Parse, join, read sizes, summarize.
    fn report(&self, sysfs_root: &Path) -> Result<NodeReport, CollectError> {
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
        let reply = match &self.maps {
            Ok(json) => {
                let mut reply =
                    parse_maps_json(json.as_bytes()).map_err(|source| CollectError::Parse {
                        command: SHOW_MAPS_JSON,
                        source,
                    })?;
                reply.join_paths(&paths);
                reply
            }
            Err(raw) => {
                let maps = if raw.is_empty() {
                    RawMaps::default()
                } else {
                    parse_maps_raw(raw.as_bytes()).map_err(|source| CollectError::Parse {
                        command: SHOW_MAPS_RAW,
                        source,
                    })?
                };
                multipathd::MapsReply::from_raw(maps, &paths)
            }
        };
        let size_errors = std::cell::RefCell::new(Vec::new());
        let mut report = summarize(&reply, |dm| match read_map_size(sysfs_root, dm) {
            Ok(size) => Some(size),
            Err(e) => {
                size_errors.borrow_mut().push(e.to_string());
                None
            }
        });
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

/// The agent loop's collector: asks multipathd every time, but parses and summarizes again
/// only when a reply changed (or every `reparse_after`, which also re-reads the map sizes).
/// On a quiet node a tick then costs two socket round trips and two string comparisons.
#[derive(Debug)]
pub struct Collector {
    client: MultipathdClient,
    sysfs_root: std::path::PathBuf,
    reparse_after: std::time::Duration,
    last: Option<(Replies, std::sync::Arc<Collected>, std::time::Instant)>,
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
        let (paths, json) = ask_json(&self.client).await?;
        let fresh = self
            .last
            .as_ref()
            .is_some_and(|(_, _, at)| at.elapsed() < self.reparse_after);
        // Same JSON as last time (which parsed): nothing to do.
        if fresh
            && let Some((last, report, _)) = &self.last
            && last.paths == paths
            && json.is_some()
            && last.maps.as_ref().ok() == json.as_ref()
        {
            return Ok(std::sync::Arc::clone(report));
        }
        let replies = finish(&self.client, paths, json).await?;
        if fresh
            && let Some((last, report, _)) = &self.last
            && *last == replies
        {
            return Ok(std::sync::Arc::clone(report));
        }
        let report = replies.report(&self.sysfs_root)?;
        let collected = std::sync::Arc::new(Collected {
            summaries: report.summaries(),
            report,
        });
        self.last = Some((
            replies,
            std::sync::Arc::clone(&collected),
            std::time::Instant::now(),
        ));
        Ok(collected)
    }
}
