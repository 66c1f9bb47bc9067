//! One seed event per vendor: posted in the vendor's envelope, through a real plugin, out to
//! the receiver signed, with the signature checked independently.

use serde_json::json;

use crate::support::signature::{assert_signed, svix_headers};
use crate::support::{Receiver, SECRET, TestRouter, WAIT, fixture, route};

#[tokio::test]
async fn call_tracking_outcome_is_classified_and_priced() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "call-outcome-tagger").await;
    r.routes("acme", json!({"routes": [route("outcomes", "calls", &["call.outcome_tagged"], &["call-outcome-tagger"], &rx.url("calls"))]})).await;

    let id = r.send("acme", "calls", &fixture("call-tracking/call_outcome_tagged.json")).await;
    let got = rx.wait_for("/calls", 1, WAIT).await;
    assert_signed(&got[0], SECRET);
    assert_eq!(got[0].header("content-type"), "application/json");
    assert_eq!(got[0].header("switchyard-event-type"), "call.outcome_tagged");
    let data = got[0].json();
    assert_eq!(data["classification"], "won");
    assert_eq!(data["revenue_dollars"], 2500.0);
    assert_eq!(data["estimated_value_dollars"], 2500.0);
    assert_eq!(data["previous_outcome"], serde_json::Value::Null);
    assert_eq!(data["notes"], "Kitchen remodel - scheduled for April", "original fields kept");

    let detail = r.processed("acme", &id).await;
    assert_eq!(detail["routes"][0]["outcome"], "emitted");
    assert_eq!(detail["deliveries"][0]["id"], got[0].header("webhook-id"));
    r.stop().await;
}

#[tokio::test]
async fn coaching_pace_drop_becomes_a_cloudevents_alert() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("coach").await;
    r.source("coach", "gigi", "coaching", None).await;
    r.plugin("coach", "goal-pace-alert").await;
    let mut alerts = route("alerts", "gigi", &["goal.*"], &["goal-pace-alert"], &rx.url("alerts"));
    alerts["destinations"][0]["format"] = json!("cloudevents");
    r.routes("coach", json!({"routes": [alerts]})).await;

    r.send("coach", "gigi", &fixture("coaching/goal_pace_changed.json")).await;
    let got = rx.wait_for("/alerts", 1, WAIT).await;
    assert_signed(&got[0], SECRET);
    assert_eq!(got[0].header("content-type"), "application/cloudevents+json");
    let ce = got[0].json();
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "goal.pace_alert");
    assert_eq!(ce["source"], "/switchyard/coach/gigi");
    assert_eq!(ce["subject"], "acct_7f3e2b1c");
    assert_eq!(ce["time"], "2026-05-03T12:00:00Z");
    assert_eq!(ce["data"]["message"], "Goal g_demo_01 fell behind pace (was on pace).");
    assert_eq!(ce["data"]["account_id"], "acct_7f3e2b1c");
    r.stop().await;
}

#[tokio::test]
async fn svix_signed_user_event_is_verified_and_synced() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("train").await;
    r.source("train", "svix", "svix", Some(SECRET)).await;
    r.plugin("train", "svix-user-sync").await;
    r.routes(
        "train",
        json!({"routes": [route("directory", "svix", &["user.*", "org.*"], &["svix-user-sync"], &rx.url("dir"))]}),
    )
    .await;

    let body = fixture("standard-webhooks/user_created.json");
    let headers = svix_headers(SECRET, "msg_2LJq5bxm", chrono::Utc::now().timestamp(), &body);
    let (status, resp) = r.ingest("train", "svix", &body, &headers).await;
    assert_eq!(status, 202, "{resp}");
    let got = rx.wait_for("/dir", 1, WAIT).await;
    assert_signed(&got[0], SECRET);
    assert_eq!(got[0].header("switchyard-event-type"), "directory.user_created");
    let data = got[0].json();
    assert_eq!(data["action"], "created");
    assert_eq!(data["user_id"], "ae7fc971-691f-40b8-84b5-11f3608bd64d");
    assert_eq!(data["email"], "rep@example.com");
    assert_eq!(data["org_id"], "a2de69a6-f2b1-41a2-9971-89ca5dc8a068");
    r.stop().await;
}

#[tokio::test]
async fn crm_deal_fans_out_to_every_channel() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("crm").await;
    r.source("crm", "crm", "crm", None).await;
    r.plugin("crm", "crm-to-slack").await;
    let mut slack = route("slack", "crm", &["deal.*"], &["crm-to-slack"], &rx.url("slack"));
    slack["pipeline"][0]["config"] = json!({"channels": "#sales, #leadership"});
    r.routes("crm", json!({"routes": [slack]})).await;

    let id = r.send("crm", "crm", &fixture("crm/deal_created.json")).await;
    let got = rx.wait_for("/slack", 2, WAIT).await;
    let mut channels: Vec<String> = got.iter().map(|d| d.json()["channel"].as_str().unwrap().to_owned()).collect();
    channels.sort();
    assert_eq!(channels, ["#leadership", "#sales"]);
    for d in &got {
        assert_signed(d, SECRET);
        let text = d.json()["text"].as_str().unwrap().to_owned();
        assert!(text.contains("Enterprise License") && text.contains("Acme Inc."), "{text}");
    }
    assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"), "each output is its own message");
    let detail = r.processed("crm", &id).await;
    assert_eq!(detail["routes"][0]["outputs"], 2);
    r.stop().await;
}

#[tokio::test]
async fn cloudevents_without_plugins_are_forwarded_verbatim() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("ce").await;
    r.source("ce", "bus", "cloudevents", None).await;
    r.routes("ce", json!({"routes": [route("all", "bus", &[], &[], &rx.url("all"))]})).await;
    r.send("ce", "bus", &fixture("cloudevents/invoice_paid.json")).await;
    let got = rx.wait_for("/all", 1, WAIT).await;
    assert_signed(&got[0], SECRET);
    let sent: serde_json::Value = serde_json::from_slice(&fixture("cloudevents/invoice_paid.json")).unwrap();
    assert_eq!(got[0].json(), sent["data"]);
    r.stop().await;
}
