//! The configuration API: the cluster's multipath configuration (`defaults` knobs, the WWID
//! allow-list with aliases and per-LUN knobs), the hardware overrides and the storage
//! definitions, each a digest-guarded store document ([`doc_names`]).
//!
//! Every write goes through [`edit`]: it re-reads the document, checks the request's `digest`
//! (when given) against the stored one ([`EditError::Stale`], 409), applies the change with the
//! core model's validating, all-or-nothing updates ([`EditError::Invalid`], 400), and writes
//! with a compare-and-swap on the digest it read ([`Expect::Digest`], or [`Expect::Absent`] for
//! a document that does not exist yet), so a concurrent writer loses with 409 and a rejected
//! write stores nothing. The CLI uses the same [`load`], [`edit`], [`parse_form`] and storage
//! helpers, so the API and the CLI accept and refuse exactly the same input.
//!
//! Request bodies are JSON objects (Proxmox style): the properties to set, an optional
//! `delete` list (array, or a string separated by `,`, `;` or spaces) and an optional `digest`.
//! Replies are `{"data": ...}`; writes reply `{"data": {"digest": "<new digest>"}}`.
//!
//! Field errors (`errors` of a 400 body) are keyed by their path in the resource's GET
//! representation: `defaults.<knob>` on `/cluster/multipath/config`; `wwid`, `alias` and
//! `<knob>` on the WWID endpoints (the model's `wwids.<wwid>.` prefix is dropped there, the
//! entry being the resource); `content` on `/cluster/multipath/overrides`; `type`, `id`,
//! `vgname`, `base`, `nodes` and `disable` on `/storage`; plus `digest` and `delete`.
//!
//! An absent document reads as empty, with the digest of empty content ([`absent_digest`]):
//! a client that saw nothing and sends that digest still loses against a concurrent creator.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mpcluster_core::StorageId;
use mpcluster_core::config::{
    ConfigError, ConfigErrors, FIXED_DEFAULTS, KNOBS, MultipathConfig, Overrides, WwidEntry,
    add_wwid, apply_defaults_update, remove_wwid, set_wwid_entry,
};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::ids::{NodeName, Wwid};
use mpcluster_core::snapshot::doc_names;
use mpcluster_core::storage::{
    LvmBase, LvmStorage, MultipathStorage, Storage, StorageConfig, StorageConfigError, VgName,
};
use mpcluster_store::{BoxError, ClusterStore, Expect, StoreError};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::{ApiError, ErrorKind};

/// The message of every lost digest race (409), exactly.
pub const CHANGED_MEANWHILE: &str = "configuration changed meanwhile — reload and retry";

/// The digest an absent document reads with: that of empty content.
pub fn absent_digest() -> ConfigDigest {
    ConfigDigest::of("")
}

/// Why a configuration read or write failed. [`ApiError`] maps it to HTTP; the CLI to exit
/// codes.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The request's digest is not the stored one: someone changed the document since the
    /// client read it. Nothing was written.
    #[error("configuration changed meanwhile — reload and retry")]
    Stale,
    /// The change is invalid; every field error is listed. Nothing was written.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// The request itself is malformed (not a JSON object, ...). Nothing was written.
    #[error("{0}")]
    BadRequest(String),
    /// The addressed entry does not exist.
    #[error("{what} does not exist")]
    NotFound {
        /// What was looked for, e.g. `WWID 3600a0... in the allow-list`.
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
            EditError::Stale
                | EditError::Store {
                    source: StoreError::Conflict { .. },
                    ..
                }
        )
    }

    fn field(field: impl Into<String>, message: impl Into<String>) -> EditError {
        EditError::Invalid(one_error(field, message))
    }
}

fn one_error(field: impl Into<String>, message: impl Into<String>) -> ConfigErrors {
    ConfigErrors(vec![ConfigError::new(field, message)])
}

/// A digest-guarded cluster document the API edits.
pub trait Document: Sized + Send + 'static {
    /// The store document name ([`doc_names`]).
    const NAME: &'static str;
    /// The empty document (what an absent one reads as).
    fn empty() -> Self;
    /// Load the stored text.
    fn parse(text: &str) -> Result<Self, BoxError>;
    /// The text to store.
    fn render(&self) -> Result<String, serde_json::Error>;
}

impl Document for MultipathConfig {
    const NAME: &'static str = doc_names::CONFIG;

    fn empty() -> Self {
        MultipathConfig::new()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(MultipathConfig::from_json(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string_pretty(&self.to_json())? + "\n")
    }
}

impl Document for Overrides {
    const NAME: &'static str = doc_names::OVERRIDES;

    fn empty() -> Self {
        Overrides::empty()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(Overrides::from_json(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string(self)? + "\n")
    }
}

impl Document for StorageConfig {
    const NAME: &'static str = doc_names::STORAGE;

    fn empty() -> Self {
        StorageConfig::default()
    }

    fn parse(text: &str) -> Result<Self, BoxError> {
        Ok(serde_json::from_str(text)?)
    }

    fn render(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }
}

/// A document as read, with the digest it was read at.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The document ([`Document::empty`] when absent).
    pub value: T,
    /// Its digest ([`absent_digest`] when absent).
    pub digest: ConfigDigest,
    /// Whether the document exists in the store.
    pub stored: bool,
}

/// Read document `T`.
pub async fn load<T: Document>(store: &dyn ClusterStore) -> Result<Loaded<T>, EditError> {
    match store
        .read_doc(T::NAME)
        .await
        .map_err(|source| EditError::Store {
            doc: T::NAME,
            source,
        })? {
        None => Ok(Loaded {
            value: T::empty(),
            digest: absent_digest(),
            stored: false,
        }),
        Some((text, digest)) => Ok(Loaded {
            value: T::parse(&text).map_err(|source| EditError::Unreadable {
                doc: T::NAME,
                source,
            })?,
            digest,
            stored: true,
        }),
    }
}

/// The result of a successful [`edit`].
#[derive(Debug, Clone)]
pub struct Edited<R> {
    /// What the change returned.
    pub output: R,
    /// The new digest of the document.
    pub digest: ConfigDigest,
}

/// Change document `T`: re-read it, refuse if `expected` is given and is not its digest, apply
/// `op` (which validates; on error nothing is written) and write with a compare-and-swap on the
/// digest just read.
pub async fn edit<T, R, F>(
    store: &dyn ClusterStore,
    expected: Option<ConfigDigest>,
    op: F,
) -> Result<Edited<R>, EditError>
where
    T: Document,
    F: FnOnce(&mut T) -> Result<R, EditError> + Send,
    R: Send,
{
    let current = load::<T>(store).await?;
    if expected.is_some_and(|want| want != current.digest) {
        return Err(EditError::Stale);
    }
    let mut next = current.value;
    let output = op(&mut next)?;
    let text = next.render().map_err(|source| EditError::Encode {
        doc: T::NAME,
        source,
    })?;
    let expect = if current.stored {
        Expect::Digest(current.digest)
    } else {
        Expect::Absent
    };
    let digest = store
        .write_doc(T::NAME, &text, expect)
        .await
        .map_err(|source| EditError::Store {
            doc: T::NAME,
            source,
        })?;
    Ok(Edited { output, digest })
}

/// A parsed request body: the properties to set, the `delete` list and the `digest`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form {
    /// The client's digest, if sent.
    pub digest: Option<ConfigDigest>,
    /// Properties to clear.
    pub delete: Vec<String>,
    /// Properties to set (everything but `digest` and `delete`).
    pub props: BTreeMap<String, Value>,
}

/// Split a Proxmox-style list (`a,b c;d`).
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|p| !p.is_empty())
}

/// Parse a digest given as a JSON value (`null` = none).
fn parse_digest(v: &Value) -> Result<Option<ConfigDigest>, ConfigErrors> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            s.parse()
                .map(Some)
                .map_err(|e: mpcluster_core::digest::DigestParseError| {
                    one_error("digest", e.to_string())
                })
        }
        _ => Err(one_error("digest", "must be a string of 64 hex digits")),
    }
}

/// Parse a request body (empty = no properties). The body must be a JSON object.
pub fn parse_form(body: &[u8]) -> Result<Form, EditError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Form::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| EditError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(EditError::BadRequest(
            "the request body must be a JSON object".to_owned(),
        ));
    };
    let mut errs = ConfigErrors::default();
    let digest = match top.remove("digest") {
        None => None,
        Some(v) => parse_digest(&v).unwrap_or_else(|e| {
            errs.0.extend(e.0);
            None
        }),
    };
    let delete = match top.remove("delete") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => split_list(&s).map(str::to_owned).collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => out.push(s),
                    _ => errs.0.push(ConfigError::new(
                        "delete",
                        "must list property names (strings)",
                    )),
                }
            }
            out
        }
        Some(_) => {
            errs.0.push(ConfigError::new(
                "delete",
                "must be a list of property names (an array, or a comma-separated string)",
            ));
            Vec::new()
        }
    };
    errs.into_result().map_err(EditError::Invalid)?;
    Ok(Form {
        digest,
        delete,
        props: top.into_iter().collect(),
    })
}

/// Re-key field errors: `prefix` (e.g. `wwids.<wwid>.`) is dropped, and a field equal to
/// `from` is renamed `to`.
fn rekey(errs: ConfigErrors, prefix: &str, rename: Option<(&str, &str)>) -> ConfigErrors {
    ConfigErrors(
        errs.0
            .into_iter()
            .map(|mut e| {
                if let Some(rest) = e.field.strip_prefix(prefix) {
                    e.field = rest.to_owned();
                }
                if let Some((from, to)) = rename
                    && e.field == from
                {
                    e.field = to.to_owned();
                }
                e
            })
            .collect(),
    )
}

/// A property name as an error key: as is when short and printable, else escaped and cut.
fn key_name(name: &str) -> String {
    if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        return name.to_owned();
    }
    let cut: String = name.chars().take(40).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < name.len() {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// WWID entries

/// The per-WWID field prefix the model uses.
fn entry_prefix(wwid: &str) -> String {
    format!("wwids.{wwid}.")
}

/// An allow-list entry as the API shows it: `{"wwid", "alias"?, "<knob>": value...}`.
pub fn entry_json(wwid: &Wwid, entry: &WwidEntry) -> Value {
    let mut m = Map::new();
    m.insert("wwid".to_owned(), Value::from(wwid.as_str()));
    m.extend(entry.to_json());
    Value::Object(m)
}

/// Validate a WWID given in a path.
fn path_wwid(wwid: &str) -> Result<Wwid, EditError> {
    Wwid::new(wwid).map_err(|e| EditError::field("wwid", e.to_string()))
}

/// Add a WWID with its properties (`alias`, per-LUN knobs), errors keyed as in the WWID
/// endpoints. Used by `POST /wwids` and the CLI.
pub fn add_entry(
    cfg: &mut MultipathConfig,
    wwid: &str,
    props: BTreeMap<String, Value>,
) -> Result<Wwid, EditError> {
    add_wwid(cfg, wwid, props).map_err(|e| EditError::Invalid(rekey(e, &entry_prefix(wwid), None)))
}

/// Update a listed WWID's properties, errors keyed as in the WWID endpoints. Used by
/// `PUT /wwids/{wwid}` and the CLI.
pub fn update_entry(
    cfg: &mut MultipathConfig,
    wwid: &str,
    mut props: BTreeMap<String, Value>,
    delete: Vec<String>,
) -> Result<(), EditError> {
    let w = path_wwid(wwid)?;
    if let Some(given) = props.remove("wwid")
        && given.as_str() != Some(w.as_str())
    {
        return Err(EditError::field(
            "wwid",
            "the WWID is given in the path and cannot be changed (remove the entry and add the \
             new WWID)",
        ));
    }
    if cfg.get(w.as_str()).is_none() {
        return Err(EditError::NotFound {
            what: format!("WWID {w} in the allow-list"),
        });
    }
    set_wwid_entry(cfg, w.as_str(), props, delete)
        .map_err(|e| EditError::Invalid(rekey(e, &entry_prefix(w.as_str()), None)))
}

/// Remove a listed WWID. Used by `DELETE /wwids/{wwid}` and the CLI.
pub fn remove_entry(cfg: &mut MultipathConfig, wwid: &str) -> Result<WwidEntry, EditError> {
    let w = path_wwid(wwid)?;
    if cfg.get(w.as_str()).is_none() {
        return Err(EditError::NotFound {
            what: format!("WWID {w} in the allow-list"),
        });
    }
    remove_wwid(cfg, w.as_str()).map_err(EditError::Invalid)
}

/// Validate overrides text, errors keyed `content`.
pub fn parse_overrides(content: String) -> Result<Overrides, EditError> {
    Overrides::parse(content)
        .map_err(|e| EditError::Invalid(rekey(e, "", Some(("overrides", "content")))))
}

// ---------------------------------------------------------------------------------------------
// Storages

/// The storage types the API manages.
pub const STORAGE_TYPES: &[&str] = &["multipath", "lvm"];

/// Properties of each type besides `type` and `id`.
fn storage_props(kind: &str) -> &'static [&'static str] {
    match kind {
        "lvm" => &["vgname", "base", "nodes", "disable"],
        _ => &["nodes", "disable"],
    }
}

/// Parsed storage properties (each `None` when not given).
#[derive(Default)]
struct StorageProps {
    nodes: Option<BTreeSet<NodeName>>,
    disable: Option<bool>,
    vgname: Option<VgName>,
    base: Option<LvmBase>,
}

fn parse_nodes(v: &Value) -> Result<BTreeSet<NodeName>, String> {
    let names: Vec<&str> = match v {
        Value::String(s) => split_list(s).collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().ok_or("must list node names (strings)"))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(
                "must be a list of node names (an array or a comma-separated string)".into(),
            );
        }
    };
    if names.is_empty() {
        return Err(
            "must name at least one node (delete it to make the storage available on every node)"
                .to_owned(),
        );
    }
    names
        .into_iter()
        .map(|n| NodeName::new(n).map_err(|e| e.to_string()))
        .collect()
}

fn parse_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::String(s) if s == "1" || s == "true" => Ok(true),
        Value::String(s) if s == "0" || s == "false" => Ok(false),
        _ => Err("must be a boolean (true/false or 1/0)".to_owned()),
    }
}

fn parse_storage_props(
    kind: &str,
    props: &BTreeMap<String, Value>,
    errs: &mut ConfigErrors,
) -> StorageProps {
    let allowed = storage_props(kind);
    let mut out = StorageProps::default();
    for (name, v) in props {
        let r: Result<(), String> = match name.as_str() {
            n if !allowed.contains(&n) => Err(format!(
                "unknown property of a {kind} storage (it takes {})",
                allowed.join(", ")
            )),
            "nodes" => parse_nodes(v).map(|n| out.nodes = Some(n)),
            "disable" => parse_bool(v).map(|b| out.disable = Some(b)),
            "vgname" => match v {
                Value::String(s) => VgName::new(s.as_str())
                    .map(|g| out.vgname = Some(g))
                    .map_err(|e| e.to_string()),
                _ => Err("must be a string".to_owned()),
            },
            "base" => match v {
                Value::String(s) => s
                    .parse::<LvmBase>()
                    .map(|b| out.base = Some(b))
                    .map_err(|e| e.to_string()),
                _ => Err("must be a string <multipath-storage-id>:<wwid>".to_owned()),
            },
            _ => Ok(()),
        };
        if let Err(m) = r {
            errs.0.push(ConfigError::new(key_name(name), m));
        }
    }
    out
}

fn storage_type(v: Option<&Value>) -> Result<&'static str, ConfigErrors> {
    let msg = || {
        format!(
            "must be one of {}: mpcluster manages only these storage types",
            STORAGE_TYPES.join(", ")
        )
    };
    match v {
        None => Err(one_error("type", format!("required; {}", msg()))),
        Some(Value::String(s)) => STORAGE_TYPES
            .iter()
            .find(|t| **t == s.as_str())
            .copied()
            .ok_or_else(|| one_error("type", msg())),
        Some(_) => Err(one_error("type", msg())),
    }
}

/// Build a new storage from its properties (`type`, `id` and the type's properties), every
/// field error listed. Used by `POST /storage` and the CLI.
pub fn new_storage(mut props: BTreeMap<String, Value>) -> Result<Storage, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let kind = storage_type(props.remove("type").as_ref());
    let id = match props.remove("id") {
        None => Err("required".to_owned()),
        Some(Value::String(s)) => StorageId::new(s).map_err(|e| e.to_string()),
        Some(_) => Err("must be a string".to_owned()),
    };
    let id = id.map_err(|m| errs.0.push(ConfigError::new("id", m))).ok();
    let kind = match kind {
        Ok(k) => k,
        Err(e) => {
            errs.0.extend(e.0);
            return Err(errs);
        }
    };
    let p = parse_storage_props(kind, &props, &mut errs);
    if kind == "lvm" {
        if !props.contains_key("vgname") {
            errs.0.push(ConfigError::new("vgname", "required"));
        }
        if !props.contains_key("base") {
            errs.0.push(ConfigError::new(
                "base",
                "required: <multipath-storage-id>:<wwid>",
            ));
        }
    }
    let storage = match (kind, id, p.vgname, p.base) {
        ("lvm", Some(id), Some(vgname), Some(base)) => Some(Storage::Lvm(LvmStorage {
            id,
            vgname,
            base,
            nodes: p.nodes,
            disable: p.disable.unwrap_or(false),
        })),
        ("multipath", Some(id), _, _) => Some(Storage::Multipath(MultipathStorage {
            id,
            nodes: p.nodes,
            disable: p.disable.unwrap_or(false),
        })),
        _ => None,
    };
    errs.into_result()?;
    // Every way to get `None` above pushed an error.
    storage.ok_or_else(|| one_error("type", "incomplete storage definition"))
}

/// Apply a partial update to a storage: properties in `props` are set, those in `delete`
/// (`nodes`, `disable`) cleared. `type` and `id` cannot change. Used by `PUT /storage/{id}`
/// and the CLI.
pub fn update_storage(
    current: &Storage,
    mut props: BTreeMap<String, Value>,
    delete: &[String],
) -> Result<Storage, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let kind = current.type_name();
    for (fixed, now) in [("type", kind), ("id", current.id().as_str())] {
        if let Some(v) = props.remove(fixed)
            && v.as_str() != Some(now)
        {
            errs.0.push(ConfigError::new(
                fixed,
                "fixed at creation; cannot be changed",
            ));
        }
    }
    for name in delete {
        let field = key_name(name);
        if props.contains_key(name) {
            errs.0.push(ConfigError::new(
                field,
                "both set and deleted in one update",
            ));
        } else if matches!(name.as_str(), "vgname" | "base") && kind == "lvm" {
            errs.0
                .push(ConfigError::new(field, "required; it cannot be deleted"));
        } else if !matches!(name.as_str(), "nodes" | "disable") {
            errs.0.push(ConfigError::new(
                field,
                format!("not a deletable property of a {kind} storage (nodes, disable)"),
            ));
        }
    }
    let p = parse_storage_props(kind, &props, &mut errs);
    errs.into_result()?;
    let del = |n: &str| delete.iter().any(|d| d == n);
    let mut next = current.clone();
    let (nodes, disable) = match &mut next {
        Storage::Multipath(m) => (&mut m.nodes, &mut m.disable),
        Storage::Lvm(l) => {
            if let Some(v) = p.vgname {
                l.vgname = v;
            }
            if let Some(b) = p.base {
                l.base = b;
            }
            (&mut l.nodes, &mut l.disable)
        }
    };
    if del("nodes") {
        *nodes = None;
    } else if let Some(n) = p.nodes {
        *nodes = Some(n);
    }
    if del("disable") {
        *disable = false;
    } else if let Some(d) = p.disable {
        *disable = d;
    }
    Ok(next)
}

/// The document's cross-reference check, as field errors.
fn check_storage_doc(cfg: &StorageConfig) -> Result<(), ConfigErrors> {
    cfg.validate().map_err(|e| {
        let field = match e {
            StorageConfigError::DuplicateId { .. } => "id",
            StorageConfigError::UnknownBase { .. }
            | StorageConfigError::BaseNotMultipath { .. } => "base",
        };
        one_error(field, e.to_string())
    })
}

/// Add a storage to the document (unique id, base on an existing multipath storage).
/// All-or-nothing.
pub fn add_storage(cfg: &mut StorageConfig, storage: Storage) -> Result<(), ConfigErrors> {
    if cfg.get(storage.id().as_str()).is_some() {
        return Err(one_error(
            "id",
            format!("storage '{}' already exists", storage.id()),
        ));
    }
    let mut next = cfg.clone();
    next.storages.push(storage);
    check_storage_doc(&next)?;
    *cfg = next;
    Ok(())
}

/// Replace the storage with `storage`'s id (keeping its position). All-or-nothing.
pub fn replace_storage(cfg: &mut StorageConfig, storage: Storage) -> Result<(), EditError> {
    let Some(pos) = cfg.storages.iter().position(|s| s.id() == storage.id()) else {
        return Err(EditError::NotFound {
            what: format!("storage '{}'", storage.id()),
        });
    };
    let mut next = cfg.clone();
    next.storages[pos] = storage;
    check_storage_doc(&next).map_err(EditError::Invalid)?;
    *cfg = next;
    Ok(())
}

/// Validate a storage id given in a path.
fn path_storage_id(id: &str) -> Result<StorageId, EditError> {
    StorageId::new(id).map_err(|e| EditError::field("id", e.to_string()))
}

/// Remove a storage; refused (field `id`) while LVM storages use it as their base.
pub fn remove_storage(cfg: &mut StorageConfig, id: &str) -> Result<Storage, EditError> {
    let id = path_storage_id(id)?;
    let Some(pos) = cfg.storages.iter().position(|s| *s.id() == id) else {
        return Err(EditError::NotFound {
            what: format!("storage '{id}'"),
        });
    };
    let users = cfg.users_of(id.as_str());
    if !users.is_empty() {
        let names: Vec<String> = users.iter().map(|u| format!("'{u}'")).collect();
        return Err(EditError::field(
            "id",
            format!(
                "storage '{id}' is the base of lvm storage {}: remove them or change their base \
                 first",
                names.join(", ")
            ),
        ));
    }
    Ok(cfg.storages.remove(pos))
}

/// A storage as the API shows it (its stored JSON form).
fn storage_json(s: &Storage) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn data(v: Value) -> Response {
    axum::Json(json!({ "data": v })).into_response()
}

fn written(digest: ConfigDigest) -> Response {
    data(json!({ "digest": digest }))
}

fn body(b: Result<Bytes, BytesRejection>) -> Result<Form, ApiError> {
    let b = b.map_err(|e| {
        let kind = if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ErrorKind::TooLarge
        } else {
            ErrorKind::BadRequest
        };
        ApiError::new(kind, e.body_text())
    })?;
    Ok(parse_form(&b)?)
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))
}

fn query(
    q: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<BTreeMap<String, String>, ApiError> {
    q.map(|Query(m)| m)
        .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.body_text()))
}

/// The digest of a DELETE: from the query (`?digest=`) or the body (`{"digest"}`).
fn delete_digest(
    q: BTreeMap<String, String>,
    form: &Form,
) -> Result<Option<ConfigDigest>, ApiError> {
    match q.get("digest") {
        Some(d) => Ok(parse_digest(&Value::from(d.as_str())).map_err(EditError::Invalid)?),
        None => Ok(form.digest),
    }
}

fn no_props(form: &Form) -> Result<(), ApiError> {
    let mut errs = ConfigErrors::default();
    for name in form.props.keys() {
        errs.0
            .push(ConfigError::new(key_name(name), "unexpected property"));
    }
    if !form.delete.is_empty() {
        errs.0
            .push(ConfigError::new("delete", "not supported here"));
    }
    Ok(errs.into_result().map_err(EditError::Invalid)?)
}

/// The global multipath knobs, their digest, and the knob table for building forms.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/config", tag = "config",
    responses(
        (status = 200, description = "`{data: {defaults: {<knob>: value}, digest, knobs: [{name, keyword, value-type: {type: integer|choice|choice-or-integer, min?, max?, unit?, words?}, per-lun, description}], fixed: {<keyword>: value}}}`"),
        (status = 500, description = "The stored configuration cannot be read"),
        (status = 503, description = "The cluster store is unavailable"),
    ))]
pub async fn get_config(State(state): State<AppState>) -> Result<Response, ApiError> {
    let l = load::<MultipathConfig>(state.store.as_ref()).await?;
    let fixed: Map<String, Value> = FIXED_DEFAULTS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    Ok(data(json!({
        "defaults": Value::Object(l.value.defaults().to_json()),
        "digest": l.digest,
        "knobs": KNOBS,
        "fixed": fixed,
    })))
}

/// Change global knobs: the knobs given are set, those in `delete` unset, the rest unchanged.
#[utoipa::path(put, path = "/api2/json/cluster/multipath/config", tag = "config",
    request_body(content = serde_json::Value, content_type = "application/json", description = "`{<knob>: value, ..., delete?: [<knob>] | \"a,b\", digest?}`"),
    responses(
        (status = 200, description = "`{data: {digest}}`"),
        (status = 400, description = "Invalid knobs: `errors: {defaults.<knob>: reason}`; nothing written"),
        (status = 409, description = "The digest is stale or a concurrent write won; nothing written"),
    ))]
pub async fn put_config(
    State(state): State<AppState>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let form = body(b)?;
    let e = edit::<MultipathConfig, _, _>(state.store.as_ref(), form.digest, move |cfg| {
        apply_defaults_update(cfg, form.props, form.delete).map_err(EditError::Invalid)
    })
    .await?;
    Ok(written(e.digest))
}

/// The WWID allow-list with each entry's alias and per-LUN knobs.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/wwids", tag = "config",
    responses((status = 200, description = "`{data: {digest, wwids: [{wwid, alias?, <knob>: value...}]}}`")))]
pub async fn list_wwids(State(state): State<AppState>) -> Result<Response, ApiError> {
    let l = load::<MultipathConfig>(state.store.as_ref()).await?;
    let list: Vec<Value> = l
        .value
        .wwids()
        .iter()
        .map(|(w, e)| entry_json(w, e))
        .collect();
    Ok(data(json!({ "digest": l.digest, "wwids": list })))
}

/// Add a WWID to the allow-list.
#[utoipa::path(post, path = "/api2/json/cluster/multipath/wwids", tag = "config",
    request_body(content = serde_json::Value, content_type = "application/json", description = "`{wwid, alias?, <per-LUN knob>: value..., digest?}`"),
    responses(
        (status = 200, description = "`{data: {digest}}`"),
        (status = 400, description = "`errors: {wwid | alias | <knob>: reason}`; nothing written"),
        (status = 409, description = "Stale digest or concurrent write; nothing written"),
    ))]
pub async fn add_wwid_route(
    State(state): State<AppState>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut form = body(b)?;
    let wwid = match form.props.remove("wwid") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(EditError::field("wwid", "must be a string").into()),
        None => return Err(EditError::field("wwid", "required").into()),
    };
    let props = form.props;
    let e = edit::<MultipathConfig, _, _>(state.store.as_ref(), form.digest, move |cfg| {
        add_entry(cfg, &wwid, props)
    })
    .await?;
    Ok(written(e.digest))
}

/// One allow-list entry.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/wwids/{wwid}", tag = "config",
    params(("wwid" = String, Path, description = "The LUN's WWID")),
    responses(
        (status = 200, description = "`{data: {wwid, alias?, <knob>: value..., digest}}`"),
        (status = 400, description = "Invalid WWID"),
        (status = 404, description = "Not in the allow-list"),
    ))]
pub async fn get_wwid(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let w = path_wwid(&path(p)?)?;
    let l = load::<MultipathConfig>(state.store.as_ref()).await?;
    let Some(entry) = l.value.get(w.as_str()) else {
        return Err(EditError::NotFound {
            what: format!("WWID {w} in the allow-list"),
        }
        .into());
    };
    let mut v = entry_json(&w, entry);
    if let Value::Object(m) = &mut v {
        m.insert("digest".to_owned(), json!(l.digest));
    }
    Ok(data(v))
}

/// Change an entry: properties given are set (`alias`, per-LUN knobs), those in `delete`
/// cleared, the rest unchanged.
#[utoipa::path(put, path = "/api2/json/cluster/multipath/wwids/{wwid}", tag = "config",
    params(("wwid" = String, Path, description = "The LUN's WWID")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "`{alias?, <per-LUN knob>: value..., delete?, digest?}`"),
    responses(
        (status = 200, description = "`{data: {digest}}`"),
        (status = 400, description = "`errors: {alias | <knob> | wwid | delete: reason}`; nothing written"),
        (status = 404, description = "Not in the allow-list"),
        (status = 409, description = "Stale digest or concurrent write; nothing written"),
    ))]
pub async fn put_wwid(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let wwid = path(p)?;
    let form = body(b)?;
    let e = edit::<MultipathConfig, _, _>(state.store.as_ref(), form.digest, move |cfg| {
        update_entry(cfg, &wwid, form.props, form.delete)
    })
    .await?;
    Ok(written(e.digest))
}

/// Remove a WWID from the allow-list.
#[utoipa::path(delete, path = "/api2/json/cluster/multipath/wwids/{wwid}", tag = "config",
    params(
        ("wwid" = String, Path, description = "The LUN's WWID"),
        ("digest" = Option<String>, Query, description = "The digest last read (or `{digest}` in the body)"),
    ),
    request_body(content = serde_json::Value, content_type = "application/json", description = "Optional: `{digest}`"),
    responses(
        (status = 200, description = "`{data: {digest}}`"),
        (status = 404, description = "Not in the allow-list"),
        (status = 409, description = "Stale digest or concurrent write; nothing written"),
    ))]
pub async fn delete_wwid(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let wwid = path(p)?;
    let form = body(b)?;
    let digest = delete_digest(query(q)?, &form)?;
    no_props(&form)?;
    let e = edit::<MultipathConfig, _, _>(state.store.as_ref(), digest, move |cfg| {
        remove_entry(cfg, &wwid).map(|_| ())
    })
    .await?;
    Ok(written(e.digest))
}

/// The admin's verbatim `devices` / `overrides` sections.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/overrides", tag = "config",
    responses((status = 200, description = "`{data: {content, digest}}`")))]
pub async fn get_overrides(State(state): State<AppState>) -> Result<Response, ApiError> {
    let l = load::<Overrides>(state.store.as_ref()).await?;
    Ok(data(
        json!({ "content": l.value.as_str(), "digest": l.digest }),
    ))
}

/// Replace the overrides text (checked with multipath's own tokenizer rules).
#[utoipa::path(put, path = "/api2/json/cluster/multipath/overrides", tag = "config",
    request_body(content = serde_json::Value, content_type = "application/json", description = "`{content, digest?}`"),
    responses(
        (status = 200, description = "`{data: {digest}}`"),
        (status = 400, description = "`errors: {content: \"line N: reason; ...\"}`; nothing written"),
        (status = 409, description = "Stale digest or concurrent write; nothing written"),
    ))]
pub async fn put_overrides(
    State(state): State<AppState>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut form = body(b)?;
    let content = match form.props.remove("content") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(EditError::field("content", "must be a string").into()),
        None => return Err(EditError::field("content", "required").into()),
    };
    no_props(&form)?;
    let overrides = parse_overrides(content)?;
    let e = edit::<Overrides, _, _>(state.store.as_ref(), form.digest, move |o| {
        *o = overrides;
        Ok(())
    })
    .await?;
    Ok(written(e.digest))
}

/// Every storage definition (optionally only of one `type`).
#[utoipa::path(get, path = "/api2/json/storage", tag = "storage",
    params(("type" = Option<String>, Query, description = "Only storages of this type (multipath, lvm)")),
    responses((status = 200, description = "`{data: {digest, storages: [{type, id, nodes?, disable?, vgname?, base?}]}}`")))]
pub async fn list_storages(
    State(state): State<AppState>,
    q: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let l = load::<StorageConfig>(state.store.as_ref()).await?;
    let list: Vec<Value> = l
        .value
        .storages
        .iter()
        .filter(|s| q.get("type").is_none_or(|t| t == s.type_name()))
        .map(storage_json)
        .collect();
    Ok(data(json!({ "digest": l.digest, "storages": list })))
}

/// Add a storage.
#[utoipa::path(post, path = "/api2/json/storage", tag = "storage",
    request_body(content = serde_json::Value, content_type = "application/json", description = "`{type: multipath|lvm, id, nodes?, disable?, vgname? (lvm), base? (lvm: <multipath-id>:<wwid>), digest?}`"),
    responses(
        (status = 200, description = "`{data: {digest}}`"),
        (status = 400, description = "`errors: {type | id | vgname | base | nodes | disable: reason}`; nothing written"),
        (status = 409, description = "Stale digest or concurrent write; nothing written"),
    ))]
pub async fn add_storage_route(
    State(state): State<AppState>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let form = body(b)?;
    if !form.delete.is_empty() {
        return Err(EditError::field("delete", "not supported when adding").into());
    }
    let storage = new_storage(form.props).map_err(EditError::Invalid)?;
    let e = edit::<StorageConfig, _, _>(state.store.as_ref(), form.digest, move |cfg| {
        add_storage(cfg, storage).map_err(EditError::Invalid)
    })
    .await?;
    Ok(written(e.digest))
}

/// One storage definition.
#[utoipa::path(get, path = "/api2/json/storage/{id}", tag = "storage",
    params(("id" = String, Path, description = "Storage id")),
    responses(
        (status = 200, description = "`{data: {type, id, ..., digest}}`"),
        (status = 404, description = "No such storage"),
    ))]
pub async fn get_storage(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_storage_id(&path(p)?)?;
    let l = load::<StorageConfig>(state.store.as_ref()).await?;
    let Some(s) = l.value.get(id.as_str()) else {
        return Err(EditError::NotFound {
            what: format!("storage '{id}'"),
        }
        .into());
    };
    let mut v = storage_json(s);
    if let Value::Object(m) = &mut v {
        m.insert("digest".to_owned(), json!(l.digest));
    }
    Ok(data(v))
}

/// Change a storage: properties given are set, those in `delete` (`nodes`, `disable`)
/// cleared; `type` and `id` are fixed.
#[utoipa::path(put, path = "/api2/json/storage/{id}", tag = "storage",
    params(("id" = String, Path, description = "Storage id")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "`{nodes?, disable?, vgname?, base?, delete?, digest?}`"),
    responses(
        (status = 200, description = "`{data: {digest}}`"),
        (status = 400, description = "Field errors; nothing written"),
        (status = 404, description = "No such storage"),
        (status = 409, description = "Stale digest or concurrent write; nothing written"),
    ))]
pub async fn put_storage(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_storage_id(&path(p)?)?;
    let form = body(b)?;
    let e = edit::<StorageConfig, _, _>(state.store.as_ref(), form.digest, move |cfg| {
        let Some(current) = cfg.get(id.as_str()) else {
            return Err(EditError::NotFound {
                what: format!("storage '{id}'"),
            });
        };
        let next = update_storage(current, form.props, &form.delete).map_err(EditError::Invalid)?;
        replace_storage(cfg, next)
    })
    .await?;
    Ok(written(e.digest))
}

/// Remove a storage (refused while LVM storages sit on it).
#[utoipa::path(delete, path = "/api2/json/storage/{id}", tag = "storage",
    params(
        ("id" = String, Path, description = "Storage id"),
        ("digest" = Option<String>, Query, description = "The digest last read (or `{digest}` in the body)"),
    ),
    request_body(content = serde_json::Value, content_type = "application/json", description = "Optional: `{digest}`"),
    responses(
        (status = 200, description = "`{data: {digest}}`"),
        (status = 400, description = "In use as the base of LVM storages (`errors: {id}` names them)"),
        (status = 404, description = "No such storage"),
        (status = 409, description = "Stale digest or concurrent write; nothing written"),
    ))]
pub async fn delete_storage(
    State(state): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path(p)?;
    let form = body(b)?;
    let digest = delete_digest(query(q)?, &form)?;
    no_props(&form)?;
    let e = edit::<StorageConfig, _, _>(state.store.as_ref(), digest, move |cfg| {
        remove_storage(cfg, &id).map(|_| ())
    })
    .await?;
    Ok(written(e.digest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_form(b"").unwrap(), Form::default());
        let f = parse_form(br#"{"a": 1, "delete": "x, y;z", "digest": null}"#).unwrap();
        assert_eq!(f.delete, ["x", "y", "z"]);
        assert_eq!(f.props.len(), 1);
        assert!(matches!(parse_form(b"[]"), Err(EditError::BadRequest(_))));
        assert!(matches!(parse_form(b"{"), Err(EditError::BadRequest(_))));
        let Err(EditError::Invalid(e)) = parse_form(br#"{"digest": "zz", "delete": 5}"#) else {
            panic!()
        };
        assert!(e.for_field("digest").is_some() && e.for_field("delete").is_some());
    }

    #[test]
    fn storage_updates() {
        let mut props = BTreeMap::new();
        props.insert("type".to_owned(), json!("multipath"));
        props.insert("id".to_owned(), json!("mp"));
        props.insert("nodes".to_owned(), json!("b,a"));
        let mp = new_storage(props).unwrap();
        let off = update_storage(
            &mp,
            [("disable".to_owned(), json!(1))].into(),
            &["nodes".to_owned()],
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&off).unwrap(),
            json!({"type": "multipath", "id": "mp", "disable": true})
        );
        let e = update_storage(&mp, [("id".to_owned(), json!("x"))].into(), &[]).unwrap_err();
        assert!(e.for_field("id").is_some());
        let e = new_storage([("type".to_owned(), json!("lvm"))].into()).unwrap_err();
        for f in ["id", "vgname", "base"] {
            assert!(e.for_field(f).is_some(), "{f}: {e:?}");
        }
    }
}
