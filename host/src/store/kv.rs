//! The tenant key-value store behind the plugin `kv` capability.
//!
//! A plugin call's writes reach the database through the writer, in the next group commit.
//! Until then they sit in an overlay that every read consults first, so a later call sees
//! them at once, exactly as if they had been committed when the call returned.
//!
//! Each tenant's usage (keys, and bytes of keys plus values) is bounded by its quota. The
//! database keeps the committed usage in `kv_usage` (triggers, in the transaction of every
//! write); memory keeps a copy, loaded at start-up and refreshed after each commit that
//! wrote the tenant's kv, plus what calls in flight have **reserved**. A `set` reserves the
//! growth it may cause before it succeeds, under one lock, so concurrent calls cannot pass
//! the quota together; checking costs no query. Shrinking is credited only once committed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::QueryBuilder;

use super::{Result, Store, Tx, now_ms};
use crate::event::TenantId;

/// What a tenant's kv store may hold (`max_kv_keys`, `max_kv_bytes` of its policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    pub max_keys: u64,
    pub max_bytes: u64,
}

/// Keys, and bytes of keys plus values (UTF-8). A difference may be negative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvUsage {
    pub keys: i64,
    pub bytes: i64,
}

impl std::ops::Add for KvUsage {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self { keys: self.keys + o.keys, bytes: self.bytes + o.bytes }
    }
}

impl std::ops::Sub for KvUsage {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self { keys: self.keys - o.keys, bytes: self.bytes - o.bytes }
    }
}

/// A `set` refused because the tenant's kv store would pass its quota. The message names the
/// limit: it reaches the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvQuotaError {
    #[error(
        "kv quota exceeded: the tenant's kv store may hold {limit} keys (max_kv_keys) and has {used} stored or being written; delete keys first"
    )]
    Keys { limit: u64, used: i64 },
    #[error(
        "kv quota exceeded: the tenant's kv store may hold {limit} bytes of keys and values (max_kv_bytes); {used} are stored or being written and this write adds {adds}"
    )]
    Bytes { limit: u64, used: i64, adds: i64 },
}

/// A tenant's usage as memory tracks it.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TenantUsage {
    /// As of the last commit that wrote this tenant's kv (from `kv_usage`).
    committed: KvUsage,
    /// Growth reserved by calls in flight and by writes queued but not yet committed.
    reserved: KvUsage,
}

/// Growth one plugin call has reserved. Given back when dropped, unless its writes were
/// committed (then the committed usage includes them): a failed call, a dry run or a dropped
/// write frees its reservation without anyone having to remember to.
pub struct KvReservation {
    store: Store,
    tenant: TenantId,
    usage: KvUsage,
}

impl std::fmt::Debug for KvReservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvReservation").field("tenant", &self.tenant).field("usage", &self.usage).finish()
    }
}

impl KvReservation {
    /// Changes this reservation by `delta`. Growth (a positive part) is checked against
    /// `quota` together with what is committed and what everyone else has reserved; a
    /// shrink always succeeds. Nothing changes when it fails.
    pub fn change(&mut self, delta: KvUsage, quota: KvQuota) -> Result<(), KvQuotaError> {
        let mut all = self.store.caches.kv_usage.lock().expect("not poisoned");
        let u = all.entry(self.tenant.clone()).or_default();
        let used = u.committed + u.reserved;
        if delta.keys > 0 && used.keys + delta.keys > quota.max_keys as i64 {
            return Err(KvQuotaError::Keys { limit: quota.max_keys, used: used.keys });
        }
        if delta.bytes > 0 && used.bytes + delta.bytes > quota.max_bytes as i64 {
            return Err(KvQuotaError::Bytes { limit: quota.max_bytes, used: used.bytes, adds: delta.bytes });
        }
        u.reserved = u.reserved + delta;
        self.usage = self.usage + delta;
        Ok(())
    }

    /// What this reservation holds.
    pub fn usage(&self) -> KvUsage {
        self.usage
    }
}

impl Drop for KvReservation {
    fn drop(&mut self) {
        if self.usage == KvUsage::default() {
            return;
        }
        let mut all = self.store.caches.kv_usage.lock().expect("not poisoned");
        if let Some(u) = all.get_mut(&self.tenant) {
            u.reserved = u.reserved - self.usage;
        }
    }
}

/// The committed usage of `tenants`, read inside the transaction that just wrote their kv.
pub(super) async fn usage_of(tx: &mut Tx<'_>, tenants: &[&TenantId]) -> Result<Vec<(TenantId, KvUsage)>> {
    let mut out = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let row: Option<(i64, i64)> = on_tx!(tx, c => sqlx::query_as("SELECT keys, bytes FROM kv_usage WHERE tenant_id = $1")
            .bind(*tenant)
            .fetch_optional(&mut **c)
            .await?);
        let (keys, bytes) = row.unwrap_or_default();
        out.push(((*tenant).clone(), KvUsage { keys, bytes }));
    }
    Ok(out)
}

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
    tx: &mut Tx<'_>,
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
        on_tx!(&mut *tx, c => {
            let mut q = QueryBuilder::<DB>::new("INSERT INTO kv (tenant_id, key, value, updated_at) ");
            q.push_values(chunk, |mut row, ((tenant, key), value)| {
                row.push_bind(*tenant).push_bind(*key).push_bind(value.expect("sets only")).push_bind(now);
            });
            q.push(" ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at");
            q.build().execute(&mut **c).await?;
        });
    }
    for ((tenant, key), _) in deletes {
        on_tx!(&mut *tx, c => sqlx::query("DELETE FROM kv WHERE tenant_id = $1 AND key = $2")
            .bind(tenant)
            .bind(key)
            .execute(&mut **c)
            .await
            .map(drop)?);
    }
    Ok(())
}

impl Store {
    /// Loads every tenant's committed kv usage, at start-up.
    pub(super) async fn kv_usage_load(&self) -> Result<()> {
        let rows: Vec<(TenantId, i64, i64)> =
            on_pool!(&self.db, p => sqlx::query_as("SELECT tenant_id, keys, bytes FROM kv_usage").fetch_all(p).await?);
        let mut all = self.caches.kv_usage.lock().expect("not poisoned");
        for (tenant, keys, bytes) in rows {
            all.entry(tenant).or_default().committed = KvUsage { keys, bytes };
        }
        Ok(())
    }

    /// An empty reservation for one plugin call of `tenant`.
    pub fn kv_reservation(&self, tenant: &TenantId) -> KvReservation {
        KvReservation { store: self.clone(), tenant: tenant.clone(), usage: KvUsage::default() }
    }

    /// After a commit: the committed usage read in its transaction, and the reservations of
    /// the writes it committed, which that usage now includes. One lock for both, so a check
    /// never counts those writes twice, nor not at all.
    pub(super) fn kv_usage_committed(&self, usage: &[(TenantId, KvUsage)], mut done: Vec<KvReservation>) {
        let mut all = self.caches.kv_usage.lock().expect("not poisoned");
        for (tenant, committed) in usage {
            all.entry(tenant.clone()).or_default().committed = *committed;
        }
        for r in &mut done {
            if let Some(u) = all.get_mut(&r.tenant) {
                u.reserved = u.reserved - r.usage;
            }
            r.usage = KvUsage::default();
        }
    }

    /// The tenant's usage as the quota check sees it: committed plus reserved.
    pub fn kv_usage(&self, tenant: &TenantId) -> KvUsage {
        let all = self.caches.kv_usage.lock().expect("not poisoned");
        all.get(tenant).map(|u| u.committed + u.reserved).unwrap_or_default()
    }

    /// The tenant's usage counted from the `kv` table itself, for tests and tools.
    pub async fn kv_usage_counted(&self, tenant: &TenantId) -> Result<KvUsage> {
        let (keys, bytes): (i64, i64) = on_pool!(&self.db, p => sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(octet_length(key) + octet_length(value)), 0) AS BIGINT)
             FROM kv WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(p)
        .await?);
        Ok(KvUsage { keys, bytes })
    }

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
        Ok(on_pool!(&self.db, p => sqlx::query_scalar("SELECT value FROM kv WHERE tenant_id = $1 AND key = $2")
            .bind(tenant)
            .bind(key)
            .fetch_optional(p)
            .await?))
    }

    /// Applies one plugin call's writes (`None` deletes the key) in a single transaction of
    /// its own: all or nothing. The pipeline's calls go through the writer instead.
    pub async fn kv_apply(&self, tenant: &TenantId, writes: &HashMap<String, Option<String>>) -> Result<()> {
        self.kv_commit(tenant, writes, self.kv_reservation(tenant)).await
    }

    /// `kv_apply` for a call that reserved its growth: the reservation ends with the commit.
    pub async fn kv_commit(
        &self,
        tenant: &TenantId,
        writes: &HashMap<String, Option<String>>,
        reserved: KvReservation,
    ) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        apply_batch(&mut tx, &[(tenant, writes)], now_ms()).await?;
        let usage = usage_of(&mut tx, &[tenant]).await?;
        tx.commit().await?;
        self.kv_usage_committed(&usage, vec![reserved]);
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
