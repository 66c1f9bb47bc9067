//! Delivery: the outbox worker that signs (Standard Webhooks) and POSTs queued deliveries,
//! retrying on the configured schedule and dead-lettering when it runs out.
//!
//! New deliveries arrive in memory, handed over by the writer after the commit that queued
//! them (`store::handoff`). The database is polled for the rest: retries that fell due,
//! replays, what memory could not hold, and what the last stop left. Outcomes go back
//! through the writer, so no attempt waits for a commit of its own.

pub mod address;
pub mod client;
pub mod guard;
pub mod schedule;
mod traced;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use self::guard::{Admission, DestinationGuard};
use crate::config::DeliveryConfig;
use crate::event::TenantId;
use crate::metrics::{AttemptOutcome, Metrics};
use crate::signing::Secret;
use crate::store::handoff::DeliveryQueue;
use crate::store::{AttemptDone, AttemptRecord, DeliveryJob, DeliveryStatus, DestinationRow, Store, Writer, now_ms};
use crate::trace::Tracer;

pub struct DeliveryWorker {
    pub store: Store,
    pub client: reqwest::Client,
    pub config: DeliveryConfig,
    /// New deliveries, handed over by the writer after their commit.
    pub queue: Arc<DeliveryQueue>,
    pub writer: Writer,
    /// Signalled when deliveries were put back in the database (replays): poll now.
    pub wake: Arc<Notify>,
    guard: DestinationGuard,
    addresses: address::AddressPolicy,
    /// Attempts in flight per tenant (at most `max_in_flight_per_tenant` each).
    tenants: Mutex<HashMap<TenantId, usize>>,
    metrics: Option<Arc<Metrics>>,
    /// Records each attempt as a span (off: nothing), naming tenants from `names`.
    tracer: Tracer,
    names: traced::TenantNames,
}

impl DeliveryWorker {
    pub fn new(
        store: Store,
        config: DeliveryConfig,
        queue: Arc<DeliveryQueue>,
        writer: Writer,
        wake: Arc<Notify>,
    ) -> Self {
        // The client's own timeout is the ceiling; destinations may ask for less (or more,
        // up to 5 minutes: the per-request timeout below overrides it).
        let client = client::build(config.timeout, config.addresses());
        // One attempt to a destination until its row (with its own in-flight limit) is loaded.
        let guard = DestinationGuard::new(1, config.breaker_threshold, config.breaker_cooldown);
        let addresses = config.addresses();
        Self {
            store,
            client,
            config,
            queue,
            writer,
            wake,
            guard,
            addresses,
            tenants: Mutex::default(),
            metrics: None,
            tracer: Tracer::default(),
            names: traced::TenantNames::default(),
        }
    }

    /// Records each attempt as a `delivery attempt` span with `tracer`, and sends its id as
    /// the `traceparent` header.
    pub fn with_tracer(mut self, tracer: Tracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// Counts attempts (by tenant and outcome) and slots in use in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn tenant_in_flight(&self, tenant: &TenantId) -> usize {
        self.tenants.lock().expect("not poisoned").get(tenant).copied().unwrap_or(0)
    }

    fn tenant_started(&self, tenant: &TenantId) {
        *self.tenants.lock().expect("not poisoned").entry(tenant.clone()).or_default() += 1;
    }

    fn tenant_finished(&self, tenant: &TenantId) {
        let mut tenants = self.tenants.lock().expect("not poisoned");
        if let Some(n) = tenants.get_mut(tenant) {
            *n -= 1;
            if *n == 0 {
                tenants.remove(tenant);
            }
        }
        drop(tenants);
        // Its queued deliveries may go now.
        self.queue.ready.notify_one();
    }

    /// Sends due deliveries until `shutdown`, then lets attempts in flight finish.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let mut next_poll = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            if tokio::time::Instant::now() >= next_poll || self.queue.wants_poll() {
                next_poll = tokio::time::Instant::now() + self.poll().await;
            }
            let mut started = 0;
            while let Ok(permit) = permits.clone().try_acquire_owned() {
                // The first queued delivery whose destination has room; one whose circuit is
                // open comes out too, to be deferred.
                // A destination found busy is not asked again in the same pass.
                let mut busy: Vec<(TenantId, String)> = Vec::new();
                let cap = self.config.max_in_flight_per_tenant;
                let next = self.queue.next(
                    |tenant| self.tenant_in_flight(tenant) < cap,
                    |job| {
                        if busy.iter().any(|(t, u)| *t == job.tenant_id && *u == job.url) {
                            return None;
                        }
                        match self.guard.admit(&job.tenant_id, &job.url) {
                            Admission::Go(p) => Some(Ok(p)),
                            Admission::Wait(w) if w > guard::BUSY_RETRY => Some(Err(w)),
                            Admission::Wait(_) => {
                                busy.push((job.tenant_id.clone(), job.url.clone()));
                                None
                            }
                        }
                    },
                );
                let Some((job, admission)) = next else { break };
                started += 1;
                let tenant = job.tenant_id.clone();
                self.tenant_started(&tenant);
                let this = self.clone();
                let span = tracing::info_span!("delivery", delivery = %job.id, tenant_id = %job.tenant_id);
                let slot = self.metrics.as_ref().map(|m| m.delivery_slot());
                let work = async move {
                    let _slot = slot;
                    match admission {
                        Ok(go) => this.attempt(job, go).await,
                        Err(wait) => this.defer(job, wait).await,
                    }
                    drop(permit);
                    this.tenant_finished(&tenant);
                };
                tasks.spawn(tracing::Instrument::instrument(work, span));
            }
            if started == 0 {
                tokio::select! {
                    () = self.queue.ready.notified() => {}
                    () = self.wake.notified() => next_poll = tokio::time::Instant::now(),
                    () = tokio::time::sleep_until(next_poll) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Claims due deliveries that memory does not hold into the queue; returns how long
    /// until the next poll (when the next known one falls due, at most `poll_interval`). When
    /// memory is full it waits for room (`DeliveryQueue::wants_poll`).
    async fn poll(&self) -> Duration {
        let poll = self.config.poll_interval;
        let room = self.queue.room().min(256) as u32;
        if room == 0 {
            self.queue.mark_overflow();
            return poll;
        }
        let lease_until = now_ms() + crate::store::LEASE.as_millis() as i64;
        let skip = self.queue.full_tenants();
        match self.store.claim_due_deliveries(room, &skip, lease_until).await {
            Ok(jobs) => {
                let n = jobs.len() as u32;
                self.queue.push_polled(jobs);
                self.queue.polled(n < room);
                if n == room {
                    return poll;
                }
            }
            Err(e) => tracing::error!("claiming deliveries: {e}"),
        }
        match self.store.next_delivery_due().await {
            Ok(Some(at)) => Duration::from_millis((at - now_ms()).max(0) as u64).min(poll),
            _ => poll,
        }
    }

    /// A delivery whose destination's circuit is open goes back to the database until the
    /// cooldown is over; the try is not counted.
    async fn defer(&self, job: DeliveryJob, wait: Duration) {
        let at = now_ms() + wait.as_millis() as i64;
        if let Err(e) = self.writer.defer(job.id.clone(), at).await {
            tracing::error!(delivery = %job.id, "deferring: {e}");
            self.queue.finished(&job.id);
        }
    }

    /// One delivery admitted by the guard: dead-lettered if its destination is disabled,
    /// otherwise attempted (sign, send, record, schedule) and the destination's health
    /// updated.
    async fn attempt(&self, job: DeliveryJob, _permit: tokio::sync::OwnedSemaphorePermit) {
        let destination = match self.store.destination(&job.tenant_id, &job.url).await {
            Ok(d) => d,
            Err(e) => {
                // Back to the database, to be tried again after a pause.
                tracing::error!(delivery = %job.id, "loading destination: {e}");
                return self.defer(job, Duration::from_secs(1)).await;
            }
        };
        if let Some(reason) = destination.as_ref().and_then(|d| d.disabled_reason.as_deref()) {
            let reason = format!("destination disabled: {reason}; enable it, then replay");
            if let Err(e) = self.writer.dead_letter(job.id.clone(), reason).await {
                tracing::error!(delivery = %job.id, "dead-lettering: {e}");
                self.queue.finished(&job.id);
            }
            return;
        }
        let max_in_flight =
            destination.as_ref().and_then(|d| d.max_in_flight).map_or(self.config.max_in_flight_per_destination, |m| {
                m.clamp(1, self.config.max_in_flight_per_destination as i64) as u32
            });
        // Later admissions use the destination's own limit; deliveries that waited for the
        // initial one may go now.
        if self.guard.set_limit(&job.tenant_id, &job.url, max_in_flight) {
            self.queue.ready.notify_one();
        }

        let attempt = job.attempts + 1;
        let mut span = self.start_span(&job, attempt).await;
        // The attempt's own span id when tracing, so the receiver's spans nest under it.
        let traceparent = span.traceparent();
        let traceparent = traceparent.as_deref().or(job.traceparent.as_deref());
        let started_at = now_ms();
        let clock = Instant::now();
        let outcome = self.send(&job, destination.as_ref(), traceparent).await;
        let duration_ms = clock.elapsed().as_millis() as i64;
        if let Some(metrics) = &self.metrics {
            let counted = match &outcome {
                Ok(sent) => AttemptOutcome::Status(sent.status),
                Err(e) if e.starts_with(TIMED_OUT) => AttemptOutcome::Timeout,
                Err(_) => AttemptOutcome::ConnectionError,
            };
            let first = (job.attempts == 0).then_some(&job.event_id);
            metrics.attempt(&metrics.tenant_by_id(&job.tenant_id), counted, first);
        }
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
            tracing::warn!(delivery = %job.id, url = %url_for_logs(&job.url), attempts = attempt, "dead-lettered: {}", error.as_deref().unwrap_or(""));
        }
        traced::outcome(&mut span, status_code, error.as_deref(), status);
        drop(span);
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
        if let Err(e) = self.writer.attempt(AttemptDone { delivery: job.id.clone(), attempt, record }).await {
            // Only at shutdown: the lease is released at the next start and the delivery is
            // tried again with the same webhook-id (at-least-once).
            tracing::warn!(delivery = %job.id, "attempt not recorded: {e}");
            self.queue.finished(&job.id);
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
            tracing::warn!(url = %url_for_logs(&job.url), cooldown = ?self.config.breaker_cooldown, "circuit opened after repeated failures");
        }
        let after = self.config.disable_after.as_millis() as i64;
        let result = match error {
            None if destination.is_some_and(|d| d.failing_since.is_some()) => {
                self.store.destination_recovered(&job.tenant_id, &job.url).await.map(|()| None)
            }
            None => Ok(None),
            // Already failing, not yet for long enough to disable: nothing to write.
            Some(_) if !gone && destination.is_some_and(|d| d.failing_since.is_some_and(|s| now_ms() - s < after)) => {
                Ok(None)
            }
            Some(error) => {
                let gone_reason = gone
                    .then(|| format!("the receiver answered 410 Gone at {}", crate::store::ms_to_rfc3339(now_ms())));
                self.store.destination_failed(&job.tenant_id, &job.url, gone_reason, after, error).await
            }
        };
        match result {
            Ok(Some(reason)) => tracing::warn!(url = %url_for_logs(&job.url), "destination disabled: {reason}"),
            Ok(None) => {}
            Err(e) => tracing::error!(url = %url_for_logs(&job.url), "updating destination health: {e}"),
        }
    }

    async fn send(
        &self,
        job: &DeliveryJob,
        destination: Option<&DestinationRow>,
        traceparent: Option<&str>,
    ) -> Result<Sent, String> {
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
        let mut request = self
            .client
            .post(&job.url)
            .timeout(timeout)
            .header("content-type", &job.content_type)
            .header("webhook-id", job.id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("switchyard-event-type", &job.event_type);
        // Continues the sender's trace (validated at ingest, see `trace`).
        if let Some(traceparent) = traceparent {
            request = request.header(crate::trace::TRACEPARENT, traceparent);
        }
        let response = request
            .body(job.body.clone())
            .send()
            .await
            // The tenant knows its URL; some URLs carry a secret in their path (chat webhooks
            // do), and the error goes to the attempt log and the router's log.
            .map_err(|e| describe(&e.without_url()))?;
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

/// A destination URL as the router's log shows it: scheme, host and port only. Paths and
/// queries of webhook URLs often hold a secret (chat webhooks put theirs in the path), and
/// the log is read by people who are not the tenant.
pub fn url_for_logs(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.path() == "/" && u.query().is_none() => u.origin().ascii_serialization(),
        Ok(u) => format!("{}/...", u.origin().ascii_serialization()),
        Err(_) => "(unparsable URL)".into(),
    }
}

/// How [`describe`] starts a timeout's error.
const TIMED_OUT: &str = "timed out";

/// A transport error with its causes, e.g. "timed out" or "connection refused".
fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() { TIMED_OUT.to_owned() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
