//! Plugin call latency over the last hour, per tenant and plugin, in memory, for the console's
//! chart (`GET /v1/tenants/{tenant}/stats`).
//!
//! Why memory and not the database: plugin calls are the hot path (thousands a second), and
//! the one writer is its limit; a row per call would add a write per call to it. Why minute
//! buckets and not a ring of recent calls: a ring of N calls covers a second at full speed and
//! an hour when idle, so the chart's window would depend on the load. A bucket per minute
//! covers the hour whatever the rate, in fixed memory: `WINDOW_MINUTES` buckets of 136
//! bytes per tenant and plugin name (plugin names are bounded by the `max_plugins` quota).
//! A restart forgets the hour; the Prometheus histogram (`/metrics`) is the durable record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::event::TenantId;

/// Minutes kept: the hour the console charts.
pub const WINDOW_MINUTES: i64 = 60;
/// Latency buckets: bucket `i` holds calls of less than `2^i` microseconds (the last one, the
/// rest), so a percentile is known to within a factor of two, which a chart needs no better.
const LATENCY_BUCKETS: usize = 26;

/// One minute of one plugin's calls.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Unix minute this bucket holds, so a bucket from an earlier hour reads as empty.
    minute: i64,
    calls: u32,
    failures: u32,
    total_us: u64,
    max_us: u64,
    latency: [u32; LATENCY_BUCKETS],
}

/// One minute of one plugin's calls, as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PluginMinute {
    /// Start of the minute, unix milliseconds (the API turns it into RFC 3339).
    #[serde(skip)]
    pub minute_ms: i64,
    pub calls: u32,
    pub failures: u32,
    pub mean_us: u64,
    /// Upper bound of the power-of-two bucket holding the 95th percentile.
    pub p95_us: u64,
    pub max_us: u64,
}

/// One plugin's last hour: a bucket per minute, at `minute % WINDOW_MINUTES`.
type Ring = Box<[Bucket; WINDOW_MINUTES as usize]>;

/// Per tenant, per plugin name: a ring of minute buckets indexed by `minute % WINDOW_MINUTES`.
/// One lock, held for a few additions per call; readers copy out what they need.
#[derive(Default)]
pub struct RecentCalls {
    series: Mutex<HashMap<TenantId, HashMap<Box<str>, Ring>>>,
}

impl std::fmt::Debug for RecentCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentCalls").finish_non_exhaustive()
    }
}

impl RecentCalls {
    /// Counts one call that ended at `now_ms` (unix ms).
    pub fn record(&self, tenant: &TenantId, plugin: &str, took: Duration, failed: bool, now_ms: i64) {
        let minute = now_ms.div_euclid(60_000);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        // Every plugin call passes here: look up before inserting, so only a tenant's or
        // plugin's first call allocates.
        if !series.contains_key(tenant) {
            series.insert(tenant.clone(), HashMap::new());
        }
        let plugins = series.get_mut(tenant).expect("inserted above");
        if !plugins.contains_key(plugin) {
            plugins.insert(plugin.into(), Box::new([Bucket::default(); WINDOW_MINUTES as usize]));
        }
        let ring = plugins.get_mut(plugin).expect("inserted above");
        let b = &mut ring[minute.rem_euclid(WINDOW_MINUTES) as usize];
        if b.minute != minute {
            *b = Bucket { minute, ..Bucket::default() };
        }
        b.calls = b.calls.saturating_add(1);
        b.failures = b.failures.saturating_add(u32::from(failed));
        b.total_us = b.total_us.saturating_add(us);
        b.max_us = b.max_us.max(us);
        b.latency[latency_bucket(us)] += 1;
    }

    /// The tenant's minutes within the last hour before `now_ms`, by plugin name (sorted),
    /// oldest minute first; minutes without calls are left out.
    pub fn window(&self, tenant: &TenantId, now_ms: i64) -> Vec<(String, Vec<PluginMinute>)> {
        let now_minute = now_ms.div_euclid(60_000);
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let Some(plugins) = series.get(tenant) else { return Vec::new() };
        let mut out: Vec<(String, Vec<PluginMinute>)> = plugins
            .iter()
            .filter_map(|(name, ring)| {
                let mut minutes: Vec<PluginMinute> = ring
                    .iter()
                    .filter(|b| b.calls > 0 && b.minute > now_minute - WINDOW_MINUTES && b.minute <= now_minute)
                    .map(summary)
                    .collect();
                minutes.sort_by_key(|m| m.minute_ms);
                (!minutes.is_empty()).then(|| (name.to_string(), minutes))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The smallest `i` with `us < 2^i`, capped at the last bucket.
fn latency_bucket(us: u64) -> usize {
    ((u64::BITS - us.leading_zeros()) as usize).min(LATENCY_BUCKETS - 1)
}

fn summary(b: &Bucket) -> PluginMinute {
    let wanted = (u64::from(b.calls) * 95).div_ceil(100);
    let mut seen = 0u64;
    let mut p95_us = b.max_us;
    for (i, n) in b.latency.iter().enumerate() {
        seen += u64::from(*n);
        if seen >= wanted {
            // The bucket's upper bound, but never above the largest call seen.
            p95_us = (1u64 << i).min(b.max_us);
            break;
        }
    }
    PluginMinute {
        minute_ms: b.minute * 60_000,
        calls: b.calls,
        failures: b.failures,
        mean_us: b.total_us / u64::from(b.calls.max(1)),
        p95_us,
        max_us: b.max_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole minute (1_764_000_000_000 is one).
    const T0: i64 = 1_764_000_000_000;

    #[test]
    fn latency_buckets_are_powers_of_two() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 1);
        assert_eq!(latency_bucket(3), 2);
        assert_eq!(latency_bucket(1024), 11);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn a_minute_sums_its_calls_and_an_hour_later_it_is_gone() {
        let calls = RecentCalls::default();
        let tenant = TenantId::generate();
        for us in [100u64, 100, 100, 5000] {
            calls.record(&tenant, "tagger", Duration::from_micros(us), us > 1000, T0 + 1_000);
        }
        calls.record(&tenant, "tagger", Duration::from_micros(300), false, T0 + 61_000);
        let window = calls.window(&tenant, T0 + 70_000);
        assert_eq!(window.len(), 1);
        let (name, minutes) = &window[0];
        assert_eq!(name, "tagger");
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[0].minute_ms, T0);
        assert_eq!((minutes[0].calls, minutes[0].failures, minutes[0].mean_us, minutes[0].max_us), (4, 1, 1325, 5000));
        // 95% of 4 calls is all 4: the slowest call's bucket, capped at the slowest call.
        assert_eq!(minutes[0].p95_us, 5000);
        assert_eq!(minutes[1].p95_us, 300);
        // The same ring slot an hour later starts afresh; the old minute is out of the window.
        calls.record(&tenant, "tagger", Duration::from_micros(10), false, T0 + 3_600_000);
        let later = calls.window(&tenant, T0 + 3_600_000);
        assert_eq!(later[0].1.len(), 2, "{later:?}");
        assert_eq!(later[0].1[1].calls, 1);
        assert!(calls.window(&TenantId::generate(), T0).is_empty());
    }
}
