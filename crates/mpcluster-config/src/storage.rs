//! The storage definitions (`multipath` storages, and `lvm` storages on a multipath LUN) in
//! the `storage` document.
//!
//! Field errors are keyed `type`, `id`, `vgname`, `base`, `nodes` and `disable` (plus
//! `digest`, `delete` and any unknown property by its name).
//!
//! The pure operations ([`new_storage`], [`update_storage`], [`add_storage`],
//! [`replace_storage`], [`remove_storage`]) change a loaded [`StorageConfig`] (the CLI runs
//! them inside its retrying edit); the store operations ([`list`], [`get`], [`add`],
//! [`update`], [`remove`]) are one digest-guarded read or edit each.
//!
//! In Proxmox mode (`Some(&PveMode)`) the storages are Proxmox's storage.cfg: [`list`] and
//! [`get`] read it (with each storage's line), and every write is refused with
//! [`EditError::ReadOnly`] before anything else is looked at ([`check_editable`]).

use std::collections::{BTreeMap, BTreeSet};

use mpcluster_core::StorageId;
use mpcluster_core::config::{ConfigError, ConfigErrors};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::ids::NodeName;
use mpcluster_core::snapshot::doc_names;
use mpcluster_core::storage::{
    LvmBase, LvmStorage, MultipathStorage, Storage, StorageConfig, StorageConfigError, VgName,
};
use mpcluster_store::ClusterStore;
use serde_json::Value;

use crate::document::{edit, load};
use crate::error::{EditError, one_error};
use crate::form::{Form, key_name, split_list};
use crate::pve::PveMode;
use crate::views::{
    StorageDetail, StorageList, StorageOrigin, StorageSource, StorageSourceKind, Written,
};

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
/// field error listed.
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
/// (`nodes`, `disable`) cleared. `type` and `id` cannot change.
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
        return Err(no_storage(storage.id().as_str()));
    };
    let mut next = cfg.clone();
    next.storages[pos] = storage;
    check_storage_doc(&next).map_err(EditError::Invalid)?;
    *cfg = next;
    Ok(())
}

/// Validate a storage id naming a storage (errors keyed `id`).
pub fn parse_storage_id(id: &str) -> Result<StorageId, EditError> {
    StorageId::new(id).map_err(|e| EditError::field("id", e.to_string()))
}

/// Remove a storage; refused (field `id`) while LVM storages use it as their base.
pub fn remove_storage(cfg: &mut StorageConfig, id: &str) -> Result<Storage, EditError> {
    let id = parse_storage_id(id)?;
    let Some(pos) = cfg.storages.iter().position(|s| *s.id() == id) else {
        return Err(no_storage(id.as_str()));
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

fn no_storage(id: &str) -> EditError {
    EditError::NotFound {
        what: format!("storage '{id}'"),
    }
}

/// Apply a partial update to the storage `id` of `cfg` ([`update_storage`], then
/// [`replace_storage`]).
pub fn update_in(
    cfg: &mut StorageConfig,
    id: &str,
    props: BTreeMap<String, Value>,
    delete: &[String],
) -> Result<(), EditError> {
    let Some(current) = cfg.get(id) else {
        return Err(no_storage(id));
    };
    let next = update_storage(current, props, delete).map_err(EditError::Invalid)?;
    replace_storage(cfg, next)
}

/// The storages and where they come from: the storage document, or in Proxmox mode
/// storage.cfg (read now).
struct Current {
    digest: ConfigDigest,
    config: StorageConfig,
    source: StorageSource,
    origins: BTreeMap<StorageId, StorageOrigin>,
}

async fn current(store: &dyn ClusterStore, pve: Option<&PveMode>) -> Result<Current, EditError> {
    let Some(pve) = pve else {
        let l = load::<StorageConfig>(store).await?;
        return Ok(Current {
            digest: l.digest,
            config: l.value,
            source: StorageSource {
                kind: StorageSourceKind::Mpcluster,
                path: None,
                editable: true,
                note: None,
                problems: Vec::new(),
            },
            origins: BTreeMap::new(),
        });
    };
    let s = pve
        .read_storages()
        .await
        .map_err(|source| EditError::Store {
            doc: doc_names::STORAGE,
            source,
        })?;
    Ok(Current {
        digest: s.digest,
        config: s.config,
        source: StorageSource {
            kind: StorageSourceKind::Pve,
            path: Some(s.path.display().to_string()),
            editable: false,
            note: Some(pve.read_only_message()),
            problems: s.problems,
        },
        origins: s
            .origins
            .into_iter()
            .map(|(id, o)| {
                (
                    id,
                    StorageOrigin {
                        line: o.line,
                        iscsi: o.iscsi,
                    },
                )
            })
            .collect(),
    })
}

/// Every storage definition, or only those of `kind` (`multipath`, `lvm`), with where they
/// come from (`pve`: Proxmox mode, storage.cfg) and which LVM storages sit on each.
pub async fn list(
    store: &dyn ClusterStore,
    pve: Option<&PveMode>,
    kind: Option<&str>,
) -> Result<StorageList, EditError> {
    let c = current(store, pve).await?;
    let mut used_by: BTreeMap<StorageId, Vec<StorageId>> = BTreeMap::new();
    for s in &c.config.storages {
        let users = c.config.users_of(s.id().as_str());
        if !users.is_empty() {
            used_by.insert(s.id().clone(), users.into_iter().cloned().collect());
        }
    }
    let storages: Vec<Storage> = c
        .config
        .storages
        .into_iter()
        .filter(|s| kind.is_none_or(|t| t == s.type_name()))
        .collect();
    let listed: BTreeSet<&StorageId> = storages.iter().map(Storage::id).collect();
    used_by.retain(|id, _| listed.contains(id));
    let mut origins = c.origins;
    origins.retain(|id, _| listed.contains(id));
    Ok(StorageList {
        digest: c.digest,
        source: c.source,
        storages,
        used_by,
        origins,
    })
}

/// One storage definition.
pub async fn get(
    store: &dyn ClusterStore,
    pve: Option<&PveMode>,
    id: &str,
) -> Result<StorageDetail, EditError> {
    let id = parse_storage_id(id)?;
    let c = current(store, pve).await?;
    let storage = c
        .config
        .get(id.as_str())
        .cloned()
        .ok_or_else(|| no_storage(id.as_str()))?;
    Ok(StorageDetail {
        digest: c.digest,
        storage,
    })
}

/// Refuse every storage write in Proxmox mode (before anything else is looked at).
pub fn check_editable(pve: Option<&PveMode>) -> Result<(), EditError> {
    match pve {
        Some(p) => Err(p.read_only()),
        None => Ok(()),
    }
}

/// Add the storage the form describes (`type`, `id` and the type's properties). Refused in
/// Proxmox mode.
pub async fn add(
    store: &dyn ClusterStore,
    pve: Option<&PveMode>,
    form: Form,
) -> Result<Written, EditError> {
    check_editable(pve)?;
    if !form.delete.is_empty() {
        return Err(EditError::field("delete", "not supported when adding"));
    }
    let storage = new_storage(form.props).map_err(EditError::Invalid)?;
    let e = edit::<StorageConfig, _, _>(store, form.digest, move |cfg| {
        add_storage(cfg, storage.clone()).map_err(EditError::Invalid)
    })
    .await?;
    Ok(Written { digest: e.digest })
}

/// Change a storage: properties given are set, those in `delete` (`nodes`, `disable`)
/// cleared; `type` and `id` are fixed. Refused in Proxmox mode.
pub async fn update(
    store: &dyn ClusterStore,
    pve: Option<&PveMode>,
    id: &str,
    form: Form,
) -> Result<Written, EditError> {
    check_editable(pve)?;
    let id = parse_storage_id(id)?;
    let e = edit::<StorageConfig, _, _>(store, form.digest, move |cfg| {
        update_in(cfg, id.as_str(), form.props.clone(), &form.delete)
    })
    .await?;
    Ok(Written { digest: e.digest })
}

/// Remove a storage (refused while LVM storages sit on it), guarded by `digest`. Refused in
/// Proxmox mode.
pub async fn remove(
    store: &dyn ClusterStore,
    pve: Option<&PveMode>,
    id: &str,
    digest: Option<ConfigDigest>,
) -> Result<Written, EditError> {
    check_editable(pve)?;
    let e = edit::<StorageConfig, _, _>(store, digest, move |cfg| {
        remove_storage(cfg, id).map(|_| ())
    })
    .await?;
    Ok(Written { digest: e.digest })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

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
