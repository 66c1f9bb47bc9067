//! Liveness and readiness, for process supervisors and load balancers. Both are open to
//! anyone: `/healthz` says the process answers; `/readyz` says whether it should be sent
//! traffic. A stranger learns only counts from `/readyz`; the admin token (as a bearer token)
//! adds the names of the tenants whose routes failed to load.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::AppState;

/// Longest the database check may take before it counts as unreachable: a health check that
/// hangs is worse than one that says no.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(live)).route("/readyz", get(ready))
}

#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Why not ready; empty when ready.
    pub reasons: Vec<String>,
    pub checks: ReadinessChecks,
}

#[derive(Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// `ok`, `unreachable` or `timeout`.
    pub database: &'static str,
    pub routes: RoutesCheck,
    pub shutting_down: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RoutesCheck {
    /// Tenants whose stored routes could not be loaded.
    pub failed_tenants: usize,
    /// Their names, shown to the admin token only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process answers", body = Liveness)))]
pub(super) async fn live() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// 200 when the database answers, every tenant's stored routes are loaded and shutdown has
/// not begun; otherwise 503 with each reason. Start-up loads the routes (and applies the
/// routes directory) before it serves, so a tenant listed here is one whose stored version
/// could not be loaded; it stays listed until a version of its routes is applied.
#[utoipa::path(get, path = "/readyz", tag = "health", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Ready for traffic", body = Readiness),
        (status = 503, description = "Not ready, with each reason", body = Readiness),
    ))]
pub(super) async fn ready(State(state): State<AppState>, headers: HeaderMap) -> (StatusCode, Json<Readiness>) {
    let mut reasons = Vec::new();
    let database = match tokio::time::timeout(DATABASE_CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!("readiness: database check failed: {e}");
            reasons.push("the database is not reachable".to_owned());
            "unreachable"
        }
        Err(_) => {
            reasons.push(format!("the database did not answer within {}s", DATABASE_CHECK_TIMEOUT.as_secs()));
            "timeout"
        }
    };
    let unloaded = state.routes.unloaded_tenants();
    let mut routes = RoutesCheck { failed_tenants: unloaded.len(), tenants: None };
    if !unloaded.is_empty() {
        reasons.push(format!("the stored routes of {} tenant(s) failed to load", unloaded.len()));
        if is_admin(&state, &headers) && database == "ok" {
            let names: HashMap<_, _> =
                state.store.list_tenants().await.unwrap_or_default().into_iter().map(|t| (t.id, t.name)).collect();
            let mut listed: Vec<&str> = unloaded.iter().filter_map(|id| names.get(id).map(String::as_str)).collect();
            listed.sort_unstable();
            routes.tenants = Some(listed.into_iter().map(str::to_owned).collect());
        }
    }
    let shutting_down = state.shutdown.is_cancelled();
    if shutting_down {
        reasons.push("shutting down".to_owned());
    }
    let code = if reasons.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if reasons.is_empty() { "ready" } else { "not_ready" };
    (code, Json(Readiness { status, reasons, checks: ReadinessChecks { database, routes, shutting_down } }))
}

fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(state.admin_token.as_bytes())))
}
