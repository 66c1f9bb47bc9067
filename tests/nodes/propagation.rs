//! Changes made through one node take effect on another at once, through the change notices:
//! the reconcile timer is set to a minute here, so it cannot be what carries them.
//! (Route versions are covered by `load.rs` and `races.rs`.)

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::start_router;
use crate::support::postgres::TestDatabase;
use crate::support::{Receiver, TestRouter, fixture, route};

const NO_RECONCILE: Duration = Duration::from_secs(60);

/// Retries `check` until it holds, for at most 5 s (a notice takes milliseconds).
async fn soon(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(5), "{what} did not reach the other node");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn two_nodes(db: &TestDatabase) -> (TestRouter, TestRouter) {
    let tweak = |c: &mut switchyard::config::Config| c.cluster.reconcile_interval = NO_RECONCILE;
    (start_router(&db.url, tweak).await, start_router(&db.url, tweak).await)
}

#[tokio::test]
async fn a_source_change_through_one_node_holds_on_the_other() {
    let db = TestDatabase::create().await;
    let (a, b) = two_nodes(&db).await;
    a.tenant("acme").await;
    a.source_with_auth("acme", "calls", "call-tracking", json!({"type": "none"})).await;
    let body = fixture("call-tracking/call_ended.json");
    // B caches the source (ingest reads it from memory after the first request).
    assert_eq!(b.ingest("acme", "calls", &body, &[]).await.0.as_u16(), 202);
    a.source_with_auth("acme", "calls", "call-tracking", json!({"type": "bearer", "token": "s3cret-token-0123456789"}))
        .await;
    soon("the source's new auth", async || b.ingest("acme", "calls", &body, &[]).await.0.as_u16() == 401).await;
    let bearer = [("authorization".to_owned(), "Bearer s3cret-token-0123456789".to_owned())];
    assert_eq!(b.ingest("acme", "calls", &body, &bearer).await.0.as_u16(), 202, "the new token is accepted on B");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_destination_enabled_through_one_node_is_sent_to_by_the_other() {
    let db = TestDatabase::create().await;
    let rx = Receiver::start().await;
    let (a, b) = two_nodes(&db).await;
    a.tenant("acme").await;
    a.source("acme", "calls", "call-tracking", None).await;
    a.routes("acme", json!({"routes": [route("all", "calls", &[], &[], &rx.url("hook"))]})).await;
    crate::until_live(&b.base, 1).await;
    let event = |id: i64| serde_json::to_vec(&crate::call_event(id)).unwrap();

    // A 410 through node A disables the destination.
    rx.respond_with(&[410]);
    let first = a.send("acme", "calls", &event(1)).await;
    soon("the 410", async || a.processed("acme", &first).await["deliveries"][0]["status"] == "dead").await;
    // B sends to it too: dead-lettered without a request, and B now holds the disabled row.
    let second = b.send("acme", "calls", &event(2)).await;
    soon("the dead letter on B", async || b.processed("acme", &second).await["deliveries"][0]["status"] == "dead")
        .await;
    assert_eq!(rx.deliveries().len(), 1, "no request after the 410");

    // Enabled through A: B's next delivery goes out.
    let (status, _) =
        a.request(Method::POST, "/v1/tenants/acme/destinations/enable", Some(json!({"url": rx.url("hook")}))).await;
    assert_eq!(status.as_u16(), 200);
    let started = Instant::now();
    let mut id = 3;
    loop {
        let sent = b.send("acme", "calls", &event(id)).await;
        let detail = b.processed("acme", &sent).await;
        let status = loop {
            let s = b.get(&format!("/v1/tenants/acme/events/{sent}")).await["deliveries"][0]["status"].clone();
            if s != "pending" {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if status == "delivered" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "B still treats the destination as disabled: {detail}");
        id += 1;
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_key_revoked_and_a_plugin_deleted_through_one_node_are_gone_on_the_other() {
    let db = TestDatabase::create().await;
    let (a, b) = two_nodes(&db).await;
    a.tenant("acme").await;
    let key = a.key("acme").await;
    assert_eq!(b.request_as(&key, Method::GET, "/v1/tenants/acme/events", None).await.0.as_u16(), 200);
    let id = a.get("/v1/tenants/acme/keys").await["keys"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(a.request(Method::DELETE, &format!("/v1/tenants/acme/keys/{id}"), None).await.0.as_u16(), 204);
    assert_eq!(
        b.request_as(&key, Method::GET, "/v1/tenants/acme/events", None).await.0.as_u16(),
        401,
        "keys are read per request"
    );

    // A plugin uploaded through A is usable through B at once (loaded on demand), and a
    // version deleted through A is gone from B.
    a.source("acme", "calls", "call-tracking", None).await;
    a.plugin("acme", "call-outcome-tagger").await;
    let doc = json!({"routes": [route("tag", "calls", &[], &["call-outcome-tagger@1"], "http://127.0.0.1:9/hook")]});
    let (status, body) = b.request(Method::PUT, "/v1/tenants/acme/routes", Some(doc)).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    b.routes("acme", json!({"routes": []})).await;
    let (status, body) =
        a.request(Method::DELETE, "/v1/tenants/acme/plugins/call-outcome-tagger/versions/1", None).await;
    assert_eq!(status.as_u16(), 204, "{body}");
    let (status, _) = b.request(Method::GET, "/v1/tenants/acme/plugins/call-outcome-tagger/versions/1", None).await;
    assert_eq!(status.as_u16(), 404);
    a.stop().await;
    b.stop().await;
}
