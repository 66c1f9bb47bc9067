//! Hot reload is atomic: 100 route versions applied while a load generator sends events;
//! every acknowledged event is handled exactly once, by exactly the one version it recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Receiver, TestRouter, WAIT, route};

const RELOADS: i64 = 100;
/// Events are listed back in one page of at most 1000.
const MAX_EVENTS: usize = 900;

#[tokio::test]
async fn a_hundred_reloads_under_load_handle_every_event_once_on_one_version() {
    let rx = Receiver::start().await;
    let r = Arc::new(TestRouter::start().await);
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    r.plugin("acme", "passthrough").await;
    // Version n delivers to /v{n}: where an event arrives says which version handled it.
    let doc = |n: i64| json!({"routes": [route("all", "crm", &[], &["passthrough"], &rx.url(&format!("v{n}")))]});
    assert_eq!(r.routes("acme", doc(1)).await, 1);

    // Load: four concurrent senders, each recording the payload ids acknowledged with 202.
    let stop = Arc::new(AtomicBool::new(false));
    // Acknowledgements so far, and senders that have sent their share.
    let (sent, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut senders = Vec::new();
    for lane in 0..4usize {
        let (r, stop, sent, finished) = (r.clone(), stop.clone(), sent.clone(), finished.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = lane;
            while !stop.load(Ordering::Relaxed) && i < MAX_EVENTS {
                let body = json!({"event": "lead.created", "timestamp": "2026-03-25T18:35:00Z", "payload": {"n": i}});
                let (status, resp) = r.ingest("acme", "crm", body.to_string().as_bytes(), &[]).await;
                assert_eq!(status, StatusCode::ACCEPTED, "{resp}");
                acked.push(i);
                sent.fetch_add(1, Ordering::Relaxed);
                i += 4;
            }
            finished.fetch_add(1, Ordering::Relaxed);
            acked
        }));
    }
    for n in 2..=RELOADS + 1 {
        let before = sent.load(Ordering::Relaxed);
        assert_eq!(r.routes("acme", doc(n)).await, n);
        // An event acknowledged under each version before the next apply (while the senders
        // have some left), so events spread over the versions however busy the machine is.
        let deadline = tokio::time::Instant::now() + WAIT;
        while sent.load(Ordering::Relaxed) == before && finished.load(Ordering::Relaxed) < 4 {
            assert!(tokio::time::Instant::now() < deadline, "no event was acknowledged after version {n}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = BTreeSet::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(acked.len() > 100, "the load generator ran during the reloads ({} events)", acked.len());

    // Every event processed, on one version each (from the event records).
    let deadline = tokio::time::Instant::now() + WAIT;
    let events = loop {
        let events = r.get("/v1/tenants/acme/events?limit=1000").await["events"].as_array().unwrap().clone();
        if events.len() == acked.len() && events.iter().all(|e| e["status"] == "processed") {
            break events;
        }
        assert!(tokio::time::Instant::now() < deadline, "not all events processed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let versions_used: BTreeSet<i64> = events.iter().map(|e| e["route_version"].as_i64().unwrap()).collect();
    assert!(versions_used.len() >= 10, "events spread over the reloads: versions {versions_used:?}");

    // Every acknowledged event delivered exactly once, to the version its record names.
    let deadline = tokio::time::Instant::now() + WAIT;
    while rx.accepted().len() < acked.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // would-be duplicates arrive too
    let mut delivered: BTreeMap<i64, (String, usize)> = BTreeMap::new();
    for d in rx.accepted() {
        let n = d.json()["n"].as_i64().unwrap();
        let entry = delivered.entry(n).or_insert_with(|| (d.path.clone(), 0));
        entry.1 += 1;
        assert_eq!(entry.0, d.path, "event {n} went to two versions");
    }
    assert_eq!(delivered.keys().map(|n| *n as usize).collect::<BTreeSet<_>>(), acked, "lost or unexpected events");
    for (n, (path, count)) in &delivered {
        assert_eq!(*count, 1, "event {n} delivered {count} times");
        let version: i64 = path.trim_start_matches("/v").parse().unwrap();
        assert!((1..=RELOADS + 1).contains(&version), "{path}");
    }
    // The record and the delivery agree for every event: the version it started on is the
    // one that delivered it.
    for e in &events {
        let detail = r.get(&format!("/v1/tenants/acme/events/{}", e["id"].as_str().unwrap())).await;
        let n = detail["data"]["n"].as_i64().unwrap_or_else(|| panic!("no payload: {detail}"));
        assert_eq!(delivered[&n].0, format!("/v{}", e["route_version"]), "event {n}");
        assert_eq!(detail["deliveries"].as_array().unwrap().len(), 1, "one delivery queued for event {n}");
    }
    Arc::try_unwrap(r).ok().unwrap().stop().await;
}
