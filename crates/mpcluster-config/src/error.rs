//! [`EditError`]: why reading or changing a cluster document failed. No HTTP status here: the
//! server's `ApiError` maps it to one, the CLI to exit codes.

use mpcluster_core::config::{ConfigError, ConfigErrors};
use mpcluster_store::{BoxError, StoreError};

/// How the message of every lost digest race begins (API 409, CLI exit 1); what changed
/// follows.
pub const CHANGED_MEANWHILE: &str = "configuration changed meanwhile — reload and retry";

/// Why a configuration read or write failed. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The request's digest is not the stored one (someone changed the document since the
    /// client read it), or another writer changed the part of the document this edit changes
    /// between our read and our write.
    #[error("configuration changed meanwhile — reload and retry: {detail}")]
    Stale {
        /// What changed, as far as known ("the multipath configuration changed meanwhile:
        /// WWID 3600... added by another writer").
        detail: String,
    },
    /// The change is invalid; every field error is listed, keyed as in the resource's view.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// The request is refused as a whole (e.g. a token without privileges).
    #[error("{0}")]
    Rejected(String),
    /// The document is not mpcluster's to change here: in Proxmox mode the storages are
    /// Proxmox's own storage.cfg (the message says what to use instead).
    #[error("{0}")]
    ReadOnly(String),
    /// The addressed entry does not exist.
    #[error("{what} does not exist")]
    NotFound {
        /// What was looked for, e.g. `WWID 3600a0... in the allow-list`.
        what: String,
    },
    /// The entry to create exists already.
    #[error("{what} exists already (remove it first)")]
    Exists {
        /// What, e.g. `token 'admin'`.
        what: String,
    },
    /// The stored document cannot be loaded (not JSON, or invalid): nothing can be edited
    /// until it is repaired.
    #[error("the stored document '{doc}' cannot be read")]
    Unreadable {
        /// The document name.
        doc: &'static str,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// Encoding the new document failed (a bug).
    #[error("cannot encode the document '{doc}'")]
    Encode {
        /// The document name.
        doc: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// Hashing a token secret failed (a bug: the parameters are fixed and valid).
    #[error("cannot hash the token secret")]
    Hash(#[source] crate::tokens::HashError),
    /// The cluster store failed, or refused the write because the document changed between
    /// our read and our write ([`StoreError::Conflict`]).
    #[error("cluster store operation on the document '{doc}' failed")]
    Store {
        /// The document name.
        doc: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
}

impl EditError {
    /// A lost digest race: the request's digest was stale, or a concurrent write won the
    /// compare-and-swap.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            EditError::Stale { .. }
                | EditError::Store {
                    source: StoreError::Conflict { .. },
                    ..
                }
        )
    }

    /// The store could not be reached (worth retrying later).
    pub fn is_transient(&self) -> bool {
        matches!(self, EditError::Store { source, .. } if source.is_transient())
    }

    /// One field error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> EditError {
        EditError::Invalid(one_error(field, message))
    }
}

/// Field errors with one entry.
pub(crate) fn one_error(field: impl Into<String>, message: impl Into<String>) -> ConfigErrors {
    ConfigErrors(vec![ConfigError::new(field, message)])
}
