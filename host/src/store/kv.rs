//! The tenant key-value store behind the plugin `kv` capability.

use super::{Result, Store, now_ms};
use crate::event::TenantId;

impl Store {
    pub async fn kv_get(&self, tenant: &TenantId, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM kv WHERE tenant_id = ? AND key = ?")
            .bind(tenant)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn kv_set(&self, tenant: &TenantId, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO kv (tenant_id, key, value, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn kv_delete(&self, tenant: &TenantId, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM kv WHERE tenant_id = ? AND key = ?")
            .bind(tenant)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
