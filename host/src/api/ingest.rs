//! `POST /v1/ingest/{tenant}/{source}`: accept one webhook in the source's envelope, let its
//! sender in (signature, token or the source's explicit opt-out), store it durably, then answer
//! 202. Nothing is stored unless every check passes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiError, ApiPath, AppState, ErrorBody};
use crate::config::Config;
use crate::event::{Event, EventId};
use crate::metrics::TenantMetrics;
use crate::signing::{Checks, Secret};
use crate::sources::{self, SourceError, SourceFormat};
use crate::store::{InsertOutcome, NewEvent};
use crate::trace::{KeyValue, Span, SpanKind, TRACEPARENT};

/// What a sender is told to wait when its tenant's backlog is full.
const BACKLOG_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

pub fn router(config: &Config) -> Router<AppState> {
    Router::new()
        .route("/v1/ingest/{tenant}/{source}", post(ingest))
        .layer(DefaultBodyLimit::max(config.ingest.max_body_bytes))
}

/// What a stored (or already stored) event is answered with.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The sender's id was seen before: nothing new was stored, `id` is the first one's.
    pub duplicate: bool,
}

/// Which tenant and source an ingest request reached, for its count in `/metrics`.
#[derive(Default)]
struct Reached {
    /// Whether the tenant and source were looked up (requests refused before are not).
    looked_up: bool,
    tenant: Option<Arc<TenantMetrics>>,
    source_known: bool,
}

/// Accepts one webhook in the source's envelope. Public: senders authenticate as the source
/// declares (Standard Webhooks signature, bearer, basic, HMAC, or an explicit none).
#[utoipa::path(post, path = "/v1/ingest/{tenant}/{source}", tag = "ingest", security(()),
    params(("tenant" = String, Path), ("source" = String, Path)),
    request_body(description = "The webhook, in the source's envelope", content(
        (serde_json::Value = "application/json"),
        (serde_json::Value = "application/cloudevents+json"),
    )),
    responses(
        (status = 202, description = "Stored durably (or a duplicate of a stored event)", body = Accepted),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "The sender did not authenticate as the source declares", body = ErrorBody),
        (status = 404, description = "No such tenant or source (the same answer for both)", body = ErrorBody),
        (status = 408, description = "The body arrived too slowly", body = ErrorBody),
        (status = 413, description = "Over ingest.max_body_bytes", body = ErrorBody),
        (status = 415, description = "Not a JSON content type", body = ErrorBody),
        (status = 422, description = "Valid JSON, but not the source's envelope", body = ErrorBody),
        (status = 429, description = "Over the tenant's ingest rate; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "The tenant's backlog is full; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
pub(super) async fn ingest(
    State(state): State<AppState>,
    ApiPath((tenant_name, source_name)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let mut reached = Reached::default();
    // A sender's trace continues through the router (see `trace`); with tracing on, the
    // event's tree starts here, and what is stored with the event names this span.
    let sent = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(crate::trace::parse);
    let mut span = state.tracer.start("ingest", SpanKind::Server, sent.as_deref(), || {
        vec![KeyValue::new("source", source_name.clone()), KeyValue::new("http.request.method", "POST")]
    });
    let traceparent = span.traceparent().or(sent);
    let answer = accept(&state, &tenant_name, &source_name, &headers, body, traceparent, &mut reached).await;
    record(&mut span, &answer, reached.tenant.is_some().then_some(tenant_name.as_str()));
    let result = match &answer {
        Ok(accepted) => ["accepted", "duplicate"][usize::from(accepted.duplicate)],
        Err(e) => e.code(),
    };
    if !reached.looked_up {
        // Refused before the lookup (content type, body): looked up now for the label only,
        // from the store's cache.
        if let Ok(Some((tenant, source))) = state.store.ingest_target(&tenant_name, &source_name).await {
            reached.source_known = source.is_some();
            reached.tenant = Some(state.metrics.tenant(&tenant.id, &tenant.name));
        }
    }
    let tenant = reached.tenant.unwrap_or_else(|| state.metrics.unknown_tenant());
    state.metrics.ingested(&tenant, reached.source_known.then_some(source_name.as_str()), result);
    answer.map(|accepted| (StatusCode::ACCEPTED, Json(accepted)))
}

/// The checks and the durable insert; the answer's body (which says if it was a duplicate).
async fn accept(
    state: &AppState,
    tenant_name: &str,
    source_name: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    traceparent: Option<String>,
    reached: &mut Reached,
) -> Result<Accepted, ApiError> {
    check_content_type(headers)?;
    let body = body?;
    // An unknown tenant and an unknown source of a known tenant get the same answer, byte for
    // byte: ingest is public, so it must not tell strangers which tenant names exist.
    let unknown = || ApiError::NotFound("no such tenant or source".into());
    reached.looked_up = true;
    let (tenant, source) = state.store.ingest_target(tenant_name, source_name).await?.ok_or_else(unknown)?;
    reached.tenant = Some(state.metrics.tenant(&tenant.id, &tenant.name));
    let source = source.ok_or_else(unknown)?;
    reached.source_known = true;
    let format = SourceFormat::from_name(&source.format)
        .ok_or_else(|| ApiError::Internal(format!("stored source format {:?} unknown", source.format)))?;

    let secret = match &source.secret {
        Some(s) => Some(Secret::parse(s).map_err(|e| ApiError::Internal(format!("stored source secret: {e}")))?),
        None => None,
    };
    let checks = Checks {
        now: chrono::Utc::now().timestamp(),
        tolerance_secs: state.config.ingest.signature_tolerance.as_secs() as i64,
        max_entries: state.config.ingest.max_signature_entries,
    };
    // Before the body is parsed and before the rate limit: a stranger costs one MAC at most,
    // spends none of the tenant's quota and cannot claim an event's id ahead of the vendor.
    sources::authenticate(format, secret.as_ref(), source.auth.as_ref(), headers, &body, &checks)
        .map_err(source_error)?;
    let key = format!("{}/{}", tenant.id, source_name);
    let parsed = sources::parse(format, &key, headers, &body).map_err(source_error)?;
    crate::event::check_event_type(&parsed.event_type).map_err(ApiError::unprocessable)?;
    // After authentication, so strangers cannot spend a tenant's quota.
    let policy = state.config.policy(&tenant.name);
    state.ingest_limits.check(&tenant.id, &policy).map_err(|retry_after| ApiError::TooManyRequests {
        message: format!(
            "tenant {tenant_name:?} is over its ingest rate ({} events/s, bursts of {}); nothing was stored",
            policy.ingest_rate, policy.ingest_burst
        ),
        retry_after,
    })?;
    // A sustained overload pushes back on the sender instead of growing the backlog forever.
    let limit = state.config.ingest.max_backlog_per_tenant;
    if !state.events.admit(&tenant.id, limit) {
        return Err(ApiError::Overloaded {
            message: format!(
                "tenant {tenant_name:?} has {limit} events waiting to be processed (ingest.max_backlog_per_tenant); nothing was stored, retry later"
            ),
            retry_after: BACKLOG_RETRY_AFTER,
        });
    }

    let event = Event {
        id: EventId::generate(),
        tenant: tenant.name.clone(),
        source: source_name.to_owned(),
        event_type: parsed.event_type,
        time: parsed.time,
        subject: parsed.subject,
        data: parsed.data,
        attributes: traceparent.map(|t| (TRACEPARENT.to_owned(), t)).into_iter().collect(),
    };
    let event_type = event.event_type.clone();
    // Answered after the commit that holds the event; the writer hands it to the pipeline.
    let tenant_id = tenant.id.clone();
    let outcome = state.writer.insert(NewEvent { tenant_id, upstream_id: parsed.upstream_id, event, raw: body }).await;
    let (id, duplicate) = match outcome {
        Ok(InsertOutcome::Stored(id)) => (id, false),
        Ok(InsertOutcome::Duplicate(id)) => {
            state.events.unadmit(&tenant.id);
            (id, true)
        }
        Err(e) => {
            state.events.unadmit(&tenant.id);
            return Err(e.into());
        }
    };
    Ok(Accepted { id, event_type, duplicate })
}

/// The ingest span's outcome: the event's id and tenant, or why it was refused.
fn record(span: &mut Span, answer: &Result<Accepted, ApiError>, tenant: Option<&str>) {
    if let Some(tenant) = tenant {
        span.set("tenant", || tenant.to_owned());
    }
    match answer {
        Ok(accepted) => {
            span.set("event.id", || accepted.id.to_string());
            span.set("ingest.duplicate", || accepted.duplicate);
            span.set("http.response.status_code", || i64::from(StatusCode::ACCEPTED.as_u16()));
        }
        Err(e) => {
            span.set("http.response.status_code", || i64::from(e.status().as_u16()));
            span.set("error.type", || e.code());
            span.fail(|| e.code().to_owned());
        }
    }
}

/// Senders use JSON (or CloudEvents JSON); a missing Content-Type is tolerated because some
/// webhook senders omit it, anything else is refused.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else { return Ok(()) };
    let ct = value.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!("expected a JSON body, got Content-Type {ct:?}")))
    }
}

fn source_error(e: SourceError) -> ApiError {
    match e {
        SourceError::Json(_) => ApiError::BadRequest(e.to_string()),
        SourceError::Envelope { .. } => ApiError::unprocessable(e.to_string()),
        SourceError::Signature(_) | SourceError::Auth(_) => ApiError::Unauthorized(e.to_string()),
    }
}
