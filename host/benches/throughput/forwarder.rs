//! Scenario 1, the ceiling: the least a forwarder must do, in a process of its own like the
//! router. It answers the ingest POST with 202 at once, then signs the event's data (Standard
//! Webhooks) and POSTs it to the receiver: no storage, no plugin, no retries. The router's
//! end-to-end rate is compared with this one's, measured on the same machine in the same run.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::value::RawValue;
use switchyard::signing::Secret;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use crate::SECRET;

/// The forwarder child, started from this same bench executable.
pub struct Forwarder {
    child: Child,
    pub base: String,
}

impl Forwarder {
    /// Starts `<this executable> --forwarder 127.0.0.1:0 <target>` and reads the address it
    /// bound from its first line of output.
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--forwarder", "127.0.0.1:0", target])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the forwarder")?;
        let stdout = child.stdout.take().context("forwarder stdout")?;
        let mut line = String::new();
        let mut stdout = tokio::io::BufReader::new(stdout);
        let read = stdout.read_line(&mut line);
        tokio::time::timeout(Duration::from_secs(10), read).await.context("the forwarder did not start")??;
        Ok(Self { child, base: format!("http://{}", line.trim()) })
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("the forwarder already exited")?;
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.context("stopping the forwarder")??;
        Ok(())
    }
}

struct Forward {
    http: reqwest::Client,
    target: String,
    secret: Secret,
    next_id: AtomicU64,
}

/// The child's main: serves until SIGTERM (the default action ends the process).
pub async fn serve(listen: &str, target: &str) -> anyhow::Result<()> {
    let forward = Arc::new(Forward {
        http: reqwest::Client::new(),
        target: target.to_owned(),
        secret: Secret::parse(SECRET)?,
        next_id: AtomicU64::new(0),
    });
    let app = axum::Router::new().route("/{*path}", axum::routing::post(accept)).with_state(forward);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn accept(State(forward): State<Arc<Forward>>, body: Bytes) -> StatusCode {
    tokio::spawn(async move {
        if let Err(e) = forward.deliver(&body).await {
            eprintln!("forwarder: {e:#}");
        }
    });
    StatusCode::ACCEPTED
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

impl Forward {
    /// Delivers the envelope's `data`, as the router's passthrough route does, so both send
    /// the receiver the same bytes.
    async fn deliver(&self, body: &[u8]) -> anyhow::Result<()> {
        let data = serde_json::from_slice::<Envelope>(body)?.data.get().to_owned();
        let id = format!("msg_{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.secret.sign(&id, timestamp, data.as_bytes());
        self.http
            .post(&self.target)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(data)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}
