//! Call-tracking envelope: `{event, timestamp, data}`. It has no event id, so the id is
//! derived from the source and the body.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Parsed, SourceError, SourceFormat, decode, derived_id, parse_time, payload_text, required};

const FORMAT: SourceFormat = SourceFormat::CallTracking;

#[derive(Deserialize)]
struct Envelope<'a> {
    event: String,
    timestamp: serde_json::Value,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

pub(super) fn parse(source_key: &str, raw: &RawValue) -> Result<Parsed, SourceError> {
    let env: Envelope = decode(FORMAT, raw)?;
    Ok(Parsed {
        upstream_id: derived_id(source_key, raw),
        event_type: required(FORMAT, "event", &env.event)?,
        time: parse_time(FORMAT, "timestamp", &env.timestamp)?,
        subject: None,
        data: payload_text(env.data),
    })
}
