//! When to try a failed delivery again. Pure, so it is tested with exact numbers.

use std::time::Duration;

/// Longest `Retry-After` we honour: a receiver cannot park a delivery for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The delay before the next try, given how many tries this round has made (including the one
/// that just failed), or `None` when the schedule is exhausted and the delivery is dead.
/// `unit` is a random number in [0, 1) that spreads retries by +-`jitter`.
pub fn next_delay(
    schedule: &[Duration],
    tries_done: usize,
    jitter: f64,
    retry_after: Option<Duration>,
    unit: f64,
) -> Option<Duration> {
    let base = *schedule.get(tries_done)?;
    let spread = 1.0 + jitter * (2.0 * unit - 1.0);
    let delay = base.mul_f64(spread.max(0.0));
    Some(match retry_after {
        Some(asked) => delay.max(asked.min(MAX_RETRY_AFTER)),
        None => delay,
    })
}

/// Parses `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?.to_utc();
    (at - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn walks_the_schedule_then_gives_up() {
        let schedule = [S(0), S(5), S(300)];
        assert_eq!(next_delay(&schedule, 1, 0.0, None, 0.5), Some(S(5)));
        assert_eq!(next_delay(&schedule, 2, 0.0, None, 0.5), Some(S(300)));
        assert_eq!(next_delay(&schedule, 3, 0.0, None, 0.5), None);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let schedule = [S(0), S(100)];
        assert_eq!(next_delay(&schedule, 1, 0.2, None, 0.0), Some(S(80)));
        assert_eq!(next_delay(&schedule, 1, 0.2, None, 0.5), Some(S(100)));
        assert!(next_delay(&schedule, 1, 0.2, None, 0.999999).unwrap() < S(120));
    }

    #[test]
    fn retry_after_can_only_lengthen_and_is_capped() {
        let schedule = [S(0), S(5)];
        assert_eq!(next_delay(&schedule, 1, 0.0, Some(S(60)), 0.5), Some(S(60)));
        assert_eq!(next_delay(&schedule, 1, 0.0, Some(S(1)), 0.5), Some(S(5)));
        assert_eq!(next_delay(&schedule, 1, 0.0, Some(S(10 * 86400)), 0.5), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn parses_both_retry_after_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        assert_eq!(parse_retry_after("120", now), Some(S(120)));
        assert_eq!(parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now), Some(S(60)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
