//! Storage bounds: kv quotas per tenant, retention of finished work (pruned in the
//! background without stalling ingest), and garbage collection of compiled artifacts.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use switchyard::event::{DeliveryId, Event, EventId, TenantId};
use switchyard::store::{
    AttemptDone, AttemptRecord, Completion, DeliveryStatus, NewDelivery, NewEvent, RouteOutcome, RouteResult, Store,
    now_ms,
};

use crate::support::{Receiver, SECRET, TestRouter, fixture};

/// A tenant whose every call-tracking event runs kv-filler with `config`, delivered to `rx`.
async fn filler(r: &TestRouter, rx: &Receiver, tenant: &str, config: Value) {
    r.tenant(tenant).await;
    r.source(tenant, "calls", "call-tracking", None).await;
    r.plugin(tenant, "kv-filler").await;
    let route = json!({
        "name": "fill",
        "match": {"sources": ["calls"]},
        "pipeline": [{"plugin": "kv-filler", "config": config}],
        "destinations": [{"url": rx.url(tenant), "secret": SECRET}],
    });
    r.routes(tenant, json!({"routes": [route]})).await;
}

/// A call-tracking event with a body of its own (call-tracking ids hash the body).
fn unique_call(n: u64) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&fixture("call-tracking/call_ended.json")).unwrap();
    ev["data"]["seq"] = json!(n);
    serde_json::to_vec(&ev).unwrap()
}

/// Sends one event, waits until it is processed; returns the route's outcome and detail.
async fn run_one(r: &TestRouter, tenant: &str, n: u64) -> (String, String) {
    let id = r.send(tenant, "calls", &unique_call(n)).await;
    let detail = r.processed(tenant, &id).await;
    let route = &detail["routes"][0];
    (route["outcome"].as_str().unwrap().to_owned(), route["detail"].as_str().unwrap_or("").to_owned())
}

async fn tenant_id(r: &TestRouter, name: &str) -> TenantId {
    TenantId::parse(r.get(&format!("/v1/tenants/{name}")).await["id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn kv_writes_past_the_quota_fail_naming_the_limit_and_other_tenants_are_unaffected() {
    let rx = Receiver::start().await;
    let r = TestRouter::start_with(|c| {
        c.tenants.entry("small".into()).or_default().max_kv_keys = Some(25);
        c.tenants.entry("crowd".into()).or_default().max_kv_keys = Some(25);
        c.tenants.entry("tight".into()).or_default().max_kv_bytes = Some(1000);
    })
    .await;
    filler(&r, &rx, "small", json!({"keys": "10"})).await;
    filler(&r, &rx, "crowd", json!({"keys": "10"})).await;
    filler(&r, &rx, "tight", json!({"keys": "1", "value_bytes": "300"})).await;
    filler(&r, &rx, "roomy", json!({"keys": "10"})).await;

    // 10 keys an event: two fit in 25, the third's sixth key does not, and it keeps none.
    assert_eq!(run_one(&r, "small", 1).await.0, "emitted");
    assert_eq!(run_one(&r, "small", 2).await.0, "emitted");
    let (outcome, why) = run_one(&r, "small", 3).await;
    assert_eq!(outcome, "failed");
    assert!(why.contains("kv quota exceeded") && why.contains("25 keys (max_kv_keys)"), "{why}");

    // Each event writes one key of 32 + 300 bytes: three fit in 1000 bytes, not four.
    for n in 1..=3 {
        assert_eq!(run_one(&r, "tight", n).await.0, "emitted");
    }
    let (outcome, why) = run_one(&r, "tight", 4).await;
    assert_eq!(outcome, "failed");
    assert!(why.contains("1000 bytes of keys and values (max_kv_bytes)"), "{why}");

    // Twenty events at once, four in flight at a time: they cannot pass the quota together.
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (http, url) = (r.http.clone(), format!("{}/v1/ingest/crowd/calls", r.base));
        sends.spawn(async move {
            let resp = http.post(url).header("content-type", "application/json").body(unique_call(n)).send();
            let body: Value = resp.await.unwrap().json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        });
    }
    let ids = sends.join_all().await;
    let mut crowd_emitted = 0;
    for id in &ids {
        let detail = r.processed("crowd", id).await;
        if detail["routes"][0]["outcome"] == "emitted" {
            crowd_emitted += 1;
        } else {
            let why = detail["routes"][0]["detail"].as_str().unwrap();
            assert!(why.contains("max_kv_keys"), "{why}");
        }
    }

    // A tenant with the default quota is not touched by its neighbours' limits.
    for n in 1..=6 {
        assert_eq!(run_one(&r, "roomy", n).await.0, "emitted");
    }

    let ids = [
        ("small", tenant_id(&r, "small").await),
        ("crowd", tenant_id(&r, "crowd").await),
        ("tight", tenant_id(&r, "tight").await),
        ("roomy", tenant_id(&r, "roomy").await),
    ];
    let dir = r.stop().await;
    let store = crate::support::database::open_store(dir.path()).await;
    let mut counted = std::collections::HashMap::new();
    for (name, id) in &ids {
        let usage = store.kv_usage_counted(id).await.unwrap();
        assert_eq!(store.kv_usage(id), usage, "{name}: the usage kept matches the table");
        counted.insert(*name, usage);
    }
    assert_eq!(counted["small"].keys, 20, "the failed event wrote nothing");
    assert_eq!((counted["tight"].keys, counted["tight"].bytes), (3, 3 * 332));
    assert!((1..=2).contains(&crowd_emitted), "{crowd_emitted} of 20 fit");
    assert_eq!(counted["crowd"].keys, 10 * crowd_emitted, "only whole events, within the quota");
    assert_eq!(counted["roomy"].keys, 60);
}

/// Stores `n` events of `tenant` received, processed and delivered at `at` (unix ms), each
/// with a route result, a delivery and its attempt: what a busy month leaves behind.
async fn finished_backlog(store: &Store, tenant: &TenantId, name: &str, n: usize, at: i64) {
    let raw = fixture("call-tracking/call_ended.json");
    for start in (0..n).step_by(1000) {
        let count = 1000.min(n - start);
        let mut events = Vec::with_capacity(count);
        let mut completions = Vec::with_capacity(count);
        let mut attempts = Vec::with_capacity(count);
        for i in start..start + count {
            let id = EventId::generate();
            let event = Event {
                id: id.clone(),
                tenant: name.into(),
                source: "calls".into(),
                event_type: "call.ended".into(),
                time: "2026-03-25T18:35:00Z".parse().unwrap(),
                subject: None,
                data: String::from_utf8(raw.clone()).unwrap(),
                attributes: vec![],
            };
            let delivery = NewDelivery {
                id: DeliveryId::generate(),
                tenant_id: tenant.clone(),
                event_id: id.clone(),
                route: "r".into(),
                url: "http://127.0.0.1:9/".into(),
                secret: SECRET.into(),
                event_type: "call.ended".into(),
                content_type: "application/json".into(),
                body: raw.clone(),
                not_before: at,
                traceparent: None,
            };
            let record = AttemptRecord {
                started_at: at,
                duration_ms: 3,
                status_code: Some(200),
                error: None,
                response_snippet: None,
                status: DeliveryStatus::Delivered,
                next_attempt_at: None,
            };
            attempts.push(AttemptDone { delivery: delivery.id.clone(), attempt: 1, record });
            completions.push(Completion {
                event: id.clone(),
                tenant: tenant.clone(),
                route_version: Some(1),
                results: vec![RouteResult {
                    route: "r".into(),
                    outcome: RouteOutcome::Emitted,
                    detail: None,
                    outputs: 1,
                }],
                deliveries: vec![delivery],
            });
            events.push(NewEvent {
                tenant_id: tenant.clone(),
                upstream_id: format!("old-{i}"),
                event,
                raw: raw.clone().into(),
            });
        }
        store.insert_events_at(&events, at).await.unwrap();
        store.complete_events_at(&completions, at).await.unwrap();
        store.record_attempts_at(&attempts, at).await.unwrap();
    }
}

#[tokio::test]
async fn pruning_a_large_backlog_does_not_stall_ingest() {
    const OLD: usize = 30_000;
    let dir = crate::support::DataDir::new();
    let store = crate::support::database::open_store(dir.path()).await;
    let tenant = store.create_tenant("acme").await.unwrap().id;
    let forty_days_ago = now_ms() - 40 * 86_400_000;
    finished_backlog(&store, &tenant, "acme", OLD, forty_days_ago).await;
    let before = now_ms() - 86_400_000;
    assert_eq!(store.count_events_before(&tenant, before).await.unwrap(), OLD as i64);

    let r = TestRouter::start_on(dir, |c| {
        c.retention.batch_rows = 500;
        c.retention.pause = Duration::from_millis(50);
    })
    .await;
    r.source("acme", "calls", "call-tracking", None).await;

    // A steady sender (50 events a second) for as long as the pruner works, and a bit more.
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = {
        let (http, url, stop) = (r.http.clone(), format!("{}/v1/ingest/acme/calls", r.base), stop.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for n in 0.. {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => break,
                }
                let started = Instant::now();
                let resp = http.post(&url).header("content-type", "application/json").body(unique_call(n)).send();
                let status = resp.await.unwrap().status();
                assert_eq!(status, 202);
                latencies.push(started.elapsed());
            }
            latencies
        })
    };

    let (mut seen_midway, deadline) = (false, Instant::now() + Duration::from_secs(180));
    loop {
        let left = store.count_events_before(&tenant, before).await.unwrap();
        if left == 0 {
            break;
        }
        seen_midway |= left < OLD as i64;
        assert!(Instant::now() < deadline, "{left} old events still stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let latencies = sender.await.unwrap();
    let slowest = latencies.iter().max().unwrap();
    let mut sorted = latencies.clone();
    sorted.sort();
    eprintln!(
        "{} events sent while pruning {OLD}: p50 {:?}, p99 {:?}, slowest {slowest:?}",
        latencies.len(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 99 / 100]
    );
    assert!(seen_midway, "the sender ran while old events were being pruned");
    assert!(*slowest < Duration::from_secs(1), "ingest stalled for {slowest:?} while pruning");
    let new = store.count_events_before(&tenant, i64::MAX).await.unwrap();
    assert_eq!(new, latencies.len() as i64, "every new event is kept");
    let delivered = store.count_deliveries(DeliveryStatus::Delivered).await.unwrap();
    assert_eq!(delivered, 0, "the old deliveries went with their events");
    r.stop().await;
}

/// The artifact files in `dir` whose name starts with `sha`.
fn artifacts_of(dir: &std::path::Path, sha: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(sha))
        .collect()
}

#[tokio::test]
async fn artifacts_of_deleted_versions_are_removed_and_unusable_ones_at_start_up() {
    let r = TestRouter::start().await;
    let artifacts = r.data_dir.path().join("artifacts");
    r.tenant("a").await;
    r.tenant("b").await;
    let upload = |tenant: &'static str, plugin: &'static str| {
        let r = &r;
        async move {
            let (status, body) = r.upload(tenant, plugin, crate::support::plugins::wasm(plugin)).await;
            assert_eq!(status, 201, "{body}");
            body["sha256"].as_str().unwrap().to_owned()
        }
    };
    let shared = upload("a", "passthrough").await;
    assert_eq!(upload("b", "passthrough").await, shared, "the same bytes for another tenant");
    let alone = upload("a", "goal-pace-alert").await;
    assert_eq!(artifacts_of(&artifacts, &shared).len(), 1);
    assert_eq!(artifacts_of(&artifacts, &alone).len(), 1);

    let delete = |path: String| {
        let r = &r;
        async move { assert_eq!(r.request(Method::DELETE, &path, None).await.0, 204, "{path}") }
    };
    delete("/v1/tenants/a/plugins/passthrough/versions/1".into()).await;
    assert_eq!(artifacts_of(&artifacts, &shared).len(), 1, "tenant b's version still uses it");
    delete("/v1/tenants/b/plugins/passthrough/versions/1".into()).await;
    assert!(artifacts_of(&artifacts, &shared).is_empty(), "no version has these bytes any more");
    delete("/v1/tenants/a/plugins/goal-pace-alert/versions/1".into()).await;
    assert!(artifacts_of(&artifacts, &alone).is_empty());

    // At start-up: artifacts of unknown bytes, of another engine, and unfinished writes go.
    assert_eq!(upload("a", "passthrough").await, shared);
    let kept = artifacts_of(&artifacts, &shared).pop().unwrap();
    let engine = kept.trim_end_matches(".cwasm").rsplit_once('-').unwrap().1.to_owned();
    let garbage = [
        format!("{}-{engine}.cwasm", "f".repeat(64)),
        format!("{shared}-0000000000000000.cwasm"),
        format!("{shared}-{engine}.tmp"),
    ];
    for name in &garbage {
        std::fs::write(artifacts.join(name), b"x").unwrap();
    }
    std::fs::write(artifacts.join("notes.txt"), b"not ours").unwrap();
    let dir = r.stop().await;
    let r = TestRouter::start_on(dir, |_| {}).await;
    for name in &garbage {
        assert!(!artifacts.join(name).exists(), "{name} survived the start");
    }
    assert!(artifacts.join(&kept).exists() && artifacts.join("notes.txt").exists());
    r.stop().await;
}
