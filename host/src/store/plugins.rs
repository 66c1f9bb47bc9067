//! Plugin versions: immutable, numbered per tenant and plugin name.

use serde::Serialize;

use super::{Result, Store, StoreError, is_unique_violation, ms_as_rfc3339, now_ms};
use crate::event::{PluginId, TenantId};

/// A plugin version without its bytes, for listings.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PluginVersionMeta {
    pub id: PluginId,
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    #[serde(serialize_with = "ms_as_rfc3339")]
    pub created_at: i64,
}

/// A plugin version with its component bytes, for loading.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PluginVersion {
    #[sqlx(flatten)]
    pub meta: PluginVersionMeta,
    pub wasm: Vec<u8>,
}

const META: &str = "id, name, version, sha256, size, created_at";

impl Store {
    /// Stores `wasm` as the next version of `name`. Numbering happens in one statement, so two
    /// concurrent uploads cannot get the same version (the unique index would refuse one).
    pub async fn insert_plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        sha256: &str,
        wasm: &[u8],
    ) -> Result<PluginVersionMeta> {
        let id = PluginId::generate();
        sqlx::query(
            "INSERT INTO plugins (id, tenant_id, name, version, sha256, size, wasm, created_at)
             SELECT ?, ?, ?, COALESCE(MAX(version), 0) + 1, ?, ?, ?, ?
             FROM plugins WHERE tenant_id = ? AND name = ?",
        )
        .bind(&id)
        .bind(tenant)
        .bind(name)
        .bind(sha256)
        .bind(wasm.len() as i64)
        .bind(wasm)
        .bind(now_ms())
        .bind(tenant)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) { StoreError::Conflict(format!("plugin {name} version")) } else { e.into() }
        })?;
        Ok(sqlx::query_as(&format!("SELECT {META} FROM plugins WHERE id = ?")).bind(&id).fetch_one(&self.pool).await?)
    }

    /// One version, or the latest when `version` is None.
    pub async fn plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<PluginVersion>> {
        let q = format!(
            "SELECT {META}, wasm FROM plugins WHERE tenant_id = ? AND name = ? AND (? IS NULL OR version = ?)
             ORDER BY version DESC LIMIT 1"
        );
        Ok(sqlx::query_as(&q).bind(tenant).bind(name).bind(version).bind(version).fetch_optional(&self.pool).await?)
    }

    pub async fn list_plugins(&self, tenant: &TenantId) -> Result<Vec<PluginVersionMeta>> {
        Ok(sqlx::query_as(&format!("SELECT {META} FROM plugins WHERE tenant_id = ? ORDER BY name, version"))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?)
    }
}
