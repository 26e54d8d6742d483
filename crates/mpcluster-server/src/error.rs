//! [`ApiError`]: the one place where errors become HTTP status codes.
//!
//! Handlers return `Result<_, ApiError>`; the configuration layer's, the store's and the core's
//! errors convert with `From`, and so do the extractors' rejections ([`crate::extract`]): the
//! status code is chosen here and nowhere else. Every error body is an [`ErrorBody`]
//! (Proxmox style): `{"data": <null or last good data>, "message": "...", "errors":
//! {"<field>": "..."}?}`.

use std::collections::BTreeMap;

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mpcluster_config::nodes::RemoveNodeError;
use mpcluster_config::{CHANGED_MEANWHILE, EditError};
use mpcluster_core::config::ConfigErrors;
use mpcluster_store::StoreError;
use serde::Serialize;
use serde_json::Value;

/// An API failure: what the client gets.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A message a person can act on.
    pub message: String,
    /// Per-field errors (validation), shown next to their fields by clients.
    pub errors: BTreeMap<String, String>,
    /// Data that is still worth showing (e.g. the last good status while the store is down).
    pub data: Option<Value>,
}

/// The kinds of failure the API distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or invalid (400).
    BadRequest,
    /// Authentication missing or wrong (401).
    Unauthorized,
    /// Authenticated but not allowed: the token lacks the privilege, or the resource is
    /// read-only here (Proxmox mode's storages) (403).
    Forbidden,
    /// The thing does not exist (404).
    NotFound,
    /// A digest-guarded write lost a race, or the target's state forbids the change (409).
    Conflict,
    /// The request body is too large (413).
    TooLarge,
    /// The cluster store is unavailable (503).
    Unavailable,
    /// A bug or an unexpected failure (500).
    Internal,
}

impl ErrorKind {
    fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            status: kind.status(),
            message: message.into(),
            errors: BTreeMap::new(),
            data: None,
        }
    }

    /// A 400 with one field error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let field = field.into();
        let mut e = ApiError::new(ErrorKind::BadRequest, format!("{field}: {message}"));
        e.errors.insert(field, message);
        e
    }

    /// Attach data that is still useful to the client.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// The full error chain in one line (`a: b: c`).
pub use mpcluster_core::error_chain as chain;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::Unavailable { .. } => ErrorKind::Unavailable,
            StoreError::Conflict { .. } => ErrorKind::Conflict,
            StoreError::ValueTooLarge { .. } | StoreError::DocumentTooLarge { .. } => {
                ErrorKind::TooLarge
            }
            StoreError::InvalidName { .. } => ErrorKind::BadRequest,
            _ => ErrorKind::Internal,
        };
        let message = if kind == ErrorKind::Conflict {
            CHANGED_MEANWHILE.to_owned()
        } else {
            chain(&e)
        };
        if kind == ErrorKind::Internal {
            tracing::error!(error = %chain(&e), "store error");
        }
        ApiError::new(kind, message)
    }
}

impl From<ConfigErrors> for ApiError {
    /// 400 with every field error (messages for the same field joined with `; `).
    fn from(errs: ConfigErrors) -> Self {
        let mut e = ApiError::new(ErrorKind::BadRequest, errs.to_string());
        for err in errs.0 {
            e.errors
                .entry(err.field)
                .and_modify(|m| {
                    m.push_str("; ");
                    m.push_str(&err.message);
                })
                .or_insert(err.message);
        }
        e
    }
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        match e {
            // The message names what the other writer changed.
            e @ EditError::Stale { .. } => ApiError::new(ErrorKind::Conflict, e.to_string()),
            EditError::Invalid(errs) => ApiError::from(errs),
            EditError::Rejected(message) => ApiError::new(ErrorKind::BadRequest, message),
            // Not the client's to change here (Proxmox mode: storage.cfg); retrying will not
            // help, so not 409.
            EditError::ReadOnly(message) => ApiError::new(ErrorKind::Forbidden, message),
            EditError::Exists { .. } => ApiError::new(ErrorKind::BadRequest, e.to_string()),
            EditError::NotFound { .. } => ApiError::new(ErrorKind::NotFound, e.to_string()),
            EditError::Store { source, .. } => ApiError::from(source),
            EditError::Unreadable { .. } | EditError::Encode { .. } | EditError::Hash(_) => {
                tracing::error!(error = %chain(&e), "configuration document error");
                ApiError::new(ErrorKind::Internal, chain(&e))
            }
        }
    }
}

impl From<mpcluster_config::events::EventsError> for ApiError {
    fn from(e: mpcluster_config::events::EventsError) -> Self {
        use mpcluster_config::events::EventsError;
        match e {
            EventsError::Store(source) => ApiError::from(source),
            EventsError::Contended => ApiError::new(ErrorKind::Unavailable, chain(&e)),
            EventsError::Head(_) | EventsError::Chunk { .. } | EventsError::Recorded(_) => {
                tracing::error!(error = %chain(&e), "event log error");
                ApiError::new(ErrorKind::Internal, chain(&e))
            }
        }
    }
}

impl From<RemoveNodeError> for ApiError {
    fn from(e: RemoveNodeError) -> Self {
        match e {
            RemoveNodeError::Online { .. } => ApiError::new(ErrorKind::Conflict, e.to_string()),
            RemoveNodeError::Unknown { .. } => ApiError::new(ErrorKind::NotFound, e.to_string()),
            RemoveNodeError::Store { source, .. } => ApiError::from(source),
        }
    }
}

impl From<BytesRejection> for ApiError {
    /// 413 for a body over the limit, else 400.
    fn from(e: BytesRejection) -> Self {
        let kind = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorKind::TooLarge
        } else {
            ErrorKind::BadRequest
        };
        ApiError::new(kind, e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::new(ErrorKind::BadRequest, e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::new(ErrorKind::BadRequest, e.body_text())
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// `null`, or data still worth showing: the last good status (marked `"stale": true`) or
    /// node list while the cluster store is unavailable.
    #[schema(required = true)]
    pub data: Option<Value>,
    /// A message a person can act on.
    pub message: String,
    /// Per-field errors of the request (`{"<field>": "<reason>"}`), every one at once; absent
    /// when the error is not about fields.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            data: self.data,
            message: self.message,
            errors: self.errors,
        };
        (self.status, axum::Json(body)).into_response()
    }
}
