//! Event processing: pending event -> matching routes -> plugin chain -> outbox rows.
//!
//! An event stays `pending` in the store until one transaction records its route results and
//! queues its deliveries. A crash before that commit means the event is processed again on
//! restart (plugins may run twice; deliveries are queued once), so nothing acknowledged is lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::PipelineConfig;
use crate::event::{DeliveryId, Event, EventId, TenantId};
use crate::routes::{BodyFormat, CompiledRoute, RouteTable};
use crate::runtime::{Runtime, Verdict};
use crate::store::{EventRow, NewDelivery, RouteOutcome, RouteResult, Store};

/// What the pipeline needs, shared with the API (which wakes it).
pub struct Pipeline {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub routes: Arc<RouteTable>,
    /// Signalled by ingest when new events are stored.
    pub wake: Arc<Notify>,
    /// Signalled here when deliveries were queued.
    pub deliveries_ready: Arc<Notify>,
    pub config: PipelineConfig,
    /// Delay before a new delivery's first attempt (the retry schedule's first entry).
    pub first_delivery_delay: std::time::Duration,
}

/// What is being processed right now: event ids (so a pass does not claim them again) and
/// how many per tenant (so no tenant exceeds its share of the workers).
#[derive(Default)]
struct InFlight {
    ids: HashSet<EventId>,
    per_tenant: HashMap<TenantId, usize>,
}

impl InFlight {
    fn count(&self, tenant: &TenantId) -> usize {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }

    fn start(&mut self, id: &EventId, tenant: &TenantId) {
        self.ids.insert(id.clone());
        *self.per_tenant.entry(tenant.clone()).or_default() += 1;
    }

    fn finish(&mut self, id: &EventId, tenant: &TenantId) {
        self.ids.remove(id);
        if let Some(n) = self.per_tenant.get_mut(tenant) {
            *n -= 1;
            if *n == 0 {
                self.per_tenant.remove(tenant);
            }
        }
    }
}

impl Pipeline {
    /// Processes events until `shutdown`; finishes the events it has started first.
    ///
    /// Fairness: batches interleave tenants (see `Store::pending_events`), and a tenant with
    /// `max_in_flight_per_tenant` events running gets no more workers until one finishes, so
    /// a tenant with slow or hostile plugins cannot hold up everyone else.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let cap = self.config.max_in_flight_per_tenant;
        let in_flight: Arc<Mutex<InFlight>> = Arc::default();
        let finished = Arc::new(Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let skip: Vec<EventId> = in_flight.lock().expect("not poisoned").ids.iter().cloned().collect();
            let batch = match self.store.pending_events(self.config.batch_size, &skip).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("loading pending events: {e}");
                    Vec::new()
                }
            };
            let mut started = 0;
            for row in batch {
                // A tenant at its cap waits for a later pass; its events stay pending meanwhile.
                if in_flight.lock().expect("not poisoned").count(&row.tenant_id) >= cap {
                    continue;
                }
                let permit = tokio::select! {
                    p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
                    () = shutdown.cancelled() => break,
                };
                in_flight.lock().expect("not poisoned").start(&row.id, &row.tenant_id);
                started += 1;
                let (this, in_flight, finished) = (self.clone(), in_flight.clone(), finished.clone());
                tasks.spawn(async move {
                    let (id, tenant) = (row.id.clone(), row.tenant_id.clone());
                    this.process(row).await;
                    in_flight.lock().expect("not poisoned").finish(&id, &tenant);
                    drop(permit);
                    finished.notify_one();
                });
            }
            if shutdown.is_cancelled() {
                break;
            }
            if started == 0 {
                // Nothing could start: all pending events are running or their tenants are at
                // their cap. Wait for new events, a finished one, or the poll interval.
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = finished.notified() => {}
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                    () = shutdown.cancelled() => break,
                }
            } else {
                // Let started tasks make progress before fetching more.
                let _ = permits.acquire().await;
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Runs one event through its tenant's routes and commits the outcome.
    async fn process(&self, row: EventRow) {
        let event = row.to_event();
        let routes = self.routes.get(&row.tenant_id);
        let mut results = Vec::new();
        let mut deliveries = Vec::new();
        if let Some(routes) = &routes {
            for route in routes.matching(&event.source, &event.event_type) {
                let (result, mut queued) =
                    run_route(&self.runtime, route, &row.tenant_id, &event, self.first_delivery_delay).await;
                results.push(result);
                deliveries.append(&mut queued);
            }
        }
        let version = routes.as_ref().map(|r| r.version);
        match self.store.complete_event(&event.id, version, &results, &deliveries).await {
            Ok(()) if !deliveries.is_empty() => self.deliveries_ready.notify_one(),
            Ok(()) => {}
            // Left pending: the next pass retries it.
            Err(e) => tracing::error!(event = %event.id, "recording processed event: {e}"),
        }
    }
}

/// The plugin chain of one route, then one delivery per output and destination. A failure
/// anywhere in the chain fails the route for this event as a whole: no partial output. Also
/// used to replay dead letters through the current chain.
pub async fn run_route(
    runtime: &Runtime,
    route: &CompiledRoute,
    tenant: &TenantId,
    event: &Event,
    first_delivery_delay: std::time::Duration,
) -> (RouteResult, Vec<NewDelivery>) {
    let result = |outcome, detail: Option<String>, outputs: usize| RouteResult {
        route: route.name.clone(),
        outcome,
        detail,
        outputs: outputs as i64,
    };
    let mut current = vec![event.clone()];
    let mut drop_reasons = Vec::new();
    for step in &route.steps {
        let mut next = Vec::new();
        for ev in &current {
            match runtime.invoke(&step.plugin, tenant, step.config.clone(), ev).await {
                Ok(inv) => match inv.verdict {
                    Verdict::Drop(reason) => drop_reasons.push(format!("{}: {reason}", step.plugin.label)),
                    Verdict::Continue(mut out) => next.append(&mut out),
                },
                Err(failure) => {
                    tracing::warn!(event = %event.id, route = %route.name, "plugin failed: {failure}");
                    return (result(RouteOutcome::Failed, Some(failure.to_string()), 0), Vec::new());
                }
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    if current.is_empty() {
        return (result(RouteOutcome::Dropped, Some(drop_reasons.join("; ")), 0), Vec::new());
    }
    let not_before = crate::store::now_ms() + first_delivery_delay.as_millis() as i64;
    let mut deliveries = Vec::with_capacity(current.len() * route.destinations.len());
    for out in &current {
        for dest in &route.destinations {
            let body = match dest.format {
                BodyFormat::Data => out.data.clone().into_bytes(),
                BodyFormat::Cloudevents => serde_json::to_vec(&out.to_cloudevent()).expect("JSON values serialise"),
            };
            deliveries.push(NewDelivery {
                id: DeliveryId::generate(),
                tenant_id: tenant.clone(),
                event_id: event.id.clone(),
                route: route.name.clone(),
                url: dest.url.clone(),
                secret: dest.secret.clone(),
                event_type: out.event_type.clone(),
                content_type: dest.format.content_type().to_owned(),
                body,
                not_before,
            });
        }
    }
    let detail = (!drop_reasons.is_empty()).then(|| format!("some outputs dropped: {}", drop_reasons.join("; ")));
    (result(RouteOutcome::Emitted, detail, current.len()), deliveries)
}
