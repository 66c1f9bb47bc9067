//! Bad inbound requests: each gets its status code and a JSON error, and nothing is stored.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::signature::svix_headers;
use crate::support::{SECRET, TestRouter, fixture};

async fn router() -> TestRouter {
    let r = TestRouter::start_with(|c| c.ingest.max_body_bytes = 4096).await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.source("acme", "svix", "standard-webhooks", Some(SECRET)).await;
    r
}

async fn refused(
    r: &TestRouter,
    source: &str,
    body: &[u8],
    headers: &[(String, String)],
    status: StatusCode,
    needle: &str,
) {
    let (got, resp) = r.ingest("acme", source, body, headers).await;
    assert_eq!(got, status, "{resp}");
    let message = resp["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message:?} should mention {needle:?}");
}

#[tokio::test]
async fn each_bad_input_gets_its_code_and_nothing_is_stored() {
    let r = router().await;
    let good = fixture("call-tracking/call_ended.json");
    let now = chrono::Utc::now().timestamp();
    let user = fixture("standard-webhooks/user_created.json");

    refused(&r, "calls", b"{\"event\": ", &[], StatusCode::BAD_REQUEST, "not valid JSON").await;
    refused(
        &r,
        "calls",
        br#"{"timestamp":"2026-03-25T18:35:00Z","data":{}}"#,
        &[],
        StatusCode::UNPROCESSABLE_ENTITY,
        "event",
    )
    .await;
    refused(
        &r,
        "calls",
        br#"{"event":"call.ended","timestamp":"last tuesday","data":{}}"#,
        &[],
        StatusCode::UNPROCESSABLE_ENTITY,
        "timestamp",
    )
    .await;
    // A control character in the type would break the event-type header of every delivery.
    refused(
        &r,
        "calls",
        br#"{"event":"call.\u0007ended","timestamp":"2026-03-25T18:35:00Z","data":{}}"#,
        &[],
        StatusCode::UNPROCESSABLE_ENTITY,
        "only visible ASCII",
    )
    .await;
    refused(&r, "nope", &good, &[], StatusCode::NOT_FOUND, "no such tenant or source").await;
    let (status, resp) = r
        .http
        .post(format!("{}/v1/ingest/ghost/calls", r.base))
        .body(good.clone())
        .send()
        .await
        .map(|x| (x.status(), x))
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{:?}", resp.text().await);

    let mut big = good.clone();
    big.truncate(big.len() - 2);
    big.extend(format!(",\"pad\":\"{}\"}}", "x".repeat(5000)).into_bytes());
    refused(&r, "calls", &big, &[], StatusCode::PAYLOAD_TOO_LARGE, "limit").await;

    let (status, _) = r
        .http
        .post(format!("{}/v1/ingest/acme/calls", r.base))
        .header("content-type", "text/plain")
        .body(good.clone())
        .send()
        .await
        .map(|x| (x.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    refused(&r, "svix", &user, &[], StatusCode::UNAUTHORIZED, "svix-id").await;
    let wrong_key = svix_headers("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_1", now, &user);
    refused(&r, "svix", &user, &wrong_key, StatusCode::UNAUTHORIZED, "no signature matches").await;
    let stale = svix_headers(SECRET, "msg_1", now - 3600, &user);
    refused(&r, "svix", &user, &stale, StatusCode::UNAUTHORIZED, "tolerance").await;
    let mut tampered = user.clone();
    tampered.insert(1, b' ');
    let signed_original = svix_headers(SECRET, "msg_1", now, &user);
    refused(&r, "svix", &tampered, &signed_original, StatusCode::UNAUTHORIZED, "no signature matches").await;

    assert_eq!(r.event_count("acme").await, 0, "no bad request stored anything");

    // The same requests done right are accepted.
    r.send("acme", "calls", &good).await;
    let (status, _) = r.ingest("acme", "svix", &user, &signed_original).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(r.event_count("acme").await, 2);
    r.stop().await;
}

#[tokio::test]
async fn the_same_upstream_event_is_accepted_once() {
    let r = router().await;
    let body = fixture("call-tracking/call_outcome_tagged.json");
    let (s1, first) = r.ingest("acme", "calls", &body, &[]).await;
    let (s2, second) = r.ingest("acme", "calls", &body, &[]).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    assert_eq!(first["id"], second["id"]);

    // Svix senders retry with the same event id and a new signature: still one event.
    let user = fixture("standard-webhooks/user_created.json");
    let now = chrono::Utc::now().timestamp();
    for attempt in 0..2 {
        let h = svix_headers(SECRET, &format!("msg_{attempt}"), now, &user);
        assert_eq!(r.ingest("acme", "svix", &user, &h).await.0, StatusCode::ACCEPTED);
    }
    assert_eq!(r.event_count("acme").await, 2);
    r.stop().await;
}

#[tokio::test]
async fn the_admin_api_needs_the_token_and_validates_input() {
    let r = router().await;
    let anon = r.http.get(format!("{}/v1/tenants", r.base)).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let wrong = r.http.get(format!("{}/v1/tenants", r.base)).bearer_auth("not-the-token").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let (status, _) = r.request(reqwest::Method::POST, "/v1/tenants", Some(json!({"name": "acme"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = r.request(reqwest::Method::POST, "/v1/tenants", Some(json!({"name": "has space"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) =
        r.request(reqwest::Method::PUT, "/v1/tenants/acme/sources/s", Some(json!({"format": "svix"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a signed format needs its secret: {body}");
    let (status, _) =
        r.request(reqwest::Method::PUT, "/v1/tenants/acme/sources/s", Some(json!({"format": "xml"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, body) = r
        .request(
            reqwest::Method::PUT,
            "/v1/tenants/acme/routes",
            Some(json!({"routes": [{"name": "x", "pipeline": [{"plugin": "missing"}], "destinations": [{"url": "http://127.0.0.1:1/", "secret": SECRET}]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"][0]["path"], "routes[0].pipeline[0].plugin");
    assert_eq!(body["error"]["details"][0]["message"], "no plugin named \"missing\"");
    let (status, _) = r.request(reqwest::Method::GET, "/v1/tenants/acme/routes", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the invalid document did not become a version");
    r.stop().await;
}

#[tokio::test]
async fn concurrent_copies_of_one_event_are_stored_once() {
    let r = router().await;
    let body = fixture("call-tracking/call_ended.json");
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (http, url, body) = (r.http.clone(), format!("{}/v1/ingest/acme/calls", r.base), body.clone());
        sends.spawn(async move {
            let resp = http.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::ACCEPTED);
            resp.json::<serde_json::Value>().await.unwrap()
        });
    }
    let answers: Vec<_> = sends.join_all().await;
    let first_id = &answers[0]["id"];
    assert!(answers.iter().all(|a| &a["id"] == first_id), "every copy names the stored event: {answers:?}");
    assert_eq!(answers.iter().filter(|a| a["duplicate"] == false).count(), 1, "exactly one copy was new");
    assert_eq!(r.event_count("acme").await, 1);
    r.stop().await;
}

#[tokio::test]
async fn hostile_encodings_headers_and_clocks_get_clear_4xx_and_store_nothing() {
    let r = router().await;
    let now = chrono::Utc::now().timestamp();
    let user = fixture("standard-webhooks/user_created.json");

    // Invalid UTF-8 inside an otherwise well-formed envelope.
    let mut bad_utf8 = br#"{"event":"call.ended","timestamp":"2026-03-25T18:35:00Z","data":{"name":""#.to_vec();
    bad_utf8.extend([0xff, 0xfe, 0xc3]);
    bad_utf8.extend(br#""}}"#);
    refused(&r, "calls", &bad_utf8, &[], StatusCode::BAD_REQUEST, "not valid JSON").await;
    // A signature timestamp from the future, beyond the tolerance, and one that is not a number.
    let future = svix_headers(SECRET, "msg_f", now + 3600, &user);
    refused(&r, "svix", &user, &future, StatusCode::UNAUTHORIZED, "tolerance").await;
    let mut garbled = svix_headers(SECRET, "msg_g", now, &user);
    garbled[1].1 = "soon".into();
    refused(&r, "svix", &user, &garbled, StatusCode::UNAUTHORIZED, "timestamp").await;

    // Huge or too many headers: 431 from the HTTP layer before any handler runs.
    let huge = r
        .http
        .post(format!("{}/v1/ingest/acme/calls", r.base))
        .header("content-type", "application/json")
        .header("x-padding", "x".repeat(512 * 1024))
        .body(fixture("call-tracking/call_ended.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let mut req = r.http.post(format!("{}/v1/ingest/acme/calls", r.base)).header("content-type", "application/json");
    for i in 0..500 {
        req = req.header(format!("x-h{i}"), "v");
    }
    let many = req.body(fixture("call-tracking/call_ended.json")).send().await.unwrap();
    assert_eq!(many.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    assert_eq!(r.event_count("acme").await, 0);
    // And the router is still fine.
    r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;
    assert_eq!(r.event_count("acme").await, 1);
    r.stop().await;
}
