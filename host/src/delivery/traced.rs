//! The `delivery attempt` span: a child of the span stored with the delivery (its route's,
//! when tracing was on as it was queued), carrying the event, tenant, delivery, attempt
//! number and outcome. Never the URL's path or query (they can hold a secret) and never a body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{DeliveryWorker, url_for_logs};
use crate::event::TenantId;
use crate::store::{DeliveryJob, DeliveryStatus};
use crate::trace::{KeyValue, Span, SpanKind};

/// Tenant names by id, read from the store once per tenant: spans name tenants as the API
/// and the other spans do, and a delivery row holds only the id. Used only when tracing.
#[derive(Default)]
pub(super) struct TenantNames(Mutex<HashMap<TenantId, Arc<str>>>);

impl DeliveryWorker {
    /// The span of attempt number `attempt` of `job`; none when tracing is off.
    pub(super) async fn start_span(&self, job: &DeliveryJob, attempt: i64) -> Span {
        if !self.tracer.is_on() {
            return Span::none();
        }
        let tenant = self.tenant_name(&job.tenant_id).await;
        self.tracer.start("delivery attempt", SpanKind::Client, job.traceparent.as_deref(), || {
            vec![
                KeyValue::new("event.id", job.event_id.to_string()),
                KeyValue::new("tenant", tenant.to_string()),
                KeyValue::new("delivery.id", job.id.to_string()),
                KeyValue::new("delivery.attempt", attempt),
                KeyValue::new("destination", url_for_logs(&job.url)),
                KeyValue::new("event.type", job.event_type.clone()),
            ]
        })
    }

    async fn tenant_name(&self, id: &TenantId) -> Arc<str> {
        if let Some(name) = self.names.0.lock().expect("not poisoned").get(id) {
            return name.clone();
        }
        match self.store.tenant_name(id).await {
            Ok(Some(name)) => {
                let name: Arc<str> = name.into();
                self.names.0.lock().expect("not poisoned").insert(id.clone(), name.clone());
                name
            }
            // A tenant deleted meanwhile, or a read error: the id still says whose it is.
            _ => id.to_string().into(),
        }
    }
}

/// What the attempt came to: the receiver's status, the delivery's new state, why it failed.
pub(super) fn outcome(span: &mut Span, status_code: Option<u16>, error: Option<&str>, status: DeliveryStatus) {
    if let Some(code) = status_code {
        span.set("http.response.status_code", || i64::from(code));
    }
    span.set("delivery.outcome", || match status {
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Pending => "retry",
        DeliveryStatus::Dead => "dead",
    });
    if let Some(error) = error {
        span.fail(|| error.to_owned());
    }
}
