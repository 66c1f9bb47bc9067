//! A real HTTP receiver on loopback that records every delivery and answers with a scripted
//! sequence of status codes (then 200).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    /// The status this receiver answered with.
    pub answered: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived (the isolation measurements' latencies).
    #[allow(dead_code)]
    pub at: Instant,
}

impl Delivery {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("delivery body is JSON")
    }
}

#[derive(Default)]
struct Inner {
    seen: Vec<Delivery>,
    script: VecDeque<u16>,
    /// How long each answer takes (a slow receiver); recorded on arrival, answered after.
    delay: Duration,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = axum::Router::new().route("/{*path}", post(record)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The next requests get these status codes, in order; after that, 200.
    pub fn respond_with(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().script.extend(statuses);
    }

    /// Answers every request after `delay` (each is recorded when it arrives). Used by the
    /// several-nodes suite (`tests/nodes`), which shares these helpers.
    #[allow(dead_code)]
    pub fn answer_after(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// Forgets the rest of the scripted answers: from now on, 200.
    pub fn clear_script(&self) {
        self.inner.lock().unwrap().script.clear();
    }

    /// Requests this receiver answered with 2xx.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.deliveries().into_iter().filter(|d| (200..300).contains(&d.answered)).collect()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn on_path(&self, path: &str) -> Vec<Delivery> {
        self.deliveries().into_iter().filter(|d| d.path == path).collect()
    }

    /// Waits until at least `n` requests arrived on `path`, or panics after `timeout`.
    pub async fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Counted in place: copying every delivery on each poll would load the machine
            // that load tests measure.
            if self.count(path) >= n {
                return self.on_path(path);
            }
            if tokio::time::Instant::now() >= deadline {
                let got = self.on_path(path);
                panic!("expected {n} deliveries on {path}, got {}: {got:#?}", got.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many requests arrived on `path`.
    pub fn count(&self, path: &str) -> usize {
        self.inner.lock().unwrap().seen.iter().filter(|d| d.path == path).count()
    }
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (code, delay) = {
        let mut inner = inner.lock().unwrap();
        let code = inner.script.pop_front().unwrap_or(200);
        inner.seen.push(Delivery { path: uri.path().to_owned(), answered: code, headers, body, at: Instant::now() });
        (code, inner.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(code).unwrap()
}
