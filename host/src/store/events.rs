//! Inbound events: idempotent insert at ingest, and the one transaction that turns a
//! processed event into route results and outbox rows.

use serde::Serialize;

use super::deliveries::{DeliveryRow, NewDelivery, insert_delivery};
use super::{Result, Store, ms_as_rfc3339, now_ms, opt_ms_as_rfc3339};
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

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRow {
    pub id: EventId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    #[serde(skip)]
    pub tenant: String,
    pub source: String,
    pub upstream_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: String,
    pub subject: Option<String>,
    #[serde(skip)]
    pub data: String,
    pub status: String,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub received_at: i64,
    #[serde(serialize_with = "opt_ms_as_rfc3339")]
    pub processed_at: Option<i64>,
    pub route_version: Option<i64>,
}

impl EventRow {
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
            attributes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum RouteOutcome {
    /// The chain produced outputs; one delivery per output and destination was queued.
    Emitted,
    /// A plugin filtered the event out.
    Dropped,
    /// A plugin trapped, timed out, broke a limit or returned an error.
    Failed,
}

/// What one route did with one event.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RouteResult {
    pub route: String,
    pub outcome: RouteOutcome,
    pub detail: Option<String>,
    pub outputs: i64,
}

/// An event with everything that happened to it, for the API.
#[derive(Debug, Serialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventRow,
    pub data: serde_json::Value,
    pub routes: Vec<RouteResult>,
    pub deliveries: Vec<DeliveryRow>,
}

const COLUMNS: &str = "e.id, e.tenant_id, t.name AS tenant, e.source, e.upstream_id, e.event_type, e.time, e.subject,
    e.data, e.status, e.received_at, e.processed_at, e.route_version";

impl Store {
    /// Stores an accepted event (status `pending`), or reports the stored twin when the same
    /// upstream event (tenant, source, upstream id) arrived before.
    pub async fn insert_event(&self, new: NewEvent) -> Result<InsertOutcome> {
        let mut outcomes = self.insert_events(std::slice::from_ref(&new)).await?;
        Ok(outcomes.pop().expect("one outcome per event"))
    }

    /// Stores a batch of accepted events in one transaction (one fsync for all of them), with
    /// one outcome per event in order. A duplicate, also of an earlier event in the same batch,
    /// is reported with the stored event's id.
    pub async fn insert_events(&self, batch: &[NewEvent]) -> Result<Vec<InsertOutcome>> {
        let mut tx = self.pool.begin().await?;
        let received_at = now_ms();
        let mut outcomes = Vec::with_capacity(batch.len());
        for new in batch {
            let ev = &new.event;
            let inserted = sqlx::query(
                "INSERT INTO events (id, tenant_id, source, upstream_id, event_type, time, subject, data, raw, received_at, status)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')
                 ON CONFLICT (tenant_id, source, upstream_id) DO NOTHING",
            )
            .bind(&ev.id)
            .bind(&new.tenant_id)
            .bind(&ev.source)
            .bind(&new.upstream_id)
            .bind(&ev.event_type)
            .bind(ev.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .bind(&ev.subject)
            .bind(&ev.data)
            .bind(&new.raw[..])
            .bind(received_at)
            .execute(&mut *tx)
            .await?;
            outcomes.push(if inserted.rows_affected() == 1 {
                InsertOutcome::Stored(ev.id.clone())
            } else {
                let id =
                    sqlx::query_scalar("SELECT id FROM events WHERE tenant_id = ? AND source = ? AND upstream_id = ?")
                        .bind(&new.tenant_id)
                        .bind(&ev.source)
                        .bind(&new.upstream_id)
                        .fetch_one(&mut *tx)
                        .await?;
                InsertOutcome::Duplicate(id)
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Pending events, excluding ids the caller is already processing, interleaved across
    /// tenants: every tenant's oldest first, then every tenant's second oldest, and so on. A
    /// tenant with a backlog therefore cannot push other tenants' events out of the batch.
    pub async fn pending_events(
        &self,
        limit: u32,
        skip: &[EventId],
        skip_tenants: &[TenantId],
    ) -> Result<Vec<EventRow>> {
        // SQLite has no array binds; the in-flight set is small, so a JSON array is simplest.
        let skip = serde_json::to_string(skip).expect("ids serialise");
        // Tenants that could not start an event anyway (at their cap, or throttled).
        let skip_tenants = serde_json::to_string(skip_tenants).expect("ids serialise");
        // Only each tenant's oldest `limit` pending events can make the batch, so only those
        // are read (one index seek per tenant) and numbered. Numbering every pending event
        // instead made each pass cost time in proportion to the largest backlog: a throttled
        // tenant with thousands of waiting events slowed the pipeline for everyone.
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM (
                 SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY received_at, id) AS turn
                 FROM events WHERE id IN (
                     SELECT head.id FROM tenants w JOIN events head ON head.id IN (
                         SELECT id FROM events
                         WHERE status = 'pending' AND tenant_id = w.id
                             AND id NOT IN (SELECT value FROM json_each(?1))
                         ORDER BY received_at, id LIMIT ?3)
                     WHERE w.id NOT IN (SELECT value FROM json_each(?2)))
             ) e JOIN tenants t ON t.id = e.tenant_id
             ORDER BY e.turn, e.received_at LIMIT ?3"
        ))
        .bind(skip)
        .bind(skip_tenants)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records what the routes did and queues the deliveries, atomically. Idempotent: an event
    /// already processed (by an earlier run that crashed after commit) is left as it is.
    pub async fn complete_event(
        &self,
        event: &EventId,
        route_version: Option<i64>,
        results: &[RouteResult],
        deliveries: &[NewDelivery],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE events SET status = 'processed', processed_at = ?, route_version = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(now)
        .bind(route_version)
        .bind(event)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(());
        }
        for r in results {
            sqlx::query("INSERT INTO route_results (event_id, route, outcome, detail, outputs) VALUES (?, ?, ?, ?, ?)")
                .bind(event)
                .bind(&r.route)
                .bind(r.outcome)
                .bind(&r.detail)
                .bind(r.outputs)
                .execute(&mut *tx)
                .await?;
        }
        for d in deliveries {
            insert_delivery(&mut tx, d, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_events(&self, tenant: &TenantId, status: Option<&str>, limit: u32) -> Result<Vec<EventRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events e JOIN tenants t ON t.id = e.tenant_id
             WHERE e.tenant_id = ? AND (? IS NULL OR e.status = ?) ORDER BY e.received_at DESC, e.id DESC LIMIT ?"
        ))
        .bind(tenant)
        .bind(status)
        .bind(status)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn event_row(&self, tenant: &TenantId, id: &EventId) -> Result<Option<EventRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events e JOIN tenants t ON t.id = e.tenant_id WHERE e.tenant_id = ? AND e.id = ?"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn event_detail(&self, tenant: &TenantId, id: &EventId) -> Result<Option<EventDetail>> {
        let Some(event) = self.event_row(tenant, id).await? else { return Ok(None) };
        let routes = sqlx::query_as(
            "SELECT route, outcome, detail, outputs FROM route_results WHERE event_id = ? ORDER BY route",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let deliveries = self.deliveries_of_event(id).await?;
        let data = serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null);
        Ok(Some(EventDetail { event, data, routes, deliveries }))
    }

    /// Counts by status, for tests and health checks.
    pub async fn count_events(&self, status: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE status = ?")
            .bind(status)
            .fetch_one(&self.pool)
            .await?)
    }
}
