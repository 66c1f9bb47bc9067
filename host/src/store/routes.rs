//! Versioned route documents, one series per tenant. The highest version is live; rollback
//! appends a copy of an older one, so history only ever grows.

use serde::{Deserialize, Serialize};

use super::dialect::Dialect;
use super::{Result, Store, StoreError, is_unique_violation, ms_as_rfc3339, now_ms};
use crate::event::TenantId;
use crate::routes::RouteDocument;

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

/// A stored version of a tenant's routes, its document decoded (secrets opened).
#[derive(Debug, Clone)]
pub struct RouteSetRow {
    pub tenant_id: TenantId,
    pub version: i64,
    /// The resolved document, as validated and made live.
    pub document: RouteDocument,
    pub origin: RouteOrigin,
    pub created_at: i64,
}

/// A stored version whose document does not decode (a damaged row): reported, never
/// mistaken for an empty document.
#[derive(Debug, Clone)]
pub struct DamagedRouteSet {
    pub tenant_id: TenantId,
    pub version: i64,
    pub error: String,
}

impl std::fmt::Display for DamagedRouteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stored routes of {} version {} do not decode: {}", self.tenant_id, self.version, self.error)
    }
}

/// A `route_sets` row as stored: the document is sealed JSON text.
#[derive(sqlx::FromRow)]
struct StoredRouteSet {
    tenant_id: TenantId,
    version: i64,
    document: String,
    origin: RouteOrigin,
    created_at: i64,
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
        document: &RouteDocument,
        origin: RouteOrigin,
    ) -> Result<RouteSetRow> {
        let document = serde_json::to_string(document).expect("documents serialise");
        let sql = format!(
            "INSERT INTO route_sets (tenant_id, version, document, origin, created_at)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4 FROM route_sets WHERE tenant_id = $1
             RETURNING {COLUMNS}"
        );
        let (sql, sealed, now) = (&sql, &self.keys.seal_document(&document), now_ms());
        let insert = || async move {
            on_pool!(&self.db, p => sqlx::query_as(sql).bind(tenant).bind(sealed).bind(origin).bind(now).fetch_one(p).await)
        };
        let row: StoredRouteSet = super::next_version_retries(insert).await.map_err(|e| {
            if is_unique_violation(&e) { StoreError::Conflict("route version".into()) } else { e.into() }
        })?;
        self.open_or_fail(row)
    }

    /// A stored version with its destination secrets opened (they are sealed at rest) and
    /// its document decoded; the inner error is a document that does not decode.
    fn open_route_set(&self, row: StoredRouteSet) -> Result<Result<RouteSetRow, DamagedRouteSet>> {
        let text = self.keys.open_document(&row.document)?;
        Ok(match serde_json::from_str(&text) {
            Ok(document) => Ok(RouteSetRow {
                tenant_id: row.tenant_id,
                version: row.version,
                document,
                origin: row.origin,
                created_at: row.created_at,
            }),
            Err(e) => Err(DamagedRouteSet { tenant_id: row.tenant_id, version: row.version, error: e.to_string() }),
        })
    }

    /// One version, with a damaged document an error that says so.
    fn open_or_fail(&self, row: StoredRouteSet) -> Result<RouteSetRow> {
        self.open_route_set(row)?.map_err(|d| StoreError::Damaged(d.to_string()))
    }

    /// The live (highest) version of every tenant's routes (start-up, reconcile). A damaged
    /// one is returned as such, so one tenant's cannot hide the others'.
    pub async fn latest_route_sets(&self) -> Result<Vec<Result<RouteSetRow, DamagedRouteSet>>> {
        let rows: Vec<StoredRouteSet> = on_pool!(&self.db, p => sqlx::query_as(
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
        let row: Option<StoredRouteSet> =
            on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).bind(version).fetch_optional(p).await?);
        row.map(|r| self.open_or_fail(r)).transpose()
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
