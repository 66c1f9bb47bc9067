//! Destinations: one row per tenant and URL, written when routes are applied. It holds what
//! must outlive a route version: the signing secret and its rotation, per-destination
//! delivery settings, and health (failing since, disabled and why).

use std::sync::atomic::Ordering;

use super::{Result, Store, now_ms};
use crate::event::TenantId;

/// A destination's settings, as a route document gives them.
#[derive(Debug, Clone)]
pub struct DestinationSettings {
    pub url: String,
    pub secret: String,
    pub retry_schedule_ms: Option<Vec<u64>>,
    pub timeout_ms: Option<u64>,
    pub max_in_flight: Option<u32>,
}

/// A destination's stored settings, secrets (opened) and health. Not the API's JSON, which
/// never shows the secrets: that is `api::types::DestinationView`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DestinationRow {
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    /// Until when the previous secret also signs (a rotation in progress).
    pub previous_secret_until: Option<i64>,
    /// JSON list of milliseconds (see `schedule_ms`).
    pub retry_schedule: Option<String>,
    pub timeout_ms: Option<i64>,
    pub max_in_flight: Option<i64>,
    pub failing_since: Option<i64>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub updated_at: i64,
}

impl DestinationRow {
    /// The destination's own retry schedule, in milliseconds.
    pub fn schedule_ms(&self) -> Option<Vec<u64>> {
        self.retry_schedule.as_deref().and_then(|s| serde_json::from_str(s).ok())
    }

    /// The previous secret, while its grace period lasts.
    pub fn previous_secret_at(&self, now: i64) -> Option<&str> {
        self.previous_secret.as_deref().filter(|_| self.previous_secret_until.is_some_and(|until| now < until))
    }
}

const COLUMNS: &str = "url, secret, previous_secret, previous_secret_until, retry_schedule, timeout_ms, max_in_flight,
    failing_since, disabled_at, disabled_reason, updated_at";

impl Store {
    /// Records the destinations of an applied route version. A changed secret starts a
    /// rotation: the old one stays valid for `grace_ms`. Health is kept.
    pub async fn upsert_destinations(
        &self,
        tenant: &TenantId,
        list: &[DestinationSettings],
        grace_ms: i64,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        for d in list {
            let schedule = d.retry_schedule_ms.as_ref().map(|s| serde_json::to_string(s).expect("numbers serialise"));
            // Sealing is deterministic, so `secret != excluded.secret` still tells a rotation.
            let sealed = self.keys.seal(&d.secret);
            // The stored row's columns are named by the table: PostgreSQL also sees `excluded`'s.
            on_tx!(&mut tx, c => sqlx::query(
                "INSERT INTO destinations (tenant_id, url, secret, retry_schedule, timeout_ms, max_in_flight, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tenant_id, url) DO UPDATE SET
                    previous_secret = CASE WHEN destinations.secret != excluded.secret
                        THEN destinations.secret ELSE destinations.previous_secret END,
                    previous_secret_until = CASE WHEN destinations.secret != excluded.secret
                        THEN $9 ELSE destinations.previous_secret_until END,
                    secret = excluded.secret,
                    retry_schedule = excluded.retry_schedule,
                    timeout_ms = excluded.timeout_ms,
                    max_in_flight = excluded.max_in_flight,
                    updated_at = excluded.updated_at",
            )
            .bind(tenant)
            .bind(&d.url)
            .bind(&sealed)
            .bind(&schedule)
            .bind(d.timeout_ms.map(|t| t as i64))
            .bind(d.max_in_flight.map(i64::from))
            .bind(now)
            .bind(now)
            .bind(now + grace_ms)
            .execute(&mut **c)
            .await
            .map(drop)?);
        }
        tx.commit().await?;
        for d in list {
            self.forget_destination(tenant, &d.url);
        }
        self.announce(super::Change::Destinations(tenant.clone())).await;
        Ok(())
    }

    /// A destination's row, from memory after the first read: the delivery worker needs it
    /// for every attempt. Every write below drops the entry, so the next read is current.
    pub async fn destination(&self, tenant: &TenantId, url: &str) -> Result<Option<DestinationRow>> {
        let key = (tenant.clone(), url.to_owned());
        if let Some(hit) = self.caches.destinations.lock().expect("not poisoned").get(&key) {
            return Ok(hit.clone());
        }
        let writes = self.caches.destination_writes.load(Ordering::Acquire);
        let sql = format!("SELECT {COLUMNS} FROM destinations WHERE tenant_id = $1 AND url = $2");
        let row: Option<DestinationRow> =
            on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).bind(url).fetch_optional(p).await?);
        let row = row.map(|r| self.open_destination(r)).transpose()?;
        let mut cache = self.caches.destinations.lock().expect("not poisoned");
        // A write since the read began may have been missed by it: do not keep it.
        if self.caches.destination_writes.load(Ordering::Acquire) == writes {
            if cache.len() >= super::CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, row.clone());
        }
        Ok(row)
    }

    /// A row with its secrets opened (they are sealed at rest).
    fn open_destination(&self, mut row: DestinationRow) -> Result<DestinationRow> {
        row.secret = self.keys.open(&row.secret)?;
        row.previous_secret = row.previous_secret.map(|s| self.keys.open(&s)).transpose()?;
        Ok(row)
    }

    fn forget_destination(&self, tenant: &TenantId, url: &str) {
        let mut cache = self.caches.destinations.lock().expect("not poisoned");
        self.caches.destination_writes.fetch_add(1, Ordering::AcqRel);
        cache.remove(&(tenant.clone(), url.to_owned()));
    }

    /// Destinations per tenant and health, for `/metrics`: `(tenant, "healthy" | "failing" |
    /// "disabled", n)`.
    pub async fn destination_health(&self) -> Result<Vec<(TenantId, &'static str, u64)>> {
        let rows: Vec<(TenantId, bool, bool, i64)> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT tenant_id, disabled_reason IS NOT NULL, failing_since IS NOT NULL, COUNT(*) FROM destinations
             GROUP BY 1, 2, 3",
        )
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(t, disabled, failing, n)| {
                let health = if disabled {
                    "disabled"
                } else if failing {
                    "failing"
                } else {
                    "healthy"
                };
                (t, health, n as u64)
            })
            .collect())
    }

    pub async fn list_destinations(&self, tenant: &TenantId) -> Result<Vec<DestinationRow>> {
        let sql = format!("SELECT {COLUMNS} FROM destinations WHERE tenant_id = $1 ORDER BY url");
        Ok(on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).fetch_all(p).await?))
    }

    /// A success: the destination is healthy again.
    pub async fn destination_recovered(&self, tenant: &TenantId, url: &str) -> Result<()> {
        on_pool!(&self.db, p => sqlx::query(
            "UPDATE destinations SET failing_since = NULL WHERE tenant_id = $1 AND url = $2 AND failing_since IS NOT NULL",
        )
        .bind(tenant)
        .bind(url)
        .execute(p)
        .await
        .map(drop)?);
        self.forget_destination(tenant, url);
        Ok(())
    }

    /// A failure. Disables the destination when `disable` names a reason (410 Gone), or when
    /// it has now been failing for `disable_after_ms`. Returns the reason if it was disabled.
    pub async fn destination_failed(
        &self,
        tenant: &TenantId,
        url: &str,
        disable: Option<String>,
        disable_after_ms: i64,
        last_error: &str,
    ) -> Result<Option<String>> {
        let now = now_ms();
        let since: Option<Option<i64>> = on_pool!(&self.db, p => sqlx::query_scalar(
            "UPDATE destinations SET failing_since = COALESCE(failing_since, $1)
             WHERE tenant_id = $2 AND url = $3 AND disabled_at IS NULL RETURNING failing_since",
        )
        .bind(now)
        .bind(tenant)
        .bind(url)
        .fetch_optional(p)
        .await?);
        self.forget_destination(tenant, url);
        let Some(Some(since)) = since else { return Ok(None) };
        let reason = disable.or_else(|| {
            (now - since >= disable_after_ms).then(|| {
                format!("failing without a success since {} (last: {last_error})", super::ms_to_rfc3339(since))
            })
        });
        if let Some(reason) = &reason {
            on_pool!(&self.db, p => sqlx::query(
                "UPDATE destinations SET disabled_at = $1, disabled_reason = $2, updated_at = $1
                 WHERE tenant_id = $3 AND url = $4 AND disabled_at IS NULL",
            )
            .bind(now)
            .bind(reason)
            .bind(tenant)
            .bind(url)
            .execute(p)
            .await
            .map(drop)?);
            self.forget_destination(tenant, url);
            self.announce(super::Change::Destinations(tenant.clone())).await;
        }
        Ok(reason)
    }

    /// Enables a disabled destination (and forgets its failures). False when there is none.
    pub async fn enable_destination(&self, tenant: &TenantId, url: &str) -> Result<bool> {
        let now = now_ms();
        let done = on_pool!(&self.db, p => sqlx::query(
            "UPDATE destinations SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL, updated_at = $1
             WHERE tenant_id = $2 AND url = $3",
        )
        .bind(now)
        .bind(tenant)
        .bind(url)
        .execute(p)
        .await?
        .rows_affected());
        self.forget_destination(tenant, url);
        self.announce(super::Change::Destinations(tenant.clone())).await;
        Ok(done > 0)
    }

    /// Forgets every cached destination (the periodic reconcile).
    pub fn forget_destinations(&self) {
        let mut cache = self.caches.destinations.lock().expect("not poisoned");
        self.caches.destination_writes.fetch_add(1, Ordering::AcqRel);
        cache.clear();
    }

    /// Forgets every cached destination of `tenant` (another node changed one).
    pub fn forget_destinations_of(&self, tenant: &TenantId) {
        let mut cache = self.caches.destinations.lock().expect("not poisoned");
        self.caches.destination_writes.fetch_add(1, Ordering::AcqRel);
        cache.retain(|(t, _), _| t != tenant);
    }
}
