//! Notification targets: list, add, remove, send a test message.
//!
//! Field errors are keyed `type`, `id`, `url`, `secret`, `server`, `port`, `security`,
//! `from`, `to`, `username`, `password-file`, `command`, `digest` and any unknown property by
//! its name. A webhook's secret is never shown back (`"secret": "set"`); an SMTP password is
//! never stored (only the path of the file holding it on the server nodes).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use mpcluster_config::notify::{self, TargetList};
use mpcluster_config::views::Written;
use mpcluster_core::config::{ConfigError, ConfigErrors};
use mpcluster_core::digest::ConfigDigest;
use mpcluster_core::notify::{SmtpSecurity, TargetId, TargetView};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Data, RemovalBody, RemovalQuery, data, into_form};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// How long a test send may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The target types.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TargetType {
    /// JSON POST signed with HMAC-SHA256 (`X-Mpcluster-Signature: sha256=<hex>`).
    Webhook,
    /// Mail over SMTP.
    Smtp,
    /// A program run with the JSON on stdin.
    Exec,
}

/// A list of strings, or one string separated by `,` or spaces.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum AddressList {
    /// `["a@example.org", "b@example.org"]`.
    List(Vec<String>),
    /// `"a@example.org, b@example.org"`.
    Text(String),
}

/// A target to add.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TargetCreate {
    /// The target type.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = TargetType, required = true)]
    pub kind: Option<Value>,
    /// The target id: 1 to 32 of `[a-z0-9-]`.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = String, required = true)]
    pub id: Option<Value>,
    /// webhook, required: `http://` or `https://` URL.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub url: Option<Value>,
    /// webhook, required: the HMAC-SHA256 key (at least 16 characters). Never shown back.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub secret: Option<Value>,
    /// smtp, required: the SMTP server.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub server: Option<Value>,
    /// smtp: the port (default 25, 587 or 465 by `security`).
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u16>)]
    pub port: Option<Value>,
    /// smtp: `none`, `starttls` (default) or `tls`.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<SmtpSecurity>)]
    pub security: Option<Value>,
    /// smtp, required: the sender address.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub from: Option<Value>,
    /// smtp, required: the recipients.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<AddressList>)]
    pub to: Option<Value>,
    /// smtp: the user to log in as (with `password-file`).
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub username: Option<Value>,
    /// smtp: absolute path of a file on every server node holding the password.
    #[serde(
        rename = "password-file",
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub password_file: Option<Value>,
    /// exec, required: the program (absolute path) and its arguments.
    #[serde(
        default,
        deserialize_with = "super::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub command: Option<Value>,
    /// The digest last read: refused (409) if the targets changed since.
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

fn target_id(id: String) -> Result<TargetId, ApiError> {
    TargetId::new(id).map_err(|e| ConfigErrors::from(ConfigError::new("id", e.reason)).into())
}

/// The notification targets (secrets as `"set"`).
#[utoipa::path(get, path = "/api2/json/cluster/multipath/notify", tag = "notify", operation_id = "list_notify_targets",
    responses(
        (status = 200, description = "The targets, sorted by id, and the document's digest", body = Data<TargetList>),
        (status = 500, description = "The stored targets cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Data<TargetList>>, ApiError> {
    Ok(data(notify::list(state.store.as_ref()).await?))
}

/// Add a notification target.
#[utoipa::path(post, path = "/api2/json/cluster/multipath/notify", tag = "notify", operation_id = "add_notify_target",
    request_body = TargetCreate,
    responses(
        (status = 200, description = "The target as stored (the secret as `set`)", body = Data<TargetView>),
        (status = 400, description = "`errors: {type | id | url | secret | server | port | security | from | to | username | password-file | command | <property>: reason}`, or the id exists; nothing written", body = ErrorBody),
        (status = 409, description = "Stale digest; nothing written", body = ErrorBody),
        (status = 500, description = "The stored targets cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TargetCreate>,
) -> Result<Json<Data<TargetView>>, ApiError> {
    let form = into_form(&body)?;
    if !form.delete.is_empty() {
        return Err(ConfigErrors::from(ConfigError::new("delete", "not supported here")).into());
    }
    Ok(data(
        notify::add(state.store.as_ref(), form.props, form.digest).await?,
    ))
}

/// Remove a notification target (its pending messages are dropped).
#[utoipa::path(delete, path = "/api2/json/cluster/multipath/notify/{id}", tag = "notify", operation_id = "delete_notify_target",
    params(("id" = String, Path, description = "Target id"), RemovalQuery),
    request_body(content = Option<RemovalBody>, description = "Optional: the digest"),
    responses(
        (status = 200, description = "The new digest", body = Data<Written>),
        (status = 400, description = "Invalid id or digest, or an unexpected property", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 409, description = "Stale digest; nothing written", body = ErrorBody),
        (status = 500, description = "The stored targets cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RemovalQuery>,
    ApiJson(body): ApiJson<RemovalBody>,
) -> Result<Json<Data<Written>>, ApiError> {
    let id = target_id(id)?;
    let digest = into_form(&body)?.removal_digest(query.digest.as_deref())?;
    let digest = notify::remove(state.store.as_ref(), &id, digest).await?;
    Ok(data(Written { digest }))
}

/// The outcome of a test message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestResult {
    /// The target accepted the message.
    pub sent: bool,
    /// Why not (absent when sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Send a test message to the target now (not through the outbox; no retry).
#[utoipa::path(post, path = "/api2/json/cluster/multipath/notify/{id}/test", tag = "notify", operation_id = "test_notify_target",
    params(("id" = String, Path, description = "Target id")),
    responses(
        (status = 200, description = "Whether the target accepted the message, and why not", body = Data<TestResult>),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 500, description = "The stored targets cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn test(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TestResult>>, ApiError> {
    let id = target_id(id)?;
    let target = notify::get(state.store.as_ref(), &id).await?;
    let result = crate::notify::send_test(&id, &target, TEST_TIMEOUT).await;
    state
        .cache
        .metrics()
        .notification(id.as_str(), "test", result.is_ok());
    Ok(data(TestResult {
        sent: result.is_ok(),
        error: result.err().map(|e| crate::error::chain(&e)),
    }))
}
