//! Operator-facing latencies: `cargo bench --bench lifecycle` (or `-- --rounds 50`).
//!
//! Starts the real router in-process on a temporary SQLite file and reports:
//! - upload to ready: POST of a plugin component until the 201, which is answered only once
//!   the version is compiled, checked and stored (so a route can use it at once), for a
//!   new component and for bytes the artifact cache already holds;
//! - reload latency: PUT of a new route version until the 200, which is answered after the
//!   version is live; plus, separately, how soon an event sent right after the answer runs
//!   on the new version (it always should: the swap happens before the answer);
//! - with `--database-url postgres://...` (a server: the bench creates a database there and
//!   drops it after), propagation between two nodes: a route version applied through node A
//!   until node B runs it (B's `routes/versions` says `live`), polled without a pause.

#[path = "../../tests/e2e/support/plugins.rs"]
mod plugins;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::config::Config;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-admin-token-0123456789";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rounds = 30usize;
    let mut server = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            "--database-url" => server = args.next(),
            "--bench" => {}
            other => anyhow::bail!("unknown argument {other:?}; options: --rounds N --database-url postgres://..."),
        }
    }
    let dir = tempfile::tempdir()?;
    let mut config = Config { data_dir: dir.path().to_owned(), admin_token: Some(TOKEN.into()), ..Config::default() };
    config.delivery.allowed_cidrs = vec!["127.0.0.1/32".parse()?];
    config.tenant_defaults.max_plugin_versions = 10_000;
    config.pipeline.poll_interval = Duration::from_millis(10);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server_task = tokio::spawn(switchyard::run(config, listener, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let http = reqwest::Client::new();
    let call = |m: reqwest::Method, p: &str| http.request(m, format!("{base}{p}")).bearer_auth(TOKEN);
    call(reqwest::Method::POST, "/v1/tenants").json(&json!({"name": "bench"})).send().await?.error_for_status()?;
    call(reqwest::Method::PUT, "/v1/tenants/bench/sources/crm")
        .json(&json!({"format": "crm", "auth": {"type": "none"}}))
        .send()
        .await?
        .error_for_status()?;

    println!("lifecycle benchmark, {rounds} rounds each");
    for plugin in ["passthrough", "call-outcome-tagger"] {
        let wasm = plugins::wasm(plugin);
        // A fresh component: the artifact cache does not have it yet.
        let t = Instant::now();
        let first: Value = call(reqwest::Method::POST, &format!("/v1/tenants/bench/plugins/{plugin}"))
            .body(wasm.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let cold = t.elapsed();
        let mut warm = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            call(reqwest::Method::POST, &format!("/v1/tenants/bench/plugins/{plugin}"))
                .body(wasm.clone())
                .send()
                .await?
                .error_for_status()?;
            warm.push(t.elapsed());
        }
        println!(
            "  upload to ready, {plugin} ({} KiB): first {:.0} ms (compile {} ms); again {}",
            wasm.len() / 1024,
            ms(cold),
            first["compile_ms"],
            summary(&mut warm)
        );
    }

    let mut apply = Vec::new();
    let mut first_event = Vec::new();
    for n in 0..rounds {
        let doc = json!({"routes": [{
            "name": "r", "match": {"sources": ["crm"]}, "pipeline": [{"plugin": "passthrough@latest", "config": {"round": n}}],
            "destinations": [{"url": format!("http://127.0.0.1:9/v{n}"), "secret": SECRET}],
        }]});
        let t = Instant::now();
        let applied: Value = call(reqwest::Method::PUT, "/v1/tenants/bench/routes")
            .json(&doc)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        apply.push(t.elapsed());
        let version = applied["version"].as_i64().unwrap_or_default();
        // An event sent right after the answer: which version does it run on?
        let body = json!({"event": "lead.created", "timestamp": "2026-03-25T18:35:00Z", "payload": {"n": n}});
        let sent = Instant::now();
        let ack: Value = http
            .post(format!("{base}/v1/ingest/bench/crm"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?
            .json()
            .await?;
        let id = ack["id"].as_str().unwrap_or_default().to_owned();
        loop {
            let detail: Value =
                call(reqwest::Method::GET, &format!("/v1/tenants/bench/events/{id}")).send().await?.json().await?;
            if detail["status"] == "processed" {
                anyhow::ensure!(
                    detail["route_version"] == version,
                    "event ran on {} not {version}",
                    detail["route_version"]
                );
                first_event.push(sent.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    println!("  reload latency (PUT routes until live): {}", summary(&mut apply));
    println!("  next event processed on the new version, from its POST: {}", summary(&mut first_event));

    shutdown.cancel();
    server_task.await??;
    if let Some(server) = server {
        propagation(&server, rounds).await?;
    }
    Ok(())
}

/// Two nodes on a fresh PostgreSQL database on `server`: how long a route version applied
/// through node A takes to be live on node B.
async fn propagation(server: &str, rounds: usize) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    let name = format!("switchyard_bench_{}", ulid::Ulid::new().to_string().to_lowercase());
    sqlx::PgConnection::connect(server).await?.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    let url = format!("{}/{name}", server.rsplit_once('/').map_or(server, |(base, _)| base));
    let result = async {
        let mut nodes = Vec::new();
        for _ in 0..2 {
            let dir = tempfile::tempdir()?;
            let mut config =
                Config { data_dir: dir.path().to_owned(), admin_token: Some(TOKEN.into()), ..Config::default() };
            config.database_url = Some(url.clone());
            config.secrets.key = Some("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into());
            config.delivery.allowed_cidrs = vec!["127.0.0.1/32".parse()?];
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let base = format!("http://{}", listener.local_addr()?);
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(switchyard::run(config, listener, shutdown.clone()));
            nodes.push((base, shutdown, task, dir));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let http = reqwest::Client::new();
        let (a, b) = (&nodes[0].0, &nodes[1].0);
        let call = |m: reqwest::Method, base: &str, p: &str| http.request(m, format!("{base}{p}")).bearer_auth(TOKEN);
        call(reqwest::Method::POST, a, "/v1/tenants")
            .json(&json!({"name": "bench"}))
            .send()
            .await?
            .error_for_status()?;
        call(reqwest::Method::PUT, a, "/v1/tenants/bench/sources/crm")
            .json(&json!({"format": "crm", "auth": {"type": "none"}}))
            .send()
            .await?
            .error_for_status()?;
        let (mut from_start, mut from_answer) = (Vec::new(), Vec::new());
        for n in 0..rounds {
            let doc = json!({"routes": [{
                "name": "r", "match": {"sources": ["crm"]},
                "destinations": [{"url": format!("http://127.0.0.1:9/v{n}"), "secret": SECRET}],
            }]});
            let t = Instant::now();
            let applied: Value = call(reqwest::Method::PUT, a, "/v1/tenants/bench/routes")
                .json(&doc)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let answered = Instant::now();
            let version = applied["version"].as_i64().unwrap_or_default();
            loop {
                let versions: Value =
                    call(reqwest::Method::GET, b, "/v1/tenants/bench/routes/versions").send().await?.json().await?;
                if versions["live"].as_i64() == Some(version) {
                    break;
                }
                anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "node B never ran version {version}");
            }
            from_start.push(t.elapsed());
            from_answer.push(answered.elapsed());
        }
        println!("  propagation to a second node on PostgreSQL, from the apply's PUT: {}", summary(&mut from_start));
        println!("  propagation to a second node, from the apply's 200 on the first: {}", summary(&mut from_answer));
        for (_, shutdown, task, _dir) in nodes {
            shutdown.cancel();
            task.await??;
        }
        anyhow::Ok(())
    }
    .await;
    let mut admin = sqlx::PgConnection::connect(server).await?;
    admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
    result
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    format!("p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms", at(0.5), at(0.9), at(1.0))
}
