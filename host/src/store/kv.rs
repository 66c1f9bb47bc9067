//! The tenant key-value store behind the plugin `kv` capability.

use std::collections::HashMap;

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

    /// Applies one plugin call's writes (`None` deletes the key) in a single transaction: all
    /// or nothing, and one durable commit however many keys the call wrote.
    pub async fn kv_apply(&self, tenant: &TenantId, writes: &HashMap<String, Option<String>>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for (key, value) in writes {
            match value {
                Some(value) => {
                    sqlx::query(
                        "INSERT INTO kv (tenant_id, key, value, updated_at) VALUES (?, ?, ?, ?)
                         ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    )
                    .bind(tenant)
                    .bind(key)
                    .bind(value)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                }
                None => {
                    sqlx::query("DELETE FROM kv WHERE tenant_id = ? AND key = ?")
                        .bind(tenant)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?
                }
            };
        }
        tx.commit().await?;
        Ok(())
    }
}
