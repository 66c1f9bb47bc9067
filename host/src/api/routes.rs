//! A tenant's route document: applied whole (JSON or TOML), versioned, live on success;
//! versions can be listed, compared and rolled back to.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, ErrorBody};
use crate::routes::{self, ApplyError, RouteDocument, Rules};
use crate::runtime::RuntimeError;
use crate::store::{RouteOrigin, RouteSetRow, RouteVersionSummary, Tenant};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/routes", get(show_live).put(apply))
        .route("/v1/tenants/{tenant}/routes/versions", get(versions))
        .route("/v1/tenants/{tenant}/routes/versions/{version}", get(show_version))
        .route("/v1/tenants/{tenant}/routes/diff", get(diff))
        .route("/v1/tenants/{tenant}/routes/rollback", post(rollback))
}

/// What an apply (or a rollback) made live.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RoutesApplied {
    /// The live version: new, or the current one when `unchanged`.
    pub version: i64,
    /// The document was identical to the live one, so no version was created.
    pub unchanged: bool,
    /// The version a rollback copied.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rolled_back_to: Option<i64>,
    /// As resolved (plugin versions pinned), destination secrets as fingerprints.
    pub document: RouteDocument,
}

/// A stored version, destination secrets as fingerprints.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RouteVersion {
    pub version: i64,
    pub origin: RouteOrigin,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub document: RouteDocument,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RouteVersionList {
    /// The live version; null before the first apply.
    pub live: Option<i64>,
    pub versions: Vec<RouteVersionSummary>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RouteDiff {
    pub from: i64,
    pub to: i64,
    pub identical: bool,
    /// A unified diff of the two documents (pretty JSON).
    pub diff: String,
}

/// A route document in the format its Content-Type names: JSON (the default) or TOML.
pub fn parse_document(content_type: Option<&str>, body: &[u8]) -> Result<RouteDocument, ApiError> {
    let essence =
        content_type.unwrap_or("application/json").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::unprocessable(format!("route document: {e}")),
            _ => ApiError::BadRequest(format!("route document is not valid JSON: {e}")),
        }),
        "application/toml" | "text/toml" | "text/x-toml" => {
            let text = std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("TOML must be UTF-8".into()))?;
            toml::from_str(text).map_err(|e| ApiError::unprocessable(format!("route document (TOML): {e}")))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "route documents are application/json or application/toml, not {other:?}"
        ))),
    }
}

/// Applies `doc` for `tenant`, answering as the API does. Shared by apply and rollback.
pub async fn apply_document(
    state: &AppState,
    tenant: &Tenant,
    doc: &RouteDocument,
    origin: RouteOrigin,
) -> Result<routes::Applied, ApiError> {
    let policy = state.config.policy(&tenant.name);
    let rules = Rules::new(&state.config, &policy);
    let applied = routes::apply(doc, &tenant.id, rules, origin, &state.store, &state.runtime, &state.routes)
        .await
        .map_err(|e| match e {
            ApplyError::Invalid(details) => {
                ApiError::Unprocessable { message: "invalid route document".into(), details }
            }
            ApplyError::Quota(m) => ApiError::quota(m),
            ApplyError::Store(e) => e.into(),
            ApplyError::Runtime(RuntimeError::Internal(m)) => ApiError::Internal(m),
            ApplyError::Runtime(e) => ApiError::Internal(format!("a stored plugin failed to load: {e}")),
        })?;
    if !applied.unchanged {
        tracing::info!(tenant = tenant.name, version = applied.version, ?origin, "routes applied");
    }
    Ok(applied)
}

/// Applies a whole route document (JSON, or TOML with its content type); live on success.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/routes", tag = "routes", params(("tenant" = String, Path)),
    request_body(description = "The route document", content(
        (RouteDocument = "application/json"),
        (String = "application/toml"),
    )),
    responses(
        (status = 200, description = "Live", body = RoutesApplied),
        (status = 400, description = "Not JSON (or TOML)", body = ErrorBody),
        (status = 413, description = "Over the body limit", body = ErrorBody),
        (status = 415, description = "Neither JSON nor TOML", body = ErrorBody),
        (status = 422, description = "Invalid; every problem is in details", body = ErrorBody),
        (status = 429, description = "Over a tenant quota (routes, destinations...)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
pub(super) async fn apply(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RoutesApplied>, ApiError> {
    let body = body?;
    let tenant = state.tenant(&tenant).await?;
    let doc = parse_document(headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()), &body)?;
    let applied = apply_document(&state, &tenant, &doc, RouteOrigin::Api).await?;
    Ok(Json(RoutesApplied {
        version: applied.version,
        unchanged: applied.unchanged,
        rolled_back_to: None,
        document: routes::redacted(&applied.document),
    }))
}

/// A stored version as the API shows it: destination secrets redacted.
fn version_json(row: &RouteSetRow) -> Result<RouteVersion, ApiError> {
    Ok(RouteVersion {
        version: row.version,
        origin: row.origin,
        created_at: crate::store::ms_to_rfc3339(row.created_at),
        document: routes::redacted(&row.document),
    })
}

async fn find(state: &AppState, tenant: &Tenant, version: Option<i64>) -> Result<RouteSetRow, ApiError> {
    state.store.route_set(&tenant.id, version).await?.ok_or_else(|| {
        ApiError::NotFound(match version {
            Some(v) => format!("tenant {:?} has no route version {v}", tenant.name),
            None => format!("tenant {:?} has no routes yet", tenant.name),
        })
    })
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/routes", tag = "routes", params(("tenant" = String, Path)),
    responses((status = 200, description = "The live version", body = RouteVersion)))]
pub(super) async fn show_live(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<RouteVersion>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    Ok(Json(version_json(&find(&state, &tenant, None).await?)?))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/routes/versions/{version}", tag = "routes",
    params(("tenant" = String, Path), ("version" = String, Path, pattern = r"^([1-9][0-9]{0,17}|live|latest)$", description = "A number from 1, or `live`")),
    responses(
        (status = 200, description = "That version", body = RouteVersion),
        (status = 400, description = "Not a version", body = ErrorBody),
    ))]
pub(super) async fn show_version(
    State(state): State<AppState>,
    ApiPath((tenant, version)): ApiPath<(String, String)>,
) -> Result<Json<RouteVersion>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    let version = parse_route_version(&version)?;
    Ok(Json(version_json(&find(&state, &tenant, version).await?)?))
}

/// `3`, or `live`/`latest` for the live version.
fn parse_route_version(v: &str) -> Result<Option<i64>, ApiError> {
    match v {
        "live" | "latest" => Ok(None),
        n => n.parse::<i64>().ok().filter(|n| *n >= 1).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!("{v:?} is not a route version: use a number from 1, or \"live\""))
        }),
    }
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/routes/versions", tag = "routes", params(("tenant" = String, Path)),
    responses((status = 200, description = "Every stored version", body = RouteVersionList)))]
pub(super) async fn versions(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<RouteVersionList>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    let versions = state.store.route_versions(&tenant.id).await?;
    let live = state.routes.get(&tenant.id).map(|r| r.version);
    Ok(Json(RouteVersionList { live, versions }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// A version number from 1, or `live`.
    #[param(pattern = r"^([1-9][0-9]{0,17}|live|latest)$")]
    pub from: String,
    /// A version number from 1, or `live` (the default).
    #[param(pattern = r"^([1-9][0-9]{0,17}|live|latest)$")]
    pub to: Option<String>,
}

/// A unified diff between two versions' documents (pretty JSON, so one change is one line).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/routes/diff", tag = "routes",
    params(("tenant" = String, Path), DiffQuery),
    responses(
        (status = 200, description = "The diff", body = RouteDiff),
        (status = 400, description = "A bad query", body = ErrorBody),
    ))]
pub(super) async fn diff(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<RouteDiff>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    let from = find(&state, &tenant, parse_route_version(&q.from)?).await?;
    let to = find(&state, &tenant, parse_route_version(q.to.as_deref().unwrap_or("live"))?).await?;
    // Through the typed document, so fields appear in the order tenants write them; secrets
    // as fingerprints, so a rotation still shows as a changed line.
    let pretty = |row: &RouteSetRow| -> Result<String, ApiError> {
        let doc = routes::redacted(&row.document);
        Ok(serde_json::to_string_pretty(&doc).expect("documents serialise") + "\n")
    };
    let (a, b) = (pretty(&from)?, pretty(&to)?);
    let diff = similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("version {}", from.version), &format!("version {}", to.version))
        .to_string();
    Ok(Json(RouteDiff { from: from.version, to: to.version, identical: a == b, diff }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub version: i64,
}

/// Makes an earlier version's document live again, as a new version (history only grows).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/routes/rollback", tag = "routes",
    params(("tenant" = String, Path)), request_body = RollbackRequest,
    responses(
        (status = 200, description = "Live again, as a new version", body = RoutesApplied),
        (status = 422, description = "Not a rollback request, or the old document no longer applies", body = ErrorBody),
        (status = 429, description = "Over a tenant quota", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
pub(super) async fn rollback(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> Result<Json<RoutesApplied>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    let target = find(&state, &tenant, Some(request.version)).await?;
    let applied = apply_document(&state, &tenant, &target.document, RouteOrigin::Rollback).await?;
    Ok(Json(RoutesApplied {
        version: applied.version,
        unchanged: applied.unchanged,
        rolled_back_to: Some(target.version),
        document: routes::redacted(&applied.document),
    }))
}
