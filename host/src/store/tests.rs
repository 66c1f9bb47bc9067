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

/// Tenant `acme` with one event, routed by route `r` into one pending delivery.
async fn one_delivery(s: &Store) -> (Tenant, Event, [RouteResult; 1], NewDelivery) {
    let t = s.create_tenant("acme").await.unwrap();
    let ev = event("acme");
    s.insert_event(NewEvent { tenant_id: t.id.clone(), upstream_id: "u".into(), event: ev.clone(), raw: "{}".into() })
        .await
        .unwrap();
    let delivery = new_delivery(&t.id, &ev.id, now_ms());
    let results = [RouteResult { route: "r".into(), outcome: RouteOutcome::Emitted, detail: None, outputs: 1 }];
    s.complete_event(&ev.id, Some(1), &results, std::slice::from_ref(&delivery)).await.unwrap();
    (t, ev, results, delivery)
}

async fn completing_an_event_queues_deliveries_once(s: TestStore) {
    let (t, ev, results, delivery) = one_delivery(&s).await;
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
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].status_code, Some(500));

    assert!(s.replay_delivery(&t.id, &delivery.id).await.unwrap());
    assert!(!s.replay_delivery(&t.id, &delivery.id).await.unwrap(), "already pending");
    let again = s.claim_due_deliveries(10, &[], now_ms() + 60_000).await.unwrap();
    assert_eq!((again[0].attempts, again[0].tries), (1, 0));
}

async fn attempts_are_counted_per_minute_by_destination_and_outcome(s: TestStore) {
    let (t, _, _, delivery) = one_delivery(&s).await;
    let minute = (now_ms() / 60_000) * 60_000;
    let attempt = |n: i64, status_code: Option<u16>, status| {
        let rec = AttemptRecord {
            started_at: minute + n,
            duration_ms: 1,
            status_code,
            error: None,
            response_snippet: None,
            status,
            next_attempt_at: Some(now_ms()),
        };
        let (s, id) = (Store::clone(&s), delivery.id.clone());
        async move { s.record_attempt(&id, n, &rec).await.unwrap() }
    };
    attempt(1, Some(503), DeliveryStatus::Pending).await;
    attempt(2, None, DeliveryStatus::Pending).await;
    attempt(3, Some(200), DeliveryStatus::Delivered).await;
    let minutes = s.attempts_per_minute(&t.id, minute - 60_000).await.unwrap();
    let want = AttemptMinute { url: delivery.url.clone(), minute_ms: minute, delivered: 1, failed: 1, error: 1 };
    assert_eq!(minutes, [want]);
    assert!(s.attempts_per_minute(&t.id, minute + 60_000).await.unwrap().is_empty(), "nothing after the window");
}

/// A delivery of `event` to a local URL, due at `not_before`.
fn no_routes() -> crate::routes::RouteDocument {
    crate::routes::RouteDocument { routes: Vec::new() }
}

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

    assert_eq!(s.insert_route_set(&a.id, &no_routes(), RouteOrigin::Api).await.unwrap().version, 1);
    let doc2: crate::routes::RouteDocument =
        serde_json::from_str(r#"{"routes":[{"name":"r","destinations":[]}]}"#).unwrap();
    assert_eq!(s.insert_route_set(&a.id, &doc2, RouteOrigin::File).await.unwrap().version, 2);
    let live = s.latest_route_sets().await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].as_ref().unwrap().document, doc2);
    assert_eq!(s.route_set(&a.id, Some(1)).await.unwrap().unwrap().document, no_routes());
    let listed: Vec<(i64, RouteOrigin, i64)> =
        s.route_versions(&a.id).await.unwrap().iter().map(|r| (r.version, r.origin, r.routes)).collect();
    assert_eq!(listed, [(2, RouteOrigin::File, 1), (1, RouteOrigin::Api, 0)]);

    // A damaged row is an error naming itself, never an empty document.
    s.exec_for_test("UPDATE route_sets SET document = 'not json' WHERE version = 1").await;
    assert!(matches!(s.route_set(&a.id, Some(1)).await, Err(StoreError::Damaged(_))));
    assert_eq!(s.route_set(&a.id, Some(2)).await.unwrap().unwrap().document, doc2, "the others still read");
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
        s.insert_route_set(&t, &no_routes(), RouteOrigin::Api).await.unwrap();
    }
    assert_eq!(s.prune_route_versions(&t, 2, 2).await.unwrap(), 2, "one batch");
    assert_eq!(s.prune_route_versions(&t, 2, 2).await.unwrap(), 1);
    assert_eq!(s.prune_route_versions(&t, 2, 2).await.unwrap(), 0);
    let kept: Vec<i64> = s.route_versions(&t).await.unwrap().iter().map(|v| v.version).collect();
    assert_eq!(kept, [5, 4]);
    assert_eq!(s.insert_route_set(&t, &no_routes(), RouteOrigin::Api).await.unwrap().version, 6, "numbers go on");
    assert_eq!(s.prune_route_versions(&t, 0, 10).await.unwrap(), 2, "the live version stays whatever keep says");
    assert_eq!(s.latest_route_set(&t).await.unwrap().unwrap().version, 6);
}

/// Versions are numbered in the insert itself (`MAX(version) + 1`): uploads and applies racing
/// on one tenant each get a number of their own, with none skipped.
async fn concurrent_versions_get_distinct_numbers(s: TestStore) {
    let t = s.create_tenant("a").await.unwrap().id;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (s, t) = (s.store.clone(), t.clone());
        tasks.spawn(async move {
            let sha = format!("h{i}");
            let new = NewPluginVersion { sha256: &sha, world: "w", imports: &[], wasm: b"x" };
            let plugin = s.insert_plugin_version(&t, "p", &new).await.unwrap().version;
            let routes = s.insert_route_set(&t, &no_routes(), RouteOrigin::Api).await.unwrap().version;
            (plugin, routes)
        });
    }
    let (mut plugins, mut routes): (Vec<i64>, Vec<i64>) = tasks.join_all().await.into_iter().unzip();
    plugins.sort();
    routes.sort();
    assert_eq!(plugins, (1..=12).collect::<Vec<_>>());
    assert_eq!(routes, (1..=12).collect::<Vec<_>>());
}

async fn destinations_rotate_secrets_and_track_health(s: TestStore) {
    let t = s.create_tenant("a").await.unwrap().id;
    let url = "https://example.com/hook";
    let settings = |secret: &str| DestinationSettings {
        url: url.into(),
        secret: secret.into(),
        retry_schedule_ms: Some(vec![10, 20]),
        timeout_ms: Some(500),
        max_in_flight: Some(3),
    };
    s.upsert_destinations(&t, &[settings("whsec_one")], 60_000).await.unwrap();
    let row = s.destination(&t, url).await.unwrap().unwrap();
    assert_eq!((row.secret.as_str(), row.previous_secret.as_deref()), ("whsec_one", None));
    assert_eq!(row.schedule_ms(), Some(vec![10, 20]));
    s.upsert_destinations(&t, &[settings("whsec_one")], 60_000).await.unwrap();
    assert_eq!(s.destination(&t, url).await.unwrap().unwrap().previous_secret, None, "same secret: no rotation");
    s.upsert_destinations(&t, &[settings("whsec_two")], 60_000).await.unwrap();
    let row = s.destination(&t, url).await.unwrap().unwrap();
    assert_eq!((row.secret.as_str(), row.previous_secret_at(now_ms())), ("whsec_two", Some("whsec_one")));

    assert_eq!(s.destination_failed(&t, url, None, 60_000, "HTTP 500").await.unwrap(), None);
    assert_eq!(s.destination_health().await.unwrap(), [(t.clone(), "failing", 1)]);
    s.destination_recovered(&t, url).await.unwrap();
    assert_eq!(s.destination_health().await.unwrap(), [(t.clone(), "healthy", 1)]);
    let gone = s.destination_failed(&t, url, Some("410 Gone".into()), 60_000, "HTTP 410").await.unwrap();
    assert_eq!(gone.as_deref(), Some("410 Gone"));
    assert_eq!(s.destination_health().await.unwrap(), [(t.clone(), "disabled", 1)]);
    assert!(s.enable_destination(&t, url).await.unwrap());
    assert_eq!(s.list_destinations(&t).await.unwrap()[0].disabled_reason, None);
}

/// Secrets stored before encryption are sealed at start-up, found again by each backend's
/// row key.
async fn stored_secrets_are_sealed_at_start_up(s: TestStore) {
    let t = s.create_tenant("a").await.unwrap().id;
    s.put_source(&t, "hooks", "standard-webhooks", Some("whsec_plain"), None).await.unwrap();
    let url = "https://example.com/hook";
    let settings = DestinationSettings {
        url: url.into(),
        secret: "whsec_dest".into(),
        retry_schedule_ms: None,
        timeout_ms: None,
        max_in_flight: None,
    };
    s.upsert_destinations(&t, &[settings], 0).await.unwrap();
    assert_eq!(s.reseal_secrets().await.unwrap(), 0, "all sealed already");
    // Two plain values in one row: resealing the first moves the row on PostgreSQL (a new
    // `ctid`), and the second must still find it.
    s.exec_for_test(r#"UPDATE sources SET secret = 'whsec_plain', auth = '{"type":"bearer","token":"plain-token"}'"#)
        .await;
    s.exec_for_test("UPDATE destinations SET secret = 'whsec_dest'").await;
    assert_eq!(s.reseal_secrets().await.unwrap(), 3);
    assert_eq!(s.count_for_test("SELECT COUNT(*) FROM sources WHERE secret LIKE 'whsec%'").await, 0);
    assert_eq!(s.count_for_test("SELECT COUNT(*) FROM sources WHERE auth LIKE '%plain-token%'").await, 0);
    assert_eq!(s.count_for_test("SELECT COUNT(*) FROM destinations WHERE secret LIKE 'whsec%'").await, 0);
    let restarted = s.reopen().await;
    let source = restarted.source(&t, "hooks").await.unwrap().unwrap();
    assert_eq!(source.secret.as_deref(), Some("whsec_plain"));
    let bearer = crate::sources::auth::SourceAuth::Bearer { token: "plain-token".into(), header: None };
    assert!(source.auth == Some(bearer), "the auth declaration opens after resealing");
    assert_eq!(restarted.destination(&t, url).await.unwrap().unwrap().secret, "whsec_dest");
}

/// Dead letters are found and replayed by filter; pages walk newest first.
async fn dead_letters_replay_by_filter_and_lists_page(s: TestStore) {
    let tenant = s.create_tenant("acme").await.unwrap();
    let t = tenant.id.clone();
    let now = now_ms();
    let dead = DeliveryStatus::Dead;
    for _ in 0..3 {
        old_event(&s, &t, now - 10, Some(now - 5), &[Some((dead, now - 1))]).await;
    }
    let all = DeadFilter::default();
    assert_eq!(s.dead_letters(&t, &all).await.unwrap().len(), 3);
    let elsewhere = DeadFilter { url: Some("http://elsewhere/".into()), ..DeadFilter::default() };
    assert!(s.dead_letters(&t, &elsewhere).await.unwrap().is_empty());
    let later = DeadFilter { since: Some(now + 60_000), ..DeadFilter::default() };
    assert_eq!(s.replay_dead(&t, &later).await.unwrap(), 0);
    let this_route = DeadFilter { route: Some("r".into()), until: Some(now + 60_000), ..DeadFilter::default() };
    assert_eq!(s.replay_dead(&t, &this_route).await.unwrap(), 3);
    assert_eq!(s.count_deliveries(DeliveryStatus::Pending).await.unwrap(), 3);
    assert_eq!(s.delivery_counts().await.unwrap(), [(t.clone(), "pending", 3)]);
    assert!(s.next_delivery_due().await.unwrap().is_some());

    let first = s.list_deliveries(&t, &ListFilter::default(), 2).await.unwrap();
    assert_eq!(first.rows.len(), 2);
    let next = ListFilter { after: first.next.clone(), ..ListFilter::default() };
    let second = s.list_deliveries(&t, &next, 2).await.unwrap();
    assert_eq!((second.rows.len(), second.next.is_none()), (1, true));
    let pending = ListFilter { status: Some("pending".into()), ..ListFilter::default() };
    assert_eq!(s.list_deliveries(&t, &pending, 10).await.unwrap().rows.len(), 3);
    let events = s.list_events(&t, &ListFilter { route: Some("r".into()), ..ListFilter::default() }, 10).await.unwrap();
    assert_eq!(events.rows.len(), 3);
    assert_eq!(s.pending_per_tenant().await.unwrap(), []);
}

/// The group-commit writer on its own connection: ingest (with duplicates), kv writes and a
/// completion in one batch, an attempt in the next; what it committed is handed over.
async fn the_writer_commits_batches_and_hands_them_over(s: TestStore) {
    use super::handoff::{DeliveryQueue, DeliveryQueueLimits, EventQueue, EventQueueLimits};
    let tenant = s.create_tenant("acme").await.unwrap();
    let t = tenant.id.clone();
    let events = std::sync::Arc::new(EventQueue::new(EventQueueLimits { per_tenant: 16, total_bytes: 1 << 20 }));
    let deliveries = std::sync::Arc::new(DeliveryQueue::new(DeliveryQueueLimits {
        max_jobs: 16,
        max_bytes: 1 << 20,
        per_tenant: 16,
    }));
    let stop = tokio_util::sync::CancellationToken::new();
    let parts = WriterParts {
        store: s.store.clone(),
        events: events.clone(),
        deliveries: deliveries.clone(),
        max_batch: 64,
        metrics: crate::metrics::WriterMetrics::noop(),
    };
    let (writer, task) = Writer::spawn(parts, stop.clone());
    let ev = event("acme");
    let new =
        |ev: &Event| NewEvent { tenant_id: t.clone(), upstream_id: "u".into(), event: ev.clone(), raw: "{}".into() };
    assert_eq!(writer.insert(new(&ev)).await.unwrap(), InsertOutcome::Stored(ev.id.clone()));
    assert_eq!(writer.insert(new(&event("acme"))).await.unwrap(), InsertOutcome::Duplicate(ev.id.clone()));
    let held = events.next(|_| true).expect("the stored event is handed to the pipeline's queue");
    assert_eq!(held.id, ev.id);

    let writes = std::collections::HashMap::from([("k".to_owned(), Some("v".to_owned()))]);
    writer.kv(&s, &t, writes, s.kv_reservation(&t)).await.unwrap();
    let delivery = new_delivery(&t, &ev.id, now_ms() - 1);
    let results = vec![RouteResult { route: "r".into(), outcome: RouteOutcome::Emitted, detail: None, outputs: 1 }];
    writer
        .complete(Completion {
            event: ev.id.clone(),
            tenant: t.clone(),
            route_version: Some(1),
            results,
            deliveries: vec![delivery.clone()],
        })
        .await
        .unwrap();
    let job = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Some(job) = deliveries.next(|_| true, |_| Some(())) {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the delivery is handed over after its commit");
    assert_eq!(job.0.id, delivery.id);
    let record = AttemptRecord {
        started_at: now_ms(),
        duration_ms: 1,
        status_code: Some(200),
        error: None,
        response_snippet: None,
        status: DeliveryStatus::Delivered,
        next_attempt_at: None,
    };
    writer.attempt(AttemptDone { delivery: delivery.id.clone(), attempt: 1, record }).await.unwrap();
    stop.cancel();
    task.await.unwrap();

    assert_eq!(s.count_events("processed").await.unwrap(), 1);
    assert_eq!(s.kv_get(&t, "k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(s.kv_usage_counted(&t).await.unwrap(), KvUsage { keys: 1, bytes: 2 });
    let detail = s.delivery_detail(&t, &delivery.id).await.unwrap().unwrap();
    assert_eq!((detail.delivery.status, detail.attempts.len()), (DeliveryStatus::Delivered, 1));
}

on_both_backends!(
    events_are_stored_once_per_upstream_id,
    attempts_are_counted_per_minute_by_destination_and_outcome,
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
    concurrent_versions_get_distinct_numbers,
    destinations_rotate_secrets_and_track_health,
    stored_secrets_are_sealed_at_start_up,
    dead_letters_replay_by_filter_and_lists_page,
    the_writer_commits_batches_and_hands_them_over,
);
