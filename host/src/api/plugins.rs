//! Plugins: upload (each upload is a new immutable version), listing, deletion of versions
//! no live route uses, and dry runs.
//!
//! An upload is checked from a parse of its sections first (component, `handle` export,
//! granted imports, per-component bounds), then compiled in a bounded number of compile
//! slots under a deadline, and its export type-checked, before anything is stored: a version
//! that exists can always run. The compiled artifact is cached on disk by content hash and
//! engine, so a restart does not compile again.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ApiPath, AppState, ErrorBody};
use crate::config::Config;
use crate::event::{Event, EventId};
use crate::routes::{self, NAME_RULE, valid_name};
use crate::runtime::LogLine;
use crate::runtime::{self, RuntimeError, WORLD};
use crate::store::{Change, NewPluginVersion, PluginVersion, PluginVersionMeta, Tenant};

pub fn router(config: &Config) -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/plugins", get(list))
        .route(
            "/v1/tenants/{tenant}/plugins/{name}",
            post(upload).get(versions).layer(DefaultBodyLimit::max(config.plugins.max_upload_bytes)),
        )
        .route("/v1/tenants/{tenant}/plugins/{name}/versions/{version}", get(show).delete(delete))
        .route("/v1/tenants/{tenant}/plugins/{name}/versions/{version}/test", post(dry_run))
}

/// A stored version, with how long its compile took.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Uploaded {
    #[serde(flatten)]
    pub meta: PluginVersionMeta,
    pub compile_ms: f64,
}

/// An upload's body, for the document: raw bytes, not JSON.
#[derive(ToSchema)]
#[schema(content_media_type = "application/wasm")]
#[allow(dead_code)] // documentation only: the handler takes the bytes as they come
struct WasmComponent(String);

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PluginList {
    /// Every version of every plugin, by name and version.
    pub plugins: Vec<PluginVersionMeta>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PluginVersions {
    pub name: String,
    /// Oldest first.
    pub versions: Vec<PluginVersionMeta>,
}

/// Uploads a component (`.wasm` bytes) as the plugin's next version.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/plugins/{name}", tag = "plugins",
    params(("tenant" = String, Path), ("name" = String, Path)),
    request_body(description = "The WebAssembly component's bytes", content = inline(WasmComponent),
        content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored as a new version", body = Uploaded),
        (status = 400, description = "An empty body", body = ErrorBody),
        (status = 408, description = "The body arrived too slowly", body = ErrorBody),
        (status = 413, description = "Over plugins.max_upload_bytes or the tenant's max_plugin_bytes", body = ErrorBody),
        (status = 422, description = "Not a valid component, a bad name, or imports the tenant is not granted", body = ErrorBody),
        (status = 429, description = "Over the tenant's max_plugins or max_plugin_versions", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "Every compile slot is busy; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
pub(super) async fn upload(
    State(state): State<AppState>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let body = body?;
    let tenant = state.tenant(&tenant).await?;
    if !valid_name(&name) {
        return Err(ApiError::unprocessable(format!("plugin name: {NAME_RULE}")));
    }
    if body.is_empty() {
        return Err(ApiError::BadRequest("empty body: send the component's .wasm bytes".into()));
    }
    let policy = state.config.policy(&tenant.name);
    if body.len() > policy.max_plugin_bytes {
        // A size limit, not a rate: trying again later cannot help, so 413, not 429.
        return Err(ApiError::PayloadTooLarge(format!(
            "plugin is {} bytes; tenant {:?} may upload at most {} bytes (max_plugin_bytes)",
            body.len(),
            tenant.name,
            policy.max_plugin_bytes
        )));
    }
    check_plugin_quota(&state, &tenant, &name).await?;
    let wasm = Arc::new(body.to_vec());
    let validated = state.runtime.validate(&tenant.name, wasm.clone(), &policy.grants).await.map_err(|e| match e {
        RuntimeError::Internal(m) => ApiError::Internal(m),
        RuntimeError::Busy { message, retry_after } => ApiError::Busy { message, retry_after },
        rejected => ApiError::unprocessable(rejected.to_string()),
    })?;
    let new = NewPluginVersion { sha256: &validated.sha256, world: WORLD, imports: &validated.imports, wasm: &wasm };
    let meta = {
        // Counted again under the lock (this node's, and the tenant's in the database for
        // uploads through other nodes): two concurrent uploads cannot both take the last slot.
        let _guard = state.routes.lock_changes().await;
        let _shared = state.store.lock_changes(&tenant.id).await?;
        check_plugin_quota(&state, &tenant, &name).await?;
        state.store.insert_plugin_version(&tenant.id, &name, &new).await?
    };
    let compile_ms = validated.compile.as_secs_f64() * 1000.0;
    tracing::info!(tenant = tenant.name, plugin = %name, version = meta.version, sha256 = meta.sha256, compile_ms, "plugin uploaded");
    Ok((StatusCode::CREATED, Json(Uploaded { meta, compile_ms: (compile_ms * 10.0).round() / 10.0 })))
}

/// `max_plugins` counts names (a new version of an existing plugin is not a new plugin);
/// `max_plugin_versions` counts the versions kept of one plugin.
async fn check_plugin_quota(state: &AppState, tenant: &Tenant, name: &str) -> Result<(), ApiError> {
    let policy = state.config.policy(&tenant.name);
    let (plugins, versions) = state.store.plugin_counts(&tenant.id, name).await?;
    if versions == 0 && plugins >= i64::from(policy.max_plugins) {
        return Err(ApiError::quota(format!(
            "tenant {:?} has {plugins} plugins, its limit; delete one to add {name:?}",
            tenant.name
        )));
    }
    if versions >= i64::from(policy.max_plugin_versions) {
        return Err(ApiError::quota(format!(
            "plugin {name:?} has {versions} versions, the limit; delete old versions to upload more"
        )));
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/plugins", tag = "plugins", params(("tenant" = String, Path)),
    responses((status = 200, description = "The tenant's plugin versions", body = PluginList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<PluginList>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    Ok(Json(PluginList { plugins: state.store.list_plugins(&tenant_id).await? }))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/plugins/{name}", tag = "plugins",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The plugin's versions", body = PluginVersions)))]
pub(super) async fn versions(
    State(state): State<AppState>,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<PluginVersions>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let versions = state.store.plugin_versions(&tenant_id, &name).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("no plugin named {name:?}")));
    }
    Ok(Json(PluginVersions { name, versions }))
}

/// `3` or `latest`.
fn parse_version(v: &str) -> Result<Option<i64>, ApiError> {
    match v {
        "latest" => Ok(None),
        n => match n.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ApiError::NotFound(format!("no version {v:?}: use a number from 1, or \"latest\""))),
        },
    }
}

async fn find_version(state: &AppState, tenant: &Tenant, name: &str, version: &str) -> Result<PluginVersion, ApiError> {
    let wanted = parse_version(version)?;
    state.store.plugin_version(&tenant.id, name, wanted).await?.ok_or_else(|| {
        ApiError::NotFound(match wanted {
            Some(v) => format!("plugin {name:?} has no version {v}"),
            None => format!("no plugin named {name:?}"),
        })
    })
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/plugins/{name}/versions/{version}", tag = "plugins",
    params(("tenant" = String, Path), ("name" = String, Path),
        ("version" = String, Path, pattern = r"^([1-9][0-9]{0,17}|latest)$", description = "A number from 1, or `latest`")),
    responses((status = 200, description = "The version", body = PluginVersionMeta)))]
pub(super) async fn show(
    State(state): State<AppState>,
    ApiPath((tenant, name, version)): ApiPath<(String, String, String)>,
) -> Result<Json<PluginVersionMeta>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    Ok(Json(find_version(&state, &tenant, &name, &version).await?.meta))
}

/// Deletes a version unless the live routes use it (roll them forward first).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/plugins/{name}/versions/{version}", tag = "plugins",
    params(("tenant" = String, Path), ("name" = String, Path),
        ("version" = String, Path, pattern = r"^([1-9][0-9]{0,17}|latest)$", description = "A number from 1, or `latest`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "A live route uses it", body = ErrorBody),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    ApiPath((tenant, name, version)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    // Under the apply lock, so no route version can pin this one between check and delete;
    // and under the tenant's lock in the database, against applies through other nodes.
    let _guard = state.routes.lock_changes().await;
    let _shared = state.store.lock_changes(&tenant.id).await?;
    let meta = find_version(&state, &tenant, &name, &version).await?.meta;
    // The live routes as stored, not as this node last heard: another node may have just
    // applied a version that pins this plugin.
    routes::reload_tenant(&tenant.id, &state.store, &state.runtime, &state.routes).await?;
    if let Some(route) = state.routes.route_using(&tenant.id, &meta.id) {
        return Err(ApiError::Conflict(format!(
            "{name}@{} is used by live route {route:?}; apply routes without it first",
            meta.version
        )));
    }
    state.store.delete_plugin_version(&tenant.id, &name, meta.version).await?;
    state.runtime.forget(&meta.id);
    state.store.announce(Change::PluginDeleted(meta.id.clone())).await;
    // Still under the lock, so an upload of the same bytes cannot store its version between
    // this check and the removal (uploads insert under it too).
    if !state.store.plugin_sha_in_use(&meta.sha256).await? {
        state.runtime.remove_artifact(&meta.sha256);
    }
    tracing::info!(tenant = tenant.name, plugin = %name, version = meta.version, "plugin version deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A dry run: one event (given, or a seed fixture by name) through one plugin version.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    /// Exactly one of `event` and `fixture`.
    pub event: Option<TestEvent>,
    /// A name from `GET /v1/fixtures`.
    pub fixture: Option<String>,
    /// The step's config: strings, numbers or booleans.
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEvent {
    /// `test` when omitted.
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
    #[serde(default)]
    pub subject: Option<String>,
    /// Now when omitted.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// What a dry run did.
#[derive(Serialize, ToSchema)]
pub struct DryRunReport {
    /// `name@version`.
    pub plugin: String,
    pub input: EventView,
    pub verdict: Verdict,
    /// Why it dropped the event, or how it failed.
    pub reason: Option<String>,
    pub outputs: Vec<EventView>,
    pub logs: Vec<LogLine>,
    pub duration_us: u64,
    pub memory_bytes: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Drop,
    Pass,
    Emit,
    Error,
}

/// An event as a dry run shows it: its data as JSON rather than text.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: EventId,
    pub tenant: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// JSON; the plugin's text as a string if it is not JSON.
    pub data: Value,
    /// `[name, value]` pairs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
}

fn default_source() -> String {
    "test".into()
}

/// Runs the plugin exactly as the pipeline would, but delivers nothing and keeps no kv
/// writes; answers with the verdict, outputs, logs, time and memory.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/plugins/{name}/versions/{version}/test", tag = "plugins",
    params(("tenant" = String, Path), ("name" = String, Path),
        ("version" = String, Path, pattern = r"^([1-9][0-9]{0,17}|latest)$", description = "A number from 1, or `latest`")),
    request_body = DryRunRequest,
    responses(
        (status = 200, description = "What the plugin did", body = DryRunReport),
        (status = 422, description = "Not a dry-run request, or an unknown fixture", body = ErrorBody),
        (status = 429, description = "The tenant's in-flight cap or failure budget is spent", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
pub(super) async fn dry_run(
    State(state): State<AppState>,
    ApiPath((tenant, name, version)): ApiPath<(String, String, String)>,
    ApiJson(request): ApiJson<DryRunRequest>,
) -> Result<Json<DryRunReport>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    let event = match (request.event, request.fixture) {
        (Some(e), None) => Event {
            id: EventId::generate(),
            tenant: tenant.name.clone(),
            source: e.source,
            event_type: e.event_type,
            time: e.time.unwrap_or_else(Utc::now),
            subject: e.subject,
            data: e.data.to_string(),
            attributes: e.attributes.into_iter().collect(),
        },
        (None, Some(name)) => crate::fixtures::event(&name, &tenant.name).ok_or_else(|| {
            ApiError::unprocessable(format!("no fixture named {name:?}; GET /v1/fixtures lists them"))
        })?,
        _ => return Err(ApiError::unprocessable("give exactly one of \"event\" or \"fixture\"")),
    };
    let mut config = BTreeMap::new();
    for (k, v) in request.config {
        match v {
            Value::String(s) => config.insert(k, s),
            Value::Number(_) | Value::Bool(_) => config.insert(k, v.to_string()),
            _ => return Err(ApiError::unprocessable(format!("config.{k}: must be a string, number or boolean"))),
        };
    }
    let version = find_version(&state, &tenant, &name, &version).await?;
    let plugin = state.runtime.load(&version).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    // A dry run is a plugin run like an event's: it counts against the tenant's in-flight
    // cap and failure budget, or a tenant could run a hostile plugin without limit here.
    let mut run = state.gate.try_start(&tenant.id).map_err(|r| ApiError::TooManyRequests {
        message: format!("dry run refused: {}", r.message),
        retry_after: r.retry_after,
    })?;
    let trace = state.runtime.dry_run(&plugin, &tenant.id, Arc::new(config), &event).await;
    if trace.result.is_err() {
        run.charge(trace.elapsed);
    }
    drop(run);
    let (verdict, reason, outputs) = match trace.result {
        Ok(runtime::Verdict::Drop(reason)) => (Verdict::Drop, Some(reason), Vec::new()),
        Ok(runtime::Verdict::Continue(outs)) if outs.len() == 1 && outs[0].id == event.id => {
            (Verdict::Pass, None, outs)
        }
        Ok(runtime::Verdict::Continue(outs)) => (Verdict::Emit, None, outs),
        Err(failure) => (Verdict::Error, Some(failure.to_string()), Vec::new()),
    };
    Ok(Json(DryRunReport {
        plugin: plugin.label.to_string(),
        input: EventView::from(&event),
        verdict,
        reason,
        outputs: outputs.iter().map(EventView::from).collect(),
        logs: trace.logs,
        duration_us: trace.elapsed.as_micros() as u64,
        memory_bytes: trace.peak_memory_bytes,
    }))
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        EventView {
            id: e.id.clone(),
            tenant: e.tenant.clone(),
            source: e.source.clone(),
            event_type: e.event_type.clone(),
            time: e.time,
            subject: e.subject.clone(),
            data: serde_json::from_str(&e.data).unwrap_or_else(|_| Value::String(e.data.clone())),
            attributes: e.attributes.clone(),
        }
    }
}
