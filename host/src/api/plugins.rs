//! Plugin upload and listing. An upload is compiled and checked against the plugin world
//! before it is stored, so a version that exists can always run.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::config::Config;
use crate::routes::{NAME_RULE, valid_name};
use crate::runtime::RuntimeError;
use crate::store::PluginVersionMeta;

pub fn router(config: &Config) -> Router<AppState> {
    Router::new().route("/v1/tenants/{tenant}/plugins", get(list)).route(
        "/v1/tenants/{tenant}/plugins/{name}",
        post(upload).layer(DefaultBodyLimit::max(config.plugins.max_upload_bytes)),
    )
}

async fn upload(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PluginVersionMeta>), ApiError> {
    let body = body?;
    let tenant_id = state.tenant_id(&tenant).await?;
    if !valid_name(&name) {
        return Err(ApiError::unprocessable(format!("plugin name: {NAME_RULE}")));
    }
    if body.is_empty() {
        return Err(ApiError::BadRequest("empty body: send the component's .wasm bytes".into()));
    }
    let wasm = Arc::new(body.to_vec());
    let sha256 = state.runtime.validate(wasm.clone()).await.map_err(|e| match e {
        RuntimeError::Internal(m) => ApiError::Internal(m),
        rejected => ApiError::unprocessable(rejected.to_string()),
    })?;
    let meta = state.store.insert_plugin_version(&tenant_id, &name, &sha256, &wasm).await?;
    tracing::info!(tenant, plugin = %name, version = meta.version, sha256, "plugin uploaded");
    Ok((StatusCode::CREATED, Json(meta)))
}

async fn list(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    Ok(Json(json!({ "plugins": state.store.list_plugins(&tenant_id).await? })))
}
