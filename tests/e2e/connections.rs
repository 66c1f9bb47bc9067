//! What a client that connects and dawdles, or opens connections by the thousand, can hold:
//! `[server]` header-read and body deadlines (the former also closes idle keep-alive
//! connections) and the connection cap. Spoken in raw HTTP/1.1 over TCP, as an attacker would.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestRouter;

async fn connect(r: &TestRouter) -> TcpStream {
    TcpStream::connect(r.base.trim_start_matches("http://")).await.unwrap()
}

/// Everything the server sends until it closes the connection, or None if it is still open
/// after `wait`.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| String::from_utf8_lossy(&out).into_owned())
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let r = TestRouter::start_with(|c| c.server.header_read_timeout = Duration::from_millis(300)).await;
    // Half a request head, then nothing: closed at the deadline, not held forever.
    let mut slow = connect(&r).await;
    slow.write_all(b"POST /v1/ingest/acme/calls HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let answer = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(answer.is_some(), "a connection sending its headers slowly was kept open");

    // A finished request, then silence: the keep-alive connection is closed as idle.
    let mut idle = connect(&r).await;
    idle.write_all(HEALTH).await.unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(5)).await.expect("idle connection kept open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    r.stop().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_is_refused_at_its_deadline() {
    let r = TestRouter::start_with(|c| c.server.body_read_timeout = Duration::from_millis(500)).await;
    let mut s = connect(&r).await;
    let head = "POST /v1/ingest/acme/calls HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    // A byte every 100 ms: never idle for long, but far too slow in all.
    let trickle = async {
        for _ in 0..100 {
            if s.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), trickle).await;
    let answer = read_until_closed(&mut s, Duration::from_secs(5)).await.unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("server.body_read_timeout"), "{answer}");
    r.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_with_the_limit_named() {
    let r = TestRouter::start_with(|c| c.server.max_connections = 3).await;
    // Open connections that stay open (served, then idle) until one is refused. The test
    // client's own pooled connection may hold a slot too.
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() <= 3, "more than max_connections were served");
        let mut s = connect(&r).await;
        s.write_all(HEALTH).await.unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.unwrap();
        if &head == b"HTTP/1.1 503" {
            break read_until_closed(&mut s, Duration::from_secs(5)).await.expect("refused and closed");
        }
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(s);
    };
    assert!(!held.is_empty());
    assert!(refused.contains("server.max_connections"), "{refused}");

    // Closed connections give their slots back.
    held.clear();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = r.request(reqwest::Method::GET, "/healthz", None).await;
        if status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.stop().await;
}
