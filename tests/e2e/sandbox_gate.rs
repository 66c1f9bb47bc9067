//! Dry runs and `rerun` replays run plugins under the same per-tenant limits as events
//! (`pipeline.max_in_flight_per_tenant` and the failure budget): neither is a way to run a
//! hostile plugin without limit beside other tenants.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Receiver, SECRET, TestRouter, WAIT, fixture, route};

const FIXTURE: &str = "call-tracking/call_ended";

async fn dry_run(r: &TestRouter, tenant: &str, plugin: &str) -> (StatusCode, Option<String>, Value) {
    let path = format!("/v1/tenants/{tenant}/plugins/{plugin}/versions/latest/test");
    let (status, headers, body) =
        r.request_full(ADMIN_TOKEN, Method::POST, &path, Some(json!({"fixture": FIXTURE}))).await;
    (status, headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned()), body)
}

#[tokio::test]
async fn concurrent_dry_runs_of_a_hostile_plugin_are_held_to_the_tenants_limits() {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(|c| c.pipeline.max_in_flight_per_tenant = 3).await;
    for (tenant, plugin) in [("evil", "hostile-loop"), ("good", "passthrough")] {
        r.tenant(tenant).await;
        r.source(tenant, "calls", "call-tracking", None).await;
        r.plugin(tenant, plugin).await;
        r.routes(tenant, json!({"routes": [route("r", "calls", &[], &[plugin], &rx.url(tenant))]})).await;
    }
    // Eight at once: three run (each to its 500 ms deadline), five are refused at once.
    let flood = futures::future::join_all((0..8).map(|_| dry_run(&r, "evil", "hostile-loop")));
    let beside = async {
        // Meanwhile the other tenant's dry run and event go through promptly.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let (status, _, body) = dry_run(&r, "good", "passthrough").await;
        assert_eq!((status, body["verdict"].as_str()), (StatusCode::OK, Some("pass")), "{body}");
        let event = r.send("good", "calls", &fixture(&format!("{FIXTURE}.json"))).await;
        r.processed("good", &event).await;
        started.elapsed()
    };
    let (answers, good_took) = tokio::join!(flood, beside);
    assert!(good_took < Duration::from_secs(2), "the good tenant waited {good_took:?}");
    let ran: Vec<_> = answers.iter().filter(|(s, _, _)| *s == StatusCode::OK).collect();
    assert_eq!(ran.len(), 3, "{answers:?}");
    for (_, _, body) in &ran {
        assert_eq!(body["reason"], "hostile-loop@1: timed out after 500ms");
    }
    for (status, retry_after, body) in answers.iter().filter(|(s, _, _)| *s != StatusCode::OK) {
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("(pipeline.max_in_flight_per_tenant is 3)"), "{message}");
    }

    // 1.5 s of failing calls against a 1 s burst: in debt for about 5 s, at 0.1 s per second.
    let (status, retry_after, body) = dry_run(&r, "evil", "hostile-loop").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("pipeline.failure_time_share"), "{body}");
    let secs: u64 = retry_after.unwrap().parse().unwrap();
    assert!((4..=6).contains(&secs), "Retry-After {secs}");
    // The debt holds the tenant's events back too.
    let event = r.send("evil", "calls", &fixture(&format!("{FIXTURE}.json"))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let detail = r.get(&format!("/v1/tenants/evil/events/{event}")).await;
    assert_eq!(detail["status"], "pending", "{detail}");
    r.stop().await;
}

#[tokio::test]
async fn rerun_replays_wait_for_and_charge_the_failure_budget() {
    let rx = Receiver::start().await;
    rx.respond_with(&[500]);
    let r = TestRouter::start_with(|c| {
        // 200 ms of failing calls at once, earned back at 200 ms per second.
        c.pipeline.failure_time_burst = Duration::from_millis(200);
        c.pipeline.failure_time_share = 0.2;
    })
    .await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "passthrough").await;
    r.plugin("acme", "hostile-loop").await;
    let doc = |plugin: &str| {
        json!({"routes": [{"name": "calls", "pipeline": [{"plugin": plugin}],
            "destinations": [{"url": rx.url("hook"), "secret": SECRET, "retry_schedule": ["0s"]}]}]})
    };
    r.routes("acme", doc("passthrough")).await;
    r.send("acme", "calls", &fixture(&format!("{FIXTURE}.json"))).await;
    let deadline = Instant::now() + WAIT;
    while r.get("/v1/tenants/acme/deliveries?status=dead").await["deliveries"].as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The chain now spins to its deadline: a rerun fails after 500 ms, charged to the budget.
    r.routes("acme", doc("hostile-loop")).await;
    let replay = "/v1/tenants/acme/deliveries/replay";
    let rerun = r.ok(Method::POST, replay, json!({"mode": "rerun"})).await;
    assert!(rerun["skipped"][0]["reason"].as_str().unwrap().contains("timed out after 500ms"), "{rerun}");
    // In debt (0.2 - 0.5 s = -0.3 s): a dry run is refused, naming the budget...
    let (status, _, body) = dry_run(&r, "acme", "hostile-loop").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("pipeline.failure_time_share"), "{body}");
    // ...and another rerun waits, like an event, until the debt is paid (1.5 s), then runs.
    let started = Instant::now();
    let rerun = r.ok(Method::POST, replay, json!({"mode": "rerun"})).await;
    assert!(rerun["skipped"][0]["reason"].as_str().unwrap().contains("timed out after 500ms"), "{rerun}");
    assert!(started.elapsed() >= Duration::from_millis(1500), "ran after {:?}", started.elapsed());
    r.stop().await;
}
