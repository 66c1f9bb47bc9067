//! Per-invocation store data: what one sandboxed call may see and what it has used.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::PluginLimits;
use crate::event::TenantId;
use crate::store::{KvQuota, KvReservation, KvUsage, Store};

/// The configuration map of one pipeline step, as plugins see it.
pub type PluginConfig = std::collections::BTreeMap<String, String>;

/// One line a plugin logged.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LogLine {
    #[schema(value_type = String)]
    pub level: &'static str,
    pub message: String,
}

/// Everything a plugin call's host functions can reach. A new one per call, so nothing leaks
/// between events, let alone tenants.
pub struct PluginState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) memory: MemoryCap,
    pub(super) stderr: MemoryOutputPipe,
    pub(super) started: Instant,
    pub(super) timeout: Duration,
    pub(super) tenant_id: TenantId,
    pub(super) label: Arc<str>,
    pub(super) config: Arc<PluginConfig>,
    pub(super) store: Store,
    pub(super) limits: Arc<PluginLimits>,
    pub(super) logs: Vec<LogLine>,
    pub(super) log_bytes: usize,
    /// kv calls made so far in this call, against `limits.max_kv_ops`.
    pub(super) kv_ops: usize,
    /// Set when `kv_ops` went over the limit, so the trap is reported as that limit.
    pub(super) kv_limit_hit: bool,
    /// A host call failed on the host's side (a storage error): the call's failure is
    /// transient, not the plugin's doing.
    pub(super) host_fault: Option<String>,
    /// This call's kv writes (None = deleted), read back by its own later `get`s. They reach
    /// the store in one transaction once the call has succeeded (never, for a dry run): a
    /// failed call leaves no half-done writes, and a call costs one durable commit however
    /// many keys it sets, so hammering `set` does not hammer the write lock every tenant
    /// shares.
    pub(super) kv_writes: HashMap<String, Option<String>>,
    /// The tenant's kv quota, and the growth this call's writes have reserved against it.
    pub(super) kv_quota: KvQuota,
    pub(super) kv_reserved: KvReservation,
    /// Per key this call touched: its size before the call, when known, and the growth
    /// reserved for it.
    pub(super) kv_keys: HashMap<String, KeyCharge>,
}

/// The quota accounting of one key within one call.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyCharge {
    /// The key's stored size (key + value bytes) before this call: `Some(None)` when it was
    /// absent, `None` when not known (it was never read).
    pub before: Option<Option<usize>>,
    /// Growth this call reserved for the key.
    pub charged: KvUsage,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory growth and remembers the peak, so a failure can say "memory limit"
/// rather than a bare trap, and dry runs can report usage.
pub struct MemoryCap {
    /// Cap on each memory (`max_memory_bytes`).
    pub max_bytes: usize,
    /// Cap on all of the instance's memories together (`max_component_memory_bytes`). Upload
    /// checks that memories times `max_bytes` fit; this holds even when the limits changed
    /// since.
    pub budget_bytes: usize,
    /// What all memories hold now.
    pub total_bytes: usize,
    pub peak_bytes: usize,
    pub exceeded: bool,
    pub over_budget: bool,
}

impl MemoryCap {
    pub fn new(max_bytes: usize, budget_bytes: usize) -> Self {
        Self { max_bytes, budget_bytes, total_bytes: 0, peak_bytes: 0, exceeded: false, over_budget: false }
    }
}

/// Tables hold function references; generous, but bounded like everything else.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            // An error (not `Ok(false)`) traps at once: Rust guests abort on allocation
            // failure anyway, and this way the message says why.
            wasmtime::bail!("memory limit exceeded: wanted {desired} bytes, cap is {}", self.max_bytes);
        }
        let total = self.total_bytes.saturating_sub(current).saturating_add(desired);
        if total > self.budget_bytes {
            self.over_budget = true;
            wasmtime::bail!(
                "component memory budget exceeded: {total} bytes in all memories, cap is {}",
                self.budget_bytes
            );
        }
        self.total_bytes = total;
        self.peak_bytes = self.peak_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_are_capped_each_and_together() {
        let mut cap = MemoryCap::new(10, 15);
        assert!(cap.memory_growing(0, 10, None).unwrap());
        assert!(cap.memory_growing(0, 11, None).is_err() && cap.exceeded, "each memory");
        assert!(cap.memory_growing(0, 5, None).unwrap(), "a second memory, 15 in all");
        assert!(cap.memory_growing(5, 6, None).is_err() && cap.over_budget, "16 in all");
        assert_eq!((cap.total_bytes, cap.peak_bytes), (15, 10));
    }
}
