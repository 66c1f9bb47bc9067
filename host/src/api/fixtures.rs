//! `GET /v1/fixtures`: the seed events a dry run can use by name.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/fixtures", get(list))
}

async fn list() -> Json<Value> {
    Json(json!({ "fixtures": crate::fixtures::names().collect::<Vec<_>>() }))
}
