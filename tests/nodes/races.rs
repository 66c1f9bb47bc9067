//! Checks that must hold across nodes, raced through two nodes at once: a tenant's plugin
//! quota, deleting a plugin version a live route pins, and route version order. Each race
//! is run several rounds; one node's in-process lock alone would let both sides through.

use serde_json::json;

use crate::support::postgres::TestDatabase;
use crate::support::{TestRouter, plugins, route};
use crate::{start_router, until_live};

const ROUNDS: usize = 6;

async fn two_nodes(db: &TestDatabase, tweak: impl Fn(&mut switchyard::config::Config)) -> (TestRouter, TestRouter) {
    (start_router(&db.url, &tweak).await, start_router(&db.url, &tweak).await)
}

#[tokio::test]
async fn the_plugin_quota_holds_when_two_nodes_upload_at_once() {
    let db = TestDatabase::create().await;
    let (a, b) = two_nodes(&db, |c| c.tenant_defaults.max_plugins = 1).await;
    let wasm = plugins::wasm("call-outcome-tagger");
    for round in 0..ROUNDS {
        let tenant = format!("quota{round}");
        a.tenant(&tenant).await;
        let (x, y) = tokio::join!(a.upload(&tenant, "first", wasm.clone()), b.upload(&tenant, "second", wasm.clone()));
        let created = [&x, &y].iter().filter(|(s, _)| s.as_u16() == 201).count();
        assert_eq!(created, 1, "round {round}: exactly one of two plugins fits a quota of one: {x:?} {y:?}");
        let refused = if x.0.as_u16() == 201 { &y } else { &x };
        assert_eq!(refused.0.as_u16(), 429, "the other is refused for the quota: {refused:?}");
        let listed = a.get(&format!("/v1/tenants/{tenant}/plugins")).await;
        assert_eq!(listed["plugins"].as_array().unwrap().len(), 1, "{listed}");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_pinned_plugin_version_is_never_deleted_from_under_a_route_applied_through_another_node() {
    let db = TestDatabase::create().await;
    let (a, b) = two_nodes(&db, |_| {}).await;
    let wasm = plugins::wasm("call-outcome-tagger");
    for round in 0..ROUNDS {
        let tenant = format!("pin{round}");
        a.tenant(&tenant).await;
        a.source(&tenant, "calls", "call-tracking", None).await;
        let (status, body) = a.upload(&tenant, "tagger", wasm.clone()).await;
        assert_eq!(status.as_u16(), 201, "{body}");
        let doc = json!({"routes": [route("tag", "calls", &["call.*"], &["tagger@1"], "http://127.0.0.1:9/hook")]});
        let (routes, version) =
            (format!("/v1/tenants/{tenant}/routes"), format!("/v1/tenants/{tenant}/plugins/tagger/versions/1"));
        let apply = a.request(reqwest::Method::PUT, &routes, Some(doc));
        let delete = b.request(reqwest::Method::DELETE, &version, None);
        let ((applied, body_a), (deleted, body_b)) = tokio::join!(apply, delete);
        let (applied, deleted) = (applied.as_u16() == 200, deleted.as_u16() == 204);
        assert!(applied != deleted, "round {round}: exactly one wins: apply {body_a}, delete {body_b}");
        let versions = a.get(&format!("/v1/tenants/{tenant}/plugins")).await["plugins"].as_array().unwrap().len();
        assert_eq!(versions, usize::from(applied), "the version exists exactly when a live route pins it");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn route_versions_stay_in_order_when_two_nodes_apply_at_once() {
    let db = TestDatabase::create().await;
    let (a, b) = two_nodes(&db, |_| {}).await;
    a.tenant("acme").await;
    a.source("acme", "calls", "call-tracking", None).await;
    let doc = |node: &str, i: usize| json!({"routes": [route("all", "calls", &[], &[], &format!("http://127.0.0.1:9/{node}/{i}"))]});
    for i in 0..ROUNDS {
        let (x, y) = tokio::join!(a.routes("acme", doc("a", i)), b.routes("acme", doc("b", i)));
        assert_ne!(x, y, "two applies never share a number");
    }
    let versions = a.get("/v1/tenants/acme/routes/versions").await;
    let numbers: Vec<i64> =
        versions["versions"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=2 * ROUNDS as i64).rev().collect();
    assert_eq!(numbers, expected, "numbered without gaps or repeats");
    // Both nodes end on the highest version, whatever order the notices came in.
    let last = 2 * ROUNDS as i64;
    until_live(&a.base, last).await;
    until_live(&b.base, last).await;
    a.stop().await;
    b.stop().await;
}
