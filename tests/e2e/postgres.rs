//! The router on PostgreSQL (`database_url`): a seed event through a plugin route to a real
//! receiver, and the same state after a restart. The rest of the suite runs on PostgreSQL
//! with `SWITCHYARD_E2E_BACKEND=postgres`.

use serde_json::{Value, json};

use crate::support::postgres::TestDatabase;
use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

#[tokio::test]
async fn a_seed_event_runs_through_a_plugin_route_to_the_receiver_on_postgres() {
    let db = TestDatabase::create().await;
    let rx = Receiver::start().await;
    let url = db.url.clone();
    let r = TestRouter::start_with(|c| c.database_url = Some(url)).await;
    r.tenant("acme").await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "call-outcome-tagger").await;
    let routes = json!({"routes": [route("tag", "calls", &["call.*"], &["call-outcome-tagger"], &rx.url("tag"))]});
    r.routes("acme", routes).await;

    let id = r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;
    let got = rx.wait_for("/tag", 1, WAIT).await;
    let sent: Value = serde_json::from_slice(&fixture("call-tracking/call_ended.json")).unwrap();
    assert_eq!(got[0].json(), sent["data"]);
    assert_eq!(got[0].header("switchyard-event-type"), "call.ended");
    let detail = r.processed("acme", &id).await;
    assert_eq!(detail["routes"][0]["outcome"], "emitted", "{detail}");

    // A restart on the same database finds the event, its delivery and the live routes.
    let dir = r.stop().await;
    let url = db.url.clone();
    let r = TestRouter::start_on(dir, |c| c.database_url = Some(url)).await;
    let detail = r.processed("acme", &id).await;
    assert_eq!(detail["deliveries"][0]["status"], "delivered", "{detail}");
    r.send("acme", "calls", &fixture("call-tracking/call_outcome_tagged.json")).await;
    rx.wait_for("/tag", 2, WAIT).await;
    r.stop().await;
}
