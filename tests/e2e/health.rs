//! `/healthz` and `/readyz`: readiness names what is not ready, reveals tenant names only to
//! the admin token, and turns 503 as soon as shutdown begins.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Receiver, TestRouter, route};

async fn readyz(r: &TestRouter, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = r.http.get(format!("{}/readyz", r.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn ready_when_the_database_answers_and_routes_are_loaded() {
    let r = TestRouter::start().await;
    let (status, body) = readyz(&r, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["routes"]["failed_tenants"], 0);
    assert_eq!(body["reasons"], json!([]));
    let healthz = r.http.get(format!("{}/healthz", r.base)).send().await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    r.stop().await;
}

#[tokio::test]
async fn not_ready_while_a_tenants_stored_routes_do_not_load() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.plugin("acme", "passthrough").await;
    r.routes("acme", json!({"routes": [route("r", "calls", &[], &["passthrough"], &rx.url("hook"))]})).await;
    let dir = r.stop().await;

    crate::support::database::damage_stored_routes(dir.path()).await;

    let r = TestRouter::start_on(dir, |_| {}).await;
    // A stranger learns the count and the reason, not the name.
    let (status, body) = readyz(&r, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["routes"]["failed_tenants"], 1);
    assert!(body["checks"]["routes"].get("tenants").is_none(), "no names for strangers: {body}");
    assert!(body["reasons"][0].as_str().unwrap().contains("routes of 1 tenant(s) failed to load"), "{body}");
    assert!(!body.to_string().contains("acme"), "{body}");
    // A tenant key is no better than a stranger here.
    let key = r.key("acme").await;
    let (_, body) = readyz(&r, Some(&key)).await;
    assert!(!body.to_string().contains("acme"), "{body}");
    // The admin token sees which tenant.
    let (status, body) = readyz(&r, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["routes"]["tenants"], json!(["acme"]), "{body}");

    // Applying a version of its routes makes the router ready again.
    r.routes("acme", json!({"routes": [route("r", "calls", &[], &["passthrough"], &rx.url("hook"))]})).await;
    let (status, body) = readyz(&r, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    r.stop().await;
}

#[tokio::test]
async fn not_ready_as_soon_as_shutdown_begins() {
    // The delay keeps the server answering after shutdown begins, as a load balancer needs.
    let r = TestRouter::start_with(|c| c.server.shutdown_delay = Duration::from_secs(3)).await;
    assert_eq!(readyz(&r, None).await.0, StatusCode::OK);
    r.begin_stop();
    let (status, body) = readyz(&r, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["reasons"], json!(["shutting down"]), "{body}");
    assert_eq!(body["checks"]["shutting_down"], true);
    // Still alive and still serving the API meanwhile.
    let healthz = r.http.get(format!("{}/healthz", r.base)).send().await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    assert_eq!(r.request(reqwest::Method::GET, "/v1/tenants", None).await.0, StatusCode::OK);
    r.stop().await;
}
