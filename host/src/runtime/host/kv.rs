//! `kv`: the tenant's key-value store. Keys are scoped by tenant in the store itself, so a
//! plugin can only ever reach its own tenant's data. Writes are buffered for the call (see
//! `PluginState::kv_writes`) and committed by `invoke` when it succeeds.

use crate::runtime::bindings::kv::Host;
use crate::runtime::state::PluginState;

const MAX_KEY_BYTES: usize = 512;

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
        // A storage failure cannot be expressed as "absent" without lying: trap instead, which
        // fails this event visibly.
        self.store.kv_get(&self.tenant_id, &key).await.map_err(|e| {
            self.host_fault = Some(format!("kv get failed: {e}"));
            wasmtime::format_err!("kv get failed: {e}")
        })
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
        self.kv_writes.insert(key, Some(value));
        Ok(Ok(()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.count_kv_op()?;
        if let Err(e) = self.check_key(&key) {
            return Ok(Err(e));
        }
        self.kv_writes.insert(key, None);
        Ok(Ok(()))
    }
}
