//! Versioned route documents, one series per tenant. The highest version is live; rollback
//! appends a copy of an older one, so history only ever grows.

use serde::{Deserialize, Serialize};

use super::dialect::Dialect;
use super::{Result, Store, StoreError, is_unique_violation, ms_as_rfc3339, now_ms};
use crate::event::TenantId;

/// Where a route version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
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
    #[serde(with = "ms_as_rfc3339")]
    pub created_at: i64,
}

/// One version in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RouteVersionSummary {
    pub version: i64,
    pub origin: RouteOrigin,
    /// Number of routes in the document.
    pub routes: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub created_at: i64,
}

text_enum!(RouteOrigin { Api = "api", File = "file", Rollback = "rollback" });

const COLUMNS: &str = "tenant_id, version, document, origin, created_at";

impl Store {
    /// Appends a new version of the tenant's routes and returns it. Numbered as plugin
    /// versions are (`next_version_retries`).
    pub async fn insert_route_set(
        &self,
        tenant: &TenantId,
        document: &str,
        origin: RouteOrigin,
    ) -> Result<RouteSetRow> {
        let sql = format!(
            "INSERT INTO route_sets (tenant_id, version, document, origin, created_at)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4 FROM route_sets WHERE tenant_id = $1
             RETURNING {COLUMNS}"
        );
        let (sql, sealed, now) = (&sql, &self.keys.seal_document(document), now_ms());
        let insert = || async move {
            on_pool!(&self.db, p => sqlx::query_as(sql).bind(tenant).bind(sealed).bind(origin).bind(now).fetch_one(p).await)
        };
        let row: RouteSetRow = super::next_version_retries(insert).await.map_err(|e| {
            if is_unique_violation(&e) { StoreError::Conflict("route version".into()) } else { e.into() }
        })?;
        self.open_route_set(row)
    }

    /// A stored version with its destination secrets opened (they are sealed at rest).
    fn open_route_set(&self, mut row: RouteSetRow) -> Result<RouteSetRow> {
        row.document = self.keys.open_document(&row.document)?;
        Ok(row)
    }

    /// The live (highest) version of every tenant's routes, for start-up.
    pub async fn latest_route_sets(&self) -> Result<Vec<RouteSetRow>> {
        let rows: Vec<RouteSetRow> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT r.tenant_id, r.version, r.document, r.origin, r.created_at FROM route_sets r
             JOIN (SELECT tenant_id, MAX(version) AS v FROM route_sets GROUP BY tenant_id) m
               ON m.tenant_id = r.tenant_id AND m.v = r.version",
        )
        .fetch_all(p)
        .await?);
        rows.into_iter().map(|r| self.open_route_set(r)).collect()
    }

    /// One version, or the latest when `version` is None.
    pub async fn route_set(&self, tenant: &TenantId, version: Option<i64>) -> Result<Option<RouteSetRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM route_sets WHERE tenant_id = $1 AND ($2 IS NULL OR version = $2)
             ORDER BY version DESC LIMIT 1"
        );
        let row: Option<RouteSetRow> =
            on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).bind(version).fetch_optional(p).await?);
        row.map(|r| self.open_route_set(r)).transpose()
    }

    pub async fn latest_route_set(&self, tenant: &TenantId) -> Result<Option<RouteSetRow>> {
        self.route_set(tenant, None).await
    }

    /// Every version, newest first.
    pub async fn route_versions(&self, tenant: &TenantId) -> Result<Vec<RouteVersionSummary>> {
        Ok(on_pool!(&self.db, p => {
            let sql = format!(
                "SELECT version, origin, {} AS routes, created_at FROM route_sets WHERE tenant_id = $1
                 ORDER BY version DESC",
                <DB as Dialect>::ROUTE_COUNT
            );
            sqlx::query_as(&sql).bind(tenant).fetch_all(p).await?
        }))
    }
}
