//! Transient faults do not fail an acknowledged event for good: a plugin's `retryable` error,
//! no free plugin instance, and a tenant whose routes did not load at start-up. The event
//! stays pending and runs again (on `pipeline.retry_schedule`, a bounded number of times).

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::config::{PluginLimitsOverride, TenantOverride};

use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

fn flaky_route(rx: &Receiver, until_ms: u128) -> Value {
    let mut doc = route("enrich", "calls", &[], &["flaky-upstream"], &rx.url("hook"));
    doc["pipeline"][0]["config"] = json!({"until_ms": until_ms.to_string()});
    json!({"routes": [doc]})
}

async fn setup(r: &TestRouter, tenant: &str, plugin: &str) {
    r.tenant(tenant).await;
    r.source(tenant, "calls", "call-tracking", None).await;
    r.plugin(tenant, plugin).await;
}

#[tokio::test]
async fn a_retryable_error_runs_the_event_again_until_it_succeeds() {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(|c| c.pipeline.retry_schedule = vec![Duration::from_millis(150); 20]).await;
    setup(&r, "acme", "flaky-upstream").await;
    r.routes("acme", flaky_route(&rx, now_ms() + 600)).await;
    let id = r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;
    let detail = r.processed("acme", &id).await;
    assert_eq!(detail["routes"][0]["outcome"], "emitted", "{detail}");
    let tries = detail["tries"].as_i64().unwrap();
    assert!(tries >= 1, "the event was put back at least once: {detail}");
    assert!(detail["last_error"].as_str().unwrap().contains("the upstream is down"), "{detail}");
    rx.wait_for("/hook", 1, WAIT).await;
    r.stop().await;
}

#[tokio::test]
async fn retries_are_bounded_and_then_the_failure_is_recorded() {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(|c| c.pipeline.retry_schedule = vec![Duration::from_millis(50); 2]).await;
    setup(&r, "acme", "flaky-upstream").await;
    r.routes("acme", flaky_route(&rx, u128::MAX)).await;
    let id = r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;
    let detail = r.processed("acme", &id).await;
    assert_eq!(detail["tries"], 2, "{detail}");
    assert_eq!(detail["routes"][0]["outcome"], "failed", "{detail}");
    let why = detail["routes"][0]["detail"].as_str().unwrap();
    assert_eq!(why, "flaky-upstream@1: returned error (retryable): the upstream is down");
    assert!(rx.deliveries().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn an_event_that_finds_no_free_instance_waits_for_one() {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(|c| {
        // One instance slot, held for two seconds by a plugin that sleeps.
        c.plugins.max_instances = 1;
        c.pipeline.retry_schedule = vec![Duration::from_millis(200); 50];
        let plugins = PluginLimitsOverride { timeout: Some(Duration::from_secs(2)), ..Default::default() };
        c.tenants.insert("sleepy".into(), TenantOverride { plugins, ..Default::default() });
    })
    .await;
    setup(&r, "sleepy", "hostile-sleep").await;
    setup(&r, "good", "passthrough").await;
    r.routes("sleepy", json!({"routes": [route("r", "calls", &[], &["hostile-sleep"], &rx.url("sleepy"))]})).await;
    r.routes("good", json!({"routes": [route("r", "calls", &[], &["passthrough"], &rx.url("good"))]})).await;
    r.send("sleepy", "calls", &fixture("call-tracking/call_ended.json")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = r.send("good", "calls", &fixture("call-tracking/call_ended.json")).await;
    let detail = r.processed("good", &id).await;
    assert_eq!(detail["routes"][0]["outcome"], "emitted", "{detail}");
    assert!(detail["tries"].as_i64().unwrap() >= 1, "it found the pool full at first: {detail}");
    assert!(detail["last_error"].as_str().unwrap().contains("could not start"), "{detail}");
    rx.wait_for("/good", 1, WAIT).await;
    r.stop().await;
}

#[tokio::test]
async fn events_wait_while_their_tenants_routes_do_not_load() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    setup(&r, "acme", "passthrough").await;
    let doc = json!({"routes": [route("r", "calls", &[], &["passthrough"], &rx.url("hook"))]});
    r.routes("acme", doc.clone()).await;
    let dir = r.stop().await;

    crate::support::database::damage_stored_routes(dir.path()).await;

    let r = TestRouter::start_on(dir, |_| {}).await;
    let id = r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let detail = r.get(&format!("/v1/tenants/acme/events/{id}")).await;
    assert_eq!(detail["status"], "pending", "not processed as if the tenant had no routes: {detail}");

    // Once a version is applied, the event runs on it.
    r.routes("acme", doc).await;
    let detail = r.processed("acme", &id).await;
    assert_eq!(detail["routes"][0]["outcome"], "emitted", "{detail}");
    rx.wait_for("/hook", 1, WAIT).await;
    r.stop().await;
}
