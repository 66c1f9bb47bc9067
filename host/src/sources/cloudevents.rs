//! CloudEvents 1.0 structured JSON. Event ids are unique per CloudEvents `source`, so the
//! upstream id combines both.

use chrono::Utc;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Parsed, SourceError, SourceFormat, decode, envelope_error, parse_time, payload_text, required};

const FORMAT: SourceFormat = SourceFormat::Cloudevents;

#[derive(Deserialize)]
struct Envelope<'a> {
    specversion: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default, borrow)]
    time: Option<&'a RawValue>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    data_base64: Option<String>,
}

pub(super) fn parse(raw: &RawValue) -> Result<Parsed, SourceError> {
    let env: Envelope = decode(FORMAT, raw)?;
    if env.specversion != "1.0" {
        return Err(envelope_error(FORMAT, format!("unsupported specversion {:?}", env.specversion)));
    }
    if env.data_base64.is_some() {
        return Err(envelope_error(FORMAT, "binary data (data_base64) is not supported; send JSON data"));
    }
    let time = match env.time {
        Some(t) => parse_time(FORMAT, "time", t)?,
        None => Utc::now(),
    };
    let id = required(FORMAT, "id", &env.id)?;
    let source = required(FORMAT, "source", &env.source)?;
    Ok(Parsed {
        upstream_id: format!("{source} {id}"),
        event_type: required(FORMAT, "type", &env.event_type)?,
        time,
        subject: env.subject.filter(|s| !s.is_empty()),
        data: payload_text(env.data),
    })
}
