//! Inbound envelope formats. Each vendor wraps its events differently; one adapter per format
//! maps a raw body to the parts of the canonical [`crate::event::Event`]. Before that,
//! [`authenticate`] lets the sender in: the Standard Webhooks format checks its own signature,
//! the others what their source declared ([`auth::SourceAuth`]).

pub mod auth;
mod call_tracking;
mod cloudevents;
mod coaching;
mod crm;
mod standard_webhooks;

use chrono::{DateTime, NaiveDateTime, Utc};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::signing::{Checks, Secret, SignatureError};
use auth::{AuthError, SourceAuth};

/// The envelope a tenant's source speaks. Chosen when the source is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// Coaching platforms: `{id, type, account_id, created_at, data}`.
    Coaching,
    /// Call tracking: `{event, timestamp, data}`.
    CallTracking,
    /// Svix / Standard Webhooks senders: `{id, type, timestamp, payload}` + signature headers.
    #[serde(alias = "svix")]
    StandardWebhooks,
    /// CRMs: `{event, timestamp, payload}`.
    Crm,
    /// CloudEvents 1.0, structured JSON mode.
    Cloudevents,
}

impl SourceFormat {
    /// Whether the format carries a sender signature, and so needs a secret.
    pub fn is_signed(self) -> bool {
        matches!(self, SourceFormat::StandardWebhooks)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Coaching => "coaching",
            SourceFormat::CallTracking => "call-tracking",
            SourceFormat::StandardWebhooks => "standard-webhooks",
            SourceFormat::Crm => "crm",
            SourceFormat::Cloudevents => "cloudevents",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// What an adapter extracts from one inbound body.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The sender's id for the event, or a stable hash of source and body when the format has
    /// none. Used to accept redeliveries idempotently.
    pub upstream_id: String,
    pub event_type: String,
    pub time: DateTime<Utc>,
    pub subject: Option<String>,
    /// The payload as JSON text, byte-for-byte as the sender wrote it.
    pub data: String,
}

/// Why an inbound body was refused.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("body is not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("body does not match the {format} envelope: {detail}")]
    Envelope { format: &'static str, detail: String },
    #[error("signature check failed: {0}")]
    Signature(#[from] SignatureError),
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
}

/// Maps a body in `format` to an event's parts. `source_key` identifies the tenant's source,
/// so derived ids differ between sources.
pub fn parse(format: SourceFormat, source_key: &str, headers: &HeaderMap, body: &[u8]) -> Result<Parsed, SourceError> {
    // Reject non-JSON first, so every format reports syntax errors the same way.
    let raw: &RawValue = serde_json::from_slice(body).map_err(SourceError::Json)?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(envelope_error(format, "expected a JSON object"));
    }
    match format {
        SourceFormat::Coaching => coaching::parse(raw),
        SourceFormat::CallTracking => call_tracking::parse(source_key, raw),
        SourceFormat::StandardWebhooks => standard_webhooks::parse(headers, raw),
        SourceFormat::Crm => crm::parse(source_key, raw),
        SourceFormat::Cloudevents => cloudevents::parse(raw),
    }
}

/// Lets a request in, or says why not: the Standard Webhooks signature under `secret` for that
/// format, the source's declared `auth` for the others. A source with neither is refused (the
/// API never stores one; failing closed keeps it that way).
pub fn authenticate(
    format: SourceFormat,
    secret: Option<&Secret>,
    auth: Option<&SourceAuth>,
    headers: &HeaderMap,
    body: &[u8],
    checks: &Checks,
) -> Result<(), SourceError> {
    match (format, secret, auth) {
        (SourceFormat::StandardWebhooks, Some(secret), _) => standard_webhooks::verify(secret, headers, body, checks),
        (SourceFormat::StandardWebhooks, None, _) | (_, _, None) => Err(AuthError::Undeclared.into()),
        (_, _, Some(auth)) => Ok(auth.check(headers, body, checks)?),
    }
}

fn envelope_error(format: SourceFormat, detail: impl Into<String>) -> SourceError {
    SourceError::Envelope { format: format.as_str(), detail: detail.into() }
}

/// Decodes an envelope struct, turning serde's message into an envelope error.
fn decode<'a, T: Deserialize<'a>>(format: SourceFormat, raw: &'a RawValue) -> Result<T, SourceError> {
    serde_json::from_str(raw.get()).map_err(|e| envelope_error(format, e.to_string()))
}

/// A non-empty string field, or an envelope error naming it.
fn required(format: SourceFormat, field: &str, value: &str) -> Result<String, SourceError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(envelope_error(format, format!("field `{field}` must not be empty")));
    }
    Ok(value.to_owned())
}

/// Vendor timestamps: RFC 3339, RFC 3339 without an offset (taken as UTC; the sales-training
/// sender does this), or unix seconds as a number or string. Read from the raw JSON text, not
/// through a `serde_json::Value`: a timestamp field holding a megabyte of nested arrays is
/// refused without first being built into a tree many times its size.
fn parse_time(format: SourceFormat, field: &str, raw: &RawValue) -> Result<DateTime<Utc>, SourceError> {
    let bad = || envelope_error(format, format!("field `{field}` is not a timestamp"));
    let text = raw.get().trim_start();
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|_| bad())?;
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.with_timezone(&Utc));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
            return Ok(t.and_utc());
        }
        s.parse::<i64>().ok().and_then(|n| DateTime::from_timestamp(n, 0)).ok_or_else(bad)
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        serde_json::from_str::<i64>(text).ok().and_then(|n| DateTime::from_timestamp(n, 0)).ok_or_else(bad)
    } else {
        Err(bad())
    }
}

/// The payload JSON, required to be present (JSON `null` is allowed: some events carry none).
fn payload_text(value: Option<&RawValue>) -> String {
    value.map_or_else(|| "null".to_owned(), |v| v.get().to_owned())
}

/// The `{event, timestamp, <payload>}` envelopes (call tracking, CRM): they differ only in the
/// payload field's name, which each adapter keeps strict.
fn event_timestamp_envelope(
    format: SourceFormat,
    source_key: &str,
    raw: &RawValue,
    event: &str,
    timestamp: &RawValue,
    payload: Option<&RawValue>,
) -> Result<Parsed, SourceError> {
    Ok(Parsed {
        upstream_id: derived_id(source_key, raw),
        event_type: required(format, "event", event)?,
        time: parse_time(format, "timestamp", timestamp)?,
        subject: None,
        data: payload_text(payload),
    })
}

/// Stable id for formats without one: hash of the tenant's source and the exact body, so a
/// redelivery of the same bytes is recognised.
fn derived_id(source_key: &str, raw: &RawValue) -> String {
    let mut h = Sha256::new();
    h.update(source_key.as_bytes());
    h.update([0]);
    h.update(raw.get().as_bytes());
    format!("sha256:{}", hex::encode(&h.finalize()[..16]))
}

#[cfg(test)]
mod tests;
