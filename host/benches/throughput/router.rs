//! The router under test as its own process, as users run it: `switchyard serve --config`,
//! stopped with SIGTERM. Set up through the admin API like any deployment.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::{SECRET, TOKEN, plugins};

pub struct Router {
    child: Child,
    pub base: String,
    /// The router's stderr (warnings and errors), quoted when something fails.
    log: PathBuf,
}

impl Router {
    /// Starts `bin` on `dir/data` and waits until it answers `/healthz`. Starting again on the
    /// same `dir` restarts on the same data.
    pub async fn start(bin: &Path, dir: &Path) -> anyhow::Result<Self> {
        Self::start_on(bin, dir, None).await
    }

    /// `start`, on the PostgreSQL database `database_url` when given (nodes sharing it share
    /// the secrets key too).
    pub async fn start_on(bin: &Path, dir: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        // The port is picked here rather than by the router, which would not say which it took
        // at log level warn.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.join("switchyard.toml");
        // The operator's view: default retry schedule, poll intervals and limits; loopback
        // destinations allowed, and a tenant ingest quota far above anything measured here.
        let shared = match database_url {
            Some(url) => format!("database_url = \"{url}\"\n[secrets]\nkey = \"{SECRETS_KEY}\"\n"),
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nadmin_token = \"{TOKEN}\"\n{shared}\
                 [delivery]\nallowed_cidrs = [\"127.0.0.1/32\"]\n\
                 [tenant_defaults]\ningest_rate = 1000000.0\ningest_burst = 1000000\n",
                data_dir(dir).display()
            ),
        )?;
        let log = dir.join("router.log");
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .env("SWITCHYARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::options().create(true).append(true).open(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut router = Self { child, base: format!("http://127.0.0.1:{port}"), log };
        router.wait_healthy().await?;
        Ok(router)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        // Generous: a restart on a large database checks migrations and releases leases first.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("the router exited ({status}) before answering /healthz{}", self.log_tail());
            }
            if http.get(format!("{}/healthz", self.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the router did not answer /healthz within 60 s{}", self.log_tail())
    }

    /// Tenant `bench`, source `calls` (call-tracking), `plugin` uploaded, and one route running
    /// it on every event to `destination`, signed with `SECRET`.
    pub async fn setup(&self, plugin: &str, destination: &str) -> anyhow::Result<()> {
        // Uploading compiles the plugin: seconds at worst, never a minute.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let call = |method: reqwest::Method, path: &str| {
            http.request(method, format!("{}{path}", self.base)).bearer_auth(TOKEN)
        };
        let steps = [
            call(reqwest::Method::POST, "/v1/tenants").json(&json!({"name": "bench"})),
            call(reqwest::Method::PUT, "/v1/tenants/bench/sources/calls")
                .json(&json!({"format": "call-tracking", "auth": {"type": "none"}})),
            call(reqwest::Method::POST, &format!("/v1/tenants/bench/plugins/{plugin}"))
                .header("content-type", "application/wasm")
                .body(plugins::wasm(plugin)),
            call(reqwest::Method::PUT, "/v1/tenants/bench/routes").json(&json!({"routes": [{
                "name": "r",
                "pipeline": [{"plugin": plugin}],
                "destinations": [{"url": destination, "secret": SECRET}],
            }]})),
        ];
        for step in steps {
            let resp = step.send().await?;
            let status = resp.status();
            let text = resp.text().await?;
            // A baseline from before source authentication (`--router-bin`) knows no `auth`.
            if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY && text.contains("unknown field `auth`") {
                let old = call(reqwest::Method::PUT, "/v1/tenants/bench/sources/calls");
                let resp = old.json(&json!({"format": "call-tracking"})).send().await?;
                ensure!(resp.status().is_success(), "setting up the baseline: {}{}", resp.status(), self.log_tail());
            } else if !status.is_success() {
                bail!("setting up the router: {status} {text}{}", self.log_tail());
            }
        }
        Ok(())
    }

    /// SIGTERM, as a service manager stops it, and a bounded wait for the exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("the router already exited")?;
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
        let Ok(status) = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await else {
            bail!("the router did not exit within 30 s of SIGTERM{}", self.log_tail());
        };
        let status = status?;
        ensure!(status.success(), "the router exited with {status} after SIGTERM{}", self.log_tail());
        Ok(())
    }

    /// `result`, with the router's last log lines added to an error: what it said while the
    /// load ran is usually why the load failed.
    pub fn check<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        result.map_err(|e| anyhow::anyhow!("{e:#}{}", self.log_tail()))
    }

    /// The last lines of the router's stderr, for error messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        match lines.len() {
            0 => String::new(),
            n => format!("; router log:\n{}", lines[n.saturating_sub(20)..].join("\n")),
        }
    }
}

/// The secrets key of routers sharing a database: each opens what another sealed.
const SECRETS_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The routers of one run: one, or `--nodes` of them on one fresh PostgreSQL database.
pub struct Deployment {
    pub routers: Vec<Router>,
    /// Each router's own directory (data, config, log).
    _dirs: Vec<tempfile::TempDir>,
    database: Option<BenchDatabase>,
}

impl Deployment {
    /// `nodes` routers of `bin`: on a new database on the server at `server` when given
    /// (required for more than one), each on its own SQLite file otherwise.
    pub async fn start(bin: &Path, nodes: usize, server: Option<&str>) -> anyhow::Result<Self> {
        let database = match server {
            Some(server) => Some(BenchDatabase::create(server).await?),
            None => None,
        };
        let mut routers = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..nodes {
            let dir = tempfile::tempdir()?;
            routers.push(Router::start_on(bin, dir.path(), database.as_ref().map(|d| d.url.as_str())).await?);
            dirs.push(dir);
        }
        Ok(Self { routers, _dirs: dirs, database })
    }

    /// `Router::setup` through the first node; then waits until every node runs the routes.
    pub async fn setup(&self, plugin: &str, destination: &str) -> anyhow::Result<()> {
        self.routers[0].setup(plugin, destination).await?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        for router in &self.routers[1..] {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let versions: serde_json::Value = http
                    .get(format!("{}/v1/tenants/bench/routes/versions", router.base))
                    .bearer_auth(TOKEN)
                    .send()
                    .await?
                    .json()
                    .await?;
                if versions["live"].as_i64().is_some() {
                    break;
                }
                ensure!(Instant::now() < deadline, "{} never ran the routes applied through another node", router.base);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }

    pub fn bases(&self) -> Vec<String> {
        self.routers.iter().map(|r| r.base.clone()).collect()
    }

    /// `Router::check` with every node's log.
    pub fn check<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        result.map_err(|e| anyhow::anyhow!("{e:#}{}", self.routers.iter().map(|r| r.log_tail()).collect::<String>()))
    }

    /// Stops every node, then drops the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        for router in self.routers {
            router.stop().await?;
        }
        if let Some(db) = self.database {
            db.drop_database().await?;
        }
        Ok(())
    }
}

/// A database of its own on the `--database-url` server, for one run.
struct BenchDatabase {
    server: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    async fn create(server: &str) -> anyhow::Result<Self> {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(server).await.with_context(|| format!("connecting to {server}"))?;
        let name = format!("switchyard_bench_{}", ulid::Ulid::new().to_string().to_lowercase());
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        Ok(Self { server: server.to_owned(), url: format!("{base}/{name}"), name })
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(&self.server).await?;
        conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str()).await?;
        Ok(())
    }
}

/// The router's data directory inside a scenario's temporary directory.
pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}
