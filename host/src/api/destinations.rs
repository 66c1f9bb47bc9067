//! Destinations: their health (failing since, disabled and why), rotation state and
//! settings, and re-enabling one the router disabled. Secrets are never shown.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ApiPath, AppState, ErrorBody};
use crate::store::DestinationRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/destinations", get(list))
        .route("/v1/tenants/{tenant}/destinations/enable", post(enable))
}

/// A destination as the API shows it: never its secrets.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DestinationView {
    #[serde(flatten)]
    pub row: DestinationRow,
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
    DestinationView { row: d.clone(), status, retry_schedule_ms: d.schedule_ms() }
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
