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
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::AppState;

/// Longest the database check may take before it counts as unreachable: a health check that
/// hangs is worse than one that says no.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { Json(json!({"status": "ok"})) })).route("/readyz", get(ready))
}

/// 200 when the database answers, every tenant's stored routes are loaded and shutdown has
/// not begun; otherwise 503 with each reason. Start-up loads the routes (and applies the
/// routes directory) before it serves, so a tenant listed here is one whose stored version
/// could not be loaded; it stays listed until a version of its routes is applied.
async fn ready(State(state): State<AppState>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let mut reasons = Vec::new();
    let database = match tokio::time::timeout(DATABASE_CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => {
            tracing::warn!("readiness: database check failed: {e}");
            reasons.push("the database is not reachable".to_owned());
            "unreachable".to_owned()
        }
        Err(_) => {
            reasons.push(format!("the database did not answer within {}s", DATABASE_CHECK_TIMEOUT.as_secs()));
            "timeout".to_owned()
        }
    };
    let unloaded = state.routes.unloaded_tenants();
    let mut routes = json!({"failed_tenants": unloaded.len()});
    if !unloaded.is_empty() {
        reasons.push(format!("the stored routes of {} tenant(s) failed to load", unloaded.len()));
        if is_admin(&state, &headers) && database == "ok" {
            let names: HashMap<_, _> =
                state.store.list_tenants().await.unwrap_or_default().into_iter().map(|t| (t.id, t.name)).collect();
            let mut listed: Vec<&str> = unloaded.iter().filter_map(|id| names.get(id).map(String::as_str)).collect();
            listed.sort_unstable();
            routes["tenants"] = json!(listed);
        }
    }
    let shutting_down = state.shutdown.is_cancelled();
    if shutting_down {
        reasons.push("shutting down".to_owned());
    }
    let code = if reasons.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if reasons.is_empty() { "ready" } else { "not_ready" },
        "reasons": reasons,
        "checks": {"database": database, "routes": routes, "shutting_down": shutting_down},
    });
    (code, Json(body))
}

fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(state.admin_token.as_bytes())))
}
