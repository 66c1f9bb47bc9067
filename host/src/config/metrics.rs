//! `[metrics]`: what `GET /metrics` may show.

use serde::{Deserialize, Serialize};

/// The Prometheus page at `GET /metrics` (behind the admin token, like the admin API).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// How many tenants get a `tenant` label of their own (the first ones created, then the
    /// first ones seen); the rest are counted under `tenant="other"`. Each labelled tenant
    /// adds a few dozen series, so this bounds the page's size and Prometheus' memory. 0 puts
    /// every tenant under `other`.
    pub max_tenant_labels: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { max_tenant_labels: 100 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_label_cap_defaults_to_100_and_reads_from_toml() {
        assert_eq!(MetricsConfig::default().max_tenant_labels, 100);
        let set: MetricsConfig = toml::from_str("max_tenant_labels = 3").unwrap();
        assert_eq!(set.max_tenant_labels, 3);
        assert_eq!(toml::from_str::<MetricsConfig>("").unwrap().max_tenant_labels, 100);
        assert!(toml::from_str::<MetricsConfig>("max_tenant_label = 3").is_err(), "unknown keys are refused");
    }
}
