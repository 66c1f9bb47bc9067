//! `GET /metrics` after real traffic: ingest (accepted, duplicate, refused), a delivery to a
//! real receiver, a trapping plugin. The page is parsed as Prometheus text and specific series
//! are checked by their labels. Every wait is on the API's own state (an event processed, a
//! delivery delivered), which the router reaches only after counting, so nothing here
//! depends on timing.

use std::collections::HashMap;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Receiver, TestRouter, WAIT, fixture, route};

/// The page, parsed, after checking its content type.
async fn scrape(r: &TestRouter) -> Scrape {
    let resp = r.http.get(format!("{}/metrics", r.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = resp.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the one sample of `metric` whose labels are exactly `labels`; `None` if there
/// is none.
fn value(page: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: HashMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let found: Vec<f64> = page
        .samples
        .iter()
        .filter(|s| s.metric == metric && *s.labels == want)
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{metric}: not a single value: {other:?}"),
        })
        .collect();
    assert!(found.len() <= 1, "{metric} {labels:?} appears {} times", found.len());
    found.first().copied()
}

fn values_of<'a>(page: &'a Scrape, metric: &str, label: &str) -> Vec<&'a str> {
    let mut v: Vec<&str> =
        page.samples.iter().filter(|s| s.metric == metric).filter_map(|s| s.labels.get(label)).collect();
    v.sort();
    v.dedup();
    v
}

async fn wait_delivered(r: &TestRouter, tenant: &str, event: &str) {
    let detail = r.processed(tenant, event).await;
    let id = detail["deliveries"][0]["id"].as_str().expect("a delivery").to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = r.get(&format!("/v1/tenants/{tenant}/deliveries/{id}")).await;
        if d["status"] == "delivered" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never delivered: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_count_ingest_plugins_and_deliveries() {
    let rx = Receiver::start().await;
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    r.source("acme", "calls", "call-tracking", None).await;
    r.plugin("acme", "passthrough").await;
    r.plugin("acme", "hostile-trap").await;
    let ok = route("ok", "crm", &[], &["passthrough"], &rx.url("hook"));
    let bad = route("bad", "calls", &[], &["hostile-trap"], &rx.url("never"));
    r.routes("acme", json!({"routes": [ok, bad]})).await;

    // Accepted twice, a duplicate, and refusals with and without a tenant and source we know.
    let lead = fixture("crm/lead_created.json");
    let first = r.send("acme", "crm", &lead).await;
    let (status, dup) = r.ingest("acme", "crm", &lead, &[]).await;
    assert_eq!((status, dup["duplicate"].as_bool()), (StatusCode::ACCEPTED, Some(true)));
    let second = r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    assert_eq!(r.ingest("acme", "nope", &lead, &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(r.ingest("nobody", "crm", &lead, &[]).await.0, StatusCode::NOT_FOUND);
    let wrong_type = r
        .http
        .post(format!("{}/v1/ingest/acme/crm", r.base))
        .header("content-type", "text/plain")
        .body(lead.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let trapped = r.send("acme", "calls", &fixture("call-tracking/call_ended.json")).await;

    wait_delivered(&r, "acme", &first).await;
    wait_delivered(&r, "acme", &second).await;
    assert_eq!(r.processed("acme", &trapped).await["routes"][0]["outcome"], "failed");

    let page = scrape(&r).await;
    let ingest = |tenant, source, result| {
        value(&page, "switchyard_ingest_requests_total", &[("tenant", tenant), ("source", source), ("result", result)])
    };
    assert_eq!(ingest("acme", "crm", "accepted"), Some(2.0));
    assert_eq!(ingest("acme", "crm", "duplicate"), Some(1.0));
    assert_eq!(ingest("acme", "crm", "unsupported_media_type"), Some(1.0));
    assert_eq!(ingest("acme", "calls", "accepted"), Some(1.0));
    // An unknown source or tenant never becomes a label.
    assert_eq!(ingest("acme", "(unknown)", "not_found"), Some(1.0));
    assert_eq!(ingest("(unknown)", "(unknown)", "not_found"), Some(1.0));
    assert_eq!(values_of(&page, "switchyard_ingest_requests_total", "source"), ["(unknown)", "calls", "crm"]);

    let plugin_calls = |plugin| {
        value(&page, "switchyard_plugin_call_duration_seconds_count", &[("tenant", "acme"), ("plugin", plugin)])
    };
    assert_eq!(plugin_calls("passthrough"), Some(2.0));
    assert_eq!(plugin_calls("hostile-trap"), Some(1.0));
    let failures = |plugin, reason| {
        value(&page, "switchyard_plugin_failures_total", &[("tenant", "acme"), ("plugin", plugin), ("reason", reason)])
    };
    assert_eq!(failures("hostile-trap", "trap"), Some(1.0));
    assert_eq!(failures("passthrough", "trap"), None, "a plugin that never failed has no failure series");

    let attempts =
        |outcome| value(&page, "switchyard_delivery_attempts_total", &[("tenant", "acme"), ("outcome", outcome)]);
    assert_eq!(attempts("2xx"), Some(2.0));
    assert_eq!(attempts("5xx"), None);
    let first_attempts = value(&page, "switchyard_ingest_to_first_attempt_seconds_count", &[("tenant", "acme")]);
    assert_eq!(first_attempts, Some(2.0));

    // Stored state, read at the scrape.
    assert_eq!(value(&page, "switchyard_events_pending", &[("tenant", "acme")]), Some(0.0));
    let deliveries = |status| value(&page, "switchyard_deliveries", &[("tenant", "acme"), ("status", status)]);
    assert_eq!((deliveries("pending"), deliveries("dead")), (Some(0.0), Some(0.0)));
    let destinations = |health| value(&page, "switchyard_destinations", &[("tenant", "acme"), ("health", health)]);
    assert_eq!(destinations("healthy"), Some(2.0), "both routes' destinations");
    assert_eq!(destinations("disabled"), Some(0.0));
    let concurrency = switchyard::config::Config::default().pipeline.concurrency as f64;
    assert_eq!(value(&page, "switchyard_slots", &[("pool", "pipeline")]), Some(concurrency));
    assert!(value(&page, "switchyard_slots_in_use", &[("pool", "delivery")]).is_some());
    let instances = switchyard::config::Config::default().plugins.max_instances as f64;
    assert_eq!(value(&page, "switchyard_slots", &[("pool", "wasm")]), Some(instances));
    // Every call has finished and dropped its instance back into the pool.
    assert_eq!(value(&page, "switchyard_slots_in_use", &[("pool", "wasm")]), Some(0.0));
    let commits = value(&page, "switchyard_writer_batch_writes_count", &[]).unwrap();
    assert!(commits >= 1.0, "the writer committed at least once");
    assert_eq!(value(&page, "switchyard_writer_commit_duration_seconds_count", &[]), Some(commits));
    r.stop().await;
}

#[tokio::test]
async fn tenants_past_the_label_cap_fold_into_other() {
    let r = TestRouter::start_with(|c| c.metrics.max_tenant_labels = 2).await;
    for tenant in ["t1", "t2", "t3", "t4"] {
        r.tenant(tenant).await;
        r.source(tenant, "crm", "crm", None).await;
        r.send(tenant, "crm", &fixture("crm/lead_created.json")).await;
    }
    let page = scrape(&r).await;
    assert_eq!(values_of(&page, "switchyard_ingest_requests_total", "tenant"), ["other", "t1", "t2"]);
    let accepted = |tenant, source| {
        value(
            &page,
            "switchyard_ingest_requests_total",
            &[("tenant", tenant), ("source", source), ("result", "accepted")],
        )
    };
    assert_eq!(accepted("t1", "crm"), Some(1.0));
    assert_eq!(accepted("other", "other"), Some(2.0), "t3 and t4, their sources folded too");
    assert_eq!(values_of(&page, "switchyard_events_pending", "tenant"), ["other", "t1", "t2"]);
    r.stop().await;
}

#[tokio::test]
async fn metrics_need_the_admin_token() {
    let r = TestRouter::start().await;
    r.tenant("acme").await;
    let key = r.key("acme").await;
    let url = format!("{}/metrics", r.base);
    assert_eq!(r.http.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.http.get(&url).bearer_auth("not-the-token").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.http.get(&url).bearer_auth(&key).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(r.http.get(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().status(), StatusCode::OK);
    r.stop().await;
}

#[tokio::test]
async fn wasm_slots_in_use_count_the_calls_running_now() {
    let rx = Receiver::start().await;
    // A plugin that never returns holds its instance until the CPU deadline ends the call.
    let r = TestRouter::start_with(|c| c.plugins.timeout = Duration::from_secs(3)).await;
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    r.plugin("acme", "hostile-loop").await;
    r.routes("acme", json!({"routes": [route("spin", "crm", &[], &["hostile-loop"], &rx.url("never"))]})).await;
    let in_use = |page: &Scrape| value(page, "switchyard_slots_in_use", &[("pool", "wasm")]);
    assert_eq!(in_use(&scrape(&r).await), Some(0.0));

    let event = r.send("acme", "crm", &fixture("crm/lead_created.json")).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while in_use(&scrape(&r).await) != Some(1.0) {
        assert!(tokio::time::Instant::now() < deadline, "the running call never showed as a wasm slot in use");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The deadline ends the call and its instance goes back to the pool.
    assert_eq!(r.processed("acme", &event).await["routes"][0]["outcome"], "failed");
    assert_eq!(in_use(&scrape(&r).await), Some(0.0));
    r.stop().await;
}
