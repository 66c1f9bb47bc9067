//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): a `traceparent` that arrives
//! with an event at ingest is kept with it, shown to plugins as the CloudEvents
//! distributed-tracing attribute `traceparent`, and continued on each delivery (same trace
//! id, a new parent id), so the sender's trace reaches the receiver.
//!
//! With `[tracing] otlp_endpoint` set, the router also records its own spans in that trace
//! and exports them ([`otlp`]); the ids it stores and sends are then its spans' ids.

pub mod otlp;

pub use otlp::{KeyValue, Span, SpanKind, Tracer};

/// The attribute (and header) name.
pub const TRACEPARENT: &str = "traceparent";

/// A valid version-00 `traceparent` header value, lowercased; None for anything else (the
/// specification says to ignore an invalid one, not to refuse the request).
pub fn parse(value: &str) -> Option<String> {
    let value = value.trim().to_ascii_lowercase();
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    match parts[..] {
        ["00", trace, parent, flags]
            if hex(trace, 32) && hex(parent, 16) && hex(flags, 2) && !zero(trace) && !zero(parent) =>
        {
            Some(value)
        }
        _ => None,
    }
}

/// The `traceparent` of a call made on behalf of `parent`: the same trace and flags, with a
/// new random parent id.
pub fn child(parent: &str) -> String {
    let mut parts = parent.split('-');
    let (version, trace, _, flags) = (parts.next(), parts.next(), parts.next(), parts.next());
    let span = loop {
        let id: u64 = rand::random();
        if id != 0 {
            break id;
        }
    };
    format!("{}-{}-{span:016x}-{}", version.unwrap_or("00"), trace.unwrap_or_default(), flags.unwrap_or("01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_specifications_example_and_refuses_the_rest() {
        assert_eq!(parse(SAMPLE).as_deref(), Some(SAMPLE));
        assert_eq!(parse(&SAMPLE.to_uppercase()).as_deref(), Some(SAMPLE));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_child_continues_the_trace_with_a_new_parent() {
        let c = child(SAMPLE);
        assert_eq!(parse(&c).as_deref(), Some(c.as_str()));
        assert!(c.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && c.ends_with("-01"), "{c}");
        assert_ne!(c, SAMPLE);
    }
}
