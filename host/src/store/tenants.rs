//! Tenants and their declared sources.

use serde::Serialize;

use super::{Result, Store, StoreError, is_unique_violation, ms_as_rfc3339, now_ms};
use crate::event::TenantId;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SourceRow {
    pub name: String,
    pub format: String,
    /// Never serialised: a source's secret is write-only through the API.
    #[serde(skip)]
    pub secret: Option<String>,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub created_at: i64,
}

impl Store {
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let tenant = Tenant { id: TenantId::generate(), name: name.to_owned(), created_at: now_ms() };
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(&self.pool)
            .await
            .map_err(
                |e| if is_unique_violation(&e) { StoreError::Conflict(format!("tenant {name}")) } else { e.into() },
            )?;
        Ok(tenant)
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        Ok(sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        Ok(sqlx::query_as("SELECT id, name, created_at FROM tenants ORDER BY name").fetch_all(&self.pool).await?)
    }

    /// Creates or replaces a source declaration.
    pub async fn put_source(
        &self,
        tenant: &TenantId,
        name: &str,
        format: &str,
        secret: Option<&str>,
    ) -> Result<SourceRow> {
        let created_at = now_ms();
        sqlx::query(
            "INSERT INTO sources (tenant_id, name, format, secret, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, name) DO UPDATE SET format = excluded.format, secret = excluded.secret",
        )
        .bind(tenant)
        .bind(name)
        .bind(format)
        .bind(secret)
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        Ok(self.source(tenant, name).await?.expect("just written"))
    }

    pub async fn source(&self, tenant: &TenantId, name: &str) -> Result<Option<SourceRow>> {
        Ok(sqlx::query_as("SELECT name, format, secret, created_at FROM sources WHERE tenant_id = ? AND name = ?")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_sources(&self, tenant: &TenantId) -> Result<Vec<SourceRow>> {
        Ok(sqlx::query_as("SELECT name, format, secret, created_at FROM sources WHERE tenant_id = ? ORDER BY name")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Returns false when there was no such source.
    pub async fn delete_source(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sources WHERE tenant_id = ? AND name = ?")
            .bind(tenant)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
