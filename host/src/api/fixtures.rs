//! `GET /v1/fixtures`: the seed events a dry run can use by name.

use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/fixtures", get(list))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct FixtureList {
    /// Names to give a dry run as `fixture`.
    pub fixtures: Vec<String>,
}

#[utoipa::path(get, path = "/v1/fixtures", tag = "plugins",
    responses((status = 200, description = "The seed events' names", body = FixtureList)))]
pub(super) async fn list() -> Json<FixtureList> {
    Json(FixtureList { fixtures: crate::fixtures::names().map(str::to_owned).collect() })
}
