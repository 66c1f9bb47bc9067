//! Tenant API keys (operators only; see `auth`). A key is shown once, when created.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::event::KeyId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/keys", get(list).post(create))
        .route("/v1/tenants/{tenant}/keys/{id}", delete(revoke))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    name: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    // The body is optional: `{"name": "..."}` or nothing.
    let spec: NewKey = if body.is_empty() {
        NewKey::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::unprocessable(format!("key request: {e}")))?
    };
    let name = spec.name.unwrap_or_else(|| "default".into());
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::unprocessable("key name must be 1-100 characters"));
    }
    let (row, key) = state.store.create_api_key(&tenant_id, &name).await?;
    tracing::info!(tenant, key = %row.id, "API key created");
    let mut body = json!(row);
    body["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    Ok(Json(json!({ "keys": state.store.list_api_keys(&tenant_id).await? })))
}

async fn revoke(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let not_found = || ApiError::NotFound(format!("tenant {tenant:?} has no key {id:?}"));
    let key_id = KeyId::parse(&id).ok_or_else(not_found)?;
    if !state.store.revoke_api_key(&tenant_id, &key_id).await? {
        return Err(not_found());
    }
    tracing::info!(tenant, key = %key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
