//! Router configuration: built-in defaults, then an optional TOML file, then `SWITCHYARD_*`
//! environment variables (nested keys joined with `__`, e.g. `SWITCHYARD_DELIVERY__TIMEOUT=5s`).
//! Everything is validated once at start-up so a bad value fails loudly before we listen.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod cluster;
mod metrics;
mod plugins;
mod tenants;
mod traces;

pub use cluster::ClusterConfig;
pub use metrics::MetricsConfig;
pub use plugins::{PluginLimits, PluginLimitsOverride};
pub use tenants::{Capability, RetentionOverride, TenantOverride, TenantPolicy, TenantRetention};
pub use traces::TracingConfig;

/// Top-level configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Directory holding the SQLite database (unless `database_url` names another), the
    /// secrets key, compiled plugin artifacts and the admin token.
    pub data_dir: PathBuf,
    /// Where events, routes and everything else durable live: `postgres://user@host/db` for
    /// PostgreSQL, or `sqlite://<path>` for an SQLite file. Default: the SQLite file
    /// `switchyard.db` in `data_dir`.
    pub database_url: Option<String>,
    /// Bearer token for the admin API. When unset, one is generated on first start, saved to
    /// `<data_dir>/admin-token` and printed once.
    pub admin_token: Option<String>,
    /// A directory of route documents, `<tenant>.json` or `<tenant>.toml`, kept live: watched
    /// for changes and re-read on SIGHUP. Optional; the API works either way.
    pub routes_dir: Option<PathBuf>,
    /// How the log is written: `text` (for people) or `json` (one object a line, for log
    /// stores; the event id and tenant are fields of the `span` object).
    pub log_format: LogFormat,
    pub server: ServerConfig,
    pub secrets: SecretsConfig,
    pub ingest: IngestConfig,
    pub plugins: PluginLimits,
    pub pipeline: PipelineConfig,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
    pub metrics: MetricsConfig,
    /// OpenTelemetry traces over OTLP; off unless `tracing.otlp_endpoint` is set.
    pub tracing: TracingConfig,
    /// Several nodes on one PostgreSQL database: heartbeats, take-over, reconcile.
    pub cluster: ClusterConfig,
    /// Quotas and grants of every tenant, unless `tenants.<name>` overrides them.
    pub tenant_defaults: TenantPolicy,
    /// Per-tenant overrides by tenant name; fields left out keep `tenant_defaults`.
    pub tenants: BTreeMap<String, TenantOverride>,
}

/// How the router writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The HTTP server's connection limits: what a client that connects and then dawdles, or
/// opens connections by the thousand, can hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Time for a request's headers to arrive, counted from when the connection waits for
    /// them: so it is also how long an idle keep-alive connection is kept.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time for a request's whole body to arrive, counted from its headers. Past it the
    /// request is refused (408) and nothing is stored.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Connections open at once. Past it, a new connection gets a 503 naming this limit and
    /// is closed.
    pub max_connections: usize,
    /// How long the router keeps serving after shutdown begins, with `/readyz` answering 503,
    /// before it stops accepting connections: long enough for a load balancer's readiness
    /// checks to take it out of rotation. `0s` (the default) stops accepting at once.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
}

/// The key that seals source and destination secrets at rest (see `store::secrets`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// 32 random bytes, base64 (`openssl rand -base64 32`); best given through the
    /// environment (`SWITCHYARD_SECRETS__KEY`). When unset, a key is generated once and kept
    /// in `<data_dir>/secrets-key`.
    pub key: Option<String>,
    /// Keys that sealed secrets before a rotation: they still open, and start-up re-seals
    /// every secret under `key`, after which they can be removed.
    pub previous_keys: Vec<String>,
}

impl std::fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("previous_keys", &self.previous_keys.len())
            .finish()
    }
}

/// Inbound webhook handling.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest accepted inbound body; larger requests get 413 and store nothing.
    pub max_body_bytes: usize,
    /// How far a signed webhook's timestamp may be from now (both directions).
    #[serde(with = "humantime_serde")]
    pub signature_tolerance: Duration,
    /// Signatures one signature header may carry (several during a secret rotation). A header
    /// with more is refused (401) before any MAC is computed.
    pub max_signature_entries: usize,
    /// Pending (stored, not yet processed) events one tenant may have. Past it, ingest
    /// answers 503 with `Retry-After` and stores nothing, so a sustained overload pushes back
    /// on the sender (webhook senders retry) instead of growing the database without bound.
    pub max_backlog_per_tenant: u64,
}

/// Event processing (route matching and plugin chains).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Events processed at the same time.
    pub concurrency: usize,
    /// Events of one tenant processed at the same time: a tenant whose plugins are slow (or
    /// hostile) cannot occupy every worker. At most `concurrency`.
    pub max_in_flight_per_tenant: usize,
    /// Share of one worker's time a tenant may spend in plugin calls that fail (timeouts,
    /// traps, limit hits): 0.1 is 100 ms per second. A tenant that has spent its budget runs
    /// one event at a time while it earns it back, and none while it is in debt. Well-behaved
    /// tenants never touch it; it is what keeps a hostile plugin's CPU and I/O away from them.
    pub failure_time_share: f64,
    /// Failing plugin time a tenant may spend at once before `failure_time_share` applies.
    #[serde(with = "humantime_serde")]
    pub failure_time_burst: Duration,
    /// Events claimed from the store per poll (the poll reads what memory did not hold).
    pub batch_size: u32,
    /// Events of one tenant held in memory, queued or being processed. Past it, new events
    /// are only stored, and the poll reads them once there is room.
    pub queue_per_tenant: usize,
    /// Bytes of event data held in memory, all tenants together.
    pub queue_bytes: usize,
    /// Fallback poll interval when no wake-up arrives.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Delays before an event whose run hit a transient fault is run again: no free plugin
    /// instance, a storage error in a host call or a kv commit, or a plugin's `retryable`
    /// error. When the list is used up, the failure is recorded like any other.
    #[serde(with = "duration_list")]
    pub retry_schedule: Vec<Duration>,
}

/// Outbound delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Per-attempt timeout (connect + response).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Delay before each attempt: the first entry is the delay of the first try. When the
    /// list is exhausted the delivery is dead-lettered.
    #[serde(with = "duration_list")]
    pub retry_schedule: Vec<Duration>,
    /// Random spread applied to each delay: 0.2 means +-20%.
    pub jitter: f64,
    /// Deliveries in flight at the same time.
    pub concurrency: usize,
    /// Fallback poll interval for due retries.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// New deliveries held in memory, queued or being attempted. Past it they are only
    /// stored, and the poll reads them once there is room.
    pub queue_jobs: usize,
    /// Bytes of delivery bodies held in memory.
    pub queue_bytes: usize,
    /// Deliveries of one tenant held in memory, at most `queue_jobs`: a tenant whose
    /// receivers are slow keeps its backlog in the database, not in everyone's memory.
    pub queue_jobs_per_tenant: usize,
    /// Attempts of one tenant in flight at once, at most `concurrency`: a tenant whose
    /// receivers answer after minutes cannot hold every worker. Tenants take turns for the
    /// rest.
    pub max_in_flight_per_tenant: usize,
    /// Allow destinations on every loopback, private, link-local or unspecified address.
    /// Off by default: a tenant must not be able to make the router call its own network.
    /// Prefer `allowed_cidrs`, which opens only the ranges named.
    pub allow_private_destinations: bool,
    /// Internal address ranges destinations may use anyway, e.g. `["10.20.0.0/16"]`.
    pub allowed_cidrs: Vec<ipnet::IpNet>,
    /// How much of a failed response body is kept for the tenant to read.
    pub max_response_snippet_bytes: usize,
    /// Attempts in flight to one destination at the same time (a destination may ask for
    /// fewer with `max_in_flight`), so one slow endpoint cannot occupy every worker.
    pub max_in_flight_per_destination: u32,
    /// Consecutive failures that open a destination's circuit breaker...
    pub breaker_threshold: u32,
    /// ...and how long it then stays open: due deliveries wait instead of hammering it.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// A destination failing without a single success for this long is disabled; its
    /// pending deliveries are dead-lettered with the reason, until the tenant enables it.
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// After a destination's secret changes, the old one is still used to sign (a second
    /// `v1,` signature) for this long, so receivers can switch over without rejecting.
    #[serde(with = "humantime_serde")]
    pub secret_rotation_grace: Duration,
}

/// How long finished work is kept, and how the background pruner removes what is older.
/// Only finished work is ever removed: a pending event, an event with a pending delivery,
/// and the live route version are kept however old they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// How long a finished event is kept, with its raw body, route results, deliveries and
    /// attempts, counted from when it finished: processed, and every delivery delivered or
    /// dead (a dead letter stays replayable for this long after it died). After that its
    /// upstream id is no longer deduplicated. Per tenant: `[tenants.<name>.retention]`.
    #[serde(with = "humantime_serde")]
    pub events: Duration,
    /// Route versions kept per tenant, the live one included; older ones are removed.
    pub route_versions: u32,
    /// Rows removed per transaction, so a large backlog never holds the write lock long.
    pub batch_rows: u32,
    /// Pause between two batches: the hot path's writer gets the lock in between.
    #[serde(with = "humantime_serde")]
    pub pause: Duration,
    /// Time between two pruning passes (the first starts with the router).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events: Duration::from_secs(30 * 24 * 3600),
            route_versions: 100,
            batch_rows: 500,
            pause: Duration::from_millis(100),
            interval: Duration::from_secs(600),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("switchyard-data"),
            database_url: None,
            admin_token: None,
            routes_dir: None,
            log_format: LogFormat::Text,
            server: ServerConfig::default(),
            secrets: SecretsConfig::default(),
            ingest: IngestConfig::default(),
            plugins: PluginLimits::default(),
            pipeline: PipelineConfig::default(),
            delivery: DeliveryConfig::default(),
            retention: RetentionConfig::default(),
            metrics: MetricsConfig::default(),
            tracing: TracingConfig::default(),
            cluster: ClusterConfig::default(),
            tenant_defaults: TenantPolicy::default(),
            tenants: BTreeMap::new(),
        }
    }
}

impl Config {
    /// The database the store opens: `database_url`, or the SQLite file in `data_dir`.
    pub fn database_url(&self) -> Result<crate::store::DatabaseUrl, ConfigError> {
        match &self.database_url {
            None => Ok(crate::store::DatabaseUrl::sqlite_in(&self.data_dir)),
            Some(url) => crate::store::DatabaseUrl::parse(url)
                .map_err(|e| ConfigError::Invalid(format!("database_url {:?}: {e}", crate::store::redact_url(url)))),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_delay: Duration::ZERO,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            signature_tolerance: Duration::from_secs(5 * 60),
            max_signature_entries: 16,
            max_backlog_per_tenant: 100_000,
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            max_in_flight_per_tenant: 4,
            failure_time_share: 0.1,
            failure_time_burst: Duration::from_secs(1),
            batch_size: 64,
            queue_per_tenant: 1024,
            queue_bytes: 64 * 1024 * 1024,
            poll_interval: Duration::from_secs(1),
            retry_schedule: [1, 10, 60, 300, 900].map(Duration::from_secs).to_vec(),
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let m = |mins: u64| Duration::from_secs(mins * 60);
        Self {
            timeout: Duration::from_secs(15),
            retry_schedule: vec![Duration::ZERO, Duration::from_secs(5), m(5), m(30), m(120), m(300), m(600), m(600)],
            jitter: 0.2,
            concurrency: 64,
            poll_interval: Duration::from_secs(1),
            queue_jobs: 8192,
            queue_bytes: 64 * 1024 * 1024,
            queue_jobs_per_tenant: 2048,
            max_in_flight_per_tenant: 32,
            allow_private_destinations: false,
            allowed_cidrs: Vec::new(),
            max_response_snippet_bytes: 1024,
            max_in_flight_per_destination: 16,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            disable_after: Duration::from_secs(3 * 24 * 3600),
            secret_rotation_grace: Duration::from_secs(24 * 3600),
        }
    }
}

impl DeliveryConfig {
    /// Which addresses destinations may reach.
    pub fn addresses(&self) -> crate::delivery::address::AddressPolicy {
        crate::delivery::address::AddressPolicy {
            allow_all: self.allow_private_destinations,
            allowed: self.allowed_cidrs.clone(),
        }
    }
}

/// A list of human-readable durations (`["0s", "5s", "5m"]`).
mod duration_list {
    use std::time::Duration;

    use humantime_serde::Serde;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(|d| Serde::from(*d)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Ok(Vec::<Serde<Duration>>::deserialize(d)?.into_iter().map(Serde::into_inner).collect())
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// The policy of the tenant named `tenant`: the defaults with its overrides applied.
    pub fn policy(&self, tenant: &str) -> TenantPolicy {
        match self.tenants.get(tenant) {
            Some(o) => o.apply(&self.tenant_defaults),
            None => self.tenant_defaults.clone(),
        }
    }

    /// The sandbox limits for plugins of the tenant named `tenant`: `[plugins]` with its
    /// `[tenants.<name>.plugins]` overrides applied.
    pub fn plugin_limits(&self, tenant: &str) -> PluginLimits {
        match self.tenants.get(tenant) {
            Some(o) => o.plugins.apply(&self.plugins),
            None => self.plugins.clone(),
        }
    }

    /// The retention of the tenant named `tenant`: `[retention]` with its
    /// `[tenants.<name>.retention]` overrides applied.
    pub fn retention(&self, tenant: &str) -> TenantRetention {
        let o = self.tenants.get(tenant).map(|t| &t.retention);
        TenantRetention {
            events: o.and_then(|o| o.events).unwrap_or(self.retention.events),
            route_versions: o.and_then(|o| o.route_versions).unwrap_or(self.retention.route_versions),
        }
    }

    /// Defaults, then `file` (if given), then `SWITCHYARD_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            // SWITCHYARD_LOG and SWITCHYARD_CONFIG belong to the binary, SWITCHYARD_FAILPOINT to
            // the crash tests (`store::writer`), not to this tree.
            .merge(Env::prefixed("SWITCHYARD_").ignore(&["log", "config", "failpoint"]).split("__"))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that serde cannot: ranges and relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        self.database_url()?;
        if let Some(key) = &self.secrets.key
            && let Err(e) = crate::store::secrets::Keyring::new(key, &self.secrets.previous_keys)
        {
            return Err(ConfigError::Invalid(format!("secrets.key / secrets.previous_keys: {e}")));
        }
        let sv = &self.server;
        if sv.header_read_timeout.is_zero() || sv.body_read_timeout.is_zero() || sv.max_connections == 0 {
            return bad("server.header_read_timeout, body_read_timeout and max_connections must be > 0");
        }
        let i = &self.ingest;
        if i.max_body_bytes == 0 || i.max_backlog_per_tenant == 0 || i.max_signature_entries == 0 {
            return bad("ingest.max_body_bytes, max_backlog_per_tenant and max_signature_entries must be > 0");
        }
        let p = &self.plugins;
        if p.epoch_tick.is_zero() || p.max_instances == 0 {
            return bad("plugins.epoch_tick and plugins.max_instances must be > 0");
        }
        if p.max_memories_per_component == 0
            || p.max_core_instances_per_component == 0
            || p.max_wasi_resources == 0
            || p.compile_concurrency == 0
            || p.compile_timeout.is_zero()
        {
            return bad(
                "plugins.max_memories_per_component, max_core_instances_per_component, max_wasi_resources, compile_concurrency and compile_timeout must be > 0",
            );
        }
        if p.max_component_memory_bytes < p.max_memory_bytes {
            return bad(
                "plugins.max_component_memory_bytes must be at least plugins.max_memory_bytes (a component of one memory must fit)",
            );
        }
        let per_slot = [p.max_memories_per_component, p.max_tables_per_component, p.max_core_instances_per_component];
        if per_slot.iter().any(|n| p.max_instances.checked_mul(*n).is_none()) {
            return bad("plugins.max_instances times a per-component bound must fit in 32 bits (the pool's size)");
        }
        let limits = std::iter::once(("plugins".to_owned(), p.clone()))
            .chain(self.tenants.keys().map(|n| (format!("tenants.{n}.plugins"), self.plugin_limits(n))));
        for (name, l) in limits {
            let bad = |m: &str| Err(ConfigError::Invalid(format!("{name}.{m}")));
            if l.timeout.is_zero() || l.timeout < p.epoch_tick {
                return bad("timeout must be > 0 and at least plugins.epoch_tick");
            }
            if l.max_memory_bytes < 1024 * 1024 {
                return bad("max_memory_bytes must be at least 1 MiB");
            }
            if l.max_memory_bytes > p.max_memory_bytes {
                return bad(
                    "max_memory_bytes must not exceed plugins.max_memory_bytes (the engine's pooling allocator reserves that much per instance, and no more)",
                );
            }
            if l.max_fanout == 0 || l.max_output_bytes == 0 || l.max_kv_ops == 0 {
                return bad("max_fanout, max_output_bytes and max_kv_ops must be > 0");
            }
        }
        let pl = &self.pipeline;
        if pl.concurrency == 0 || pl.batch_size == 0 || pl.queue_per_tenant == 0 || pl.queue_bytes == 0 {
            return bad("pipeline.concurrency, batch_size, queue_per_tenant and queue_bytes must be > 0");
        }
        if !(1..=self.pipeline.concurrency).contains(&self.pipeline.max_in_flight_per_tenant) {
            return bad("pipeline.max_in_flight_per_tenant must be between 1 and pipeline.concurrency");
        }
        let share = self.pipeline.failure_time_share;
        if !(share > 0.0 && share.is_finite()) || self.pipeline.failure_time_burst.is_zero() {
            return bad("pipeline.failure_time_share and pipeline.failure_time_burst must be > 0");
        }
        let d = &self.delivery;
        if d.retry_schedule.is_empty() {
            return bad("delivery.retry_schedule needs at least one entry");
        }
        if !(0.0..1.0).contains(&d.jitter) {
            return bad("delivery.jitter must be in [0, 1)");
        }
        if d.concurrency == 0 || d.timeout.is_zero() || d.queue_jobs == 0 || d.queue_bytes == 0 {
            return bad("delivery.concurrency, timeout, queue_jobs and queue_bytes must be > 0");
        }
        if !(1..=d.concurrency).contains(&d.max_in_flight_per_tenant) {
            return bad("delivery.max_in_flight_per_tenant must be between 1 and delivery.concurrency");
        }
        if !(1..=d.queue_jobs).contains(&d.queue_jobs_per_tenant) {
            return bad("delivery.queue_jobs_per_tenant must be between 1 and delivery.queue_jobs");
        }
        if d.max_in_flight_per_destination == 0 || d.breaker_threshold == 0 {
            return bad("delivery.max_in_flight_per_destination and delivery.breaker_threshold must be > 0");
        }
        let policies = std::iter::once(("tenant_defaults".to_owned(), self.tenant_defaults.clone()))
            .chain(self.tenants.keys().map(|n| (format!("tenants.{n}"), self.policy(n))));
        for (name, policy) in policies {
            if !(policy.ingest_rate > 0.0 && policy.ingest_rate.is_finite()) || policy.ingest_burst == 0 {
                return Err(ConfigError::Invalid(format!("{name}: ingest_rate and ingest_burst must be > 0")));
            }
            let fanout = [
                policy.max_steps_per_route,
                policy.max_destinations_per_route,
                policy.max_outputs_per_event,
                policy.max_deliveries_per_event,
            ];
            if fanout.contains(&0) {
                return Err(ConfigError::Invalid(format!(
                    "{name}: max_steps_per_route, max_destinations_per_route, max_outputs_per_event and \
                     max_deliveries_per_event must be > 0"
                )));
            }
        }
        let r = &self.retention;
        if r.batch_rows == 0 || r.interval.is_zero() {
            return bad("retention.batch_rows and retention.interval must be > 0");
        }
        let global = TenantRetention { events: r.events, route_versions: r.route_versions };
        let retentions = std::iter::once(("retention".to_owned(), global))
            .chain(self.tenants.keys().map(|n| (format!("tenants.{n}.retention"), self.retention(n))));
        for (name, r) in retentions {
            if r.events.is_zero() || r.route_versions == 0 {
                return Err(ConfigError::Invalid(format!("{name}: events and route_versions must be > 0")));
            }
        }
        self.tracing.validate()?;
        self.cluster.validate()?;
        if let Some(token) = &self.admin_token
            && token.len() < 16
        {
            return bad("admin_token must be at least 16 characters");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
