//! The cluster status (the LUN x node matrix), the snapshot it was computed from, and
//! `/health`. Served from the status cache, pre-encoded: never computed per request.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mpcluster_core::snapshot::Snapshot;
use mpcluster_core::status::Status;
use serde::Serialize;

use super::Data;
use crate::AppState;
use crate::cache::StatusView;
use crate::error::{ApiError, ErrorBody, ErrorKind};

/// A pre-encoded JSON body.
pub(crate) fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether the client accepts a gzip body (`Accept-Encoding: gzip`, not refused with `q=0`).
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused =
                parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// The latest computed view, or 503 before the first one.
pub(crate) fn view(state: &AppState) -> Result<Arc<StatusView>, ApiError> {
    match state.cache.latest() {
        Some(v) => Ok(v),
        None => Err(ApiError::new(
            ErrorKind::Unavailable,
            match state.cache.startup_error() {
                Some(e) => format!("cluster store unavailable: {e}"),
                None => "the status is being computed; retry in a moment".to_owned(),
            },
        )),
    }
}

/// Cluster-wide multipath health: the LUN x node matrix rolled up per LUN, and per-node
/// apply/collect errors.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/status", tag = "cluster", operation_id = "get_status",
    responses(
        (status = 200, description = "Per-WWID rows and per-node problems (gzip-encoded when the client accepts it)", body = Data<Status>),
        (status = 503, description = "The cluster store is unavailable; `data` holds the last good status marked `stale: true`, if any", body = ErrorBody),
    ))]
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let v = view(&state)?;
    match &v.store_error {
        None if accepts_gzip(&headers) => Ok((
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            v.status_body_gzip.clone(),
        )
            .into_response()),
        None => Ok((
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::VARY, "accept-encoding"),
            ],
            v.status_body.clone(),
        )
            .into_response()),
        Some(e) => Err(ApiError::new(
            ErrorKind::Unavailable,
            format!("cluster store unavailable: {e}; showing the last good status"),
        )
        .with_data(v.stale_status_json())),
    }
}

/// The cluster snapshot the current status was computed from (support bundles; replay with
/// `mpcluster status --snapshot FILE`).
#[utoipa::path(get, path = "/api2/json/cluster/multipath/snapshot", tag = "cluster", operation_id = "get_snapshot",
    responses(
        (status = 200, description = "The cluster snapshot (version 1)", body = Data<Snapshot>),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn snapshot(State(state): State<AppState>) -> Result<Response, ApiError> {
    let v = view(&state)?;
    if let Some(e) = &v.store_error {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            format!("cluster store unavailable: {e}"),
        ));
    }
    let body = serde_json::to_vec(&Data { data: &*v.snapshot })
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("encoding the snapshot: {e}")))?;
    Ok(json_body(Bytes::from(body)))
}

/// Whether the server can reach the cluster store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreState {
    /// The last status refresh read the store.
    Reachable,
    /// The store could not be read (`error` says why).
    Unavailable,
}

/// The server is alive (always `ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Alive {
    /// Answering.
    Ok,
}

/// Whether API tokens can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokensState {
    /// The tokens document is readable (or absent), or the store cannot be read (see `store`).
    Ok,
    /// The stored tokens document cannot be read: every authenticated request gets 503 until
    /// it is repaired (`tokens-error` says why and how).
    Unreadable,
}

/// `/health`: liveness of the server, reachability of the store, usability of the API tokens.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` (the server answered).
    pub status: Alive,
    /// Whether the store could be read.
    pub store: StoreState,
    /// Why not, when it could not (`null` otherwise).
    pub error: Option<String>,
    /// Whether API tokens can be checked.
    pub tokens: TokensState,
    /// Why not, when they cannot (`null` otherwise).
    #[serde(rename = "tokens-error")]
    pub tokens_error: Option<String>,
    /// Problems with the stored documents (unreadable, or of a newer format), which the
    /// status reads as empty; empty when there are none.
    pub documents: Vec<String>,
}

/// Liveness of the server, reachability of the store and usability of the API tokens (no
/// authentication).
#[utoipa::path(get, path = "/health", tag = "server", operation_id = "health",
    responses((status = 200, description = "Always 200 while the server runs", body = Health)))]
pub async fn health(
    State(state): State<AppState>,
    Extension(auth): Extension<crate::auth::Auth>,
) -> axum::Json<Health> {
    let (store, error) = match state.cache.latest() {
        Some(v) => match &v.store_error {
            None => (StoreState::Reachable, None),
            Some(e) => (StoreState::Unavailable, Some(e.clone())),
        },
        None => (StoreState::Unavailable, state.cache.startup_error()),
    };
    let tokens_error = auth.tokens_problem().await;
    axum::Json(Health {
        status: Alive::Ok,
        store,
        error,
        tokens: if tokens_error.is_some() {
            TokensState::Unreadable
        } else {
            TokensState::Ok
        },
        tokens_error,
        documents: state
            .cache
            .latest()
            .map(|v| v.doc_notes.clone())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::accepts_gzip;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&h("gzip")));
        assert!(accepts_gzip(&h("br, gzip;q=0.8, deflate")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
