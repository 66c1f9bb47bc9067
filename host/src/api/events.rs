//! What happened to a tenant's events.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::pages::{ListParams, ListQuery, encode_cursor};
use super::{ApiError, ApiPath, ApiQuery, AppState, ErrorBody};
use crate::event::EventId;
use crate::store::{EventDetail, EventRow};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/events", get(list)).route("/v1/tenants/{tenant}/events/{id}", get(show))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// The statuses `?status=` takes here.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only: the query is parsed by `ListQuery`
pub(super) enum EventStatus {
    Pending,
    Processed,
}

/// One page, newest first; `next_cursor` (null on the last page) resumes the walk.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/events", tag = "events",
    params(("tenant" = String, Path), ("status" = Option<EventStatus>, Query), ListParams),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        (status = 400, description = "A bad query parameter, named in the message", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<EventPage>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let q = ListQuery::parse(&pairs, &["pending", "processed"])?;
    let page = state.store.list_events(&tenant_id, &q.filter, q.limit).await?;
    Ok(Json(EventPage { events: page.rows, next_cursor: page.next.as_ref().map(encode_cursor) }))
}

/// An event with what each route did with it and its deliveries.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/events/{id}", tag = "events",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The event", body = EventDetail)))]
pub(super) async fn show(
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<EventDetail>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let not_found = || ApiError::NotFound(format!("no event {id:?}"));
    let event_id = EventId::parse(&id).ok_or_else(not_found)?;
    Ok(Json(state.store.event_detail(&tenant_id, &event_id).await?.ok_or_else(not_found)?))
}
