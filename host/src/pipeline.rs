//! Event processing: pending event -> matching routes -> plugin chain -> outbox rows.
//!
//! Events arrive in memory: the writer queues each new event right after the commit that
//! stored it (see `store::handoff`). The database is polled only for what memory did not
//! hold: events stored while the queue was full, and everything left pending by the last
//! stop. An event stays `pending` in the store until the transaction that records its route
//! results and queues its deliveries. A crash before that commit means the event is
//! processed again on restart (plugins may run twice; deliveries are queued once), so
//! nothing acknowledged is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::PipelineConfig;
use crate::event::{DeliveryId, Event, TenantId};
use crate::routes::{BodyFormat, CompiledRoute, RouteTable};
use crate::runtime::{Runtime, Verdict};
use crate::store::handoff::EventQueue;
use crate::store::{Completion, EventRow, LEASE, NewDelivery, RouteOutcome, RouteResult, Store, Writer, now_ms};

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
}

/// What is being processed right now: how many events per tenant (so no tenant exceeds its
/// share of the workers), plus each tenant's failure budget.
#[derive(Default)]
struct InFlight {
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

    fn start(&mut self, tenant: &TenantId) {
        *self.per_tenant.entry(tenant.clone()).or_default() += 1;
    }

    fn finish(&mut self, tenant: &TenantId) {
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
    /// Fairness: the queue takes tenants in turn (so does the poll, see
    /// `Store::claim_pending_events`), and a tenant with `max_in_flight_per_tenant` events
    /// running gets no more workers until one finishes, so a tenant with slow or hostile
    /// plugins cannot hold up everyone else. A tenant whose plugins fail (time out, trap, hit
    /// a limit) is further held to its failure budget (`failure_time_share`): its events wait
    /// while it is in debt.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let in_flight: Arc<Mutex<InFlight>> = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        // Everything pending at start-up is in the database only.
        let mut poll_now = true;
        let mut last_poll = Instant::now();
        loop {
            while tasks.try_join_next().is_some() {}
            if poll_now || self.queue.wants_poll() || last_poll.elapsed() >= self.config.poll_interval {
                self.poll(&in_flight).await;
                last_poll = Instant::now();
                poll_now = false;
            }
            // Start what may start, while workers are free.
            let mut started = 0;
            while let Ok(permit) = permits.clone().try_acquire_owned() {
                let next = {
                    let mut flight = in_flight.lock().expect("not poisoned");
                    let now = Instant::now();
                    self.queue.next(|t| flight.count(t) < flight.cap(t, &self.config, now))
                };
                let Some(row) = next else { break };
                in_flight.lock().expect("not poisoned").start(&row.tenant_id);
                started += 1;
                let (this, in_flight) = (self.clone(), in_flight.clone());
                tasks.spawn(async move {
                    let tenant = row.tenant_id.clone();
                    let failed = this.process(row).await;
                    let mut in_flight = in_flight.lock().expect("not poisoned");
                    in_flight.finish(&tenant);
                    in_flight.charge(&tenant, failed, &this.config, Instant::now());
                    drop(in_flight);
                    drop(permit);
                    this.queue.ready.notify_one();
                });
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
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Loads pending events that memory does not hold (overflow, and what a restart left)
    /// into the queue, for tenants that can take them.
    async fn poll(&self, in_flight: &Mutex<InFlight>) {
        let mut skip = self.queue.full_tenants();
        skip.extend(in_flight.lock().expect("not poisoned").blocked(&self.config, Instant::now()));
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
