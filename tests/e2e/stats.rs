//! `GET /v1/tenants/{t}/stats`: the console's figures for the last hour, per minute.

use serde_json::json;

use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

#[tokio::test]
async fn stats_count_attempts_by_outcome_and_plugin_calls() {
    let r = TestRouter::start().await;
    let rx = Receiver::start().await;
    // The test schedule has three attempts: two refusals, then the third is accepted.
    rx.respond_with(&[500, 404]);
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "passthrough").await;
    r.routes("acme", json!({"routes": [route("r", "calls", &[], &["passthrough"], &rx.url("hook"))]})).await;
    let event = r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;
    r.processed("acme", &event).await;
    rx.wait_for("/hook", 3, WAIT).await;

    // The attempt is recorded after the receiver answered: wait until all three are stored.
    let deadline = tokio::time::Instant::now() + WAIT;
    let stats = loop {
        let stats = r.get("/v1/tenants/acme/stats").await;
        let sum = |k: &str| -> i64 {
            stats["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|d| d["minutes"].as_array().unwrap())
                .map(|m| m[k].as_i64().unwrap())
                .sum()
        };
        if sum("delivered") == 1 {
            assert_eq!((sum("failed"), sum("error")), (2, 0), "{stats}");
            break stats;
        }
        assert!(tokio::time::Instant::now() < deadline, "attempts not counted: {stats}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(stats["bucket_seconds"], 60);
    assert_eq!(stats["deliveries"][0]["url"], rx.url("hook"));
    let plugins = stats["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 1, "{stats}");
    assert_eq!(plugins[0]["plugin"], "passthrough");
    let calls: u64 = plugins[0]["minutes"].as_array().unwrap().iter().map(|m| m["calls"].as_u64().unwrap()).sum();
    assert_eq!(calls, 1, "one pipeline call; dry runs are not counted");
    let m = &plugins[0]["minutes"][0];
    assert!(m["p95_us"].as_u64().unwrap() <= m["max_us"].as_u64().unwrap(), "{m}");

    // Another tenant's figures are its own.
    r.tenant("globex").await;
    let other = r.get("/v1/tenants/globex/stats").await;
    assert!(
        other["deliveries"].as_array().unwrap().is_empty() && other["plugins"].as_array().unwrap().is_empty(),
        "{other}"
    );
}
