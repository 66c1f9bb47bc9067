//! What one inbound event may multiply into, per tenant: plugin outputs over all its steps and
//! routes, and deliveries over all its routes and destinations.

use std::collections::HashMap;

use crate::config::{Config, TenantPolicy};

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
    pub(super) fn spend_outputs(&mut self, n: usize) -> Result<(), String> {
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
    pub(super) fn spend_deliveries(&mut self, outputs: usize, destinations: usize) -> Result<(), String> {
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
