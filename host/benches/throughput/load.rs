//! The load generator: HTTP senders on loopback, closed loop at full speed or open loop at a
//! fixed rate. A sender resends an event the router refused with 429/503 (its backlog is
//! full) after min(Retry-After, 50 ms); any other answer but 202 fails the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use serde_json::json;

use crate::plugins;

/// The longest wait a refusal can ask for: a sender that sleeps longer stops measuring the
/// router and starts measuring itself.
const MAX_BACKOFF: Duration = Duration::from_millis(50);
/// How long one event may keep being refused before the run fails.
const REFUSED_FOR: Duration = Duration::from_secs(60);

/// The seed call-tracking payload, `data.id = i` so each of `0..n` is a distinct event
/// (call-tracking ids are a hash of the body). The id survives both plugins, so the receiver
/// can match a delivery to its send.
pub fn events(n: usize) -> anyhow::Result<Vec<Bytes>> {
    let seed = plugins::repo_root().join("tests/fixtures/call-tracking/call_outcome_tagged.json");
    let mut event: serde_json::Value = serde_json::from_slice(&std::fs::read(&seed)?)?;
    (0..n)
        .map(|i| {
            event["data"]["id"] = json!(i);
            Ok(Bytes::from(serde_json::to_vec(&event)?))
        })
        .collect()
}

/// What the senders saw.
pub struct Sent {
    /// When the first POST started (full speed) or was due (open loop), by event id.
    pub at: Vec<Instant>,
    /// When the last 202 arrived.
    pub last_ack: Instant,
    /// 429/503 answers, each followed by a resend.
    pub refusals: u64,
}

#[derive(Clone)]
pub struct Ingest {
    http: reqwest::Client,
    /// One ingest URL per router node; senders are spread over them.
    urls: Arc<Vec<String>>,
    refusals: Arc<AtomicU64>,
}

impl Ingest {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Self::spread(&[base.to_owned()])
    }

    /// Senders spread over several nodes: sender (or, paced, event) `i` posts to node `i % n`.
    pub fn spread(bases: &[String]) -> anyhow::Result<Self> {
        // Keep-alive is reqwest's default; the timeout turns a hung router into an error.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let urls = bases.iter().map(|b| format!("{b}/v1/ingest/bench/calls")).collect();
        Ok(Self { http, urls: Arc::new(urls), refusals: Arc::default() })
    }

    /// Posts one event to node `node % n` until it is accepted.
    async fn send(&self, body: &Bytes, node: usize) -> anyhow::Result<()> {
        let first = Instant::now();
        let url = &self.urls[node % self.urls.len()];
        loop {
            let resp = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .context("ingest request")?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                // Seconds; an HTTP date (or nothing) means the longest wait.
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map_or(MAX_BACKOFF, |s| Duration::from_secs(s).min(MAX_BACKOFF));
            // Read to the end so the connection goes back to the pool.
            let answer = resp.bytes().await.context("ingest answer")?;
            match status {
                202 => return Ok(()),
                429 | 503 => {
                    ensure!(
                        first.elapsed() < REFUSED_FOR,
                        "ingest kept refusing one event ({status}) for {REFUSED_FOR:?}"
                    );
                    self.refusals.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(retry_after).await;
                }
                _ => bail!("ingest answered {status}: {}", String::from_utf8_lossy(&answer)),
            }
        }
    }

    /// Closed loop: `concurrency` senders, each posting the next unsent event as soon as its
    /// previous one is accepted.
    pub async fn full_speed(&self, bodies: Arc<Vec<Bytes>>, concurrency: usize) -> anyhow::Result<Sent> {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut senders = tokio::task::JoinSet::new();
        for sender in 0..concurrency {
            let (me, bodies, next) = (self.clone(), bodies.clone(), next.clone());
            senders.spawn(async move {
                let mut sent = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let at = Instant::now();
                    me.send(body, sender).await?;
                    sent.push((i, at, Instant::now()));
                }
                anyhow::Ok(sent)
            });
        }
        let mut at = vec![start; bodies.len()];
        let mut last_ack = start;
        while let Some(done) = senders.join_next().await {
            for (i, sent, acked) in done?? {
                at[i] = sent;
                last_ack = last_ack.max(acked);
            }
        }
        Ok(Sent { at, last_ack, refusals: self.refusals.load(Ordering::Relaxed) })
    }

    /// Open loop: event `i` is due at `start + i / rate` whatever happened to the others, and
    /// each send runs on its own task, so a slow answer delays nothing after it. Latency is
    /// counted from when a send was due, so a late send (a busy machine) counts against it.
    pub async fn paced(&self, bodies: Arc<Vec<Bytes>>, rate: f64) -> anyhow::Result<Sent> {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let mut senders = tokio::task::JoinSet::new();
        let mut at = Vec::with_capacity(bodies.len());
        let mut last_ack = Instant::now();
        let mut settle = |done: Result<anyhow::Result<Instant>, tokio::task::JoinError>| -> anyhow::Result<()> {
            last_ack = last_ack.max(done??);
            Ok(())
        };
        for i in 0..bodies.len() {
            at.push(ticker.tick().await.into_std());
            let (me, bodies) = (self.clone(), bodies.clone());
            senders.spawn(async move {
                me.send(&bodies[i], i).await?;
                anyhow::Ok(Instant::now())
            });
            // Fail fast on a refused event instead of sending for the rest of the run.
            while let Some(done) = senders.try_join_next() {
                settle(done)?;
            }
        }
        while let Some(done) = senders.join_next().await {
            settle(done)?;
        }
        Ok(Sent { at, last_ack, refusals: self.refusals.load(Ordering::Relaxed) })
    }
}
