//! Three nodes on one database under load; one is SIGKILLed and restarted, three times.
//! Every acknowledged event is delivered; a repeat (the killed node had sent it, or was
//! sending it, when it died) carries the same `webhook-id`. Then a route version applied
//! through one node is run by the other two, and the time it took to get there is printed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::postgres::TestDatabase;
use crate::support::{DataDir, Receiver};
use crate::{apply, call_event, forward_calls, receiver_ids, start_node, until_live};

const EVENTS: i64 = 900;

#[tokio::test]
async fn three_nodes_share_the_load_and_lose_nothing_when_one_is_killed() {
    let db = TestDatabase::create().await;
    let rx = Receiver::start().await;
    // A little slow, so each node has deliveries in flight when it is killed.
    rx.answer_after(Duration::from_millis(20));
    let dirs: Vec<DataDir> = (0..3).map(|_| DataDir::new()).collect();
    let mut nodes = Vec::new();
    for dir in &dirs {
        nodes.push(Some(start_node(dir.path(), &db.url).await));
    }
    let base = |nodes: &[Option<crate::support::process::Process>], i: usize| nodes[i].as_ref().unwrap().base.clone();
    forward_calls(&base(&nodes, 0), &rx.url("hook")).await;
    for i in 1..3 {
        until_live(&base(&nodes, i), 1).await;
    }

    // Load over all three, round robin; what a node does not acknowledge (it is dead, or
    // starting) goes to the next one.
    let bases = Arc::new(Mutex::new((0..3).map(|i| base(&nodes, i)).collect::<Vec<_>>()));
    let acked_by = Arc::new(Mutex::new([0usize; 3]));
    let load = tokio::spawn({
        let (bases, acked_by) = (bases.clone(), acked_by.clone());
        async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let mut acked = BTreeSet::new();
            for id in 0..EVENTS {
                let mut node = id as usize % 3;
                loop {
                    let url = format!("{}/v1/ingest/acme/calls", bases.lock().unwrap()[node]);
                    match http.post(url).json(&call_event(id)).send().await {
                        Ok(r) if r.status() == 202 => {
                            acked_by.lock().unwrap()[node] += 1;
                            acked.insert(id);
                            break;
                        }
                        _ => {
                            node = (node + 1) % 3;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            acked
        }
    });

    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let victim = round % 3;
        nodes[victim].take().unwrap().kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let node = start_node(dirs[victim].path(), &db.url).await;
        bases.lock().unwrap()[victim] = node.base.clone();
        nodes[victim] = Some(node);
    }
    let acked = load.await.unwrap();
    assert_eq!(acked.len(), EVENTS as usize, "every event was acknowledged by some node");
    let spread = *acked_by.lock().unwrap();
    assert!(spread.iter().all(|n| *n > 0), "every node took load: {spread:?}");

    // Everything acknowledged arrives, the killed nodes' share taken over by the others.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: BTreeSet<i64> = receiver_ids(&rx, "/hook").into_iter().map(|(id, _)| id).collect();
        let missing: Vec<_> = acked.difference(&got).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} acknowledged events never arrived: {missing:?}",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut webhook_ids: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for (id, webhook_id) in receiver_ids(&rx, "/hook") {
        webhook_ids.entry(id).or_default().insert(webhook_id);
    }
    let split: Vec<_> = webhook_ids.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(split.is_empty(), "repeats of one event must share a webhook-id: {split:?}");
    let repeats = receiver_ids(&rx, "/hook").len() - webhook_ids.len();
    println!("3 nodes, {EVENTS} events, 3 SIGKILLs: acknowledged per node {spread:?}, repeats {repeats}");

    // A version applied through node 1 is run by nodes 0 and 2.
    let version = apply(&base(&nodes, 1), &rx.url("v2")).await;
    assert_eq!(version, 2);
    for i in [0, 2] {
        let took = until_live(&base(&nodes, i), 2).await;
        println!("node {i} ran version 2 {took:?} after the apply on node 1");
    }
    let http = reqwest::Client::new();
    for (i, id) in [(0, 10_000), (2, 10_001)] {
        let resp =
            http.post(format!("{}/v1/ingest/acme/calls", base(&nodes, i))).json(&call_event(id)).send().await.unwrap();
        assert_eq!(resp.status(), 202);
    }
    let got: BTreeSet<i64> =
        rx.wait_for("/v2", 2, Duration::from_secs(20)).await.iter().map(|d| d.json()["id"].as_i64().unwrap()).collect();
    assert_eq!(got, BTreeSet::from([10_000, 10_001]));
    for node in nodes.into_iter().flatten() {
        node.kill();
    }
    drop(dirs);
    drop(db);
}
