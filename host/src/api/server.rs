//! The HTTP server: hyper's HTTP/1 connection driver under the limits of `[server]`, which
//! `axum::serve` does not offer. A client that connects and dawdles, or opens connections by
//! the thousand, holds only what these limits give it:
//! - `header_read_timeout`: a request's headers must arrive in time. hyper counts it from when
//!   the connection waits for a request, so an idle keep-alive connection is closed too.
//! - `body_read_timeout`: the whole body must arrive in time (a deadline, not a per-read
//!   timeout, so a byte every few seconds does not keep a request alive).
//! - `max_connections`: past it, a new connection is answered 503, naming the limit, and
//!   closed, so the connections already open keep working.
//!
//! HTTP/1.1 only: webhook senders and the CLI speak it, and it keeps one timeout model.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::Service as _;

use crate::config::ServerConfig;

/// How long shutdown lets open requests finish before dropping their connections.
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown`, then lets requests in flight finish (at most
/// `CLOSE_DEADLINE`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ServerConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let body_deadline = limits.body_read_timeout;
    let refusals = Arc::new(AtomicI64::new(0));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: pause instead of spinning.
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream, limits.max_connections, refusals.clone()));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let request = request.map(|body| Body::new(DeadlineBody::new(body, body_deadline)));
            app.clone().call(request)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let stop = shutdown.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("connection closed: {e}");
            }
            drop(slot);
        });
    }
    if tokio::time::timeout(CLOSE_DEADLINE, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("requests still open at shutdown were dropped");
    }
    Ok(())
}

/// Answers a connection over `server.max_connections` with a 503 that names the limit, and
/// closes it. Logged at most once a minute: under a flood the log would be the next victim.
async fn refuse(mut stream: TcpStream, limit: usize, last_logged: Arc<AtomicI64>) {
    let now = crate::store::now_ms();
    let last = last_logged.load(Ordering::Relaxed);
    if now - last >= 60_000 && last_logged.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        tracing::warn!(limit, "refusing connections: server.max_connections reached");
    }
    let body = format!(
        r#"{{"error":{{"code":"overloaded","message":"the router has {limit} connections open (server.max_connections); retry later"}}}}"#
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Read what the client sent before closing: closing with unread input would reset
        // the connection, and the client could lose the answer.
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// A request body that must arrive in whole before a deadline.
struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl DeadlineBody {
    fn new(body: Incoming, limit: Duration) -> Self {
        Self { body, deadline: Box::pin(tokio::time::sleep(limit)), limit }
    }
}

/// The body did not arrive within `server.body_read_timeout`; the API answers 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {}s (server.body_read_timeout)", .0.as_secs_f64())]
pub struct BodyTimedOut(Duration);

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
