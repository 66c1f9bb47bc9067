//! Coaching platform envelope: `{id, type, account_id, created_at, data}`. The account id
//! becomes the event's subject, so routes and plugins can tell agents apart.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Parsed, SourceError, SourceFormat, decode, parse_time, payload_text, required};

const FORMAT: SourceFormat = SourceFormat::Coaching;

#[derive(Deserialize)]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(borrow)]
    created_at: &'a RawValue,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

pub(super) fn parse(raw: &RawValue) -> Result<Parsed, SourceError> {
    let env: Envelope = decode(FORMAT, raw)?;
    Ok(Parsed {
        upstream_id: required(FORMAT, "id", &env.id)?,
        event_type: required(FORMAT, "type", &env.event_type)?,
        time: parse_time(FORMAT, "created_at", env.created_at)?,
        subject: env.account_id.filter(|s| !s.is_empty()),
        data: payload_text(env.data),
    })
}
