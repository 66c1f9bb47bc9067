//! Tenant API keys. Only a key's sha256 is stored; the key itself is returned once, at
//! creation, and cannot be recovered.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Result, Store, ms_as_rfc3339, now_ms, opt_ms_as_rfc3339};
use crate::event::{KeyId, TenantId};
use crate::store::Tenant;

/// What every tenant key starts with, so a leaked one is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "syk_";

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: KeyId,
    pub name: String,
    /// The key's first characters, to tell keys apart without revealing them.
    pub prefix: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub created_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "opt_ms_as_rfc3339")]
    pub last_used_at: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "opt_ms_as_rfc3339")]
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
        let hashed = hash(&key);
        on_pool!(&self.db, p => sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.id)
        .bind(tenant)
        .bind(&row.name)
        .bind(&row.prefix)
        .bind(&hashed)
        .bind(row.created_at)
        .execute(p)
        .await
        .map(drop)?);
        Ok((row, key))
    }

    pub async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at");
        Ok(on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).fetch_all(p).await?))
    }

    /// Revokes a key at once. False when the tenant has no such key; revoking twice is fine.
    pub async fn revoke_api_key(&self, tenant: &TenantId, id: &KeyId) -> Result<bool> {
        let now = now_ms();
        let done = on_pool!(&self.db, p => sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE tenant_id = $2 AND id = $3",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(p)
        .await?
        .rows_affected());
        Ok(done > 0)
    }

    /// The tenant a presented key belongs to, if the key is valid and not revoked.
    pub async fn tenant_for_key(&self, key: &str) -> Result<Option<Tenant>> {
        let hashed = hash(key);
        let row: Option<(KeyId, Option<i64>, TenantId, String, i64)> = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT k.id, k.last_used_at, t.id, t.name, t.created_at FROM api_keys k
             JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(&hashed)
        .fetch_optional(p)
        .await?);
        let Some((key_id, last_used, tenant_id, name, created_at)) = row else { return Ok(None) };
        let now = now_ms();
        if last_used.is_none_or(|t| now - t > LAST_USED_GRANULARITY_MS) {
            on_pool!(&self.db, p => sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&key_id)
                .execute(p)
                .await
                .map(drop)?);
        }
        Ok(Some(Tenant { id: tenant_id, name, created_at }))
    }
}
