//! `GET /metrics`: the Prometheus text page, for the admin token only (see `auth`). It shows
//! every tenant's volumes and failures, so it is an operator's page, not a tenant's; it is
//! served on the API's listener, behind the same connection bounds and timeouts, so there is
//! no second port to expose or firewall. Prometheus sends the token with `authorization`
//! (`credentials_file`) in its scrape config.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use super::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The Prometheus text page (admin token only).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String,
        content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let page = state.metrics.render(&state.store, state.runtime.instances_in_use()).await?;
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], page))
}
