//! Deliveries: status, attempt log, and replay of dead letters.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::pages::{ListParams, ListQuery, encode_cursor};
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, ErrorBody};
use std::collections::BTreeMap;

use crate::event::{DeliveryId, EventId, TenantId};
use crate::pipeline::{EventLimits, run_route};
use crate::store::{
    AttemptRow, DeadFilter, DeliveryRow, DeliveryStatus, RouteOutcome, ms_as_rfc3339, opt_ms_as_rfc3339,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/deliveries", get(list))
        .route("/v1/tenants/{tenant}/deliveries/{id}", get(show))
        .route("/v1/tenants/{tenant}/deliveries/{id}/replay", post(replay))
        .route("/v1/tenants/{tenant}/deliveries/replay", post(replay_dead))
}

/// Which dead letters to replay, and how; every filter field narrows, none means all of the
/// tenant's.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayFilter {
    /// Route name.
    pub route: Option<String>,
    /// Destination URL.
    pub url: Option<String>,
    /// Dead letters created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Dead letters created before; after `since`.
    pub until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub mode: ReplayMode,
}

#[derive(Serialize, Deserialize, Default, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplayMode {
    /// Send the stored payload again, with the same webhook id.
    #[default]
    Resend,
    /// Run the original event through the route's current plugin chain and deliver what it
    /// produces now (new webhook ids) to the destinations that failed.
    Rerun,
}

/// What a replay of dead letters did. `resend` answers `mode` and `replayed`; `rerun` adds the
/// rest.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReplayReport {
    pub mode: ReplayMode,
    /// Dead letters replayed (re-queued, or superseded by a rerun's new deliveries).
    pub replayed: u64,
    /// The live route version a rerun used (null when the tenant has none).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub route_version: Option<Option<i64>>,
    /// New deliveries a rerun queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<usize>,
    /// What a rerun left as it was, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Vec<Skipped>>,
}

/// A field that is there reads back as `Some`, `null` too (`Some(None)`); absent is `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Skipped {
    pub event: EventId,
    pub route: String,
    pub reason: String,
}

/// A delivery as the API shows it (its body and attempts in the detail).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliverySummary {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub route: String,
    pub url: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "opt_ms_as_rfc3339")]
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// Replayed by re-running the plugin chain: the new deliveries replace this one.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "opt_ms_as_rfc3339", default, skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub created_at: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub updated_at: i64,
}

impl From<DeliveryRow> for DeliverySummary {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            route: d.route,
            url: d.url,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            superseded_at: d.superseded_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub attempt: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
}

impl From<AttemptRow> for Attempt {
    fn from(a: AttemptRow) -> Self {
        Self {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            response_snippet: a.response_snippet,
        }
    }
}

/// A delivery with its body (as text, lossily) and every attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliverySummary,
    pub body: String,
    pub attempts_log: Vec<Attempt>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliverySummary>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// A replayed delivery: pending again.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Requeued {
    pub id: DeliveryId,
    pub status: DeliveryStatus,
}

/// Replays every dead delivery matching the filter (route, destination URL, created in
/// [since, until)): `resend` re-queues each stored payload with its webhook id and a fresh
/// schedule; `rerun` re-runs the current plugin chain (see `rerun`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/deliveries/replay", tag = "deliveries",
    params(("tenant" = String, Path)), request_body = ReplayFilter,
    responses(
        (status = 202, description = "Replayed", body = ReplayReport),
        (status = 422, description = "A bad filter", body = ErrorBody),
    ))]
pub(super) async fn replay_dead(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(f): ApiJson<ReplayFilter>,
) -> Result<(StatusCode, Json<ReplayReport>), ApiError> {
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
    let body = match f.mode {
        ReplayMode::Resend => ReplayReport {
            mode: ReplayMode::Resend,
            replayed: state.store.replay_dead(&tenant_id, &filter).await?,
            route_version: None,
            queued: None,
            skipped: None,
        },
        ReplayMode::Rerun => rerun(&state, &tenant_id, &filter).await?,
    };
    if body.replayed > 0 {
        state.delivery_wake.notify_one();
    }
    tracing::info!(tenant, replayed = body.replayed, "dead letters replayed");
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// Runs each dead letter's event through the live version of its route and queues what the
/// chain produces now for the destinations that failed. The dead letters are marked
/// superseded (kept, never replayed again). A route that is gone, a destination no longer in
/// it, or a chain that now drops or fails the event is reported under `skipped`, and those
/// dead letters stay as they are. Each run waits for room under the tenant's in-flight cap
/// and failure budget, as a pending event would.
async fn rerun(state: &AppState, tenant: &TenantId, filter: &DeadFilter) -> Result<ReplayReport, ApiError> {
    let live = state.routes.get(tenant);
    // One run per event and route; remember which deliveries (and destinations) failed.
    let mut groups: BTreeMap<(EventId, String), Vec<(DeliveryId, String)>> = BTreeMap::new();
    for (id, event, route, url) in state.store.dead_letters(tenant, filter).await? {
        groups.entry((event, route)).or_default().push((id, url));
    }
    let first_delay = state.config.delivery.retry_schedule[0];
    let (mut replayed, mut queued, mut skipped) = (0usize, 0usize, Vec::new());
    for ((event_id, route_name), dead) in groups {
        let mut skip =
            |reason: String| skipped.push(Skipped { event: event_id.clone(), route: route_name.clone(), reason });
        let Some(route) = live.as_ref().and_then(|l| l.routes.iter().find(|r| r.name == route_name)) else {
            skip("the route is not in the live route version".into());
            continue;
        };
        let Some(row) = state.store.event_row(tenant, &event_id).await? else {
            skip("the event no longer exists".into());
            continue;
        };
        // Like a pending event: wait for room under the tenant's in-flight cap and failure
        // budget, and charge what fails.
        let mut run = state.gate.start(tenant).await;
        let mut failed = std::time::Duration::ZERO;
        let event = row.to_event();
        let limits = EventLimits::of(&state.config.policy(&event.tenant));
        let (result, mut new) =
            run_route(&state.runtime, route, tenant, &event, first_delay, limits, &mut failed).await;
        run.charge(failed);
        drop(run);
        match result.outcome {
            RouteOutcome::Emitted => {}
            RouteOutcome::Dropped | RouteOutcome::Failed => {
                skip(format!("the current chain did not emit: {}", result.detail.unwrap_or_default()));
                continue;
            }
        }
        new.retain(|d| dead.iter().any(|(_, url)| *url == d.url));
        if new.is_empty() {
            skip("the destinations that failed are no longer in the route".into());
            continue;
        }
        let ids: Vec<DeliveryId> = dead.into_iter().map(|(id, _)| id).collect();
        state.store.supersede(&ids, &new).await?;
        replayed += ids.len();
        queued += new.len();
    }
    Ok(ReplayReport {
        mode: ReplayMode::Rerun,
        replayed: replayed as u64,
        route_version: Some(live.map(|l| l.version)),
        queued: Some(queued),
        skipped: Some(skipped),
    })
}

/// One page, newest first; `next_cursor` (null on the last page) resumes the walk.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/deliveries", tag = "deliveries",
    params(("tenant" = String, Path), ("status" = Option<DeliveryStatus>, Query), ListParams),
    responses(
        (status = 200, description = "One page of deliveries", body = DeliveryPage),
        (status = 400, description = "A bad query parameter, named in the message", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let q = ListQuery::parse(&pairs, &["pending", "delivered", "dead"])?;
    let page = state.store.list_deliveries(&tenant_id, &q.filter, q.limit).await?;
    let deliveries = page.rows.into_iter().map(DeliverySummary::from).collect();
    Ok(Json(DeliveryPage { deliveries, next_cursor: page.next.as_ref().map(encode_cursor) }))
}

/// A delivery with its body and every attempt.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/deliveries/{id}", tag = "deliveries",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The delivery", body = DeliveryDetail)))]
pub(super) async fn show(
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let not_found = || ApiError::NotFound(format!("no delivery {id:?}"));
    let delivery_id = DeliveryId::parse(&id).ok_or_else(not_found)?;
    let record = state.store.delivery_detail(&tenant_id, &delivery_id).await?.ok_or_else(not_found)?;
    Ok(Json(DeliveryDetail {
        delivery: record.delivery.into(),
        body: String::from_utf8_lossy(&record.body).into_owned(),
        attempts_log: record.attempts.into_iter().map(Attempt::from).collect(),
    }))
}

/// Re-queues a dead (or delivered) delivery with the same webhook id and a fresh schedule.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/deliveries/{id}/replay", tag = "deliveries",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses(
        (status = 202, description = "Pending again", body = Requeued),
        (status = 409, description = "Still pending", body = ErrorBody),
    ))]
pub(super) async fn replay(
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<Requeued>), ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let delivery_id = DeliveryId::parse(&id).ok_or_else(|| ApiError::NotFound(format!("no delivery {id:?}")))?;
    if !state.store.replay_delivery(&tenant_id, &delivery_id).await? {
        return match state.store.delivery_detail(&tenant_id, &delivery_id).await? {
            Some(_) => Err(ApiError::Conflict("delivery is still pending".into())),
            None => Err(ApiError::NotFound(format!("no delivery {id:?}"))),
        };
    }
    state.delivery_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Requeued { id: delivery_id, status: DeliveryStatus::Pending })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the API answers reads back (the CLI) into an equal value with the same JSON;
    /// `superseded_at` is left out when unset and reads back as unset.
    #[test]
    fn a_delivery_round_trips_through_its_json() {
        let delivery = DeliverySummary {
            id: DeliveryId::parse("dlv_1").unwrap(),
            event_id: EventId::parse("evt_1").unwrap(),
            route: "r".into(),
            url: "https://example.com/hook".into(),
            event_type: "call.ended".into(),
            status: DeliveryStatus::Dead,
            attempts: 3,
            next_attempt_at: None,
            last_status: Some(503),
            last_error: None,
            superseded_at: None,
            created_at: 1,
            updated_at: 2,
        };
        let json = serde_json::to_value(&delivery).unwrap();
        assert!(json.get("superseded_at").is_none(), "{json}");
        assert_eq!(json["type"], "call.ended");
        assert_eq!(json["created_at"], "1970-01-01T00:00:00.001Z");
        let back: DeliverySummary = serde_json::from_value(json.clone()).unwrap();
        assert_eq!((back.superseded_at, back.created_at, back.updated_at), (None, 1, 2));
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }
}
