//! CRM envelope: `{event, timestamp, payload}`. No event id: derived from source and body.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Parsed, SourceError, SourceFormat, decode, event_timestamp_envelope};

const FORMAT: SourceFormat = SourceFormat::Crm;

#[derive(Deserialize)]
struct Envelope<'a> {
    event: String,
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

pub(super) fn parse(source_key: &str, raw: &RawValue) -> Result<Parsed, SourceError> {
    let env: Envelope = decode(FORMAT, raw)?;
    event_timestamp_envelope(FORMAT, source_key, raw, &env.event, env.timestamp, env.payload)
}
