//! One collection: ask multipathd, parse, read map sizes from sysfs, summarize into a
//! [`NodeReport`]. The parsing and summarizing are `mpcluster-core`'s; this module only does
//! the I/O in the order `mpcluster_core::multipathd` documents.
//!
//! Entry point: [`collect`].

use std::path::Path;

use mpcluster_core::multipathd::{
    self, NodeReport, ParseError, Recovery, SHOW_MAPS_JSON, parse_maps_json, parse_maps_raw,
    parse_paths_raw, summarize,
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

/// Collect this node's multipath state.
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
    let paths_text = client
        .show_paths_raw(multipathd::PATHS_RAW_FORMAT)
        .await
        .map_err(|source| CollectError::Client {
            command: SHOW_PATHS_RAW,
            source,
        })?;
    let paths = parse_paths_raw(paths_text.as_bytes()).map_err(|source| CollectError::Parse {
        command: SHOW_PATHS_RAW,
        source,
    })?;

    let json = match client.show_maps_json().await {
        Ok(text) => Some(text),
        Err(ClientError::UnknownCommand { .. }) => None,
        Err(source) => {
            return Err(CollectError::Client {
                command: SHOW_MAPS_JSON,
                source,
            });
        }
    };
    let json_parsed = json.map(|text| parse_maps_json(text.as_bytes()));
    let reply = match json_parsed {
        Some(Ok(mut reply)) => {
            reply.join_paths(&paths);
            reply
        }
        Some(Err(e)) if e.recovery() != Recovery::FallBackToRaw => {
            return Err(CollectError::Parse {
                command: SHOW_MAPS_JSON,
                source: e,
            });
        }
        fallback => {
            if let Some(Err(e)) = &fallback {
                tracing::info!(error = %e, "show maps json unusable; using the raw formats");
            }
            let maps_text = client
                .show_maps_raw(multipathd::MAPS_RAW_FORMAT)
                .await
                .map_err(|source| CollectError::Client {
                    command: SHOW_MAPS_RAW,
                    source,
                })?;
            let maps =
                parse_maps_raw(maps_text.as_bytes()).map_err(|source| CollectError::Parse {
                    command: SHOW_MAPS_RAW,
                    source,
                })?;
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
