//! Hostile plugins fail only their own event, within their limits, and another tenant's next
//! event is still delivered. Every hostile plugin in `plugins/` has a test here; the ones
//! refused at upload (not a component, another world, an ungranted import) are tested at the
//! end, and crafted components over the per-component bounds in `sandbox_upload.rs`. What each costs a well-behaved tenant's throughput is measured in `tests/isolation/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::config::Config;

use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

/// Runs `hostile` for tenant "evil" and `passthrough` for tenant "good"; returns the failure
/// recorded for the evil event.
async fn contain(hostile: &str) -> String {
    contain_with(hostile, json!({}), |_| {}).await
}

/// `contain` with a config map for the hostile step and a configuration tweak.
async fn contain_with(hostile: &str, step_config: Value, tweak: impl FnOnce(&mut Config)) -> String {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(tweak).await;
    for (tenant, plugin) in [("evil", hostile), ("good", "passthrough")] {
        r.tenant(tenant).await;
        r.source(tenant, "calls", "call-tracking", None).await;
        r.plugin(tenant, plugin).await;
        let mut doc = route("r", "calls", &[], &[plugin], &rx.url(tenant));
        if tenant == "evil" {
            doc["pipeline"][0]["config"] = step_config.clone();
        }
        r.routes(tenant, json!({"routes": [doc]})).await;
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
async fn deep_recursion_overflows_the_wasm_stack_only() {
    let why = contain("hostile-recursion").await;
    assert!(why.starts_with("hostile-recursion@1: trapped"), "{why}");
    assert!(why.contains("call stack exhausted"), "{why}");
}

#[tokio::test]
async fn a_huge_output_is_refused_by_max_output_bytes() {
    // 4 MiB of valid JSON: refused while being copied out, by the budget the limits give.
    let why = contain("hostile-output").await;
    assert!(why.starts_with("hostile-output@1: invalid output: more than"), "{why}");
    assert!(why.contains("refused before copying") && why.contains("max_output_bytes 1048576"), "{why}");
    // Just over the limit: copied, measured (data with its quotes, plus the type) and refused.
    let why = contain_with("hostile-output", json!({"bytes": "1100000"}), |_| {}).await;
    assert!(why.contains("output is 1100012 bytes; the limit (max_output_bytes) is 1048576"), "{why}");
}

#[tokio::test]
async fn a_million_event_fanout_fails_within_its_limits() {
    // A million events do not even fit in the guest's memory (32 MiB here).
    let why = contain("hostile-fanout").await;
    assert_eq!(why, format!("hostile-fanout@1: memory limit exceeded ({} bytes)", 32 * 1024 * 1024));
    // 50,000 fit in the guest; the host refuses the list when it reads its length.
    let why = contain_with("hostile-fanout", json!({"count": "50000"}), |_| {}).await;
    assert!(why.starts_with("hostile-fanout@1: invalid output: more than"), "{why}");
    assert!(why.contains("refused before copying") && why.contains("max_fanout 100"), "{why}");
    // Just over max_fanout: copied and counted.
    let why = contain_with("hostile-fanout", json!({"count": "101"}), |_| {}).await;
    assert_eq!(why, "hostile-fanout@1: invalid output: emitted 101 events; the limit (max_fanout) is 100");
}

#[tokio::test]
async fn kv_spam_hits_max_kv_ops() {
    let why = contain("hostile-kv-spam").await;
    assert_eq!(why, "hostile-kv-spam@1: kv operation limit exceeded (100 calls per event)");
}

#[tokio::test]
async fn a_plugin_blocked_in_a_host_call_is_abandoned_at_the_deadline() {
    let started = Instant::now();
    let why = contain("hostile-sleep").await;
    assert_eq!(why, "hostile-sleep@1: timed out after 500ms");
    // It sleeps for an hour; two events took their deadline plus the host-call grace each.
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn output_that_is_not_json_is_refused() {
    let why = contain("hostile-invalid-json").await;
    assert!(why.starts_with("hostile-invalid-json@1: invalid output: event 0 data is not valid JSON"), "{why}");
}

#[tokio::test]
async fn creating_wasi_resources_in_a_loop_hits_max_wasi_resources() {
    let why = contain("hostile-resources").await;
    assert_eq!(
        why,
        "hostile-resources@1: WASI resource limit exceeded (1000 resources per call; plugins.max_wasi_resources)"
    );
}

#[tokio::test]
async fn a_huge_random_buffer_is_refused_before_the_host_allocates_it() {
    let limit = "the limit (plugins.max_random_bytes) is 1048576";
    // 4 GiB.
    let why = contain("hostile-random").await;
    assert_eq!(why, format!("hostile-random@1: random bytes limit exceeded: asked for 4294967296 bytes; {limit}"));
    // 16 MiB: below wasmtime's own 64 MiB default, so only our limit refuses it.
    let why = contain_with("hostile-random", json!({"bytes": "16777216"}), |_| {}).await;
    assert_eq!(why, format!("hostile-random@1: random bytes limit exceeded: asked for 16777216 bytes; {limit}"));
}

#[tokio::test]
async fn per_tenant_limits_apply_to_that_tenant_only() {
    let tighter = |c: &mut Config| {
        let evil = c.tenants.entry("evil".into()).or_default();
        evil.plugins.timeout = Some(Duration::from_millis(200));
        evil.plugins.max_kv_ops = Some(10);
        evil.plugins.max_memory_bytes = Some(8 * 1024 * 1024);
    };
    assert_eq!(contain_with("hostile-loop", json!({}), tighter).await, "hostile-loop@1: timed out after 200ms");
    let why = contain_with("hostile-kv-spam", json!({}), tighter).await;
    assert_eq!(why, "hostile-kv-spam@1: kv operation limit exceeded (10 calls per event)");
    let why = contain_with("hostile-alloc", json!({}), tighter).await;
    assert_eq!(why, format!("hostile-alloc@1: memory limit exceeded ({} bytes)", 8 * 1024 * 1024));
}

#[tokio::test]
async fn a_plugin_importing_an_ungranted_capability_is_refused_at_upload() {
    let r = TestRouter::start_with(|c| {
        c.tenants.entry("nokv".into()).or_default().grants = Some(vec![switchyard::config::Capability::Log]);
    })
    .await;
    r.tenant("nokv").await;
    let (status, body) = r.upload("nokv", "spam", crate::support::plugins::wasm("hostile-kv-spam")).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("switchyard:plugin/kv@0.1.0") && message.contains("not granted the \"kv\""), "{message}");
    assert_eq!(r.get("/v1/tenants/nokv/plugins").await["plugins"], json!([]), "nothing stored");
    r.stop().await;
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

#[tokio::test]
async fn a_failed_call_leaves_no_kv_writes_behind() {
    // hostile-kv-spam sets "spam" on every turn of its loop until max_kv_ops stops it: its
    // writes must not reach the store (nor cost a commit each).
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("evil").await;
    r.source("evil", "calls", "call-tracking", None).await;
    r.plugin("evil", "hostile-kv-spam").await;
    r.routes("evil", json!({"routes": [route("r", "calls", &[], &["hostile-kv-spam"], &rx.url("evil"))]})).await;
    let event = r.send("evil", "calls", &fixture("call-tracking/call_ended.json")).await;
    assert_eq!(r.processed("evil", &event).await["routes"][0]["outcome"], "failed");
    let tenant = r.get("/v1/tenants/evil").await["id"].as_str().unwrap().to_owned();
    let dir = r.stop().await;
    let store = crate::support::database::open_store(dir.path()).await;
    let tenant = switchyard::event::TenantId::parse(&tenant).unwrap();
    assert_eq!(store.kv_get(&tenant, "spam").await.unwrap(), None);
}

/// Routes that fan out through chained steps to several destinations.
fn fan_out_route(name: &str, steps: usize, count: u32, destinations: &[String]) -> Value {
    let step = json!({"plugin": "hostile-fanout", "config": {"count": count.to_string()}});
    let urls: Vec<Value> = destinations.iter().map(|u| json!({"url": u, "secret": crate::support::SECRET})).collect();
    json!({"name": name, "pipeline": vec![step; steps], "destinations": urls})
}

#[tokio::test]
async fn chained_fan_outs_are_bounded_per_event() {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(|c| {
        // A tenant with a small delivery budget, to test that bound with few deliveries.
        c.tenants.insert(
            "small".into(),
            switchyard::config::TenantOverride { max_deliveries_per_event: Some(20), ..Default::default() },
        );
    })
    .await;
    for tenant in ["evil", "small"] {
        r.tenant(tenant).await;
        r.source(tenant, "calls", "call-tracking", None).await;
        r.plugin(tenant, "hostile-fanout").await;
    }
    let five: Vec<String> = (0..5).map(|i| rx.url(&format!("evil{i}"))).collect();

    // What the review reproduced: two 100-way steps to five destinations, 50,000 deliveries
    // from one event. Now the second step's outputs run into max_outputs_per_event (1000).
    r.routes("evil", json!({"routes": [fan_out_route("boom", 2, 100, &five)]})).await;
    let id = r.send("evil", "calls", &fixture("call-tracking/call_ended.json")).await;
    let detail = r.processed("evil", &id).await;
    assert_eq!(detail["routes"][0]["outcome"], "failed", "{detail}");
    let why = detail["routes"][0]["detail"].as_str().unwrap();
    assert!(why.contains("the limit (max_outputs_per_event) is 1000"), "{why}");
    assert_eq!(detail["deliveries"], json!([]));

    // Deliveries: the first route queues 10 x 2 = 20, the tenant's whole budget; the second
    // route would make 21 and fails alone, with the reason.
    let two: Vec<String> = (0..2).map(|i| rx.url(&format!("small{i}"))).collect();
    let doc = json!({"routes": [
        fan_out_route("fits", 1, 10, &two),
        fan_out_route("over", 1, 1, &[rx.url("small-over")]),
    ]});
    r.routes("small", doc).await;
    let id = r.send("small", "calls", &fixture("call-tracking/call_ended.json")).await;
    let detail = r.processed("small", &id).await;
    assert_eq!(detail["routes"][0]["outcome"], "emitted", "{detail}");
    assert_eq!(detail["routes"][1]["outcome"], "failed", "{detail}");
    let why = detail["routes"][1]["detail"].as_str().unwrap();
    assert!(why.contains("would make this event's deliveries 21; the limit (max_deliveries_per_event) is 20"), "{why}");
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), 20);
    rx.wait_for("/small0", 10, WAIT).await;
    rx.wait_for("/small1", 10, WAIT).await;
    assert!(rx.on_path("/small-over").is_empty());

    // What is static is refused at apply, naming the limit.
    let eleven: Vec<String> = (0..11).map(|i| rx.url(&format!("d{i}"))).collect();
    let doc = json!({"routes": [fan_out_route("long", 11, 1, &five), fan_out_route("wide", 1, 1, &eleven)]});
    let (status, body) = r.request(reqwest::Method::PUT, "/v1/tenants/evil/routes", Some(doc)).await;
    assert_eq!(status, 422, "{body}");
    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(details[0]["path"], "routes[0].pipeline", "{body}");
    assert_eq!(details[0]["message"], "has 11 steps; the limit (max_steps_per_route) is 10");
    assert_eq!(details[1]["path"], "routes[1].destinations", "{body}");
    assert_eq!(details[1]["message"], "has 11 destinations; the limit (max_destinations_per_route) is 10");
    r.stop().await;
}
