//! Versioned route documents, one series per tenant.

use serde::Serialize;

use super::{Result, Store, StoreError, is_unique_violation, ms_as_rfc3339, now_ms};
use crate::event::TenantId;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RouteSetRow {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub version: i64,
    /// The resolved document (JSON), as validated and made live.
    pub document: String,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub created_at: i64,
}

impl Store {
    /// Appends a new version of the tenant's routes and returns it.
    pub async fn insert_route_set(&self, tenant: &TenantId, document: &str) -> Result<RouteSetRow> {
        let row: RouteSetRow = sqlx::query_as(
            "INSERT INTO route_sets (tenant_id, version, document, created_at)
             SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ? FROM route_sets WHERE tenant_id = ?
             RETURNING tenant_id, version, document, created_at",
        )
        .bind(tenant)
        .bind(document)
        .bind(now_ms())
        .bind(tenant)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("route version".into()) } else { e.into() })?;
        Ok(row)
    }

    /// The live (highest) version of every tenant's routes, for start-up.
    pub async fn latest_route_sets(&self) -> Result<Vec<RouteSetRow>> {
        Ok(sqlx::query_as(
            "SELECT r.tenant_id, r.version, r.document, r.created_at FROM route_sets r
             JOIN (SELECT tenant_id, MAX(version) AS v FROM route_sets GROUP BY tenant_id) m
               ON m.tenant_id = r.tenant_id AND m.v = r.version",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn latest_route_set(&self, tenant: &TenantId) -> Result<Option<RouteSetRow>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, version, document, created_at FROM route_sets WHERE tenant_id = ? ORDER BY version DESC LIMIT 1",
        )
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?)
    }
}
