//! Deliveries: status, attempt log, and replay of dead letters.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, AppState, ListQuery};
use crate::event::DeliveryId;
use crate::store::{DeadFilter, DeliveryDetail};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/deliveries", get(list))
        .route("/v1/tenants/{tenant}/deliveries/{id}", get(show))
        .route("/v1/tenants/{tenant}/deliveries/{id}/replay", post(replay))
        .route("/v1/tenants/{tenant}/deliveries/replay", post(replay_dead))
}

/// Which dead letters to replay; every field narrows, none means all of the tenant's.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayFilter {
    route: Option<String>,
    url: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

/// Re-queues every dead delivery matching the filter (route, destination URL, created in
/// [since, until)), each with its stored payload and webhook id and a fresh schedule.
async fn replay_dead(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ApiJson(f): ApiJson<ReplayFilter>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    if let (Some(a), Some(b)) = (f.since, f.until)
        && a >= b
    {
        return Err(ApiError::unprocessable("since must be before until"));
    }
    let filter = DeadFilter {
        route: f.route,
        url: f.url,
        since: f.since.map(|t| t.timestamp_millis()),
        until: f.until.map(|t| t.timestamp_millis()),
    };
    let replayed = state.store.replay_dead(&tenant_id, &filter).await?;
    if replayed > 0 {
        state.delivery_wake.notify_one();
    }
    tracing::info!(tenant, replayed, "dead letters replayed");
    Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": replayed }))))
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
