//! Delivery: the outbox worker that signs (Standard Webhooks) and POSTs queued deliveries,
//! retrying on the configured schedule and dead-lettering when it runs out.

pub mod address;
pub mod client;
pub mod guard;
pub mod schedule;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use self::guard::{Admission, DestinationGuard};
use crate::config::DeliveryConfig;
use crate::signing::Secret;
use crate::store::{AttemptRecord, DeliveryJob, DeliveryStatus, DestinationRow, Store, now_ms};

pub struct DeliveryWorker {
    pub store: Store,
    pub client: reqwest::Client,
    pub config: DeliveryConfig,
    /// Signalled by the pipeline when it queued deliveries.
    pub wake: Arc<Notify>,
    guard: DestinationGuard,
    addresses: address::AddressPolicy,
}

impl DeliveryWorker {
    pub fn new(store: Store, config: DeliveryConfig, wake: Arc<Notify>) -> Self {
        // The client's own timeout is the ceiling; destinations may ask for less (or more,
        // up to 5 minutes: the per-request timeout below overrides it).
        let client = client::build(config.timeout, config.addresses());
        let guard = DestinationGuard::new(config.breaker_threshold, config.breaker_cooldown);
        let addresses = config.addresses();
        Self { store, client, config, wake, guard, addresses }
    }

    /// How long a claimed delivery is ours: the attempt's timeout plus margin. If we die,
    /// the row is claimed again after this.
    /// Long enough for the longest per-destination timeout; after a crash, start-up releases
    /// every lease at once, so length costs no recovery time.
    fn lease(&self) -> i64 {
        (self.config.timeout.max(crate::routes::MAX_DESTINATION_TIMEOUT) * 2 + Duration::from_secs(5)).as_millis()
            as i64
    }

    /// Sends due deliveries until `shutdown`, then lets attempts in flight finish.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits().max(1) as u32;
            let jobs = match self.store.claim_due_deliveries(free, now_ms() + self.lease()).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::error!("claiming deliveries: {e}");
                    Vec::new()
                }
            };
            let idle = jobs.is_empty();
            for job in jobs {
                let permit = permits.clone().acquire_owned().await.expect("semaphore never closed");
                let this = self.clone();
                tasks.spawn(async move {
                    this.attempt(job).await;
                    drop(permit);
                });
            }
            if idle {
                let sleep = self.until_next_due().await;
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(sleep) => {}
                    () = shutdown.cancelled() => {}
                }
            } else {
                let _ = permits.acquire().await;
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn until_next_due(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.store.next_delivery_due().await {
            Ok(Some(at)) => Duration::from_millis((at - now_ms()).max(0) as u64).min(poll),
            _ => poll,
        }
    }

    /// One claimed delivery: dead-lettered if its destination is disabled, deferred if the
    /// destination is busy or its circuit is open, otherwise attempted (sign, send, record,
    /// schedule) and the destination's health updated.
    async fn attempt(&self, job: DeliveryJob) {
        let destination = match self.store.destination(&job.tenant_id, &job.url).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(delivery = %job.id, "loading destination: {e}");
                return; // the lease runs out and the delivery is claimed again
            }
        };
        if let Some(reason) = destination.as_ref().and_then(|d| d.disabled_reason.as_deref()) {
            let reason = format!("destination disabled: {reason}; enable it, then replay");
            if let Err(e) = self.store.dead_letter(&job.id, &reason).await {
                tracing::error!(delivery = %job.id, "dead-lettering: {e}");
            }
            return;
        }
        let max_in_flight =
            destination.as_ref().and_then(|d| d.max_in_flight).map_or(self.config.max_in_flight_per_destination, |m| {
                m.clamp(1, self.config.max_in_flight_per_destination as i64) as u32
            });
        let _permit = match self.guard.admit(&job.tenant_id, &job.url, max_in_flight) {
            Admission::Go(permit) => permit,
            Admission::Wait(wait) => {
                let at = now_ms() + wait.as_millis() as i64;
                if let Err(e) = self.store.defer_delivery(&job.id, at).await {
                    tracing::error!(delivery = %job.id, "deferring: {e}");
                }
                return;
            }
        };

        let attempt = job.attempts + 1;
        let started_at = now_ms();
        let clock = Instant::now();
        let outcome = self.send(&job, destination.as_ref()).await;
        let duration_ms = clock.elapsed().as_millis() as i64;
        let (status_code, error, snippet, retry_after, gone) = match outcome {
            Ok(sent) => {
                let ok = (200..300).contains(&sent.status);
                let error = (!ok).then(|| format!("HTTP {}", sent.status));
                (Some(sent.status), error, sent.snippet, sent.retry_after, sent.status == 410)
            }
            Err(e) => (None, Some(e), None, None, false),
        };
        let schedule: Vec<Duration> = match destination.as_ref().and_then(DestinationRow::schedule_ms) {
            Some(ms) => ms.into_iter().map(Duration::from_millis).collect(),
            None => self.config.retry_schedule.clone(),
        };
        let (status, next_attempt_at) = if error.is_none() {
            (DeliveryStatus::Delivered, None)
        } else if gone {
            (DeliveryStatus::Dead, None)
        } else {
            let tries_done = (job.tries + 1) as usize;
            match schedule::next_delay(&schedule, tries_done, self.config.jitter, retry_after, rand::random()) {
                Some(delay) => (DeliveryStatus::Pending, Some(now_ms() + delay.as_millis() as i64)),
                None => (DeliveryStatus::Dead, None),
            }
        };
        let error = match (error, gone) {
            (Some(e), true) => Some(format!("{e}: the receiver says the endpoint is gone; not retrying")),
            (e, _) => e,
        };
        if status == DeliveryStatus::Dead {
            tracing::warn!(delivery = %job.id, url = %job.url, attempts = attempt, "dead-lettered: {}", error.as_deref().unwrap_or(""));
        }
        self.update_health(&job, destination.as_ref(), error.as_deref(), gone).await;
        let record = AttemptRecord {
            started_at,
            duration_ms,
            status_code,
            error,
            response_snippet: snippet,
            status,
            next_attempt_at,
        };
        if let Err(e) = self.store.record_attempt(&job.id, attempt, &record).await {
            // The lease runs out and the delivery is tried again: at-least-once.
            tracing::error!(delivery = %job.id, "recording attempt: {e}");
        }
    }

    /// Feeds the circuit breaker and the destination's stored health: a 410, or failing for
    /// `disable_after` without a success, disables it (the tenant sees why).
    async fn update_health(
        &self,
        job: &DeliveryJob,
        destination: Option<&DestinationRow>,
        error: Option<&str>,
        gone: bool,
    ) {
        let success = error.is_none();
        if self.guard.record(&job.tenant_id, &job.url, success) {
            tracing::warn!(url = %job.url, cooldown = ?self.config.breaker_cooldown, "circuit opened after repeated failures");
        }
        let result = match error {
            None if destination.is_some_and(|d| d.failing_since.is_some()) => {
                self.store.destination_recovered(&job.tenant_id, &job.url).await.map(|()| None)
            }
            None => Ok(None),
            Some(error) => {
                let gone_reason = gone
                    .then(|| format!("the receiver answered 410 Gone at {}", crate::store::ms_to_rfc3339(now_ms())));
                let after = self.config.disable_after.as_millis() as i64;
                self.store.destination_failed(&job.tenant_id, &job.url, gone_reason, after, error).await
            }
        };
        match result {
            Ok(Some(reason)) => tracing::warn!(url = %job.url, "destination disabled: {reason}"),
            Ok(None) => {}
            Err(e) => tracing::error!(url = %job.url, "updating destination health: {e}"),
        }
    }

    async fn send(&self, job: &DeliveryJob, destination: Option<&DestinationRow>) -> Result<Sent, String> {
        client::check_literal_host(&job.url, &self.addresses)?;
        // The destination's current secret (rotations apply to retries too); the delivery's
        // own copy only for rows older than the destinations table.
        let current = destination.map_or(job.secret.as_str(), |d| d.secret.as_str());
        let secret = Secret::parse(current).map_err(|e| format!("destination secret: {e}"))?;
        let timestamp = chrono::Utc::now().timestamp();
        let mut signature = secret.sign(job.id.as_str(), timestamp, &job.body);
        // During a rotation's grace period both sign: `v1,<new> v1,<old>`.
        if let Some(previous) = destination.and_then(|d| d.previous_secret_at(now_ms()))
            && let Ok(previous) = Secret::parse(previous)
        {
            signature = format!("{signature} {}", previous.sign(job.id.as_str(), timestamp, &job.body));
        }
        let timeout =
            destination.and_then(|d| d.timeout_ms).map_or(self.config.timeout, |ms| Duration::from_millis(ms as u64));
        let response = self
            .client
            .post(&job.url)
            .timeout(timeout)
            .header("content-type", &job.content_type)
            .header("webhook-id", job.id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("switchyard-event-type", &job.event_type)
            .body(job.body.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| schedule::parse_retry_after(v, chrono::Utc::now()))
            .filter(|_| status == 429 || status == 503);
        let snippet = read_snippet(response, self.config.max_response_snippet_bytes).await;
        Ok(Sent { status, retry_after, snippet })
    }
}

struct Sent {
    status: u16,
    retry_after: Option<Duration>,
    snippet: Option<String>,
}

/// Reads at most `max` bytes of a response body (a receiver cannot make us buffer more).
async fn read_snippet(mut response: reqwest::Response, max: usize) -> Option<String> {
    let mut buf = Vec::new();
    while buf.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk[..chunk.len().min(max - buf.len())]),
            _ => break,
        }
    }
    (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
}

/// A transport error with its causes, e.g. "timed out" or "connection refused".
fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
