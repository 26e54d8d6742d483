//! The HTTP handlers, one module per resource. Each is thin: extract (with [`crate::extract`]),
//! call the status cache or the configuration layer ([`mpcluster_config`]), wrap the result
//! in [`Data`]; status codes are [`ApiError`]'s business.
//!
//! - [`status`]: the LUN x node matrix, the snapshot it was computed from, `/health`;
//! - [`nodes`]: the node list, one node's multipath detail, forgetting a departed node;
//! - [`plan`]: the nodes' apply plans and their acceptance; [`preflight`]: the maintenance
//!   pre-flight;
//! - [`config`]: the `defaults` knobs; [`wwids`]: the allow-list; [`overrides`]: the verbatim
//!   sections; [`storage`]: the storage definitions; [`notify`]: the notification targets.
//!
//! Request and response bodies are Rust types deriving `utoipa::ToSchema`, so the OpenAPI
//! document ([`crate::ApiDoc`]) describes exactly what is sent; `tests/openapi_contract.rs`
//! validates real responses of every route against it. Write bodies follow the Proxmox style:
//! the properties to set, an optional `delete` list and an optional `digest`; each field is
//! taken as sent and validated by the configuration layer, which reports every field error at
//! once.

use axum::Json;
use mpcluster_config::Form;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ErrorKind};

pub mod config;
pub mod events;
pub mod nodes;
pub mod notify;
pub mod overrides;
pub mod plan;
pub mod preflight;
pub mod status;
pub mod storage;
pub mod wwids;

/// Every successful reply: `{"data": ...}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

/// `Json({"data": value})`.
pub fn data<T: Serialize>(value: T) -> Json<Data<T>> {
    Json(Data { data: value })
}

/// Hand a write body to the configuration layer: its fields as sent (a body type serializes
/// exactly the fields it received), `digest` and `delete` checked by [`Form::from_object`].
pub fn into_form<T: Serialize>(body: &T) -> Result<Form, ApiError> {
    match serde_json::to_value(body) {
        Ok(Value::Object(object)) => Ok(Form::from_object(object)?),
        Ok(_) | Err(_) => Err(ApiError::new(
            ErrorKind::Internal,
            "a request body type does not serialize to an object",
        )),
    }
}

/// A body field as sent: `Some` whenever it is present, `null` included (the configuration
/// layer tells `null` from absent where it matters). Use with `#[serde(default)]`.
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

/// Property names: an array, or one string separated by `,`, `;` or spaces (`"a,b c"`).
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum NameList {
    /// `["a", "b"]`.
    List(Vec<String>),
    /// `"a,b c"`.
    Text(String),
}

/// A flag: `true`/`false`, `1`/`0`, or the strings `"1"`, `"0"`, `"true"`, `"false"`.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Flag {
    /// `true` / `false`.
    Bool(bool),
    /// `1` / `0`.
    Int(u8),
    /// `"1"`, `"0"`, `"true"`, `"false"`.
    Text(String),
}

/// The body of a removal: only the digest (which the query's `digest` overrides).
#[derive(Debug, Default, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct RemovalBody {
    /// The digest last read: the removal is refused (409) if the document changed since.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<mpcluster_core::digest::ConfigDigest>)]
    pub digest: Option<Value>,
    /// Nothing else is accepted (each is a field error).
    #[serde(flatten)]
    #[schema(value_type = std::collections::BTreeMap<String, Value>)]
    pub other: std::collections::BTreeMap<String, Value>,
}

/// The query of a removal.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemovalQuery {
    /// The digest last read (instead of `digest` in the body).
    #[param(value_type = Option<mpcluster_core::digest::ConfigDigest>)]
    pub digest: Option<String>,
}
