//! Inbound events: idempotent insert at ingest, and the one transaction that turns a
//! processed event into route results and outbox rows.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;

use super::deliveries::{DeliveryRow, NewDelivery, insert_deliveries};
use super::dialect::Dialect;
use super::writer::Completion;
use super::{Lease, Result, Store, Tx, now_ms};
use crate::event::{Event, EventId, TenantId};

/// An event as ingest hands it to the store.
#[derive(Debug)]
pub struct NewEvent {
    pub tenant_id: TenantId,
    pub upstream_id: String,
    pub event: Event,
    /// The inbound body exactly as received, kept for audit.
    pub raw: bytes::Bytes,
}

/// Whether an insert stored a new event or found the same upstream event already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    Stored(EventId),
    Duplicate(EventId),
}

/// Where an event is: waiting for (another) run through its routes, or done with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Pending,
    Processed,
}

text_enum!(EventStatus { Pending = "pending", Processed = "processed" });

/// A stored event, as the pipeline and the API read it. Not the API's JSON: that is
/// `api::types::EventSummary`, which leaves out the tenant and the raw data.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: EventId,
    pub tenant_id: TenantId,
    /// The tenant's name.
    pub tenant: String,
    pub source: String,
    pub upstream_id: String,
    pub event_type: String,
    /// RFC 3339, as the sender gave it (or ingest's clock).
    pub time: String,
    pub subject: Option<String>,
    /// The event's data, JSON text.
    pub data: String,
    pub status: EventStatus,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    pub route_version: Option<i64>,
    /// Runs that ended in a transient fault and were put back to be tried again.
    pub tries: i64,
    /// Why the event is waiting to be tried again, while it is.
    pub last_error: Option<String>,
    /// The W3C `traceparent` the event arrived with (see `trace`).
    pub traceparent: Option<String>,
}

impl EventRow {
    /// The row of an event the writer just stored, to hand to the pipeline without reading
    /// it back.
    pub(super) fn stored(new: &NewEvent, received_at: i64) -> Self {
        let ev = &new.event;
        Self {
            id: ev.id.clone(),
            tenant_id: new.tenant_id.clone(),
            tenant: ev.tenant.clone(),
            source: ev.source.clone(),
            upstream_id: new.upstream_id.clone(),
            event_type: ev.event_type.clone(),
            time: ev.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            subject: ev.subject.clone(),
            data: ev.data.clone(),
            status: EventStatus::Pending,
            received_at,
            processed_at: None,
            route_version: None,
            tries: 0,
            last_error: None,
            traceparent: traceparent_of(ev).map(str::to_owned),
        }
    }

    /// The canonical event, for the pipeline.
    pub fn to_event(&self) -> Event {
        Event {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            source: self.source.clone(),
            event_type: self.event_type.clone(),
            time: chrono::DateTime::parse_from_rfc3339(&self.time).map(|t| t.to_utc()).unwrap_or_default(),
            subject: self.subject.clone(),
            data: self.data.clone(),
            attributes: self.traceparent.iter().map(|t| (crate::trace::TRACEPARENT.to_owned(), t.clone())).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteOutcome {
    /// The chain produced outputs; one delivery per output and destination was queued.
    Emitted,
    /// A plugin filtered the event out.
    Dropped,
    /// A plugin trapped, timed out, broke a limit or returned an error.
    Failed,
}

text_enum!(RouteOutcome { Emitted = "emitted", Dropped = "dropped", Failed = "failed" });

/// What one route did with one event.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RouteResult {
    pub route: String,
    pub outcome: RouteOutcome,
    pub detail: Option<String>,
    pub outputs: i64,
}

/// An event with everything that happened to it.
#[derive(Debug)]
pub struct EventRecord {
    pub event: EventRow,
    pub routes: Vec<RouteResult>,
    pub deliveries: Vec<DeliveryRow>,
}

pub(super) const COLUMNS: &str =
    "e.id, e.tenant_id, t.name AS tenant, e.source, e.upstream_id, e.event_type, e.time, e.subject,
    e.data, e.status, e.received_at, e.processed_at, e.route_version, e.tries, e.last_error, e.traceparent";

/// Inserts a batch of accepted events (status `pending`; leased when memory holds them) in
/// one multi-row statement, with one outcome per event in order. A duplicate, also of an
/// earlier event in the same batch, is reported with the stored event's id.
/// The `traceparent` attribute ingest gave the event, if any.
pub fn traceparent_of(event: &Event) -> Option<&str> {
    event.attributes.iter().find(|(k, _)| k == crate::trace::TRACEPARENT).map(|(_, v)| v.as_str())
}

pub(super) async fn insert_batch(
    tx: &mut Tx<'_>,
    batch: &[(&NewEvent, Option<Lease<'_>>)],
    received_at: i64,
) -> Result<Vec<InsertOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut inserted = HashSet::new();
    // 12 binds a row, far below SQLite's 32,766.
    for chunk in batch.chunks(1000) {
        let ids: Vec<EventId> = on_tx!(&mut *tx, c => {
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO events (id, tenant_id, source, upstream_id, event_type, time, subject, data, raw, received_at, lease_until, lease_owner, traceparent, status) ",
        );
        q.push_values(chunk, |mut row, (new, lease)| {
            let ev = &new.event;
            row.push_bind(&ev.id)
                .push_bind(&new.tenant_id)
                .push_bind(&ev.source)
                .push_bind(&new.upstream_id)
                .push_bind(&ev.event_type)
                .push_bind(ev.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .push_bind(&ev.subject)
                .push_bind(&ev.data)
                .push_bind(&new.raw[..])
                .push_bind(received_at)
                .push_bind(lease.map(|l| l.until))
                .push_bind(lease.map(|l| l.owner))
                .push_bind(traceparent_of(ev))
                .push("'pending'");
        });
        q.push(" ON CONFLICT (tenant_id, source, upstream_id) DO NOTHING RETURNING id");
        q.build_query_scalar().fetch_all(&mut **c).await?
        });
        inserted.extend(ids);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (new, _) in batch {
        if inserted.contains(&new.event.id) {
            outcomes.push(InsertOutcome::Stored(new.event.id.clone()));
        } else {
            let id = on_tx!(&mut *tx, c => sqlx::query_scalar(
                "SELECT id FROM events WHERE tenant_id = $1 AND source = $2 AND upstream_id = $3",
            )
            .bind(&new.tenant_id)
            .bind(&new.event.source)
            .bind(&new.upstream_id)
            .fetch_one(&mut **c)
            .await?);
            outcomes.push(InsertOutcome::Duplicate(id));
        }
    }
    Ok(outcomes)
}

/// Moves completed events out of `pending` and records their route results and outbox rows
/// (`leases[i][j]`: the lease of completion i's delivery j, when memory holds it). Returns the
/// events this batch moved. An event already processed (by an earlier run that crashed after
/// its commit) is left as it was, and its results and deliveries are not written again.
/// Puts an event back to be processed again at `at` (a transient fault), releasing its
/// lease and counting the run.
pub(super) async fn retry(tx: &mut Tx<'_>, event: &EventId, at: i64, error: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE events SET lease_until = NULL, lease_owner = NULL, retry_at = $1, tries = tries + 1, last_error = $2
         WHERE id = $3 AND status = 'pending'",
    )
    .bind(at)
    .bind(error)
    .bind(event)
    .execute(&mut **c)
    .await
    .map(drop)?);
    Ok(())
}

pub(super) async fn complete_batch(
    tx: &mut Tx<'_>,
    completions: &[&Completion],
    leases: &[Vec<Option<Lease<'_>>>],
    now: i64,
) -> Result<HashSet<EventId>> {
    let mut moved = HashSet::new();
    if completions.is_empty() {
        return Ok(moved);
    }
    let mut by_version: HashMap<Option<i64>, Vec<&EventId>> = HashMap::new();
    for c in completions {
        by_version.entry(c.route_version).or_default().push(&c.event);
    }
    for (version, ids) in by_version {
        for chunk in ids.chunks(500) {
            let ids: Vec<EventId> = on_tx!(&mut *tx, c => {
            let mut q = QueryBuilder::<DB>::new("UPDATE events SET status = 'processed', processed_at = ");
            q.push_bind(now).push(", route_version = ").push_bind(version);
            q.push(", lease_until = NULL, lease_owner = NULL, retry_at = NULL WHERE status = 'pending' AND id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(") RETURNING id");
            q.build_query_scalar().fetch_all(&mut **c).await?
            });
            moved.extend(ids);
        }
    }
    let results: Vec<(&EventId, &RouteResult)> = completions
        .iter()
        .filter(|c| moved.contains(&c.event))
        .flat_map(|c| c.results.iter().map(move |r| (&c.event, r)))
        .collect();
    for chunk in results.chunks(1000) {
        on_tx!(&mut *tx, c => {
            let mut q =
                QueryBuilder::<DB>::new("INSERT INTO route_results (event_id, route, outcome, detail, outputs) ");
            q.push_values(chunk, |mut row, (event, r)| {
                row.push_bind(*event).push_bind(&r.route).push_bind(r.outcome).push_bind(&r.detail).push_bind(r.outputs);
            });
            q.build().execute(&mut **c).await?;
        });
    }
    let deliveries: Vec<(&NewDelivery, Option<Lease<'_>>)> = completions
        .iter()
        .zip(leases)
        .filter(|(c, _)| moved.contains(&c.event))
        .flat_map(|(c, l)| c.deliveries.iter().zip(l.iter().copied()))
        .collect();
    insert_deliveries(tx, &deliveries, now).await?;
    Ok(moved)
}

impl Store {
    /// Stores one accepted event in its own transaction, unleased (the poll finds it).
    /// Ingest goes through the writer instead; this is for tests and tools.
    pub async fn insert_event(&self, new: NewEvent) -> Result<InsertOutcome> {
        let mut outcomes = self.insert_events(std::slice::from_ref(&new)).await?;
        Ok(outcomes.pop().expect("one outcome per event"))
    }

    /// Stores a batch of accepted events in one transaction, unleased, with one outcome per
    /// event in order (see `insert_batch`).
    pub async fn insert_events(&self, batch: &[NewEvent]) -> Result<Vec<InsertOutcome>> {
        self.insert_events_at(batch, now_ms()).await
    }

    /// `insert_events`, received at `received_at` (unix ms): tests and tools that need old
    /// events (retention) make them with this.
    pub async fn insert_events_at(&self, batch: &[NewEvent], received_at: i64) -> Result<Vec<InsertOutcome>> {
        let rows: Vec<_> = batch.iter().map(|e| (e, None)).collect();
        let mut tx = self.db.begin().await?;
        let outcomes = insert_batch(&mut tx, &rows, received_at).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Claims pending events that no one holds, interleaved across tenants: every tenant's
    /// oldest first, then every tenant's second oldest, and so on, so a tenant with a backlog
    /// cannot push other tenants' events out of the batch. Claimed events are leased until
    /// `lease_until`. Tenants in `skip_tenants` (at their cap, throttled, or with a full
    /// queue) are left out.
    pub async fn claim_pending_events(
        &self,
        limit: u32,
        skip_tenants: &[TenantId],
        lease_until: i64,
    ) -> Result<Vec<EventRow>> {
        let skip_tenants = serde_json::to_string(skip_tenants).expect("ids serialise");
        let now = now_ms();
        // Only each tenant's oldest `limit` ready events can make the batch, so only those are
        // read (one index seek per tenant) and numbered: the cost does not grow with backlogs.
        let rows: Vec<EventRow> = on_pool!(&self.db, c => {
            let sql = format!(
                "SELECT {COLUMNS} FROM (
                     SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY received_at, id) AS turn
                     FROM events WHERE id IN ({})
                 ) e JOIN tenants t ON t.id = e.tenant_id
                 ORDER BY e.turn, e.received_at LIMIT $2",
                <DB as Dialect>::READY_EVENT_HEADS
            );
            sqlx::query_as(&sql).bind(&skip_tenants).bind(i64::from(limit)).bind(now).fetch_all(c).await?
        });
        self.lease_read("events", rows, |r| r.id.as_str(), lease_until).await
    }

    /// Gives an event back to the poll (its completion could not be stored).
    pub async fn release_event(&self, id: &EventId) -> Result<()> {
        on_pool!(&self.db, p => sqlx::query("UPDATE events SET lease_until = NULL, lease_owner = NULL WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .execute(p)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Pending events per tenant (each tenant's backlog), read at start-up.
    pub async fn pending_per_tenant(&self) -> Result<Vec<(TenantId, u64)>> {
        // Through the partial index of pending events (see `Dialect`).
        let rows: Vec<(TenantId, i64)> = on_pool!(&self.db, p => {
            let sql = format!(
                "SELECT tenant_id, COUNT(*) FROM events {} WHERE status = 'pending' GROUP BY tenant_id",
                <DB as Dialect>::EVENTS_PENDING_INDEX
            );
            sqlx::query_as(&sql).fetch_all(p).await?
        });
        Ok(rows.into_iter().map(|(t, n)| (t, n as u64)).collect())
    }

    /// Records what the routes did and queues the deliveries (unleased: the delivery poll
    /// finds them), atomically, outside the writer. For tests and tools.
    pub async fn complete_event(
        &self,
        event: &EventId,
        route_version: Option<i64>,
        results: &[RouteResult],
        deliveries: &[NewDelivery],
    ) -> Result<()> {
        let completion = Completion {
            event: event.clone(),
            tenant: TenantId::generate(), // unused: nothing is handed over
            route_version,
            results: results.to_vec(),
            deliveries: deliveries.to_vec(),
        };
        self.complete_events_at(&[completion], now_ms()).await
    }

    /// Completes events (unleased deliveries, as `complete_event`) in one transaction, as if
    /// at `now` (unix ms). For tests and tools.
    pub async fn complete_events_at(&self, completions: &[Completion], now: i64) -> Result<()> {
        let leases: Vec<Vec<Option<Lease<'_>>>> = completions.iter().map(|c| vec![None; c.deliveries.len()]).collect();
        let refs: Vec<&Completion> = completions.iter().collect();
        let mut tx = self.db.begin().await?;
        complete_batch(&mut tx, &refs, &leases, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn event_row(&self, tenant: &TenantId, id: &EventId) -> Result<Option<EventRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events e JOIN tenants t ON t.id = e.tenant_id WHERE e.tenant_id = $1 AND e.id = $2"
        );
        Ok(on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(p).await?))
    }

    pub async fn event_detail(&self, tenant: &TenantId, id: &EventId) -> Result<Option<EventRecord>> {
        let Some(event) = self.event_row(tenant, id).await? else { return Ok(None) };
        let routes = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT route, outcome, detail, outputs FROM route_results WHERE event_id = $1 ORDER BY route",
        )
        .bind(id)
        .fetch_all(p)
        .await?);
        let deliveries = self.deliveries_of_event(id).await?;
        Ok(Some(EventRecord { event, routes, deliveries }))
    }

    /// The tenant's events received before `before` (unix ms), for tests and tools.
    pub async fn count_events_before(&self, tenant: &TenantId, before: i64) -> Result<i64> {
        Ok(
            on_pool!(&self.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND received_at < $2")
            .bind(tenant)
            .bind(before)
            .fetch_one(p)
            .await?),
        )
    }

    /// Counts by status, for tests and health checks.
    pub async fn count_events(&self, status: &str) -> Result<i64> {
        Ok(on_pool!(&self.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE status = $1")
            .bind(status)
            .fetch_one(p)
            .await?))
    }
}
