//! Svix / Standard Webhooks senders: body `{id, type, timestamp, payload}`, signed with
//! `svix-id`/`svix-timestamp`/`svix-signature` (or the `webhook-*` names of the spec).

use http::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Parsed, SourceError, SourceFormat, decode, parse_time, payload_text, required};
use crate::signing::{self, Checks, Secret, SignatureError};

const FORMAT: SourceFormat = SourceFormat::StandardWebhooks;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// A header under its Svix name or its Standard Webhooks name.
fn header<'h>(headers: &'h HeaderMap, svix: &'static str, standard: &'static str) -> Option<&'h str> {
    headers.get(svix).or_else(|| headers.get(standard)).and_then(|v| v.to_str().ok())
}

pub(super) fn verify(secret: &Secret, headers: &HeaderMap, body: &[u8], checks: &Checks) -> Result<(), SourceError> {
    let id = header(headers, "svix-id", "webhook-id").ok_or(SignatureError::MissingHeader("svix-id"))?;
    let ts = header(headers, "svix-timestamp", "webhook-timestamp")
        .ok_or(SignatureError::MissingHeader("svix-timestamp"))?;
    let sig = header(headers, "svix-signature", "webhook-signature")
        .ok_or(SignatureError::MissingHeader("svix-signature"))?;
    signing::verify(secret, id, ts, sig, body, checks)?;
    Ok(())
}

pub(super) fn parse(headers: &HeaderMap, raw: &RawValue) -> Result<Parsed, SourceError> {
    let env: Envelope = decode(FORMAT, raw)?;
    // The body's event id identifies the event; the message id header is the fallback.
    let id = env
        .id
        .filter(|s| !s.trim().is_empty())
        .or_else(|| header(headers, "svix-id", "webhook-id").map(str::to_owned))
        .unwrap_or_default();
    Ok(Parsed {
        upstream_id: required(FORMAT, "id", &id)?,
        event_type: required(FORMAT, "type", &env.event_type)?,
        time: parse_time(FORMAT, "timestamp", env.timestamp)?,
        subject: None,
        data: payload_text(env.payload),
    })
}
