//! mpcluster-server: the HTTP API over the cluster store.
//!
//! - [`app`] builds the axum [`Router`] from an [`AppState`] (tests drive it with `oneshot`).
//! - [`serve`] runs it on a pre-bound listener until a shutdown future resolves.
//! - [`cache::StatusCache`] computes the status from store events; handlers never compute it.
//! - [`error::ApiError`] is the one place errors become HTTP status codes.
//! - [`config_routes`]: the digest-guarded configuration API (multipath config, allow-list,
//!   overrides, storages) and the edit functions the CLI shares.
//! - [`read::read_snapshot`] reads a cluster snapshot from any store (also used by the CLI).
//! - [`auth`]: API tokens and the middleware requiring them (every route but `/health` and the
//!   web UI's static files); [`tls`]: HTTPS; [`limits`]: request and connection limits and
//!   the connection loop ([`limits::serve_with`]).
#![warn(missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use mpcluster_store::ClusterStore;
use tokio::net::TcpListener;
use utoipa::OpenApi;

pub mod auth;
pub mod cache;
pub mod config_routes;
pub mod error;
pub mod limits;
pub mod read;
pub mod routes;
pub mod tls;
pub mod ui;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The cluster store.
    pub store: Arc<dyn ClusterStore>,
    /// The status cache.
    pub cache: cache::StatusCache,
}

/// The OpenAPI description of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mpcluster API",
        description = "Cluster-wide dm-multipath configuration and health"
    ),
    paths(
        routes::status,
        routes::nodes,
        routes::snapshot,
        routes::node_disks,
        routes::health,
        config_routes::get_config,
        config_routes::put_config,
        config_routes::list_wwids,
        config_routes::add_wwid_route,
        config_routes::get_wwid,
        config_routes::put_wwid,
        config_routes::delete_wwid,
        config_routes::get_overrides,
        config_routes::put_overrides,
        config_routes::list_storages,
        config_routes::add_storage_route,
        config_routes::get_storage,
        config_routes::put_storage,
        config_routes::delete_storage
    )
)]
pub struct ApiDoc;

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// The router: every route of the API, behind [`auth::require_token`].
pub fn app(state: AppState) -> Router {
    let auth = auth::Auth::new(state.store.clone());
    let slots = Arc::new(tokio::sync::Semaphore::new(limits::MAX_CONCURRENT_REQUESTS));
    Router::new()
        .route("/health", get(routes::health))
        .merge(ui::router())
        .route("/api2/openapi.json", get(openapi))
        .route("/api2/json/cluster/multipath/status", get(routes::status))
        .route(
            "/api2/json/cluster/multipath/snapshot",
            get(routes::snapshot),
        )
        .route("/api2/json/cluster/nodes", get(routes::nodes))
        .route(
            "/api2/json/nodes/{node}/disks/multipath",
            get(routes::node_disks),
        )
        .route(
            "/api2/json/cluster/multipath/config",
            get(config_routes::get_config).put(config_routes::put_config),
        )
        .route(
            "/api2/json/cluster/multipath/wwids",
            get(config_routes::list_wwids).post(config_routes::add_wwid_route),
        )
        .route(
            "/api2/json/cluster/multipath/wwids/{wwid}",
            get(config_routes::get_wwid)
                .put(config_routes::put_wwid)
                .delete(config_routes::delete_wwid),
        )
        .route(
            "/api2/json/cluster/multipath/overrides",
            get(config_routes::get_overrides).put(config_routes::put_overrides),
        )
        .route(
            "/api2/json/storage",
            get(config_routes::list_storages).post(config_routes::add_storage_route),
        )
        .route(
            "/api2/json/storage/{id}",
            get(config_routes::get_storage)
                .put(config_routes::put_storage)
                .delete(config_routes::delete_storage),
        )
        .layer(axum::middleware::from_fn_with_state(
            auth,
            auth::require_token,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn(limits::reject_oversized))
        .layer(axum::middleware::from_fn_with_state(
            slots,
            limits::limit_concurrency,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve `app` over plain HTTP on `listener` until `shutdown` resolves, then finish in-flight
/// requests ([`limits::serve_with`] with the default limits; it also serves HTTPS).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    limits::serve_with(listener, app, limits::ServeOptions::default(), shutdown).await
}
