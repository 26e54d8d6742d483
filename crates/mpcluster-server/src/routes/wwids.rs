//! The WWID allow-list with per-LUN alias and knobs.
//!
//! Field errors are keyed `wwid`, `alias`, `<knob>`, `digest` and `delete`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use mpcluster_config::views::{Written, WwidDetail, WwidList};
use mpcluster_config::wwids;
use mpcluster_core::config::KnobValue;
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::{Alias, Wwid};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Data, NameList, RemovalBody, RemovalQuery, data, into_form};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// A LUN to add to the allow-list.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct WwidCreate {
    /// The LUN's WWID, as multipathd reports it.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Wwid, required = true)]
    pub wwid: Option<Value>,
    /// Map name to use instead of the WWID (unique in the cluster).
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Alias>)]
    pub alias: Option<Value>,
    /// The digest last read: refused (409) if the document changed since.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<ConfigDigest>)]
    pub digest: Option<Value>,
    /// Per-LUN knobs, by name.
    #[serde(flatten)]
    #[schema(value_type = BTreeMap<String, KnobValue>)]
    pub knobs: BTreeMap<String, Value>,
}

/// A change of an allow-list entry: properties given are set, those in `delete` cleared.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct WwidUpdate {
    /// New alias.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Alias>)]
    pub alias: Option<Value>,
    /// Properties to clear (`alias` or knob names).
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
    /// Per-LUN knobs to set, by name (a `wwid` given here must be the path's).
    #[serde(flatten)]
    #[schema(value_type = BTreeMap<String, KnobValue>)]
    pub knobs: BTreeMap<String, Value>,
}

/// The WWID allow-list with each entry's alias and per-LUN knobs.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/wwids", tag = "config", operation_id = "list_wwids",
    responses(
        (status = 200, description = "The allow-list and the document's digest", body = Data<WwidList>),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Data<WwidList>>, ApiError> {
    Ok(data(wwids::list(state.store.as_ref()).await?))
}

/// Add a WWID to the allow-list.
#[utoipa::path(post, path = "/api2/json/cluster/multipath/wwids", tag = "config", operation_id = "add_wwid",
    request_body = WwidCreate,
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "`errors: {wwid | alias | <knob> | digest: reason}`; nothing written", body = ErrorBody),
        (status = 409, description = "Stale digest or concurrent write; nothing written", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<WwidCreate>,
) -> Result<Json<Data<Written>>, ApiError> {
    let form = into_form(&body)?;
    Ok(data(wwids::add(state.store.as_ref(), form).await?))
}

/// One allow-list entry.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/wwids/{wwid}", tag = "config", operation_id = "get_wwid",
    params(("wwid" = String, Path, description = "The LUN's WWID")),
    responses(
        (status = 200, description = "The entry and the document's digest", body = Data<WwidDetail>),
        (status = 400, description = "Invalid WWID", body = ErrorBody),
        (status = 404, description = "Not in the allow-list", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(wwid): ApiPath<String>,
) -> Result<Json<Data<WwidDetail>>, ApiError> {
    Ok(data(wwids::get(state.store.as_ref(), &wwid).await?))
}

/// Change an entry: properties given are set (`alias`, per-LUN knobs), those in `delete`
/// cleared, the rest unchanged.
#[utoipa::path(put, path = "/api2/json/cluster/multipath/wwids/{wwid}", tag = "config", operation_id = "put_wwid",
    params(("wwid" = String, Path, description = "The LUN's WWID")),
    request_body = WwidUpdate,
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "`errors: {alias | <knob> | wwid | delete | digest: reason}`; nothing written", body = ErrorBody),
        (status = 404, description = "Not in the allow-list", body = ErrorBody),
        (status = 409, description = "Stale digest or concurrent write; nothing written", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    ApiPath(wwid): ApiPath<String>,
    ApiJson(body): ApiJson<WwidUpdate>,
) -> Result<Json<Data<Written>>, ApiError> {
    let form = into_form(&body)?;
    Ok(data(
        wwids::update(state.store.as_ref(), &wwid, form).await?,
    ))
}

/// Remove a WWID from the allow-list.
#[utoipa::path(delete, path = "/api2/json/cluster/multipath/wwids/{wwid}", tag = "config", operation_id = "delete_wwid",
    params(("wwid" = String, Path, description = "The LUN's WWID"), RemovalQuery),
    request_body(content = Option<RemovalBody>, description = "Optional: the digest"),
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "Invalid WWID or digest, or an unexpected property", body = ErrorBody),
        (status = 404, description = "Not in the allow-list", body = ErrorBody),
        (status = 409, description = "Stale digest or concurrent write; nothing written", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(wwid): ApiPath<String>,
    ApiQuery(query): ApiQuery<RemovalQuery>,
    ApiJson(body): ApiJson<RemovalBody>,
) -> Result<Json<Data<Written>>, ApiError> {
    let digest = into_form(&body)?.removal_digest(query.digest.as_deref())?;
    Ok(data(
        wwids::remove(state.store.as_ref(), &wwid, digest).await?,
    ))
}
