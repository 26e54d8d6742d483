//! What the documents look like to clients: the API's response data and the CLI's `--format
//! json` output are these values, so both show the same thing. Field errors of a change are
//! keyed by the paths of these views (see the crate docs).
//!
//! With the `schema` feature every view derives `utoipa::ToSchema`, so the OpenAPI document
//! describes exactly what is sent.

use std::collections::BTreeMap;

use mpcluster_core::config::{KnobSpec, Knobs, WwidEntry};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::storage::Storage;
use mpcluster_core::{StorageId, Wwid};
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

/// The storage definitions, where they come from, and how they depend on each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StorageList {
    /// The digest of the storage document (in Proxmox mode: of storage.cfg).
    pub digest: ConfigDigest,
    /// Where the storages come from, and whether they can be edited here.
    pub source: StorageSource,
    /// The storages, in their stored order (storage.cfg: file order).
    pub storages: Vec<Storage>,
    /// Per multipath storage that has any: the LVM storages whose base is on it.
    #[serde(rename = "used-by")]
    pub used_by: BTreeMap<StorageId, Vec<StorageId>>,
    /// Proxmox mode: per storage, its section in storage.cfg (absent otherwise).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub origins: BTreeMap<StorageId, StorageOrigin>,
}

/// Where the storage definitions come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub struct StorageSource {
    /// `mpcluster`: mpcluster's own storage document, edited here. `pve`: Proxmox VE's
    /// storage.cfg, followed as it changes and never edited by mpcluster.
    pub kind: StorageSourceKind,
    /// `pve`: the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Whether storages can be added, changed and removed through mpcluster.
    pub editable: bool,
    /// When not editable: why, and what to use instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `pve`: sections mpcluster would use but cannot (bad values, malformed lines), each with
    /// its line and the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// The kinds of [`StorageSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StorageSourceKind {
    /// mpcluster's storage document.
    Mpcluster,
    /// Proxmox VE's storage.cfg.
    Pve,
}

/// Where a storage of storage.cfg is defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct StorageOrigin {
    /// 1-based line of its section.
    pub line: usize,
    /// A multipath storage standing for an iSCSI storage of the file (the base of LVM
    /// storages): that iSCSI storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iscsi: Option<StorageId>,
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
