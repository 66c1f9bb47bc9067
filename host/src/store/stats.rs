//! Delivery attempts per minute, by destination and outcome: the console's chart, from the
//! stored attempts.

use super::{Result, Store};
use crate::event::TenantId;

/// One destination's attempts in one minute.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttemptMinute {
    pub url: String,
    /// Start of the minute, unix ms.
    pub minute_ms: i64,
    /// The receiver answered 2xx.
    pub delivered: i64,
    /// The receiver answered something else.
    pub failed: i64,
    /// No answer: refused, unreachable, timed out.
    pub error: i64,
}

impl Store {
    /// The tenant's attempts started at or after `since` (unix ms), per destination and
    /// minute, oldest first.
    ///
    /// There is no index on attempt times (it would cost every attempt of the hot path a
    /// write), so the query walks the tenant's deliveries and keeps those updated since
    /// `since`: every attempt updates its delivery, so one that has an attempt in the window
    /// was updated in it. The cost grows with the deliveries retained, not with the hour.
    pub async fn attempts_per_minute(&self, tenant: &TenantId, since: i64) -> Result<Vec<AttemptMinute>> {
        Ok(on_pool!(&self.db, p => sqlx::query_as(
            "SELECT d.url AS url, (a.started_at / 60000) * 60000 AS minute_ms,
                    COUNT(CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 1 END) AS delivered,
                    COUNT(CASE WHEN a.status_code NOT BETWEEN 200 AND 299 THEN 1 END) AS failed,
                    COUNT(CASE WHEN a.status_code IS NULL THEN 1 END) AS error
             FROM deliveries d JOIN attempts a ON a.delivery_id = d.id
             WHERE d.tenant_id = $1 AND d.updated_at >= $2 AND a.started_at >= $2
             GROUP BY d.url, minute_ms ORDER BY d.url, minute_ms",
        )
        .bind(tenant)
        .bind(since)
        .fetch_all(p)
        .await?))
    }
}
