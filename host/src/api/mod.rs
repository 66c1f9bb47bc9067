//! The HTTP API (axum). One module per resource, each with a `router()`; ingest is public
//! (sources authenticate with signatures), everything under `/v1/tenants` needs the admin
//! token.

mod deliveries;
mod error;
mod events;
mod ingest;
mod plugins;
mod routes;
mod tenants;

use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::config::Config;
use crate::event::TenantId;
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::store::{EventWriter, Store, Tenant};

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Group-commits ingested events.
    pub events: EventWriter,
    pub runtime: Arc<Runtime>,
    pub routes: Arc<RouteTable>,
    pub config: Arc<Config>,
    pub admin_token: Arc<str>,
    /// Wakes the pipeline when ingest stored an event.
    pub pipeline_wake: Arc<Notify>,
    /// Wakes the delivery worker when a delivery was re-queued.
    pub delivery_wake: Arc<Notify>,
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let admin = Router::new()
        .merge(tenants::router())
        .merge(plugins::router(&state.config))
        .merge(routes::router())
        .merge(events::router())
        .merge(deliveries::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .merge(ingest::router(&state.config))
        .merge(admin)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token (Authorization: Bearer <admin token>)".into()))?;
    if !bool::from(presented.as_bytes().ct_eq(state.admin_token.as_bytes())) {
        return Err(ApiError::Unauthorized("invalid token".into()));
    }
    Ok(next.run(request).await)
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
