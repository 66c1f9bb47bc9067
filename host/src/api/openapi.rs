//! `GET /v1/openapi.json`: the API's contract, an OpenAPI 3.1 document derived from the
//! handlers' `#[utoipa::path]` annotations and the types they take and answer with, so it
//! cannot drift from the code without a compile error or a failing test (`tests` below checks
//! that every route the router serves is in it). Public, like the contract it is; built once.
//!
//! The errors every operation can answer are added here rather than on each handler, because
//! they come from one place each: the bearer check (401, 403) in `auth`, the tenant lookup in
//! the path (404) and internal errors (500). All of them, like every other error, have the body
//! `ErrorBody`.

use std::sync::LazyLock;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{AppState, ErrorBody, deliveries, destinations, events, fixtures, health, ingest, keys};
use super::{metrics, plugins, routes, stats, tenants};

pub const PATH: &str = "/v1/openapi.json";

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(serve))
}

/// The document, serialised once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_pretty_json().expect("the document serialises"));

/// This document (OpenAPI 3.1, JSON).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json",
        body = Object)))]
pub(super) async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchyard", description = "Multi-tenant, WebAssembly-extensible webhook event router. \
        Every endpoint but ingest, health and this document needs a bearer token: the admin token \
        (everything) or a tenant API key (its own tenant's resources, not its keys)."),
    paths(
        health::live, health::ready, serve, metrics::metrics,
        ingest::ingest,
        tenants::list, tenants::create, tenants::show,
        tenants::list_sources, tenants::put_source, tenants::show_source, tenants::delete_source,
        keys::list, keys::create, keys::revoke,
        plugins::list, plugins::upload, plugins::versions, plugins::show, plugins::delete, plugins::dry_run,
        fixtures::list,
        routes::show_live, routes::apply, routes::versions, routes::show_version, routes::diff, routes::rollback,
        events::list, events::show,
        deliveries::list, deliveries::show, deliveries::replay, deliveries::replay_dead,
        destinations::list, destinations::enable,
        stats::show,
    ),
    // Schemas only a query parameter names (utoipa registers the rest from the handlers).
    components(schemas(ErrorBody, crate::store::EventStatus)),
    modifiers(&Contract),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Liveness, readiness, metrics and this document"),
        (name = "ingest", description = "Where senders post webhooks"),
        (name = "tenants"), (name = "sources"), (name = "keys"), (name = "plugins"), (name = "routes"),
        (name = "events"), (name = "deliveries"), (name = "destinations"),
        (name = "stats", description = "The last hour per minute, for the console's charts"),
    )
)]
struct ApiDoc;

/// The document, with the bearer scheme and the common errors.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin token, or a tenant API key (syk_...)"))
                    .build(),
            ),
        );
        let error = |description: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::Content::new(Some(RefOr::Ref(Ref::from_schema_name(ErrorBody::name())))),
                )
                .build()
                .into()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = item_is_public(path);
            for op in operations(item) {
                let json = takes_json(op);
                let responses = &mut op.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_owned()).or_insert_with(|| error(description));
                };
                if !public {
                    add("401", "No bearer token, or not a valid one");
                    add("403", "A tenant key asked for what only the admin token may do");
                }
                if json {
                    // `ApiJson` refuses these before the handler runs.
                    add("400", "The body is not JSON");
                    add("413", "The body is over the limit");
                    add("415", "Not Content-Type: application/json");
                }
                if path.contains("{tenant}") {
                    add("404", "No such tenant (or resource)");
                }
                add("500", "An internal error; the detail is in the router's log");
            }
        }
    }
}

/// Operations that need no bearer token: health, ingest (senders authenticate as their source
/// declares) and this document. Mirrors `app()`, where these sit outside the auth layer.
fn item_is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | PATH) || path.starts_with("/v1/ingest/")
}

fn takes_json(op: &utoipa::openapi::path::Operation) -> bool {
    op.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"))
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch]
        .into_iter()
        .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests;
