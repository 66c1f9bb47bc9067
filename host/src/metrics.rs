//! Prometheus metrics, served at `GET /metrics` (behind the admin token, see `api::metrics`).
//!
//! Each router has its own recorder (`metrics-exporter-prometheus`), not the process-wide
//! one: tests run several routers in one process, and a library should not take a global.
//! Code records through handles this module registered once and keeps, so recording an event
//! costs an atomic add or a histogram push, with no key built and no registry looked up.
//! Handles are kept per tenant label in copy-on-write maps (`ArcSwap`): reads take no lock, and
//! a map is copied only when a tenant, source or plugin is seen for the first time.
//!
//! Labels are bounded: the first `metrics.max_tenant_labels` tenants (created, then seen) get
//! their own `tenant` label; the rest share `tenant="other"`, whose `source` and `plugin`
//! labels fold into `other` too. Sources and plugins are only labelled once they exist (an
//! ingest naming an unknown one is counted as `(unknown)`). No id or URL is ever a label.
//!
//! Gauges of stored state (backlogs, dead letters, destination health) are read from the
//! database when the page is scraped, so the hot path does nothing for them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::event::{EventId, TenantId};
use crate::store::{Store, StoreError};

static META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The label of tenants past `metrics.max_tenant_labels` (and of their sources and plugins).
pub const OTHER: &str = "other";
/// The `tenant` or `source` label of an ingest that named no tenant or source we know. Not a
/// valid name (`routes::valid_name`), so it cannot be mistaken for one.
pub const UNKNOWN: &str = "(unknown)";

/// What an ingest request came to: accepted, duplicate, or the refusal's error code.
pub const INGEST_RESULTS: [&str; 15] = [
    "accepted",
    "duplicate",
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "request_timeout",
    "payload_too_large",
    "unsupported_media_type",
    "unprocessable",
    "quota_exceeded",
    "backlog_full",
    "busy",
    "internal",
];

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer within the destination's timeout.
    Timeout,
    /// No answer at all: refused address, DNS, connect, TLS or a broken connection.
    ConnectionError,
}

const ATTEMPT_OUTCOMES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "timeout", "connection_error"];

impl AttemptOutcome {
    fn index(self) -> usize {
        match self {
            AttemptOutcome::Status(s) => (usize::from(s / 100)).clamp(1, 5) - 1,
            AttemptOutcome::Timeout => 5,
            AttemptOutcome::ConnectionError => 6,
        }
    }
}

/// Why a plugin call failed (`runtime::PluginFailure::reason`).
pub const PLUGIN_FAILURES: [&str; 12] = [
    "timeout",
    "memory_limit",
    "kv_limit",
    "component_memory_limit",
    "resource_limit",
    "random_limit",
    "trap",
    "error",
    "invalid_output",
    "kv_commit",
    "instantiate",
    "host_fault",
];

/// Seconds: plugin calls, commits, ingest to first attempt.
const SECONDS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Writes per group commit (`WRITER_BATCH` is 512).
const BATCH_SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The names of every metric, for the README and the tests.
pub mod names {
    pub const INGESTED: &str = "switchyard_ingest_requests_total";
    pub const PLUGIN_CALLS: &str = "switchyard_plugin_call_duration_seconds";
    pub const PLUGIN_FAILURES: &str = "switchyard_plugin_failures_total";
    pub const ATTEMPTS: &str = "switchyard_delivery_attempts_total";
    pub const FIRST_ATTEMPT: &str = "switchyard_ingest_to_first_attempt_seconds";
    pub const EVENTS_PENDING: &str = "switchyard_events_pending";
    pub const DELIVERIES: &str = "switchyard_deliveries";
    pub const DESTINATIONS: &str = "switchyard_destinations";
    pub const SLOTS_IN_USE: &str = "switchyard_slots_in_use";
    pub const SLOTS: &str = "switchyard_slots";
    pub const BATCH: &str = "switchyard_writer_batch_writes";
    pub const COMMIT: &str = "switchyard_writer_commit_duration_seconds";
}

/// One router's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    max_tenants: usize,
    tenants: ArcSwap<HashMap<TenantId, Arc<TenantMetrics>>>,
    other: Arc<TenantMetrics>,
    unknown: Arc<TenantMetrics>,
    pipeline_slots: Gauge,
    delivery_slots: Gauge,
    /// Set at each scrape from the engine's pooling allocator (see `render`).
    wasm_slots: Gauge,
    writer: WriterMetrics,
}

/// The configured size of each worker pool, shown as `switchyard_slots{pool}`.
#[derive(Debug, Clone, Copy)]
pub struct PoolSizes {
    /// `pipeline.concurrency`
    pub pipeline: usize,
    /// `delivery.concurrency`
    pub delivery: usize,
    /// `plugins.max_instances`: the wasmtime instance pool's component slots.
    pub wasm: usize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("max_tenants", &self.max_tenants).finish_non_exhaustive()
    }
}

/// The handles of one `tenant` label.
pub struct TenantMetrics {
    label: SharedString,
    /// `other` folds its sources and plugins too.
    fold: bool,
    sources: ArcSwap<HashMap<Box<str>, Arc<IngestCounters>>>,
    plugins: ArcSwap<HashMap<Box<str>, Arc<PluginMetrics>>>,
    attempts: [OnceLock<Counter>; ATTEMPT_OUTCOMES.len()],
    first_attempt: OnceLock<Histogram>,
}

struct IngestCounters {
    source: SharedString,
    results: [OnceLock<Counter>; INGEST_RESULTS.len()],
}

struct PluginMetrics {
    plugin: SharedString,
    duration: Histogram,
    failures: [OnceLock<Counter>; PLUGIN_FAILURES.len()],
}

/// The writer's handles: one record per group commit.
#[derive(Clone)]
pub struct WriterMetrics {
    batch: Histogram,
    commit: Histogram,
}

impl WriterMetrics {
    /// Handles recording nowhere (tests and benches that run a writer alone).
    pub fn noop() -> Self {
        Self { batch: Histogram::noop(), commit: Histogram::noop() }
    }

    pub fn commit(&self, writes: usize, took: Duration) {
        self.batch.record(writes as f64);
        self.commit.record(took.as_secs_f64());
    }
}

/// A slot of a worker pool, counted in `switchyard_slots_in_use` while held.
pub struct SlotGuard(Gauge);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl Metrics {
    pub fn new(max_tenant_labels: usize, pools: PoolSizes) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SECONDS)
            .expect("non-empty buckets")
            .set_buckets_for_metric(Matcher::Full(names::BATCH.into()), BATCH_SIZES)
            .expect("non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, text: &'static str| {
            recorder.describe_counter(KeyName::from_const_str(name), unit, SharedString::const_str(text));
        };
        describe(
            names::INGESTED,
            None,
            "Ingest requests by tenant, source and result (accepted, duplicate, or the refusal's error code).",
        );
        describe(
            names::PLUGIN_CALLS,
            Some(Unit::Seconds),
            "Plugin calls of the pipeline and replays by tenant and plugin: their duration.",
        );
        describe(names::PLUGIN_FAILURES, None, "Failed plugin calls by tenant, plugin and reason.");
        describe(
            names::ATTEMPTS,
            None,
            "Delivery attempts by tenant and outcome (status class, timeout, connection_error).",
        );
        describe(
            names::FIRST_ATTEMPT,
            Some(Unit::Seconds),
            "Time from an event's ingest to the first attempt of each of its deliveries.",
        );
        describe(names::EVENTS_PENDING, None, "Events stored and not yet processed, by tenant.");
        describe(
            names::DELIVERIES,
            None,
            "Deliveries pending (not yet delivered) or dead (retries exhausted, not replayed), by tenant and status.",
        );
        describe(names::DESTINATIONS, None, "Destinations by tenant and health (healthy, failing, disabled).");
        describe(names::SLOTS_IN_USE, None, "Slots busy, by pool (pipeline, delivery workers; wasm instances).");
        describe(
            names::SLOTS,
            None,
            "Slots configured, by pool (pipeline.concurrency, delivery.concurrency, plugins.max_instances).",
        );
        describe(names::BATCH, None, "Writes per group commit of the writer.");
        describe(names::COMMIT, Some(Unit::Seconds), "Duration of the writer's group commits.");

        let gauge = |name: &'static str, pool: &'static str| {
            recorder.register_gauge(&Key::from_parts(name, vec![Label::from_static_parts("pool", pool)]), &META)
        };
        gauge(names::SLOTS, "pipeline").set(pools.pipeline as f64);
        gauge(names::SLOTS, "delivery").set(pools.delivery as f64);
        gauge(names::SLOTS, "wasm").set(pools.wasm as f64);
        let [pipeline_slots, delivery_slots, wasm_slots] =
            ["pipeline", "delivery", "wasm"].map(|pool| gauge(names::SLOTS_IN_USE, pool));
        pipeline_slots.set(0.0);
        delivery_slots.set(0.0);
        wasm_slots.set(0.0);
        let writer = WriterMetrics {
            batch: recorder.register_histogram(&Key::from_static_name(names::BATCH), &META),
            commit: recorder.register_histogram(&Key::from_static_name(names::COMMIT), &META),
        };
        Self {
            recorder,
            handle,
            max_tenants: max_tenant_labels,
            tenants: ArcSwap::default(),
            other: Arc::new(TenantMetrics::new(SharedString::const_str(OTHER), true)),
            unknown: Arc::new(TenantMetrics::new(SharedString::const_str(UNKNOWN), true)),
            pipeline_slots,
            delivery_slots,
            wasm_slots,
            writer,
        }
    }

    pub fn writer(&self) -> WriterMetrics {
        self.writer.clone()
    }

    pub fn pipeline_slot(&self) -> SlotGuard {
        self.pipeline_slots.increment(1.0);
        SlotGuard(self.pipeline_slots.clone())
    }

    pub fn delivery_slot(&self) -> SlotGuard {
        self.delivery_slots.increment(1.0);
        SlotGuard(self.delivery_slots.clone())
    }

    /// The handles of tenant `id` named `name`: its own while fewer than `max_tenant_labels`
    /// tenants have one, `other` after that.
    pub fn tenant(&self, id: &TenantId, name: &str) -> Arc<TenantMetrics> {
        if let Some(t) = self.tenants.load().get(id) {
            return t.clone();
        }
        let mut found = None;
        self.tenants.rcu(|map| {
            if map.contains_key(id) || map.len() >= self.max_tenants {
                found = map.get(id).cloned();
                return map.clone();
            }
            let entry = Arc::new(TenantMetrics::new(SharedString::from_shared(Arc::<str>::from(name)), false));
            found = Some(entry.clone());
            let mut map = HashMap::clone(map);
            map.insert(id.clone(), entry);
            Arc::new(map)
        });
        found.unwrap_or_else(|| self.other.clone())
    }

    /// The handles of tenant `id`, known from [`Metrics::tenant`] (start-up registers every
    /// stored tenant), or `other`.
    pub fn tenant_by_id(&self, id: &TenantId) -> Arc<TenantMetrics> {
        self.tenants.load().get(id).cloned().unwrap_or_else(|| self.other.clone())
    }

    /// Handles for an ingest that named no tenant we know.
    pub fn unknown_tenant(&self) -> Arc<TenantMetrics> {
        self.unknown.clone()
    }

    /// Counts one ingest request. `source` is `None` when the tenant has no such source.
    pub fn ingested(&self, tenant: &TenantMetrics, source: Option<&str>, result: &str) {
        let Some(i) = INGEST_RESULTS.iter().position(|r| *r == result) else {
            debug_assert!(false, "ingest result {result:?} is not in INGEST_RESULTS");
            return;
        };
        let source = match source {
            Some(_) if tenant.fold => OTHER,
            Some(s) => s,
            None => UNKNOWN,
        };
        let counters = cached(&tenant.sources, source, || IngestCounters {
            source: SharedString::from_shared(Arc::<str>::from(source)),
            results: Default::default(),
        });
        counters.results[i]
            .get_or_init(|| {
                let labels = vec![
                    Label::new("tenant", tenant.label.clone()),
                    Label::new("source", counters.source.clone()),
                    Label::from_static_parts("result", INGEST_RESULTS[i]),
                ];
                self.recorder.register_counter(&Key::from_parts(names::INGESTED, labels), &META)
            })
            .increment(1);
    }

    /// Records one plugin call of the pipeline (or a replay): its duration and, when it failed,
    /// why (`reason` is one of [`PLUGIN_FAILURES`]).
    pub fn plugin_call(&self, tenant: &TenantMetrics, plugin: &str, took: Duration, failure: Option<&str>) {
        let plugin = if tenant.fold { OTHER } else { plugin };
        let handles = cached(&tenant.plugins, plugin, || {
            let plugin = SharedString::from_shared(Arc::<str>::from(plugin));
            let labels = vec![Label::new("tenant", tenant.label.clone()), Label::new("plugin", plugin.clone())];
            let duration = self.recorder.register_histogram(&Key::from_parts(names::PLUGIN_CALLS, labels), &META);
            PluginMetrics { plugin, duration, failures: Default::default() }
        });
        handles.duration.record(took.as_secs_f64());
        let Some(reason) = failure else { return };
        let Some(i) = PLUGIN_FAILURES.iter().position(|r| *r == reason) else {
            debug_assert!(false, "plugin failure {reason:?} is not in PLUGIN_FAILURES");
            return;
        };
        handles.failures[i]
            .get_or_init(|| {
                let labels = vec![
                    Label::new("tenant", tenant.label.clone()),
                    Label::new("plugin", handles.plugin.clone()),
                    Label::from_static_parts("reason", PLUGIN_FAILURES[i]),
                ];
                self.recorder.register_counter(&Key::from_parts(names::PLUGIN_FAILURES, labels), &META)
            })
            .increment(1);
    }

    /// Counts one delivery attempt; the first attempt of a delivery also records how long
    /// after its event's ingest it started (from the time in the event's id).
    pub fn attempt(&self, tenant: &TenantMetrics, outcome: AttemptOutcome, first_of: Option<&EventId>) {
        let i = outcome.index();
        tenant.attempts[i]
            .get_or_init(|| {
                let labels = vec![
                    Label::new("tenant", tenant.label.clone()),
                    Label::from_static_parts("outcome", ATTEMPT_OUTCOMES[i]),
                ];
                self.recorder.register_counter(&Key::from_parts(names::ATTEMPTS, labels), &META)
            })
            .increment(1);
        if let Some(received) = first_of.and_then(EventId::created_ms) {
            let waited = (crate::store::now_ms() - received).max(0) as f64 / 1000.0;
            tenant
                .first_attempt
                .get_or_init(|| {
                    let key = Key::from_parts(names::FIRST_ATTEMPT, vec![Label::new("tenant", tenant.label.clone())]);
                    self.recorder.register_histogram(&key, &META)
                })
                .record(waited);
        }
    }

    /// The page: stored state read now, then everything rendered in the text format.
    /// `wasm_in_use` is the plugin runtime's live component instances
    /// (`Runtime::instances_in_use`), read when scraped rather than counted per call.
    pub async fn render(&self, store: &Store, wasm_in_use: u64) -> Result<String, StoreError> {
        self.wasm_slots.set(wasm_in_use as f64);
        let pending = store.pending_per_tenant().await?;
        let deliveries = store.delivery_counts().await?;
        let destinations = store.destination_health().await?;

        // Every labelled tenant is set, to 0 when it has none, so a gauge never stays stale.
        let mut values: HashMap<(&'static str, SharedString, &'static str, &'static str), f64> = HashMap::new();
        let tenants = self.tenants.load();
        for t in tenants.values().map(|t| &t.label).chain([&self.other.label]) {
            values.insert((names::EVENTS_PENDING, t.clone(), "", ""), 0.0);
            for status in ["pending", "dead"] {
                values.insert((names::DELIVERIES, t.clone(), "status", status), 0.0);
            }
            for health in ["healthy", "failing", "disabled"] {
                values.insert((names::DESTINATIONS, t.clone(), "health", health), 0.0);
            }
        }
        let label = |id: &TenantId| tenants.get(id).map_or_else(|| self.other.label.clone(), |t| t.label.clone());
        for (id, n) in pending {
            *values.entry((names::EVENTS_PENDING, label(&id), "", "")).or_default() += n as f64;
        }
        for (id, status, n) in deliveries {
            *values.entry((names::DELIVERIES, label(&id), "status", status)).or_default() += n as f64;
        }
        for (id, health, n) in destinations {
            *values.entry((names::DESTINATIONS, label(&id), "health", health)).or_default() += n as f64;
        }
        for ((name, tenant, key, value), n) in values {
            let mut labels = vec![Label::new("tenant", tenant)];
            if !key.is_empty() {
                labels.push(Label::from_static_parts(key, value));
            }
            self.recorder.register_gauge(&Key::from_parts(name, labels), &META).set(n);
        }
        Ok(self.handle.render())
    }
}

impl TenantMetrics {
    fn new(label: SharedString, fold: bool) -> Self {
        Self {
            label,
            fold,
            sources: ArcSwap::default(),
            plugins: ArcSwap::default(),
            attempts: Default::default(),
            first_attempt: OnceLock::new(),
        }
    }
}

/// The entry for `name` in a copy-on-write map, made by `make` the first time.
fn cached<T>(map: &ArcSwap<HashMap<Box<str>, Arc<T>>>, name: &str, make: impl FnOnce() -> T) -> Arc<T> {
    if let Some(v) = map.load().get(name) {
        return v.clone();
    }
    let made = Arc::new(make());
    let mut found = None;
    map.rcu(|m| {
        if let Some(v) = m.get(name) {
            found = Some(v.clone());
            return m.clone();
        }
        found = Some(made.clone());
        let mut m = HashMap::clone(m);
        m.insert(name.into(), made.clone());
        Arc::new(m)
    });
    found.expect("set by the closure")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_past_the_cap_share_other() {
        let m = Metrics::new(2, PoolSizes { pipeline: 1, delivery: 1, wasm: 1 });
        let ids: Vec<TenantId> = (0..4).map(|_| TenantId::generate()).collect();
        let labels: Vec<String> =
            ids.iter().enumerate().map(|(i, id)| m.tenant(id, &format!("t{i}")).label.to_string()).collect();
        assert_eq!(labels, ["t0", "t1", "other", "other"]);
        // The first two keep theirs, by id too; the others stay folded.
        assert_eq!(&*m.tenant_by_id(&ids[1]).label, "t1");
        assert_eq!(&*m.tenant(&ids[3], "t3").label, "other");
        assert_eq!(&*m.tenant_by_id(&TenantId::generate()).label, "other");
    }

    #[test]
    fn attempt_outcomes_by_class() {
        let class = |o: AttemptOutcome| ATTEMPT_OUTCOMES[o.index()];
        assert_eq!(class(AttemptOutcome::Status(200)), "2xx");
        assert_eq!(class(AttemptOutcome::Status(307)), "3xx");
        assert_eq!(class(AttemptOutcome::Status(410)), "4xx");
        assert_eq!(class(AttemptOutcome::Status(599)), "5xx");
        assert_eq!(class(AttemptOutcome::Status(99)), "1xx");
        assert_eq!(class(AttemptOutcome::Timeout), "timeout");
        assert_eq!(class(AttemptOutcome::ConnectionError), "connection_error");
    }
}
