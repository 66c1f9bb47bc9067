//! The tenant key-value store behind the plugin `kv` capability.
//!
//! A plugin call's writes reach the database through the writer, in the next group commit.
//! Until then they sit in an overlay that every read consults first, so a later call sees
//! them at once, exactly as if they had been committed when the call returned.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::{Result, Store, now_ms};
use crate::event::TenantId;

/// A staged write: the value (None: deleted) and the staging that wrote it last.
type Staged = (Option<String>, u64);

/// Writes queued for the writer and not yet committed, by (tenant, key).
#[derive(Default)]
pub(super) struct KvOverlay {
    pending: Mutex<HashMap<(TenantId, String), Staged>>,
    seq: AtomicU64,
}

/// Applies queued kv writes in a batch: later writes to a key win, upserts go in multi-row
/// statements.
pub(super) async fn apply_batch(
    tx: &mut Transaction<'_, Sqlite>,
    calls: &[(&TenantId, &HashMap<String, Option<String>>)],
    now: i64,
) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let mut last: HashMap<(&TenantId, &str), Option<&str>> = HashMap::new();
    for (tenant, writes) in calls {
        for (key, value) in writes.iter() {
            last.insert((tenant, key.as_str()), value.as_deref());
        }
    }
    let (sets, deletes): (Vec<_>, Vec<_>) = last.into_iter().partition(|(_, v)| v.is_some());
    for chunk in sets.chunks(1000) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO kv (tenant_id, key, value, updated_at) ");
        q.push_values(chunk, |mut row, ((tenant, key), value)| {
            row.push_bind(*tenant).push_bind(*key).push_bind(value.expect("sets only")).push_bind(now);
        });
        q.push(" ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at");
        q.build().execute(&mut **tx).await?;
    }
    for ((tenant, key), _) in deletes {
        sqlx::query("DELETE FROM kv WHERE tenant_id = ? AND key = ?").bind(tenant).bind(key).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Puts a call's writes in the overlay; returns the staging number the writer reports
    /// back once they are committed.
    pub(super) fn kv_overlay_stage(&self, tenant: &TenantId, writes: &HashMap<String, Option<String>>) -> u64 {
        let overlay = &self.caches.kv;
        let seq = overlay.seq.fetch_add(1, Ordering::Relaxed);
        let mut pending = overlay.pending.lock().expect("not poisoned");
        for (key, value) in writes {
            pending.insert((tenant.clone(), key.clone()), (value.clone(), seq));
        }
        seq
    }

    /// The writes of staging `seq` are committed: reads go to the database again, unless a
    /// later staging wrote the key since.
    pub(super) fn kv_overlay_committed(&self, tenant: &TenantId, keys: &[String], seq: u64) {
        let mut pending = self.caches.kv.pending.lock().expect("not poisoned");
        for key in keys {
            let k = (tenant.clone(), key.clone());
            if pending.get(&k).is_some_and(|(_, s)| *s == seq) {
                pending.remove(&k);
            }
        }
    }

    pub async fn kv_get(&self, tenant: &TenantId, key: &str) -> Result<Option<String>> {
        let staged =
            self.caches.kv.pending.lock().expect("not poisoned").get(&(tenant.clone(), key.to_owned())).cloned();
        if let Some((value, _)) = staged {
            return Ok(value);
        }
        Ok(sqlx::query_scalar("SELECT value FROM kv WHERE tenant_id = ? AND key = ?")
            .bind(tenant)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Applies one plugin call's writes (`None` deletes the key) in a single transaction of
    /// its own: all or nothing. The pipeline's calls go through the writer instead.
    pub async fn kv_apply(&self, tenant: &TenantId, writes: &HashMap<String, Option<String>>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        apply_batch(&mut tx, &[(tenant, writes)], now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::store::Store;

    #[tokio::test]
    async fn staged_writes_are_read_until_committed_and_a_later_write_wins() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        let t = s.create_tenant("a").await.unwrap().id;
        let w = |v: Option<&str>| HashMap::from([("k".to_owned(), v.map(str::to_owned))]);
        let first = s.kv_overlay_stage(&t, &w(Some("1")));
        assert_eq!(s.kv_get(&t, "k").await.unwrap().as_deref(), Some("1"), "seen before its commit");
        let second = s.kv_overlay_stage(&t, &w(None));
        assert_eq!(s.kv_get(&t, "k").await.unwrap(), None, "a staged delete hides the value");
        s.kv_apply(&t, &w(Some("1"))).await.unwrap();
        s.kv_overlay_committed(&t, &["k".to_owned()], first);
        assert_eq!(s.kv_get(&t, "k").await.unwrap(), None, "the later staging still decides");
        s.kv_apply(&t, &w(None)).await.unwrap();
        s.kv_overlay_committed(&t, &["k".to_owned()], second);
        assert_eq!(s.kv_get(&t, "k").await.unwrap(), None, "then the database does");
    }
}
