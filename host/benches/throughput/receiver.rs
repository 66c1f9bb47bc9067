//! The destination every scenario delivers to: axum on loopback in the bench process. It
//! checks each delivery's Standard Webhooks signature, answers 200 and records when each
//! event arrived, by the unique `id` the bench put into the event's data (passthrough and
//! call-outcome-tagger both deliver the data with `id` unchanged).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use switchyard::signing::{self, Secret};
use tokio_util::sync::CancellationToken;

use crate::SECRET;

/// How long deliveries may make no progress before the scenario fails.
const STALL: Duration = Duration::from_secs(60);

pub struct Receiver {
    pub url: String,
    state: Arc<Tally>,
    stop: CancellationToken,
}

struct Tally {
    secret: Secret,
    /// Receipt time by event id; the first receipt counts, later ones are duplicates.
    receipts: Mutex<Vec<Option<Instant>>>,
    distinct: AtomicUsize,
    duplicates: AtomicUsize,
    bad_signatures: AtomicUsize,
    /// Bodies without a readable `id` in 0..expected: deliveries this bench never sent.
    unexpected: AtomicUsize,
}

#[derive(serde::Deserialize)]
struct Body {
    id: u64,
}

impl Receiver {
    /// Listens on 127.0.0.1:0 for deliveries of events `0..expected`.
    pub async fn start(expected: usize) -> anyhow::Result<Self> {
        let state = Arc::new(Tally {
            secret: Secret::parse(SECRET)?,
            receipts: Mutex::new(vec![None; expected]),
            distinct: AtomicUsize::new(0),
            duplicates: AtomicUsize::new(0),
            bad_signatures: AtomicUsize::new(0),
            unexpected: AtomicUsize::new(0),
        });
        let app = axum::Router::new().route("/hook", axum::routing::post(record)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await });
        Ok(Self { url, state, stop })
    }

    pub fn distinct(&self) -> usize {
        self.state.distinct.load(Ordering::Relaxed)
    }

    pub fn duplicates(&self) -> usize {
        self.state.duplicates.load(Ordering::Relaxed)
    }

    pub fn bad_signatures(&self) -> usize {
        self.state.bad_signatures.load(Ordering::Relaxed)
    }

    pub fn unexpected(&self) -> usize {
        self.state.unexpected.load(Ordering::Relaxed)
    }

    /// Waits until every expected event arrived. Fails when none arrived for `STALL`, saying
    /// how many did: a stuck router must end the run, not hang it.
    pub async fn wait_all(&self, what: &str) -> anyhow::Result<()> {
        let expected = self.state.receipts.lock().unwrap().len();
        let (mut seen, mut progress) = (self.distinct(), Instant::now());
        while seen < expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let now = self.distinct();
            if now > seen {
                (seen, progress) = (now, Instant::now());
            } else if progress.elapsed() > STALL {
                bail!("{what}: deliveries stalled: {seen} of {expected} arrived, none in the last {STALL:?}");
            }
        }
        Ok(())
    }

    /// When each event first arrived (`None`: not yet).
    pub fn receipts(&self) -> Vec<Option<Instant>> {
        self.state.receipts.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn record(State(tally): State<Arc<Tally>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    if !signed(&tally.secret, &headers, &body) {
        // Counted and reported, but still answered 200: a refusal would make the router
        // retry the same bad signature until the run stalls, hiding the figure.
        tally.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }
    let id = serde_json::from_slice::<Body>(&body).ok().and_then(|b| usize::try_from(b.id).ok());
    let mut receipts = tally.receipts.lock().unwrap();
    match id.and_then(|id| receipts.get_mut(id)) {
        Some(slot @ None) => {
            *slot = Some(at);
            tally.distinct.fetch_add(1, Ordering::Relaxed);
        }
        Some(Some(_)) => _ = tally.duplicates.fetch_add(1, Ordering::Relaxed),
        None => _ = tally.unexpected.fetch_add(1, Ordering::Relaxed),
    }
    StatusCode::OK
}

fn signed(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let checks = signing::Checks { now, tolerance_secs: 300, max_entries: 16 };
    signing::verify(secret, id, timestamp, signature, body, &checks).is_ok()
}
