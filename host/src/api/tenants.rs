//! Tenants and their sources.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ApiPath, AppState, ErrorBody, Principal};
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// ASCII letters, digits, `-`, `_` and `.`, 1 to 64 characters, starting with a letter or digit.
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<Tenant>,
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses(
        (status = 201, description = "Created", body = Tenant),
        (status = 409, description = "A tenant of that name exists", body = ErrorBody),
        (status = 422, description = "Not a valid name", body = ErrorBody),
    ))]
pub(super) async fn create(
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
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants",
    responses((status = 200, description = "The tenants the caller may see", body = TenantList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<TenantList>, ApiError> {
    let tenants = match who {
        Principal::Admin => state.store.list_tenants().await?,
        Principal::Tenant(own) => vec![own],
    };
    Ok(Json(TenantList { tenants }))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path)),
    responses((status = 200, description = "The tenant", body = Tenant)))]
pub(super) async fn show(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Tenant>, ApiError> {
    Ok(Json(state.tenant(&tenant).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// coaching, call-tracking, standard-webhooks (or svix), crm or cloudevents.
    pub format: String,
    /// The Standard Webhooks secret (`whsec_...`), for that format.
    pub secret: Option<String>,
    /// How senders authenticate, for every other format (required; `{"type": "none"}` opts out).
    pub auth: Option<SourceAuth>,
}

/// A source as the API shows it: never a secret or token, but how senders authenticate and
/// where they post.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SourceView {
    pub name: String,
    pub format: String,
    /// Whether senders must prove who they are (anything but `none`).
    pub authenticated: bool,
    /// The declaration without its secrets: `{"type": ...}` and, for bearer and HMAC, the
    /// header (and the HMAC's algorithm, encoding, prefix...).
    #[schema(value_type = Object)]
    pub auth: Value,
    /// Whether requests carry a MAC (Standard Webhooks or HMAC).
    pub signed: bool,
    /// Where senders post.
    pub ingest_path: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SourceList {
    pub sources: Vec<SourceView>,
}

fn source_json(tenant: &str, s: &SourceRow) -> SourceView {
    let auth = match &s.auth {
        Some(auth) => auth.public_view(),
        None if s.secret.is_some() => json!({"type": "standard-webhooks"}),
        None => json!({"type": "undeclared"}),
    };
    let signed = s.secret.is_some() || matches!(s.auth, Some(SourceAuth::Hmac(_)));
    let authenticated = s.secret.is_some() || s.auth.as_ref().is_some_and(SourceAuth::is_authenticated);
    SourceView {
        name: s.name.clone(),
        format: s.format.clone(),
        authenticated,
        auth,
        signed,
        ingest_path: format!("/v1/ingest/{tenant}/{}", s.name),
        created_at: crate::store::ms_to_rfc3339(s.created_at),
    }
}

/// Declares (or replaces) a source: its envelope format and how its senders authenticate.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/sources/{source}", tag = "sources",
    params(("tenant" = String, Path), ("source" = String, Path)), request_body = SourceSpec,
    responses(
        (status = 200, description = "The source as stored", body = SourceView),
        (status = 422, description = "Unknown format, bad name, or auth that does not fit the format", body = ErrorBody),
    ))]
pub(super) async fn put_source(
    State(state): State<AppState>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiJson(spec): ApiJson<SourceSpec>,
) -> Result<Json<SourceView>, ApiError> {
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

#[utoipa::path(get, path = "/v1/tenants/{tenant}/sources/{source}", tag = "sources",
    params(("tenant" = String, Path), ("source" = String, Path)),
    responses((status = 200, description = "The source", body = SourceView)))]
pub(super) async fn show_source(
    State(state): State<AppState>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<SourceView>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let row = state
        .store
        .source(&tenant_id, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no source named {name:?}")))?;
    Ok(Json(source_json(&tenant, &row)))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/sources", tag = "sources", params(("tenant" = String, Path)),
    responses((status = 200, description = "The tenant's sources", body = SourceList)))]
pub(super) async fn list_sources(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<SourceList>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let rows = state.store.list_sources(&tenant_id).await?;
    Ok(Json(SourceList { sources: rows.iter().map(|s| source_json(&tenant, s)).collect() }))
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/sources/{source}", tag = "sources",
    params(("tenant" = String, Path), ("source" = String, Path)),
    responses((status = 204, description = "Deleted")))]
pub(super) async fn delete_source(
    State(state): State<AppState>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    if state.store.delete_source(&tenant_id, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no source named {name:?}")))
    }
}
