//! Source authentication: every source of an unsigned format declares how its senders prove
//! who they are (or opts out in so many words). Strangers get 401 before the body is parsed
//! and before the rate limit, so they can neither spend the tenant's quota nor claim an
//! event's id ahead of the vendor. Vendor signatures are computed here with `hmac` directly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::signature::svix_headers;
use crate::support::{Receiver, SECRET, TestRouter, WAIT, fixture, route};

const TOKEN: &str = "tok_vendor_6f1d9c03b2a84e57";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const STRIPE_SECRET: &str = "whsec_stripe_9a8b7c6d5e4f3a2b";
const SHOPIFY_SECRET: &str = "shpss_0123456789abcdef0123456789ab";

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

fn hmac_sha256(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `X-Hub-Signature-256: sha256=<hex>`, as GitHub sends it.
fn github(secret: &str, body: &[u8]) -> (String, String) {
    header("X-Hub-Signature-256", format!("sha256={}", hex::encode(hmac_sha256(secret, &[body]))))
}

/// `Stripe-Signature: t=<unix>,v1=<hex of "t.body">`, as Stripe sends it.
fn stripe(secret: &str, t: i64, body: &[u8]) -> (String, String) {
    let v1 = hex::encode(hmac_sha256(secret, &[t.to_string().as_bytes(), b".", body]));
    header("Stripe-Signature", format!("t={t},v1={v1}"))
}

/// `X-Shopify-Hmac-Sha256: <base64>`, as Shopify sends it.
fn shopify(secret: &str, body: &[u8]) -> (String, String) {
    header("X-Shopify-Hmac-Sha256", B64.encode(hmac_sha256(secret, &[body])))
}

fn basic(user: &str, password: &str) -> (String, String) {
    header("Authorization", format!("Basic {}", B64.encode(format!("{user}:{password}"))))
}

fn crm_event(n: usize) -> Vec<u8> {
    json!({"event": "deal.created", "timestamp": "2026-03-25T18:35:00Z", "payload": {"n": n}}).to_string().into_bytes()
}

/// Asserts a 401 whose message mentions `needle` and none of the declared secrets.
fn assert_refused((status, body): &(StatusCode, Value), needle: &str) {
    assert_eq!(*status, StatusCode::UNAUTHORIZED, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message:?} should mention {needle:?}");
    for secret in [TOKEN, GITHUB_SECRET, STRIPE_SECRET, SHOPIFY_SECRET, "correct-horse-battery-staple"] {
        assert!(!message.contains(secret), "{message:?} echoes a secret");
    }
}

#[tokio::test]
async fn strangers_spend_no_rate_limit_and_cannot_claim_event_ids() {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(|c| {
        // Three events, then nothing for a long while.
        let tight = switchyard::config::TenantOverride {
            ingest_rate: Some(0.001),
            ingest_burst: Some(3),
            ..Default::default()
        };
        c.tenants.insert("acme".into(), tight);
    })
    .await;
    r.tenant("acme").await;
    r.source_with_auth("acme", "coach", "coaching", json!({"type": "bearer", "token": TOKEN})).await;
    let creds = json!({"type": "basic", "username": "tracker", "password": "correct-horse-battery-staple"});
    r.source_with_auth("acme", "calls", "call-tracking", creds).await;
    r.source("acme", "svix", "standard-webhooks", Some(SECRET)).await;
    r.routes("acme", json!({"routes": [route("all", "coach", &[], &[], &rx.url("coach"))]})).await;

    // The stranger knows the vendor's event: the same id with other data, and a byte-identical
    // call-tracking body (whose id is a hash of the bytes). Over and over.
    let real = fixture("coaching/goal_pace_changed.json");
    let mut forged: Value = serde_json::from_slice(&real).unwrap();
    forged["data"]["pace"] = json!("ahead");
    let forged = forged.to_string().into_bytes();
    let call = fixture("call-tracking/call_ended.json");
    let wrong_token = [header("Authorization", "Bearer tok_vendor_6f1d9c03b2a84e58")];
    for _ in 0..20 {
        assert_refused(&r.ingest("acme", "coach", &forged, &[]).await, "missing Authorization header");
        assert_refused(&r.ingest("acme", "coach", &real, &wrong_token).await, "credentials do not match");
        assert_refused(&r.ingest("acme", "calls", &call, &[basic("tracker", "guess-guess-guess")]).await, "match");
    }
    assert_eq!(r.event_count("acme").await, 0, "nothing a stranger sent was stored");

    // The tenant's budget of three is untouched: the signed source, then the vendor's real events.
    let user = fixture("standard-webhooks/user_created.json");
    let signed = svix_headers(SECRET, "msg_1", chrono::Utc::now().timestamp(), &user);
    assert_eq!(r.ingest("acme", "svix", &user, &signed).await.0, StatusCode::ACCEPTED);
    let (status, coach) = r.ingest("acme", "coach", &real, &[header("Authorization", format!("Bearer {TOKEN}"))]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{coach}");
    assert_eq!(coach["duplicate"], false, "the stranger's copy of the id was not taken for the event");
    let (status, calls) = r.ingest("acme", "calls", &call, &[basic("tracker", "correct-horse-battery-staple")]).await;
    assert_eq!((status, &calls["duplicate"]), (StatusCode::ACCEPTED, &json!(false)), "{calls}");
    // ...and the budget is real: a fourth event is over it.
    let again = r
        .ingest(
            "acme",
            "calls",
            &fixture("call-tracking/call_outcome_tagged.json"),
            &[basic("tracker", "correct-horse-battery-staple")],
        )
        .await;
    assert_eq!(again.0, StatusCode::TOO_MANY_REQUESTS, "{}", again.1);

    // The vendor's event, not the stranger's, is routed and delivered.
    let got = rx.wait_for("/coach", 1, WAIT).await;
    assert_eq!(got[0].json()["pace"], "behind");
    let detail = r.processed("acme", coach["id"].as_str().unwrap()).await;
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(r.event_count("acme").await, 3);
    r.stop().await;
}

#[tokio::test]
async fn each_scheme_accepts_its_credential_and_refuses_a_wrong_one() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    let hmac = |secret: &str, header: &str, extra: Value| {
        let mut auth = json!({"type": "hmac", "secret": secret, "header": header});
        auth.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        auth
    };
    let declared = [
        ("bearer", json!({"type": "bearer", "token": TOKEN})),
        ("basic", json!({"type": "basic", "username": "crm", "password": "correct-horse-battery-staple"})),
        ("github", hmac(GITHUB_SECRET, "X-Hub-Signature-256", json!({"prefix": "sha256="}))),
        (
            "stripe",
            hmac(
                STRIPE_SECRET,
                "Stripe-Signature",
                json!({"prefix": "v1=", "signed_content": "{timestamp}.{body}", "timestamp_part": "t"}),
            ),
        ),
        ("shopify", hmac(SHOPIFY_SECRET, "X-Shopify-Hmac-Sha256", json!({"encoding": "base64"}))),
    ];
    for (name, auth) in declared {
        let shown = r.source_with_auth("acme", name, "crm", auth).await;
        assert_eq!(shown["authenticated"], true, "{shown}");
        assert_eq!(shown["auth"]["type"], if name == "bearer" || name == "basic" { name } else { "hmac" });
        for secret in [TOKEN, "correct-horse-battery-staple", GITHUB_SECRET, STRIPE_SECRET, SHOPIFY_SECRET] {
            assert!(!shown.to_string().contains(secret), "{shown}");
        }
    }

    let now = chrono::Utc::now().timestamp();
    let mut n = 0;
    let mut body = || {
        n += 1;
        crm_event(n)
    };
    let ok = |(status, body): (StatusCode, Value)| assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let b = body();
    ok(r.ingest("acme", "bearer", &b, &[header("Authorization", format!("Bearer {TOKEN}"))]).await);
    assert_refused(&r.ingest("acme", "bearer", &b, &[header("Authorization", "Bearer nope")]).await, "do not match");
    assert_refused(&r.ingest("acme", "bearer", &b, &[basic("crm", TOKEN)]).await, "Bearer");

    let b = body();
    ok(r.ingest("acme", "basic", &b, &[basic("crm", "correct-horse-battery-staple")]).await);
    assert_refused(
        &r.ingest("acme", "basic", &b, &[basic("crm", "correct-horse-battery-stapl")]).await,
        "do not match",
    );

    let b = body();
    ok(r.ingest("acme", "github", &b, &[github(GITHUB_SECRET, &b)]).await);
    assert_refused(
        &r.ingest("acme", "github", &b, &[github("It's a Secret to Nobody", &b)]).await,
        "X-Hub-Signature-256",
    );
    assert_refused(&r.ingest("acme", "github", &body(), &[github(GITHUB_SECRET, &b)]).await, "no signature");

    let b = body();
    ok(r.ingest("acme", "stripe", &b, &[stripe(STRIPE_SECRET, now, &b)]).await);
    assert_refused(
        &r.ingest("acme", "stripe", &b, &[stripe("whsec_stripe_another_secret", now, &b)]).await,
        "no signature",
    );
    // A genuine signature from an hour ago: outside ingest.signature_tolerance (5 minutes).
    let b = body();
    assert_refused(&r.ingest("acme", "stripe", &b, &[stripe(STRIPE_SECRET, now - 3600, &b)]).await, "tolerance");
    ok(r.ingest("acme", "stripe", &b, &[stripe(STRIPE_SECRET, now - 60, &b)]).await);

    let b = body();
    ok(r.ingest("acme", "shopify", &b, &[shopify(SHOPIFY_SECRET, &b)]).await);
    assert_refused(
        &r.ingest("acme", "shopify", &b, &[shopify("shpss_someone_elses_secret_000", &b)]).await,
        "no signature",
    );

    assert_eq!(r.event_count("acme").await, 6, "only the authenticated requests were stored");
    r.stop().await;
}

#[tokio::test]
async fn a_signature_header_with_thousands_of_entries_is_refused_naming_the_limit() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    let auth = json!({"type": "hmac", "secret": GITHUB_SECRET, "header": "X-Hub-Signature-256", "prefix": "sha256="});
    r.source_with_auth("acme", "github", "crm", auth).await;
    r.source("acme", "svix", "standard-webhooks", Some(SECRET)).await;

    let b = crm_event(1);
    let (_, real) = github(GITHUB_SECRET, &b);
    let hostile = format!("{}{real}", "sha256=00,".repeat(2000));
    let refused = r.ingest("acme", "github", &b, &[header("X-Hub-Signature-256", hostile)]).await;
    assert_refused(&refused, "ingest.max_signature_entries");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains("16"), "{}", refused.1);

    let user = fixture("standard-webhooks/user_created.json");
    let mut svix = svix_headers(SECRET, "msg_1", chrono::Utc::now().timestamp(), &user);
    svix[2].1 = format!("{}{}", "v1,AAAA ".repeat(2000), svix[2].1);
    assert_refused(&r.ingest("acme", "svix", &user, &svix).await, "ingest.max_signature_entries");
    assert_eq!(r.event_count("acme").await, 0);
    r.stop().await;
}

#[tokio::test]
async fn unsigned_sources_must_declare_auth_or_opt_out() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    let router = &r;
    let put = |name: &str, spec: Value| {
        let path = format!("/v1/tenants/acme/sources/{name}");
        async move { router.request(reqwest::Method::PUT, &path, Some(spec)).await }
    };

    let (status, body) = put("calls", json!({"format": "call-tracking"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(r#""auth": {"type": "bearer""#) && message.contains(r#""auth": {"type": "none"}"#),
        "{message}"
    );
    let refusals = [
        (json!({"format": "crm", "secret": SECRET}), "declare auth instead"),
        (json!({"format": "svix", "secret": SECRET, "auth": {"type": "none"}}), "its own signature"),
        (json!({"format": "crm", "auth": {"type": "bearer", "token": "short"}}), "auth.token"),
        (json!({"format": "crm", "auth": {"type": "hmac", "secret": GITHUB_SECRET}}), "header"),
        (json!({"format": "crm", "auth": {"type": "sometimes"}}), "unknown variant"),
    ];
    for (spec, needle) in refusals {
        let (status, body) = put("calls", spec.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{spec}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{spec}: {body}");
    }
    assert_eq!(r.get("/v1/tenants/acme/sources").await["sources"], json!([]), "nothing refused was stored");

    // Opting out works, and says so when the source is read.
    let (status, body) = put("calls", json!({"format": "call-tracking", "auth": {"type": "none"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown = r.get("/v1/tenants/acme/sources/calls").await;
    assert_eq!((&shown["authenticated"], &shown["auth"]), (&json!(false), &json!({"type": "none"})), "{shown}");
    r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;

    // Replacing the declaration with a token closes it at once.
    r.source_with_auth("acme", "calls", "call-tracking", json!({"type": "bearer", "token": TOKEN})).await;
    let listed = r.get("/v1/tenants/acme/sources").await;
    assert_eq!(listed["sources"][0]["authenticated"], true);
    assert_eq!(listed["sources"][0]["auth"], json!({"type": "bearer", "header": "Authorization"}));
    assert!(!listed.to_string().contains(TOKEN), "the token is write-only: {listed}");
    let again = fixture("call-tracking/call_outcome_tagged.json");
    assert_refused(&r.ingest("acme", "calls", &again, &[]).await, "Authorization");
    r.stop().await;
}

#[tokio::test]
async fn unknown_tenant_and_unknown_source_get_identical_404s() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    let body = fixture("call-tracking/call_ended.json");
    let post = |path: &str| {
        r.http.post(format!("{}{path}", r.base)).header("content-type", "application/json").body(body.clone()).send()
    };
    let answer = |resp: reqwest::Response| async move {
        let status = resp.status();
        let content_type = resp.headers().get("content-type").cloned();
        (status, content_type, resp.bytes().await.unwrap())
    };
    let ghost_tenant = answer(post("/v1/ingest/ghost/calls").await.unwrap()).await;
    let ghost_source = answer(post("/v1/ingest/acme/ghost").await.unwrap()).await;
    let both = answer(post("/v1/ingest/ghost/ghost").await.unwrap()).await;
    assert_eq!(ghost_tenant.0, StatusCode::NOT_FOUND);
    assert_eq!(ghost_tenant, ghost_source, "{:?} vs {:?}", ghost_tenant.2, ghost_source.2);
    assert_eq!(ghost_tenant, both);
    r.stop().await;
}

/// A data directory as the router left it before sources declared auth: the schema up to the
/// last migration before `0007_source_auth.sql`, with sources in the old row shape.
async fn database_before_source_auth(dir: &std::path::Path) {
    let old = tempfile::tempdir().unwrap();
    let migrations = crate::support::plugins::repo_root().join("host/migrations/sqlite");
    for entry in std::fs::read_dir(&migrations).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        if name.as_str() < "0007" {
            std::fs::copy(entry.path(), old.path().join(&name)).unwrap();
        }
    }
    let url = format!("sqlite://{}?mode=rwc", dir.join("switchyard.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.path()).await.unwrap().run(&pool).await.unwrap();
    let statements = [
        "INSERT INTO tenants (id, name, created_at) VALUES ('ten_01JOLDTENANT0000000000000', 'legacy', 0)",
        "INSERT INTO sources (tenant_id, name, format, secret, created_at)
         VALUES ('ten_01JOLDTENANT0000000000000', 'calls', 'call-tracking', NULL, 0)",
        "INSERT INTO sources (tenant_id, name, format, secret, created_at)
         VALUES ('ten_01JOLDTENANT0000000000000', 'svix', 'standard-webhooks', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 0)",
    ];
    for sql in statements {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn sources_declared_before_the_upgrade_keep_working_and_show_as_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    database_before_source_auth(dir.path()).await;
    // An upgrade of an SQLite file, on either backend: PostgreSQL databases start at the
    // current schema (its migrations begin after source auth), so none predates it.
    let r = TestRouter::start_on(dir, |c| c.database_url = None).await;

    let calls = r.get("/v1/tenants/legacy/sources/calls").await;
    assert_eq!((&calls["authenticated"], &calls["auth"]), (&json!(false), &json!({"type": "none"})), "{calls}");
    let svix = r.get("/v1/tenants/legacy/sources/svix").await;
    assert_eq!((&svix["authenticated"], &svix["auth"]["type"]), (&json!(true), &json!("standard-webhooks")));

    r.send("legacy", "calls", &fixture("call-tracking/call_ended.json")).await;
    let user = fixture("standard-webhooks/user_created.json");
    let signed = svix_headers(SECRET, "msg_1", chrono::Utc::now().timestamp(), &user);
    assert_eq!(r.ingest("legacy", "svix", &user, &signed).await.0, StatusCode::ACCEPTED);
    assert_eq!(r.ingest("legacy", "svix", &user, &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(r.event_count("legacy").await, 2);
    r.stop().await;
}
