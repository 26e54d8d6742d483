//! mpcluster-server: the HTTP API over the cluster store.
//!
//! - [`app`] builds the axum [`Router`] from an [`AppState`] (tests drive it with `oneshot`).
//! - [`serve`] runs it on a pre-bound listener until a shutdown future resolves.
//! - [`routes`]: the handlers, one module per resource, thin: they extract the request
//!   ([`extract`]), call the status cache or the configuration layer ([`mpcluster_config`],
//!   which owns every configuration document and operation) and wrap the result.
//! - [`cache::StatusCache`] computes the status from store events; handlers never compute it.
//! - [`error::ApiError`] is the one place errors become HTTP status codes.
//! - [`ApiDoc`]: the OpenAPI document, with schemas of every request and response body.
//! - [`auth`]: the middleware requiring API tokens (every route but `/health` and the web UI's
//!   static files); [`tls`]: HTTPS; [`limits`]: request and connection limits and the
//!   connection loop ([`limits::serve_with`]).
//! - [`notify`]: the notifier ([`notify::spawn_notifier`]): notifications of LUN state
//!   changes to webhooks, mail and exec hooks, sent by the leading server.
//! - [`metrics`]: `GET /metrics` for Prometheus (the status as series, store and HTTP
//!   request metrics; `Sys.Audit`, or open with [`AppState::metrics_public`]).
#![warn(missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, post, put};
use mpcluster_store::ClusterStore;
use tokio::net::TcpListener;
use utoipa::OpenApi;

pub mod auth;
pub mod cache;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod notify;
mod openapi;
pub mod recorder;
pub mod routes;
pub mod tls;
pub mod ui;

pub use openapi::ApiDoc;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The cluster store.
    pub store: Arc<dyn ClusterStore>,
    /// The status cache.
    pub cache: cache::StatusCache,
    /// Proxmox mode (storages from storage.cfg, read-only here), or `None`.
    pub pve: Option<mpcluster_config::pve::PveMode>,
    /// Serve `/metrics` without a token (`serve --metrics-public`).
    pub metrics_public: bool,
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// The router: every route of the API, behind [`auth::require_token`].
pub fn app(state: AppState) -> Router {
    let auth = auth::Auth::new(state.store.clone()).with_public_metrics(state.metrics_public);
    let metrics = state.cache.metrics().clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits::MAX_CONCURRENT_REQUESTS));
    Router::new()
        .route("/health", get(routes::status::health))
        .merge(ui::router())
        .route("/api2/openapi.json", get(openapi))
        .route(metrics::PATH, get(metrics::scrape))
        .route(
            "/api2/json/cluster/multipath/status",
            get(routes::status::status),
        )
        .route(
            "/api2/json/cluster/multipath/snapshot",
            get(routes::status::snapshot),
        )
        .route(
            "/api2/json/cluster/multipath/events",
            get(routes::events::list),
        )
        .route(
            "/api2/json/cluster/multipath/preflight",
            post(routes::preflight::preflight),
        )
        .route("/api2/json/cluster/nodes", get(routes::nodes::nodes))
        .route(
            "/api2/json/cluster/nodes/{node}",
            delete(routes::nodes::remove),
        )
        .route(
            "/api2/json/nodes/{node}/disks/multipath",
            get(routes::nodes::node_disks),
        )
        .route(
            "/api2/json/cluster/multipath/config",
            get(routes::config::get).put(routes::config::put),
        )
        .route(
            "/api2/json/cluster/multipath/config/plan",
            get(routes::plan::list),
        )
        .route(
            "/api2/json/cluster/multipath/config/plan/{node}/accept",
            post(routes::plan::accept),
        )
        .route(
            "/api2/json/cluster/multipath/config/accept",
            put(routes::plan::put_policy),
        )
        .route(
            "/api2/json/cluster/multipath/wwids",
            get(routes::wwids::list).post(routes::wwids::add),
        )
        .route(
            "/api2/json/cluster/multipath/wwids/{wwid}",
            get(routes::wwids::get)
                .put(routes::wwids::put)
                .delete(routes::wwids::delete),
        )
        .route(
            "/api2/json/cluster/multipath/overrides",
            get(routes::overrides::get).put(routes::overrides::put),
        )
        .route(
            "/api2/json/cluster/multipath/notify",
            get(routes::notify::list).post(routes::notify::add),
        )
        .route(
            "/api2/json/cluster/multipath/notify/{id}",
            delete(routes::notify::delete),
        )
        .route(
            "/api2/json/cluster/multipath/notify/{id}/test",
            post(routes::notify::test),
        )
        .route(
            "/api2/json/storage",
            get(routes::storage::list).post(routes::storage::add),
        )
        .route(
            "/api2/json/storage/{id}",
            get(routes::storage::get)
                .put(routes::storage::put)
                .delete(routes::storage::delete),
        )
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            auth::require_token,
        ))
        // `/health` reports whether the tokens can be checked.
        .layer(axum::Extension(auth))
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
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::count_requests,
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
