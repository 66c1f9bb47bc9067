//! Tenants and their sources.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, AppState, Principal};
use crate::routes::{NAME_RULE, valid_name};
use crate::signing::Secret;
use crate::sources::SourceFormat;
use crate::store::{SourceRow, Tenant};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", get(list).post(create))
        .route("/v1/tenants/{tenant}", get(show))
        .route("/v1/tenants/{tenant}/sources", get(list_sources))
        .route("/v1/tenants/{tenant}/sources/{source}", put(put_source).get(show_source).delete(delete_source))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    if !valid_name(&body.name) {
        return Err(ApiError::unprocessable(format!("tenant name: {NAME_RULE}")));
    }
    Ok((StatusCode::CREATED, Json(state.store.create_tenant(&body.name).await?)))
}

/// Operators see every tenant; a tenant key sees its own.
async fn list(State(state): State<AppState>, Extension(who): Extension<Principal>) -> Result<Json<Value>, ApiError> {
    let tenants = match who {
        Principal::Admin => state.store.list_tenants().await?,
        Principal::Tenant(own) => vec![own],
    };
    Ok(Json(json!({ "tenants": tenants })))
}

async fn show(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Tenant>, ApiError> {
    Ok(Json(state.tenant(&tenant).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSpec {
    format: String,
    secret: Option<String>,
}

/// A source as the API shows it: never the secret, but whether one is set and where to post.
fn source_json(tenant: &str, s: &SourceRow) -> Value {
    json!({
        "name": s.name,
        "format": s.format,
        "signed": s.secret.is_some(),
        "ingest_path": format!("/v1/ingest/{tenant}/{}", s.name),
        "created_at": crate::store::ms_to_rfc3339(s.created_at),
    })
}

async fn put_source(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    ApiJson(spec): ApiJson<SourceSpec>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    if !valid_name(&name) {
        return Err(ApiError::unprocessable(format!("source name: {NAME_RULE}")));
    }
    let format = SourceFormat::from_name(&spec.format).ok_or_else(|| {
        ApiError::unprocessable(format!(
            "unknown format {:?}; expected coaching, call-tracking, standard-webhooks (or svix), crm or cloudevents",
            spec.format
        ))
    })?;
    match (format.is_signed(), &spec.secret) {
        (true, None) => {
            return Err(ApiError::unprocessable(format!(
                "format {} is signed: give the sender's secret (whsec_...)",
                format.as_str()
            )));
        }
        (true, Some(s)) if Secret::parse(s).is_err() => {
            return Err(ApiError::unprocessable("secret must be whsec_<base64 of at least 16 bytes>"));
        }
        (false, Some(_)) => {
            return Err(ApiError::unprocessable(format!(
                "format {} carries no signature; remove the secret",
                format.as_str()
            )));
        }
        _ => {}
    }
    let row = state.store.put_source(&tenant_id, &name, format.as_str(), spec.secret.as_deref()).await?;
    Ok(Json(source_json(&tenant, &row)))
}

async fn show_source(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let row = state
        .store
        .source(&tenant_id, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no source named {name:?}")))?;
    Ok(Json(source_json(&tenant, &row)))
}

async fn list_sources(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let rows = state.store.list_sources(&tenant_id).await?;
    Ok(Json(json!({ "sources": rows.iter().map(|s| source_json(&tenant, s)).collect::<Vec<_>>() })))
}

async fn delete_source(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    if state.store.delete_source(&tenant_id, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no source named {name:?}")))
    }
}
