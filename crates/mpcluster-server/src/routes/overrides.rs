//! The admin's verbatim `devices` / `overrides` sections.
//!
//! Field errors are keyed `content` (`"line N: reason; ..."`), `digest` and any other property.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use mpcluster_config::overrides;
use mpcluster_config::views::{OverridesView, Written};
use mpcluster_core::digest::ConfigDigest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Data, data, into_form};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;

/// New overrides text.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct OverridesUpdate {
    /// The `devices { ... }` and/or `overrides { ... }` sections, checked with multipath's own
    /// tokenizer rules (at most 128 KiB).
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = String, required = true)]
    pub content: Option<Value>,
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

/// The admin's verbatim `devices` / `overrides` sections.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/overrides", tag = "config", operation_id = "get_overrides",
    responses(
        (status = 200, description = "The text exactly as stored and its digest", body = Data<OverridesView>),
        (status = 500, description = "The stored overrides cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn get(State(state): State<AppState>) -> Result<Json<Data<OverridesView>>, ApiError> {
    Ok(data(overrides::view(state.store.as_ref()).await?))
}

/// Replace the overrides text (checked with multipath's own tokenizer rules).
#[utoipa::path(put, path = "/api2/json/cluster/multipath/overrides", tag = "config", operation_id = "put_overrides",
    request_body = OverridesUpdate,
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "`errors: {content: \"line N: reason; ...\"}` (or `digest`, an unexpected property); nothing written", body = ErrorBody),
        (status = 409, description = "Stale digest or concurrent write; nothing written", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OverridesUpdate>,
) -> Result<Json<Data<Written>>, ApiError> {
    let form = into_form(&body)?;
    Ok(data(overrides::replace(state.store.as_ref(), form).await?))
}
