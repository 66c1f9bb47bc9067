//! The one writer: every hot-path write goes through here and is group-committed.
//!
//! Ingest inserts, plugins' kv writes, event completions (route results and outbox rows),
//! attempt outcomes and deferrals queue on one channel. One task takes whatever queued while
//! the previous commit ran and commits it in a single transaction: one fsync for the batch,
//! and a handful of multi-row statements rather than one round trip per row.
//!
//! Nobody but ingest waits for the commit. A pipeline worker hands over its completion and
//! takes its next event; the writer hands the deliveries that completion queued to the
//! delivery queue after the commit (a delivery never starts before the commit that queued
//! it), and a new event to the pipeline's queue after the commit that stored it. An earlier
//! single-writer attempt failed because workers awaited their own commits behind large
//! ingest batches; here only the HTTP request that must answer "stored" waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::handoff::{DeliveryQueue, EventQueue};
use super::{
    AttemptRecord, DeliveryJob, EventRow, InsertOutcome, NewDelivery, NewEvent, Result, RouteResult, Store, StoreError,
    now_ms,
};
use crate::event::{DeliveryId, EventId, TenantId};

/// The longest an event or delivery handed over in memory stays leased (`lease_until`):
/// longer than the longest attempt (twice the 5-minute destination timeout ceiling). A lease
/// ends sooner when its node dies (`store::nodes`); on SQLite, start-up releases them all.
/// Past it, the periodic reconcile of several nodes releases the row even from a live node
/// (a row memory lost track of), so it bounds how long anything can stay held.
pub const LEASE: Duration = Duration::from_secs(15 * 60);

/// What one pipeline run decided for one event.
#[derive(Debug)]
pub struct Completion {
    pub event: EventId,
    pub tenant: TenantId,
    pub route_version: Option<i64>,
    pub results: Vec<RouteResult>,
    pub deliveries: Vec<NewDelivery>,
}

/// One attempt's outcome.
#[derive(Debug)]
pub struct AttemptDone {
    pub delivery: DeliveryId,
    pub attempt: i64,
    pub record: AttemptRecord,
}

pub(super) enum Op {
    /// The reply is taken when the outcome is sent (after the commit).
    Ingest {
        event: NewEvent,
        reply: Option<oneshot::Sender<Result<InsertOutcome>>>,
    },
    Kv {
        tenant: TenantId,
        writes: HashMap<String, Option<String>>,
        seq: u64,
        /// The growth the call reserved against its tenant's kv quota; it ends with the
        /// commit (or, dropped with the op, when the write is given up).
        reserved: super::KvReservation,
    },
    Complete(Completion),
    Attempt(AttemptDone),
    /// Back to the database without an attempt: due again at `at`, try not counted.
    Defer {
        delivery: DeliveryId,
        at: i64,
    },
    /// Dead-lettered without an attempt, with the reason.
    DeadLetter {
        delivery: DeliveryId,
        reason: String,
    },
    /// An event back to the poll, to be processed again at `at`.
    Retry(EventRetry),
}

/// An event whose run hit a transient fault: processed again later, not completed now.
#[derive(Debug)]
pub struct EventRetry {
    pub event: EventId,
    pub tenant: TenantId,
    pub at: i64,
    pub error: String,
}

/// How long writes nobody waits for (attempt outcomes, deferrals) may wait for company.
const LINGER: Duration = Duration::from_millis(3);

impl Op {
    /// Whether someone waits for this op's commit: an HTTP request for its 202, or a delivery
    /// that may start only once its completion is durable. (A kv write is followed by its
    /// event's completion, which is awaited.)
    fn is_awaited(&self) -> bool {
        matches!(self, Op::Ingest { .. } | Op::Complete(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Op::Ingest { .. } => "ingest",
            Op::Kv { .. } => "kv",
            Op::Complete(_) => "completion",
            Op::Attempt(_) => "attempt",
            Op::Defer { .. } => "defer",
            Op::DeadLetter { .. } => "dead letter",
            Op::Retry(_) => "event retry",
        }
    }
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Op>,
}

/// The handles the writer needs, and what it hands committed work to.
pub struct WriterParts {
    pub store: Store,
    pub events: Arc<EventQueue>,
    pub deliveries: Arc<DeliveryQueue>,
    /// Ops per transaction at most.
    pub max_batch: usize,
    /// Each group commit's size and duration (`/metrics`).
    pub metrics: crate::metrics::WriterMetrics,
}

impl Writer {
    /// Starts the writer. It runs until `stop` is cancelled, then commits everything queued
    /// before it ends; await the returned handle to know it has.
    pub fn spawn(parts: WriterParts, stop: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, ops) = mpsc::channel::<Op>(parts.max_batch * 8);
        let task = tokio::spawn(run(parts, ops, stop));
        (Self { queue }, task)
    }

    async fn send(&self, op: Op) -> Result<()> {
        self.queue.send(op).await.map_err(|_| StoreError::Closed)
    }

    /// Stores one event durably (with whatever else is waiting) and returns its outcome.
    pub async fn insert(&self, event: NewEvent) -> Result<InsertOutcome> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Ingest { event, reply: Some(reply) }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a plugin call's kv writes. Reads see them at once (the store's overlay); they
    /// are committed in the next batch, before or with the completion of their event. The
    /// call's quota reservation stays until that commit.
    pub async fn kv(
        &self,
        store: &Store,
        tenant: &TenantId,
        writes: HashMap<String, Option<String>>,
        reserved: super::KvReservation,
    ) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let seq = store.kv_overlay_stage(tenant, &writes);
        self.send(Op::Kv { tenant: tenant.clone(), writes, seq, reserved }).await
    }

    /// Queues an event's completion; returns once it is queued, not committed.
    pub async fn complete(&self, completion: Completion) -> Result<()> {
        self.send(Op::Complete(completion)).await
    }

    pub async fn attempt(&self, done: AttemptDone) -> Result<()> {
        self.send(Op::Attempt(done)).await
    }

    pub async fn defer(&self, delivery: DeliveryId, at: i64) -> Result<()> {
        self.send(Op::Defer { delivery, at }).await
    }

    pub async fn dead_letter(&self, delivery: DeliveryId, reason: String) -> Result<()> {
        self.send(Op::DeadLetter { delivery, reason }).await
    }

    /// Puts an event back to be processed again later; returns once queued.
    pub async fn retry(&self, retry: EventRetry) -> Result<()> {
        self.send(Op::Retry(retry)).await
    }
}

/// A failpoint for the crash tests: `SWITCHYARD_FAILPOINT=abort-after-commit:N` ends the
/// process right after the Nth commit, before anything of it is handed over or answered.
fn abort_after_commit() -> Option<u64> {
    std::env::var("SWITCHYARD_FAILPOINT").ok()?.strip_prefix("abort-after-commit:")?.parse().ok()
}

/// The writer's own connection, kept from batch to batch: its prepared statements stay
/// cached (and on SQLite its worker thread stays warm). Taken again from the pool if a batch
/// fails (the connection may be what failed).
#[derive(Default)]
struct WriterConnection(Option<super::backend::Conn>);

impl WriterConnection {
    async fn get(&mut self, store: &Store) -> Result<&mut super::backend::Conn> {
        if self.0.is_none() {
            self.0 = Some(store.db.acquire().await?);
        }
        Ok(self.0.as_mut().expect("just set"))
    }
}

async fn run(parts: WriterParts, mut ops: mpsc::Receiver<Op>, stop: CancellationToken) {
    let abort_at = abort_after_commit();
    let mut conn = WriterConnection::default();
    let mut commits = 0u64;
    let mut batch = Vec::with_capacity(parts.max_batch);
    loop {
        let n = tokio::select! {
            n = ops.recv_many(&mut batch, parts.max_batch) => n,
            () = stop.cancelled() => {
                // Take what is queued, then stop accepting.
                ops.close();
                ops.recv_many(&mut batch, parts.max_batch).await
            }
        };
        if n == 0 {
            break;
        }
        // Nobody waits for attempt outcomes: hold them back a little for a commit that
        // someone does wait for, instead of spending a commit (and an fsync) on them alone.
        if !batch.iter().any(Op::is_awaited) && !stop.is_cancelled() {
            let linger = tokio::time::sleep(LINGER);
            tokio::pin!(linger);
            while batch.len() < parts.max_batch {
                tokio::select! {
                    got = ops.recv() => match got {
                        Some(op) => {
                            let awaited = op.is_awaited();
                            batch.push(op);
                            if awaited {
                                break;
                            }
                        }
                        None => break,
                    },
                    () = &mut linger => break,
                    () = stop.cancelled() => break,
                }
            }
            let room = parts.max_batch - batch.len();
            if room > 0 {
                // Whatever else queued meanwhile joins too.
                while let Ok(op) = ops.try_recv() {
                    batch.push(op);
                    if batch.len() >= parts.max_batch {
                        break;
                    }
                }
            }
        }
        let n = batch.len();
        let mut ops_now: Vec<Op> = std::mem::take(&mut batch);
        let started = std::time::Instant::now();
        match commit(&parts, &mut conn, &mut ops_now).await {
            Ok(done) => {
                let took = started.elapsed();
                tracing::debug!(ops = n, us = took.as_micros() as u64, "group commit");
                parts.metrics.commit(n, took);
                commits += 1;
                if abort_at == Some(commits) {
                    // Exit at once: no handoff, no reply, no destructor, no core file.
                    eprintln!("failpoint: exiting after commit {commits}");
                    std::process::exit(86);
                }
                done.hand_over(&parts);
            }
            Err(e) => {
                conn = WriterConnection::default();
                tracing::error!("group commit of {} writes failed: {e}; committing them one by one", ops_now.len());
                for op in ops_now {
                    let kind = op.kind();
                    let mut one = vec![op];
                    match commit(&parts, &mut conn, &mut one).await {
                        Ok(done) => done.hand_over(&parts),
                        Err(e) => {
                            tracing::error!("{kind} write failed: {e}");
                            give_up(&parts, one.pop().expect("one op"), &e).await;
                        }
                    }
                }
            }
        }
    }
}

/// What a committed batch hands over.
#[derive(Default)]
struct Committed {
    replies: Vec<(oneshot::Sender<Result<InsertOutcome>>, InsertOutcome)>,
    /// New events with a slot reserved: queued for the pipeline.
    events: Vec<EventRow>,
    /// Reservations of events not stored (duplicates).
    unreserve: Vec<(TenantId, usize)>,
    /// Tenants with new events stored that memory does not hold: the poll's work.
    unheld_events: Vec<TenantId>,
    /// Completed events, and whether this batch moved them out of `pending`.
    completed: Vec<(EventId, bool)>,
    deliveries: Vec<DeliveryJob>,
    /// Reservations of deliveries not stored (their event was completed before).
    unreserve_deliveries: Vec<(TenantId, usize)>,
    /// Deliveries stored that memory does not hold (not due yet, or no room).
    unheld_deliveries: bool,
    finished_deliveries: Vec<DeliveryId>,
    /// Events put back to the poll (to be retried).
    released: Vec<(EventId, TenantId)>,
    kv_committed: Vec<(TenantId, Vec<String>, u64)>,
    /// Committed kv usage of the tenants whose kv this batch wrote, and the reservations it
    /// settled.
    kv_usage: Vec<(TenantId, super::KvUsage)>,
    kv_reserved: Vec<super::KvReservation>,
}

impl Committed {
    fn hand_over(self, parts: &WriterParts) {
        for (tenant, bytes) in &self.unreserve {
            parts.events.unreserve(tenant, *bytes);
        }
        for row in self.events {
            parts.events.push_reserved(row);
        }
        for tenant in &self.unheld_events {
            parts.events.mark_overflow(tenant);
        }
        for (reply, outcome) in self.replies {
            let _ = reply.send(Ok(outcome));
        }
        if !self.kv_usage.is_empty() {
            parts.store.kv_usage_committed(&self.kv_usage, self.kv_reserved);
        }
        for (tenant, keys, seq) in &self.kv_committed {
            parts.store.kv_overlay_committed(tenant, keys, *seq);
        }
        for job in self.deliveries {
            parts.deliveries.push_reserved(job);
        }
        for (tenant, bytes) in &self.unreserve_deliveries {
            parts.deliveries.unreserve(tenant, *bytes);
        }
        if self.unheld_deliveries {
            parts.deliveries.mark_overflow();
        }
        for (id, tenant) in &self.released {
            parts.events.released(id, tenant);
        }
        for (id, processed) in &self.completed {
            parts.events.completed(id, *processed);
        }
        for id in &self.finished_deliveries {
            parts.deliveries.finished(id);
        }
        parts.deliveries.ready.notify_one();
    }
}

/// Commits `ops` in one transaction. On failure nothing of it was stored, the reservations
/// are given back and the ops are left as they were, so the caller can retry them.
async fn commit(parts: &WriterParts, conn: &mut WriterConnection, ops: &mut [Op]) -> Result<Committed> {
    // Reserve memory slots first: a row that got one is stored leased.
    let now = now_ms();
    let lease_until = now + LEASE.as_millis() as i64;
    let mut event_slots = Vec::new();
    let mut delivery_slots = Vec::new();
    for op in ops.iter() {
        match op {
            Op::Ingest { event, .. } => {
                event_slots.push(parts.events.reserve(&event.tenant_id, event.event.data.len()));
            }
            Op::Complete(c) => {
                for d in &c.deliveries {
                    // Only a delivery due now goes to memory; a later one waits for the poll.
                    delivery_slots.push(d.not_before <= now && parts.deliveries.reserve(&d.tenant_id, d.body.len()));
                }
            }
            _ => {}
        }
    }
    match write(parts, conn, ops, &event_slots, &delivery_slots, now, lease_until).await {
        Ok(done) => Ok(done),
        Err(e) => {
            let mut slots = event_slots.iter();
            let mut dslots = delivery_slots.iter();
            for op in ops.iter() {
                match op {
                    Op::Ingest { event, .. } if *slots.next().expect("one per ingest") => {
                        parts.events.unreserve(&event.tenant_id, event.event.data.len());
                    }
                    Op::Complete(c) => {
                        for d in &c.deliveries {
                            if *dslots.next().expect("one per delivery") {
                                parts.deliveries.unreserve(&d.tenant_id, d.body.len());
                            }
                        }
                    }
                    _ => {}
                }
            }
            Err(e)
        }
    }
}

async fn write(
    parts: &WriterParts,
    conn: &mut WriterConnection,
    ops: &mut [Op],
    event_slots: &[bool],
    delivery_slots: &[bool],
    now: i64,
    lease_until: i64,
) -> Result<Committed> {
    let mut tx = conn.get(&parts.store).await?.begin().await?;
    let mut done = Committed::default();

    // Ingest: one multi-row insert.
    let lease = super::Lease { until: lease_until, owner: parts.store.node() };
    let ingests: Vec<(&NewEvent, Option<super::Lease<'_>>)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Ingest { event, .. } => Some(event),
            _ => None,
        })
        .zip(event_slots)
        .map(|(e, slot)| (e, slot.then_some(lease)))
        .collect();
    let outcomes = super::events::insert_batch(&mut tx, &ingests, now).await?;

    // kv: after ingest, before completions (an event's writes commit with or before it).
    let kv: Vec<(&TenantId, &HashMap<String, Option<String>>)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Kv { tenant, writes, .. } => Some((tenant, writes)),
            _ => None,
        })
        .collect();
    super::kv::apply_batch(&mut tx, &kv, now).await?;
    let mut kv_tenants: Vec<&TenantId> = kv.iter().map(|(t, _)| *t).collect();
    kv_tenants.sort();
    kv_tenants.dedup();
    done.kv_usage = super::kv::usage_of(&mut tx, &kv_tenants).await?;

    // Completions: events out of `pending`, route results, outbox rows.
    let completions: Vec<&Completion> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Complete(c) => Some(c),
            _ => None,
        })
        .collect();
    let mut dslots = delivery_slots.iter();
    let leases: Vec<Vec<Option<super::Lease<'_>>>> = completions
        .iter()
        .map(|c| c.deliveries.iter().map(|_| dslots.next().expect("one per delivery").then_some(lease)).collect())
        .collect();
    let claimed = super::events::complete_batch(&mut tx, &completions, &leases, now).await?;

    // Attempts, deferrals and dead letters.
    let attempts: Vec<&AttemptDone> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Attempt(a) => Some(a),
            _ => None,
        })
        .collect();
    super::deliveries::record_attempts(&mut tx, &attempts, now).await?;
    for op in ops.iter() {
        match op {
            Op::Defer { delivery, at } => super::deliveries::defer(&mut tx, delivery, *at).await?,
            Op::DeadLetter { delivery, reason } => {
                super::deliveries::dead_letter(&mut tx, delivery, reason, now).await?
            }
            Op::Retry(r) => super::events::retry(&mut tx, &r.event, r.at, &r.error).await?,
            _ => {}
        }
    }
    tx.commit().await?;

    // Everything below happens only after the commit.
    let mut outcomes = outcomes.into_iter();
    let mut slots = event_slots.iter();
    let mut dslots = delivery_slots.iter();
    for op in ops.iter_mut() {
        match op {
            Op::Ingest { event, reply } => {
                let outcome = outcomes.next().expect("one outcome per event");
                let slot = *slots.next().expect("one slot per event");
                match &outcome {
                    InsertOutcome::Stored(_) if slot => done.events.push(EventRow::stored(event, now)),
                    InsertOutcome::Stored(_) => done.unheld_events.push(event.tenant_id.clone()),
                    InsertOutcome::Duplicate(_) if slot => {
                        done.unreserve.push((event.tenant_id.clone(), event.event.data.len()));
                    }
                    InsertOutcome::Duplicate(_) => {}
                }
                if let Some(reply) = reply.take() {
                    done.replies.push((reply, outcome));
                }
            }
            Op::Kv { tenant, writes, seq, reserved } => {
                done.kv_committed.push((tenant.clone(), writes.keys().cloned().collect(), *seq));
                done.kv_reserved.push(std::mem::replace(reserved, parts.store.kv_reservation(tenant)));
            }
            Op::Complete(c) => {
                let moved = claimed.contains(&c.event);
                for d in &c.deliveries {
                    let slot = *dslots.next().expect("one per delivery");
                    match (slot, moved) {
                        (true, true) => done.deliveries.push(d.to_job()),
                        (true, false) => done.unreserve_deliveries.push((d.tenant_id.clone(), d.body.len())),
                        (false, true) => done.unheld_deliveries = true,
                        (false, false) => {}
                    }
                }
                done.completed.push((c.event.clone(), moved));
            }
            Op::Attempt(a) => done.finished_deliveries.push(a.delivery.clone()),
            Op::Defer { delivery, .. } | Op::DeadLetter { delivery, .. } => {
                done.finished_deliveries.push(delivery.clone())
            }
            Op::Retry(r) => done.released.push((r.event.clone(), r.tenant.clone())),
        }
    }
    Ok(done)
}

/// An op that failed on its own, too. Ingest answers the error (nothing was stored). A
/// completion's event is released to the poll, to be processed again. An attempt's
/// delivery is left leased until its node stops (or the lease's `LEASE` runs out), when it is
/// attempted again (at-least-once);
/// kv writes are dropped with the error logged, as a failed call's would be.
async fn give_up(parts: &WriterParts, op: Op, e: &StoreError) {
    match op {
        Op::Ingest { reply, .. } => {
            if let Some(reply) = reply {
                let _ = reply.send(Err(StoreError::Batch(e.to_string())));
            }
        }
        // Dropping the op gives its quota reservation back.
        Op::Kv { tenant, writes, seq, .. } => {
            parts.store.kv_overlay_committed(&tenant, &writes.keys().cloned().collect::<Vec<_>>(), seq);
        }
        Op::Complete(Completion { event, tenant, .. }) | Op::Retry(EventRetry { event, tenant, .. }) => {
            if let Err(e) = parts.store.release_event(&event).await {
                tracing::error!(event = %event, "releasing the event to the poll: {e}");
            }
            parts.events.released(&event, &tenant);
        }
        Op::Attempt(AttemptDone { delivery, .. }) | Op::Defer { delivery, .. } | Op::DeadLetter { delivery, .. } => {
            parts.deliveries.finished(&delivery)
        }
    }
}
