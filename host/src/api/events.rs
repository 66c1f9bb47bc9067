//! What happened to a tenant's events.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, ListQuery};
use crate::event::EventId;
use crate::store::EventDetail;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/events", get(list)).route("/v1/tenants/{tenant}/events/{id}", get(show))
}

async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let (status, limit) = q.parse(&["pending", "processed"])?;
    Ok(Json(json!({ "events": state.store.list_events(&tenant_id, status, limit).await? })))
}

async fn show(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<EventDetail>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let not_found = || ApiError::NotFound(format!("no event {id:?}"));
    let event_id = EventId::parse(&id).ok_or_else(not_found)?;
    Ok(Json(state.store.event_detail(&tenant_id, &event_id).await?.ok_or_else(not_found)?))
}
