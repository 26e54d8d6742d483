//! What the documents look like to clients: the API's response data and the CLI's `--format
//! json` output are these values, so both show the same thing. Field errors of a change are
//! keyed by the paths of these views (see the crate docs).
//!
//! With the `schema` feature every view derives `utoipa::ToSchema`, so the OpenAPI document
//! describes exactly what is sent.

use std::collections::BTreeMap;

use mpcluster_core::Wwid;
use mpcluster_core::config::{KnobSpec, Knobs, WwidEntry};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::storage::Storage;
use serde::Serialize;

/// The answer to every successful change: the document's new digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Written {
    /// The new digest of the changed document (send it with the next change).
    pub digest: ConfigDigest,
}

/// The global multipath knobs, their digest, and the knob table for building forms.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ConfigView {
    /// The knobs set in `defaults` (`{"polling-interval": 5, ...}`); unset knobs take
    /// multipath's own defaults.
    pub defaults: Knobs,
    /// The document's digest.
    pub digest: ConfigDigest,
    /// What mpcluster always sets in `defaults` (`{"<keyword>": "<value>"}`), not editable.
    pub fixed: BTreeMap<String, String>,
    /// Every knob mpcluster manages: its name, keyword, accepted values, whether it may be set
    /// per LUN, and a description.
    pub knobs: Vec<KnobSpec>,
}

/// One allow-listed LUN: its WWID, alias and per-LUN knobs (`{"wwid", "alias"?, "<knob>":
/// value...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WwidView {
    /// The LUN's WWID.
    pub wwid: Wwid,
    /// Its alias and per-LUN knobs.
    #[serde(flatten)]
    pub entry: WwidEntry,
}

/// The allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WwidList {
    /// The multipath configuration document's digest.
    pub digest: ConfigDigest,
    /// The entries, sorted by WWID.
    pub wwids: Vec<WwidView>,
}

/// One allow-list entry with the document's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WwidDetail {
    /// The multipath configuration document's digest.
    pub digest: ConfigDigest,
    /// The entry.
    #[serde(flatten)]
    pub entry: WwidView,
}

/// The admin's verbatim `devices` / `overrides` sections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OverridesView {
    /// The text exactly as stored (empty when none).
    pub content: String,
    /// The overrides document's digest (its own: a change of the multipath configuration does
    /// not make it stale).
    pub digest: ConfigDigest,
}

/// The storage definitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StorageList {
    /// The storage document's digest.
    pub digest: ConfigDigest,
    /// The storages, in their stored order.
    pub storages: Vec<Storage>,
}

/// One storage definition with the document's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StorageDetail {
    /// The storage document's digest.
    pub digest: ConfigDigest,
    /// The storage.
    #[serde(flatten)]
    pub storage: Storage,
}
