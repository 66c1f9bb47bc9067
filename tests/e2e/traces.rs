//! Traces over OTLP: with `tracing.otlp_endpoint` set, each event is one span tree (ingest,
//! process, a route, each plugin call, each delivery attempt) exported to a real OTLP/HTTP
//! receiver and decoded with the official protobuf types. The tree continues the sender's
//! trace, and a delivery's `traceparent` names its attempt's span.

use std::time::Duration;

use serde_json::json;

use crate::support::collector::{Collector, ExportedSpan};
use crate::support::{Receiver, TestRouter, WAIT, fixture, route};

const SENDER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const SENDER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN: &str = "00f067aa0ba902b7";

/// A router exporting to `collector`, with acme's `crm` source routed through `passthrough`
/// to `rx`.
async fn traced(collector: &Collector, rx: &Receiver) -> TestRouter {
    let endpoint = collector.endpoint();
    let r = TestRouter::start_with(|c| {
        c.tracing.otlp_endpoint = Some(endpoint);
        c.tracing.export_interval = Duration::from_millis(100);
    })
    .await;
    r.tenant("acme").await;
    r.source("acme", "crm", "crm", None).await;
    r.plugin("acme", "passthrough").await;
    r.routes("acme", json!({"routes": [route("all", "crm", &[], &["passthrough"], &rx.url("hook"))]})).await;
    r
}

/// The spans of event `id` once every name in `names` is there (`attempts` attempt spans).
async fn tree(collector: &Collector, id: &str, attempts: usize) -> Vec<ExportedSpan> {
    let of_event = |spans: &[ExportedSpan]| -> Vec<ExportedSpan> {
        spans.iter().filter(|s| s.attr("event.id").as_deref() == Some(id)).cloned().collect()
    };
    let spans = collector
        .wait_until(WAIT, |spans| {
            let mine = of_event(spans);
            let count = |name: &str| mine.iter().filter(|s| s.name() == name).count();
            ["ingest", "process", "route", "plugin call"].iter().all(|n| count(n) == 1)
                && count("delivery attempt") >= attempts
        })
        .await;
    of_event(&spans)
}

fn one<'a>(spans: &'a [ExportedSpan], name: &str) -> &'a ExportedSpan {
    let found: Vec<&ExportedSpan> = spans.iter().filter(|s| s.name() == name).collect();
    assert_eq!(found.len(), 1, "one {name} span: {spans:#?}");
    found[0]
}

/// Every span is in `trace`, carries the tenant, and the parent links form the event's tree.
fn assert_tree(spans: &[ExportedSpan], trace: &str) {
    for s in spans {
        assert_eq!(s.trace_id(), trace, "{} is in the event's trace", s.name());
        assert_eq!(s.attr("tenant").as_deref(), Some("acme"), "{} carries the tenant", s.name());
        assert_eq!(s.service, "switchyard", "{}", s.name());
    }
    let (ingest, process) = (one(spans, "ingest"), one(spans, "process"));
    let (route, plugin) = (one(spans, "route"), one(spans, "plugin call"));
    assert_eq!(process.parent_id(), ingest.span_id(), "process continues ingest (through the stored traceparent)");
    assert_eq!(route.parent_id(), process.span_id());
    assert_eq!(plugin.parent_id(), route.span_id());
    for attempt in spans.iter().filter(|s| s.name() == "delivery attempt") {
        assert_eq!(attempt.parent_id(), route.span_id(), "an attempt belongs to the route that queued it");
    }
    assert_eq!(route.attr("route").as_deref(), Some("all"));
    assert_eq!(route.attr("route.outcome").as_deref(), Some("emitted"));
    assert_eq!(plugin.attr("plugin.name").as_deref(), Some("passthrough"));
    assert_eq!(plugin.attr("plugin.version").as_deref(), Some("1"));
    assert_eq!(plugin.attr("plugin.verdict").as_deref(), Some("continue"));
    assert_eq!(ingest.attr("source").as_deref(), Some("crm"));
    assert_eq!(ingest.attr("http.response.status_code").as_deref(), Some("202"));
}

#[tokio::test]
async fn each_event_is_one_span_tree_in_the_senders_trace() {
    let (collector, rx) = (Collector::start().await, Receiver::start().await);
    let r = traced(&collector, &rx).await;
    let body = fixture("crm/lead_created.json");
    let (status, sent) = r.ingest("acme", "crm", &body, &[("traceparent".into(), SENDER.into())]).await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let delivered = rx.wait_for("/hook", 1, WAIT).await;

    let spans = tree(&collector, id, 1).await;
    assert_tree(&spans, SENDER_TRACE);
    let ingest = one(&spans, "ingest");
    assert_eq!(ingest.parent_id(), SENDER_SPAN, "ingest is a child of the sender's span");
    assert_eq!(ingest.kind(), opentelemetry_proto::tonic::trace::v1::span::SpanKind::Server);
    let attempt = one(&spans, "delivery attempt");
    assert_eq!(attempt.attr("delivery.attempt").as_deref(), Some("1"));
    assert_eq!(attempt.attr("delivery.outcome").as_deref(), Some("delivered"));
    assert_eq!(attempt.attr("http.response.status_code").as_deref(), Some("200"));
    // The receiver's origin only: a webhook URL's path may hold a secret.
    assert_eq!(attempt.attr("destination"), Some(format!("http://{}/...", rx.addr)));
    assert!(spans.iter().all(|s| s.span.attributes.iter().all(|kv| !format!("{:?}", kv.value).contains("/hook"))));
    // The receiver's spans nest under the attempt that reached it.
    assert_eq!(delivered[0].header("traceparent"), format!("00-{SENDER_TRACE}-{}-01", attempt.span_id()));
    // The event keeps the sender's trace, now naming the router's ingest span.
    let detail = r.get(&format!("/v1/tenants/acme/events/{id}")).await;
    assert_eq!(detail["traceparent"], format!("00-{SENDER_TRACE}-{}-01", ingest.span_id()), "{detail}");
    r.stop().await;
}

#[tokio::test]
async fn each_attempt_is_a_span_and_an_event_without_a_sender_trace_starts_one() {
    let (collector, rx) = (Collector::start().await, Receiver::start().await);
    rx.respond_with(&[500]);
    let r = traced(&collector, &rx).await;
    let id = r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    let delivered = rx.wait_for("/hook", 2, WAIT).await;

    let spans = tree(&collector, &id, 2).await;
    let ingest = one(&spans, "ingest");
    assert!(ingest.parent_id().is_empty(), "no sender trace: ingest is the root");
    assert_tree(&spans, &ingest.trace_id());
    let mut attempts: Vec<&ExportedSpan> = spans.iter().filter(|s| s.name() == "delivery attempt").collect();
    assert_eq!(attempts.len(), 2, "one span per attempt: {attempts:#?}");
    attempts.sort_by_key(|s| s.attr("delivery.attempt"));
    let [first, second] = [attempts[0], attempts[1]];
    assert_eq!(first.attr("delivery.attempt").as_deref(), Some("1"));
    assert_eq!(first.attr("http.response.status_code").as_deref(), Some("500"));
    assert_eq!(first.attr("delivery.outcome").as_deref(), Some("retry"));
    assert!(first.failed(), "a failed attempt's span is an error");
    assert_eq!(second.attr("delivery.attempt").as_deref(), Some("2"));
    assert_eq!(second.attr("delivery.outcome").as_deref(), Some("delivered"));
    assert!(!second.failed());
    assert_eq!(first.attr("delivery.id"), second.attr("delivery.id"), "two attempts of one delivery");
    // Each request names its own attempt's span.
    let trace = ingest.trace_id();
    assert_eq!(delivered[0].header("traceparent"), format!("00-{trace}-{}-01", first.span_id()));
    assert_eq!(delivered[1].header("traceparent"), format!("00-{trace}-{}-01", second.span_id()));
    r.stop().await;
}

#[tokio::test]
async fn a_trace_the_sender_did_not_sample_is_continued_but_not_exported() {
    const UNSAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let (collector, rx) = (Collector::start().await, Receiver::start().await);
    let r = traced(&collector, &rx).await;
    let (status, skipped) =
        r.ingest("acme", "crm", &fixture("crm/lead_created.json"), &[("traceparent".into(), UNSAMPLED.into())]).await;
    assert_eq!(status, 202, "{skipped}");
    let delivered = rx.wait_for("/hook", 1, WAIT).await;
    let header = delivered[0].header("traceparent");
    assert!(header.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && header.ends_with("-00"), "{header}");
    // Shutdown sends every span still queued: after it, what is missing was never recorded.
    let sampled = r.send("acme", "crm", &fixture("crm/deal_created.json")).await;
    rx.wait_for("/hook", 2, WAIT).await;
    tree(&collector, &sampled, 1).await;
    r.stop().await;
    let spans = collector.spans();
    let id = skipped["id"].as_str().unwrap();
    assert!(spans.iter().all(|s| s.attr("event.id").as_deref() != Some(id)), "{spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id() != "0af7651916cd43dd8448eb211c80319c"));
}
