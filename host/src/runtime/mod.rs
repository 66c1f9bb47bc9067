//! The plugin runtime: one wasmtime [`Engine`] (component model, pooling allocator, epoch
//! interruption), compilation once per plugin version, and sandboxed invocation.
//!
//! Compiling costs 100+ ms, so it happens at upload (and at most once more per engine
//! change, through the artifact cache on disk), never on the event path. Each call gets a
//! fresh instance from a pre-linked `PluginPre`: instantiation from the pool costs
//! microseconds and no state survives from one event to the next.

mod bindings;
mod host;
mod invoke;
pub mod recent;
mod shape;
mod state;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::{Capability, PluginLimits};
use crate::event::PluginId;
use crate::store::{KvQuota, PluginVersion, Store};

pub use invoke::{PluginFailure, Trace, Verdict};
pub use state::{LogLine, PluginConfig, PluginState};

/// Why a component could not be accepted or loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    #[error("the component does not implement the switchyard:plugin world: {0}")]
    WrongWorld(String),
    #[error("{0}")]
    NotGranted(String),
    /// Over one of the per-component bounds (memories, tables, core instances, memory budget).
    #[error("{0}")]
    OverLimit(String),
    /// Compiling took longer than `plugins.compile_timeout`.
    #[error("{0}")]
    CompileTimeout(String),
    /// No compile slot came free within `plugins.compile_queue_timeout`.
    #[error("{message}")]
    Busy { message: String, retry_after: std::time::Duration },
    #[error("plugin runtime: {0}")]
    Internal(String),
}

/// The world every plugin implements, as recorded with each version.
pub const WORLD: &str = "switchyard:plugin/plugin@0.1.0";

/// What validating an upload found out.
#[derive(Debug, Clone)]
pub struct Validated {
    pub sha256: String,
    /// Imported interfaces (`wasi:...`, `switchyard:plugin/kv@0.1.0`, ...).
    pub imports: Vec<String>,
    /// Time spent compiling and checking.
    pub compile: std::time::Duration,
}

/// The imports among `imports` that `grants` does not allow, as readable reasons. WASI
/// interfaces and our `types` (type definitions only) are not gated: they reach nothing
/// outside the call. Anything that is neither WASI nor ours cannot be linked at all.
pub fn ungranted(imports: &[String], grants: &[Capability]) -> Vec<String> {
    let mut refused = Vec::new();
    for import in imports {
        let interface = import.split('@').next().unwrap_or(import);
        if interface.starts_with("wasi:") || interface == "switchyard:plugin/types" {
            continue;
        }
        match Capability::ALL.iter().find(|c| c.interface() == interface) {
            Some(c) if grants.contains(c) => {}
            Some(c) => {
                refused.push(format!("imports {import}, but this tenant is not granted the {:?} capability", c.name()))
            }
            None => refused.push(format!("imports {import}, which the router does not provide")),
        }
    }
    refused
}

/// A plugin version ready to run.
pub struct LoadedPlugin {
    pub id: PluginId,
    pub name: String,
    pub version: i64,
    /// `name@version`, for logs and failure messages.
    pub label: Arc<str>,
    pre: bindings::PluginPre<PluginState>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("id", &self.id).field("label", &self.label).finish()
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    limits: Arc<PluginLimits>,
    /// Tenants (by name) whose configuration overrides some of `limits`.
    tenant_limits: HashMap<String, Arc<PluginLimits>>,
    /// kv quotas: everyone's, and the tenants (by name) whose policy overrides it.
    kv_quota: KvQuota,
    tenant_kv_quotas: HashMap<String, KvQuota>,
    artifacts: PathBuf,
    /// Engine compatibility, part of artifact file names: a wasmtime upgrade or config change
    /// misses the cache instead of loading an incompatible artifact.
    engine_hash: String,
    store: Store,
    /// Where successful calls' kv writes go (group-committed, read back at once through the
    /// store's overlay). Without one, each call commits its own writes.
    kv_writer: Option<crate::store::Writer>,
    /// Where calls of the pipeline and replays are counted (dry runs are not).
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The last hour of calls of the pipeline and replays, per minute (the console's chart).
    recent: recent::RecentCalls,
    loaded: Mutex<HashMap<PluginId, Arc<LoadedPlugin>>>,
    /// Compile slots (`plugins.compile_concurrency`): compiling takes every core it can get.
    compiles: Arc<Semaphore>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Component instances alive now in the engine's instance pool (at most
    /// `plugins.max_instances`): calls running, and dry runs.
    pub fn instances_in_use(&self) -> u64 {
        self.engine.pooling_allocator_metrics().map_or(0, |m| m.component_instances())
    }

    /// Plugin call latency over the last hour, per tenant and plugin.
    pub fn recent_calls(&self) -> &recent::RecentCalls {
        &self.recent
    }

    /// Builds the engine and linker and starts the epoch ticker. `artifacts` caches compiled
    /// components on disk.
    pub fn new(limits: &PluginLimits, artifacts: &Path, store: Store) -> Result<Self, RuntimeError> {
        let internal = |e: wasmtime::Error| RuntimeError::Internal(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::new();
        let slots = limits.max_instances;
        // The per-component bounds are checked at upload (`shape`) with messages that name
        // them; the pool enforces them again on every compile and artifact load, and is sized
        // so that every slot can hold a component at those bounds.
        pool.total_component_instances(slots)
            .max_memories_per_component(limits.max_memories_per_component)
            .max_tables_per_component(limits.max_tables_per_component)
            .max_core_instances_per_component(limits.max_core_instances_per_component)
            .total_core_instances(slots * limits.max_core_instances_per_component)
            .total_memories(slots * limits.max_memories_per_component)
            .total_tables(slots * limits.max_tables_per_component)
            .total_stacks(slots)
            .max_memory_size(limits.max_memory_bytes)
            // Keep a little memory warm per slot: instantiation reuses it without page faults.
            .linear_memory_keep_resident(64 * 1024);
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(internal)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(internal)?;
        bindings::Plugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s).map_err(internal)?;

        std::fs::create_dir_all(artifacts)
            .map_err(|e| RuntimeError::Internal(format!("creating {}: {e}", artifacts.display())))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_hash = format!("{:016x}", h.finish());

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), limits.epoch_tick, ticker_stop.clone());

        Ok(Self {
            engine,
            linker,
            limits: Arc::new(limits.clone()),
            tenant_limits: HashMap::new(),
            kv_quota: KvQuota { max_keys: u64::MAX, max_bytes: u64::MAX },
            tenant_kv_quotas: HashMap::new(),
            artifacts: artifacts.to_owned(),
            engine_hash,
            store,
            kv_writer: None,
            metrics: None,
            recent: recent::RecentCalls::default(),
            loaded: Mutex::new(HashMap::new()),
            compiles: Arc::new(Semaphore::new(limits.compile_concurrency)),
            ticker_stop,
        })
    }

    /// Sends successful calls' kv writes through the group-committing writer.
    pub fn with_writer(mut self, writer: crate::store::Writer) -> Self {
        self.kv_writer = Some(writer);
        self
    }

    /// Counts calls (duration, failures by reason) in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// kv quotas: `default` for every tenant but those in `tenants` (by name). Without this
    /// call, kv is unbounded.
    pub fn with_kv_quotas(mut self, default: KvQuota, tenants: impl IntoIterator<Item = (String, KvQuota)>) -> Self {
        self.kv_quota = default;
        self.tenant_kv_quotas = tenants.into_iter().collect();
        self
    }

    /// Per-tenant sandbox limits (see `Config::plugin_limits`), by tenant name. Each memory
    /// cap must be at most the engine's (`Config::validate` checks this).
    pub fn with_tenant_limits(mut self, limits: impl IntoIterator<Item = (String, PluginLimits)>) -> Self {
        self.tenant_limits = limits.into_iter().map(|(name, l)| (name, Arc::new(l))).collect();
        self
    }

    /// The limits a call of `tenant`'s plugins runs under.
    fn limits_for(&self, tenant: &str) -> Arc<PluginLimits> {
        self.tenant_limits.get(tenant).unwrap_or(&self.limits).clone()
    }

    /// The kv quota of `tenant`'s store.
    fn kv_quota_for(&self, tenant: &str) -> KvQuota {
        self.tenant_kv_quotas.get(tenant).copied().unwrap_or(self.kv_quota)
    }

    /// Checks an uploaded component and compiles it. First, from a parse of its sections
    /// (cheap, on a blocking thread): it must be a component, export `handle`, import nothing
    /// `tenant` is not granted, and stay within the per-component bounds. Then it is
    /// compiled under the compile slots and deadline (`compile_bounded`), and its export is
    /// type-checked against the plugin world. Caches the compiled artifact.
    pub async fn validate(
        self: &Arc<Self>,
        tenant: &str,
        wasm: Arc<Vec<u8>>,
        grants: &[Capability],
    ) -> Result<Validated, RuntimeError> {
        let started = std::time::Instant::now();
        let bytes = wasm.clone();
        let (shape, sha256) = tokio::task::spawn_blocking(move || {
            shape::inspect(&bytes).map(|shape| (shape, hex::encode(Sha256::digest(&*bytes))))
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))?
        .map_err(RuntimeError::InvalidComponent)?;
        if !shape.exports.iter().any(|e| e == "handle") {
            return Err(RuntimeError::WrongWorld(format!("it exports {:?}, and no `handle`", shape.exports)));
        }
        let refused = ungranted(&shape.imports, grants);
        if !refused.is_empty() {
            return Err(RuntimeError::NotGranted(refused.join("; ")));
        }
        self.bounds(tenant).check(&shape.cost).map_err(RuntimeError::OverLimit)?;

        // The same bytes uploaded before (by anyone): the cached artifact is that compile.
        let (component, cached) = match self.read_artifact(&sha256) {
            Some(c) => (c, true),
            None => (self.compile_bounded(wasm).await?, false),
        };
        let this = self.clone();
        let sha = sha256.clone();
        tokio::task::spawn_blocking(move || {
            this.prepare(&component)?;
            if !cached {
                this.write_artifact(&sha, &component);
            }
            Ok::<_, RuntimeError>(())
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))??;
        Ok(Validated { sha256, imports: shape.imports, compile: started.elapsed() })
    }

    /// The per-component bounds for `tenant`'s uploads (its memory cap may be lower).
    fn bounds(&self, tenant: &str) -> shape::Bounds {
        let l = &self.limits;
        shape::Bounds {
            max_memories_per_component: l.max_memories_per_component,
            max_tables_per_component: l.max_tables_per_component,
            max_core_instances_per_component: l.max_core_instances_per_component,
            max_component_memory_bytes: l.max_component_memory_bytes,
            max_memory_bytes: self.limits_for(tenant).max_memory_bytes,
        }
    }

    /// Compiles in a compile slot, waiting for one at most `compile_queue_timeout`, and gives
    /// up on the result after `compile_timeout`. Cranelift cannot be interrupted: a compile
    /// past its deadline runs on in the background and keeps its slot until it ends, so the
    /// concurrency bound holds, but the upload is answered at the deadline and the result
    /// is thrown away (not cached, so retrying costs the same).
    async fn compile_bounded(&self, wasm: Arc<Vec<u8>>) -> Result<Component, RuntimeError> {
        let l = &self.limits;
        let permit = match tokio::time::timeout(l.compile_queue_timeout, self.compiles.clone().acquire_owned()).await {
            Ok(permit) => permit.map_err(|e| RuntimeError::Internal(e.to_string()))?,
            Err(_) => {
                return Err(RuntimeError::Busy {
                    message: format!(
                        "{} plugin compile(s) already running (plugins.compile_concurrency) and no slot came free within {} (plugins.compile_queue_timeout); try again later",
                        l.compile_concurrency,
                        humantime::format_duration(l.compile_queue_timeout)
                    ),
                    retry_after: l.compile_queue_timeout,
                });
            }
        };
        let engine = self.engine.clone();
        let compile = tokio::task::spawn_blocking(move || {
            let _slot = permit;
            Component::new(&engine, &*wasm)
        });
        match tokio::time::timeout(l.compile_timeout, compile).await {
            Ok(joined) => joined
                .map_err(|e| RuntimeError::Internal(e.to_string()))?
                .map_err(|e| RuntimeError::InvalidComponent(format!("{e:#}"))),
            Err(_) => Err(RuntimeError::CompileTimeout(format!(
                "compiling the component took longer than {}, the limit (plugins.compile_timeout)",
                humantime::format_duration(l.compile_timeout)
            ))),
        }
    }

    /// Drops a deleted version from memory (its artifact may serve another identical upload).
    pub fn forget(&self, id: &PluginId) {
        self.loaded.lock().expect("not poisoned").remove(id);
    }

    /// Removes the compiled artifact of `sha`: no stored version has those bytes any more.
    /// Best effort: a leftover file is collected at the next start.
    pub fn remove_artifact(&self, sha: &str) {
        let path = self.artifact_path(sha);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed the artifact of a deleted plugin"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), "could not remove plugin artifact: {e}"),
        }
    }

    /// Removes every file of the artifact cache that nothing can use: artifacts of bytes no
    /// stored version has (`stored`: the sha256 of every stored version), artifacts built by
    /// another engine (a wasmtime upgrade or config change), and half-written temporary
    /// files. Returns how many were removed. Called at start-up, before anything compiles.
    pub fn collect_artifacts(&self, stored: &std::collections::HashSet<String>) -> usize {
        let entries = match std::fs::read_dir(&self.artifacts) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %self.artifacts.display(), "could not list plugin artifacts: {e}");
                return 0;
            }
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !artifact_is_garbage(&name, &self.engine_hash, stored) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(file = name, "could not remove plugin artifact: {e}"),
            }
        }
        removed
    }

    /// The ready-to-run form of a stored version: from memory, from the artifact cache, or
    /// compiled from its bytes as a last resort.
    pub async fn load(self: &Arc<Self>, version: &PluginVersion) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        if let Some(p) = self.loaded.lock().expect("not poisoned").get(&version.meta.id) {
            return Ok(p.clone());
        }
        let this = self.clone();
        let sha = version.meta.sha256.clone();
        let cached = tokio::task::spawn_blocking(move || this.read_artifact(&sha))
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let component = match cached {
            Some(c) => c,
            // No artifact: compiled again, in a compile slot like an upload (without its
            // deadline: this version was accepted once).
            None => {
                let slot =
                    self.compiles.clone().acquire_owned().await.map_err(|e| RuntimeError::Internal(e.to_string()))?;
                let this = self.clone();
                let version = version.clone();
                tokio::task::spawn_blocking(move || {
                    let _slot = slot;
                    let c = Component::new(&this.engine, &version.wasm)
                        .map_err(|e| RuntimeError::InvalidComponent(format!("{e:#}")))?;
                    this.write_artifact(&version.meta.sha256, &c);
                    Ok::<_, RuntimeError>(c)
                })
                .await
                .map_err(|e| RuntimeError::Internal(e.to_string()))??
            }
        };
        let meta = &version.meta;
        let plugin = Arc::new(LoadedPlugin {
            id: meta.id.clone(),
            name: meta.name.clone(),
            version: meta.version,
            label: format!("{}@{}", meta.name, meta.version).into(),
            pre: self.prepare(&component)?,
        });
        Ok(self.loaded.lock().expect("not poisoned").entry(plugin.id.clone()).or_insert(plugin).clone())
    }

    /// Links imports and type-checks the export, so a wrong component fails here, at
    /// upload, instead of on its first event.
    fn prepare(&self, component: &Component) -> Result<bindings::PluginPre<PluginState>, RuntimeError> {
        let pre = self.linker.instantiate_pre(component).map_err(|e| RuntimeError::WrongWorld(format!("{e:#}")))?;
        bindings::PluginPre::new(pre).map_err(|e| RuntimeError::WrongWorld(format!("{e:#}")))
    }

    fn artifact_path(&self, sha: &str) -> PathBuf {
        self.artifacts.join(format!("{sha}-{}.cwasm", self.engine_hash))
    }

    fn write_artifact(&self, sha: &str, component: &Component) {
        // Best effort: a missing artifact only costs a recompile later.
        let path = self.artifact_path(sha);
        let write = || -> std::io::Result<()> {
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), "could not cache compiled plugin: {e}");
        }
    }

    fn read_artifact(&self, sha: &str) -> Option<Component> {
        let path = self.artifact_path(sha);
        if !path.exists() {
            return None;
        }
        match deserialize_artifact(&self.engine, &path) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable plugin artifact: {e:#}");
                None
            }
        }
    }
}

/// Whether a file of the artifact cache (`<sha256>-<engine hash>.cwasm`, or a `.tmp` being
/// written) is of no use to an engine with `engine_hash` and versions with `stored` hashes.
/// Anything else in the directory is not ours and is left alone.
fn artifact_is_garbage(name: &str, engine_hash: &str, stored: &std::collections::HashSet<String>) -> bool {
    if let Some(stem) = name.strip_suffix(".cwasm") {
        return match stem.rsplit_once('-') {
            Some((sha, hash)) => hash != engine_hash || !stored.contains(sha),
            None => false,
        };
    }
    // `write_artifact` writes `<sha>-<hash>.tmp` then renames it: a leftover is a crash's.
    name.strip_suffix(".tmp").and_then(|stem| stem.rsplit_once('-')).is_some_and(|(sha, _)| sha.len() == 64)
}

/// Loads a compiled artifact.
#[allow(unsafe_code)]
fn deserialize_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts its input to be wasmtime-compiled code. The file is in
    // the router's own data directory, written only by `write_artifact` from a component this
    // process compiled, and named by the engine's compatibility hash; wasmtime additionally
    // checks the header for version and configuration mismatches.
    unsafe { Component::deserialize_file(engine, path) }
}

/// Advances the engine's epoch every `tick`, which is how running plugins get checked
/// against their deadline. Stops when the runtime is dropped.
fn spawn_epoch_ticker(engine: Engine, tick: std::time::Duration, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("switchyard-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch thread");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_of_unknown_bytes_other_engines_and_crashed_writes_are_garbage() {
        let sha = "a".repeat(64);
        let stored = std::collections::HashSet::from([sha.clone()]);
        let garbage = |name: &str| artifact_is_garbage(name, "e1", &stored);
        assert!(!garbage(&format!("{sha}-e1.cwasm")), "in use, this engine");
        assert!(garbage(&format!("{sha}-e0.cwasm")), "another engine");
        assert!(garbage(&format!("{}-e1.cwasm", "b".repeat(64))), "no version has these bytes");
        assert!(garbage(&format!("{sha}-e1.tmp")), "a write that never finished");
        assert!(!garbage("README") && !garbage("notes.tmp"), "not ours");
    }

    #[test]
    fn only_granted_capabilities_and_wasi_may_be_imported() {
        let imports: Vec<String> = [
            "wasi:io/streams@0.2.6",
            "switchyard:plugin/types@0.1.0",
            "switchyard:plugin/log@0.1.0",
            "switchyard:plugin/kv@0.1.0",
            "evil:net/socket",
        ]
        .map(String::from)
        .to_vec();
        let refused = ungranted(&imports, &[Capability::Log]);
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].contains("switchyard:plugin/kv@0.1.0") && refused[0].contains("\"kv\""), "{refused:?}");
        assert!(refused[1].contains("evil:net/socket") && refused[1].contains("does not provide"));
        assert!(ungranted(&imports[..4], &Capability::ALL).is_empty());
    }
}
