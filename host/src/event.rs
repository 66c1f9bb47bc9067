//! The canonical event every inbound format is mapped to, and the prefixed ids used across
//! module boundaries (`evt_`, `ten_`, `plg_`, `key_`, `dlv_`), so an id's kind is visible in logs and
//! can never be passed where another kind is expected.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id (ULID after the prefix).
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::new().to_string().to_lowercase()))
            }

            /// Accepts an id received from outside, checking only its prefix.
            pub fn parse(s: &str) -> Option<Self> {
                (s.starts_with($prefix) && s.len() > $prefix.len()).then(|| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// When a generated id was made (unix ms, from its ULID); `None` for ids from
            /// outside that are not ULIDs.
            pub fn created_ms(&self) -> Option<i64> {
                let ulid = ulid::Ulid::from_string(self.0.get($prefix.len()..)?).ok()?;
                i64::try_from(ulid.timestamp_ms()).ok()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A stored event (inbound, or emitted by a plugin).
    EventId, "evt_"
);
prefixed_id!(
    /// A tenant.
    TenantId, "ten_"
);
prefixed_id!(
    /// One uploaded version of a plugin.
    PluginId, "plg_"
);
prefixed_id!(
    /// A tenant API key (the id, not the secret key itself).
    KeyId, "key_"
);
prefixed_id!(
    /// One delivery: an output event to one destination. Doubles as the `webhook-id`, so it
    /// stays the same across retries and receivers can deduplicate on it.
    DeliveryId, "dlv_"
);

/// Longest event type accepted, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 256;

/// Checks an event type, from a sender or a plugin. It travels as the `switchyard-event-type`
/// header of every delivery, so it must be a valid header value: 1 to
/// [`MAX_EVENT_TYPE_BYTES`] visible ASCII characters, no spaces and no control characters. A
/// type that broke the header would fail every attempt and open the destination's circuit.
pub fn check_event_type(event_type: &str) -> Result<(), String> {
    if event_type.is_empty() || event_type.len() > MAX_EVENT_TYPE_BYTES {
        return Err(format!("event type must be 1 to {MAX_EVENT_TYPE_BYTES} bytes"));
    }
    if let Some(c) = event_type.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "event type {event_type:?} contains {c:?}: only visible ASCII characters are allowed (it is sent as a header)"
        ));
    }
    Ok(())
}

/// An event in the router's own shape, CloudEvents-aligned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    /// Tenant name (the slug used in URLs).
    pub tenant: String,
    /// The tenant's source name the event arrived on.
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The payload, kept as JSON text: it is passed to plugins and delivered as-is, so
    /// re-serialising it would only cost time and risk changing bytes.
    pub data: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
}

impl Event {
    /// The event as a CloudEvents 1.0 structured-mode JSON document. Plugin attributes become
    /// extension attributes (lower-cased alphanumerics, as the spec requires).
    pub fn to_cloudevent(&self) -> serde_json::Value {
        let data: serde_json::Value =
            serde_json::from_str(&self.data).unwrap_or_else(|_| serde_json::Value::String(self.data.clone()));
        let mut doc = serde_json::json!({
            "specversion": "1.0",
            "id": self.id,
            "source": format!("/switchyard/{}/{}", self.tenant, self.source),
            "type": self.event_type,
            "time": self.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "datacontenttype": "application/json",
            "data": data,
        });
        let obj = doc.as_object_mut().expect("object literal");
        if let Some(subject) = &self.subject {
            obj.insert("subject".into(), subject.clone().into());
        }
        for (name, value) in &self.attributes {
            let name: String = name.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
            if !name.is_empty() && !obj.contains_key(&name) {
                obj.insert(name, value.clone().into());
            }
        }
        doc
    }
}

#[cfg(test)]
impl Event {
    /// A `call.ended` event of `tenant` from source `calls` with `{}` data, for unit tests.
    pub fn sample(tenant: &str) -> Self {
        Event {
            id: EventId::generate(),
            tenant: tenant.into(),
            source: "calls".into(),
            event_type: "call.ended".into(),
            time: "2026-03-25T18:35:00Z".parse().expect("a valid time"),
            subject: None,
            data: "{}".into(),
            attributes: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_types_must_be_header_safe() {
        use super::check_event_type as check;
        assert!(check("call.outcome_tagged").is_ok() && check("lead.stageChanged").is_ok());
        assert!(check("com.example.v2/object:deleted").is_ok());
        for bad in ["", "call.\u{7}ended", "call ended", "call.\nended", "appel.terminé"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check(&"x".repeat(257)).unwrap_err().contains("256"));
    }

    use super::*;

    #[test]
    fn ids_have_their_prefix_and_are_unique() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert!(a.as_str().starts_with("evt_"));
        assert_ne!(a, b);
        assert!(EventId::parse("dlv_123").is_none());
        let now = chrono::Utc::now().timestamp_millis();
        assert!((a.created_ms().unwrap() - now).abs() < 5_000, "the ULID's time, read back from lowercase");
        assert_eq!(EventId::parse("evt_123").unwrap().created_ms(), None);
        assert!(EventId::parse("evt_").is_none());
        assert_eq!(EventId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn cloudevent_carries_data_subject_and_extensions() {
        let ev = Event {
            id: EventId::parse("evt_1").unwrap(),
            tenant: "acme".into(),
            source: "calls".into(),
            event_type: "call.ended".into(),
            time: "2026-03-25T18:35:00Z".parse().unwrap(),
            subject: Some("acct".into()),
            data: r#"{"id":42}"#.into(),
            attributes: vec![("slack-channel".into(), "#sales".into())],
        };
        let ce = ev.to_cloudevent();
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["data"]["id"], 42);
        assert_eq!(ce["subject"], "acct");
        assert_eq!(ce["slackchannel"], "#sales");
        assert_eq!(ce["source"], "/switchyard/acme/calls");
    }
}
