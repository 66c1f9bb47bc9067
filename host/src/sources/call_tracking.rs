//! Call-tracking envelope: `{event, timestamp, data}`. It has no event id, so the id is
//! derived from the source and the body.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Parsed, SourceError, SourceFormat, decode, event_timestamp_envelope};

const FORMAT: SourceFormat = SourceFormat::CallTracking;

#[derive(Deserialize)]
struct Envelope<'a> {
    event: String,
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

pub(super) fn parse(source_key: &str, raw: &RawValue) -> Result<Parsed, SourceError> {
    let env: Envelope = decode(FORMAT, raw)?;
    event_timestamp_envelope(FORMAT, source_key, raw, &env.event, env.timestamp, env.data)
}
