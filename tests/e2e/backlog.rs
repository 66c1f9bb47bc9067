//! Overload: when ingest outruns processing, the backlog is bounded. Past
//! `ingest.max_backlog_per_tenant` pending events ingest answers 503 with `Retry-After` and
//! stores nothing; what memory could not hold (`pipeline.queue_per_tenant`) waits in the
//! database and is processed later. A sender that retries, as webhook senders do, gets every
//! event delivered, each once.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

#[tokio::test]
async fn a_full_backlog_refuses_with_retry_after_and_what_it_held_back_is_delivered() {
    const BACKLOG: u64 = 12;
    const EVENTS: i64 = 40;
    let rx = Receiver::start().await;
    let router = TestRouter::start_with(|c| {
        c.ingest.max_backlog_per_tenant = BACKLOG;
        // Two events in memory: the rest of the backlog is read back from the database.
        c.pipeline.queue_per_tenant = 2;
        // Slow processing: every event also runs a route whose plugin sleeps until its
        // deadline. Its failures must not throttle the tenant for this test.
        c.plugins.timeout = Duration::from_millis(50);
        c.pipeline.failure_time_share = 100.0;
    })
    .await;
    router.tenant("acme").await;
    router.source("acme", "calls", "call-tracking", None).await;
    router.plugin("acme", "hostile-sleep").await;
    let doc = json!({"routes": [
        route("deliver", "calls", &[], &[], &rx.url("hook")),
        route("slow", "calls", &[], &["hostile-sleep"], &rx.url("never")),
    ]});
    router.routes("acme", doc).await;

    let template: Value = serde_json::from_slice(&fixture("call-tracking/call_ended.json")).unwrap();
    let mut refusals = 0;
    let mut waited = BTreeMap::new();
    for i in 0..EVENTS {
        let mut ev = template.clone();
        ev["data"]["id"] = json!(i);
        let body = serde_json::to_vec(&ev).unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let resp = router
                .http
                .post(format!("{}/v1/ingest/acme/calls", router.base))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            if resp.status() == StatusCode::ACCEPTED {
                break;
            }
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "only the backlog bound refuses");
            let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry_after >= 1, "Retry-After tells the sender to wait");
            let error: Value = resp.json().await.unwrap();
            assert_eq!(error["error"]["code"], "backlog_full");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains("ingest.max_backlog_per_tenant"), "the refusal names the limit: {message}");
            refusals += 1;
            *waited.entry(i).or_insert(0) += 1;
            assert!(tokio::time::Instant::now() < deadline, "event {i} was refused for {WAIT:?}");
            // Shorter than Retry-After: the test has no time to lose.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pending =
            router.get("/v1/tenants/acme/events?status=pending&limit=1000").await["events"].as_array().unwrap().len()
                as u64;
        assert!(pending <= BACKLOG, "the backlog stays within its bound: {pending} pending");
    }
    assert!(refusals > 0, "the bound engaged: {EVENTS} events at ~3/s of processing");

    // Everything acknowledged is delivered, each event once: what waited in the database
    // and was read back by the poll did not run twice.
    rx.wait_for("/hook", EVENTS as usize, WAIT * 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids: Vec<i64> = rx.on_path("/hook").iter().map(|d| d.json()["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, (0..EVENTS).collect::<Vec<_>>(), "every event delivered, once");
    eprintln!(
        "backlog bound {BACKLOG}: {refusals} refusals (503 + Retry-After) over {} events, all {EVENTS} delivered",
        waited.len()
    );
}
