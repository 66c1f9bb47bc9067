//! CRM envelope: `{event, timestamp, payload}`. No event id: derived from source and body.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Parsed, SourceError, SourceFormat, decode, derived_id, parse_time, payload_text, required};

const FORMAT: SourceFormat = SourceFormat::Crm;

#[derive(Deserialize)]
struct Envelope<'a> {
    event: String,
    timestamp: serde_json::Value,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

pub(super) fn parse(source_key: &str, raw: &RawValue) -> Result<Parsed, SourceError> {
    let env: Envelope = decode(FORMAT, raw)?;
    Ok(Parsed {
        upstream_id: derived_id(source_key, raw),
        event_type: required(FORMAT, "event", &env.event)?,
        time: parse_time(FORMAT, "timestamp", &env.timestamp)?,
        subject: None,
        data: payload_text(env.payload),
    })
}
