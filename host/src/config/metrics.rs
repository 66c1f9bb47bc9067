//! `[metrics]`: what `GET /metrics` may show.

use serde::{Deserialize, Serialize};

/// The Prometheus page at `GET /metrics` (behind the admin token, like the admin API).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// How many tenants get a `tenant` label of their own (the first ones created, then the
    /// first ones seen); the rest are counted under `tenant="other"`. Each labelled tenant
    /// adds a few dozen series, so this bounds the page's size and Prometheus' memory.
    pub max_tenant_labels: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { max_tenant_labels: 100 }
    }
}
