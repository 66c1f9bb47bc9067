//! Tenant API keys (operators only; see `auth`). A key is shown once, when created.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiPath, AppState, ErrorBody};
use crate::event::KeyId;
use crate::store::ApiKey;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/keys", get(list).post(create))
        .route("/v1/tenants/{tenant}/keys/{id}", delete(revoke))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// 1 to 100 characters; `default` when omitted.
    #[serde(default)]
    pub name: Option<String>,
}

/// A new key: the only time the key itself is shown.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub meta: ApiKey,
    /// `syk_...`: send it as a bearer token. Not stored, not shown again.
    pub key: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

/// Creates a tenant API key (admin token only). The body is optional.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/keys", tag = "keys", params(("tenant" = String, Path)),
    request_body(content = Option<NewKey>, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the key is in the answer, once", body = CreatedKey),
        (status = 422, description = "Not a key request, or a bad name", body = ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(CreatedKey { meta: row, key })))
}

/// The tenant's keys, revoked ones included, never the keys themselves.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/keys", tag = "keys", params(("tenant" = String, Path)),
    responses((status = 200, description = "The tenant's keys", body = KeyList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<KeyList>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    Ok(Json(KeyList { keys: state.store.list_api_keys(&tenant_id).await? }))
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/keys/{id}", tag = "keys",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Revoked")))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
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
