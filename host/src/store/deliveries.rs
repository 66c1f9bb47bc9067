//! The delivery outbox and its attempt log.
//!
//! A worker claims due rows by setting a lease; a crash mid-attempt simply lets the lease
//! expire and the row is claimed again, so delivery is at-least-once with a stable id.

use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;

use super::dialect::Dialect;
use super::writer::AttemptDone;
use super::{Lease, Result, Store, Tx, now_ms};
use crate::event::{DeliveryId, EventId, TenantId};

/// A delivery to queue when an event is processed.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub route: String,
    pub url: String,
    pub secret: String,
    pub event_type: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// When the first attempt is due (unix ms): the schedule's first delay after now.
    pub not_before: i64,
    /// Sent as the `traceparent` header (see `trace`).
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Every scheduled attempt failed (or the receiver said 410 Gone): the dead-letter state.
    Dead,
}

text_enum!(DeliveryStatus { Pending = "pending", Delivered = "delivered", Dead = "dead" });

/// A delivery as the API lists it.
/// A stored delivery, without its body. Not the API's JSON: that is
/// `api::types::DeliverySummary`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub route: String,
    pub url: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// Replayed by re-running the plugin chain: the new deliveries replace this one.
    pub superseded_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One logged attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
}

/// A delivery with its body and every attempt.
#[derive(Debug)]
pub struct DeliveryRecord {
    pub delivery: DeliveryRow,
    pub body: Vec<u8>,
    pub attempts: Vec<AttemptRow>,
}

/// A claimed delivery: everything the worker needs to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryJob {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub url: String,
    pub secret: String,
    pub event_type: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub attempts: i64,
    pub tries: i64,
    pub traceparent: Option<String>,
}

/// Which dead letters to replay: all of a tenant's, narrowed by route, destination URL and
/// creation time (unix ms, `since` inclusive, `until` exclusive).
#[derive(Debug, Clone, Default)]
pub struct DeadFilter {
    pub route: Option<String>,
    pub url: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// The rows a `DeadFilter` selects (parameters `$1..$5`); bind with `bind_dead_filter!`.
const DEAD_MATCH: &str = "tenant_id = $1 AND status = 'dead' AND superseded_at IS NULL AND ($2 IS NULL OR route = $2)
    AND ($3 IS NULL OR url = $3) AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5)";

/// Binds `DEAD_MATCH`'s parameters, for plain and typed queries alike.
macro_rules! bind_dead_filter {
    ($query:expr, $tenant:expr, $f:expr) => {
        $query.bind($tenant).bind(&$f.route).bind(&$f.url).bind($f.since).bind($f.until)
    };
}

/// The outcome of one attempt, and what happens next.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
    /// New status: `Pending` with `next_attempt_at` to retry, or a final state.
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
}

pub(super) const ROW: &str = "id, event_id, route, url, event_type, status, attempts,
    CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,
    last_status, last_error, superseded_at, created_at, updated_at";

impl NewDelivery {
    /// The job for the delivery worker, handed over in memory once this row is committed.
    pub(super) fn to_job(&self) -> DeliveryJob {
        DeliveryJob {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            event_id: self.event_id.clone(),
            url: self.url.clone(),
            secret: self.secret.clone(),
            event_type: self.event_type.clone(),
            content_type: self.content_type.clone(),
            body: self.body.clone(),
            attempts: 0,
            tries: 0,
            traceparent: self.traceparent.clone(),
        }
    }
}

/// Queues deliveries in multi-row statements; each is leased when memory holds it.
pub(super) async fn insert_deliveries(
    tx: &mut Tx<'_>,
    rows: &[(&NewDelivery, Option<Lease<'_>>)],
    now: i64,
) -> Result<()> {
    // 15 binds a row: 1,000 rows stay below SQLite's 32,766.
    for chunk in rows.chunks(1000) {
        on_tx!(&mut *tx, c => {
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO deliveries (id, tenant_id, event_id, route, url, secret, event_type, content_type, body,
                                     next_attempt_at, lease_until, lease_owner, created_at, updated_at, traceparent, status) ",
        );
        q.push_values(chunk, |mut row, (d, lease)| {
            row.push_bind(&d.id)
                .push_bind(&d.tenant_id)
                .push_bind(&d.event_id)
                .push_bind(&d.route)
                .push_bind(&d.url)
                // The secret is read from the destination's row at each attempt (and sealed
                // there, see `secrets`); the copy in memory serves the first attempt.
                .push_bind("")
                .push_bind(&d.event_type)
                .push_bind(&d.content_type)
                .push_bind(&d.body)
                .push_bind(d.not_before)
                .push_bind(lease.map(|l| l.until))
                .push_bind(lease.map(|l| l.owner))
                .push_bind(now)
                .push_bind(now)
                .push_bind(&d.traceparent)
                .push("'pending'");
        });
        q.build().execute(&mut **c).await?;
        });
    }
    Ok(())
}

/// Logs attempts and moves their deliveries on, releasing their leases.
pub(super) async fn record_attempts(tx: &mut Tx<'_>, attempts: &[&AttemptDone], now: i64) -> Result<()> {
    // 7 binds a row in the first statement, 6 in the second.
    for chunk in attempts.chunks(1000) {
        on_tx!(&mut *tx, c => {
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, response_snippet) ",
        );
        q.push_values(chunk, |mut row, a| {
            row.push_bind(&a.delivery)
                .push_bind(a.attempt)
                .push_bind(a.record.started_at)
                .push_bind(a.record.duration_ms)
                .push_bind(a.record.status_code.map(i64::from))
                .push_bind(&a.record.error)
                .push_bind(&a.record.response_snippet);
        });
        // An attempt recorded again (a restart repeated it) replaces the earlier record.
        // (A batch naming one attempt twice fails on PostgreSQL and is committed op by op.)
        q.push(
            " ON CONFLICT (delivery_id, attempt) DO UPDATE SET started_at = excluded.started_at,
             duration_ms = excluded.duration_ms, status_code = excluded.status_code, error = excluded.error,
             response_snippet = excluded.response_snippet",
        );
        q.build().execute(&mut **c).await?;

        // SQLite and PostgreSQL both name a VALUES list's columns column1, column2, ...
        let mut q = QueryBuilder::<DB>::new("WITH v AS (");
        q.push_values(chunk, |mut row, a| {
            row.push_bind(&a.delivery)
                .push_bind(a.record.status)
                .push_bind(a.attempt)
                .push_bind(a.record.next_attempt_at)
                .push_bind(a.record.status_code.map(i64::from))
                .push_bind(&a.record.error);
        });
        q.push(
            ") UPDATE deliveries SET status = v.column2, attempts = v.column3, tries = tries + 1,
                 next_attempt_at = COALESCE(v.column4, next_attempt_at), lease_until = NULL, lease_owner = NULL,
                 last_status = v.column5, last_error = v.column6, updated_at = ",
        );
        q.push_bind(now).push(" FROM v WHERE deliveries.id = v.column1");
        q.build().execute(&mut **c).await?;
        });
    }
    Ok(())
}

/// Puts a claimed delivery back without an attempt (its destination is busy or its circuit
/// is open): due again at `at`, and the try is not counted.
pub(super) async fn defer(tx: &mut Tx<'_>, id: &DeliveryId, at: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE deliveries SET next_attempt_at = $1, lease_until = NULL, lease_owner = NULL WHERE id = $2 AND status = 'pending'",
    )
    .bind(at)
    .bind(id)
    .execute(&mut **c)
    .await
    .map(drop)?);
    Ok(())
}

/// Dead-letters a claimed delivery without an attempt, with the reason (its destination is
/// disabled). It can be replayed once the destination is enabled again.
pub(super) async fn dead_letter(tx: &mut Tx<'_>, id: &DeliveryId, reason: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE deliveries SET status = 'dead', lease_until = NULL, lease_owner = NULL, last_error = $1, updated_at = $2
         WHERE id = $3 AND status = 'pending'",
    )
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut **c)
    .await
    .map(drop)?);
    Ok(())
}

impl Store {
    /// Leases up to `limit` due deliveries that no one holds until `lease_until` and returns
    /// them: retries that fell due, what memory could not take, and what a restart left.
    /// Tenants take turns (every tenant's oldest due delivery, then every tenant's second,
    /// and so on), so one tenant's backlog cannot fill the batch; tenants in `skip_tenants`
    /// (holding their share of memory) are left out.
    pub async fn claim_due_deliveries(
        &self,
        limit: u32,
        skip_tenants: &[TenantId],
        lease_until: i64,
    ) -> Result<Vec<DeliveryJob>> {
        let skip_tenants = serde_json::to_string(skip_tenants).expect("ids serialise");
        let now = now_ms();
        // Only each tenant's first `limit` due deliveries can make the batch, so only those
        // are read (one index seek per tenant) and numbered.
        let jobs: Vec<DeliveryJob> = on_pool!(&self.db, c => {
            let sql = format!(
                "SELECT id, tenant_id, event_id, url, secret, event_type, content_type, body, attempts, tries, traceparent FROM (
                     SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY next_attempt_at, id) AS turn
                     FROM deliveries WHERE id IN ({})
                 ) d ORDER BY turn, next_attempt_at LIMIT $2",
                <DB as Dialect>::DUE_DELIVERY_HEADS
            );
            sqlx::query_as(&sql).bind(&skip_tenants).bind(i64::from(limit)).bind(now).fetch_all(c).await?
        });
        let mut jobs = jobs;
        for job in &mut jobs {
            // Only deliveries queued before destinations had rows of their own carry one.
            job.secret = self.keys.open(&job.secret)?;
        }
        self.lease_read("deliveries", jobs, |j| j.id.as_str(), lease_until).await
    }

    /// When the next delivery that no one holds falls due, so the worker can sleep until then.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>> {
        Ok(on_pool!(&self.db, p => sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending' AND lease_until IS NULL",
        )
        .fetch_one(p)
        .await?))
    }

    /// Logs an attempt and moves the delivery on, releasing the lease, in one transaction,
    /// outside the writer. For tests and tools.
    pub async fn record_attempt(&self, id: &DeliveryId, attempt: i64, rec: &AttemptRecord) -> Result<()> {
        let done = AttemptDone { delivery: id.clone(), attempt, record: rec.clone() };
        self.record_attempts_at(&[done], now_ms()).await
    }

    /// Logs attempts as `record_attempt` does, in one transaction, as if at `now` (unix ms).
    /// For tests and tools.
    pub async fn record_attempts_at(&self, attempts: &[AttemptDone], now: i64) -> Result<()> {
        let refs: Vec<&AttemptDone> = attempts.iter().collect();
        let mut tx = self.db.begin().await?;
        record_attempts(&mut tx, &refs, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn deliveries_of_event(&self, event: &EventId) -> Result<Vec<DeliveryRow>> {
        let sql = format!("SELECT {ROW} FROM deliveries WHERE event_id = $1 ORDER BY created_at, id");
        Ok(on_pool!(&self.db, p => sqlx::query_as(&sql).bind(event).fetch_all(p).await?))
    }

    pub async fn delivery_detail(&self, tenant: &TenantId, id: &DeliveryId) -> Result<Option<DeliveryRecord>> {
        let sql = format!("SELECT {ROW} FROM deliveries WHERE tenant_id = $1 AND id = $2");
        let row: Option<DeliveryRow> =
            on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(p).await?);
        let Some(delivery) = row else { return Ok(None) };
        let body: Vec<u8> = on_pool!(&self.db, p => sqlx::query_scalar("SELECT body FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_one(p)
            .await?);
        let attempts_log = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT attempt, started_at, duration_ms, status_code, error, response_snippet FROM attempts
             WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(id)
        .fetch_all(p)
        .await?);
        Ok(Some(DeliveryRecord { delivery, body, attempts: attempts_log }))
    }

    /// Puts a dead (or delivered) delivery back in the queue with a fresh retry schedule. The
    /// webhook id stays the same, so a receiver that saw it before can tell. Returns false
    /// when there is no such delivery for the tenant or it is still pending.
    pub async fn replay_delivery(&self, tenant: &TenantId, id: &DeliveryId) -> Result<bool> {
        let now = now_ms();
        let done = on_pool!(&self.db, p => sqlx::query(
            "UPDATE deliveries SET status = 'pending', tries = 0, next_attempt_at = $1, lease_until = NULL, lease_owner = NULL, updated_at = $1
             WHERE tenant_id = $2 AND id = $3 AND status != 'pending'",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(p)
        .await?
        .rows_affected());
        Ok(done > 0)
    }

    /// Replays every dead delivery of the tenant that matches `filter` (as `replay_delivery`
    /// does one), returning how many.
    pub async fn replay_dead(&self, tenant: &TenantId, filter: &DeadFilter) -> Result<u64> {
        let now = now_ms();
        let sql = format!(
            "UPDATE deliveries SET status = 'pending', tries = 0, next_attempt_at = $6, lease_until = NULL, lease_owner = NULL, updated_at = $6
             WHERE {DEAD_MATCH}"
        );
        Ok(on_pool!(&self.db, p => {
            let query = sqlx::query(&sql);
            bind_dead_filter!(query, tenant, filter).bind(now).execute(p).await?.rows_affected()
        }))
    }

    /// The dead letters matching `filter`, for a replay that re-runs the plugin chain:
    /// `(delivery, event, route, url)`.
    pub async fn dead_letters(
        &self,
        tenant: &TenantId,
        filter: &DeadFilter,
    ) -> Result<Vec<(DeliveryId, EventId, String, String)>> {
        let sql = format!("SELECT id, event_id, route, url FROM deliveries WHERE {DEAD_MATCH} ORDER BY created_at");
        Ok(on_pool!(&self.db, p => {
            let query = sqlx::query_as(&sql);
            bind_dead_filter!(query, tenant, filter).fetch_all(p).await?
        }))
    }

    /// Marks dead letters superseded and queues their replacements, in one transaction.
    pub async fn supersede(&self, old: &[DeliveryId], new: &[NewDelivery]) -> Result<()> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        for id in old {
            on_tx!(&mut tx, c => sqlx::query(
                "UPDATE deliveries SET superseded_at = $1, updated_at = $1 WHERE id = $2 AND status = 'dead'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut **c)
            .await
            .map(drop)?);
        }
        let rows: Vec<_> = new.iter().map(|d| (d, None)).collect();
        insert_deliveries(&mut tx, &rows, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pending and dead deliveries per tenant, for `/metrics`: `(tenant, "pending" | "dead", n)`.
    /// Dead letters already replayed (superseded) are not counted.
    pub async fn delivery_counts(&self) -> Result<Vec<(TenantId, &'static str, u64)>> {
        let rows: Vec<(TenantId, String, i64)> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT tenant_id, status, COUNT(*) FROM deliveries
             WHERE status = 'pending' OR (status = 'dead' AND superseded_at IS NULL) GROUP BY tenant_id, status",
        )
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(|(t, s, n)| (t, if s == "dead" { "dead" } else { "pending" }, n as u64)).collect())
    }

    pub async fn count_deliveries(&self, status: DeliveryStatus) -> Result<i64> {
        Ok(on_pool!(&self.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = $1")
            .bind(status)
            .fetch_one(p)
            .await?))
    }
}
