use std::path::Path;

use http::HeaderMap;

use super::*;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel)).unwrap()
}

fn parse_fixture(format: SourceFormat, rel: &str) -> Parsed {
    parse(format, "acme/src", &HeaderMap::new(), &fixture(rel)).unwrap()
}

#[test]
fn every_seed_fixture_parses_in_its_format() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut seen = 0;
    for dir in std::fs::read_dir(&root).unwrap().flatten().filter(|d| d.path().is_dir()) {
        let format = SourceFormat::from_name(dir.file_name().to_str().unwrap()).expect("dir names a format");
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let body = std::fs::read(file.path()).unwrap();
            let parsed = parse(format, "acme/src", &HeaderMap::new(), &body)
                .unwrap_or_else(|e| panic!("{}: {e}", file.path().display()));
            let _: serde_json::Value = serde_json::from_str(&parsed.data).unwrap();
            assert!(!parsed.event_type.is_empty());
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} fixtures");
}

#[test]
fn coaching_maps_account_to_subject() {
    let p = parse_fixture(SourceFormat::Coaching, "coaching/goal_pace_changed.json");
    assert_eq!(p.upstream_id, "evt_demo_01");
    assert_eq!(p.event_type, "goal.pace_changed");
    assert_eq!(p.subject.as_deref(), Some("acct_7f3e2b1c"));
    assert_eq!(p.time.to_rfc3339(), "2026-05-03T12:00:00+00:00");
    assert!(p.data.contains(r#""previous_pace": "on_pace""#), "data kept verbatim: {}", p.data);
}

#[test]
fn derived_ids_are_stable_per_source_and_body() {
    let body = fixture("call-tracking/call_ended.json");
    let h = HeaderMap::new();
    let a = parse(SourceFormat::CallTracking, "acme/calls", &h, &body).unwrap();
    let b = parse(SourceFormat::CallTracking, "acme/calls", &h, &body).unwrap();
    let c = parse(SourceFormat::CallTracking, "acme/other", &h, &body).unwrap();
    assert_eq!(a.upstream_id, b.upstream_id);
    assert_ne!(a.upstream_id, c.upstream_id);
    assert_eq!(a.event_type, "call.ended");
}

#[test]
fn naive_vendor_timestamps_are_utc() {
    let p = parse_fixture(SourceFormat::StandardWebhooks, "standard-webhooks/user_created.json");
    assert_eq!(p.upstream_id, "f10bd340-f3aa-42a0-b5be-3f2addee29d0");
    assert_eq!(p.time.timestamp(), 1736830299);
    assert!(p.data.starts_with("{"));
}

#[test]
fn cloudevents_id_is_scoped_by_source() {
    let p = parse_fixture(SourceFormat::Cloudevents, "cloudevents/invoice_paid.json");
    assert_eq!(p.upstream_id, "https://crm.example.com/webhooks ce-7d1f0b");
    assert_eq!(p.subject.as_deref(), Some("inv_ghi012"));
    let err = parse(
        SourceFormat::Cloudevents,
        "k",
        &HeaderMap::new(),
        br#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#,
    );
    assert!(matches!(err, Err(SourceError::Envelope { .. })));
}

#[test]
fn malformed_bodies_are_refused_with_a_reason() {
    let h = HeaderMap::new();
    assert!(matches!(parse(SourceFormat::Crm, "k", &h, b"{not json"), Err(SourceError::Json(_))));
    assert!(matches!(parse(SourceFormat::Crm, "k", &h, b"[1,2]"), Err(SourceError::Envelope { .. })));
    let missing = parse(SourceFormat::Crm, "k", &h, br#"{"timestamp":"2025-01-15T10:30:00Z","payload":{}}"#);
    assert!(missing.unwrap_err().to_string().contains("event"));
    let empty = parse(SourceFormat::CallTracking, "k", &h, br#"{"event":" ","timestamp":"2025-01-15T10:30:00Z"}"#);
    assert!(empty.unwrap_err().to_string().contains("must not be empty"));
    let bad_time =
        parse(SourceFormat::Coaching, "k", &h, br#"{"id":"1","type":"t","created_at":"yesterday","data":{}}"#);
    assert!(bad_time.unwrap_err().to_string().contains("created_at"));
}

/// The checks at `now`, with a 300 s tolerance and the default entry bound.
fn at(now: i64) -> Checks {
    Checks { now, tolerance_secs: 300, max_entries: 16 }
}

#[test]
fn standard_webhooks_signatures_are_checked() {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = fixture("standard-webhooks/org_updated.json");
    let now = 1_700_000_000;
    let mut h = HeaderMap::new();
    h.insert("svix-id", "msg_1".parse().unwrap());
    h.insert("svix-timestamp", now.to_string().parse().unwrap());
    h.insert("svix-signature", secret.sign("msg_1", now, &body).parse().unwrap());
    authenticate(SourceFormat::StandardWebhooks, Some(&secret), None, &h, &body, &at(now)).unwrap();

    // Standard Webhooks header names work too.
    let mut w = HeaderMap::new();
    w.insert("webhook-id", "msg_1".parse().unwrap());
    w.insert("webhook-timestamp", now.to_string().parse().unwrap());
    w.insert("webhook-signature", secret.sign("msg_1", now, &body).parse().unwrap());
    authenticate(SourceFormat::StandardWebhooks, Some(&secret), None, &w, &body, &at(now)).unwrap();

    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(authenticate(SourceFormat::StandardWebhooks, Some(&secret), None, &h, &tampered, &at(now)).is_err());
    assert!(authenticate(SourceFormat::StandardWebhooks, Some(&secret), None, &h, &body, &at(now + 301)).is_err());
    h.remove("svix-signature");
    let missing = authenticate(SourceFormat::StandardWebhooks, Some(&secret), None, &h, &body, &at(now)).unwrap_err();
    assert!(missing.to_string().contains("svix-signature"));
}

#[test]
fn a_source_without_a_declaration_is_refused() {
    let body = fixture("call-tracking/call_ended.json");
    let h = HeaderMap::new();
    let refused = authenticate(SourceFormat::CallTracking, None, None, &h, &body, &at(0)).unwrap_err();
    assert!(matches!(refused, SourceError::Auth(AuthError::Undeclared)), "{refused}");
    assert!(authenticate(SourceFormat::StandardWebhooks, None, None, &h, &body, &at(0)).is_err());
    authenticate(SourceFormat::CallTracking, None, Some(&SourceAuth::None {}), &h, &body, &at(0)).unwrap();
}

/// Counts the heap each thread holds, so tests can bound what one parse allocates. Test
/// builds of this crate only.
mod allocation {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    struct Counting;

    fn note(delta: isize) {
        // `try_with`: allocations during thread teardown are not counted.
        let _ = LIVE.try_with(|live| {
            let now = live.get() + delta;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    // SAFETY: every call goes to the system allocator unchanged; the bookkeeping touches only
    // const-initialised thread-local cells, which never allocate.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size() as isize);
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            note(-(layout.size() as isize));
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size as isize - layout.size() as isize);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// Runs `f` and returns the most heap it held at once on this thread, in bytes.
    pub fn peak_during<T>(f: impl FnOnce() -> T) -> usize {
        let base = LIVE.with(Cell::get);
        PEAK.with(|peak| peak.set(base));
        drop(f());
        (PEAK.with(Cell::get) - base).max(0) as usize
    }
}

/// What one parse may allocate for a body of `len` bytes: the event's parts are copies of
/// pieces of the body, so a small multiple of it, plus a constant.
fn allocation_bound(len: usize) -> usize {
    4096 + 3 * len
}

#[test]
fn a_megabyte_of_hostile_json_costs_about_a_megabyte() {
    // Shapes that make a value tree many times larger than their text, in every field the
    // adapters read; the body is at the ingest limit (1 MiB).
    let filler = |open: &str, item: &str, close: &str| {
        let n = (1024 * 1024 - 200) / (item.len() + 1);
        format!("{open}{}{close}", vec![item; n].join(","))
    };
    let shapes = [filler("[", "0", "]"), filler("{", "\"k\":{}", "}"), filler("[", "[]", "]"), filler("\"", "a", "\"")];
    let fields = ["timestamp", "created_at", "time", "event", "type", "id", "data", "payload", "specversion"];
    for format in properties::FORMATS {
        for shape in &shapes {
            for field in fields {
                let body = format!(
                    r#"{{"id":"1","type":"t","event":"e","specversion":"1.0","source":"s","timestamp":"2026-01-01T00:00:00Z","created_at":"2026-01-01T00:00:00Z","{field}":{shape}}}"#
                );
                let peak = allocation::peak_during(|| parse(format, "k", &HeaderMap::new(), body.as_bytes()));
                assert!(
                    peak <= allocation_bound(body.len()),
                    "{format:?}, {field}: {peak} bytes allocated for a {}-byte body",
                    body.len()
                );
            }
        }
    }
}

mod properties {
    //! Whatever arrives, adapters and the signature check answer with a value or an error,
    //! never a panic, and never allocate more than a small multiple of the body.
    use proptest::prelude::*;

    use super::*;

    pub(super) const FORMATS: [SourceFormat; 5] = [
        SourceFormat::Coaching,
        SourceFormat::CallTracking,
        SourceFormat::StandardWebhooks,
        SourceFormat::Crm,
        SourceFormat::Cloudevents,
    ];

    /// Bodies that are JSON objects with the envelopes' field names and values of every kind,
    /// so the fuzzing reaches past the JSON parser into each adapter.
    fn envelope() -> impl Strategy<Value = Vec<u8>> {
        let scalar = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            ".{0,40}".prop_map(serde_json::Value::from),
            Just(serde_json::json!("2026-03-25T18:35:00Z")),
            Just(serde_json::json!("2025-01-14T04:22:51.548857267")),
            Just(serde_json::json!({"nested": [1, {"x": null}]})),
        ];
        let key = prop_oneof![
            Just("id"),
            Just("type"),
            Just("event"),
            Just("timestamp"),
            Just("created_at"),
            Just("account_id"),
            Just("data"),
            Just("payload"),
            Just("specversion"),
            Just("source"),
            Just("time"),
            Just("subject"),
            Just("data_base64"),
        ];
        proptest::collection::btree_map(key, scalar, 0..10).prop_map(|m| serde_json::to_vec(&m).unwrap())
    }

    fn fuzz_cases() -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    }

    proptest! {
        // 512 cases per property in CI; `PROPTEST_CASES=100000 cargo test --lib sources` runs longer.
        #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

        #[test]
        fn adapters_never_panic_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512), f in 0..5usize) {
            let peak = allocation::peak_during(|| parse(FORMATS[f], "k", &HeaderMap::new(), &body));
            prop_assert!(peak <= allocation_bound(body.len()), "{peak} bytes for {} bytes", body.len());
        }

        #[test]
        fn adapters_never_panic_on_envelopes(body in envelope(), f in 0..5usize) {
            let peak = allocation::peak_during(|| parse(FORMATS[f], "k", &HeaderMap::new(), &body));
            prop_assert!(peak <= allocation_bound(body.len()), "{peak} bytes for {} bytes", body.len());
            if let Ok(p) = parse(FORMATS[f], "k", &HeaderMap::new(), &body) {
                prop_assert!(!p.event_type.is_empty());
                prop_assert!(serde_json::from_str::<serde_json::Value>(&p.data).is_ok());
            }
        }

        #[test]
        fn signature_check_never_panics(id in ".{0,40}", ts in ".{0,20}", sig in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
            let mut h = HeaderMap::new();
            for (name, value) in [("svix-id", &id), ("svix-timestamp", &ts), ("svix-signature", &sig)] {
                if let Ok(v) = value.parse() {
                    h.insert(name, v);
                }
            }
            let mut verdict = None;
            let peak = allocation::peak_during(|| {
                verdict = Some(authenticate(SourceFormat::StandardWebhooks, Some(&secret), None, &h, &body, &at(1_700_000_000)).is_err());
            });
            prop_assert_eq!(verdict, Some(true));
            let input = id.len() + ts.len() + sig.len() + body.len();
            prop_assert!(peak <= allocation_bound(input), "{} bytes for {} bytes", peak, input);
        }

        #[test]
        fn declared_auth_never_panics(sig in ".{0,200}", authorization in ".{0,80}", base64 in any::<bool>(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let stripe: SourceAuth = serde_json::from_value(serde_json::json!({
                "type": "hmac", "secret": "whsec_0123456789abcdef", "header": "stripe-signature", "prefix": "v1=",
                "encoding": if base64 { "base64" } else { "hex" },
                "signed_content": "{timestamp}.{body}", "timestamp_part": "t",
            })).unwrap();
            let basic: SourceAuth = serde_json::from_value(serde_json::json!({
                "type": "basic", "username": "u", "password": "0123456789abcdef",
            })).unwrap();
            let mut h = HeaderMap::new();
            for (name, value) in [("stripe-signature", &sig), ("authorization", &authorization)] {
                if let Ok(v) = value.parse() {
                    h.insert(name, v);
                }
            }
            let mut verdicts = None;
            let peak = allocation::peak_during(|| {
                let checks = at(1_700_000_000);
                verdicts = Some([stripe.check(&h, &body, &checks).is_err(), basic.check(&h, &body, &checks).is_err()]);
            });
            prop_assert_eq!(verdicts, Some([true, true]));
            let input = sig.len() + authorization.len() + body.len();
            prop_assert!(peak <= allocation_bound(input), "{} bytes for {} bytes", peak, input);
        }
    }
}
