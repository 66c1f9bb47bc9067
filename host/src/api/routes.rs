//! A tenant's route document: applied whole (JSON or TOML), versioned, live on success;
//! versions can be listed, compared and rolled back to.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, AppState};
use crate::routes::{self, ApplyError, RouteDocument, Rules};
use crate::runtime::RuntimeError;
use crate::store::{RouteOrigin, RouteSetRow, Tenant};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/routes", get(show_live).put(apply))
        .route("/v1/tenants/{tenant}/routes/versions", get(versions))
        .route("/v1/tenants/{tenant}/routes/versions/{version}", get(show_version))
        .route("/v1/tenants/{tenant}/routes/diff", get(diff))
        .route("/v1/tenants/{tenant}/routes/rollback", post(rollback))
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

async fn apply(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body?;
    let tenant = state.tenant(&tenant).await?;
    let doc = parse_document(headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()), &body)?;
    let applied = apply_document(&state, &tenant, &doc, RouteOrigin::Api).await?;
    Ok(Json(json!({
        "version": applied.version,
        "unchanged": applied.unchanged,
        "document": routes::redacted(&applied.document),
    })))
}

/// A stored version as the API shows it: destination secrets redacted.
fn version_json(row: &RouteSetRow) -> Result<Value, ApiError> {
    Ok(json!({
        "version": row.version,
        "origin": row.origin,
        "created_at": crate::store::ms_to_rfc3339(row.created_at),
        "document": routes::redacted(&stored_document(row)?),
    }))
}

fn stored_document(row: &RouteSetRow) -> Result<RouteDocument, ApiError> {
    serde_json::from_str(&row.document).map_err(|e| ApiError::Internal(format!("stored routes: {e}")))
}

async fn find(state: &AppState, tenant: &Tenant, version: Option<i64>) -> Result<RouteSetRow, ApiError> {
    state.store.route_set(&tenant.id, version).await?.ok_or_else(|| {
        ApiError::NotFound(match version {
            Some(v) => format!("tenant {:?} has no route version {v}", tenant.name),
            None => format!("tenant {:?} has no routes yet", tenant.name),
        })
    })
}

async fn show_live(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    Ok(Json(version_json(&find(&state, &tenant, None).await?)?))
}

async fn show_version(
    State(state): State<AppState>,
    Path((tenant, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
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

async fn versions(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    let versions = state.store.route_versions(&tenant.id).await?;
    let live = state.routes.get(&tenant.id).map(|r| r.version);
    Ok(Json(json!({ "live": live, "versions": versions })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: String,
    to: Option<String>,
}

/// A unified diff between two versions' documents (pretty JSON, so one change is one line).
async fn diff(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    let from = find(&state, &tenant, parse_route_version(&q.from)?).await?;
    let to = find(&state, &tenant, parse_route_version(q.to.as_deref().unwrap_or("live"))?).await?;
    // Through the typed document, so fields appear in the order tenants write them; secrets
    // as fingerprints, so a rotation still shows as a changed line.
    let pretty = |row: &RouteSetRow| -> Result<String, ApiError> {
        let doc = routes::redacted(&stored_document(row)?);
        Ok(serde_json::to_string_pretty(&doc).expect("documents serialise") + "\n")
    };
    let (a, b) = (pretty(&from)?, pretty(&to)?);
    let diff = similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("version {}", from.version), &format!("version {}", to.version))
        .to_string();
    Ok(Json(json!({ "from": from.version, "to": to.version, "identical": a == b, "diff": diff })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    version: i64,
}

/// Makes an earlier version's document live again, as a new version (history only grows).
async fn rollback(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> Result<Json<Value>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    let target = find(&state, &tenant, Some(request.version)).await?;
    let doc = stored_document(&target)?;
    let applied = apply_document(&state, &tenant, &doc, RouteOrigin::Rollback).await?;
    Ok(Json(json!({
        "version": applied.version,
        "unchanged": applied.unchanged,
        "rolled_back_to": target.version,
        "document": routes::redacted(&applied.document),
    })))
}
