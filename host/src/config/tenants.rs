//! What each tenant may do: its quotas, grants, fan-out bounds and kv quotas
//! (`[tenant_defaults]`), the per-tenant overrides (`[tenants.<name>]`), and the host
//! capabilities a tenant can be granted.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PluginLimitsOverride;

/// What a tenant may do: quotas (answered with 429 when exceeded) and the host capabilities
/// its plugins may import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantPolicy {
    /// Distinct plugins (names); versions of an existing plugin do not count.
    pub max_plugins: u32,
    /// Versions kept per plugin; delete old ones to upload more.
    pub max_plugin_versions: u32,
    /// Largest plugin component this tenant may upload (`plugins.max_upload_bytes` is the
    /// router-wide ceiling).
    pub max_plugin_bytes: usize,
    /// Routes in one route document.
    pub max_routes: u32,
    /// Plugin steps in one route's pipeline (refused at apply).
    pub max_steps_per_route: u32,
    /// Destinations of one route (refused at apply).
    pub max_destinations_per_route: u32,
    /// Events all plugin calls for one inbound event may emit together, over every step of
    /// every route: `max_fanout` bounds one call, this bounds what chained fan-outs multiply
    /// to. Past it, the route that went over fails for that event, with the reason.
    pub max_outputs_per_event: u32,
    /// Deliveries one inbound event may queue, over all its routes and destinations. Past it,
    /// the route that went over fails for that event, with the reason.
    pub max_deliveries_per_event: u32,
    /// Sustained inbound events per second (all of the tenant's sources together).
    pub ingest_rate: f64,
    /// Events that may arrive at once above the sustained rate.
    pub ingest_burst: u32,
    /// Host capabilities the tenant's plugins may import.
    pub grants: Vec<Capability>,
    /// Keys the tenant's kv store may hold. A plugin `set` that would add a key past it
    /// fails in the guest, naming this limit, and writes nothing.
    pub max_kv_keys: u64,
    /// Bytes (keys plus values, UTF-8) the tenant's kv store may hold; enforced like
    /// `max_kv_keys`.
    pub max_kv_bytes: u64,
}

/// `TenantPolicy` with every field optional, for per-tenant overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantOverride {
    pub max_plugins: Option<u32>,
    pub max_plugin_versions: Option<u32>,
    pub max_plugin_bytes: Option<usize>,
    pub max_routes: Option<u32>,
    pub max_steps_per_route: Option<u32>,
    pub max_destinations_per_route: Option<u32>,
    pub max_outputs_per_event: Option<u32>,
    pub max_deliveries_per_event: Option<u32>,
    pub ingest_rate: Option<f64>,
    pub ingest_burst: Option<u32>,
    pub grants: Option<Vec<Capability>>,
    pub max_kv_keys: Option<u64>,
    pub max_kv_bytes: Option<u64>,
    /// Sandbox limits for this tenant's plugins, each replacing the `[plugins]` value.
    pub plugins: PluginLimitsOverride,
    /// Retention for this tenant's data, each replacing the `[retention]` value.
    pub retention: RetentionOverride,
}

/// Per-tenant replacements for the retention periods of `[retention]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionOverride {
    #[serde(with = "humantime_serde")]
    pub events: Option<Duration>,
    pub route_versions: Option<u32>,
}

/// What one tenant's data is kept for: `[retention]` with its overrides applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantRetention {
    pub events: Duration,
    pub route_versions: u32,
}

/// A host interface of the `switchyard:plugin` world that is granted per tenant. WASI
/// interfaces (clocks, random, stdio) are always linked: they reach nothing outside the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Log,
    Config,
    Kv,
}

impl Capability {
    pub const ALL: [Capability; 3] = [Capability::Log, Capability::Config, Capability::Kv];

    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Config => "config",
            Capability::Kv => "kv",
        }
    }

    /// The WIT interface name, without the package version.
    pub fn interface(self) -> &'static str {
        match self {
            Capability::Log => "switchyard:plugin/log",
            Capability::Config => "switchyard:plugin/config",
            Capability::Kv => "switchyard:plugin/kv",
        }
    }
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self {
            max_plugins: 50,
            max_plugin_versions: 100,
            // Components built from JavaScript (componentize-js, about 12 MB) and Python
            // (componentize-py, about 19 MB) embed their interpreter: they must fit.
            max_plugin_bytes: 32 * 1024 * 1024,
            max_routes: 100,
            max_steps_per_route: 10,
            max_destinations_per_route: 10,
            max_outputs_per_event: 1000,
            max_deliveries_per_event: 1000,
            ingest_rate: 500.0,
            ingest_burst: 1000,
            grants: Capability::ALL.to_vec(),
            max_kv_keys: 10_000,
            max_kv_bytes: 64 * 1024 * 1024,
        }
    }
}

impl TenantOverride {
    pub(super) fn apply(&self, base: &TenantPolicy) -> TenantPolicy {
        TenantPolicy {
            max_plugins: self.max_plugins.unwrap_or(base.max_plugins),
            max_plugin_versions: self.max_plugin_versions.unwrap_or(base.max_plugin_versions),
            max_plugin_bytes: self.max_plugin_bytes.unwrap_or(base.max_plugin_bytes),
            max_routes: self.max_routes.unwrap_or(base.max_routes),
            max_steps_per_route: self.max_steps_per_route.unwrap_or(base.max_steps_per_route),
            max_destinations_per_route: self.max_destinations_per_route.unwrap_or(base.max_destinations_per_route),
            max_outputs_per_event: self.max_outputs_per_event.unwrap_or(base.max_outputs_per_event),
            max_deliveries_per_event: self.max_deliveries_per_event.unwrap_or(base.max_deliveries_per_event),
            ingest_rate: self.ingest_rate.unwrap_or(base.ingest_rate),
            ingest_burst: self.ingest_burst.unwrap_or(base.ingest_burst),
            grants: self.grants.clone().unwrap_or_else(|| base.grants.clone()),
            max_kv_keys: self.max_kv_keys.unwrap_or(base.max_kv_keys),
            max_kv_bytes: self.max_kv_bytes.unwrap_or(base.max_kv_bytes),
        }
    }
}
