//! Removing finished work past its retention, in small batches (see `crate::retention`).
//!
//! An event goes with everything recorded about it (raw body, route results, deliveries,
//! attempts: foreign keys cascade) once it is finished: processed, and each of its deliveries
//! delivered or dead, all of that before the cutoff. A pending event, and an event any of
//! whose deliveries is pending (a retry, a replay), are kept however old they are.

use sqlx::QueryBuilder;

use super::dialect::Dialect;
use super::{Result, Store};
use crate::event::{EventId, TenantId};

/// Where a tenant's pruning pass has got to: events are examined oldest first, and each batch
/// resumes after the last event the previous one looked at.
pub type PruneCursor = (i64, EventId);

/// What an event must satisfy to be removed (`$2`: the cutoff). Checked again by the delete
/// itself, so a replay between choosing and deleting keeps the event.
const FINISHED: &str = "status = 'processed' AND processed_at < $2 AND NOT EXISTS (
        SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND (d.status = 'pending' OR d.updated_at >= $2))";

impl Store {
    /// Removes up to `limit` of the tenant's finished events received and finished before
    /// `cutoff` (unix ms), oldest first, after `cursor`. Returns how many it removed and where
    /// the next batch starts; `None` when nothing older is left to look at.
    ///
    /// Choosing reads without the write lock; the delete (with its cascades) is one short
    /// statement, so the writer of the hot path waits at most one batch.
    pub async fn prune_events(
        &self,
        tenant: &TenantId,
        cutoff: i64,
        cursor: Option<&PruneCursor>,
        limit: u32,
    ) -> Result<(u64, Option<PruneCursor>)> {
        let (after_at, after_id) = match cursor {
            Some((at, id)) => (*at, id.as_str()),
            None => (i64::MIN, ""),
        };
        let chosen: Vec<(i64, EventId)> = on_pool!(&self.db, p => {
            let sql = format!(
                "SELECT received_at, id FROM events {}
                 WHERE tenant_id = $1 AND received_at < $2 AND (received_at, id) > ($3, $4) AND {FINISHED}
                 ORDER BY received_at, id LIMIT $5",
                <DB as Dialect>::EVENTS_BY_TENANT_INDEX
            );
            sqlx::query_as(&sql)
                .bind(tenant)
                .bind(cutoff)
                .bind(after_at)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
        });
        let Some(last) = chosen.last().cloned() else { return Ok((0, None)) };
        let removed = on_pool!(&self.db, p => {
            let mut q = QueryBuilder::<DB>::new("DELETE FROM events WHERE id IN (");
            let mut list = q.separated(", ");
            for (_, id) in &chosen {
                list.push_bind(id);
            }
            q.push(") AND status = 'processed' AND processed_at < ").push_bind(cutoff);
            q.push(" AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND (d.status = 'pending' OR d.updated_at >= ");
            q.push_bind(cutoff).push("))");
            q.build().execute(p).await?.rows_affected()
        });
        let next = (chosen.len() as u32 == limit).then_some(last);
        Ok((removed, next))
    }

    /// Removes up to `limit` of the tenant's oldest route versions beyond the newest `keep`.
    /// The live version is the newest, so it is always kept (`keep` is at least 1). Returns
    /// how many it removed.
    pub async fn prune_route_versions(&self, tenant: &TenantId, keep: u32, limit: u32) -> Result<u64> {
        Ok(on_pool!(&self.db, p => sqlx::query(
            "DELETE FROM route_sets WHERE tenant_id = $1 AND version IN (
                 SELECT version FROM route_sets WHERE tenant_id = $1
                 AND version <= (SELECT MAX(version) FROM route_sets WHERE tenant_id = $1) - $2
                 ORDER BY version LIMIT $3)",
        )
        .bind(tenant)
        .bind(i64::from(keep.max(1)))
        .bind(i64::from(limit))
        .execute(p)
        .await?
        .rows_affected()))
    }
}
