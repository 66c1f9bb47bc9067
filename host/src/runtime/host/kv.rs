//! `kv`: the tenant's key-value store. Keys are scoped by tenant in the store itself, so a
//! plugin can only ever reach its own tenant's data. Writes are buffered for the call (see
//! `PluginState::kv_writes`) and committed by `invoke` when it succeeds.
//!
//! Each `set` first reserves the growth it may cause against the tenant's kv quota
//! (`store::KvReservation`); refused, it fails in the guest with the limit named and writes
//! nothing. A key whose stored size the call does not know (it never read it) is charged as
//! if new, which needs no query; only when that worst case would not fit is the key looked
//! up, so that overwriting an existing key near the limit is not refused.

use crate::runtime::bindings::kv::Host;
use crate::runtime::state::{KeyCharge, PluginState};
use crate::store::KvUsage;

const MAX_KEY_BYTES: usize = 512;

/// Growth that writing `size` bytes (key + value) over a key of stored size `before` causes.
/// Shrinking is not credited here: it counts once committed.
fn growth(before: Option<usize>, size: usize) -> KvUsage {
    match before {
        None => KvUsage { keys: 1, bytes: size as i64 },
        Some(old) => KvUsage { keys: 0, bytes: (size as i64 - old as i64).max(0) },
    }
}

impl PluginState {
    /// Counts one kv call. Over `max_kv_ops` the call traps: a plugin looping on the store
    /// would otherwise spend the whole deadline in host I/O (reads) and fill host memory
    /// with buffered writes.
    fn count_kv_op(&mut self) -> wasmtime::Result<()> {
        self.kv_ops += 1;
        if self.kv_ops > self.limits.max_kv_ops {
            self.kv_limit_hit = true;
            wasmtime::bail!(
                "kv operation limit exceeded: more than {} calls in one invocation",
                self.limits.max_kv_ops
            );
        }
        Ok(())
    }

    fn check_key(&self, key: &str) -> Result<(), String> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(format!("kv key must be 1..={MAX_KEY_BYTES} bytes"));
        }
        Ok(())
    }

    /// Reserves what setting `key` to `size` bytes may add, replacing what this call
    /// reserved for the key before. Looks the key up only if the worst case does not fit.
    async fn reserve_set(&mut self, key: &str, size: usize) -> wasmtime::Result<Result<KeyCharge, String>> {
        let mut entry = self.kv_keys.get(key).copied().unwrap_or_default();
        if entry.before.is_none() {
            let worst = growth(None, size);
            if self.kv_reserved.change(worst - entry.charged, self.kv_quota).is_ok() {
                return Ok(Ok(KeyCharge { charged: worst, ..entry }));
            }
            let stored = self.stored(key).await?;
            entry.before = Some(stored.map(|v| key.len() + v.len()));
        }
        let charge = growth(entry.before.flatten(), size);
        match self.kv_reserved.change(charge - entry.charged, self.kv_quota) {
            Ok(()) => Ok(Ok(KeyCharge { charged: charge, ..entry })),
            Err(refused) => {
                self.kv_keys.insert(key.to_owned(), entry);
                Ok(Err(refused.to_string()))
            }
        }
    }
}

impl PluginState {
    /// The key's value outside this call: staged by another call, or committed. A storage
    /// failure cannot be expressed as "absent" without lying: it traps instead, recorded as
    /// the host's fault, so the event is retried later rather than failed for good.
    async fn stored(&mut self, key: &str) -> wasmtime::Result<Option<String>> {
        self.store.kv_get(&self.tenant_id, key).await.map_err(|e| {
            self.host_fault = Some(format!("kv get failed: {e}"));
            wasmtime::format_err!("kv get failed: {e}")
        })
    }
}

impl Host for PluginState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.count_kv_op()?;
        if self.check_key(&key).is_err() {
            return Ok(None);
        }
        if let Some(written) = self.kv_writes.get(&key) {
            return Ok(written.clone());
        }
        let value = self.stored(&key).await?;
        // Now the key's size is known: a later `set` of it is charged exactly.
        let entry = self.kv_keys.entry(key.clone()).or_default();
        entry.before.get_or_insert(value.as_ref().map(|v| key.len() + v.len()));
        Ok(value)
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), String>> {
        self.count_kv_op()?;
        if let Err(e) = self.check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > self.limits.max_kv_value_bytes {
            return Ok(Err(format!(
                "kv value is {} bytes; the limit is {}",
                value.len(),
                self.limits.max_kv_value_bytes
            )));
        }
        match self.reserve_set(&key, key.len() + value.len()).await? {
            Ok(charge) => {
                self.kv_keys.insert(key.clone(), charge);
                self.kv_writes.insert(key, Some(value));
                Ok(Ok(()))
            }
            Err(refused) => Ok(Err(refused)),
        }
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.count_kv_op()?;
        if let Err(e) = self.check_key(&key) {
            return Ok(Err(e));
        }
        // A delete needs no room: give back what this call reserved for the key.
        if let Some(entry) = self.kv_keys.get_mut(&key) {
            self.kv_reserved
                .change(KvUsage::default() - entry.charged, self.kv_quota)
                .expect("giving back never exceeds a quota");
            entry.charged = KvUsage::default();
        }
        self.kv_writes.insert(key, None);
        Ok(Ok(()))
    }
}
