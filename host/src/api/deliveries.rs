//! Deliveries: status, attempt log, and replay of dead letters.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pages::{ListQuery, encode_cursor};
use super::{ApiError, ApiJson, AppState};
use std::collections::BTreeMap;

use crate::event::{DeliveryId, EventId, TenantId};
use crate::pipeline::{EventLimits, run_route};
use crate::store::{DeadFilter, DeliveryDetail, RouteOutcome};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/deliveries", get(list))
        .route("/v1/tenants/{tenant}/deliveries/{id}", get(show))
        .route("/v1/tenants/{tenant}/deliveries/{id}/replay", post(replay))
        .route("/v1/tenants/{tenant}/deliveries/replay", post(replay_dead))
}

/// Which dead letters to replay, and how; every filter field narrows, none means all of the
/// tenant's.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayFilter {
    route: Option<String>,
    url: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    #[serde(default)]
    mode: ReplayMode,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ReplayMode {
    /// Send the stored payload again, with the same webhook id.
    #[default]
    Resend,
    /// Run the original event through the route's current plugin chain and deliver what it
    /// produces now (new webhook ids) to the destinations that failed.
    Rerun,
}

/// Replays every dead delivery matching the filter (route, destination URL, created in
/// [since, until)): `resend` re-queues each stored payload with its webhook id and a fresh
/// schedule; `rerun` re-runs the current plugin chain (see `rerun`).
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
    let body = match f.mode {
        ReplayMode::Resend => {
            json!({ "mode": "resend", "replayed": state.store.replay_dead(&tenant_id, &filter).await? })
        }
        ReplayMode::Rerun => rerun(&state, &tenant_id, &filter).await?,
    };
    if body["replayed"].as_u64().unwrap_or(0) > 0 {
        state.delivery_wake.notify_one();
    }
    tracing::info!(tenant, replayed = %body["replayed"], "dead letters replayed");
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// Runs each dead letter's event through the live version of its route and queues what the
/// chain produces now for the destinations that failed. The dead letters are marked
/// superseded (kept, never replayed again). A route that is gone, a destination no longer in
/// it, or a chain that now drops or fails the event is reported under `skipped`, and those
/// dead letters stay as they are. Each run waits for room under the tenant's in-flight cap
/// and failure budget, as a pending event would.
async fn rerun(state: &AppState, tenant: &TenantId, filter: &DeadFilter) -> Result<Value, ApiError> {
    let live = state.routes.get(tenant);
    // One run per event and route; remember which deliveries (and destinations) failed.
    let mut groups: BTreeMap<(EventId, String), Vec<(DeliveryId, String)>> = BTreeMap::new();
    for (id, event, route, url) in state.store.dead_letters(tenant, filter).await? {
        groups.entry((event, route)).or_default().push((id, url));
    }
    let first_delay = state.config.delivery.retry_schedule[0];
    let (mut replayed, mut queued, mut skipped) = (0usize, 0usize, Vec::new());
    for ((event_id, route_name), dead) in groups {
        let mut skip = |reason: String| skipped.push(json!({"event": event_id, "route": route_name, "reason": reason}));
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
    Ok(json!({
        "mode": "rerun",
        "route_version": live.map(|l| l.version),
        "replayed": replayed,
        "queued": queued,
        "skipped": skipped,
    }))
}

/// One page, newest first; `next_cursor` (null on the last page) resumes the walk.
async fn list(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let q = ListQuery::parse(&pairs, &["pending", "delivered", "dead"])?;
    let page = state.store.list_deliveries(&tenant_id, &q.filter, q.limit).await?;
    Ok(Json(json!({ "deliveries": page.rows, "next_cursor": page.next.as_ref().map(encode_cursor) })))
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
