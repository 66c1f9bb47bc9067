//! The seed events (real vendor payloads from `tests/fixtures/`), embedded in the binary so a
//! tenant can dry-run a plugin on `call-tracking/call_ended` without finding a payload first.

use crate::event::{Event, EventId};
use crate::sources::{self, SourceFormat};

macro_rules! fixtures {
    ($($format:literal / $name:literal,)*) => {
        &[$((
            concat!($format, "/", $name),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/", $format, "/", $name, ".json")),
        ),)*]
    };
}

/// `(format/name, raw body in the vendor's envelope)`.
const FIXTURES: &[(&str, &str)] = fixtures! {
    "call-tracking" / "call_ended",
    "call-tracking" / "call_outcome_tagged",
    "call-tracking" / "conversation_created",
    "call-tracking" / "message_created",
    "cloudevents" / "invoice_paid",
    "coaching" / "agent_coaching_insight_created",
    "coaching" / "client_contacted",
    "coaching" / "deal_stage_changed",
    "coaching" / "goal_pace_changed",
    "coaching" / "sentinel_fired",
    "crm" / "client_created",
    "crm" / "contact_created",
    "crm" / "deal_created",
    "crm" / "form_response_created",
    "crm" / "invoice_created",
    "crm" / "lead_created",
    "crm" / "quotation_created",
    "standard-webhooks" / "call_completed",
    "standard-webhooks" / "org_updated",
    "standard-webhooks" / "user_created",
    "standard-webhooks" / "user_deleted",
};

/// Every fixture name, `format/name`.
pub fn names() -> impl Iterator<Item = &'static str> {
    FIXTURES.iter().map(|(name, _)| *name)
}

/// The fixture as the router would have ingested it on a source named after its format.
pub fn event(name: &str, tenant: &str) -> Option<Event> {
    let (_, body) = FIXTURES.iter().find(|(n, _)| *n == name)?;
    let (format_name, _) = name.split_once('/')?;
    let format = SourceFormat::from_name(format_name)?;
    let parsed = sources::parse(format, name, &http::HeaderMap::new(), body.as_bytes()).ok()?;
    Some(Event {
        id: EventId::generate(),
        tenant: tenant.to_owned(),
        source: format_name.to_owned(),
        event_type: parsed.event_type,
        time: parsed.time,
        subject: parsed.subject,
        data: parsed.data,
        attributes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_file_is_embedded_and_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut on_disk = Vec::new();
        for format in std::fs::read_dir(&dir).unwrap() {
            let format = format.unwrap();
            if !format.path().is_dir() {
                continue;
            }
            for file in std::fs::read_dir(format.path()).unwrap() {
                let file = file.unwrap().file_name().into_string().unwrap();
                if let Some(name) = file.strip_suffix(".json") {
                    on_disk.push(format!("{}/{name}", format.file_name().to_string_lossy()));
                }
            }
        }
        on_disk.sort();
        assert_eq!(names().collect::<Vec<_>>(), on_disk, "add new fixture files to FIXTURES");
        for name in names() {
            let event = event(name, "acme").unwrap_or_else(|| panic!("{name} does not parse"));
            assert!(!event.event_type.is_empty());
        }
        assert_eq!(event("call-tracking/call_ended", "acme").unwrap().event_type, "call.ended");
        assert!(event("nope/nothing", "acme").is_none());
    }
}
