//! Retries, dead letters and replay against a receiver that fails on purpose.

use std::time::Duration;

use serde_json::json;

use crate::support::signature::assert_signed;
use crate::support::{Receiver, SECRET, TestRouter, WAIT, fixture, route};

async fn forwarding(rx: &Receiver) -> TestRouter {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    r.routes("acme", json!({"routes": [route("all", "crm", &[], &[], &rx.url("hook"))]})).await;
    r
}

async fn delivery_of(r: &TestRouter, event: &str) -> serde_json::Value {
    let detail = r.processed("acme", event).await;
    let id = detail["deliveries"][0]["id"].as_str().unwrap().to_owned();
    r.get(&format!("/v1/tenants/acme/deliveries/{id}")).await
}

async fn wait_status(r: &TestRouter, event: &str, status: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = delivery_of(r, event).await;
        if d["status"] == status {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "delivery never became {status}: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_same_webhook_id() {
    let rx = Receiver::start().await;
    rx.respond_with(&[500]);
    let r = forwarding(&rx).await;
    let event = r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    let got = rx.wait_for("/hook", 2, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    assert_signed(&got[1], SECRET);

    let d = wait_status(&r, &event, "delivered").await;
    assert_eq!(d["attempts"], 2);
    let log = d["attempts_log"].as_array().unwrap();
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["error"], "HTTP 500");
    assert_eq!(log[1]["status_code"], 200);
    r.stop().await;
}

#[tokio::test]
async fn exhausted_retries_dead_letter_and_replay_delivers() {
    let rx = Receiver::start().await;
    rx.respond_with(&[503, 503, 503]);
    let r = forwarding(&rx).await;
    let event = r.send("acme", "crm", &fixture("crm/invoice_created.json")).await;
    let dead = wait_status(&r, &event, "dead").await;
    assert_eq!(dead["attempts"], 3, "one try per schedule entry");
    assert_eq!(dead["last_error"], "HTTP 503");
    let listed = r.get("/v1/tenants/acme/deliveries?status=dead").await;
    assert_eq!(listed["deliveries"].as_array().unwrap().len(), 1);

    let id = dead["id"].as_str().unwrap();
    let (status, _) = r.request(reqwest::Method::POST, &format!("/v1/tenants/acme/deliveries/{id}/replay"), None).await;
    assert_eq!(status, 202);
    let delivered = wait_status(&r, &event, "delivered").await;
    assert_eq!(delivered["attempts"], 4);
    let got = rx.wait_for("/hook", 4, WAIT).await;
    assert!(got.iter().all(|d| d.header("webhook-id") == id));
    r.stop().await;
}

#[tokio::test]
async fn gone_stops_retrying_at_once() {
    let rx = Receiver::start().await;
    rx.respond_with(&[410]);
    let r = forwarding(&rx).await;
    let event = r.send("acme", "crm", &fixture("crm/client_created.json")).await;
    let dead = wait_status(&r, &event, "dead").await;
    assert_eq!(dead["attempts"], 1);
    assert!(dead["last_error"].as_str().unwrap().contains("gone"));
    r.stop().await;
}

#[tokio::test]
async fn redirects_are_failures_not_followed() {
    let rx = Receiver::start().await;
    rx.respond_with(&[307, 307, 307]);
    let r = forwarding(&rx).await;
    let event = r.send("acme", "crm", &fixture("crm/quotation_created.json")).await;
    let dead = wait_status(&r, &event, "dead").await;
    assert_eq!(dead["last_error"], "HTTP 307");
    r.stop().await;
}

#[tokio::test]
async fn a_senders_trace_continues_on_every_delivery_and_retry() {
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let rx = Receiver::start().await;
    // The first try fails: the retry, read back from the database, carries it too.
    rx.respond_with(&[500]);
    let r = forwarding(&rx).await;
    let body = fixture("crm/lead_created.json");
    let (status, sent) = r.ingest("acme", "crm", &body, &[("traceparent".into(), PARENT.to_uppercase())]).await;
    assert_eq!(status, 202, "{sent}");
    let got = rx.wait_for("/hook", 2, WAIT).await;
    let sent_on: Vec<&str> = got.iter().map(|d| d.header("traceparent")).collect();
    for tp in &sent_on {
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && tp.ends_with("-01"), "{tp}");
        assert_ne!(*tp, PARENT, "the delivery is a new span of the trace");
    }
    assert_eq!(sent_on[0], sent_on[1], "a retry is the same delivery");
    let detail = r.get(&format!("/v1/tenants/acme/events/{}", sent["id"].as_str().unwrap())).await;
    assert_eq!(detail["traceparent"], PARENT, "{detail}");

    // An invalid one is ignored, as the specification says: accepted, and nothing sent on.
    let other = fixture("crm/deal_created.json");
    let (status, _) = r.ingest("acme", "crm", &other, &[("traceparent".into(), "00-zz-00-01".into())]).await;
    assert_eq!(status, 202);
    let got = rx.wait_for("/hook", 3, WAIT).await;
    assert_eq!(got[2].header("traceparent"), "");
    r.stop().await;
}
