//! Per-tenant ingest rate limits: a token bucket (GCRA, from `governor`) per tenant, sized by
//! the tenant's policy. Buckets live in memory; a restart refills them, which only errs on
//! the side of accepting.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::TenantPolicy;
use crate::event::TenantId;

#[derive(Default)]
pub struct IngestLimiter {
    buckets: Mutex<HashMap<TenantId, Arc<DefaultDirectRateLimiter>>>,
}

impl IngestLimiter {
    /// Takes one event from the tenant's bucket, or says how long until one is available.
    pub fn check(&self, tenant: &TenantId, policy: &TenantPolicy) -> Result<(), Duration> {
        let bucket = self
            .buckets
            .lock()
            .expect("not poisoned")
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(RateLimiter::direct(quota(policy))))
            .clone();
        bucket.check().map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

fn quota(policy: &TenantPolicy) -> Quota {
    // Validated at start-up: rate > 0 and finite, burst > 0.
    let period = Duration::from_secs_f64(1.0 / policy.ingest_rate).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(policy.ingest_burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).expect("period is non-zero").allow_burst(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_over_its_burst_waits_and_others_are_unaffected() {
        let limiter = IngestLimiter::default();
        let policy = TenantPolicy { ingest_rate: 1.0, ingest_burst: 3, ..TenantPolicy::default() };
        let (a, b) = (TenantId::generate(), TenantId::generate());
        for _ in 0..3 {
            limiter.check(&a, &policy).unwrap();
        }
        let wait = limiter.check(&a, &policy).unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1), "{wait:?}");
        limiter.check(&b, &policy).unwrap();
    }
}
