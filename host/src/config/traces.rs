//! `[tracing]`: OpenTelemetry traces, exported over OTLP/HTTP when an endpoint is set.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// One span tree per event (ingest, processing, each route and plugin call, each delivery
/// attempt), sent to an OpenTelemetry collector. Off unless `otlp_endpoint` is set; off, the
/// router builds no exporter and does no tracing work per event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// The collector's OTLP/HTTP (protobuf) address, e.g. `http://localhost:4318`: a bare
    /// address gets the standard `/v1/traces` path; a URL with a path is used as it is.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` the spans are reported under.
    pub service_name: String,
    /// Share of new traces recorded, in [0, 1]. A trace a sender started follows the
    /// sender's sampling decision (the `traceparent` flags) instead.
    pub sampling_ratio: f64,
    /// How often finished spans are sent (also sent when `max_export_batch` are waiting).
    #[serde(with = "humantime_serde")]
    pub export_interval: Duration,
    /// Time one export may take before it is abandoned (its spans are lost, not retried).
    #[serde(with = "humantime_serde")]
    pub export_timeout: Duration,
    /// Finished spans held while waiting to be sent; past it new spans are dropped, so a
    /// slow or absent collector costs bounded memory.
    pub max_queued_spans: usize,
    /// Spans sent in one export request, at most `max_queued_spans`.
    pub max_export_batch: usize,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "switchyard".into(),
            sampling_ratio: 1.0,
            export_interval: Duration::from_secs(5),
            export_timeout: Duration::from_secs(10),
            max_queued_spans: 2048,
            max_export_batch: 512,
        }
    }
}

impl TracingConfig {
    /// The URL spans are posted to, when tracing is on.
    pub fn traces_url(&self) -> Option<String> {
        let endpoint = self.otlp_endpoint.as_deref()?;
        let url = url::Url::parse(endpoint).ok()?;
        Some(if url.path() == "/" && url.query().is_none() {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        } else {
            endpoint.to_owned()
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("tracing.{m}")));
        if let Some(endpoint) = &self.otlp_endpoint {
            match url::Url::parse(endpoint) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return bad(format!("otlp_endpoint {endpoint:?} must be an http:// or https:// URL")),
            }
        }
        if self.service_name.trim().is_empty() {
            return bad("service_name must not be empty".into());
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            return bad("sampling_ratio must be in [0, 1]".into());
        }
        if self.export_interval.is_zero() || self.export_timeout.is_zero() {
            return bad("export_interval and export_timeout must be > 0".into());
        }
        if self.max_queued_spans == 0 || !(1..=self.max_queued_spans).contains(&self.max_export_batch) {
            return bad("max_queued_spans must be > 0 and max_export_batch between 1 and max_queued_spans".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_endpoint(endpoint: &str) -> TracingConfig {
        TracingConfig { otlp_endpoint: Some(endpoint.into()), ..TracingConfig::default() }
    }

    #[test]
    fn off_by_default_and_the_standard_path_is_added_to_a_bare_address() {
        assert_eq!(TracingConfig::default().traces_url(), None);
        TracingConfig::default().validate().unwrap();
        let bare = with_endpoint("http://collector:4318");
        assert_eq!(bare.traces_url().as_deref(), Some("http://collector:4318/v1/traces"));
        assert_eq!(
            with_endpoint("http://collector:4318/").traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        let full = with_endpoint("https://otel.example/custom/traces");
        assert_eq!(full.traces_url().as_deref(), Some("https://otel.example/custom/traces"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (with_endpoint("collector:4318"), "tracing.otlp_endpoint"),
            (with_endpoint("ftp://collector"), "tracing.otlp_endpoint"),
            (TracingConfig { service_name: " ".into(), ..TracingConfig::default() }, "tracing.service_name"),
            (TracingConfig { sampling_ratio: 1.5, ..TracingConfig::default() }, "tracing.sampling_ratio"),
            (TracingConfig { sampling_ratio: f64::NAN, ..TracingConfig::default() }, "tracing.sampling_ratio"),
            (TracingConfig { export_interval: Duration::ZERO, ..TracingConfig::default() }, "export_interval"),
            (TracingConfig { max_export_batch: 4096, ..TracingConfig::default() }, "max_export_batch"),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }
}
