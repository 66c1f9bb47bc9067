//! The event a plugin handles, with typed access to its JSON payload.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::WitEvent;
use crate::{Error, Result, Verdict};

/// One event as the router sees it after ingest (CloudEvents-aligned).
///
/// The payload travels as JSON text; read it with [`Event::data`] into your own serde type (or
/// one from [`crate::seeds`]) and write it back with [`Event::set_data`].
///
/// Changing the tenant is impossible on purpose: the host ignores it. Ids of events a plugin
/// returns are reassigned by the host, so constructors leave them empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    id: String,
    tenant: String,
    source: String,
    event_type: String,
    time: String,
    subject: Option<String>,
    data: String,
    attributes: Vec<(String, String)>,
}

impl Event {
    /// A fresh event of `event_type` carrying `data`, for [`Verdict::emit`].
    ///
    /// Id, tenant, source and time are left empty for the host to fill in. Prefer
    /// [`Event::derive`] when the new event stems from the one being handled, so it keeps that
    /// event's source, time and subject.
    pub fn new<T>(event_type: impl Into<String>, data: &T) -> Result<Self>
    where
        T: Serialize + ?Sized,
    {
        Ok(Self {
            id: String::new(),
            tenant: String::new(),
            source: String::new(),
            event_type: event_type.into(),
            time: String::new(),
            subject: None,
            data: to_json(data)?,
            attributes: Vec::new(),
        })
    }

    /// A new event of `event_type` carrying `data` that copies this event's tenant, source,
    /// time and subject (not its id or attributes): the usual way to build fan-out outputs.
    pub fn derive<T>(&self, event_type: impl Into<String>, data: &T) -> Result<Self>
    where
        T: Serialize + ?Sized,
    {
        Ok(Self {
            id: String::new(),
            tenant: self.tenant.clone(),
            source: self.source.clone(),
            event_type: event_type.into(),
            time: self.time.clone(),
            subject: self.subject.clone(),
            data: to_json(data)?,
            attributes: Vec::new(),
        })
    }

    /// Router-assigned id (`evt_...`); empty on events built with [`Event::new`]/[`Event::derive`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tenant the event belongs to (read-only).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The tenant's configured source name the event arrived on.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Event type, e.g. `call.outcome_tagged`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// Renames the event, e.g. when a transform turns `goal.pace_changed` into
    /// `goal.pace_alert`; downstream routes match on the new type.
    pub fn set_event_type(&mut self, event_type: impl Into<String>) {
        self.event_type = event_type.into();
    }

    /// RFC 3339 timestamp of the upstream event.
    pub fn time(&self) -> &str {
        &self.time
    }

    /// Optional subject (for coaching events: the account id).
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Replaces the subject.
    pub fn set_subject(&mut self, subject: Option<String>) {
        self.subject = subject;
    }

    /// Parses the payload into `T`. Fails with [`crate::ErrorKind::InvalidInput`] when it does
    /// not have that shape, so a bad upstream event is recorded rather than retried.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.data).map_err(|err| {
            Error::invalid_input(format!("event data is not a valid {}: {err}", std::any::type_name::<T>()))
        })
    }

    /// The payload as untyped JSON, for plugins that only touch a few fields or must keep
    /// fields they do not know about.
    pub fn data_json(&self) -> Result<serde_json::Value> {
        self.data()
    }

    /// The payload exactly as received (JSON text).
    pub fn raw_data(&self) -> &str {
        &self.data
    }

    /// Replaces the payload with `data` serialized as JSON. Serialization failing is a bug in
    /// the plugin, so it is reported as [`crate::ErrorKind::Fatal`].
    pub fn set_data<T>(&mut self, data: &T) -> Result<()>
    where
        T: Serialize + ?Sized,
    {
        self.data = to_json(data)?;
        Ok(())
    }

    /// The value of attribute `name`, if set.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets attribute `name` (delivered as a CloudEvents extension), replacing any value it
    /// had so each name appears once.
    pub fn set_attribute(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.attributes.iter().position(|(k, _)| *k == name) {
            Some(i) => {
                self.attributes[i].1 = value;
                let mut seen = false;
                self.attributes.retain(|(k, _)| {
                    let keep = *k != name || !seen;
                    seen |= *k == name;
                    keep
                });
            }
            None => self.attributes.push((name, value)),
        }
    }

    /// Builder form of [`Event::set_attribute`].
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_attribute(name, value);
        self
    }

    /// Removes attribute `name`, returning its value.
    pub fn remove_attribute(&mut self, name: &str) -> Option<String> {
        let i = self.attributes.iter().position(|(k, _)| k == name)?;
        let (_, value) = self.attributes.remove(i);
        self.attributes.retain(|(k, _)| k != name);
        Some(value)
    }

    /// All attributes, in order.
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attributes
    }

    /// Shorthand for [`Verdict::pass`]: continue with this event.
    pub fn pass(self) -> Verdict {
        Verdict::pass(self)
    }

    /// Shorthand for [`Verdict::drop`]: stop here and record `reason`.
    ///
    /// Named after the WIT `drop` verdict. It takes `self` and a reason, so it cannot be
    /// mistaken for `std::mem::drop` or `Drop::drop` (which `Event` does not implement).
    pub fn drop(self, reason: impl Into<String>) -> Verdict {
        Verdict::drop(reason)
    }

    pub(crate) fn from_wit(ev: WitEvent) -> Self {
        Self {
            id: ev.id,
            tenant: ev.tenant,
            source: ev.source,
            event_type: ev.event_type,
            time: ev.time,
            subject: ev.subject,
            data: ev.data,
            attributes: ev.attributes,
        }
    }

    pub(crate) fn into_wit(self) -> WitEvent {
        WitEvent {
            id: self.id,
            tenant: self.tenant,
            source: self.source,
            event_type: self.event_type,
            time: self.time,
            subject: self.subject,
            data: self.data,
            attributes: self.attributes,
        }
    }
}

fn to_json<T: Serialize + ?Sized>(data: &T) -> Result<String> {
    serde_json::to_string(data).map_err(|err| Error::fatal(format!("cannot serialize event data: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Event {
        Event::from_wit(WitEvent {
            id: "evt_1".into(),
            tenant: "acme".into(),
            source: "calls".into(),
            event_type: "call.ended".into(),
            time: "2026-03-25T18:35:00Z".into(),
            subject: Some("acct".into()),
            data: r#"{"id":42}"#.into(),
            attributes: vec![("a".into(), "1".into())],
        })
    }

    #[test]
    fn derive_copies_context_but_not_id_or_attributes() {
        let ev = sample();
        let out = ev.derive("slack.message", &json!({"x": 1})).unwrap();
        assert_eq!(out.id(), "");
        assert_eq!(out.tenant(), "acme");
        assert_eq!(out.source(), "calls");
        assert_eq!(out.time(), ev.time());
        assert_eq!(out.subject(), Some("acct"));
        assert!(out.attributes().is_empty());
        assert_eq!(out.data_json().unwrap(), json!({"x": 1}));
    }

    #[test]
    fn set_attribute_replaces_and_dedups() {
        let mut ev = sample();
        ev.attributes.push(("a".into(), "dup".into()));
        ev.set_attribute("a", "2");
        ev.set_attribute("b", "3");
        assert_eq!(ev.attributes(), &[("a".into(), "2".into()), ("b".into(), "3".into())]);
        assert_eq!(ev.remove_attribute("a").as_deref(), Some("2"));
        assert_eq!(ev.attribute("a"), None);
    }

    #[test]
    fn bad_data_is_invalid_input() {
        let mut ev = sample();
        ev.data = "not json".into();
        assert_eq!(ev.data_json().unwrap_err().kind(), crate::ErrorKind::InvalidInput);
    }
}
