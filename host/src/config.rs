//! Router configuration: built-in defaults, then an optional TOML file, then `SWITCHYARD_*`
//! environment variables (nested keys joined with `__`, e.g. `SWITCHYARD_DELIVERY__TIMEOUT=5s`).
//! Everything is validated once at start-up so a bad value fails loudly before we listen.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Top-level configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Directory holding the SQLite database, compiled plugin artifacts and the admin token.
    pub data_dir: PathBuf,
    /// Bearer token for the admin API. When unset, one is generated on first start, saved to
    /// `<data_dir>/admin-token` and printed once.
    pub admin_token: Option<String>,
    pub ingest: IngestConfig,
    pub plugins: PluginLimits,
    pub pipeline: PipelineConfig,
    pub delivery: DeliveryConfig,
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
    /// Instances the pooling allocator keeps slots for (bounds concurrent invocations).
    pub max_instances: u32,
    /// Epoch tick: how often running plugins are checked against their deadline.
    #[serde(with = "humantime_serde")]
    pub epoch_tick: Duration,
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
    /// Events claimed from the store per batch.
    pub batch_size: u32,
    /// Fallback poll interval when no wake-up arrives.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
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
    /// Allow destinations on loopback, private, link-local or unspecified addresses.
    /// Off by default: a tenant must not be able to make the router call its own network.
    pub allow_private_destinations: bool,
    /// How much of a failed response body is kept for the tenant to read.
    pub max_response_snippet_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("switchyard-data"),
            admin_token: None,
            ingest: IngestConfig::default(),
            plugins: PluginLimits::default(),
            pipeline: PipelineConfig::default(),
            delivery: DeliveryConfig::default(),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, signature_tolerance: Duration::from_secs(5 * 60) }
    }
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            max_memory_bytes: 64 * 1024 * 1024,
            max_output_bytes: 1024 * 1024,
            max_fanout: 100,
            max_upload_bytes: 20 * 1024 * 1024,
            max_kv_value_bytes: 64 * 1024,
            max_instances: 256,
            epoch_tick: Duration::from_millis(5),
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { concurrency: 8, max_in_flight_per_tenant: 4, batch_size: 64, poll_interval: Duration::from_secs(1) }
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
            allow_private_destinations: false,
            max_response_snippet_bytes: 1024,
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
            // SWITCHYARD_LOG and SWITCHYARD_CONFIG belong to the binary, not to this tree.
            .merge(Env::prefixed("SWITCHYARD_").ignore(&["log", "config"]).split("__"))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that serde cannot: ranges and relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.ingest.max_body_bytes == 0 {
            return bad("ingest.max_body_bytes must be > 0");
        }
        let p = &self.plugins;
        if p.timeout.is_zero() || p.epoch_tick.is_zero() {
            return bad("plugins.timeout and plugins.epoch_tick must be > 0");
        }
        if p.epoch_tick > p.timeout {
            return bad("plugins.epoch_tick must not exceed plugins.timeout");
        }
        if p.max_memory_bytes < 1024 * 1024 {
            return bad("plugins.max_memory_bytes must be at least 1 MiB");
        }
        if p.max_fanout == 0 || p.max_output_bytes == 0 || p.max_instances == 0 {
            return bad("plugins.max_fanout, max_output_bytes and max_instances must be > 0");
        }
        if self.pipeline.concurrency == 0 || self.pipeline.batch_size == 0 {
            return bad("pipeline.concurrency and pipeline.batch_size must be > 0");
        }
        if !(1..=self.pipeline.concurrency).contains(&self.pipeline.max_in_flight_per_tenant) {
            return bad("pipeline.max_in_flight_per_tenant must be between 1 and pipeline.concurrency");
        }
        let d = &self.delivery;
        if d.retry_schedule.is_empty() {
            return bad("delivery.retry_schedule needs at least one entry");
        }
        if !(0.0..1.0).contains(&d.jitter) {
            return bad("delivery.jitter must be in [0, 1)");
        }
        if d.concurrency == 0 || d.timeout.is_zero() {
            return bad("delivery.concurrency and delivery.timeout must be > 0");
        }
        if let Some(token) = &self.admin_token
            && token.len() < 16
        {
            return bad("admin_token must be at least 16 characters");
        }
        Ok(())
    }
}

#[cfg(test)]
// figment's test Jail fixes the closure's error type, which is large; fine in tests.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn file_overrides_defaults_and_rejects_unknown_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", "[delivery]\ntimeout = \"2s\"\nretry_schedule = [\"0s\", \"10ms\"]\n")?;
            let c = Config::load(Some(Path::new("s.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.delivery.timeout, Duration::from_secs(2));
            assert_eq!(c.delivery.retry_schedule, vec![Duration::ZERO, Duration::from_millis(10)]);

            jail.create_file("bad.toml", "[delivery]\ntimeoutt = \"2s\"\n")?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("timeoutt"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_and_binary_variables_are_ignored() {
        // Jail serialises environment changes between tests that use it.
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWITCHYARD_DELIVERY__JITTER", "0.1");
            jail.set_env("SWITCHYARD_LOG", "debug");
            jail.set_env("SWITCHYARD_CONFIG", "/nonexistent.toml");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.delivery.jitter, 0.1);
            Ok(())
        });
    }

    #[test]
    fn invalid_values_are_refused() {
        let mut c = Config::default();
        c.delivery.retry_schedule.clear();
        assert!(c.validate().is_err());
    }
}
