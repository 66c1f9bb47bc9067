//! Cost of one pipeline poll (claiming pending events that memory does not hold) as one
//! tenant's backlog grows: `cargo bench --bench pending`.
//!
//! A tenant held to its failure budget can pile up thousands of pending events. The query
//! that picks the next batch must not get slower for everyone because of them: it reads at
//! most the batch size per tenant. Printed: milliseconds per poll (claim, then release the
//! leases so the next poll sees the same rows) with a backlog of 0, 3,000 and 30,000 events
//! beside a second tenant with 4, on a real SQLite file.

use std::time::Instant;

use switchyard::event::{Event, EventId};
use switchyard::store::{NewEvent, Store};

fn event(tenant: &str) -> Event {
    Event {
        id: EventId::generate(),
        tenant: tenant.into(),
        source: "calls".into(),
        event_type: "call.ended".into(),
        time: chrono::Utc::now(),
        subject: None,
        data: format!("{{\"pad\":\"{}\"}}", "x".repeat(600)),
        attributes: vec![],
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    const BATCH: u32 = 64;
    const QUERIES: u32 = 200;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path()).await?;
    let (busy, quiet) = (store.create_tenant("busy").await?, store.create_tenant("quiet").await?);
    let new = |tenant: &switchyard::store::Tenant, name: &str, n: usize| NewEvent {
        tenant_id: tenant.id.clone(),
        upstream_id: format!("{name}-{n}"),
        event: event(name),
        raw: bytes::Bytes::from_static(b"{}"),
    };
    store.insert_events(&(0..4).map(|i| new(&quiet, "quiet", i)).collect::<Vec<_>>()).await?;
    println!("claim_pending_events({BATCH}) beside a tenant with a backlog, {QUERIES} polls each:");
    let mut backlog = 0;
    for target in [0, 3_000, 30_000] {
        while backlog < target {
            let chunk: Vec<_> = (backlog..(backlog + 1000).min(target)).map(|i| new(&busy, "busy", i)).collect();
            backlog += chunk.len();
            store.insert_events(&chunk).await?;
        }
        let started = Instant::now();
        for _ in 0..QUERIES {
            let batch = store.claim_pending_events(BATCH, &[], i64::MAX).await?;
            store.release_leases().await?;
            assert!(batch.iter().filter(|r| r.tenant_id == quiet.id).count() == 4, "the quiet tenant's turn");
        }
        let per = started.elapsed() / QUERIES;
        println!("  backlog {backlog:>6}: {:.2} ms per poll", per.as_secs_f64() * 1e3);
    }
    Ok(())
}
