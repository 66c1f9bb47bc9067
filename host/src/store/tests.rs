use super::*;
use crate::event::{DeliveryId, Event, EventId};

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    (dir, store)
}

fn event(tenant: &str) -> Event {
    Event {
        id: EventId::generate(),
        tenant: tenant.into(),
        source: "calls".into(),
        event_type: "call.ended".into(),
        time: "2026-03-25T18:35:00Z".parse().unwrap(),
        subject: None,
        data: "{}".into(),
        attributes: vec![],
    }
}

#[tokio::test]
async fn events_are_stored_once_per_upstream_id() {
    let (_d, s) = store().await;
    let t = s.create_tenant("acme").await.unwrap();
    assert!(matches!(s.create_tenant("acme").await, Err(StoreError::Conflict(_))));
    let first = event("acme");
    let new = |ev: &Event| NewEvent {
        tenant_id: t.id.clone(),
        upstream_id: "up-1".into(),
        event: ev.clone(),
        raw: "{}".into(),
    };
    assert_eq!(s.insert_event(new(&first)).await.unwrap(), InsertOutcome::Stored(first.id.clone()));
    let again = event("acme");
    assert_eq!(s.insert_event(new(&again)).await.unwrap(), InsertOutcome::Duplicate(first.id.clone()));

    // In one batch: a new event, and two copies of another, the second a duplicate of the first.
    let (b1, b2, b3) = (event("acme"), event("acme"), event("acme"));
    let mut twin = new(&b3);
    twin.upstream_id = "up-3".into();
    let mut other = new(&b2);
    other.upstream_id = "up-3".into();
    let mut fresh = new(&b1);
    fresh.upstream_id = "up-2".into();
    let outcomes = s.insert_events(&[fresh, other, twin]).await.unwrap();
    assert_eq!(
        outcomes,
        [
            InsertOutcome::Stored(b1.id.clone()),
            InsertOutcome::Stored(b2.id.clone()),
            InsertOutcome::Duplicate(b2.id.clone())
        ]
    );
    assert_eq!(s.count_events("pending").await.unwrap(), 3);
    s.complete_event(&b1.id, None, &[], &[]).await.unwrap();
    s.complete_event(&b2.id, None, &[], &[]).await.unwrap();
    assert_eq!(s.count_events("pending").await.unwrap(), 1);

    let pending = s.pending_events(10, &[]).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].to_event().tenant, "acme");
    assert!(s.pending_events(10, std::slice::from_ref(&first.id)).await.unwrap().is_empty());
}

#[tokio::test]
async fn completing_an_event_queues_deliveries_once() {
    let (_d, s) = store().await;
    let t = s.create_tenant("acme").await.unwrap();
    let ev = event("acme");
    s.insert_event(NewEvent { tenant_id: t.id.clone(), upstream_id: "u".into(), event: ev.clone(), raw: "{}".into() })
        .await
        .unwrap();
    let delivery = NewDelivery {
        id: DeliveryId::generate(),
        tenant_id: t.id.clone(),
        event_id: ev.id.clone(),
        route: "r".into(),
        url: "http://127.0.0.1:9/".into(),
        secret: "whsec_x".into(),
        event_type: "call.ended".into(),
        content_type: "application/json".into(),
        body: b"{}".to_vec(),
        not_before: now_ms(),
    };
    let results = [RouteResult { route: "r".into(), outcome: RouteOutcome::Emitted, detail: None, outputs: 1 }];
    s.complete_event(&ev.id, Some(1), &results, std::slice::from_ref(&delivery)).await.unwrap();
    // A second completion (a crashed run replayed) changes nothing.
    s.complete_event(&ev.id, Some(1), &results, &[NewDelivery { id: DeliveryId::generate(), ..delivery.clone() }])
        .await
        .unwrap();
    assert_eq!(s.count_deliveries(DeliveryStatus::Pending).await.unwrap(), 1);

    let claimed = s.claim_due_deliveries(10, now_ms() + 60_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // Leased: not claimable again until the lease runs out.
    assert!(s.claim_due_deliveries(10, now_ms() + 60_000).await.unwrap().is_empty());

    let rec = AttemptRecord {
        started_at: now_ms(),
        duration_ms: 3,
        status_code: Some(500),
        error: Some("HTTP 500".into()),
        response_snippet: Some("boom".into()),
        status: DeliveryStatus::Dead,
        next_attempt_at: None,
    };
    s.record_attempt(&delivery.id, 1, &rec).await.unwrap();
    let detail = s.delivery_detail(&t.id, &delivery.id).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Dead);
    assert_eq!(detail.attempts_log.len(), 1);
    assert_eq!(detail.attempts_log[0].status_code, Some(500));

    assert!(s.replay_delivery(&t.id, &delivery.id).await.unwrap());
    assert!(!s.replay_delivery(&t.id, &delivery.id).await.unwrap(), "already pending");
    let again = s.claim_due_deliveries(10, now_ms() + 60_000).await.unwrap();
    assert_eq!((again[0].attempts, again[0].tries), (1, 0));
}

#[tokio::test]
async fn plugin_and_route_versions_count_up_per_tenant() {
    let (_d, s) = store().await;
    let a = s.create_tenant("a").await.unwrap();
    let b = s.create_tenant("b").await.unwrap();
    assert_eq!(s.insert_plugin_version(&a.id, "p", "h1", b"x").await.unwrap().version, 1);
    assert_eq!(s.insert_plugin_version(&a.id, "p", "h2", b"y").await.unwrap().version, 2);
    assert_eq!(s.insert_plugin_version(&b.id, "p", "h3", b"z").await.unwrap().version, 1);
    assert_eq!(s.plugin_version(&a.id, "p", None).await.unwrap().unwrap().meta.sha256, "h2");
    assert_eq!(s.plugin_version(&a.id, "p", Some(1)).await.unwrap().unwrap().wasm, b"x");
    assert!(s.plugin_version(&a.id, "p", Some(3)).await.unwrap().is_none());

    assert_eq!(s.insert_route_set(&a.id, "{}").await.unwrap().version, 1);
    assert_eq!(s.insert_route_set(&a.id, "{\"v\":2}").await.unwrap().version, 2);
    let live = s.latest_route_sets().await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].document, "{\"v\":2}");
}

#[tokio::test]
async fn kv_is_private_to_a_tenant() {
    let (_d, s) = store().await;
    let a = s.create_tenant("a").await.unwrap();
    let b = s.create_tenant("b").await.unwrap();
    s.kv_set(&a.id, "k", "1").await.unwrap();
    s.kv_set(&a.id, "k", "2").await.unwrap();
    assert_eq!(s.kv_get(&a.id, "k").await.unwrap().as_deref(), Some("2"));
    assert_eq!(s.kv_get(&b.id, "k").await.unwrap(), None);
    s.kv_delete(&a.id, "k").await.unwrap();
    assert_eq!(s.kv_get(&a.id, "k").await.unwrap(), None);
}
