//! Each scheme with the right and a wrong credential; the vendors' signatures are computed
//! here with the `hmac` crate directly, not through the code under test.

use ::hmac::{Hmac, Mac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::HeaderMap;
use serde_json::json;

use super::*;

thread_local! {
    /// MACs computed on this thread, to count the work one check does.
    pub(super) static MACS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

const NOW: i64 = 1_700_000_000;
const CHECKS: Checks = Checks { now: NOW, tolerance_secs: 300, max_entries: 16 };

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    h
}

fn auth(v: serde_json::Value) -> SourceAuth {
    let a: SourceAuth = serde_json::from_value(v).unwrap();
    a.validate().unwrap();
    a
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn github_signature_the_documented_example() {
    // From GitHub's "Validating webhook deliveries".
    let github = auth(json!({
        "type": "hmac", "secret": "It's a Secret to Everybody",
        "header": "X-Hub-Signature-256", "prefix": "sha256=",
    }));
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let body = b"Hello, World!";
    github.check(&headers(&[("x-hub-signature-256", sig)]), body, &CHECKS).unwrap();
    assert_eq!(
        github.check(&headers(&[("x-hub-signature-256", sig)]), b"Hello, World?", &CHECKS),
        Err(AuthError::NoMatch("X-Hub-Signature-256".into()))
    );
    let unprefixed = sig.strip_prefix("sha256=").unwrap();
    assert!(github.check(&headers(&[("x-hub-signature-256", unprefixed)]), body, &CHECKS).is_err());
    assert_eq!(
        github.check(&HeaderMap::new(), body, &CHECKS),
        Err(AuthError::MissingHeader("X-Hub-Signature-256".into()))
    );

    // The older SHA-1 header, and SHA-512, computed independently.
    let key = b"It's a Secret to Everybody";
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(body);
    let sha1 = format!("sha1={}", hex::encode(mac.finalize().into_bytes()));
    let github_sha1 = auth(json!({
        "type": "hmac", "secret": "It's a Secret to Everybody",
        "header": "X-Hub-Signature", "algorithm": "sha1", "prefix": "sha1=",
    }));
    github_sha1.check(&headers(&[("x-hub-signature", &sha1)]), body, &CHECKS).unwrap();
    assert!(github.check(&headers(&[("x-hub-signature-256", &sha1)]), body, &CHECKS).is_err());
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
    mac.update(body);
    let sha512 = B64.encode(mac.finalize().into_bytes());
    let five12 = auth(json!({
        "type": "hmac", "secret": "It's a Secret to Everybody", "header": "X-Sig", "algorithm": "sha512", "encoding": "base64",
    }));
    five12.check(&headers(&[("x-sig", &sha512)]), body, &CHECKS).unwrap();
}

#[test]
fn shopify_signature_base64_of_the_body() {
    let secret = "shpss_0123456789abcdef0123456789abcdef";
    let shopify =
        auth(json!({"type": "hmac", "secret": secret, "header": "X-Shopify-Hmac-Sha256", "encoding": "base64"}));
    let body = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let sig = B64.encode(hmac_sha256(secret.as_bytes(), &[body]));
    shopify.check(&headers(&[("x-shopify-hmac-sha256", &sig)]), body, &CHECKS).unwrap();
    let wrong = B64.encode(hmac_sha256(b"shpss_not-the-secret-at-all-0000", &[body]));
    assert!(shopify.check(&headers(&[("x-shopify-hmac-sha256", &wrong)]), body, &CHECKS).is_err());
    let hexed = hex::encode(hmac_sha256(secret.as_bytes(), &[body]));
    assert!(shopify.check(&headers(&[("x-shopify-hmac-sha256", &hexed)]), body, &CHECKS).is_err(), "encoding counts");
}

#[test]
fn stripe_signature_with_timestamp_part_and_tolerance() {
    let secret = "whsec_test_5N1dDJhXC7MTVl0bQ0hS0j3gGB7sHEqc";
    let stripe = auth(json!({
        "type": "hmac", "secret": secret, "header": "Stripe-Signature", "prefix": "v1=",
        "signed_content": "{timestamp}.{body}", "timestamp_part": "t",
    }));
    let body = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;
    let sign = |t: i64, key: &str| hex::encode(hmac_sha256(key.as_bytes(), &[t.to_string().as_bytes(), b".", body]));
    let header = |t: i64, v1: &str| format!("t={t},v1={v1},v0={}", "0".repeat(64));
    let h = |value: String| headers(&[("stripe-signature", &value)]);

    stripe.check(&h(header(NOW, &sign(NOW, secret))), body, &CHECKS).unwrap();
    // Several v1 entries (Stripe during a secret roll): any one matching is enough.
    let rolled = format!("t={NOW},v1={},v1={}", sign(NOW, "whsec_the_old_secret_0000000000"), sign(NOW, secret));
    stripe.check(&h(rolled), body, &CHECKS).unwrap();
    assert!(stripe.check(&h(header(NOW, &sign(NOW, "whsec_another_secret_000000000"))), body, &CHECKS).is_err());
    // The timestamp is signed: moving it breaks the signature...
    assert!(stripe.check(&h(header(NOW + 1, &sign(NOW, secret))), body, &CHECKS).is_err());
    // ...and an old signature is refused even though it is genuine.
    let old = NOW - 301;
    assert_eq!(
        stripe.check(&h(header(old, &sign(old, secret))), body, &CHECKS),
        Err(AuthError::TimestampOutOfTolerance)
    );
    stripe.check(&h(header(NOW - 299, &sign(NOW - 299, secret))), body, &CHECKS).unwrap();
    assert_eq!(
        stripe.check(&h(format!("v1={}", sign(NOW, secret))), body, &CHECKS),
        Err(AuthError::MissingPart { header: "Stripe-Signature".into(), part: "t".into() })
    );
    assert_eq!(stripe.check(&h(header(0, "").replace("t=0", "t=soon")), body, &CHECKS), Err(AuthError::BadTimestamp));
}

#[test]
fn timestamp_from_a_header_of_its_own() {
    // Slack's shape: `v0=` + hex of "v0:{timestamp}:{body}", the timestamp in its own header.
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let slack = auth(json!({
        "type": "hmac", "secret": secret, "header": "X-Slack-Signature", "prefix": "v0=",
        "signed_content": "v0:{timestamp}:{body}", "timestamp_header": "X-Slack-Request-Timestamp",
    }));
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J";
    let ts = NOW.to_string();
    let sig = format!("v0={}", hex::encode(hmac_sha256(secret.as_bytes(), &[b"v0:", ts.as_bytes(), b":", body])));
    let h = headers(&[("x-slack-signature", &sig), ("x-slack-request-timestamp", &ts)]);
    slack.check(&h, body, &CHECKS).unwrap();
    let late = Checks { now: NOW + 600, ..CHECKS };
    assert_eq!(slack.check(&h, body, &late), Err(AuthError::TimestampOutOfTolerance));
    let no_ts = headers(&[("x-slack-signature", &sig)]);
    assert_eq!(slack.check(&no_ts, body, &CHECKS), Err(AuthError::MissingHeader("X-Slack-Request-Timestamp".into())));
}

#[test]
fn bearer_and_basic_credentials() {
    let token = "tok_4f9c2a7e51b8d3f6";
    let bearer = auth(json!({"type": "bearer", "token": token}));
    bearer.check(&headers(&[("authorization", &format!("Bearer {token}"))]), b"", &CHECKS).unwrap();
    bearer.check(&headers(&[("authorization", &format!("bearer  {token}"))]), b"", &CHECKS).unwrap();
    let wrong = headers(&[("authorization", "Bearer tok_4f9c2a7e51b8d3f7")]);
    assert_eq!(bearer.check(&wrong, b"", &CHECKS), Err(AuthError::WrongCredentials));
    let prefix_only = headers(&[("authorization", "Bearer tok_4f9c2a7e")]);
    assert_eq!(bearer.check(&prefix_only, b"", &CHECKS), Err(AuthError::WrongCredentials));
    assert_eq!(bearer.check(&HeaderMap::new(), b"", &CHECKS), Err(AuthError::MissingHeader("Authorization".into())));
    let basic_instead = headers(&[("authorization", &format!("Basic {}", B64.encode(format!("u:{token}"))))]);
    assert_eq!(bearer.check(&basic_instead, b"", &CHECKS), Err(AuthError::WrongScheme("Bearer")));

    let gitlab = auth(json!({"type": "bearer", "token": token, "header": "X-Gitlab-Token"}));
    gitlab.check(&headers(&[("x-gitlab-token", token)]), b"", &CHECKS).unwrap();
    assert!(gitlab.check(&headers(&[("authorization", &format!("Bearer {token}"))]), b"", &CHECKS).is_err());

    let basic = auth(json!({"type": "basic", "username": "calltracker", "password": "correct horse battery"}));
    let creds = |u: &str, p: &str| headers(&[("authorization", &format!("Basic {}", B64.encode(format!("{u}:{p}"))))]);
    basic.check(&creds("calltracker", "correct horse battery"), b"", &CHECKS).unwrap();
    assert_eq!(
        basic.check(&creds("calltracker", "correct horse battery!"), b"", &CHECKS),
        Err(AuthError::WrongCredentials)
    );
    assert_eq!(basic.check(&creds("someone", "correct horse battery"), b"", &CHECKS), Err(AuthError::WrongCredentials));
    let garbage = headers(&[("authorization", "Basic !!!")]);
    assert_eq!(basic.check(&garbage, b"", &CHECKS), Err(AuthError::WrongScheme("Basic")));
    assert_eq!(SourceAuth::None {}.check(&HeaderMap::new(), b"", &CHECKS), Ok(()));
}

#[test]
fn a_hostile_signature_header_is_refused_before_any_mac() {
    let secret = "It's a Secret to Everybody";
    let github = auth(json!({"type": "hmac", "secret": secret, "header": "X-Hub-Signature-256", "prefix": "sha256="}));
    let body = vec![b'x'; 1 << 20];
    let real = format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), &[&body])));

    // Thousands of entries (then the real one): refused, naming the limit, with no MAC computed.
    let hostile = format!("{}{real}", "sha256=00,".repeat(20_000));
    MACS.with(|n| n.set(0));
    let refused = github.check(&headers(&[("x-hub-signature-256", &hostile)]), &body, &CHECKS).unwrap_err();
    assert_eq!(refused, AuthError::TooManyEntries { header: "X-Hub-Signature-256".into(), limit: 16 });
    assert!(refused.to_string().contains("ingest.max_signature_entries"), "{refused}");
    assert_eq!(MACS.with(|n| n.get()), 0);

    // Within the limit, however many entries: the body is hashed once.
    let many = format!("{}{real}", "sha256=00, ".repeat(15));
    MACS.with(|n| n.set(0));
    github.check(&headers(&[("x-hub-signature-256", &many)]), &body, &CHECKS).unwrap();
    let junk = "sha256=00 ".repeat(16);
    assert!(github.check(&headers(&[("x-hub-signature-256", &junk)]), &body, &CHECKS).is_err());
    assert_eq!(MACS.with(|n| n.get()), 2, "one MAC per request, not one per entry");
}

#[test]
fn declarations_are_validated_and_secrets_never_shown() {
    let invalid = |v: serde_json::Value| serde_json::from_value::<SourceAuth>(v).unwrap().validate().unwrap_err();
    assert!(invalid(json!({"type": "bearer", "token": "short"})).contains("auth.token"));
    assert!(
        invalid(json!({"type": "bearer", "token": "0123456789abcdef", "header": "bad header"})).contains("auth.header")
    );
    assert!(invalid(json!({"type": "basic", "username": "a:b", "password": "0123456789abcdef"})).contains("username"));
    assert!(invalid(json!({"type": "basic", "username": "a", "password": "short"})).contains("auth.password"));
    let hmac = |extra: serde_json::Value| {
        let mut v = json!({"type": "hmac", "secret": "0123456789abcdef", "header": "X-Sig"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    assert!(invalid(hmac(json!({"secret": "short"}))).contains("auth.secret"));
    assert!(
        invalid(hmac(json!({"signed_content": "{timestamp}.{body}"}))).contains("timestamp_header or timestamp_part")
    );
    assert!(invalid(hmac(json!({"timestamp_part": "t"}))).contains("{timestamp} in signed_content"));
    assert!(invalid(hmac(json!({"prefix": "a b"}))).contains("auth.prefix"));
    assert!(invalid(hmac(json!({"signed_content": "{id}"}))).contains("signed_content"));
    assert!(serde_json::from_value::<SourceAuth>(hmac(json!({"algorithm": "md5"}))).is_err());
    assert!(serde_json::from_value::<SourceAuth>(hmac(json!({"secrett": "x"}))).is_err(), "unknown fields refused");
    assert!(serde_json::from_value::<SourceAuth>(json!({"type": "none", "token": "x"})).is_err());
    assert!(serde_json::from_value::<SourceAuth>(json!({"type": "password"})).is_err());

    // Round trip through the stored form keeps everything; the public view drops every secret.
    let stored = [
        json!({"type": "none"}),
        json!({"type": "bearer", "token": "tok_SECRET_4f9c2a7e51"}),
        json!({"type": "basic", "username": "user_SECRET", "password": "pass_SECRET_4f9c2a"}),
        hmac(
            json!({"secret": "hmac_SECRET_4f9c2a7e", "prefix": "v1=", "signed_content": "{timestamp}.{body}", "timestamp_part": "t"}),
        ),
    ];
    for v in stored {
        let a = auth(v.clone());
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<SourceAuth>(&text).unwrap(), a);
        let shown = a.public_view().to_string();
        assert!(!shown.contains("SECRET") && !format!("{a:?}").contains("SECRET"), "{shown}");
        assert_eq!(a.public_view()["type"], v["type"]);
    }
    let shown = auth(hmac(json!({}))).public_view();
    assert_eq!(shown["algorithm"], "sha256");
    assert_eq!(shown["encoding"], "hex");
    assert_eq!(shown["signed_content"], "{body}");
    assert!(!SourceAuth::None {}.is_authenticated());
}
