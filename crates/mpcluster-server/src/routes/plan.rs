//! Apply plans: what each node's next apply would change, and accepting an apply that renames
//! or drops maps nobody asked for (per node, or always).

use axum::Json;
use axum::extract::State;
use mpcluster_config::plan::{self, Accepted, PlansView};
use mpcluster_core::NodeName;
use mpcluster_core::config::{ConfigError, ConfigErrors};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Data, Flag, data};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

fn node_name(node: String) -> Result<NodeName, ApiError> {
    NodeName::new(node)
        .map_err(|e| ConfigErrors::from(ConfigError::new("node", e.to_string())).into())
}

/// The query of the plan listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// Only this node.
    pub node: Option<String>,
}

/// Every node's apply plan (or one node's): the maps its next apply would rename or stop
/// multipathing, the drop-ins and wwids entries it would write or remove, and whether it waits
/// for an acceptance.
#[utoipa::path(get, path = "/api2/json/cluster/multipath/config/plan", tag = "config", operation_id = "get_config_plan",
    params(PlanQuery),
    responses(
        (status = 200, description = "The plans, sorted by node, and the always-accept setting", body = Data<PlansView>),
        (status = 400, description = "Invalid node name", body = ErrorBody),
        (status = 500, description = "The acceptance document cannot be read", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PlanQuery>,
) -> Result<Json<Data<PlansView>>, ApiError> {
    let node = query.node.map(node_name).transpose()?;
    Ok(data(
        plan::plans(state.store.as_ref(), node.as_ref()).await?,
    ))
}

/// Accept the node's current plan: its agent applies it, renames and drops included. A plan
/// the node works out later (the maps or the configuration changed) waits again.
#[utoipa::path(post, path = "/api2/json/cluster/multipath/config/plan/{node}/accept", tag = "config", operation_id = "accept_config_plan",
    params(("node" = String, Path, description = "Node name")),
    responses(
        (status = 200, description = "The plan accepted: its digest and what it does", body = Data<Accepted>),
        (status = 400, description = "Invalid node name, or the node's plan renames and drops nothing unasked / cannot be read", body = ErrorBody),
        (status = 404, description = "The node published no plan", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn accept(
    State(state): State<AppState>,
    ApiPath(node): ApiPath<String>,
) -> Result<Json<Data<Accepted>>, ApiError> {
    let node = node_name(node)?;
    Ok(data(plan::accept_node(state.store.as_ref(), &node).await?))
}

/// The always-accept setting.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptPolicy {
    /// Apply renames and drops on every node without asking (`true`), or hold them until an
    /// admin accepts each node's plan (`false`, the default).
    #[schema(value_type = Flag)]
    pub always: Value,
}

/// Whether applies that rename or drop maps go ahead without an acceptance.
#[utoipa::path(put, path = "/api2/json/cluster/multipath/config/accept", tag = "config", operation_id = "put_accept_policy",
    request_body = AcceptPolicy,
    responses(
        (status = 200, description = "The setting as stored", body = Data<AcceptPolicyView>),
        (status = 400, description = "Malformed body or `always` not a flag", body = ErrorBody),
        (status = 503, description = "The cluster store is unavailable", body = ErrorBody),
    ))]
pub async fn put_policy(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AcceptPolicy>,
) -> Result<Json<Data<AcceptPolicyView>>, ApiError> {
    let always = match &body.always {
        Value::Bool(b) => *b,
        Value::Number(n) if n.as_u64() == Some(1) => true,
        Value::Number(n) if n.as_u64() == Some(0) => false,
        Value::String(s) if s == "1" || s == "true" => true,
        Value::String(s) if s == "0" || s == "false" => false,
        _ => {
            return Err(ConfigErrors::from(ConfigError::new(
                "always",
                "must be a boolean (true/false or 1/0)",
            ))
            .into());
        }
    };
    plan::set_always(state.store.as_ref(), always).await?;
    Ok(data(AcceptPolicyView { always }))
}

/// The always-accept setting as stored.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AcceptPolicyView {
    /// Applies that rename or drop maps go ahead without an acceptance.
    pub always: bool,
}
