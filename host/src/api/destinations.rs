//! Destinations: their health (failing since, disabled and why), rotation state and
//! settings, and re-enabling one the router disabled. Secrets are never shown.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ApiPath, AppState, ErrorBody};
use crate::store::{DestinationRow, ms_as_rfc3339, opt_ms_as_rfc3339};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/destinations", get(list))
        .route("/v1/tenants/{tenant}/destinations/enable", post(enable))
}

/// A destination as the API shows it: never its secrets.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DestinationView {
    pub url: String,
    /// Until when the previous secret also signs (a rotation in progress).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "opt_ms_as_rfc3339")]
    pub previous_secret_until: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub max_in_flight: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "opt_ms_as_rfc3339")]
    pub failing_since: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "opt_ms_as_rfc3339")]
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub updated_at: i64,
    pub status: DestinationStatus,
    /// The destination's own retry schedule, if it has one (else the router's).
    pub retry_schedule_ms: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DestinationStatus {
    Ok,
    /// Attempts fail; `failing_since` says since when.
    Failing,
    /// The router stopped sending; `disabled_reason` says why. Enable it once fixed.
    Disabled,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DestinationList {
    pub destinations: Vec<DestinationView>,
}

fn destination_json(d: &DestinationRow) -> DestinationView {
    let status = if d.disabled_at.is_some() {
        DestinationStatus::Disabled
    } else if d.failing_since.is_some() {
        DestinationStatus::Failing
    } else {
        DestinationStatus::Ok
    };
    DestinationView {
        url: d.url.clone(),
        previous_secret_until: d.previous_secret_until,
        timeout_ms: d.timeout_ms,
        max_in_flight: d.max_in_flight,
        failing_since: d.failing_since,
        disabled_at: d.disabled_at,
        disabled_reason: d.disabled_reason.clone(),
        updated_at: d.updated_at,
        status,
        retry_schedule_ms: d.schedule_ms(),
    }
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/destinations", tag = "destinations",
    params(("tenant" = String, Path)),
    responses((status = 200, description = "The tenant's destinations", body = DestinationList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<DestinationList>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let rows = state.store.list_destinations(&tenant_id).await?;
    Ok(Json(DestinationList { destinations: rows.iter().map(destination_json).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    pub url: String,
}

/// Enables a disabled destination. Its dead letters stay dead: replay them (by `url`) once
/// the endpoint is fixed.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/destinations/enable", tag = "destinations",
    params(("tenant" = String, Path)), request_body = EnableRequest,
    responses(
        (status = 200, description = "Enabled", body = DestinationView),
        (status = 422, description = "Not an enable request", body = ErrorBody),
    ))]
pub(super) async fn enable(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(request): ApiJson<EnableRequest>,
) -> Result<Json<DestinationView>, ApiError> {
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
