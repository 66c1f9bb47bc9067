//! `[cluster]`: how router nodes sharing one PostgreSQL database watch each other. On SQLite
//! there is one node, and only `reconcile_interval`'s backlog resync has no use; the rest is
//! read but changes nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// How often a node stamps its heartbeat (by the database's clock).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// A node whose heartbeat is older than this is dead: another node releases its leases
    /// and takes its events and deliveries over. At least 3 × `heartbeat_interval`. Shorter
    /// means faster take-over, and more risk that a node stalled (not dead) loses its work
    /// to another and both send it.
    #[serde(with = "humantime_serde")]
    pub node_timeout: Duration,
    /// How often a node re-reads what it caches (routes, tenants, sources, destinations)
    /// and each tenant's backlog, in case it missed a change notice.
    #[serde(with = "humantime_serde")]
    pub reconcile_interval: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            node_timeout: Duration::from_secs(10),
            reconcile_interval: Duration::from_secs(10),
        }
    }
}

impl ClusterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("cluster.{m}")));
        if self.heartbeat_interval.is_zero() || self.reconcile_interval.is_zero() {
            return bad("heartbeat_interval and reconcile_interval must be > 0");
        }
        if self.node_timeout < self.heartbeat_interval * 3 {
            return bad("node_timeout must be at least 3 × heartbeat_interval, so one late heartbeat is not a death");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        ClusterConfig::default().validate().unwrap();
        let cases = [
            (
                ClusterConfig { heartbeat_interval: Duration::ZERO, ..ClusterConfig::default() },
                "cluster.heartbeat_interval",
            ),
            (ClusterConfig { reconcile_interval: Duration::ZERO, ..ClusterConfig::default() }, "reconcile_interval"),
            (
                ClusterConfig { node_timeout: Duration::from_secs(2), ..ClusterConfig::default() },
                "cluster.node_timeout",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }
}
