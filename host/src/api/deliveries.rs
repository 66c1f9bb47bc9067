//! Deliveries: status, attempt log, and replay of dead letters.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, ListQuery};
use crate::event::DeliveryId;
use crate::store::DeliveryDetail;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/deliveries", get(list))
        .route("/v1/tenants/{tenant}/deliveries/{id}", get(show))
        .route("/v1/tenants/{tenant}/deliveries/{id}/replay", post(replay))
}

async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let (status, limit) = q.parse(&["pending", "delivered", "dead"])?;
    Ok(Json(json!({ "deliveries": state.store.list_deliveries(&tenant_id, status, limit).await? })))
}

async fn show(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let not_found = || ApiError::NotFound(format!("no delivery {id:?}"));
    let delivery_id = DeliveryId::parse(&id).ok_or_else(not_found)?;
    Ok(Json(state.store.delivery_detail(&tenant_id, &delivery_id).await?.ok_or_else(not_found)?))
}

/// Re-queues a dead (or delivered) delivery with the same webhook id and a fresh schedule.
async fn replay(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let delivery_id = DeliveryId::parse(&id).ok_or_else(|| ApiError::NotFound(format!("no delivery {id:?}")))?;
    if !state.store.replay_delivery(&tenant_id, &delivery_id).await? {
        return match state.store.delivery_detail(&tenant_id, &delivery_id).await? {
            Some(_) => Err(ApiError::Conflict("delivery is still pending".into())),
            None => Err(ApiError::NotFound(format!("no delivery {id:?}"))),
        };
    }
    state.delivery_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": delivery_id, "status": "pending" }))))
}
