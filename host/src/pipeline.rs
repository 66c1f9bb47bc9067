//! Event processing: pending event -> matching routes -> plugin chain -> outbox rows.
//!
//! An event stays `pending` in the store until one transaction records its route results and
//! queues its deliveries. A crash before that commit means the event is processed again on
//! restart (plugins may run twice; deliveries are queued once), so nothing acknowledged is lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
/// how many per tenant (so no tenant exceeds its share of the workers), plus each tenant's
/// failure budget.
#[derive(Default)]
struct InFlight {
    ids: HashSet<EventId>,
    per_tenant: HashMap<TenantId, usize>,
    /// Only tenants that have had failing plugin calls; the rest have a full budget.
    budgets: HashMap<TenantId, FailureBudget>,
}

/// Plugin time a tenant may spend failing: a token bucket in seconds that refills at
/// `failure_time_share` seconds per second up to `failure_time_burst`, and is charged with the
/// time of every failed plugin call once that call is over.
#[derive(Debug, Clone, Copy)]
struct FailureBudget {
    level: f64,
    updated: Instant,
}

impl FailureBudget {
    fn level(&self, config: &PipelineConfig, now: Instant) -> f64 {
        let earned = now.saturating_duration_since(self.updated).as_secs_f64() * config.failure_time_share;
        (self.level + earned).min(config.failure_time_burst.as_secs_f64())
    }
}

impl InFlight {
    fn count(&self, tenant: &TenantId) -> usize {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }

    /// Events `tenant` may have in flight now: the configured cap with a full failure budget,
    /// one while it earns back what it spent, none while it is in debt.
    fn cap(&mut self, tenant: &TenantId, config: &PipelineConfig, now: Instant) -> usize {
        let Some(budget) = self.budgets.get(tenant) else { return config.max_in_flight_per_tenant };
        let level = budget.level(config, now);
        if level >= config.failure_time_burst.as_secs_f64() {
            self.budgets.remove(tenant);
            config.max_in_flight_per_tenant
        } else if level > 0.0 {
            1
        } else {
            0
        }
    }

    /// Tenants that may not start another event now.
    fn blocked(&mut self, config: &PipelineConfig, now: Instant) -> Vec<TenantId> {
        let tenants: Vec<TenantId> = self.per_tenant.keys().chain(self.budgets.keys()).cloned().collect();
        let mut blocked: Vec<TenantId> =
            tenants.into_iter().filter(|t| self.count(t) >= self.cap(t, config, now)).collect();
        blocked.sort();
        blocked.dedup();
        blocked
    }

    /// Charges `failed` (time spent in failing plugin calls) to `tenant`'s budget.
    fn charge(&mut self, tenant: &TenantId, failed: Duration, config: &PipelineConfig, now: Instant) {
        if failed.is_zero() {
            return;
        }
        let full = FailureBudget { level: config.failure_time_burst.as_secs_f64(), updated: now };
        let budget = self.budgets.entry(tenant.clone()).or_insert(full);
        *budget = FailureBudget { level: budget.level(config, now) - failed.as_secs_f64(), updated: now };
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
    /// a tenant with slow or hostile plugins cannot hold up everyone else. A tenant whose
    /// plugins fail (time out, trap, hit a limit) is further held to its failure budget
    /// (`failure_time_share`): its events wait while it is in debt.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let in_flight: Arc<Mutex<InFlight>> = Arc::default();
        let finished = Arc::new(Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let (skip, blocked) = {
                let mut in_flight = in_flight.lock().expect("not poisoned");
                (in_flight.ids.iter().cloned().collect::<Vec<_>>(), in_flight.blocked(&self.config, Instant::now()))
            };
            let batch = match self.store.pending_events(self.config.batch_size, &skip, &blocked).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("loading pending events: {e}");
                    Vec::new()
                }
            };
            let mut started = 0;
            for row in batch {
                // A tenant at its cap waits for a later pass; its events stay pending meanwhile.
                {
                    let mut in_flight = in_flight.lock().expect("not poisoned");
                    if in_flight.count(&row.tenant_id) >= in_flight.cap(&row.tenant_id, &self.config, Instant::now()) {
                        continue;
                    }
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
                    let failed = this.process(row).await;
                    let mut in_flight = in_flight.lock().expect("not poisoned");
                    in_flight.finish(&id, &tenant);
                    in_flight.charge(&tenant, failed, &this.config, Instant::now());
                    drop(in_flight);
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

    /// Runs one event through its tenant's routes and commits the outcome. Returns the time
    /// spent in plugin calls that failed.
    async fn process(&self, row: EventRow) -> Duration {
        let event = row.to_event();
        let routes = self.routes.get(&row.tenant_id);
        let mut results = Vec::new();
        let mut deliveries = Vec::new();
        let mut failed = Duration::ZERO;
        if let Some(routes) = &routes {
            for route in routes.matching(&event.source, &event.event_type) {
                let (result, mut queued) = run_route_charging(
                    &self.runtime,
                    route,
                    &row.tenant_id,
                    &event,
                    self.first_delivery_delay,
                    &mut failed,
                )
                .await;
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
        failed
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
    let mut failed = Duration::ZERO;
    run_route_charging(runtime, route, tenant, event, first_delivery_delay, &mut failed).await
}

/// [`run_route`], adding the time of a failing plugin call to `failed` (the tenant's
/// failure budget is charged with it).
async fn run_route_charging(
    runtime: &Runtime,
    route: &CompiledRoute,
    tenant: &TenantId,
    event: &Event,
    first_delivery_delay: std::time::Duration,
    failed: &mut Duration,
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
            let started = Instant::now();
            match runtime.invoke(&step.plugin, tenant, step.config.clone(), ev).await {
                Ok(Verdict::Drop(reason)) => drop_reasons.push(format!("{}: {reason}", step.plugin.label)),
                Ok(Verdict::Continue(mut out)) => next.append(&mut out),
                Err(failure) => {
                    *failed += started.elapsed();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_tenants_are_throttled_until_they_earn_their_budget_back() {
        let config = PipelineConfig {
            max_in_flight_per_tenant: 4,
            failure_time_share: 0.1,
            failure_time_burst: Duration::from_secs(1),
            ..PipelineConfig::default()
        };
        let (evil, good) = (TenantId::generate(), TenantId::generate());
        let mut f = InFlight::default();
        let t0 = Instant::now();
        assert_eq!(f.cap(&evil, &config, t0), 4);
        f.charge(&good, Duration::ZERO, &config, t0);
        // Half the burst spent: one at a time.
        f.charge(&evil, Duration::from_millis(500), &config, t0);
        assert_eq!(f.cap(&evil, &config, t0), 1);
        // In debt (0.5 - 1.0 = -0.5 s): nothing, until 5 s at 0.1 s/s pay it back.
        f.charge(&evil, Duration::from_secs(1), &config, t0);
        assert_eq!(f.cap(&evil, &config, t0 + Duration::from_secs(4)), 0);
        assert_eq!(
            f.blocked(&config, t0 + Duration::from_secs(4)),
            std::slice::from_ref(&evil),
            "left out of the next batch"
        );
        assert_eq!(f.cap(&evil, &config, t0 + Duration::from_millis(5100)), 1);
        // Full again after 15 s: the normal cap, and the entry is gone.
        assert_eq!(f.cap(&evil, &config, t0 + Duration::from_secs(15)), 4);
        assert!(f.budgets.is_empty());
        assert_eq!(f.cap(&good, &config, t0), 4, "others are never affected");
    }
}
