//! The delivery outbox and its attempt log.
//!
//! A worker claims due rows by setting a lease; a crash mid-attempt simply lets the lease
//! expire and the row is claimed again, so delivery is at-least-once with a stable id.

use serde::Serialize;
use sqlx::{Sqlite, Transaction};

use super::{Result, Store, ms_as_rfc3339, now_ms, opt_ms_as_rfc3339};
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Every scheduled attempt failed (or the receiver said 410 Gone): the dead-letter state.
    Dead,
}

/// A delivery as the API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub route: String,
    pub url: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    #[serde(serialize_with = "opt_ms_as_rfc3339")]
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// Replayed by re-running the plugin chain: the new deliveries replace this one.
    #[serde(serialize_with = "opt_ms_as_rfc3339", skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<i64>,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i64,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryRow,
    pub body: String,
    pub attempts_log: Vec<AttemptRow>,
}

/// A claimed delivery: everything the worker needs to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryJob {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub url: String,
    pub secret: String,
    pub event_type: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub attempts: i64,
    pub tries: i64,
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

const ROW: &str = "id, event_id, route, url, event_type, status, attempts,
    CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,
    last_status, last_error, superseded_at, created_at, updated_at";

pub(super) async fn insert_delivery(tx: &mut Transaction<'_, Sqlite>, d: &NewDelivery, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO deliveries (id, tenant_id, event_id, route, url, secret, event_type, content_type, body, status,
                                 next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
    )
    .bind(&d.id)
    .bind(&d.tenant_id)
    .bind(&d.event_id)
    .bind(&d.route)
    .bind(&d.url)
    .bind(&d.secret)
    .bind(&d.event_type)
    .bind(&d.content_type)
    .bind(&d.body)
    .bind(d.not_before)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Leases up to `limit` due deliveries until `lease_until` and returns them. A row whose
    /// lease has run out (its worker died) is due again.
    pub async fn claim_due_deliveries(&self, limit: u32, lease_until: i64) -> Result<Vec<DeliveryJob>> {
        let now = now_ms();
        Ok(sqlx::query_as(
            "UPDATE deliveries SET lease_until = ?
             WHERE id IN (SELECT id FROM deliveries
                          WHERE status = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
                          ORDER BY next_attempt_at LIMIT ?)
             RETURNING id, tenant_id, url, secret, event_type, content_type, body, attempts, tries",
        )
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// When the next pending delivery falls due (ignoring leases), so the worker can sleep.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Logs an attempt and moves the delivery on, releasing the lease, in one transaction.
    pub async fn record_attempt(&self, id: &DeliveryId, attempt: i64, rec: &AttemptRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT OR REPLACE INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, response_snippet)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(attempt)
        .bind(rec.started_at)
        .bind(rec.duration_ms)
        .bind(rec.status_code.map(i64::from))
        .bind(&rec.error)
        .bind(&rec.response_snippet)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET status = ?, attempts = ?, tries = tries + 1, next_attempt_at = COALESCE(?, next_attempt_at),
                    lease_until = NULL, last_status = ?, last_error = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(rec.status)
        .bind(attempt)
        .bind(rec.next_attempt_at)
        .bind(rec.status_code.map(i64::from))
        .bind(&rec.error)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_deliveries(
        &self,
        tenant: &TenantId,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ROW} FROM deliveries WHERE tenant_id = ? AND (? IS NULL OR status = ?)
             ORDER BY created_at DESC, id DESC LIMIT ?"
        ))
        .bind(tenant)
        .bind(status)
        .bind(status)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub(super) async fn deliveries_of_event(&self, event: &EventId) -> Result<Vec<DeliveryRow>> {
        Ok(sqlx::query_as(&format!("SELECT {ROW} FROM deliveries WHERE event_id = ? ORDER BY created_at, id"))
            .bind(event)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn delivery_detail(&self, tenant: &TenantId, id: &DeliveryId) -> Result<Option<DeliveryDetail>> {
        let row: Option<DeliveryRow> =
            sqlx::query_as(&format!("SELECT {ROW} FROM deliveries WHERE tenant_id = ? AND id = ?"))
                .bind(tenant)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(delivery) = row else { return Ok(None) };
        let body: Vec<u8> =
            sqlx::query_scalar("SELECT body FROM deliveries WHERE id = ?").bind(id).fetch_one(&self.pool).await?;
        let attempts_log = sqlx::query_as(
            "SELECT attempt, started_at, duration_ms, status_code, error, response_snippet FROM attempts
             WHERE delivery_id = ? ORDER BY attempt",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(DeliveryDetail { delivery, body: String::from_utf8_lossy(&body).into_owned(), attempts_log }))
    }

    /// Puts a dead (or delivered) delivery back in the queue with a fresh retry schedule. The
    /// webhook id stays the same, so a receiver that saw it before can tell. Returns false
    /// when there is no such delivery for the tenant or it is still pending.
    pub async fn replay_delivery(&self, tenant: &TenantId, id: &DeliveryId) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'pending', tries = 0, next_attempt_at = ?, lease_until = NULL, updated_at = ?
             WHERE tenant_id = ? AND id = ? AND status != 'pending'",
        )
        .bind(now)
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Puts a claimed delivery back without an attempt (its destination is busy or its
    /// circuit is open): due again at `at`, and the try is not counted.
    pub async fn defer_delivery(&self, id: &DeliveryId, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET next_attempt_at = ?, lease_until = NULL WHERE id = ? AND status = 'pending'",
        )
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Dead-letters a claimed delivery without an attempt, with the reason (its destination
    /// is disabled). It can be replayed once the destination is enabled again.
    pub async fn dead_letter(&self, id: &DeliveryId, reason: &str) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'dead', lease_until = NULL, last_error = ?, updated_at = ?
             WHERE id = ? AND status = 'pending'",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replays every dead delivery of the tenant that matches `filter` (as `replay_delivery`
    /// does one), returning how many.
    pub async fn replay_dead(&self, tenant: &TenantId, filter: &DeadFilter) -> Result<u64> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'pending', tries = 0, next_attempt_at = ?, lease_until = NULL, updated_at = ?
             WHERE tenant_id = ? AND status = 'dead' AND superseded_at IS NULL AND (? IS NULL OR route = ?)
               AND (? IS NULL OR url = ?) AND (? IS NULL OR created_at >= ?) AND (? IS NULL OR created_at < ?)",
        )
        .bind(now)
        .bind(now)
        .bind(tenant)
        .bind(&filter.route)
        .bind(&filter.route)
        .bind(&filter.url)
        .bind(&filter.url)
        .bind(filter.since)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.until)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The dead letters matching `filter`, for a replay that re-runs the plugin chain:
    /// `(delivery, event, route, url)`.
    pub async fn dead_letters(
        &self,
        tenant: &TenantId,
        filter: &DeadFilter,
    ) -> Result<Vec<(DeliveryId, EventId, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, event_id, route, url FROM deliveries
             WHERE tenant_id = ? AND status = 'dead' AND superseded_at IS NULL AND (? IS NULL OR route = ?)
               AND (? IS NULL OR url = ?) AND (? IS NULL OR created_at >= ?) AND (? IS NULL OR created_at < ?)
             ORDER BY created_at",
        )
        .bind(tenant)
        .bind(&filter.route)
        .bind(&filter.route)
        .bind(&filter.url)
        .bind(&filter.url)
        .bind(filter.since)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.until)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks dead letters superseded and queues their replacements, in one transaction.
    pub async fn supersede(&self, old: &[DeliveryId], new: &[NewDelivery]) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for id in old {
            sqlx::query("UPDATE deliveries SET superseded_at = ?, updated_at = ? WHERE id = ? AND status = 'dead'")
                .bind(now)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for d in new {
            insert_delivery(&mut tx, d, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops every lease. Only for start-up of the single-process (SQLite) router: nobody
    /// else can be holding one, and waiting for them to expire would only delay recovery.
    pub async fn release_leases(&self) -> Result<u64> {
        let done = sqlx::query("UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn count_deliveries(&self, status: DeliveryStatus) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = ?")
            .bind(status)
            .fetch_one(&self.pool)
            .await?)
    }
}
