//! Several `switchyard` nodes on one PostgreSQL database (a database of its own per test):
//! load spread over three nodes with one killed and restarted three times, a restart that
//! must not steal a live node's lease, changes made through one node reaching the others,
//! and invariants that hold when two nodes race. Always on PostgreSQL: SQLite is one node.
//!
//! A binary of its own, so the end-to-end suite's second pass (all of it on PostgreSQL)
//! does not run these twice. The helpers are the end-to-end suite's.

#[allow(dead_code, unused_imports)]
#[path = "../e2e/support/mod.rs"]
mod support;

mod leases;
mod load;
mod propagation;
mod races;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::process::Process;
use support::{ADMIN_TOKEN, Receiver, TestRouter, route};

/// Every node shares the secrets key: each must open what another sealed.
pub const SECRETS_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Short heartbeats, so a killed node is found dead in a second, and a quick reconcile.
pub fn node_env() -> Vec<(&'static str, String)> {
    vec![
        ("SWITCHYARD_SECRETS__KEY", SECRETS_KEY.into()),
        ("SWITCHYARD_CLUSTER__HEARTBEAT_INTERVAL", "100ms".into()),
        ("SWITCHYARD_CLUSTER__NODE_TIMEOUT", "1s".into()),
        ("SWITCHYARD_CLUSTER__RECONCILE_INTERVAL", "2s".into()),
    ]
}

/// A node as a child process on `dir` and the shared database.
pub async fn start_node(dir: &Path, url: &str) -> Process {
    Process::start_with_env(dir, &["--database-url", url], &node_env()).await
}

/// A node in this process on the shared database.
pub async fn start_router(url: &str, tweak: impl FnOnce(&mut switchyard::config::Config)) -> TestRouter {
    let url = url.to_owned();
    TestRouter::start_with(move |c| {
        c.database_url = Some(url);
        c.secrets.key = Some(SECRETS_KEY.into());
        c.cluster.heartbeat_interval = Duration::from_millis(100);
        c.cluster.node_timeout = Duration::from_secs(1);
        c.cluster.reconcile_interval = Duration::from_secs(2);
        tweak(c);
    })
    .await
}

pub async fn call(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn ok(base: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let (status, got) = call(base, method, path, Some(body)).await;
    assert!((200..300).contains(&status), "{path}: {status} {got}");
    got
}

/// Tenant `acme` with a call-tracking source `calls` routed, without plugins, to `url`.
pub async fn forward_calls(base: &str, url: &str) {
    ok(base, reqwest::Method::POST, "/v1/tenants", json!({"name": "acme"})).await;
    ok(
        base,
        reqwest::Method::PUT,
        "/v1/tenants/acme/sources/calls",
        json!({"format": "call-tracking", "auth": {"type": "none"}}),
    )
    .await;
    apply(base, url).await;
}

/// Applies acme's routes (everything from `calls` to `url`); returns the version.
pub async fn apply(base: &str, url: &str) -> i64 {
    let routes = json!({"routes": [route("all", "calls", &[], &[], url)]});
    ok(base, reqwest::Method::PUT, "/v1/tenants/acme/routes", routes).await["version"].as_i64().unwrap()
}

/// The version of acme's routes the node at `base` runs now.
pub async fn live_version(base: &str) -> Option<i64> {
    let (_, body) = call(base, reqwest::Method::GET, "/v1/tenants/acme/routes/versions", None).await;
    body["live"].as_i64()
}

/// Waits until the node at `base` runs `version` of acme's routes; returns how long it took.
pub async fn until_live(base: &str, version: i64) -> Duration {
    let started = Instant::now();
    while live_version(base).await != Some(version) {
        assert!(started.elapsed() < Duration::from_secs(20), "{base} never ran version {version}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    started.elapsed()
}

/// A call-tracking event whose data has this `id`.
pub fn call_event(id: i64) -> Value {
    let mut ev: Value = serde_json::from_slice(&support::fixture("call-tracking/call_ended.json")).unwrap();
    ev["data"]["id"] = json!(id);
    ev
}

pub fn receiver_ids(rx: &Receiver, path: &str) -> Vec<(i64, String)> {
    rx.on_path(path)
        .iter()
        .filter(|d| (200..300).contains(&d.answered))
        .map(|d| (d.json()["id"].as_i64().unwrap(), d.header("webhook-id").to_owned()))
        .collect()
}
