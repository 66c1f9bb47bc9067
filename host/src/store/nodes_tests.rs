//! Several nodes on one database (`nodes`): claims that never overlap, leases that only a
//! dead node loses, and a start that leaves live nodes' work alone. On both backends; on
//! SQLite two `Store`s on one file stand for two nodes (the router runs one), which is
//! enough to check the SQL.

use std::time::Duration;

use super::test_db::{TestStore, on_both_backends};
use super::*;
use crate::event::Event;

const LONG: Duration = Duration::from_secs(600);

async fn events(s: &Store, n: usize) -> Vec<crate::event::EventId> {
    let t = match s.tenant_by_name("acme").await.unwrap() {
        Some(t) => t,
        None => s.create_tenant("acme").await.unwrap(),
    };
    let batch: Vec<NewEvent> = (0..n)
        .map(|i| {
            let event = Event::sample("acme");
            NewEvent { tenant_id: t.id.clone(), upstream_id: format!("u{i}-{}", event.id), event, raw: "{}".into() }
        })
        .collect();
    s.insert_events(&batch).await.unwrap();
    batch.into_iter().map(|e| e.event.id).collect()
}

async fn claims_by_two_nodes_never_overlap(s: TestStore) {
    let other = s.reopen().await;
    s.start_node(LONG).await.unwrap();
    let ids = events(&s, 40).await;
    let lease = now_ms() + 60_000;
    // Both nodes poll at once, each for more than half, until there is nothing left.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    loop {
        let (x, y) = tokio::join!(s.claim_pending_events(30, &[], lease), other.claim_pending_events(30, &[], lease));
        let (x, y) = (x.unwrap(), y.unwrap());
        if x.is_empty() && y.is_empty() {
            break;
        }
        a.extend(x);
        b.extend(y);
    }
    let mut all: Vec<_> = a.iter().chain(&b).map(|r| r.id.clone()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), a.len() + b.len(), "no event was claimed by both");
    assert_eq!(all.len(), ids.len(), "every event was claimed by one of them");
    let owners = s.count_for_test(&format!("SELECT COUNT(*) FROM events WHERE lease_owner = '{}'", s.node())).await;
    assert_eq!(owners, a.len() as i64, "each lease names the node that took it");
}

async fn a_live_nodes_leases_survive_another_nodes_start_and_a_dead_nodes_are_taken_over(s: TestStore) {
    s.start_node(LONG).await.unwrap();
    events(&s, 3).await;
    let held = s.claim_pending_events(10, &[], now_ms() + 600_000).await.unwrap();
    assert_eq!(held.len(), 3);

    // A second node starts (on PostgreSQL a node of its own; on SQLite the file's only
    // process, which frees everything: there can be no other).
    let second = s.reopen().await;
    let taken = second.start_node(LONG).await.unwrap();
    if second.is_shared() {
        assert_eq!((taken.events, taken.deliveries), (0, 0), "a start leaves a live node's leases: {taken:?}");
        assert!(second.claim_pending_events(10, &[], now_ms() + 600_000).await.unwrap().is_empty());
        assert!(second.take_over(LONG, true).await.unwrap().dead_nodes.is_empty(), "the first node is alive");
    } else {
        assert_eq!(taken.events, 3);
        return;
    }

    // The first node stops heartbeating: after node_timeout it is dead, and its work moves.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(second.heartbeat().await.unwrap(), "the second node's row is there");
    let taken = second.take_over(Duration::from_millis(200), false).await.unwrap();
    assert_eq!(taken.dead_nodes, [s.node().to_owned()]);
    assert_eq!(taken.events, 3);
    assert_eq!(second.claim_pending_events(10, &[], now_ms() + 600_000).await.unwrap().len(), 3);

    // The first node comes back: its heartbeat finds its row gone, and says so.
    assert!(!s.heartbeat().await.unwrap(), "a node taken for dead learns it");
    assert!(s.heartbeat().await.unwrap(), "and is registered again");
}

async fn leaving_gives_back_only_this_nodes_leases(s: TestStore) {
    s.start_node(LONG).await.unwrap();
    let other = s.reopen().await;
    events(&s, 4).await;
    let mine = s.claim_pending_events(2, &[], now_ms() + 600_000).await.unwrap();
    let theirs = other.claim_pending_events(10, &[], now_ms() + 600_000).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (2, 2));
    s.leave().await.unwrap();
    let again = other.claim_pending_events(10, &[], now_ms() + 600_000).await.unwrap();
    let mut got: Vec<_> = again.iter().map(|r| r.id.clone()).collect();
    got.sort();
    let mut want: Vec<_> = mine.iter().map(|r| r.id.clone()).collect();
    want.sort();
    assert_eq!(got, want, "the leaving node's events, and no others");
    assert_eq!(s.nodes().await.unwrap().len(), 0, "its row is gone");
}

async fn an_expired_lease_is_swept_even_from_a_live_node(s: TestStore) {
    s.start_node(LONG).await.unwrap();
    events(&s, 1).await;
    // A lease that ran out a second ago (lease_until is the longest any lease lasts).
    assert_eq!(s.claim_pending_events(10, &[], now_ms() - 1_000).await.unwrap().len(), 1);
    let other = s.reopen().await;
    assert!(other.claim_pending_events(10, &[], now_ms()).await.unwrap().is_empty());
    assert_eq!(other.take_over(LONG, false).await.unwrap().events, 0, "without a sweep, only dead nodes count");
    assert_eq!(other.take_over(LONG, true).await.unwrap().events, 1);
    assert_eq!(other.claim_pending_events(10, &[], now_ms() + 1_000).await.unwrap().len(), 1);
}

async fn change_locks_exclude_each_other_per_tenant(s: TestStore) {
    if !s.is_shared() {
        return; // one process: the router's in-process lock is the only one needed
    }
    let other = s.reopen().await;
    let (a, b) = (crate::event::TenantId::generate(), crate::event::TenantId::generate());
    let held = s.lock_changes(&a).await.unwrap();
    // Another tenant's lock is free; the same tenant's waits until the first is dropped.
    drop(other.lock_changes(&b).await.unwrap());
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let _lock = other.lock_changes(&a).await.unwrap();
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the second lock waits");
    drop(held);
    assert!(waiting.await.unwrap() >= Duration::from_millis(300));
}

async fn changes_are_announced_to_other_nodes_and_not_echoed(s: TestStore) {
    let other = s.reopen().await;
    let Some(mut listener) = other.listen().await.unwrap() else {
        assert!(!s.is_shared(), "only SQLite has no notices");
        return;
    };
    let mut own = s.listen().await.unwrap().unwrap();
    let t = crate::event::TenantId::generate();
    s.announce(Change::Routes(t.clone())).await;
    s.announce(Change::Sources).await;
    let wait = Duration::from_secs(5);
    assert_eq!(tokio::time::timeout(wait, listener.next()).await.unwrap().unwrap(), Some(Change::Routes(t)));
    assert_eq!(tokio::time::timeout(wait, listener.next()).await.unwrap().unwrap(), Some(Change::Sources));
    let echoed = tokio::time::timeout(Duration::from_millis(300), own.next()).await;
    assert!(echoed.is_err(), "a node does not hear its own notices");
}

on_both_backends!(
    claims_by_two_nodes_never_overlap,
    a_live_nodes_leases_survive_another_nodes_start_and_a_dead_nodes_are_taken_over,
    leaving_gives_back_only_this_nodes_leases,
    an_expired_lease_is_swept_even_from_a_live_node,
    change_locks_exclude_each_other_per_tenant,
    changes_are_announced_to_other_nodes_and_not_echoed,
);
