//! The WWID allow-list with per-LUN alias and knobs (in the `multipath-config` document).
//!
//! Field errors are keyed `wwid`, `alias` and `<knob>` (the model's `wwids.<wwid>.` prefix is
//! dropped: the entry is the resource), plus `digest` and `delete`.
//!
//! The pure operations ([`add_entry`], [`update_entry`], [`remove_entry`]) change a loaded
//! [`MultipathConfig`] (the CLI runs them inside its retrying edit); the store operations
//! ([`add`], [`update`], [`remove`], [`list`], [`get`]) are one digest-guarded read or edit each.

use std::collections::BTreeMap;

use mpcluster_core::config::{MultipathConfig, WwidEntry, add_wwid, remove_wwid, set_wwid_entry};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::ids::Wwid;
use mpcluster_store::ClusterStore;
use serde_json::Value;

use crate::document::{edit, load};
use crate::error::EditError;
use crate::form::{Form, rekey};
use crate::views::{Written, WwidDetail, WwidList, WwidView};

/// The per-WWID field prefix the model uses.
fn entry_prefix(wwid: &str) -> String {
    format!("wwids.{wwid}.")
}

/// Validate a WWID naming an entry (errors keyed `wwid`).
pub fn parse_wwid(wwid: &str) -> Result<Wwid, EditError> {
    Wwid::new(wwid).map_err(|e| EditError::field("wwid", e.to_string()))
}

fn not_listed(w: &Wwid) -> EditError {
    EditError::NotFound {
        what: format!("WWID {w} in the allow-list"),
    }
}

/// An entry as clients see it.
pub fn entry_view(wwid: &Wwid, entry: &WwidEntry) -> WwidView {
    WwidView {
        wwid: wwid.clone(),
        entry: entry.clone(),
    }
}

/// Add a WWID with its properties (`alias`, per-LUN knobs).
pub fn add_entry(
    cfg: &mut MultipathConfig,
    wwid: &str,
    props: BTreeMap<String, Value>,
) -> Result<Wwid, EditError> {
    add_wwid(cfg, wwid, props).map_err(|e| EditError::Invalid(rekey(e, &entry_prefix(wwid), None)))
}

/// Update a listed WWID's properties: those in `props` are set, those in `delete` cleared.
/// A `wwid` property must name the entry itself (it cannot be changed).
pub fn update_entry(
    cfg: &mut MultipathConfig,
    wwid: &str,
    mut props: BTreeMap<String, Value>,
    delete: Vec<String>,
) -> Result<(), EditError> {
    let w = parse_wwid(wwid)?;
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
        return Err(not_listed(&w));
    }
    set_wwid_entry(cfg, w.as_str(), props, delete)
        .map_err(|e| EditError::Invalid(rekey(e, &entry_prefix(w.as_str()), None)))
}

/// Remove a listed WWID, returning its entry.
pub fn remove_entry(cfg: &mut MultipathConfig, wwid: &str) -> Result<WwidEntry, EditError> {
    let w = parse_wwid(wwid)?;
    if cfg.get(w.as_str()).is_none() {
        return Err(not_listed(&w));
    }
    remove_wwid(cfg, w.as_str()).map_err(EditError::Invalid)
}

/// The allow-list.
pub async fn list(store: &dyn ClusterStore) -> Result<WwidList, EditError> {
    let l = load::<MultipathConfig>(store).await?;
    Ok(WwidList {
        digest: l.digest,
        wwids: l
            .value
            .wwids()
            .iter()
            .map(|(w, e)| entry_view(w, e))
            .collect(),
    })
}

/// One entry.
pub async fn get(store: &dyn ClusterStore, wwid: &str) -> Result<WwidDetail, EditError> {
    let w = parse_wwid(wwid)?;
    let l = load::<MultipathConfig>(store).await?;
    let entry = l.value.get(w.as_str()).ok_or_else(|| not_listed(&w))?;
    Ok(WwidDetail {
        digest: l.digest,
        entry: entry_view(&w, entry),
    })
}

/// Add the entry the form describes (`wwid` and its properties).
pub async fn add(store: &dyn ClusterStore, mut form: Form) -> Result<Written, EditError> {
    let wwid = form.take_string("wwid")?;
    let props = form.props;
    let e = edit::<MultipathConfig, _, _>(store, form.digest, move |cfg| {
        add_entry(cfg, &wwid, props.clone())
    })
    .await?;
    Ok(Written { digest: e.digest })
}

/// Change an entry: properties given are set, those in `delete` cleared, the rest unchanged.
pub async fn update(
    store: &dyn ClusterStore,
    wwid: &str,
    form: Form,
) -> Result<Written, EditError> {
    let e = edit::<MultipathConfig, _, _>(store, form.digest, move |cfg| {
        update_entry(cfg, wwid, form.props.clone(), form.delete.clone())
    })
    .await?;
    Ok(Written { digest: e.digest })
}

/// Remove an entry, guarded by `digest`.
pub async fn remove(
    store: &dyn ClusterStore,
    wwid: &str,
    digest: Option<ConfigDigest>,
) -> Result<Written, EditError> {
    let e = edit::<MultipathConfig, _, _>(store, digest, move |cfg| {
        remove_entry(cfg, wwid).map(|_| ())
    })
    .await?;
    Ok(Written { digest: e.digest })
}
