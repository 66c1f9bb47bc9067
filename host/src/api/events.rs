//! What happened to a tenant's events.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::deliveries::DeliverySummary;
use super::pages::{ListParams, ListQuery, encode_cursor};
use super::{ApiError, ApiPath, ApiQuery, AppState, ErrorBody};
use crate::event::EventId;
use crate::store::{EventRow, EventStatus, RouteResult, ms_as_rfc3339, opt_ms_as_rfc3339};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/events", get(list)).route("/v1/tenants/{tenant}/events/{id}", get(show))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// An event as the API shows it in lists (and, with more, alone): no tenant (the path
/// names it) and no data (the detail has it, decoded).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventSummary {
    pub id: EventId,
    pub source: String,
    pub upstream_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: String,
    pub subject: Option<String>,
    pub status: EventStatus,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub received_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "opt_ms_as_rfc3339")]
    pub processed_at: Option<i64>,
    pub route_version: Option<i64>,
    /// Runs that ended in a transient fault and were put back to be tried again.
    pub tries: i64,
    /// Why the event is waiting to be tried again, while it is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
    /// The W3C `traceparent` the event arrived with.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub traceparent: Option<String>,
}

impl From<EventRow> for EventSummary {
    fn from(r: EventRow) -> Self {
        Self {
            id: r.id,
            source: r.source,
            upstream_id: r.upstream_id,
            event_type: r.event_type,
            time: r.time,
            subject: r.subject,
            status: r.status,
            received_at: r.received_at,
            processed_at: r.processed_at,
            route_version: r.route_version,
            tries: r.tries,
            last_error: r.last_error,
            traceparent: r.traceparent,
        }
    }
}

/// An event with everything that happened to it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventSummary,
    /// The event's data as JSON (null if the stored text does not parse).
    pub data: serde_json::Value,
    pub routes: Vec<RouteResult>,
    pub deliveries: Vec<DeliverySummary>,
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
    let events = page.rows.into_iter().map(EventSummary::from).collect();
    Ok(Json(EventPage { events, next_cursor: page.next.as_ref().map(encode_cursor) }))
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
    let record = state.store.event_detail(&tenant_id, &event_id).await?.ok_or_else(not_found)?;
    let data = serde_json::from_str(&record.event.data).unwrap_or(serde_json::Value::Null);
    let deliveries = record.deliveries.into_iter().map(DeliverySummary::from).collect();
    Ok(Json(EventDetail { event: record.event.into(), data, routes: record.routes, deliveries }))
}
