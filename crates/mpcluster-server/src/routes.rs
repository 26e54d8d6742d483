//! HTTP handlers. Thin: each reads the status cache or calls the store, and leaves status codes
//! to [`ApiError`].

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mpcluster_core::NodeName;
use mpcluster_core::payload::DetailPayload;
use mpcluster_core::snapshot::kv_keys;
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, ErrorKind};

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether the client accepts a gzip body (`Accept-Encoding: gzip`, not refused with `q=0`).
fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
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

fn view(state: &AppState) -> Result<std::sync::Arc<crate::cache::StatusView>, ApiError> {
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

/// Cluster-wide multipath health: the LUN x node matrix rolled up per LUN.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/status", tag = "cluster",
    responses(
        (status = 200, description = "`{data: {luns, nodes}}`: per-WWID rows (wwid, alias?, used-by?, size?, cluster-state, nodes{node: {state, paths-active?, paths-total?, transport?}}) and per-node apply/collect errors"),
        (status = 503, description = "The cluster store is unavailable; `data` holds the last good status marked `stale: true`, if any"),
    ))]
pub async fn status(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
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

/// Every known node: membership, liveness, last broadcast time, apply/collect errors.
#[utoipa::path(get, path = "/api2/json/cluster/nodes", tag = "cluster",
    responses(
        (status = 200, description = "`{data: [{node, online, member?, last-broadcast?, stale, maps?, expected, apply-error?, collect-error?, ...}]}`"),
        (status = 503, description = "The cluster store is unavailable"),
    ))]
pub async fn nodes(State(state): State<AppState>) -> Result<Response, ApiError> {
    let v = view(&state)?;
    match &v.store_error {
        None => Ok(json_body(v.nodes_body.clone())),
        Some(e) => Err(ApiError::new(
            ErrorKind::Unavailable,
            format!("cluster store unavailable: {e}"),
        )
        .with_data(serde_json::to_value(&v.assembly.node_overview).unwrap_or_default())),
    }
}

/// The cluster snapshot the current status was computed from (support bundles; replay with
/// `mpcluster status --snapshot FILE`).
#[utoipa::path(get, path = "/api2/json/cluster/multipath/snapshot", tag = "cluster",
    responses(
        (status = 200, description = "`{data: <cluster snapshot, version 1>}`"),
        (status = 503, description = "The cluster store is unavailable"),
    ))]
pub async fn snapshot(State(state): State<AppState>) -> Result<Response, ApiError> {
    let v = view(&state)?;
    if let Some(e) = &v.store_error {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            format!("cluster store unavailable: {e}"),
        ));
    }
    let body = serde_json::to_vec(&json!({ "data": &*v.snapshot }))
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("encoding the snapshot: {e}")))?;
    Ok(json_body(Bytes::from(body)))
}

/// One node's multipath maps with their path groups and paths (its `multipath-detail`
/// broadcast).
#[utoipa::path(get, path = "/api2/json/nodes/{node}/disks/multipath", tag = "nodes",
    params(("node" = String, Path, description = "Node name")),
    responses(
        (status = 200, description = "`{data: {time, maps: [{name, wwid, sysfs, size, state, paths-active, paths-total, transport, path-groups: [...]}], errors}}`"),
        (status = 400, description = "Invalid node name"),
        (status = 404, description = "The node publishes no multipath detail"),
        (status = 503, description = "The cluster store is unavailable"),
    ))]
pub async fn node_disks(
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<Response, ApiError> {
    let node = NodeName::new(node).map_err(|e| ApiError::field("node", e.to_string()))?;
    let raw = state.store.get(kv_keys::DETAIL, &node).await?;
    let Some(raw) = raw else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "node '{node}' publishes no multipath detail (no agent running there, or no maps assembled)"
            ),
        ));
    };
    // Peer data: a malformed value is reported, never a crash.
    let payload = DetailPayload::decode(&raw).map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            format!("node '{node}' published unreadable multipath detail: {e}"),
        )
    })?;
    Ok(axum::Json(json!({ "data": payload })).into_response())
}

/// Liveness of the server and reachability of the store (no authentication).
#[utoipa::path(get, path = "/health", tag = "server",
    responses((status = 200, description = "`{status: ok, store: reachable | unavailable, error?}`")))]
pub async fn health(State(state): State<AppState>) -> Response {
    let (store, error) = match state.cache.latest() {
        Some(v) => match &v.store_error {
            None => ("reachable", None),
            Some(e) => ("unavailable", Some(e.clone())),
        },
        None => ("unavailable", state.cache.startup_error()),
    };
    axum::Json(json!({ "status": "ok", "store": store, "error": error })).into_response()
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;
    use axum::http::{HeaderMap, HeaderValue, header};

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
