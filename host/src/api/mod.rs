//! The HTTP API (axum). One module per resource, each with a `router()`; ingest is public
//! (sources authenticate with signatures), everything else needs a bearer token: the admin
//! token (operators: everything) or a tenant API key (its own tenant only; see `auth`). The
//! web console's static files (`/console`) are public too: they hold no data, and the page
//! calls this same API with the token its user signs in with.

mod auth;
mod console;
mod deliveries;
mod destinations;
mod error;
mod events;
mod fixtures;
mod health;
mod ingest;
mod keys;
mod metrics;
pub mod openapi;
mod pages;
mod plugins;
mod routes;
pub mod server;
mod stats;
mod tenants;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequest;
use axum::middleware;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use auth::Principal;
pub use error::{ApiError, ErrorBody, ErrorDetail};

/// The API's answers as types, in one place: the handlers serialise them and the CLI reads
/// them back (every one is `Serialize + Deserialize`), so a field renamed or dropped here
/// breaks the CLI's build rather than its tables.
pub mod types {
    pub use super::deliveries::{
        Attempt, DeliveryDetail, DeliveryPage, DeliverySummary, ReplayReport, Requeued, Skipped,
    };
    pub use super::destinations::{DestinationList, DestinationStatus, DestinationView};
    pub use super::events::{EventDetail, EventPage, EventSummary};
    pub use super::fixtures::FixtureList;
    pub use super::keys::{CreatedKey, KeyList};
    pub use super::plugins::{PluginList, PluginVersions, Uploaded};
    pub use super::routes::{RouteDiff, RouteVersion, RouteVersionList, RoutesApplied};
    pub use super::tenants::{SourceList, SourceView, TenantList};
    pub use crate::store::{
        ApiKey, DeliveryStatus, EventStatus, PluginVersionMeta, RouteOrigin, RouteOutcome, RouteResult,
        RouteVersionSummary, Tenant,
    };
}

use crate::config::Config;
use crate::event::TenantId;
use crate::pipeline::TenantGate;
use crate::quota::IngestLimiter;
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::store::handoff::EventQueue;
use crate::store::{Store, Tenant, Writer};

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Group-commits ingested events (and hands them to the pipeline).
    pub writer: Writer,
    /// The pipeline's queue, which also counts each tenant's backlog.
    pub events: Arc<EventQueue>,
    pub runtime: Arc<Runtime>,
    pub routes: Arc<RouteTable>,
    pub config: Arc<Config>,
    pub admin_token: Arc<str>,
    /// Wakes the delivery worker when deliveries were put back in the database (replays).
    pub delivery_wake: Arc<Notify>,
    pub ingest_limits: Arc<IngestLimiter>,
    /// Per-tenant in-flight caps and failure budgets, shared with the pipeline: dry runs and
    /// rerun replays run plugins under the same limits as events.
    pub gate: Arc<TenantGate>,
    /// Cancelled when shutdown begins: `/readyz` answers 503 from then on.
    pub shutdown: CancellationToken,
    /// What `GET /metrics` shows; ingest counts its requests here.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Starts each event's trace at ingest (off unless `[tracing]` is configured).
    pub tracer: crate::trace::Tracer,
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let authenticated = Router::new()
        .merge(tenants::router())
        .merge(keys::router())
        .merge(plugins::router(&state.config))
        .merge(fixtures::router())
        .merge(routes::router())
        .merge(events::router())
        .merge(deliveries::router())
        .merge(destinations::router())
        .merge(metrics::router())
        .merge(stats::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .merge(health::router())
        .merge(openapi::router())
        .merge(ingest::router(&state.config))
        .merge(console::router())
        .merge(authenticated)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// JSON request bodies whose rejections answer in our error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Path parameters whose rejections (bad percent-encoding) answer in our error format.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// A query string whose rejections answer in our error format.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl AppState {
    /// The tenant named in a path, or 404.
    pub async fn tenant(&self, name: &str) -> Result<Tenant, ApiError> {
        self.store.tenant_by_name(name).await?.ok_or_else(|| ApiError::NotFound(format!("no tenant named {name:?}")))
    }

    pub async fn tenant_id(&self, name: &str) -> Result<TenantId, ApiError> {
        Ok(self.tenant(name).await?.id)
    }
}
