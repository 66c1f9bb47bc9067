//! Destinations: their health (failing since, disabled and why), rotation state and
//! settings, and re-enabling one the router disabled. Secrets are never shown.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, AppState};
use crate::store::DestinationRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/destinations", get(list))
        .route("/v1/tenants/{tenant}/destinations/enable", post(enable))
}

fn destination_json(d: &DestinationRow) -> Value {
    let mut v = json!(d);
    v["status"] = json!(if d.disabled_at.is_some() {
        "disabled"
    } else if d.failing_since.is_some() {
        "failing"
    } else {
        "ok"
    });
    v["retry_schedule_ms"] = json!(d.schedule_ms());
    v
}

async fn list(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let rows = state.store.list_destinations(&tenant_id).await?;
    Ok(Json(json!({ "destinations": rows.iter().map(destination_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableRequest {
    url: String,
}

/// Enables a disabled destination. Its dead letters stay dead: replay them (by `url`) once
/// the endpoint is fixed.
async fn enable(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<EnableRequest>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    if !state.store.enable_destination(&tenant_id, &request.url).await? {
        return Err(ApiError::NotFound(format!("tenant {tenant:?} has no destination {:?}", request.url)));
    }
    tracing::info!(tenant, url = %crate::delivery::url_for_logs(&request.url), "destination enabled");
    let row = state
        .store
        .destination(&tenant_id, &request.url)
        .await?
        .ok_or_else(|| ApiError::Internal("destination vanished".into()))?;
    Ok(Json(destination_json(&row)))
}
