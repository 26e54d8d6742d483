//! [`StoreError`]: the one error type of every [`ClusterStore`](crate::ClusterStore) operation.
//!
//! Variants carry their context in fields (which store, which key or document, which path);
//! underlying errors are attached as `#[source]` and never interpolated into `Display`, so log
//! the whole chain (`{err:#}` with anyhow, or walk `source()`). The HTTP edge maps
//! [`StoreError::Unavailable`] to 503 and [`StoreError::Conflict`] to 409.

use std::path::PathBuf;

/// A boxed underlying error (etcd client errors, timeouts).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a cluster store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time (all endpoints tried).
    /// Transient: retry later. Maps to HTTP 503.
    #[error("{store} is unavailable: {reason}")]
    Unavailable {
        /// The store, as [`ClusterStore::describe`](crate::ClusterStore::describe) names it.
        store: String,
        /// What was tried and what happened, in one line.
        reason: String,
        /// The last underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// A document write or delete whose expectation ([`Expect`](crate::Expect)) did not hold:
    /// someone else changed (or created, or deleted) the document since it was read.
    #[error("document '{doc}' was changed concurrently (digest mismatch); re-read it and retry")]
    Conflict {
        /// The document name.
        doc: String,
    },

    /// A node KV value over its key's size limit ([`crate::names::value_limit`]). Nothing was
    /// written.
    #[error("value for node KV key '{key}' is {len} bytes; the limit is {limit} bytes")]
    ValueTooLarge {
        /// The node KV key.
        key: String,
        /// The value's length in bytes.
        len: usize,
        /// The largest accepted length in bytes.
        limit: usize,
    },

    /// A document over [`crate::names::DOC_MAX_LEN`]. Nothing was written.
    #[error("document '{doc}' is {len} bytes; the limit is {limit} bytes")]
    DocumentTooLarge {
        /// The document name.
        doc: String,
        /// The content's length in bytes.
        len: usize,
        /// The largest accepted length in bytes.
        limit: usize,
    },

    /// A node KV key or document name that breaks the naming rule (`[a-z0-9-]{1,64}`).
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        /// What was being named ("node KV key", "document name", "cluster name").
        kind: &'static str,
        /// The rejected name, cut to 80 characters.
        value: String,
        /// The rule it broke.
        reason: String,
    },

    /// The store refused our credentials (wrong user or password, missing credentials, or
    /// missing permission). Not retried in a loop: calls fail fast during a back-off period.
    #[error("{store} refused authentication{}: check the user name and password", user_hint(.user))]
    Auth {
        /// The store, as `describe()` names it.
        store: String,
        /// The user we authenticated as, if any.
        user: Option<String>,
        /// The server's answer.
        #[source]
        source: Option<BoxError>,
    },

    /// [`ClusterStore::join`](crate::ClusterStore::join) of a node the membership does not
    /// list, where the membership is kept outside the store (the pve store: corosync). The
    /// node must run under its cluster name.
    #[error(
        "node '{node}' is not a member according to {membership} (listed: {listed}); \
         run the agent under this node's cluster name"
    )]
    NotMember {
        /// The node that tried to join.
        node: String,
        /// Where the membership comes from, e.g. `the corosync membership in /etc/pve/.members`.
        membership: String,
        /// The nodes listed there, comma-separated.
        listed: String,
    },

    /// A local file operation failed (embedded or pve store files, TLS or password files).
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The store holds data this version cannot read (not UTF-8, unknown layout).
    #[error("{store} holds unreadable data at {location}: {problem}")]
    Corrupt {
        /// The store, as `describe()` names it.
        store: String,
        /// Key or path of the bad data.
        location: String,
        /// What is wrong with it.
        problem: String,
    },

    /// The store cannot be opened as configured (backend not in this build, TLS files that do
    /// not parse, a password variable that is not set).
    #[error("cannot open {store}: {problem}")]
    Config {
        /// The store being opened.
        store: String,
        /// What is wrong.
        problem: String,
    },
}

fn user_hint(user: &Option<String>) -> String {
    match user {
        Some(u) => format!(" for user '{u}'"),
        None => " (no user configured)".to_owned(),
    }
}

impl StoreError {
    /// `true` for errors worth retrying later as is ([`StoreError::Unavailable`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_does_not_repeat_source() {
        let e = StoreError::Unavailable {
            store: "etcd store http://127.0.0.1:2379 (cluster 'default')".into(),
            reason: "no endpoint answered within 3s".into(),
            source: Some("connection refused".into()),
        };
        let shown = e.to_string();
        assert!(!shown.contains("connection refused"), "{shown}");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("connection refused")
        );
        let e = StoreError::io("/x", std::io::Error::other("boom"));
        assert_eq!(e.to_string(), "I/O error on /x");
    }

    #[test]
    fn auth_names_store_and_user() {
        let e = StoreError::Auth {
            store: "etcd store http://h:2379 (cluster 'c')".into(),
            user: Some("mp".into()),
            source: None,
        };
        assert_eq!(
            e.to_string(),
            "etcd store http://h:2379 (cluster 'c') refused authentication for user 'mp': check the user name and password"
        );
    }
}
