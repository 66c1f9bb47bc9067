//! A node's restart must not take the leases a live node holds: before nodes had ids, every
//! start released every lease, and a restarted node would send a second copy of a delivery
//! another node was still sending.

use std::time::Duration;

use crate::support::postgres::TestDatabase;
use crate::support::{DataDir, Receiver};
use crate::{call, call_event, forward_calls, start_node, until_live};

#[tokio::test]
async fn restarting_a_node_sends_no_second_copy_of_a_live_nodes_delivery() {
    let db = TestDatabase::create().await;
    let rx = Receiver::start().await;
    // Slow enough that the restart below happens while the attempt is in flight.
    rx.answer_after(Duration::from_secs(3));
    let (dir_a, dir_b) = (DataDir::new(), DataDir::new());
    let a = start_node(dir_a.path(), &db.url).await;
    let b = start_node(dir_b.path(), &db.url).await;
    forward_calls(&a.base, &rx.url("hook")).await;
    until_live(&b.base, 1).await;

    // Node B ingests the event, so B processes it and sends it (memory holds it, leased).
    let (status, body) = {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/ingest/acme/calls", b.base))
            .json(&call_event(1))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(status, 202, "{body}");
    let event = body["id"].as_str().unwrap().to_owned();
    rx.wait_for("/hook", 1, Duration::from_secs(20)).await;

    // While B waits for the receiver, A is killed and started again: a new node, which
    // polls for due deliveries every 50 ms.
    a.kill();
    let a = start_node(dir_a.path(), &db.url).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, detail) = call(&b.base, reqwest::Method::GET, &format!("/v1/tenants/acme/events/{event}"), None).await;
        if detail["deliveries"][0]["status"] == "delivered" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never delivered: {detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past B's attempt, and past several of A's polls.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count("/hook"), 1, "one copy: the restarted node left the live node's lease alone");
    a.kill();
    b.kill();
    drop((dir_a, dir_b, db));
}
