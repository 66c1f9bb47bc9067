//! Tenant API keys. Only a key's sha256 is stored; the key itself is returned once, at
//! creation, and cannot be recovered.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Result, Store, ms_as_rfc3339, now_ms, opt_ms_as_rfc3339};
use crate::event::{KeyId, TenantId};
use crate::store::Tenant;

/// What every tenant key starts with, so a leaked one is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "syk_";

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: KeyId,
    pub name: String,
    /// The key's first characters, to tell keys apart without revealing them.
    pub prefix: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub created_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "opt_ms_as_rfc3339")]
    pub last_used_at: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "opt_ms_as_rfc3339")]
    pub revoked_at: Option<i64>,
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

const COLUMNS: &str = "id, name, prefix, created_at, last_used_at, revoked_at";

/// How often `last_used_at` is refreshed: writing on every request would cost a commit each.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

impl Store {
    /// Creates a key and returns it with the one copy of the secret key.
    pub async fn create_api_key(&self, tenant: &TenantId, name: &str) -> Result<(ApiKey, String)> {
        // 32 random bytes: guessing is hopeless, so a fast hash (not a password hash) is right.
        let key = format!("{KEY_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
        let row = ApiKey {
            id: KeyId::generate(),
            name: name.to_owned(),
            prefix: key[..KEY_PREFIX.len() + 8].to_owned(),
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        sqlx::query("INSERT INTO api_keys (id, tenant_id, name, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&row.id)
            .bind(tenant)
            .bind(&row.name)
            .bind(&row.prefix)
            .bind(hash(&key))
            .bind(row.created_at)
            .execute(&self.pool)
            .await?;
        Ok((row, key))
    }

    pub async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = ? ORDER BY created_at"))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Revokes a key at once. False when the tenant has no such key; revoking twice is fine.
    pub async fn revoke_api_key(&self, tenant: &TenantId, id: &KeyId) -> Result<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant_id = ? AND id = ?")
                .bind(now_ms())
                .bind(tenant)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The tenant a presented key belongs to, if the key is valid and not revoked.
    pub async fn tenant_for_key(&self, key: &str) -> Result<Option<Tenant>> {
        let row: Option<(KeyId, Option<i64>, TenantId, String, i64)> = sqlx::query_as(
            "SELECT k.id, k.last_used_at, t.id, t.name, t.created_at FROM api_keys k
             JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = ? AND k.revoked_at IS NULL",
        )
        .bind(hash(key))
        .fetch_optional(&self.pool)
        .await?;
        let Some((key_id, last_used, tenant_id, name, created_at)) = row else { return Ok(None) };
        let now = now_ms();
        if last_used.is_none_or(|t| now - t > LAST_USED_GRANULARITY_MS) {
            sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
                .bind(now)
                .bind(&key_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(Tenant { id: tenant_id, name, created_at }))
    }
}
