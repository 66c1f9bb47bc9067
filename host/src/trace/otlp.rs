//! OpenTelemetry spans, exported over OTLP/HTTP (protobuf) when `[tracing] otlp_endpoint` is
//! set.
//!
//! One tree per event: `ingest` (the request that accepted it), then `process` (its run
//! through the routes) with a `route` child per matching route and a `plugin call` child per
//! plugin call, and a `delivery attempt` per attempt under the route that queued it.
//! Processing and attempts run later, in other tasks, possibly after a restart, so they are
//! not parented through any in-memory context: each starts from a stored `traceparent` (the
//! event's names its ingest span, a delivery's its route span).
//!
//! The tracer is the router's own, held in its state rather than installed as the global
//! provider: several routers can run in one process (the tests do), each with its exporter
//! or none. Off, a [`Tracer`] is `None`, every [`Span`] is `None`, and no attribute is built.

use std::borrow::Cow;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider};

pub use opentelemetry::KeyValue;
pub use opentelemetry::trace::SpanKind;

use crate::config::TracingConfig;

/// Starts spans for this router; off unless tracing is configured.
#[derive(Clone, Default)]
pub struct Tracer(Option<SdkTracer>);

/// The exporter of a router with tracing on: its batch processor's thread and HTTP client.
pub struct Exporter(SdkTracerProvider);

/// Builds the exporter and tracer `config` asks for: none when `otlp_endpoint` is unset.
pub fn start(config: &TracingConfig) -> Result<(Tracer, Option<Exporter>), opentelemetry_otlp::ExporterBuildError> {
    let Some(url) = config.traces_url() else { return Ok((Tracer::default(), None)) };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(config.export_timeout)
        .build()?;
    // The batch processor exports from a thread of its own (with a blocking HTTP client), so
    // a slow collector never holds a runtime thread; its queue is bounded.
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(config.export_interval)
        .with_max_queue_size(config.max_queued_spans)
        .with_max_export_batch_size(config.max_export_batch)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batch).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio))))
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build())
        .build();
    let tracer = provider.tracer("switchyard");
    Ok((Tracer(Some(tracer)), Some(Exporter(provider))))
}

impl Exporter {
    /// Sends the spans still queued and stops the export thread (which blocks, so off the
    /// runtime's threads).
    pub async fn shutdown(self) {
        let provider = self.0;
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("flushing traces at shutdown: {e}"),
            Err(e) => tracing::warn!("flushing traces at shutdown: {e}"),
        }
    }
}

impl Tracer {
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Starts a span continuing `traceparent` (a stored, validated one), or the root of a new
    /// trace without one. `attributes` is called only when tracing is on.
    pub fn start(
        &self,
        name: &'static str,
        kind: SpanKind,
        traceparent: Option<&str>,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        let Some(tracer) = &self.0 else { return Span(None) };
        let parent = traceparent.and_then(remote).unwrap_or_else(SpanContext::empty_context);
        Span::start(tracer, name, kind, parent, attributes)
    }
}

/// A span being recorded (or sampled out), ended when dropped; nothing when tracing is off.
pub struct Span(Option<(opentelemetry_sdk::trace::Span, SdkTracer)>);

impl Span {
    /// No span (tracing off, or work that is not part of an event's tree: dry runs).
    pub const fn none() -> Self {
        Span(None)
    }

    fn start(
        tracer: &SdkTracer,
        name: &'static str,
        kind: SpanKind,
        parent: SpanContext,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        let cx = if parent.is_valid() { Context::new().with_remote_span_context(parent) } else { Context::new() };
        let span = tracer
            .span_builder(Cow::Borrowed(name))
            .with_kind(kind)
            .with_attributes(attributes())
            .start_with_context(tracer, &cx);
        Span(Some((span, tracer.clone())))
    }

    /// A span nested in this one (none when this is none).
    pub fn child(&self, name: &'static str, kind: SpanKind, attributes: impl FnOnce() -> Vec<KeyValue>) -> Span {
        match &self.0 {
            Some((span, tracer)) => Span::start(tracer, name, kind, span.span_context().clone(), attributes),
            None => Span(None),
        }
    }

    /// Sets one attribute; `value` is called only when there is a span.
    pub fn set<V: Into<Value>>(&mut self, key: &'static str, value: impl FnOnce() -> V) {
        if let Some((span, _)) = &mut self.0 {
            span.set_attribute(KeyValue::new(key, value()));
        }
    }

    /// Marks the span failed, with why.
    pub fn fail(&mut self, why: impl FnOnce() -> String) {
        if let Some((span, _)) = &mut self.0 {
            span.set_status(Status::error(why()));
        }
    }

    /// This span as a W3C `traceparent`: what a call made within it sends, or what is stored
    /// for work that continues it later.
    pub fn traceparent(&self) -> Option<String> {
        let (span, _) = self.0.as_ref()?;
        let cx = span.span_context();
        Some(format!("00-{}-{}-{:02x}", cx.trace_id(), cx.span_id(), cx.trace_flags().to_u8()))
    }
}

/// The span context a `traceparent` names (as a parent from elsewhere: another process, or
/// this one before a restart).
fn remote(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.split('-').skip(1);
    let trace = TraceId::from_hex(parts.next()?).ok()?;
    let span = SpanId::from_hex(parts.next()?).ok()?;
    let flags = TraceFlags::new(u8::from_str_radix(parts.next()?, 16).ok()?);
    let cx = SpanContext::new(trace, span, flags, true, TraceState::default());
    cx.is_valid().then_some(cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_builds_nothing_and_calls_no_attribute_closure() {
        let (tracer, exporter) = start(&TracingConfig::default()).unwrap();
        assert!(!tracer.is_on() && exporter.is_none());
        let mut span = tracer.start("ingest", SpanKind::Server, None, || unreachable!("off: no attributes"));
        span.set("k", || -> i64 { unreachable!() });
        let child = span.child("route", SpanKind::Internal, || unreachable!());
        assert_eq!(child.traceparent(), None);
    }

    #[test]
    fn a_traceparent_round_trips_through_a_span_context() {
        let cx = remote("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(cx.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(cx.span_id().to_string(), "00f067aa0ba902b7");
        assert!(cx.is_sampled() && cx.is_remote());
        assert!(remote("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    }
}
