//! The HTTP API (axum). One module per resource, each with a `router()`; ingest is public
//! (sources authenticate with signatures), everything else needs a bearer token: the admin
//! token (operators: everything) or a tenant API key (its own tenant only; see `auth`).

mod auth;
mod deliveries;
mod destinations;
mod error;
mod events;
mod fixtures;
mod ingest;
mod keys;
mod metrics;
mod plugins;
mod routes;
pub mod server;
mod tenants;

use std::sync::Arc;

use axum::extract::FromRequest;
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::Notify;
use tower_http::trace::TraceLayer;

pub use auth::Principal;
pub use error::ApiError;

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
    /// What `GET /metrics` shows; ingest counts its requests here.
    pub metrics: Arc<crate::metrics::Metrics>,
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
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .merge(ingest::router(&state.config))
        .merge(authenticated)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// JSON request bodies whose rejections answer in our error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl AppState {
    /// The tenant named in a path, or 404.
    pub async fn tenant(&self, name: &str) -> Result<Tenant, ApiError> {
        self.store.tenant_by_name(name).await?.ok_or_else(|| ApiError::NotFound(format!("no tenant named {name:?}")))
    }

    pub async fn tenant_id(&self, name: &str) -> Result<TenantId, ApiError> {
        Ok(self.tenant(name).await?.id)
    }
}

/// `?status=&limit=` on list endpoints.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<String>,
    pub limit: Option<u32>,
}

impl ListQuery {
    /// The status filter, checked against `allowed`, and the limit (default 50, at most 1000).
    pub fn parse(&self, allowed: &[&str]) -> Result<(Option<&str>, u32), ApiError> {
        if let Some(s) = &self.status
            && !allowed.contains(&s.as_str())
        {
            return Err(ApiError::BadRequest(format!("status must be one of {}", allowed.join(", "))));
        }
        let limit = self.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::BadRequest("limit must be between 1 and 1000".into()));
        }
        Ok((self.status.as_deref(), limit))
    }
}
