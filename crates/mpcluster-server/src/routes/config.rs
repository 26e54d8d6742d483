//! The cluster-wide multipath `defaults` knobs.
//!
//! Field errors are keyed `defaults.<knob>`, `digest` and `delete`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use mpcluster_config::defaults;
use mpcluster_config::views::{ConfigView, Written};
use mpcluster_core::config::KnobValue;
use mpcluster_core::digest::ConfigDigest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Data, NameList, data, into_form};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;

/// A change of the `defaults` knobs: the knobs given are set, those in `delete` unset, the
/// rest unchanged.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ConfigUpdate {
    /// The digest last read: the change is refused (409) if the document changed since.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<ConfigDigest>)]
    pub digest: Option<Value>,
    /// Knobs to unset.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<NameList>)]
    pub delete: Option<Value>,
    /// The knobs to set, by name (`"polling-interval": 5`; integers may also be given as
    /// strings); see `knobs` of the GET.
    #[serde(flatten)]
    #[schema(value_type = BTreeMap<String, KnobValue>)]
    pub knobs: BTreeMap<String, Value>,
}

/// The global multipath knobs, their digest, and the knob table for building forms.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/config", tag = "config", operation_id = "get_config",
    responses(
        (status = 200, description = "The knobs set, the digest, the knob table and the fixed defaults", body = Data<ConfigView>),
        (status = 500, description = "The stored configuration cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn get(State(state): State<AppState>) -> Result<Json<Data<ConfigView>>, ApiError> {
    Ok(data(defaults::view(state.store.as_ref()).await?))
}

/// Change global knobs: the knobs given are set, those in `delete` unset, the rest unchanged.
#[utoipa::path(put, path = "/api2/json/cluster/multipath/config", tag = "config", operation_id = "put_config",
    request_body = ConfigUpdate,
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "Malformed body, or invalid knobs: `errors: {defaults.<knob> | digest | delete: reason}`; nothing written", body = ErrorBody),
        (status = 409, description = "The digest is stale or a concurrent write won; nothing written", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConfigUpdate>,
) -> Result<Json<Data<Written>>, ApiError> {
    let form = into_form(&body)?;
    Ok(data(defaults::update(state.store.as_ref(), form).await?))
}
