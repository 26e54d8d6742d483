//! The OpenAPI document ([`ApiDoc`], served at `/api2/openapi.json`): every route with its
//! request and response bodies as schemas derived from the Rust types the handlers use.
//!
//! Two things are added to what the route attributes declare ([`Common`]): the responses every
//! authenticated route can give (401 without a valid token, 403 without the privilege, 500
//! when the tokens cannot be checked; 413 for a body over the limit on writes), and
//! `additionalProperties: false` on the request bodies that refuse unknown properties (they
//! capture them only to report each one as a field error).

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use crate::error::ErrorBody;
use crate::routes;

/// The OpenAPI description of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mpcluster API",
        description = "Cluster-wide dm-multipath configuration and health. Every reply is `{\"data\": ...}`; every error `{\"data\", \"message\", \"errors\"?}`. Writes take the digest last read and are refused with 409 if the document changed since."
    ),
    paths(
        routes::status::status,
        routes::status::snapshot,
        routes::preflight::preflight,
        routes::events::list,
        routes::status::health,
        routes::nodes::nodes,
        routes::nodes::remove,
        routes::nodes::node_disks,
        routes::config::get,
        routes::config::put,
        routes::plan::list,
        routes::plan::accept,
        routes::plan::put_policy,
        routes::wwids::list,
        routes::wwids::add,
        routes::wwids::get,
        routes::wwids::put,
        routes::wwids::delete,
        routes::overrides::get,
        routes::overrides::put,
        routes::storage::list,
        routes::storage::add,
        routes::storage::get,
        routes::storage::put,
        routes::storage::delete,
        routes::notify::list,
        routes::notify::add,
        routes::notify::delete,
        routes::notify::test
    ),
    components(schemas(ErrorBody)),
    modifiers(&Common)
)]
pub struct ApiDoc;

/// Request bodies whose unknown properties are refused.
const CLOSED_BODIES: &[&str] = &[
    "AcceptPolicy",
    "Down",
    "OverridesUpdate",
    "PreflightRequest",
    "RemovalBody",
    "StorageCreate",
    "StorageUpdate",
    "TargetCreate",
];

/// Paths served without a token (no 401/403).
const OPEN_PATHS: &[&str] = &["/health"];

/// Adds the responses every authenticated route can give and closes [`CLOSED_BODIES`].
struct Common;

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

fn add_common(op: &mut Operation, write: bool) {
    let mut common = vec![
        (
            "401",
            "No valid API token (`Authorization: Bearer <id>:<secret>`); `WWW-Authenticate` says how",
        ),
        (
            "403",
            "The token lacks the privilege (`Sys.Audit` for reads, `Sys.Modify` for writes)",
        ),
        (
            "503",
            "The API tokens cannot be checked: their stored document is unreadable (the message says why), or the cluster store is unavailable",
        ),
    ];
    if write {
        common.push(("413", "The request body is larger than 1 MiB"));
    }
    for (code, description) in common {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| error_response(description));
    }
}

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if OPEN_PATHS.contains(&path.as_str()) {
                continue;
            }
            for (op, write) in [
                (&mut item.get, false),
                (&mut item.head, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ] {
                if let Some(op) = op {
                    add_common(op, write);
                }
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            for name in CLOSED_BODIES {
                if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(*name) {
                    o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}
