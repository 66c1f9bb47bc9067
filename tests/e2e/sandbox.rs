//! Hostile plugins fail only their own event, within their limits, and another tenant's next
//! event is still delivered.

use std::time::Duration;

use serde_json::json;

use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

/// Runs `hostile` for tenant "evil" and `passthrough` for tenant "good"; returns the failure
/// recorded for the evil event.
async fn contain(hostile: &str) -> String {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    for (tenant, plugin) in [("evil", hostile), ("good", "passthrough")] {
        r.tenant(tenant).await;
        r.source(tenant, "calls", "call-tracking", None).await;
        r.plugin(tenant, plugin).await;
        r.routes(tenant, json!({"routes": [route("r", "calls", &[], &[plugin], &rx.url(tenant))]})).await;
    }
    let evil = r.send("evil", "calls", &fixture("call-tracking/call_ended.json")).await;
    let good = r.send("good", "calls", &fixture("call-tracking/call_ended.json")).await;
    rx.wait_for("/good", 1, WAIT).await;
    r.processed("good", &good).await;

    let detail = r.processed("evil", &evil).await;
    assert_eq!(detail["routes"][0]["outcome"], "failed", "{detail}");
    assert_eq!(detail["deliveries"], json!([]));
    assert!(rx.on_path("/evil").is_empty());
    // The router is still healthy and takes more work from the same hostile tenant.
    let again = r.send("evil", "calls", &fixture("call-tracking/message_created.json")).await;
    assert_eq!(r.processed("evil", &again).await["routes"][0]["outcome"], "failed");
    r.stop().await;
    detail["routes"][0]["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_trapping_plugin_reports_its_panic() {
    let why = contain("hostile-trap").await;
    assert!(why.contains("hostile-trap@1: trapped"), "{why}");
    assert!(why.contains("deliberate panic on call.ended"), "panic message from stderr: {why}");
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_the_deadline() {
    let why = contain("hostile-loop").await;
    assert_eq!(why, "hostile-loop@1: timed out after 500ms");
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_cap() {
    let why = contain("hostile-alloc").await;
    assert_eq!(why, format!("hostile-alloc@1: memory limit exceeded ({} bytes)", 32 * 1024 * 1024));
}

#[tokio::test]
async fn uploads_that_are_not_plugins_are_refused_with_the_reason() {
    let r = TestRouter::start().await;
    r.tenant("t").await;
    let (status, body) = r.upload("t", "junk", b"definitely not wasm".to_vec()).await;
    assert_eq!(status, 422);
    assert!(body["error"]["message"].as_str().unwrap().contains("not a valid WebAssembly component"), "{body}");
    // A core module (not a component): the smallest valid one.
    let (status, body) = r.upload("t", "core", b"\0asm\x01\0\0\0".to_vec()).await;
    assert_eq!(status, 422, "{body}");
    // A real component, but of another world.
    let (status, body) = r.upload("t", "wrong", crate::support::plugins::wasm("hostile-wrong-world")).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("does not implement the switchyard:plugin world"), "{message}");
    let plugins = r.get("/v1/tenants/t/plugins").await;
    assert_eq!(plugins["plugins"], json!([]), "nothing stored");
    r.stop().await;
}

#[tokio::test]
async fn a_flooding_tenant_with_slow_plugins_does_not_hold_up_others() {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(|c| {
        c.pipeline.concurrency = 4;
        c.pipeline.max_in_flight_per_tenant = 2;
        // Long enough that sending the flood, on a loaded machine, takes far less than one
        // evil event: the assertion below is then about ordering, not speed.
        c.plugins.timeout = Duration::from_secs(2);
    })
    .await;
    for (tenant, plugin) in [("evil", "hostile-loop"), ("good", "passthrough")] {
        r.tenant(tenant).await;
        r.source(tenant, "calls", "call-tracking", None).await;
        r.plugin(tenant, plugin).await;
        r.routes(tenant, json!({"routes": [route("r", "calls", &[], &[plugin], &rx.url(tenant))]})).await;
    }
    // The flood arrives first: 12 events that each burn the whole 2 s deadline.
    let template: serde_json::Value = serde_json::from_slice(&fixture("call-tracking/call_ended.json")).unwrap();
    for i in 0..12 {
        let mut ev = template.clone();
        ev["data"]["id"] = json!(i);
        r.send("evil", "calls", &serde_json::to_vec(&ev).unwrap()).await;
    }
    for i in 0..3 {
        let mut ev = template.clone();
        ev["data"]["id"] = json!(100 + i);
        r.send("good", "calls", &serde_json::to_vec(&ev).unwrap()).await;
    }
    rx.wait_for("/good", 3, WAIT).await;
    // Without fairness the good events would queue behind most of the flood (4 workers,
    // oldest first). With it, they run beside the first evil events, not after them.
    let evil_done = r.get("/v1/tenants/evil/events?status=processed").await["events"].as_array().unwrap().len();
    assert!(evil_done <= 2, "the good tenant waited for {evil_done} of the flood's events");
    r.stop().await;
}
