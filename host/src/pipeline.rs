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

use crate::config::{Config, PipelineConfig, TenantPolicy};
use crate::event::{DeliveryId, Event, TenantId};
use crate::routes::{BodyFormat, CompiledRoute, RouteTable};
use crate::runtime::{Runtime, Verdict};
use crate::store::handoff::EventQueue;
use crate::store::{
    Completion, EventRetry, EventRow, LEASE, NewDelivery, RouteOutcome, RouteResult, Store, Writer, now_ms,
};

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
}

/// What one inbound event may multiply into: plugin outputs over every step of every route,
/// and deliveries over every route and destination (`TenantPolicy::max_outputs_per_event`,
/// `max_deliveries_per_event`). Chained fan-outs multiply: two 100-way steps to five
/// destinations would otherwise queue 50,000 deliveries from one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    pub outputs: u32,
    pub deliveries: u32,
}

impl EventLimits {
    pub fn of(policy: &TenantPolicy) -> Self {
        Self { outputs: policy.max_outputs_per_event, deliveries: policy.max_deliveries_per_event }
    }

    /// A fresh budget for one event.
    pub fn budget(self) -> EventBudget {
        EventBudget { limits: self, outputs: 0, deliveries: 0 }
    }
}

/// Each tenant's [`EventLimits`], by tenant name, from the configuration.
#[derive(Debug, Clone)]
pub struct EventLimitsTable {
    default: EventLimits,
    overrides: HashMap<String, EventLimits>,
}

impl EventLimitsTable {
    pub fn new(config: &Config) -> Self {
        let overrides =
            config.tenants.keys().map(|name| (name.clone(), EventLimits::of(&config.policy(name)))).collect();
        Self { default: EventLimits::of(&config.tenant_defaults), overrides }
    }

    pub fn get(&self, tenant_name: &str) -> EventLimits {
        self.overrides.get(tenant_name).copied().unwrap_or(self.default)
    }
}

/// What one event has spent of its [`EventLimits`] so far.
#[derive(Debug, Clone, Copy)]
pub struct EventBudget {
    limits: EventLimits,
    outputs: u32,
    deliveries: u32,
}

impl EventBudget {
    /// Counts `n` more plugin outputs, or says why that is too many.
    fn spend_outputs(&mut self, n: usize) -> Result<(), String> {
        let total = self.outputs as usize + n;
        if total > self.limits.outputs as usize {
            return Err(format!(
                "plugins emitted more than {} events for this event; the limit (max_outputs_per_event) is {}",
                self.limits.outputs, self.limits.outputs
            ));
        }
        self.outputs = total as u32;
        Ok(())
    }

    /// Counts a route's deliveries, or says why they are too many.
    fn spend_deliveries(&mut self, outputs: usize, destinations: usize) -> Result<(), String> {
        let n = outputs.saturating_mul(destinations);
        let total = self.deliveries as usize + n;
        if total > self.limits.deliveries as usize {
            return Err(format!(
                "{outputs} events x {destinations} destinations would make this event's deliveries {total}; \
                 the limit (max_deliveries_per_event) is {}",
                self.limits.deliveries
            ));
        }
        self.deliveries = total as u32;
        Ok(())
    }
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
                    self.queue
                        .next(|t| flight.count(t) < flight.cap(t, &self.config, now) && !self.routes.failed_to_load(t))
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
        // Their events wait, pending, until their routes load: run now, they would be
        // processed as if the tenant had no routes.
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
                )
                .await;
                if let (Some(transient), Some(delay)) = (&run.transient, retry_after) {
                    let error = format!("route {}: {transient}", route.name);
                    self.retry(&row, delay, error).await;
                    return failed;
                }
                results.push(run.result);
                deliveries.extend(run.deliveries);
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
/// used to replay dead letters through the current chain.
pub async fn run_route(
    runtime: &Runtime,
    route: &CompiledRoute,
    tenant: &TenantId,
    event: &Event,
    first_delivery_delay: std::time::Duration,
    limits: EventLimits,
) -> (RouteResult, Vec<NewDelivery>) {
    let mut failed = Duration::ZERO;
    let mut budget = limits.budget();
    let run = run_route_charging(runtime, route, tenant, event, first_delivery_delay, &mut budget, &mut failed).await;
    (run.result, run.deliveries)
}

/// [`run_route`], adding the time of a failing plugin call to `failed` (the tenant's
/// failure budget is charged with it).
async fn run_route_charging(
    runtime: &Runtime,
    route: &CompiledRoute,
    tenant: &TenantId,
    event: &Event,
    first_delivery_delay: std::time::Duration,
    budget: &mut EventBudget,
    failed: &mut Duration,
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
            match runtime.invoke(&step.plugin, tenant, step.config.clone(), ev).await {
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
    RouteRun { result: result(RouteOutcome::Emitted, detail, current.len()), deliveries, transient: None }
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
