//! `GET /v1/tenants/{tenant}/stats`: the last hour, per minute, for the console's charts (and
//! the CLI): delivery attempts by destination and outcome, from the stored attempts, and
//! plugin call latency by plugin, from the runtime's in-memory minutes (`runtime::recent`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiError, ApiPath, AppState};
use crate::runtime::recent::{PluginMinute, WINDOW_MINUTES};
use crate::store::{AttemptMinute, ms_to_rfc3339, now_ms};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/stats", get(show))
}

/// The window and its series; minutes with nothing in them are left out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsResponse {
    /// Start of the first minute in the window (RFC 3339).
    pub since: String,
    pub until: String,
    pub bucket_seconds: u32,
    pub deliveries: Vec<DestinationSeries>,
    pub plugins: Vec<PluginSeries>,
}

/// One destination's attempts per minute.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DestinationSeries {
    pub url: String,
    pub minutes: Vec<DeliveryMinute>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryMinute {
    pub minute: String,
    /// Attempts the receiver answered 2xx.
    pub delivered: i64,
    /// Attempts the receiver answered with another status.
    pub failed: i64,
    /// Attempts with no answer (refused, unreachable, timed out).
    pub error: i64,
}

/// One plugin's calls (pipeline and replays; dry runs are not counted) per minute.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginSeries {
    pub plugin: String,
    pub minutes: Vec<PluginLatencyMinute>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginLatencyMinute {
    pub minute: String,
    #[serde(flatten)]
    pub figures: PluginMinute,
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/stats", tag = "stats",
    params(("tenant" = String, Path)),
    responses((status = 200, description = "The last hour per minute", body = StatsResponse)))]
pub(super) async fn show(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<StatsResponse>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let now = now_ms();
    let since = (now.div_euclid(60_000) - (WINDOW_MINUTES - 1)) * 60_000;
    let attempts = state.store.attempts_per_minute(&tenant_id, since).await?;
    let plugins = state
        .runtime
        .recent_calls()
        .window(&tenant_id, now)
        .into_iter()
        .map(|(plugin, minutes)| PluginSeries {
            plugin,
            minutes: minutes
                .into_iter()
                .map(|m| PluginLatencyMinute { minute: ms_to_rfc3339(m.minute_ms), figures: m })
                .collect(),
        })
        .collect();
    Ok(Json(StatsResponse {
        since: ms_to_rfc3339(since),
        until: ms_to_rfc3339(now),
        bucket_seconds: 60,
        deliveries: by_destination(attempts),
        plugins,
    }))
}

/// Groups rows (sorted by URL, then minute) into one series per destination.
fn by_destination(rows: Vec<AttemptMinute>) -> Vec<DestinationSeries> {
    let mut out: Vec<DestinationSeries> = Vec::new();
    for r in rows {
        let minute = DeliveryMinute {
            minute: ms_to_rfc3339(r.minute_ms),
            delivered: r.delivered,
            failed: r.failed,
            error: r.error,
        };
        match out.last_mut() {
            Some(series) if series.url == r.url => series.minutes.push(minute),
            _ => out.push(DestinationSeries { url: r.url, minutes: vec![minute] }),
        }
    }
    out
}
