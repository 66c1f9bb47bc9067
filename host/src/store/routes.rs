//! Versioned route documents, one series per tenant. The highest version is live; rollback
//! appends a copy of an older one, so history only ever grows.

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, is_unique_violation, ms_as_rfc3339, now_ms};
use crate::event::TenantId;

/// Where a route version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase", type_name = "TEXT")]
pub enum RouteOrigin {
    /// Applied through the API (or the CLI).
    Api,
    /// Applied from a file in `--routes-dir`.
    File,
    /// A copy of an earlier version.
    Rollback,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RouteSetRow {
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub version: i64,
    /// The resolved document (JSON), as validated and made live.
    pub document: String,
    pub origin: RouteOrigin,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub created_at: i64,
}

/// One version in a listing.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RouteVersionSummary {
    pub version: i64,
    pub origin: RouteOrigin,
    /// Number of routes in the document.
    pub routes: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub created_at: i64,
}

const COLUMNS: &str = "tenant_id, version, document, origin, created_at";

impl Store {
    /// Appends a new version of the tenant's routes and returns it.
    pub async fn insert_route_set(
        &self,
        tenant: &TenantId,
        document: &str,
        origin: RouteOrigin,
    ) -> Result<RouteSetRow> {
        let row: RouteSetRow = sqlx::query_as(&format!(
            "INSERT INTO route_sets (tenant_id, version, document, origin, created_at)
             SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ?, ? FROM route_sets WHERE tenant_id = ?
             RETURNING {COLUMNS}"
        ))
        .bind(tenant)
        .bind(self.keys.seal_document(document))
        .bind(origin)
        .bind(now_ms())
        .bind(tenant)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("route version".into()) } else { e.into() })?;
        self.open_route_set(row)
    }

    /// A stored version with its destination secrets opened (they are sealed at rest).
    fn open_route_set(&self, mut row: RouteSetRow) -> Result<RouteSetRow> {
        row.document = self.keys.open_document(&row.document)?;
        Ok(row)
    }

    /// The live (highest) version of every tenant's routes, for start-up.
    pub async fn latest_route_sets(&self) -> Result<Vec<RouteSetRow>> {
        let rows: Vec<RouteSetRow> = sqlx::query_as(
            "SELECT r.tenant_id, r.version, r.document, r.origin, r.created_at FROM route_sets r
             JOIN (SELECT tenant_id, MAX(version) AS v FROM route_sets GROUP BY tenant_id) m
               ON m.tenant_id = r.tenant_id AND m.v = r.version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|r| self.open_route_set(r)).collect()
    }

    /// One version, or the latest when `version` is None.
    pub async fn route_set(&self, tenant: &TenantId, version: Option<i64>) -> Result<Option<RouteSetRow>> {
        let row: Option<RouteSetRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM route_sets WHERE tenant_id = ? AND (? IS NULL OR version = ?)
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(version)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.open_route_set(r)).transpose()
    }

    pub async fn latest_route_set(&self, tenant: &TenantId) -> Result<Option<RouteSetRow>> {
        self.route_set(tenant, None).await
    }

    /// Every version, newest first.
    pub async fn route_versions(&self, tenant: &TenantId) -> Result<Vec<RouteVersionSummary>> {
        Ok(sqlx::query_as(
            "SELECT version, origin, COALESCE(json_array_length(document, '$.routes'), 0) AS routes, created_at
             FROM route_sets WHERE tenant_id = ? ORDER BY version DESC",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }
}
