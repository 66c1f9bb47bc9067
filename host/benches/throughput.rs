//! Throughput benchmark: `cargo bench --bench throughput` (or `-- --events 5000`).
//!
//! Starts the real router in-process on a temporary SQLite file, one tenant whose route runs
//! a real plugin from `plugins/`, and a counting receiver on loopback. It reports:
//! - plugin invocation cost alone (fresh sandboxed instance + call, per event);
//! - ingest: acknowledged (durably stored) events per second over HTTP;
//! - end to end: events per second from first POST to last signed delivery received.

#[path = "../../tests/e2e/support/plugins.rs"]
mod plugins;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard::config::{Capability, Config};
use switchyard::event::{Event, EventId, TenantId};
use switchyard::runtime::{Runtime, WORLD};
use switchyard::store::{NewPluginVersion, Store};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN: &str = "bench-admin-token-0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let events = arg("--events", 2000);
    let concurrency = arg("--concurrency", 32);
    let plugin = args
        .iter()
        .position(|a| a == "--plugin")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "call-outcome-tagger".into());
    println!("switchyard throughput: {events} events, {concurrency} concurrent senders, plugin {plugin}");

    invocation_cost(&plugin).await?;
    end_to_end(&plugin, events, concurrency).await
}

fn sample_event(i: usize) -> Vec<u8> {
    let mut ev: serde_json::Value = serde_json::from_slice(
        &std::fs::read(plugins::repo_root().join("tests/fixtures/call-tracking/call_outcome_tagged.json")).unwrap(),
    )
    .unwrap();
    ev["data"]["id"] = json!(i);
    ev["data"]["contact"]["id"] = json!(i % 500);
    serde_json::to_vec(&ev).unwrap()
}

/// Calls the plugin directly through the runtime: the sandbox cost per event.
async fn invocation_cost(plugin: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path()).await?;
    let tenant = store.create_tenant("bench").await?;
    let runtime = Arc::new(Runtime::new(&Config::default().plugins, &dir.path().join("artifacts"), store.clone())?);
    let wasm = Arc::new(plugins::wasm(plugin));
    let t = Instant::now();
    let validated = runtime.validate(wasm.clone(), &Capability::ALL).await?;
    println!("  compile + validate on upload: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let new = NewPluginVersion { sha256: &validated.sha256, world: WORLD, imports: &validated.imports, wasm: &wasm };
    let meta = store.insert_plugin_version(&tenant.id, plugin, &new).await?;
    let version = store.plugin_version(&tenant.id, plugin, Some(meta.version)).await?.unwrap();
    let loaded = runtime.load(&version).await?;
    let body: serde_json::Value = serde_json::from_slice(&sample_event(1))?;
    let event = Event {
        id: EventId::generate(),
        tenant: "bench".into(),
        source: "calls".into(),
        event_type: "call.outcome_tagged".into(),
        time: chrono::Utc::now(),
        subject: None,
        data: body["data"].to_string(),
        attributes: vec![],
    };
    let config = Arc::new(Default::default());
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        runtime.invoke(&loaded, &tenant.id, Arc::clone(&config), &event).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let per = t.elapsed() / n;
    println!(
        "  plugin call (fresh sandboxed instance + handle, incl. the plugin's own kv I/O): {:.1} us/event, {:.0} calls/s on one task",
        per.as_secs_f64() * 1e6,
        1.0 / per.as_secs_f64()
    );
    let _: TenantId = tenant.id;
    Ok(())
}

async fn end_to_end(plugin: &str, events: usize, concurrency: usize) -> anyhow::Result<()> {
    // Counting receiver.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let c = counter.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let rx = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rx_addr = rx.local_addr()?;
    tokio::spawn(async move { axum::serve(rx, app).await });

    let dir = tempfile::tempdir()?;
    let mut config = Config { data_dir: dir.path().to_owned(), admin_token: Some(TOKEN.into()), ..Config::default() };
    config.delivery.allowed_cidrs = vec!["127.0.0.1/32".parse()?];
    // The point is the router's ceiling, not a tenant's quota.
    config.tenant_defaults.ingest_rate = 1_000_000.0;
    config.tenant_defaults.ingest_burst = 1_000_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(switchyard::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let admin = |m: reqwest::Method, p: &str| http.request(m, format!("{base}{p}")).bearer_auth(TOKEN);
    admin(reqwest::Method::POST, "/v1/tenants").json(&json!({"name": "bench"})).send().await?.error_for_status()?;
    admin(reqwest::Method::PUT, "/v1/tenants/bench/sources/calls")
        .json(&json!({"format": "call-tracking"}))
        .send()
        .await?
        .error_for_status()?;
    admin(reqwest::Method::POST, &format!("/v1/tenants/bench/plugins/{plugin}"))
        .body(plugins::wasm(plugin))
        .send()
        .await?
        .error_for_status()?;
    admin(reqwest::Method::PUT, "/v1/tenants/bench/routes")
        .json(&json!({"routes": [{"name": "r", "pipeline": [{"plugin": plugin}], "destinations": [{"url": format!("http://{rx_addr}/hook"), "secret": SECRET}]}]}))
        .send()
        .await?
        .error_for_status()?;

    let bodies: Vec<Vec<u8>> = (0..events).map(sample_event).collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, base, bodies, next) = (http.clone(), base.clone(), bodies.clone(), next.clone());
        senders.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() {
                    break;
                }
                let resp = http
                    .post(format!("{base}/v1/ingest/bench/calls"))
                    .header("content-type", "application/json")
                    .body(bodies[i].clone())
                    .send()
                    .await
                    .expect("ingest");
                assert_eq!(resp.status(), 202);
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let acked = start.elapsed();
    // spam/wrong_number are dropped by the tagger; the sample is "booked", so all are delivered.
    while received.load(Ordering::Relaxed) < events {
        tokio::time::sleep(Duration::from_millis(5)).await;
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "deliveries stalled at {}",
            received.load(Ordering::Relaxed)
        );
    }
    let done = start.elapsed();
    println!("  ingest (202 after durable write): {:.0} events/s", events as f64 / acked.as_secs_f64());
    println!(
        "  end to end (ingest -> plugin -> signed delivery received): {:.0} events/s ({events} in {:.2} s)",
        events as f64 / done.as_secs_f64(),
        done.as_secs_f64()
    );
    shutdown.cancel();
    server.await??;
    Ok(())
}
