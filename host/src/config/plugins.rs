//! `[plugins]`: the sandbox limits of every plugin call, the per-component bounds checked at
//! upload and the compile bounds, and the per-tenant overrides of the per-call limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Per-tenant replacements for the per-invocation limits of `[plugins]`. The memory cap can
/// only be lowered: the engine's pooling allocator reserves `plugins.max_memory_bytes` per slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimitsOverride {
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    pub max_memory_bytes: Option<usize>,
    pub max_output_bytes: Option<usize>,
    pub max_fanout: Option<usize>,
    pub max_kv_ops: Option<usize>,
}

impl PluginLimitsOverride {
    pub(super) fn apply(&self, base: &PluginLimits) -> PluginLimits {
        PluginLimits {
            timeout: self.timeout.unwrap_or(base.timeout),
            max_memory_bytes: self.max_memory_bytes.unwrap_or(base.max_memory_bytes),
            max_output_bytes: self.max_output_bytes.unwrap_or(base.max_output_bytes),
            max_fanout: self.max_fanout.unwrap_or(base.max_fanout),
            max_kv_ops: self.max_kv_ops.unwrap_or(base.max_kv_ops),
            ..base.clone()
        }
    }
}

/// Per-invocation sandbox limits for tenant plugins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Wall-clock budget for one `handle` call, enforced with epoch interruption.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Maximum linear memory one plugin instance may grow to.
    pub max_memory_bytes: usize,
    /// Maximum total size of the events a plugin returns (data + attributes).
    pub max_output_bytes: usize,
    /// Maximum number of events one call may emit.
    pub max_fanout: usize,
    /// Largest plugin component accepted on upload.
    pub max_upload_bytes: usize,
    /// Largest kv key and value a plugin may write.
    pub max_kv_value_bytes: usize,
    /// kv calls (get, set, delete together) one `handle` call may make; the next one traps.
    pub max_kv_ops: usize,
    /// Instances the pooling allocator keeps slots for (bounds concurrent invocations).
    pub max_instances: u32,
    /// Epoch tick: how often running plugins are checked against their deadline.
    #[serde(with = "humantime_serde")]
    pub epoch_tick: Duration,
    /// Linear memories one component may define, all its core instances together. The
    /// memory cap applies to each memory, so without this a component of hundreds of memories
    /// could take every pool slot or commit gigabytes. Checked at upload; also sizes the pool.
    pub max_memories_per_component: u32,
    /// Tables one component may define, all its core instances together.
    pub max_tables_per_component: u32,
    /// Core module instances one component may create.
    pub max_core_instances_per_component: u32,
    /// Memory one instance may reserve: its memories times the tenant's `max_memory_bytes`
    /// must fit (checked at upload), and all its memories together may not grow past it.
    pub max_component_memory_bytes: usize,
    /// Entries in one call's WASI resource table (streams, pollables, ...): a guest creating
    /// resources in a loop traps at this many instead of filling host memory.
    pub max_wasi_resources: usize,
    /// Largest `get-random-bytes` / `get-insecure-random-bytes` request; the host refuses
    /// (the guest traps) before allocating a larger one.
    pub max_random_bytes: u64,
    /// Uploads compiled at the same time (compiling uses every core it can get).
    pub compile_concurrency: usize,
    /// Longest an upload's compilation may take; past it the upload is refused (422).
    #[serde(with = "humantime_serde")]
    pub compile_timeout: Duration,
    /// Longest an upload waits for a compile slot; past it the answer is 503 with
    /// `Retry-After`.
    #[serde(with = "humantime_serde")]
    pub compile_queue_timeout: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            max_memory_bytes: 64 * 1024 * 1024,
            max_output_bytes: 1024 * 1024,
            max_fanout: 100,
            max_upload_bytes: 32 * 1024 * 1024,
            max_kv_value_bytes: 64 * 1024,
            max_kv_ops: 100,
            max_instances: 256,
            epoch_tick: Duration::from_millis(5),
            // Rust, JavaScript and Python components have one memory, a few tables and
            // fewer than ten core instances; these leave room and still bound a hostile one.
            max_memories_per_component: 2,
            max_tables_per_component: 8,
            max_core_instances_per_component: 16,
            max_component_memory_bytes: 128 * 1024 * 1024,
            max_wasi_resources: 1000,
            max_random_bytes: 1024 * 1024,
            compile_concurrency: 1,
            compile_timeout: Duration::from_secs(60),
            compile_queue_timeout: Duration::from_secs(30),
        }
    }
}
