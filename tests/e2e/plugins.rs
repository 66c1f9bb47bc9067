//! Filter, transform, fan-out and kv enrichment, each observed at the receiver.

use serde_json::{Value, json};

use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

fn outcome(contact: i64, outcome_type: &str, call: i64) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&fixture("call-tracking/call_outcome_tagged.json")).unwrap();
    ev["data"]["contact"]["id"] = json!(contact);
    ev["data"]["outcome_type"] = json!(outcome_type);
    ev["data"]["call_session_id"] = json!(call);
    serde_json::to_vec(&ev).unwrap()
}

async fn tagger(rx: &Receiver) -> TestRouter {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "call-outcome-tagger").await;
    r.routes("acme", json!({"routes": [route("tag", "calls", &["call.*"], &["call-outcome-tagger"], &rx.url("tag"))]}))
        .await;
    r
}

#[tokio::test]
async fn filter_drops_noise_and_records_why() {
    let rx = Receiver::start().await;
    let r = tagger(&rx).await;
    let spam = r.send("acme", "calls", &outcome(1, "spam", 10)).await;
    let detail = r.processed("acme", &spam).await;
    assert_eq!(detail["routes"][0]["outcome"], "dropped");
    assert!(detail["routes"][0]["detail"].as_str().unwrap().contains("noise outcome: spam"), "{detail}");
    assert_eq!(detail["deliveries"], json!([]));

    // The next, legitimate event is what the receiver sees: the spam never arrived.
    r.send("acme", "calls", &outcome(1, "quoted", 11)).await;
    let got = rx.wait_for("/tag", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["classification"], "pipeline");
    assert_eq!(got[0].json()["call_session_id"], 11);
    r.stop().await;
}

#[tokio::test]
async fn transform_passes_other_types_unchanged() {
    let rx = Receiver::start().await;
    let r = tagger(&rx).await;
    r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;
    let got = rx.wait_for("/tag", 1, WAIT).await;
    let sent: Value = serde_json::from_slice(&fixture("call-tracking/call_ended.json")).unwrap();
    assert_eq!(got[0].json(), sent["data"]);
    assert_eq!(got[0].header("switchyard-event-type"), "call.ended");
    r.stop().await;
}

#[tokio::test]
async fn kv_enrichment_attaches_the_contacts_previous_outcome() {
    let rx = Receiver::start().await;
    let r = tagger(&rx).await;
    let first = r.send("acme", "calls", &outcome(77, "follow_up", 1)).await;
    r.processed("acme", &first).await;
    r.send("acme", "calls", &outcome(77, "booked", 2)).await;
    // Another contact's history must not bleed in.
    r.send("acme", "calls", &outcome(78, "booked", 3)).await;
    let got = rx.wait_for("/tag", 3, WAIT).await;
    let by_call = |call: i64| got.iter().map(|d| d.json()).find(|d| d["call_session_id"] == call).unwrap();
    assert_eq!(by_call(1)["previous_outcome"], Value::Null);
    let previous = &by_call(2)["previous_outcome"];
    assert_eq!(previous["outcome_type"], "follow_up");
    assert_eq!(previous["classification"], "pipeline");
    assert_eq!(previous["call_session_id"], 1);
    assert_eq!(by_call(3)["previous_outcome"], Value::Null);
    r.stop().await;
}

#[tokio::test]
async fn goal_pace_alert_only_passes_when_pace_worsens() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("coach").await;
    r.source("coach", "gigi", "coaching", None).await;
    r.plugin("coach", "goal-pace-alert").await;
    r.routes("coach", json!({"routes": [route("alerts", "gigi", &[], &["goal-pace-alert"], &rx.url("alerts"))]})).await;

    let mut improving: Value = serde_json::from_slice(&fixture("coaching/goal_pace_changed.json")).unwrap();
    improving["id"] = json!("evt_better");
    improving["data"]["previous_pace"] = json!("behind");
    improving["data"]["pace"] = json!("ahead");
    let id = r.send("coach", "gigi", &serde_json::to_vec(&improving).unwrap()).await;
    let detail = r.processed("coach", &id).await;
    assert_eq!(detail["routes"][0]["outcome"], "dropped");
    assert!(detail["routes"][0]["detail"].as_str().unwrap().contains("pace did not worsen: behind -> ahead"));

    let mut worse = improving.clone();
    worse["id"] = json!("evt_worse");
    worse["data"]["previous_pace"] = json!("ahead");
    worse["data"]["pace"] = json!("behind");
    r.send("coach", "gigi", &serde_json::to_vec(&worse).unwrap()).await;
    let got = rx.wait_for("/alerts", 1, WAIT).await;
    assert_eq!(got[0].json()["message"], "Goal g_demo_01 fell behind pace (was ahead).");
    r.stop().await;
}

#[tokio::test]
async fn chained_plugins_and_several_destinations() {
    let rx = Receiver::start().await;
    let r = tagger(&rx).await;
    r.plugin("acme", "passthrough").await;
    let mut two =
        route("two", "calls", &["call.outcome_tagged"], &["passthrough", "call-outcome-tagger"], &rx.url("a"));
    two["destinations"].as_array_mut().unwrap().push(json!({"url": rx.url("b"), "secret": crate::support::SECRET}));
    r.routes("acme", json!({"routes": [two]})).await;
    r.send("acme", "calls", &outcome(5, "booked", 9)).await;
    let a = rx.wait_for("/a", 1, WAIT).await;
    let b = rx.wait_for("/b", 1, WAIT).await;
    assert_eq!(a[0].json()["classification"], "won");
    assert_eq!(a[0].body, b[0].body);
    r.stop().await;
}
