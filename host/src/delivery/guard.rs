//! Per-destination protection, in memory: a concurrency limit and a circuit breaker, so one
//! slow or failing endpoint cannot hold the worker pool hostage. Both only ever delay a
//! delivery (it is deferred, not attempted, and the try is not counted); nothing is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::event::TenantId;

type Key = (TenantId, String);

#[derive(Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

/// One destination's in-flight limit.
struct Limit {
    max: u32,
    permits: Arc<Semaphore>,
    /// Permits a lowered limit could not take back yet (they were in use).
    owed: usize,
}

impl Limit {
    fn new(max: u32) -> Self {
        Self { max, permits: Arc::new(Semaphore::new(max as usize)), owed: 0 }
    }
}

/// What the guard says about one claimed delivery.
#[derive(Debug)]
pub enum Admission {
    Go(OwnedSemaphorePermit),
    /// Try again after this long.
    Wait(Duration),
}

pub struct DestinationGuard {
    /// In-flight limit of a destination whose own is not known yet.
    initial_limit: u32,
    threshold: u32,
    cooldown: Duration,
    limits: Mutex<HashMap<Key, Limit>>,
    breakers: Mutex<HashMap<Key, Breaker>>,
}

/// How soon a delivery deferred by a busy destination looks again. A delivery waiting in
/// memory for a busy destination stays queued; only a longer wait (an open circuit) sends it
/// back to the database.
pub const BUSY_RETRY: Duration = Duration::from_millis(100);

impl DestinationGuard {
    pub fn new(initial_limit: u32, threshold: u32, cooldown: Duration) -> Self {
        Self { initial_limit, threshold, cooldown, limits: Mutex::default(), breakers: Mutex::default() }
    }

    /// Sets the in-flight limit of `url` (its destination's `max_in_flight`, known once its
    /// row is loaded) for the admissions that follow. The permits are adjusted in place, so
    /// attempts already running keep counting against the limit.
    /// Returns true when the limit grew (deliveries waiting for it may go now).
    pub fn set_limit(&self, tenant: &TenantId, url: &str, max_in_flight: u32) -> bool {
        let mut limits = self.limits.lock().expect("not poisoned");
        let key = (tenant.clone(), url.to_owned());
        match limits.get_mut(&key) {
            Some(l) if l.max != max_in_flight => {
                let grew = max_in_flight > l.max;
                if grew {
                    let grow = (max_in_flight - l.max) as usize;
                    // Growing first pays what a shrink still owes.
                    let paid = grow.min(l.owed);
                    l.owed -= paid;
                    l.permits.add_permits(grow - paid);
                } else {
                    // Permits in use cannot be taken back now: they are owed, and taken as
                    // they return (see `admit`).
                    let shrink = (l.max - max_in_flight) as usize;
                    l.owed += shrink - l.permits.forget_permits(shrink);
                }
                l.max = max_in_flight;
                grew
            }
            Some(_) => false,
            None => {
                limits.insert(key, Limit::new(max_in_flight));
                true
            }
        }
    }

    /// Admits an attempt to `url` if its circuit is closed (or half-open: cooldown over) and
    /// fewer than its limit of attempts are running. A destination seen for the first time
    /// gets the initial limit until `set_limit` says otherwise.
    pub fn admit(&self, tenant: &TenantId, url: &str) -> Admission {
        let key = (tenant.clone(), url.to_owned());
        if let Some(until) = self.breakers.lock().expect("not poisoned").get(&key).and_then(|b| b.open_until) {
            let now = Instant::now();
            if until > now {
                return Admission::Wait(until - now);
            }
        }
        let semaphore = {
            let mut limits = self.limits.lock().expect("not poisoned");
            let l = limits.entry(key).or_insert_with(|| Limit::new(self.initial_limit));
            if l.owed > 0 {
                l.owed -= l.permits.forget_permits(l.owed);
            }
            l.permits.clone()
        };
        match semaphore.try_acquire_owned() {
            Ok(permit) => Admission::Go(permit),
            Err(_) => Admission::Wait(BUSY_RETRY),
        }
    }

    /// Records an attempt's outcome. Returns true when this failure opened the circuit.
    pub fn record(&self, tenant: &TenantId, url: &str, success: bool) -> bool {
        let key = (tenant.clone(), url.to_owned());
        let mut breakers = self.breakers.lock().expect("not poisoned");
        if success {
            breakers.remove(&key);
            return false;
        }
        let b = breakers.entry(key).or_default();
        b.consecutive_failures += 1;
        // Open at the threshold, and again after each failed trial while half-open.
        if b.consecutive_failures >= self.threshold {
            let was_open = b.open_until.is_some();
            b.open_until = Some(Instant::now() + self.cooldown);
            return !was_open;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_at_the_threshold_and_a_success_closes_it() {
        let g = DestinationGuard::new(4, 2, Duration::from_secs(60));
        let t = TenantId::generate();
        assert!(!g.record(&t, "u", false));
        assert!(matches!(g.admit(&t, "u"), Admission::Go(_)));
        assert!(g.record(&t, "u", false), "second failure opens it");
        assert!(matches!(g.admit(&t, "u"), Admission::Wait(d) if d > Duration::from_secs(59)));
        assert!(matches!(g.admit(&t, "other"), Admission::Go(_)), "other destinations are unaffected");
        g.record(&t, "u", true);
        assert!(matches!(g.admit(&t, "u"), Admission::Go(_)));
    }

    #[test]
    fn at_most_max_in_flight_attempts_run() {
        let g = DestinationGuard::new(1, 5, Duration::from_secs(1));
        let t = TenantId::generate();
        let Admission::Go(first) = g.admit(&t, "u") else { panic!("first is admitted") };
        assert!(matches!(g.admit(&t, "u"), Admission::Wait(_)), "one until the limit is known");
        g.set_limit(&t, "u", 2);
        let Admission::Go(second) = g.admit(&t, "u") else { panic!("the limit grew to 2") };
        assert!(matches!(g.admit(&t, "u"), Admission::Wait(_)), "the first still counts");
        g.set_limit(&t, "u", 1);
        drop(first);
        assert!(matches!(g.admit(&t, "u"), Admission::Wait(_)), "shrunk to 1, and one is running");
        drop(second);
        assert!(matches!(g.admit(&t, "u"), Admission::Go(_)));
    }
}
