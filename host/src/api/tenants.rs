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
use crate::sources::auth::SourceAuth;
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
    let tenant = state.store.create_tenant(&body.name).await?;
    // Tenants take their `/metrics` labels in the order they are created.
    state.metrics.tenant(&tenant.id, &tenant.name);
    Ok((StatusCode::CREATED, Json(tenant)))
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
    /// The Standard Webhooks secret, for that format.
    secret: Option<String>,
    /// How senders authenticate, for every other format (required; `{"type": "none"}` opts out).
    auth: Option<SourceAuth>,
}

/// A source as the API shows it: never a secret or token, but how senders authenticate and
/// where they post.
fn source_json(tenant: &str, s: &SourceRow) -> Value {
    let auth = match &s.auth {
        Some(auth) => auth.public_view(),
        None if s.secret.is_some() => json!({"type": "standard-webhooks"}),
        None => json!({"type": "undeclared"}),
    };
    let signed = s.secret.is_some() || matches!(s.auth, Some(SourceAuth::Hmac(_)));
    let authenticated = s.secret.is_some() || s.auth.as_ref().is_some_and(SourceAuth::is_authenticated);
    json!({
        "name": s.name,
        "format": s.format,
        "authenticated": authenticated,
        "auth": auth,
        "signed": signed,
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
    check_source_auth(&name, format, &spec)?;
    let row =
        state.store.put_source(&tenant_id, &name, format.as_str(), spec.secret.as_deref(), spec.auth.as_ref()).await?;
    Ok(Json(source_json(&tenant, &row)))
}

/// Standard Webhooks sources authenticate with their own signature (`secret`); every other
/// source must say how its senders authenticate, or opt out in so many words.
fn check_source_auth(name: &str, format: SourceFormat, spec: &SourceSpec) -> Result<(), ApiError> {
    let f = format.as_str();
    match (format.is_signed(), &spec.secret, &spec.auth) {
        (true, None, _) => {
            Err(ApiError::unprocessable(format!("format {f} is signed: give the sender's secret (whsec_...)")))
        }
        (true, Some(s), _) if Secret::parse(s).is_err() => {
            Err(ApiError::unprocessable("secret must be whsec_<base64 of at least 16 bytes>"))
        }
        (true, Some(_), Some(_)) => Err(ApiError::unprocessable(format!(
            "format {f} is authenticated by its own signature (the secret); remove auth"
        ))),
        (true, Some(_), None) => Ok(()),
        (false, Some(_), _) => Err(ApiError::unprocessable(format!(
            "format {f} carries no signature of its own; remove the secret and declare auth instead (bearer, basic or hmac)"
        ))),
        (false, None, None) => Err(ApiError::unprocessable(format!(
            "source {name:?} (format {f}) must declare how its senders authenticate, or anyone could post to it: \
             add \"auth\": {{\"type\": \"bearer\", \"token\": \"...\"}}, or \"basic\" (username, password), or \"hmac\" \
             (secret, header, ...; see the README); to accept anyone, opt out explicitly with \"auth\": {{\"type\": \"none\"}}"
        ))),
        (false, None, Some(auth)) => auth.validate().map_err(ApiError::unprocessable),
    }
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
