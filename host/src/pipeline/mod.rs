//! Event processing: pending event -> matching routes -> plugin chain -> outbox rows.
//!
//! Events arrive in memory: the writer queues each new event right after the commit that
//! stored it (see `store::handoff`). The database is polled only for what memory did not
//! hold: events stored while the queue was full, and everything left pending by the last
//! stop. An event stays `pending` in the store until the transaction that records its route
//! results and queues its deliveries. A crash before that commit means the event is
//! processed again on restart (plugins may run twice; deliveries are queued once), so
//! nothing acknowledged is lost.

mod gate;
mod limits;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use gate::{Permit, Refusal, TenantGate};
pub use limits::{EventBudget, EventLimits, EventLimitsTable};

use crate::config::PipelineConfig;
use crate::event::{DeliveryId, Event, TenantId};
use crate::routes::{BodyFormat, CompiledRoute, RouteTable};
use crate::runtime::{Runtime, Verdict};
use crate::store::handoff::EventQueue;
use crate::store::{
    Completion, EventRetry, EventRow, LEASE, NewDelivery, RouteOutcome, RouteResult, Store, Writer, now_ms,
};
use crate::trace::{KeyValue, Span, SpanKind, Tracer};

/// What the pipeline needs.
pub struct Pipeline {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub routes: Arc<RouteTable>,
    /// New events, handed over by the writer after their commit.
    pub queue: Arc<EventQueue>,
    /// Where completions go (group-committed; nobody waits for them).
    pub writer: Writer,
    pub config: PipelineConfig,
    /// Delay before a new delivery's first attempt (the retry schedule's first entry).
    pub first_delivery_delay: std::time::Duration,
    /// What one event may multiply into, per tenant.
    pub limits: EventLimitsTable,
    /// Per-tenant in-flight caps and failure budgets, shared with dry runs and replays.
    pub gate: Arc<TenantGate>,
    /// Counts the workers in use (`switchyard_slots_in_use{pool="pipeline"}`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Records each run as a `process` span under the event's ingest span (off: nothing).
    pub tracer: Tracer,
}

impl Pipeline {
    /// Processes events until `shutdown`; finishes the events it has started first.
    ///
    /// Fairness: the queue takes tenants in turn (so does the poll, see
    /// `Store::claim_pending_events`), and a tenant with `max_in_flight_per_tenant` events
    /// running gets no more workers until one finishes, so a tenant with slow or hostile
    /// plugins cannot hold up everyone else. A tenant whose plugins fail (time out, trap, hit
    /// a limit) is further held to its failure budget (`failure_time_share`): its events wait
    /// while it is in debt.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        // Everything pending at start-up is in the database only.
        let mut poll_now = true;
        let mut last_poll = Instant::now();
        loop {
            while tasks.try_join_next().is_some() {}
            if poll_now || self.queue.wants_poll() || last_poll.elapsed() >= self.config.poll_interval {
                self.poll().await;
                last_poll = Instant::now();
                poll_now = false;
            }
            // Start what may start, while workers are free.
            let mut started = 0;
            while let Ok(permit) = permits.clone().try_acquire_owned() {
                // A tenant whose routes did not load waits: run now, its events would be
                // processed as if it had no routes.
                let next = self.gate.start_with(
                    |may_start| self.queue.next(|t| may_start(t) && !self.routes.failed_to_load(t)),
                    |row| &row.tenant_id,
                );
                let Some((row, mut run)) = next else { break };
                started += 1;
                let this = self.clone();
                // Everything logged while the event is processed carries its id and tenant.
                let span = tracing::info_span!("event", event = %row.id, tenant = %row.tenant);
                let slot = self.metrics.pipeline_slot();
                let work = async move {
                    run.charge(this.process(row).await);
                    drop(slot);
                    drop(run);
                    drop(permit);
                    this.queue.ready.notify_one();
                };
                tasks.spawn(tracing::Instrument::instrument(work, span));
            }
            if shutdown.is_cancelled() {
                break;
            }
            if started == 0 {
                // Nothing could start: no events, no free worker, or every tenant with events
                // is at its cap. Wait for a new event, a finished one, or the poll interval.
                let wait = self.config.poll_interval.saturating_sub(last_poll.elapsed());
                tokio::select! {
                    () = self.queue.ready.notified() => {}
                    // A dry run or replay of a throttled tenant ended.
                    () = self.gate.released.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Loads pending events that memory does not hold (overflow, and what a restart left)
    /// into the queue, for tenants that can take them.
    async fn poll(&self) {
        let mut skip = self.queue.full_tenants();
        skip.extend(self.gate.blocked());
        // Their events wait, pending, until their routes load.
        skip.extend(self.routes.unloaded_tenants());
        let lease_until = now_ms() + LEASE.as_millis() as i64;
        match self.store.claim_pending_events(self.config.batch_size, &skip, lease_until).await {
            Ok(rows) => {
                let polled = rows.len();
                let seen: Vec<TenantId> = rows.iter().map(|r| r.tenant_id.clone()).collect();
                if self.queue.push_polled(rows) < polled {
                    tracing::debug!("the poll found events already queued");
                }
                self.queue.polled(&skip, (polled as u32) < self.config.batch_size, &seen);
            }
            Err(e) => tracing::error!("loading pending events: {e}"),
        }
    }

    /// Runs one event through its tenant's routes and hands the outcome to the writer.
    /// Returns the time spent in plugin calls that failed.
    ///
    /// A transient fault (see `PluginFailure::is_transient`) puts the event back, to run
    /// again after the next delay of `retry_schedule`, instead of failing a route for good.
    async fn process(&self, row: EventRow) -> Duration {
        // Continues the trace stored with the event (its ingest span), after any restart.
        let mut span = self.tracer.start("process", SpanKind::Consumer, row.traceparent.as_deref(), || {
            vec![
                KeyValue::new("event.id", row.id.to_string()),
                KeyValue::new("tenant", row.tenant.clone()),
                KeyValue::new("source", row.source.clone()),
                KeyValue::new("event.type", row.event_type.clone()),
                KeyValue::new("event.tries", row.tries),
            ]
        });
        let event = row.to_event();
        let routes = self.routes.get(&row.tenant_id);
        let mut failed = Duration::ZERO;
        let retry_after = self.config.retry_schedule.get(row.tries as usize).copied();
        let mut results = Vec::new();
        let mut deliveries = Vec::new();
        let mut budget = self.limits.get(&event.tenant).budget();
        if let Some(routes) = &routes {
            for route in routes.matching(&event.source, &event.event_type) {
                let run = run_route_charging(
                    &self.runtime,
                    route,
                    &row.tenant_id,
                    &event,
                    self.first_delivery_delay,
                    &mut budget,
                    &mut failed,
                    &span,
                )
                .await;
                if let (Some(transient), Some(delay)) = (&run.transient, retry_after) {
                    let error = format!("route {}: {transient}", route.name);
                    span.set("event.outcome", || "retry");
                    span.fail(|| error.clone());
                    self.retry(&row, delay, error).await;
                    return failed;
                }
                results.push(run.result);
                deliveries.extend(run.deliveries);
            }
        }
        span.set("event.outcome", || "processed");
        span.set("event.route_version", || routes.as_ref().map_or(0, |r| r.version));
        span.set("event.deliveries", || deliveries.len() as i64);
        let completion = Completion {
            event: event.id.clone(),
            tenant: row.tenant_id.clone(),
            route_version: routes.as_ref().map(|r| r.version),
            results,
            deliveries,
        };
        if let Err(e) = self.writer.complete(completion).await {
            // Only at shutdown: the event stays pending and runs again on the next start.
            tracing::warn!(event = %event.id, "completion not recorded: {e}");
        }
        failed
    }

    /// Puts `row` back to be processed again after `delay`.
    async fn retry(&self, row: &EventRow, delay: Duration, error: String) {
        tracing::info!(event = %row.id, tries = row.tries + 1, ?delay, "event put back: {error}");
        let at = now_ms() + delay.as_millis() as i64;
        let retry = EventRetry { event: row.id.clone(), tenant: row.tenant_id.clone(), at, error };
        if let Err(e) = self.writer.retry(retry).await {
            tracing::warn!(event = %row.id, "retry not recorded: {e}");
        }
    }
}

/// What one route did with one event.
struct RouteRun {
    result: RouteResult,
    deliveries: Vec<NewDelivery>,
    /// A plugin failed for a reason that may pass (see `PluginFailure::is_transient`).
    transient: Option<String>,
}

/// The plugin chain of one route, then one delivery per output and destination. A failure
/// anywhere in the chain fails the route for this event as a whole: no partial output. Also
/// used to replay dead letters through the current chain. The time of a failing plugin call
/// is added to `failed` (the tenant's failure budget is charged with it).
pub async fn run_route(
    runtime: &Runtime,
    route: &CompiledRoute,
    tenant: &TenantId,
    event: &Event,
    first_delivery_delay: std::time::Duration,
    limits: EventLimits,
    failed: &mut Duration,
) -> (RouteResult, Vec<NewDelivery>) {
    let mut budget = limits.budget();
    let none = Span::none();
    let run = run_route_charging(runtime, route, tenant, event, first_delivery_delay, &mut budget, failed, &none).await;
    (run.result, run.deliveries)
}

/// [`run_route`] within an event's shared budget, saying whether a failure was transient;
/// traced as a `route` span under `parent`, with a `plugin call` span per call.
#[allow(clippy::too_many_arguments)]
async fn run_route_charging(
    runtime: &Runtime,
    route: &CompiledRoute,
    tenant: &TenantId,
    event: &Event,
    first_delivery_delay: std::time::Duration,
    budget: &mut EventBudget,
    failed: &mut Duration,
    parent: &Span,
) -> RouteRun {
    let mut span = parent.child("route", SpanKind::Internal, || {
        vec![
            KeyValue::new("event.id", event.id.to_string()),
            KeyValue::new("tenant", event.tenant.clone()),
            KeyValue::new("route", route.name.clone()),
        ]
    });
    let run = run_chain(runtime, route, tenant, event, first_delivery_delay, budget, failed, &span).await;
    span.set("route.outcome", || run.result.outcome.as_str());
    span.set("route.outputs", || run.result.outputs);
    span.set("route.deliveries", || run.deliveries.len() as i64);
    if let Some(detail) = run.result.detail.as_ref().filter(|_| run.result.outcome == RouteOutcome::Failed) {
        span.fail(|| detail.clone());
    }
    run
}

/// The body of [`run_route_charging`]: the chain, then the deliveries, which continue the
/// trace from the route's span when tracing is on.
#[allow(clippy::too_many_arguments)]
async fn run_chain(
    runtime: &Runtime,
    route: &CompiledRoute,
    tenant: &TenantId,
    event: &Event,
    first_delivery_delay: std::time::Duration,
    budget: &mut EventBudget,
    failed: &mut Duration,
    span: &Span,
) -> RouteRun {
    let result = |outcome, detail: Option<String>, outputs: usize| RouteResult {
        route: route.name.clone(),
        outcome,
        detail,
        outputs: outputs as i64,
    };
    let failure = |detail: String| RouteRun {
        result: result(RouteOutcome::Failed, Some(detail), 0),
        deliveries: Vec::new(),
        transient: None,
    };
    let mut current = vec![event.clone()];
    let mut drop_reasons = Vec::new();
    for step in &route.steps {
        let mut next = Vec::new();
        for ev in &current {
            let started = Instant::now();
            let mut call = span.child("plugin call", SpanKind::Internal, || {
                vec![
                    KeyValue::new("event.id", event.id.to_string()),
                    KeyValue::new("tenant", event.tenant.clone()),
                    KeyValue::new("plugin.name", step.plugin.name.clone()),
                    KeyValue::new("plugin.version", step.plugin.version),
                ]
            });
            let verdict = runtime.invoke(&step.plugin, tenant, step.config.clone(), ev).await;
            trace_call(&mut call, &verdict);
            drop(call);
            match verdict {
                Ok(Verdict::Drop(reason)) => drop_reasons.push(format!("{}: {reason}", step.plugin.label)),
                Ok(Verdict::Continue(mut out)) => {
                    if let Err(why) = budget.spend_outputs(out.len()) {
                        tracing::warn!(event = %event.id, route = %route.name, "{why}");
                        return failure(why);
                    }
                    next.append(&mut out);
                }
                Err(why) => {
                    *failed += started.elapsed();
                    tracing::warn!(event = %event.id, route = %route.name, "plugin failed: {why}");
                    let transient = why.is_transient().then(|| why.to_string());
                    return RouteRun { transient, ..failure(why.to_string()) };
                }
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    if current.is_empty() {
        let dropped = result(RouteOutcome::Dropped, Some(drop_reasons.join("; ")), 0);
        return RouteRun { result: dropped, deliveries: Vec::new(), transient: None };
    }
    if let Err(why) = budget.spend_deliveries(current.len(), route.destinations.len()) {
        tracing::warn!(event = %event.id, route = %route.name, "{why}");
        return failure(why);
    }
    let not_before = crate::store::now_ms() + first_delivery_delay.as_millis() as i64;
    // With tracing on, attempts are children of this route's span; off, each delivery gets a
    // new span id in the sender's trace (see `trace::child`).
    let route_span = span.traceparent();
    let stored = crate::store::traceparent_of(event);
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
                traceparent: route_span.clone().or_else(|| stored.map(crate::trace::child)),
            });
        }
    }
    let detail = (!drop_reasons.is_empty()).then(|| format!("some outputs dropped: {}", drop_reasons.join("; ")));
    RouteRun { result: result(RouteOutcome::Emitted, detail, current.len()), deliveries, transient: None }
}

/// A plugin call's outcome on its span: the verdict and output count, or the failure.
fn trace_call(span: &mut Span, verdict: &Result<Verdict, crate::runtime::PluginFailure>) {
    match verdict {
        Ok(Verdict::Drop(_)) => span.set("plugin.verdict", || "drop"),
        Ok(Verdict::Continue(out)) => {
            span.set("plugin.verdict", || "continue");
            span.set("plugin.outputs", || out.len() as i64);
        }
        Err(why) => {
            span.set("plugin.verdict", || "failed");
            span.set("error.type", || why.reason());
            span.fail(|| why.to_string());
        }
    }
}
