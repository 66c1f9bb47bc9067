//! Plugin versions: immutable, numbered per tenant and plugin name.

use serde::{Deserialize, Serialize};

use super::backend::JsonText;
use super::{Result, Store, StoreError, is_unique_violation, ms_as_rfc3339, now_ms};
use crate::event::{PluginId, TenantId};

/// A plugin version without its bytes, for listings.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PluginVersionMeta {
    pub id: PluginId,
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    /// The WIT world the version was validated against.
    pub world: String,
    /// The interfaces it imports (validated against the tenant's grants at upload and at
    /// every route apply). Stored as a JSON array; a row that does not decode is an error,
    /// never an empty list, so a damaged row cannot pass a grant check.
    #[sqlx(try_from = "JsonText")]
    pub imports: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "ms_as_rfc3339")]
    pub created_at: i64,
}

/// What an upload stores besides the bytes.
#[derive(Debug, Clone)]
pub struct NewPluginVersion<'a> {
    pub sha256: &'a str,
    pub world: &'a str,
    pub imports: &'a [String],
    pub wasm: &'a [u8],
}

/// A plugin version with its component bytes, for loading.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PluginVersion {
    #[sqlx(flatten)]
    pub meta: PluginVersionMeta,
    pub wasm: Vec<u8>,
}

const META: &str = "id, name, version, sha256, size, world, imports, created_at";

impl Store {
    /// Stores `wasm` as the next version of `name`. Numbering happens in one statement; two
    /// concurrent uploads that read the same highest version collide on the unique index
    /// (tenant, name, version), and the loser numbers again (see `next_version_retries`).
    pub async fn insert_plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        new: &NewPluginVersion<'_>,
    ) -> Result<PluginVersionMeta> {
        let id = PluginId::generate();
        let imports = serde_json::to_string(new.imports).expect("strings serialise");
        let size = new.wasm.len() as i64;
        let now = now_ms();
        let (id_ref, imports) = (&id, &imports);
        let insert = || async move {
            on_pool!(&self.db, p => sqlx::query(
                "INSERT INTO plugins (id, tenant_id, name, version, sha256, size, world, imports, wasm, created_at)
                 SELECT $1, $2, $3, COALESCE(MAX(version), 0) + 1, $4, $5, $6, $7, $8, $9
                 FROM plugins WHERE tenant_id = $2 AND name = $3",
            )
            .bind(id_ref)
            .bind(tenant)
            .bind(name)
            .bind(new.sha256)
            .bind(size)
            .bind(new.world)
            .bind(imports)
            .bind(new.wasm)
            .bind(now)
            .execute(p)
            .await
            .map(drop))
        };
        super::next_version_retries(insert).await.map_err(|e| {
            if is_unique_violation(&e) { StoreError::Conflict(format!("plugin {name} version")) } else { e.into() }
        })?;
        let sql = format!("SELECT {META} FROM plugins WHERE id = $1");
        Ok(on_pool!(&self.db, p => sqlx::query_as(&sql).bind(&id).fetch_one(p).await?))
    }

    /// One version, or the latest when `version` is None.
    pub async fn plugin_version(
        &self,
        tenant: &TenantId,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<PluginVersion>> {
        let q = format!(
            "SELECT {META}, wasm FROM plugins WHERE tenant_id = $1 AND name = $2 AND ($3 IS NULL OR version = $3)
             ORDER BY version DESC LIMIT 1"
        );
        Ok(on_pool!(&self.db, p => sqlx::query_as(&q).bind(tenant).bind(name).bind(version).fetch_optional(p).await?))
    }

    pub async fn list_plugins(&self, tenant: &TenantId) -> Result<Vec<PluginVersionMeta>> {
        let sql = format!("SELECT {META} FROM plugins WHERE tenant_id = $1 ORDER BY name, version");
        Ok(on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).fetch_all(p).await?))
    }

    /// Versions of one plugin, oldest first.
    pub async fn plugin_versions(&self, tenant: &TenantId, name: &str) -> Result<Vec<PluginVersionMeta>> {
        let sql = format!("SELECT {META} FROM plugins WHERE tenant_id = $1 AND name = $2 ORDER BY version");
        Ok(on_pool!(&self.db, p => sqlx::query_as(&sql).bind(tenant).bind(name).fetch_all(p).await?))
    }

    /// How many distinct plugins (names) the tenant has, and how many versions `name` has.
    pub async fn plugin_counts(&self, tenant: &TenantId, name: &str) -> Result<(i64, i64)> {
        Ok(on_pool!(&self.db, p => sqlx::query_as(
            "SELECT COUNT(DISTINCT name), COUNT(CASE WHEN name = $1 THEN 1 END) FROM plugins WHERE tenant_id = $2",
        )
        .bind(name)
        .bind(tenant)
        .fetch_one(p)
        .await?))
    }

    /// Whether any stored version, of any tenant, has these bytes.
    pub async fn plugin_sha_in_use(&self, sha256: &str) -> Result<bool> {
        Ok(on_pool!(&self.db, p => sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plugins WHERE sha256 = $1)")
            .bind(sha256)
            .fetch_one(p)
            .await?))
    }

    /// The content hash of every stored version, for collecting unused artifacts.
    pub async fn plugin_shas(&self) -> Result<std::collections::HashSet<String>> {
        let shas: Vec<String> =
            on_pool!(&self.db, p => sqlx::query_scalar("SELECT DISTINCT sha256 FROM plugins").fetch_all(p).await?);
        Ok(shas.into_iter().collect())
    }

    /// Deletes one version, its component bytes with it. False when there was none.
    pub async fn delete_plugin_version(&self, tenant: &TenantId, name: &str, version: i64) -> Result<bool> {
        let done = on_pool!(&self.db, p => sqlx::query("DELETE FROM plugins WHERE tenant_id = $1 AND name = $2 AND version = $3")
            .bind(tenant)
            .bind(name)
            .bind(version)
            .execute(p)
            .await?
            .rows_affected());
        Ok(done > 0)
    }
}
