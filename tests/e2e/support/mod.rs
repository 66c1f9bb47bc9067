//! Shared helpers: the real router (in-process on port 0, or as a child process), a real
//! receiver, real plugins, seed fixtures.

pub mod collector;
pub mod crafted;
pub mod database;
pub mod plugins;
pub mod postgres;
pub mod process;
pub mod receiver;
pub mod signature;

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard::config::Config;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use database::DataDir;
pub use receiver::Receiver;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The Standard Webhooks reference secret; tests use it for destinations and Svix sources.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const WAIT: Duration = Duration::from_secs(20);

/// A seed payload from `tests/fixtures/`.
pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(plugins::repo_root().join("tests/fixtures").join(rel)).unwrap()
}

/// Fast schedules and short limits, loopback allowed, fixed admin token; the database of the
/// backend the suite runs on (see `database`).
pub async fn test_config(data_dir: &Path) -> Config {
    let mut c = Config { data_dir: data_dir.to_owned(), admin_token: Some(ADMIN_TOKEN.into()), ..Config::default() };
    c.database_url = database::url_for(data_dir).await;
    // Receivers run on loopback; allow exactly that, as an operator would.
    c.delivery.allowed_cidrs = vec!["127.0.0.1/32".parse().unwrap()];
    c.delivery.retry_schedule = vec![Duration::ZERO, Duration::from_millis(100), Duration::from_millis(100)];
    c.delivery.jitter = 0.0;
    c.delivery.timeout = Duration::from_secs(5);
    c.delivery.poll_interval = Duration::from_millis(50);
    // Receivers that refuse on purpose would otherwise open the breaker for 30 s.
    c.delivery.breaker_cooldown = Duration::from_millis(200);
    c.pipeline.poll_interval = Duration::from_millis(50);
    c.plugins.timeout = Duration::from_millis(500);
    c.plugins.max_memory_bytes = 32 * 1024 * 1024;
    // Load tests send faster than a tenant's default ingest rate; quota tests set their own.
    c.tenant_defaults.ingest_rate = 1_000_000.0;
    c.tenant_defaults.ingest_burst = 1_000_000;
    c
}

/// The router, running in this process on an ephemeral port.
pub struct TestRouter {
    pub base: String,
    pub http: reqwest::Client,
    pub data_dir: DataDir,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestRouter {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(DataDir::new(), tweak).await
    }

    /// Starts on an existing data directory (a restart).
    pub async fn start_on(data_dir: impl Into<DataDir>, tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = data_dir.into();
        let mut config = test_config(data_dir.path()).await;
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchyard::run(config, listener, shutdown.clone()));
        let router = Self { base, http: reqwest::Client::new(), data_dir, shutdown, task };
        router.wait_healthy().await;
        router
    }

    async fn wait_healthy(&self) {
        for _ in 0..200 {
            if self.http.get(format!("{}/healthz", self.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("router did not become healthy");
    }

    /// Begins a graceful stop without waiting for it (finish with `stop`).
    pub fn begin_stop(&self) {
        self.shutdown.cancel();
    }

    /// Graceful stop; returns the data directory so a test can inspect or restart on it.
    pub async fn stop(self) -> DataDir {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        self.data_dir
    }

    pub async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.request_as(ADMIN_TOKEN, method, path, body).await
    }

    /// A JSON request with `token` (the admin token or a tenant key).
    pub async fn request_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.request_full(token, method, path, body).await;
        (status, body)
    }

    /// Like `request_as`, with the response headers.
    pub async fn request_full(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, headers, body)
    }

    /// Creates an API key for `tenant` and returns it.
    pub async fn key(&self, tenant: &str) -> String {
        let created =
            self.ok(reqwest::Method::POST, &format!("/v1/tenants/{tenant}/keys"), json!({"name": "test"})).await;
        created["key"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.request(reqwest::Method::GET, path, None).await;
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    /// Asserts success and returns the body.
    pub async fn ok(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, resp) = self.request(method.clone(), path, Some(body)).await;
        assert!(status.is_success(), "{method} {path}: {status} {resp}");
        resp
    }

    pub async fn tenant(&self, name: &str) {
        self.ok(reqwest::Method::POST, "/v1/tenants", json!({"name": name})).await;
    }

    /// Declares a source: a Standard Webhooks one with its `secret`, any other (`secret` is
    /// `None`) explicitly open to anyone (`"auth": {"type": "none"}`). The tests using this are
    /// about what happens after ingest; `tests/e2e/source_auth.rs` declares real credentials
    /// with `source_with_auth`.
    pub async fn source(&self, tenant: &str, name: &str, format: &str, secret: Option<&str>) {
        match secret {
            Some(s) => self.put_source(tenant, name, json!({"format": format, "secret": s})).await,
            None => self.source_with_auth(tenant, name, format, json!({"type": "none"})).await,
        };
    }

    /// Declares a source of an unsigned format with its `auth`; returns the router's view of it.
    pub async fn source_with_auth(&self, tenant: &str, name: &str, format: &str, auth: Value) -> Value {
        self.put_source(tenant, name, json!({"format": format, "auth": auth})).await
    }

    async fn put_source(&self, tenant: &str, name: &str, spec: Value) -> Value {
        self.ok(reqwest::Method::PUT, &format!("/v1/tenants/{tenant}/sources/{name}"), spec).await
    }

    /// Uploads a plugin built from `plugins/` under its crate name; returns the version.
    pub async fn plugin(&self, tenant: &str, name: &str) -> i64 {
        let (status, body) = self.upload(tenant, name, plugins::wasm(name)).await;
        assert_eq!(status, StatusCode::CREATED, "uploading {name}: {body}");
        body["version"].as_i64().unwrap()
    }

    pub async fn upload(&self, tenant: &str, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/tenants/{tenant}/plugins/{name}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    pub async fn routes(&self, tenant: &str, doc: Value) -> i64 {
        self.ok(reqwest::Method::PUT, &format!("/v1/tenants/{tenant}/routes"), doc).await["version"].as_i64().unwrap()
    }

    pub async fn ingest(
        &self,
        tenant: &str,
        source: &str,
        body: &[u8],
        headers: &[(String, String)],
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/ingest/{tenant}/{source}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Ingests and asserts 202; returns the event id.
    pub async fn send(&self, tenant: &str, source: &str, body: &[u8]) -> String {
        let (status, resp) = self.ingest(tenant, source, body, &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{resp}");
        resp["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the event is processed and returns its detail (routes, deliveries).
    pub async fn processed(&self, tenant: &str, event: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let detail = self.get(&format!("/v1/tenants/{tenant}/events/{event}")).await;
            if detail["status"] == "processed" {
                return detail;
            }
            assert!(tokio::time::Instant::now() < deadline, "event {event} not processed: {detail}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn event_count(&self, tenant: &str) -> usize {
        self.get(&format!("/v1/tenants/{tenant}/events?limit=1000")).await["events"].as_array().unwrap().len()
    }
}

/// One route: everything from `source` matching `types` through `plugins` to `url`.
pub fn route(name: &str, source: &str, types: &[&str], plugins: &[&str], url: &str) -> Value {
    json!({
        "name": name,
        "match": {"sources": [source], "types": types},
        "pipeline": plugins.iter().map(|p| json!({"plugin": p})).collect::<Vec<_>>(),
        "destinations": [{"url": url, "secret": SECRET}],
    })
}
