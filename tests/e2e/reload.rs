//! Applying routes makes a new version live for the events that follow; each event records the
//! version it ran on.

use serde_json::json;

use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

#[tokio::test]
async fn a_new_route_version_takes_over_for_new_events() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    assert_eq!(r.routes("acme", json!({"routes": [route("r", "crm", &[], &[], &rx.url("v1"))]})).await, 1);
    let first = r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    assert_eq!(r.processed("acme", &first).await["route_version"], 1);
    rx.wait_for("/v1", 1, WAIT).await;

    assert_eq!(r.routes("acme", json!({"routes": [route("r", "crm", &[], &[], &rx.url("v2"))]})).await, 2);
    let second = r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    assert_eq!(r.processed("acme", &second).await["route_version"], 2);
    rx.wait_for("/v2", 1, WAIT).await;
    assert_eq!(rx.on_path("/v1").len(), 1, "the old version got only the event before the swap");

    let live = r.get("/v1/tenants/acme/routes").await;
    assert_eq!(live["version"], 2);
    assert_eq!(live["document"]["routes"][0]["destinations"][0]["url"], rx.url("v2"));
    r.stop().await;
}

#[tokio::test]
async fn routes_survive_a_restart() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "call-outcome-tagger").await;
    r.routes("acme", json!({"routes": [route("r", "calls", &[], &["call-outcome-tagger"], &rx.url("hook"))]})).await;
    let dir = r.stop().await;

    // Second start: routes and plugins load from the store (the plugin from its cached artifact).
    let artifacts = std::fs::read_dir(dir.path().join("artifacts")).unwrap().count();
    assert!(artifacts >= 1, "compiled artifact cached on disk");
    let r = TestRouter::start_on(dir, |_| {}).await;
    r.send("acme", "calls", &fixture("call-tracking/call_outcome_tagged.json")).await;
    let got = rx.wait_for("/hook", 1, WAIT).await;
    assert_eq!(got[0].json()["classification"], "won");
    r.stop().await;
}
