//! The storage definitions: `multipath` storages, and `lvm` storages on a multipath LUN.
//!
//! Field errors are keyed `type`, `id`, `vgname`, `base`, `nodes`, `disable`, `digest`,
//! `delete` and any unknown property by its name.
//!
//! In Proxmox mode ([`AppState::pve`]) the list and the storages come from storage.cfg and
//! every write is refused (403, the configuration layer's `EditError::ReadOnly`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use mpcluster_config::storage;
use mpcluster_config::views::{StorageDetail, StorageList, Written};
use mpcluster_core::StorageId;
use mpcluster_core::digest::ConfigDigest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Data, Flag, NameList, RemovalBody, RemovalQuery, data, into_form};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// The 403 of the storage writes.
const FORBIDDEN_WRITE: &str = "The token lacks `Sys.Modify`, or the server runs in Proxmox mode, where the storages are Proxmox VE's storage.cfg and read-only here (the message says to use pvesm); nothing written";

/// The storage types mpcluster manages.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum StorageType {
    /// Exposes the allow-listed maps on the nodes where it is enabled.
    Multipath,
    /// A volume group on one multipath LUN (`base`).
    Lvm,
}

/// A storage to add.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct StorageCreate {
    /// The storage type.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = StorageType, required = true)]
    pub kind: Option<Value>,
    /// Storage id.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = StorageId, required = true)]
    pub id: Option<Value>,
    /// Nodes where the storage is available (absent: every node).
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<NameList>)]
    pub nodes: Option<Value>,
    /// Add it disabled (it counts nowhere).
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Flag>)]
    pub disable: Option<Value>,
    /// `lvm` only, required: the volume group name.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub vgname: Option<Value>,
    /// `lvm` only, required: the base volume, `<multipath-storage-id>:<wwid>`.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub base: Option<Value>,
    /// The digest last read: refused (409) if the document changed since.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<ConfigDigest>)]
    pub digest: Option<Value>,
    /// Nothing else is accepted (each is a field error).
    #[serde(flatten)]
    #[schema(value_type = BTreeMap<String, Value>)]
    pub other: BTreeMap<String, Value>,
}

/// A change of a storage: properties given are set, those in `delete` cleared; `type` and
/// `id` are fixed.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct StorageUpdate {
    /// Nodes where the storage is available.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<NameList>)]
    pub nodes: Option<Value>,
    /// Disable (or enable) the storage.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Flag>)]
    pub disable: Option<Value>,
    /// `lvm` only: the volume group name.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub vgname: Option<Value>,
    /// `lvm` only: the base volume, `<multipath-storage-id>:<wwid>`.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub base: Option<Value>,
    /// Properties to clear (`nodes`, `disable`).
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<NameList>)]
    pub delete: Option<Value>,
    /// The digest last read: refused (409) if the document changed since.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<ConfigDigest>)]
    pub digest: Option<Value>,
    /// Nothing else is accepted (each is a field error; `type` and `id` only if unchanged).
    #[serde(flatten)]
    #[schema(value_type = BTreeMap<String, Value>)]
    pub other: BTreeMap<String, Value>,
}

/// The query of the storage list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StorageQuery {
    /// Only storages of this type (`multipath`, `lvm`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// Every storage definition (optionally only of one `type`).
#[utoipa::path(get, path = "/api2/json/storage", tag = "storage", operation_id = "list_storages",
    params(StorageQuery),
    responses(
        (status = 200, description = "The storages and the document's digest", body = Data<StorageList>),
        (status = 500, description = "The stored storage definitions cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StorageQuery>,
) -> Result<Json<Data<StorageList>>, ApiError> {
    Ok(data(
        storage::list(
            state.store.as_ref(),
            state.pve.as_ref(),
            query.kind.as_deref(),
        )
        .await?,
    ))
}

/// Add a storage.
#[utoipa::path(post, path = "/api2/json/storage", tag = "storage", operation_id = "add_storage",
    request_body = StorageCreate,
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "`errors: {type | id | vgname | base | nodes | disable | <property>: reason}`; nothing written", body = ErrorBody),
        (status = 403, description = FORBIDDEN_WRITE, body = ErrorBody),
        (status = 409, description = "Stale digest or concurrent write; nothing written", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StorageCreate>,
) -> Result<Json<Data<Written>>, ApiError> {
    let form = into_form(&body)?;
    Ok(data(
        storage::add(state.store.as_ref(), state.pve.as_ref(), form).await?,
    ))
}

/// One storage definition.
#[utoipa::path(get, path = "/api2/json/storage/{id}", tag = "storage", operation_id = "get_storage",
    params(("id" = String, Path, description = "Storage id")),
    responses(
        (status = 200, description = "The storage and the document's digest", body = Data<StorageDetail>),
        (status = 400, description = "Invalid storage id", body = ErrorBody),
        (status = 404, description = "No such storage", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<StorageDetail>>, ApiError> {
    Ok(data(
        storage::get(state.store.as_ref(), state.pve.as_ref(), &id).await?,
    ))
}

/// Change a storage: properties given are set, those in `delete` (`nodes`, `disable`)
/// cleared; `type` and `id` are fixed.
#[utoipa::path(put, path = "/api2/json/storage/{id}", tag = "storage", operation_id = "put_storage",
    params(("id" = String, Path, description = "Storage id")),
    request_body = StorageUpdate,
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "Field errors; nothing written", body = ErrorBody),
        (status = 403, description = FORBIDDEN_WRITE, body = ErrorBody),
        (status = 404, description = "No such storage", body = ErrorBody),
        (status = 409, description = "Stale digest or concurrent write; nothing written", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<StorageUpdate>,
) -> Result<Json<Data<Written>>, ApiError> {
    let form = into_form(&body)?;
    Ok(data(
        storage::update(state.store.as_ref(), state.pve.as_ref(), &id, form).await?,
    ))
}

/// Remove a storage (refused while LVM storages sit on it).
#[utoipa::path(delete, path = "/api2/json/storage/{id}", tag = "storage", operation_id = "delete_storage",
    params(("id" = String, Path, description = "Storage id"), RemovalQuery),
    request_body(content = Option<RemovalBody>, description = "Optional: the digest"),
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "Invalid id or digest, an unexpected property, or in use as the base of LVM storages (`errors: {id}` names them)", body = ErrorBody),
        (status = 403, description = FORBIDDEN_WRITE, body = ErrorBody),
        (status = 404, description = "No such storage", body = ErrorBody),
        (status = 409, description = "Stale digest or concurrent write; nothing written", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RemovalQuery>,
    ApiJson(body): ApiJson<RemovalBody>,
) -> Result<Json<Data<Written>>, ApiError> {
    let digest = into_form(&body)?.removal_digest(query.digest.as_deref())?;
    Ok(data(
        storage::remove(state.store.as_ref(), state.pve.as_ref(), &id, digest).await?,
    ))
}
