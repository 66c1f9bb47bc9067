//! What happened to a tenant's events.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::pages::{ListQuery, encode_cursor};
use super::{ApiError, AppState};
use crate::event::EventId;
use crate::store::EventDetail;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/events", get(list)).route("/v1/tenants/{tenant}/events/{id}", get(show))
}

/// One page, newest first; `next_cursor` (null on the last page) resumes the walk.
async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let q = ListQuery::parse(&pairs, &["pending", "processed"])?;
    let page = state.store.list_events(&tenant_id, &q.filter, q.limit).await?;
    Ok(Json(json!({ "events": page.rows, "next_cursor": page.next.as_ref().map(encode_cursor) })))
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
