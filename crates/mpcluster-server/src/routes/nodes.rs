//! The cluster's nodes: the list (membership, liveness, errors), one node's multipath maps with
//! their paths, and forgetting a departed node.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use mpcluster_config::nodes::{Removed, remove_node};
use mpcluster_core::NodeName;
use mpcluster_core::config::{ConfigError, ConfigErrors};
use mpcluster_core::payload::DetailPayload;
use mpcluster_core::snapshot::kv_keys;
use mpcluster_core::status::NodeOverview;
use serde::Deserialize;

use super::status::{json_body, view};
use super::{Data, data};
use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::extract::{ApiPath, ApiQuery};

/// Every known node: membership, liveness, last broadcast time, apply/collect errors.
#[utoipa::path(get, path = "/api2/json/cluster/nodes", tag = "cluster", operation_id = "list_nodes",
    responses(
        (status = 200, description = "One entry per known node (member, reporter or expected by a storage), sorted by name", body = Data<Vec<NodeOverview>>),
        (status = 503, description = "The cluster store is unavailable; `data` holds the last good list, if any", body = ErrorBody),
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

fn node_name(node: String) -> Result<NodeName, ConfigError> {
    NodeName::new(node).map_err(|e| ConfigError::new("node", e.to_string()))
}

/// One node's multipath maps with their path groups and paths (its `multipath-detail`
/// broadcast).
#[utoipa::path(get, path = "/api2/json/nodes/{node}/disks/multipath", tag = "nodes", operation_id = "get_node_disks",
    params(("node" = String, Path, description = "Node name")),
    responses(
        (status = 200, description = "The node's report: maps, their path groups and paths, errors", body = Data<DetailPayload>),
        (status = 400, description = "Invalid node name", body = ErrorBody),
        (status = 404, description = "The node publishes no multipath detail", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn node_disks(
    State(state): State<AppState>,
    ApiPath(node): ApiPath<String>,
) -> Result<Json<Data<DetailPayload>>, ApiError> {
    let node = node_name(node).map_err(ConfigErrors::from)?;
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
    Ok(data(payload))
}

/// The query of a node removal.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveNodeQuery {
    /// Remove the node even while it is online (`1`/`true`). Its agent, if still running,
    /// publishes again and the node reappears.
    #[param(value_type = Option<bool>)]
    pub force: Option<String>,
}

fn parse_force(force: Option<String>) -> Result<bool, ConfigError> {
    match force.as_deref() {
        None | Some("0" | "false" | "") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(ConfigError::new(
            "force",
            "must be a boolean (true/false or 1/0)",
        )),
    }
}

/// Forget a departed node: its membership record and every value it published, so its column
/// leaves the status matrix. Refused while the node is online (its agent would publish again
/// at once) unless `force`.
#[utoipa::path(delete, path = "/api2/json/cluster/nodes/{node}", tag = "cluster", operation_id = "remove_node",
    params(("node" = String, Path, description = "Node name"), RemoveNodeQuery),
    responses(
        (status = 200, description = "The node was removed", body = Data<Removed>),
        (status = 400, description = "Invalid node name or `force`", body = ErrorBody),
        (status = 404, description = "Nothing is known about the node", body = ErrorBody),
        (status = 409, description = "The node is online: stop its agent first, or force", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    ApiPath(node): ApiPath<String>,
    ApiQuery(query): ApiQuery<RemoveNodeQuery>,
) -> Result<Json<Data<Removed>>, ApiError> {
    let (node, force) = match (node_name(node), parse_force(query.force)) {
        (Ok(n), Ok(f)) => (n, f),
        (n, f) => {
            return Err(ConfigErrors([n.err(), f.err()].into_iter().flatten().collect()).into());
        }
    };
    Ok(data(remove_node(state.store.as_ref(), &node, force).await?))
}
