//! The API's one error type. Client mistakes carry their message (and details); internal
//! errors are logged here and answered with a generic message, never leaked.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::routes::Problem;
use crate::store::StoreError;

/// Every error the API answers, whatever its status: `{"error": {"code", "message", "details"?}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: bad_request, unauthorized, forbidden, not_found, conflict,
    /// request_timeout, payload_too_large, unsupported_media_type, unprocessable,
    /// quota_exceeded, backlog_full, busy, internal.
    pub code: &'static str,
    /// For people; an internal error's is generic (the detail is in the router's log).
    pub message: String,
    /// Every problem found in a route document (422), each with its path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Problem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Unprocessable { message: String, details: Vec<Problem> },
    /// A quota is exhausted; `retry_after` says when trying again can help.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: std::time::Duration },
    /// The router is behind (a tenant's backlog is full): nothing was stored; retry later.
    #[error("{message}")]
    Overloaded { message: String, retry_after: std::time::Duration },
    /// A shared resource is busy (every compile slot is taken): nothing was stored; retry later.
    #[error("{message}")]
    Busy { message: String, retry_after: std::time::Duration },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A quota that only the tenant's own action (deleting something) or an operator can
    /// lift: trying again in an hour is as good a hint as any.
    pub fn quota(message: impl Into<String>) -> Self {
        ApiError::TooManyRequests { message: message.into(), retry_after: std::time::Duration::from_secs(3600) }
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError::Unprocessable { message: message.into(), details: Vec::new() }
    }

    /// The `code` of the error body (also the `result` label of `/metrics`' ingest counter).
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// The HTTP status the error answers with (also recorded on the ingest span).
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::Unprocessable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"),
            ApiError::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "backlog_full"),
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                "internal error; see the router's log".to_owned()
            }
            other => other.to_string(),
        };
        let details = match &self {
            ApiError::Unprocessable { details, .. } => details.clone(),
            _ => Vec::new(),
        };
        let body = ErrorBody { error: ErrorDetail { code, message, details } };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after, .. }
        | ApiError::Overloaded { retry_after, .. }
        | ApiError::Busy { retry_after, .. } = &self
        {
            // Whole seconds, rounded up: "0" would invite an immediate retry.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
            }
            JsonRejection::JsonDataError(e) => ApiError::unprocessable(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
            JsonRejection::BytesRejection(e) => e.into(),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&r);
        while let Some(e) = cause {
            if let Some(timed_out) = e.downcast_ref::<super::server::BodyTimedOut>() {
                return ApiError::RequestTimeout(format!("{timed_out}; nothing was stored"));
            }
            cause = e.source();
        }
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("request body is over the configured limit".into())
        } else {
            ApiError::BadRequest(r.body_text())
        }
    }
}
