//! Who may start plugin work now: at most `max_in_flight_per_tenant` runs per tenant, fewer
//! while the tenant's failure budget is spent. One gate is shared by the pipeline, plugin dry
//! runs and `rerun` replays, so neither API is a way around the limits that keep a tenant's
//! hostile plugin from occupying the machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::PipelineConfig;
use crate::event::TenantId;

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

/// What is running per tenant, plus the failure budgets.
#[derive(Default)]
struct InFlight {
    per_tenant: HashMap<TenantId, usize>,
    /// Only tenants that have had failing plugin calls; the rest have a full budget.
    budgets: HashMap<TenantId, FailureBudget>,
}

impl InFlight {
    fn count(&self, tenant: &TenantId) -> usize {
        self.per_tenant.get(tenant).copied().unwrap_or(0)
    }

    /// Runs `tenant` may have in flight now: the configured cap with a full failure budget,
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

    fn may_start(&mut self, tenant: &TenantId, config: &PipelineConfig, now: Instant) -> bool {
        self.count(tenant) < self.cap(tenant, config, now)
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

/// Why a tenant may not start a run now, naming the limit, and when to try again.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub message: String,
    pub retry_after: Duration,
}

/// The per-tenant limits on plugin work, shared by everything that runs plugins for a tenant.
pub struct TenantGate {
    config: PipelineConfig,
    state: Mutex<InFlight>,
    /// Signalled whenever a run ends, so whoever waits for room looks again.
    pub released: Notify,
}

/// One run in flight; dropping it ends the run and charges what it failed.
pub struct Permit {
    gate: Arc<TenantGate>,
    tenant: TenantId,
    failed: Duration,
}

impl Permit {
    /// Adds time spent in failing plugin calls, charged to the tenant's failure budget when
    /// the run ends.
    pub fn charge(&mut self, failed: Duration) {
        self.failed += failed;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.gate.state.lock().expect("not poisoned");
        state.finish(&self.tenant);
        state.charge(&self.tenant, self.failed, &self.gate.config, Instant::now());
        drop(state);
        self.gate.released.notify_waiters();
    }
}

impl TenantGate {
    pub fn new(config: PipelineConfig) -> Arc<Self> {
        Arc::new(Self { config, state: Mutex::default(), released: Notify::new() })
    }

    /// Lets `pick` choose work among tenants that may start (it is given that test), and
    /// starts it, all under one lock: nothing else can take the tenant's last slot between
    /// the test and the start.
    pub fn start_with<R>(
        self: &Arc<Self>,
        pick: impl FnOnce(&mut dyn FnMut(&TenantId) -> bool) -> Option<R>,
        tenant_of: impl FnOnce(&R) -> &TenantId,
    ) -> Option<(R, Permit)> {
        let mut state = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        let picked = pick(&mut |t| state.may_start(t, &self.config, now))?;
        let tenant = tenant_of(&picked).clone();
        state.start(&tenant);
        Some((picked, Permit { gate: self.clone(), tenant, failed: Duration::ZERO }))
    }

    /// Starts a run for `tenant` now, or says which limit it is over.
    pub fn try_start(self: &Arc<Self>, tenant: &TenantId) -> Result<Permit, Refusal> {
        let mut state = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        if state.may_start(tenant, &self.config, now) {
            state.start(tenant);
            return Ok(Permit { gate: self.clone(), tenant: tenant.clone(), failed: Duration::ZERO });
        }
        let c = &self.config;
        let level = state.budgets.get(tenant).map(|b| b.level(c, now));
        Err(match level {
            Some(level) if level <= 0.0 => Refusal {
                message: format!(
                    "this tenant's plugins spent their failure budget (pipeline.failure_time_share {} with a burst of {}); no plugin runs until it is earned back",
                    c.failure_time_share,
                    humantime::format_duration(c.failure_time_burst)
                ),
                // Until the level is above zero again.
                retry_after: Duration::from_secs_f64(-level / c.failure_time_share + 0.001),
            },
            Some(_) => Refusal {
                message: format!(
                    "this tenant's plugins have been failing: it runs one plugin call at a time until its failure budget (pipeline.failure_time_share {}) is full again, and one is running",
                    c.failure_time_share
                ),
                retry_after: Duration::from_secs(1),
            },
            None => Refusal {
                message: format!(
                    "this tenant has {} plugin runs in flight, its limit (pipeline.max_in_flight_per_tenant is {})",
                    state.count(tenant),
                    c.max_in_flight_per_tenant
                ),
                retry_after: Duration::from_secs(1),
            },
        })
    }

    /// Starts a run for `tenant`, waiting like a pending event until the limits allow it.
    pub async fn start(self: &Arc<Self>, tenant: &TenantId) -> Permit {
        loop {
            let released = self.released.notified();
            match self.try_start(tenant) {
                Ok(permit) => return permit,
                Err(refusal) => {
                    // A run ending wakes us; the budget refills with time, so look again then.
                    let wait = refusal.retry_after.min(Duration::from_millis(100));
                    tokio::select! {
                        () = released => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Tenants that may not start another run now.
    pub fn blocked(&self) -> Vec<TenantId> {
        let mut state = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        let tenants: Vec<TenantId> = state.per_tenant.keys().chain(state.budgets.keys()).cloned().collect();
        let mut blocked: Vec<TenantId> =
            tenants.into_iter().filter(|t| !state.may_start(t, &self.config, now)).collect();
        blocked.sort();
        blocked.dedup();
        blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PipelineConfig {
        PipelineConfig {
            max_in_flight_per_tenant: 4,
            failure_time_share: 0.1,
            failure_time_burst: Duration::from_secs(1),
            ..PipelineConfig::default()
        }
    }

    #[test]
    fn failing_tenants_are_throttled_until_they_earn_their_budget_back() {
        let config = config();
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
        assert!(!f.may_start(&evil, &config, t0 + Duration::from_secs(4)));
        assert_eq!(f.cap(&evil, &config, t0 + Duration::from_millis(5100)), 1);
        // Full again after 15 s: the normal cap, and the entry is gone.
        assert_eq!(f.cap(&evil, &config, t0 + Duration::from_secs(15)), 4);
        assert!(f.budgets.is_empty());
        assert_eq!(f.cap(&good, &config, t0), 4, "others are never affected");
    }

    #[test]
    fn permits_count_until_dropped_and_refusals_name_the_limit() {
        let gate = TenantGate::new(config());
        let (evil, good) = (TenantId::generate(), TenantId::generate());
        let mut held: Vec<Permit> = (0..4).map(|_| gate.try_start(&evil).unwrap()).collect();
        let refused = gate.try_start(&evil).err().unwrap();
        assert!(refused.message.contains("pipeline.max_in_flight_per_tenant is 4"), "{refused:?}");
        assert_eq!(gate.blocked(), std::slice::from_ref(&evil));
        assert!(gate.try_start(&good).is_ok(), "another tenant is not affected");
        // Two seconds of failures: in debt for about ten seconds.
        held[0].charge(Duration::from_secs(2));
        held.clear();
        let refused = gate.try_start(&evil).err().unwrap();
        assert!(refused.message.contains("pipeline.failure_time_share"), "{refused:?}");
        assert!(refused.retry_after > Duration::from_secs(9), "{refused:?}");
    }
}
