//! A tenant's route document: applied whole, versioned, live on success.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, ApiJson, AppState};
use crate::routes::{self, ApplyError, RouteDocument};
use crate::runtime::RuntimeError;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/routes", get(show).put(apply))
}

async fn apply(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ApiJson(doc): ApiJson<RouteDocument>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let allow_private = state.config.delivery.allow_private_destinations;
    let (version, resolved) =
        routes::apply(&doc, &tenant_id, allow_private, &state.store, &state.runtime, &state.routes).await.map_err(
            |e| match e {
                ApplyError::Invalid(details) => {
                    ApiError::Unprocessable { message: "invalid route document".into(), details }
                }
                ApplyError::Store(e) => e.into(),
                ApplyError::Runtime(RuntimeError::Internal(m)) => ApiError::Internal(m),
                ApplyError::Runtime(e) => ApiError::Internal(format!("a stored plugin failed to load: {e}")),
            },
        )?;
    tracing::info!(tenant, version, "routes applied");
    Ok(Json(json!({ "version": version, "document": resolved })))
}

async fn show(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let row = state
        .store
        .latest_route_set(&tenant_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tenant {tenant:?} has no routes yet")))?;
    let document: Value = serde_json::from_str(&row.document).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(
        json!({ "version": row.version, "created_at": crate::store::ms_to_rfc3339(row.created_at), "document": document }),
    ))
}
