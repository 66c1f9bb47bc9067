//! Tenants and their declared sources.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, is_unique_violation, ms_as_rfc3339, now_ms};
use crate::event::TenantId;
use crate::sources::auth::SourceAuth;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub created_at: i64,
}

/// A declared source. Not serialisable: its secrets are write-only through the API, which shows
/// what it may (`api::tenants`).
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub name: String,
    pub format: String,
    /// The Standard Webhooks secret (`whsec_...`), for that format only.
    pub secret: Option<String>,
    /// How senders authenticate, for every other format. `None` only for standard-webhooks.
    pub auth: Option<SourceAuth>,
    pub created_at: i64,
}

/// A source as stored: its secret and auth declaration sealed (see `secrets`).
#[derive(sqlx::FromRow)]
struct StoredSource {
    name: String,
    format: String,
    secret: Option<String>,
    auth: Option<String>,
    created_at: i64,
}

impl Store {
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let tenant = Tenant { id: TenantId::generate(), name: name.to_owned(), created_at: now_ms() };
        on_pool!(&self.db, p => sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(format!("tenant {name}")) } else { e.into() })?;
        Ok(tenant)
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        Ok(on_pool!(&self.db, p => sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await?))
    }

    /// The name of tenant `id` (for spans, which name tenants as the API does).
    pub async fn tenant_name(&self, id: &TenantId) -> Result<Option<String>> {
        Ok(
            on_pool!(&self.db, p => sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1").bind(id).fetch_optional(p).await?),
        )
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        Ok(
            on_pool!(&self.db, p => sqlx::query_as("SELECT id, name, created_at FROM tenants ORDER BY name").fetch_all(p).await?),
        )
    }

    /// Creates or replaces a source declaration.
    pub async fn put_source(
        &self,
        tenant: &TenantId,
        name: &str,
        format: &str,
        secret: Option<&str>,
        auth: Option<&SourceAuth>,
    ) -> Result<SourceRow> {
        let created_at = now_ms();
        let auth = auth.map(|a| serde_json::to_string(a).expect("plain data"));
        let secret = secret.map(|s| self.keys.seal(s));
        // The declaration holds the sender's credentials: sealed whole.
        let auth = auth.map(|a| self.keys.seal(&a));
        on_pool!(&self.db, p => sqlx::query(
            "INSERT INTO sources (tenant_id, name, format, secret, auth, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, name) DO UPDATE
             SET format = excluded.format, secret = excluded.secret, auth = excluded.auth",
        )
        .bind(tenant)
        .bind(name)
        .bind(format)
        .bind(&secret)
        .bind(&auth)
        .bind(created_at)
        .execute(p)
        .await
        .map(drop)?);
        self.forget_sources();
        self.announce(super::Change::Sources).await;
        Ok(self.source(tenant, name).await?.expect("just written"))
    }

    /// A tenant and one of its sources by name, from memory when they were read before: ingest
    /// needs both on every request.
    pub async fn ingest_target(&self, tenant: &str, source: &str) -> Result<Option<(Tenant, Option<SourceRow>)>> {
        let key = (tenant.to_owned(), source.to_owned());
        if let Some(hit) = self.caches.sources.lock().expect("not poisoned").get(&key) {
            return Ok(Some((hit.0.clone(), Some(hit.1.clone()))));
        }
        let writes = self.caches.source_writes.load(Ordering::Acquire);
        let Some(t) = self.tenant_by_name(tenant).await? else { return Ok(None) };
        let s = self.source(&t.id, source).await?;
        if let Some(s) = &s {
            let mut cache = self.caches.sources.lock().expect("not poisoned");
            // A write since the read began may have been missed by it: do not keep it.
            if self.caches.source_writes.load(Ordering::Acquire) == writes {
                if cache.len() >= super::CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, (t.clone(), s.clone()));
            }
        }
        Ok(Some((t, s)))
    }

    /// After any source write, here or on another node: the next ingest reads sources from
    /// the database again.
    pub fn forget_sources(&self) {
        let mut cache = self.caches.sources.lock().expect("not poisoned");
        self.caches.source_writes.fetch_add(1, Ordering::AcqRel);
        cache.clear();
    }

    pub async fn source(&self, tenant: &TenantId, name: &str) -> Result<Option<SourceRow>> {
        let row: Option<StoredSource> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT name, format, secret, auth, created_at FROM sources WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(p)
        .await?);
        row.map(|r| self.open_source(r)).transpose()
    }

    pub async fn list_sources(&self, tenant: &TenantId) -> Result<Vec<SourceRow>> {
        let rows: Vec<StoredSource> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT name, format, secret, auth, created_at FROM sources WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(p)
        .await?);
        rows.into_iter().map(|r| self.open_source(r)).collect()
    }

    /// A source with its secret and auth declaration opened (sealed at rest, see `secrets`).
    fn open_source(&self, row: StoredSource) -> Result<SourceRow> {
        let auth = row.auth.map(|a| self.keys.open(&a)).transpose()?;
        let auth = auth
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| sqlx::Error::ColumnDecode { index: "auth".into(), source: Box::new(e) })?;
        Ok(SourceRow {
            name: row.name,
            format: row.format,
            secret: row.secret.map(|s| self.keys.open(&s)).transpose()?,
            auth,
            created_at: row.created_at,
        })
    }

    /// Returns false when there was no such source.
    pub async fn delete_source(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        let done = on_pool!(&self.db, p => sqlx::query("DELETE FROM sources WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(p)
            .await?
            .rows_affected());
        self.forget_sources();
        self.announce(super::Change::Sources).await;
        Ok(done > 0)
    }
}
