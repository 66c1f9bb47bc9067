//! One sandboxed call of a plugin on one event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Store as WasmStore, StoreContextMut, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::bindings::types as wit;
use super::state::{LogLine, MemoryCap, PluginConfig, PluginState};
use super::{LoadedPlugin, Runtime};
use crate::event::{Event, EventId, TenantId};

/// What a plugin decided, after the host checked its output.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Drop(String),
    /// One or more events to continue with (`pass` gives one, `emit` several).
    Continue(Vec<Event>),
}

/// Everything one call did, whether it succeeded or not: the pipeline needs only the
/// result, dry runs show the rest.
#[derive(Debug)]
pub struct Trace {
    pub result: Result<Verdict, PluginFailure>,
    pub logs: Vec<LogLine>,
    pub elapsed: Duration,
    pub peak_memory_bytes: usize,
}

/// Why a call failed. Always confined to this event and route.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginFailure {
    #[error("{plugin}: timed out after {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    #[error("{plugin}: memory limit exceeded ({limit} bytes)")]
    MemoryLimit { plugin: String, limit: usize },
    #[error("{plugin}: kv operation limit exceeded ({limit} calls per event)")]
    KvLimit { plugin: String, limit: usize },
    #[error(
        "{plugin}: component memory budget exceeded ({limit} bytes in all memories; plugins.max_component_memory_bytes)"
    )]
    ComponentMemoryLimit { plugin: String, limit: usize },
    #[error("{plugin}: WASI resource limit exceeded ({limit} resources per call; plugins.max_wasi_resources)")]
    ResourceLimit { plugin: String, limit: usize },
    #[error(
        "{plugin}: random bytes limit exceeded: asked for {asked}; the limit (plugins.max_random_bytes) is {limit}"
    )]
    RandomLimit { plugin: String, asked: String, limit: u64 },
    #[error("{plugin}: trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("{plugin}: returned error ({kind}): {message}")]
    Error { plugin: String, kind: &'static str, message: String },
    #[error("{plugin}: invalid output: {message}")]
    InvalidOutput { plugin: String, message: String },
    #[error("{plugin}: its kv writes could not be stored: {message}")]
    KvCommit { plugin: String, message: String },
    #[error("{plugin}: could not start: {message}")]
    Instantiate { plugin: String, message: String },
    /// A host call failed for a reason of the host's (storage), not the plugin's.
    #[error("{plugin}: a host call failed: {message}")]
    HostFault { plugin: String, message: String },
}

impl PluginFailure {
    /// The failure's kind, as `/metrics` labels it (one of `metrics::PLUGIN_FAILURES`).
    pub fn reason(&self) -> &'static str {
        match self {
            PluginFailure::Timeout { .. } => "timeout",
            PluginFailure::MemoryLimit { .. } => "memory_limit",
            PluginFailure::KvLimit { .. } => "kv_limit",
            PluginFailure::ComponentMemoryLimit { .. } => "component_memory_limit",
            PluginFailure::ResourceLimit { .. } => "resource_limit",
            PluginFailure::RandomLimit { .. } => "random_limit",
            PluginFailure::Trap { .. } => "trap",
            PluginFailure::Error { .. } => "error",
            PluginFailure::InvalidOutput { .. } => "invalid_output",
            PluginFailure::KvCommit { .. } => "kv_commit",
            PluginFailure::Instantiate { .. } => "instantiate",
            PluginFailure::HostFault { .. } => "host_fault",
        }
    }

    /// Whether running the event again later may succeed: the host was short of something
    /// (a free instance, a working database), or the plugin said so with a `retryable`
    /// error. The pipeline puts such events back instead of failing them for good.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PluginFailure::Instantiate { .. } | PluginFailure::KvCommit { .. } | PluginFailure::HostFault { .. }
        ) || matches!(self, PluginFailure::Error { kind: "retryable", .. })
    }
}

/// Time allowed beyond the epoch deadline for host calls in flight before the whole call is
/// abandoned (epochs only interrupt guest code, not a host function that is waiting).
const HOST_GRACE: Duration = Duration::from_millis(250);
/// Bytes of guest stderr kept: a panic message, not a flood.
const STDERR_BYTES: usize = 4096;
/// Allowance per output event, in the copy-out budget, for what `max_output_bytes` does not
/// count: id, tenant, source, time, subject and the attribute list itself.
const EVENT_OVERHEAD_BYTES: usize = 4096;

/// How many bytes the host may allocate to copy one value out of the sandbox (wasmtime's
/// "hostcall fuel": checked while lifting, before allocating). It bounds the result of
/// `handle` by what the output limits could ever accept, so a plugin that returns a million
/// events is refused after the list's length is read, not after a million events were
/// copied into host memory. The same budget applies to each host call's arguments.
fn copy_out_budget(limits: &crate::config::PluginLimits) -> usize {
    let per_event = std::mem::size_of::<wit::Event>() + EVENT_OVERHEAD_BYTES;
    let output = limits.max_fanout.saturating_mul(per_event).saturating_add(limits.max_output_bytes);
    output.max(limits.max_kv_value_bytes.saturating_add(64 * 1024))
}

impl Runtime {
    /// Runs `plugin` on `event` with the configured limits. Never panics and never fails the
    /// host: every problem comes back as a [`PluginFailure`]. The call's kv writes are
    /// stored together if it succeeds, and not at all if it fails.
    pub async fn invoke(
        &self,
        plugin: &LoadedPlugin,
        tenant_id: &TenantId,
        config: Arc<PluginConfig>,
        event: &Event,
    ) -> Result<Verdict, PluginFailure> {
        let started = Instant::now();
        let result = self.call(plugin, tenant_id, config, event, false).await.result;
        let took = started.elapsed();
        self.recent.record(tenant_id, &plugin.name, took, result.is_err(), crate::store::now_ms());
        if let Some(metrics) = &self.metrics {
            let tenant = metrics.tenant(tenant_id, &event.tenant);
            let failure = result.as_ref().err().map(PluginFailure::reason);
            metrics.plugin_call(&tenant, &plugin.name, took, failure);
        }
        result
    }

    /// Runs `plugin` like [`Runtime::invoke`], but its kv writes are thrown away (its own
    /// reads still see them), and the logs and usage come back even when the call fails.
    pub async fn dry_run(
        &self,
        plugin: &LoadedPlugin,
        tenant_id: &TenantId,
        config: Arc<PluginConfig>,
        event: &Event,
    ) -> Trace {
        self.call(plugin, tenant_id, config, event, true).await
    }

    async fn call(
        &self,
        plugin: &LoadedPlugin,
        tenant_id: &TenantId,
        config: Arc<PluginConfig>,
        event: &Event,
        dry_run: bool,
    ) -> Trace {
        let limits = self.limits_for(&event.tenant);
        let started = Instant::now();
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            // Refused before the host allocates the buffer; the guest traps.
            .max_random_size(self.limits.max_random_bytes)
            .build();
        // Every stream, pollable or other WASI handle the guest holds is an entry here; a
        // guest that creates them in a loop hits this instead of filling host memory.
        let mut table = ResourceTable::new();
        table.set_max_capacity(self.limits.max_wasi_resources);
        let state = PluginState {
            wasi,
            table,
            memory: MemoryCap::new(limits.max_memory_bytes, self.limits.max_component_memory_bytes),
            stderr,
            started,
            timeout: limits.timeout,
            tenant_id: tenant_id.clone(),
            label: plugin.label.clone(),
            config,
            store: self.store.clone(),
            limits: limits.clone(),
            logs: Vec::new(),
            log_bytes: 0,
            kv_ops: 0,
            kv_limit_hit: false,
            host_fault: None,
            kv_writes: HashMap::new(),
            kv_quota: self.kv_quota_for(&event.tenant),
            kv_reserved: self.store.kv_reservation(tenant_id),
            kv_keys: HashMap::new(),
        };
        let mut store = WasmStore::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_hostcall_fuel(copy_out_budget(&limits));
        // Check the clock every epoch tick; yield to tokio in between so a spinning plugin
        // shares the thread instead of owning it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx: StoreContextMut<'_, PluginState>| {
            let s = ctx.data();
            if s.started.elapsed() >= s.timeout {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
            }
        });

        let input = to_wit(event);
        let call = async {
            let instance = plugin.pre.instantiate_async(&mut store).await.map_err(CallError::Instantiate)?;
            instance.call_handle(&mut store, &input).await.map_err(CallError::Trap)
        };
        let label = plugin.label.to_string();
        let result = tokio::time::timeout(limits.timeout + HOST_GRACE, call).await;
        let state = store.data();
        let result = match result {
            Err(_) => Err(CallError::Abandoned),
            Ok(r) => r,
        };
        let outcome = match result {
            Ok(Ok(verdict)) => check_output(event, verdict, &limits)
                .map_err(|message| PluginFailure::InvalidOutput { plugin: label.clone(), message }),
            Ok(Err(err)) => {
                let (kind, message) = match err {
                    wit::PluginError::InvalidInput(m) => ("invalid-input", m),
                    wit::PluginError::Retryable(m) => ("retryable", m),
                    wit::PluginError::Fatal(m) => ("fatal", m),
                };
                Err(PluginFailure::Error { plugin: label.clone(), kind, message: truncate(message, 1024) })
            }
            Err(CallError::Instantiate(e)) => {
                Err(PluginFailure::Instantiate { plugin: label.clone(), message: format!("{e:#}") })
            }
            Err(CallError::Trap(e)) => Err(classify_trap(&label, &e, state, &limits, &self.limits)),
            Err(CallError::Abandoned) => Err(PluginFailure::Timeout { plugin: label.clone(), limit: limits.timeout }),
        };
        let (logs, peak_memory_bytes) = (state.logs.clone(), state.memory.peak_bytes);
        let writes = std::mem::take(&mut store.data_mut().kv_writes);
        // Dropped with the sandbox unless handed on: a failed call or a dry run gives its
        // quota reservation back.
        let reserved = std::mem::replace(&mut store.data_mut().kv_reserved, self.store.kv_reservation(tenant_id));
        drop(store);
        let outcome = match outcome {
            Ok(verdict) if !dry_run => {
                let stored = match &self.kv_writer {
                    Some(writer) => writer.kv(&self.store, tenant_id, writes, reserved).await,
                    None => self.store.kv_commit(tenant_id, &writes, reserved).await,
                };
                match stored {
                    Ok(()) => Ok(verdict),
                    Err(e) => Err(PluginFailure::KvCommit { plugin: label, message: e.to_string() }),
                }
            }
            other => other,
        };
        Trace { result: outcome, logs, elapsed: started.elapsed(), peak_memory_bytes }
    }
}

/// Where a call went wrong before the plugin could answer.
enum CallError {
    Instantiate(wasmtime::Error),
    Trap(wasmtime::Error),
    /// Still running past the deadline plus grace (stuck in a host call).
    Abandoned,
}

fn classify_trap(
    plugin: &str,
    e: &wasmtime::Error,
    state: &PluginState,
    limits: &crate::config::PluginLimits,
    global: &crate::config::PluginLimits,
) -> PluginFailure {
    let plugin = plugin.to_owned();
    if state.memory.exceeded {
        return PluginFailure::MemoryLimit { plugin, limit: state.memory.max_bytes };
    }
    if state.memory.over_budget {
        return PluginFailure::ComponentMemoryLimit { plugin, limit: state.memory.budget_bytes };
    }
    if state.kv_limit_hit {
        return PluginFailure::KvLimit { plugin, limit: limits.max_kv_ops };
    }
    if let Some(message) = &state.host_fault {
        return PluginFailure::HostFault { plugin, message: message.clone() };
    }
    if matches!(e.downcast_ref::<ResourceTableError>(), Some(ResourceTableError::Full)) {
        return PluginFailure::ResourceLimit { plugin, limit: global.max_wasi_resources };
    }
    // wasmtime-wasi refuses with a plain message: "requested len N exceeds limit M".
    let text = format!("{e:#}");
    if let Some(rest) = text.split("requested len ").nth(1)
        && rest.contains("exceeds limit")
    {
        let asked = rest.split_whitespace().next().unwrap_or("?");
        return PluginFailure::RandomLimit { plugin, asked: format!("{asked} bytes"), limit: global.max_random_bytes };
    }
    if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return PluginFailure::Timeout { plugin, limit: limits.timeout };
    }
    // wasmtime's error type for an exhausted copy-out budget is private; its message is not.
    if format!("{e:#}").contains("fuel allocated for hostcalls has been exhausted") {
        return PluginFailure::InvalidOutput {
            plugin,
            message: format!(
                "more than {} bytes to copy out of the sandbox; refused before copying (the budget follows max_fanout {} and max_output_bytes {})",
                copy_out_budget(limits),
                limits.max_fanout,
                limits.max_output_bytes
            ),
        };
    }
    let mut message = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{e}"),
    };
    // A Rust guest's panic message is on its stderr; it says far more than "unreachable".
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).trim().to_owned();
    if !stderr.is_empty() {
        message = format!("{message}; stderr: {}", truncate(stderr, 1024));
    }
    PluginFailure::Trap { plugin, message }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn to_wit(e: &Event) -> wit::Event {
    wit::Event {
        id: e.id.to_string(),
        tenant: e.tenant.clone(),
        source: e.source.clone(),
        event_type: e.event_type.clone(),
        time: e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        subject: e.subject.clone(),
        data: e.data.clone(),
        attributes: e.attributes.clone(),
    }
}

/// Enforces the output limits and turns guest events into router events. Tenant and source
/// always come from the input: a plugin cannot move events to another tenant.
fn check_output(input: &Event, verdict: wit::Verdict, limits: &crate::config::PluginLimits) -> Result<Verdict, String> {
    let (events, keep_id) = match verdict {
        wit::Verdict::Drop(reason) => return Ok(Verdict::Drop(truncate(reason, 1024))),
        wit::Verdict::Pass(ev) => (vec![ev], true),
        wit::Verdict::Emit(evs) if evs.is_empty() => return Ok(Verdict::Drop("plugin emitted no events".into())),
        wit::Verdict::Emit(evs) => (evs, false),
    };
    if events.len() > limits.max_fanout {
        return Err(format!("emitted {} events; the limit (max_fanout) is {}", events.len(), limits.max_fanout));
    }
    let size: usize = events
        .iter()
        .map(|e| e.data.len() + e.event_type.len() + e.attributes.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())
        .sum();
    if size > limits.max_output_bytes {
        return Err(format!("output is {size} bytes; the limit (max_output_bytes) is {}", limits.max_output_bytes));
    }
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        if e.event_type.trim().is_empty() {
            return Err(format!("event {i} has an empty type"));
        }
        crate::event::check_event_type(&e.event_type).map_err(|err| format!("event {i}: {err}"))?;
        if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&e.data) {
            return Err(format!("event {i} data is not valid JSON: {err}"));
        }
        let time = if e.time.is_empty() {
            input.time
        } else {
            chrono::DateTime::parse_from_rfc3339(&e.time)
                .map_err(|err| format!("event {i} time {:?} is not RFC 3339: {err}", e.time))?
                .to_utc()
        };
        out.push(Event {
            id: if keep_id { input.id.clone() } else { EventId::generate() },
            tenant: input.tenant.clone(),
            source: input.source.clone(),
            event_type: e.event_type,
            time,
            subject: e.subject,
            data: e.data,
            attributes: e.attributes,
        });
    }
    Ok(Verdict::Continue(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PluginLimits;

    fn input() -> Event {
        Event { id: EventId::parse("evt_in").unwrap(), ..Event::sample("acme") }
    }

    fn out(data: &str) -> wit::Event {
        wit::Event {
            id: String::new(),
            tenant: "someone-else".into(),
            source: "elsewhere".into(),
            event_type: "x.y".into(),
            time: String::new(),
            subject: None,
            data: data.into(),
            attributes: vec![],
        }
    }

    fn limits() -> PluginLimits {
        PluginLimits { max_fanout: 3, max_output_bytes: 64, ..PluginLimits::default() }
    }

    #[test]
    fn pass_keeps_the_id_and_pins_tenant_and_source() {
        let Verdict::Continue(evs) = check_output(&input(), wit::Verdict::Pass(out("{\"a\":1}")), &limits()).unwrap()
        else {
            panic!("expected outputs")
        };
        assert_eq!(evs[0].id.as_str(), "evt_in");
        assert_eq!((evs[0].tenant.as_str(), evs[0].source.as_str()), ("acme", "calls"));
        assert_eq!(evs[0].time, input().time, "an empty time inherits the input's");
    }

    #[test]
    fn emitted_events_get_fresh_ids() {
        let Verdict::Continue(evs) =
            check_output(&input(), wit::Verdict::Emit(vec![out("1"), out("2")]), &limits()).unwrap()
        else {
            panic!("expected outputs")
        };
        assert_ne!(evs[0].id, evs[1].id);
        assert_ne!(evs[0].id.as_str(), "evt_in");
    }

    #[test]
    fn bad_output_is_refused_with_the_reason() {
        let l = limits();
        let bad = |v| check_output(&input(), v, &l).unwrap_err();
        assert!(bad(wit::Verdict::Pass(out("{not json"))).contains("not valid JSON"));
        assert!(bad(wit::Verdict::Emit(vec![out("1"); 4])).contains("emitted 4 events; the limit (max_fanout) is 3"));
        assert!(
            bad(wit::Verdict::Pass(out(&format!("\"{}\"", "x".repeat(80)))))
                .contains("the limit (max_output_bytes) is 64")
        );
        let mut no_type = out("1");
        no_type.event_type = " ".into();
        assert!(bad(wit::Verdict::Pass(no_type)).contains("empty type"));
        let mut control = out("1");
        control.event_type = "call.\u{1b}ended".into();
        assert!(bad(wit::Verdict::Pass(control)).contains("only visible ASCII"), "a type that breaks the header");
        let mut bad_time = out("1");
        bad_time.time = "yesterday".into();
        assert!(bad(wit::Verdict::Pass(bad_time)).contains("RFC 3339"));
    }

    #[test]
    fn an_empty_emit_is_a_drop() {
        assert_eq!(
            check_output(&input(), wit::Verdict::Emit(vec![]), &limits()).unwrap(),
            Verdict::Drop("plugin emitted no events".into())
        );
    }
}
