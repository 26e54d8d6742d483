//! mpcluster-config: the cluster's configuration documents and every operation on them, over
//! any [`ClusterStore`](mpcluster_store::ClusterStore). Transport-neutral: no HTTP, no CLI.
//! The server's handlers, the CLI and the agent call this crate; none re-implements a part of
//! it.
//!
//! A configuration change goes through one path, whoever asks for it:
//!
//! 1. **parsed**: a [`Form`] (the properties to set, `delete`, `digest`; every problem of the
//!    request at once);
//! 2. **validated**: the resource's operation ([`defaults::update`], [`wwids::add`],
//!    [`overrides::replace`], [`storage::add`], ...) with the core model's all-or-nothing
//!    updates; every field error at once, keyed as in the resource's [`views`];
//! 3. **stored**: [`edit`] re-reads the document, checks the digest and writes with a
//!    compare-and-swap on the digest it read ([`EditError::Stale`] / a store conflict when
//!    someone else was faster; nothing is written then, nor on any other error);
//! 4. **applied**: each node's agent reads the stored documents with
//!    [`node_config::read_node_config`] and renders them.
//!
//! Modules:
//! - [`document`]: the [`Document`] trait (multipath config, overrides, storages, tokens),
//!   [`load`], [`edit`], [`edit_retrying`].
//! - [`error`]: [`EditError`] (no HTTP status in it: the server maps it once).
//! - [`form`]: [`Form`], a change request.
//! - [`defaults`], [`wwids`], [`overrides`], [`storage`], [`tokens`]: the operations per
//!   resource.
//! - [`views`]: what clients see (the API's response data and the CLI's JSON output).
//! - [`snapshot`]: [`read_snapshot`], everything the status needs, from any store.
//! - [`events`]: the event history in the store (recording, the audit trail of every
//!   [`edit`], the recorder lease, queries).
//! - [`notify`]: the notification targets document and the notification outbox.
//! - [`nodes`]: [`nodes::remove_node`], forgetting a departed node.
//! - [`plan`]: the nodes' apply plans and their acceptance (`config plan`, `config accept`).
//! - [`node_config`]: the documents a node applies, parsed for the agent.
//! - [`pve`]: Proxmox mode ([`pve::PveMode`]): membership from corosync, storages from
//!   storage.cfg (followed, never edited).
//!
//! With the `schema` feature, the views derive `utoipa::ToSchema` for the API's OpenAPI
//! document.
#![warn(missing_docs)]

pub mod defaults;
pub mod document;
pub mod error;
pub mod events;
pub mod form;
pub mod node_config;
pub mod nodes;
pub mod notify;
pub mod overrides;
pub mod plan;
pub mod pve;
pub mod snapshot;
pub mod storage;
pub mod tokens;
pub mod views;
pub mod wwids;

pub use document::{Document, Edited, Loaded, absent_digest, edit, edit_retrying, load};
pub use error::{CHANGED_MEANWHILE, EditError};
pub use form::Form;
pub use snapshot::{ReadSnapshot, read_snapshot};

/// Unix time now (seconds).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
