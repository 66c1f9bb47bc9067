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
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, AppState};
use crate::config::Config;
use crate::event::{Event, EventId};
use crate::routes::{NAME_RULE, valid_name};
use crate::runtime::{RuntimeError, Verdict, WORLD};
use crate::store::{NewPluginVersion, PluginVersion, Tenant};

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

async fn upload(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        // Counted again under the lock: two concurrent uploads cannot both take the last slot.
        let _guard = state.routes.lock_changes().await;
        check_plugin_quota(&state, &tenant, &name).await?;
        state.store.insert_plugin_version(&tenant.id, &name, &new).await?
    };
    let compile_ms = validated.compile.as_secs_f64() * 1000.0;
    tracing::info!(tenant = tenant.name, plugin = %name, version = meta.version, sha256 = meta.sha256, compile_ms, "plugin uploaded");
    let mut body = json!(meta);
    body["compile_ms"] = json!((compile_ms * 10.0).round() / 10.0);
    Ok((StatusCode::CREATED, Json(body)))
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

async fn list(State(state): State<AppState>, Path(tenant): Path<String>) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    Ok(Json(json!({ "plugins": state.store.list_plugins(&tenant_id).await? })))
}

async fn versions(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = state.tenant_id(&tenant).await?;
    let versions = state.store.plugin_versions(&tenant_id, &name).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("no plugin named {name:?}")));
    }
    Ok(Json(json!({ "name": name, "versions": versions })))
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

async fn show(
    State(state): State<AppState>,
    Path((tenant, name, version)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    Ok(Json(json!(find_version(&state, &tenant, &name, &version).await?.meta)))
}

/// Deletes a version unless the live routes use it (roll them forward first).
async fn delete(
    State(state): State<AppState>,
    Path((tenant, name, version)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = state.tenant(&tenant).await?;
    // Under the apply lock, so no route version can pin this one between check and delete.
    let _guard = state.routes.lock_changes().await;
    let meta = find_version(&state, &tenant, &name, &version).await?.meta;
    if let Some(route) = state.routes.route_using(&tenant.id, &meta.id) {
        return Err(ApiError::Conflict(format!(
            "{name}@{} is used by live route {route:?}; apply routes without it first",
            meta.version
        )));
    }
    state.store.delete_plugin_version(&tenant.id, &name, meta.version).await?;
    state.runtime.forget(&meta.id);
    // Still under the lock, so an upload of the same bytes cannot store its version between
    // this check and the removal (uploads insert under it too).
    if !state.store.plugin_sha_in_use(&meta.sha256).await? {
        state.runtime.remove_artifact(&meta.sha256);
    }
    tracing::info!(tenant = tenant.name, plugin = %name, version = meta.version, "plugin version deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A dry run: one event (given, or a seed fixture by name) through one plugin version.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunRequest {
    event: Option<TestEvent>,
    fixture: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEvent {
    #[serde(default = "default_source")]
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    data: Value,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    time: Option<DateTime<Utc>>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

fn default_source() -> String {
    "test".into()
}

/// Runs the plugin exactly as the pipeline would, but delivers nothing and keeps no kv
/// writes; answers with the verdict, outputs, logs, time and memory.
async fn dry_run(
    State(state): State<AppState>,
    Path((tenant, name, version)): Path<(String, String, String)>,
    ApiJson(request): ApiJson<DryRunRequest>,
) -> Result<Json<Value>, ApiError> {
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
        Ok(Verdict::Drop(reason)) => ("drop", Some(reason), Vec::new()),
        Ok(Verdict::Continue(outs)) if outs.len() == 1 && outs[0].id == event.id => ("pass", None, outs),
        Ok(Verdict::Continue(outs)) => ("emit", None, outs),
        Err(failure) => ("error", Some(failure.to_string()), Vec::new()),
    };
    let outputs: Vec<Value> = outputs.iter().map(output_json).collect();
    Ok(Json(json!({
        "plugin": plugin.label.as_ref(),
        "input": output_json(&event),
        "verdict": verdict,
        "reason": reason,
        "outputs": outputs,
        "logs": trace.logs,
        "duration_us": trace.elapsed.as_micros() as u64,
        "memory_bytes": trace.peak_memory_bytes,
    })))
}

/// An event with its data as JSON rather than text.
fn output_json(e: &Event) -> Value {
    let mut v = json!(e);
    if let Ok(data) = serde_json::from_str::<Value>(&e.data) {
        v["data"] = data;
    }
    v
}
