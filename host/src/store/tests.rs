//! The store's conformance suite: every test runs on SQLite and on PostgreSQL (a database
//! of its own), the same body on both (`on_both_backends!` at the end).

use super::test_db::{TestStore, on_both_backends};
use super::*;
use crate::event::{DeliveryId, Event, EventId, TenantId};

fn event(tenant: &str) -> Event {
    Event::sample(tenant)
}

async fn events_are_stored_once_per_upstream_id(s: TestStore) {
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

    let lease = now_ms() + 60_000;
    assert!(s.claim_pending_events(10, std::slice::from_ref(&t.id), lease).await.unwrap().is_empty());
    let pending = s.claim_pending_events(10, &[], lease).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].to_event().tenant, "acme");
    assert!(s.claim_pending_events(10, &[], lease).await.unwrap().is_empty(), "leased: not claimed twice");
    assert_eq!(s.release_leases().await.unwrap(), (0, 1));
    assert_eq!(s.claim_pending_events(10, &[], lease).await.unwrap().len(), 1, "released at start-up");
}

async fn completing_an_event_queues_deliveries_once(s: TestStore) {
    let t = s.create_tenant("acme").await.unwrap();
    let ev = event("acme");
    s.insert_event(NewEvent { tenant_id: t.id.clone(), upstream_id: "u".into(), event: ev.clone(), raw: "{}".into() })
        .await
        .unwrap();
    let delivery = new_delivery(&t.id, &ev.id, now_ms());
    let results = [RouteResult { route: "r".into(), outcome: RouteOutcome::Emitted, detail: None, outputs: 1 }];
    s.complete_event(&ev.id, Some(1), &results, std::slice::from_ref(&delivery)).await.unwrap();
    // A second completion (a crashed run replayed) changes nothing.
    s.complete_event(&ev.id, Some(1), &results, &[NewDelivery { id: DeliveryId::generate(), ..delivery.clone() }])
        .await
        .unwrap();
    assert_eq!(s.count_deliveries(DeliveryStatus::Pending).await.unwrap(), 1);

    let claimed = s.claim_due_deliveries(10, &[], now_ms() + 60_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // Leased: not claimable again until the lease runs out.
    assert!(s.claim_due_deliveries(10, &[], now_ms() + 60_000).await.unwrap().is_empty());

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
    let again = s.claim_due_deliveries(10, &[], now_ms() + 60_000).await.unwrap();
    assert_eq!((again[0].attempts, again[0].tries), (1, 0));
}

/// A delivery of `event` to a local URL, due at `not_before`.
fn new_delivery(tenant: &TenantId, event: &EventId, not_before: i64) -> NewDelivery {
    NewDelivery {
        id: DeliveryId::generate(),
        tenant_id: tenant.clone(),
        event_id: event.clone(),
        route: "r".into(),
        url: "http://127.0.0.1:9/".into(),
        secret: "whsec_x".into(),
        event_type: "call.ended".into(),
        content_type: "application/json".into(),
        body: b"{}".to_vec(),
        not_before,
        traceparent: None,
    }
}

/// Stores one processed event of `tenant` with `n` due deliveries.
async fn due_deliveries(s: &Store, tenant: &Tenant, n: usize) {
    let ev = event(&tenant.name);
    s.insert_event(NewEvent {
        tenant_id: tenant.id.clone(),
        upstream_id: ev.id.to_string(),
        event: ev.clone(),
        raw: "{}".into(),
    })
    .await
    .unwrap();
    let deliveries: Vec<NewDelivery> = (0..n).map(|_| new_delivery(&tenant.id, &ev.id, now_ms() - 1000)).collect();
    let results = [RouteResult { route: "r".into(), outcome: RouteOutcome::Emitted, detail: None, outputs: 1 }];
    s.complete_event(&ev.id, Some(1), &results, &deliveries).await.unwrap();
}

async fn due_deliveries_are_claimed_with_tenants_taking_turns(s: TestStore) {
    let busy = s.create_tenant("busy").await.unwrap();
    let quiet = s.create_tenant("quiet").await.unwrap();
    due_deliveries(&s, &busy, 50).await;
    due_deliveries(&s, &quiet, 2).await;
    let lease = now_ms() + 60_000;
    // A batch of four, with fifty of one tenant's ahead: both tenants get two.
    let batch = s.claim_due_deliveries(4, &[], lease).await.unwrap();
    let of = |t: &Tenant| batch.iter().filter(|j| j.tenant_id == t.id).count();
    assert_eq!((of(&busy), of(&quiet)), (2, 2));
    // A tenant holding its share of memory is left out.
    let rest = s.claim_due_deliveries(100, std::slice::from_ref(&busy.id), lease).await.unwrap();
    assert!(rest.is_empty(), "the quiet tenant's are all claimed, the busy one is skipped");
    assert_eq!(s.claim_due_deliveries(100, &[], lease).await.unwrap().len(), 48);
}

async fn plugin_and_route_versions_count_up_per_tenant(s: TestStore) {
    let a = s.create_tenant("a").await.unwrap();
    let b = s.create_tenant("b").await.unwrap();
    let v = |sha256, wasm| NewPluginVersion { sha256, world: "w", imports: &[], wasm };
    assert_eq!(s.insert_plugin_version(&a.id, "p", &v("h1", b"x")).await.unwrap().version, 1);
    assert_eq!(s.insert_plugin_version(&a.id, "p", &v("h2", b"y")).await.unwrap().version, 2);
    assert_eq!(s.insert_plugin_version(&b.id, "p", &v("h3", b"z")).await.unwrap().version, 1);
    s.insert_plugin_version(&a.id, "q", &v("h4", b"w")).await.unwrap();
    assert_eq!(s.plugin_version(&a.id, "p", None).await.unwrap().unwrap().meta.sha256, "h2");
    assert_eq!(s.plugin_version(&a.id, "p", Some(1)).await.unwrap().unwrap().wasm, b"x");
    assert!(s.plugin_version(&a.id, "p", Some(3)).await.unwrap().is_none());
    assert_eq!(s.plugin_counts(&a.id, "p").await.unwrap(), (2, 2));
    assert_eq!(s.plugin_counts(&a.id, "new").await.unwrap(), (2, 0));
    assert!(s.delete_plugin_version(&a.id, "p", 1).await.unwrap());
    assert!(!s.delete_plugin_version(&a.id, "p", 1).await.unwrap());
    let versions: Vec<i64> = s.plugin_versions(&a.id, "p").await.unwrap().iter().map(|m| m.version).collect();
    assert_eq!(versions, [2]);
    assert_eq!(
        s.insert_plugin_version(&a.id, "p", &v("h5", b"v")).await.unwrap().version,
        3,
        "numbers are never reused while a later version exists"
    );

    assert_eq!(s.insert_route_set(&a.id, "{}", RouteOrigin::Api).await.unwrap().version, 1);
    let doc2 = r#"{"routes":[{"name":"r"}]}"#;
    assert_eq!(s.insert_route_set(&a.id, doc2, RouteOrigin::File).await.unwrap().version, 2);
    let live = s.latest_route_sets().await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].document, doc2);
    assert_eq!(s.route_set(&a.id, Some(1)).await.unwrap().unwrap().document, "{}");
    let listed: Vec<(i64, RouteOrigin, i64)> =
        s.route_versions(&a.id).await.unwrap().iter().map(|r| (r.version, r.origin, r.routes)).collect();
    assert_eq!(listed, [(2, RouteOrigin::File, 1), (1, RouteOrigin::Api, 0)]);
}

async fn a_damaged_import_list_is_an_error_not_an_empty_list(s: TestStore) {
    let a = s.create_tenant("a").await.unwrap();
    let imports = ["switchyard:plugin/kv".to_owned()];
    let new = NewPluginVersion { sha256: "h", world: "w", imports: &imports, wasm: b"x" };
    s.insert_plugin_version(&a.id, "p", &new).await.unwrap();
    assert_eq!(s.plugin_version(&a.id, "p", None).await.unwrap().unwrap().meta.imports, imports);

    // An empty list would pass every grant check: a row that does not decode must not.
    s.exec_for_test("UPDATE plugins SET imports = '{damaged'").await;
    assert!(s.plugin_version(&a.id, "p", None).await.is_err());
    assert!(s.plugin_versions(&a.id, "p").await.is_err());
}

async fn api_keys_resolve_to_their_tenant_until_revoked(s: TestStore) {
    let a = s.create_tenant("a").await.unwrap();
    let (row, key) = s.create_api_key(&a.id, "ci").await.unwrap();
    assert!(key.starts_with(KEY_PREFIX) && key.starts_with(&row.prefix) && key.len() > 60);
    assert_eq!(s.tenant_for_key(&key).await.unwrap().unwrap().name, "a");
    assert!(s.tenant_for_key(&format!("{key}x")).await.unwrap().is_none());
    assert!(s.list_api_keys(&a.id).await.unwrap()[0].last_used_at.is_some(), "use is recorded");
    assert!(s.revoke_api_key(&a.id, &row.id).await.unwrap());
    assert!(s.tenant_for_key(&key).await.unwrap().is_none(), "a revoked key opens nothing");
    let b = s.create_tenant("b").await.unwrap();
    assert!(!s.revoke_api_key(&b.id, &row.id).await.unwrap(), "another tenant's key is not found");
}

async fn pending_events_take_turns_across_tenants_however_long_a_backlog(s: TestStore) {
    let (a, b) = (s.create_tenant("a").await.unwrap(), s.create_tenant("b").await.unwrap());
    let mut ids = Vec::new();
    for (tenant, name, n) in [(&a, "a", 6), (&b, "b", 2)] {
        for i in 0..n {
            let ev = event(name);
            ids.push(ev.id.clone());
            let new = NewEvent {
                tenant_id: tenant.id.clone(),
                upstream_id: format!("{name}-{i}"),
                event: ev,
                raw: "{}".into(),
            };
            s.insert_event(new).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    let tenants = |rows: Vec<EventRow>| rows.iter().map(|r| r.to_event().tenant).collect::<Vec<_>>().join(",");
    let lease = now_ms() + 60_000;
    let claim = |n, skip: &[TenantId]| {
        let (s, skip) = (s.clone(), skip.to_vec());
        async move { s.claim_pending_events(n, &skip, lease).await.unwrap() }
    };
    assert_eq!(tenants(claim(5, &[]).await), "a,b,a,b,a");
    s.release_leases().await.unwrap();
    assert_eq!(tenants(claim(2, &[]).await), "a,b");
    s.release_leases().await.unwrap();
    // Events held (leased) do not use up a tenant's turns.
    let held = claim(1, &[]).await;
    assert_eq!(held[0].id, ids[0]);
    let rows = claim(3, &[]).await;
    assert_eq!(tenants(rows.clone()), "a,b,a");
    assert_eq!(rows[0].id, ids[1], "a's oldest event not held");
    s.release_leases().await.unwrap();
    assert_eq!(tenants(claim(8, std::slice::from_ref(&a.id)).await), "b,b");
}

async fn kv_is_private_to_a_tenant(s: TestStore) {
    let a = s.create_tenant("a").await.unwrap();
    let b = s.create_tenant("b").await.unwrap();
    let writes = |pairs: &[(&str, Option<&str>)]| -> std::collections::HashMap<String, Option<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_owned))).collect()
    };
    s.kv_apply(&a.id, &writes(&[("k", Some("1")), ("other", Some("x"))])).await.unwrap();
    s.kv_apply(&a.id, &writes(&[("k", Some("2"))])).await.unwrap();
    assert_eq!(s.kv_get(&a.id, "k").await.unwrap().as_deref(), Some("2"));
    assert_eq!(s.kv_get(&a.id, "other").await.unwrap().as_deref(), Some("x"));
    assert_eq!(s.kv_get(&b.id, "k").await.unwrap(), None);
    s.kv_apply(&a.id, &writes(&[("k", None)])).await.unwrap();
    assert_eq!(s.kv_get(&a.id, "k").await.unwrap(), None);
    assert_eq!(s.kv_get(&a.id, "other").await.unwrap().as_deref(), Some("x"), "only the deleted key");
}

async fn kv_usage_is_kept_by_the_database_and_reservations_hold_the_quota(s: TestStore) {
    let t = s.create_tenant("a").await.unwrap().id;
    let other = s.create_tenant("b").await.unwrap().id;
    let quota = KvQuota { max_keys: 3, max_bytes: 100 };
    let usage = |keys, bytes| KvUsage { keys, bytes };

    let mut first = s.kv_reservation(&t);
    first.change(usage(2, 20), quota).unwrap();
    let mut second = s.kv_reservation(&t);
    assert_eq!(second.change(usage(2, 20), quota), Err(KvQuotaError::Keys { limit: 3, used: 2 }));
    assert_eq!(
        second.change(usage(1, 81), quota),
        Err(KvQuotaError::Bytes { limit: 100, used: 20, adds: 81 }),
        "bytes are checked too"
    );
    assert_eq!(s.kv_usage(&t), usage(2, 20), "a refused change reserves nothing");
    second.change(usage(1, 10), quota).unwrap();
    assert!(s.kv_reservation(&other).change(usage(3, 100), quota).is_ok(), "another tenant has its own");
    drop(second);
    assert_eq!(s.kv_usage(&t), usage(2, 20), "a dropped reservation (a failed call) is given back");

    // Committing replaces the reservation with what the database counted: "k1" + 8, "k2" + 1.
    let writes = |pairs: &[(&str, Option<&str>)]| -> std::collections::HashMap<String, Option<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_owned))).collect()
    };
    s.kv_commit(&t, &writes(&[("k1", Some("12345678")), ("k2", Some("é"))]), first).await.unwrap();
    assert_eq!(s.kv_usage(&t), usage(2, 2 + 8 + 2 + 2), "bytes are UTF-8 bytes");
    assert_eq!(s.kv_usage_counted(&t).await.unwrap(), s.kv_usage(&t));
    s.kv_apply(&t, &writes(&[("k1", Some("1")), ("k2", None), ("k3", Some("xyz"))])).await.unwrap();
    assert_eq!(s.kv_usage(&t), usage(2, 3 + 5));
    assert_eq!(s.kv_usage_counted(&t).await.unwrap(), s.kv_usage(&t), "overwrites and deletes are counted");

    let restarted = s.reopen().await;
    assert_eq!(restarted.kv_usage(&t), usage(2, 8), "loaded at start-up");
}

/// An event stored at `received_at` and, when `processed_at` is given, completed then with
/// one route result and one delivery per entry of `deliveries` (their final status and when
/// it was reached; `None`: still pending).
async fn old_event(
    s: &Store,
    t: &TenantId,
    received_at: i64,
    processed_at: Option<i64>,
    deliveries: &[Option<(DeliveryStatus, i64)>],
) -> EventId {
    let ev = event("acme");
    let new = NewEvent { tenant_id: t.clone(), upstream_id: ev.id.to_string(), event: ev.clone(), raw: "{}".into() };
    s.insert_events_at(&[new], received_at).await.unwrap();
    let Some(processed_at) = processed_at else { return ev.id };
    let rows: Vec<NewDelivery> = deliveries.iter().map(|_| new_delivery(t, &ev.id, processed_at)).collect();
    let completion = Completion {
        event: ev.id.clone(),
        tenant: t.clone(),
        route_version: Some(1),
        results: vec![RouteResult { route: "r".into(), outcome: RouteOutcome::Emitted, detail: None, outputs: 1 }],
        deliveries: rows.clone(),
    };
    s.complete_events_at(&[completion], processed_at).await.unwrap();
    for (row, end) in rows.iter().zip(deliveries) {
        let Some((status, at)) = end else { continue };
        let record = AttemptRecord {
            started_at: *at,
            duration_ms: 1,
            status_code: Some(if *status == DeliveryStatus::Delivered { 200 } else { 500 }),
            error: None,
            response_snippet: None,
            status: *status,
            next_attempt_at: None,
        };
        s.record_attempts_at(&[AttemptDone { delivery: row.id.clone(), attempt: 1, record }], *at).await.unwrap();
    }
    ev.id
}

async fn pruning_removes_old_finished_events_and_keeps_pending_and_recent_work(s: TestStore) {
    let t = s.create_tenant("acme").await.unwrap().id;
    let day = 86_400_000;
    let now = now_ms();
    let (old, cutoff, recent) = (now - 40 * day, now - 30 * day, now - day);
    use DeliveryStatus::{Dead, Delivered};

    let dropped = old_event(&s, &t, old, Some(old), &[]).await;
    let delivered = old_event(&s, &t, old, Some(old), &[Some((Delivered, old)), Some((Dead, old))]).await;
    let pending = old_event(&s, &t, old, None, &[]).await;
    let retrying = old_event(&s, &t, old, Some(old), &[Some((Delivered, old)), None]).await;
    let died_lately = old_event(&s, &t, old, Some(old), &[Some((Dead, recent))]).await;
    let processed_lately = old_event(&s, &t, old, Some(recent), &[]).await;
    let new = old_event(&s, &t, recent, Some(recent), &[Some((Delivered, recent))]).await;
    let doomed_delivery = s.event_detail(&t, &delivered).await.unwrap().unwrap().deliveries[0].id.clone();

    // One event per batch: the cursor must step over the events it keeps.
    let (mut removed, mut cursor) = (0, None);
    loop {
        let (n, next) = s.prune_events(&t, cutoff, cursor.as_ref(), 1).await.unwrap();
        removed += n;
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(removed, 2);
    for (id, kept) in [
        (&dropped, false),
        (&delivered, false),
        (&pending, true),
        (&retrying, true),
        (&died_lately, true),
        (&processed_lately, true),
        (&new, true),
    ] {
        assert_eq!(s.event_row(&t, id).await.unwrap().is_some(), kept, "{id}");
    }
    assert!(s.delivery_detail(&t, &doomed_delivery).await.unwrap().is_none(), "its deliveries go too");
    let (deliveries, attempts, results) = (
        s.count_for_test("SELECT COUNT(*) FROM deliveries").await,
        s.count_for_test("SELECT COUNT(*) FROM attempts").await,
        s.count_for_test("SELECT COUNT(*) FROM route_results").await,
    );
    assert_eq!((deliveries, attempts, results), (4, 3, 4), "cascaded: the kept events' rows only");

    // A pruned event's upstream id is not deduplicated any more.
    let again = event("acme");
    let twin =
        NewEvent { tenant_id: t.clone(), upstream_id: dropped.to_string(), event: again.clone(), raw: "{}".into() };
    assert_eq!(s.insert_event(twin).await.unwrap(), InsertOutcome::Stored(again.id));
}

async fn pruning_keeps_the_newest_route_versions(s: TestStore) {
    let t = s.create_tenant("acme").await.unwrap().id;
    for _ in 0..5 {
        s.insert_route_set(&t, "{}", RouteOrigin::Api).await.unwrap();
    }
    assert_eq!(s.prune_route_versions(&t, 2, 2).await.unwrap(), 2, "one batch");
    assert_eq!(s.prune_route_versions(&t, 2, 2).await.unwrap(), 1);
    assert_eq!(s.prune_route_versions(&t, 2, 2).await.unwrap(), 0);
    let kept: Vec<i64> = s.route_versions(&t).await.unwrap().iter().map(|v| v.version).collect();
    assert_eq!(kept, [5, 4]);
    assert_eq!(s.insert_route_set(&t, "{}", RouteOrigin::Api).await.unwrap().version, 6, "numbers go on");
    assert_eq!(s.prune_route_versions(&t, 0, 10).await.unwrap(), 2, "the live version stays whatever keep says");
    assert_eq!(s.latest_route_set(&t).await.unwrap().unwrap().version, 6);
}

on_both_backends!(
    events_are_stored_once_per_upstream_id,
    completing_an_event_queues_deliveries_once,
    due_deliveries_are_claimed_with_tenants_taking_turns,
    plugin_and_route_versions_count_up_per_tenant,
    a_damaged_import_list_is_an_error_not_an_empty_list,
    api_keys_resolve_to_their_tenant_until_revoked,
    pending_events_take_turns_across_tenants_however_long_a_backlog,
    kv_is_private_to_a_tenant,
    kv_usage_is_kept_by_the_database_and_reservations_hold_the_quota,
    pruning_removes_old_finished_events_and_keeps_pending_and_recent_work,
    pruning_keeps_the_newest_route_versions,
);
