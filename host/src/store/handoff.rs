//! The in-memory hot path: what the writer hands to the workers right after the commit that
//! stored it, so the pipeline and the delivery worker do not read their work back from the
//! database.
//!
//! Both queues are bounded. Room is *reserved* before the commit: a row that got a slot is
//! stored with a lease (so the database polls leave it alone) and handed over after the
//! commit; a row that did not is stored without one and is picked up by the poll once there
//! is room. Either way it was durable first, so a crash between the commit and the handoff
//! loses nothing: the lease ends with the process (at start-up on SQLite, when its heartbeat
//! goes stale with several nodes) and a poll finds the row.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::Notify;

use super::{DeliveryJob, EventRow};
use crate::event::{DeliveryId, EventId, TenantId};

/// Bounds of the event queue.
#[derive(Debug, Clone, Copy)]
pub struct EventQueueLimits {
    /// Events of one tenant held in memory (queued or being processed).
    pub per_tenant: usize,
    /// Bytes of event data held in memory, all tenants together.
    pub total_bytes: usize,
}

/// Pending events in memory, one FIFO per tenant, plus each tenant's durable backlog count.
pub struct EventQueue {
    limits: EventQueueLimits,
    inner: Mutex<EventQueueInner>,
    /// Signalled when an event was queued or a slot freed.
    pub ready: Notify,
}

#[derive(Default)]
struct EventQueueInner {
    queues: HashMap<TenantId, VecDeque<EventRow>>,
    /// Tenants with queued events, in turn order.
    turns: VecDeque<TenantId>,
    /// Slots taken per tenant: reserved, queued or being processed, until the completion commits.
    slots: HashMap<TenantId, usize>,
    bytes: usize,
    /// Every event that holds a slot, and its size.
    held: HashMap<EventId, (TenantId, usize)>,
    /// Reserved slots not yet filled (the commit is under way), by tenant: (count, bytes).
    reserved: HashMap<TenantId, (usize, usize)>,
    /// Tenants with events stored without a slot: the poll has work for them.
    overflowed: HashSet<TenantId>,
    /// Pending events per tenant in the database (the backlog ingest is bounded by).
    backlog: HashMap<TenantId, u64>,
}

impl EventQueue {
    pub fn new(limits: EventQueueLimits) -> Self {
        Self { limits, inner: Mutex::default(), ready: Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EventQueueInner> {
        self.inner.lock().expect("not poisoned")
    }

    /// Reserves a slot for a new event of `tenant` of `bytes`. False when memory is full: the
    /// event is then stored unleased, and once it is committed the writer calls
    /// `mark_overflow` so the poll takes it. (Marked after the commit, not here: a poll in
    /// between would find nothing yet and clear the mark.)
    pub fn reserve(&self, tenant: &TenantId, bytes: usize) -> bool {
        let mut q = self.lock();
        let slots = q.slots.get(tenant).copied().unwrap_or(0);
        if slots >= self.limits.per_tenant || q.bytes + bytes > self.limits.total_bytes {
            return false;
        }
        *q.slots.entry(tenant.clone()).or_default() += 1;
        q.bytes += bytes;
        let r = q.reserved.entry(tenant.clone()).or_default();
        r.0 += 1;
        r.1 += bytes;
        true
    }

    /// Gives back a reservation whose event was not stored (the commit failed, or it was a
    /// duplicate).
    pub fn unreserve(&self, tenant: &TenantId, bytes: usize) {
        let mut q = self.lock();
        Self::take_reservation(&mut q, tenant, bytes);
        Self::free_slot(&mut q, tenant, bytes);
        drop(q);
        self.ready.notify_one();
    }

    fn take_reservation(q: &mut EventQueueInner, tenant: &TenantId, bytes: usize) {
        if let Some(r) = q.reserved.get_mut(tenant) {
            r.0 = r.0.saturating_sub(1);
            r.1 = r.1.saturating_sub(bytes);
            if r.0 == 0 {
                q.reserved.remove(tenant);
            }
        }
    }

    fn free_slot(q: &mut EventQueueInner, tenant: &TenantId, bytes: usize) {
        q.bytes = q.bytes.saturating_sub(bytes);
        if let Some(n) = q.slots.get_mut(tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                q.slots.remove(tenant);
            }
        }
    }

    /// Queues a stored event into the slot reserved for it.
    pub fn push_reserved(&self, row: EventRow) {
        let bytes = row.data.len();
        let mut q = self.lock();
        Self::take_reservation(&mut q, &row.tenant_id, bytes);
        q.held.insert(row.id.clone(), (row.tenant_id.clone(), bytes));
        Self::enqueue(&mut q, row);
        drop(q);
        self.ready.notify_one();
    }

    fn enqueue(q: &mut EventQueueInner, row: EventRow) {
        let queue = q.queues.entry(row.tenant_id.clone()).or_default();
        if queue.is_empty() {
            q.turns.push_back(row.tenant_id.clone());
        }
        queue.push_back(row);
    }

    /// Queues events the poll claimed from the database. An event already held (its lease
    /// ran out while it waited here) is not queued twice. These may take a tenant past its
    /// bound by one poll's batch: they are leased already.
    pub fn push_polled(&self, rows: Vec<EventRow>) -> usize {
        let mut q = self.lock();
        let mut added = 0;
        for row in rows {
            if q.held.contains_key(&row.id) {
                continue;
            }
            let bytes = row.data.len();
            *q.slots.entry(row.tenant_id.clone()).or_default() += 1;
            q.bytes += bytes;
            q.held.insert(row.id.clone(), (row.tenant_id.clone(), bytes));
            Self::enqueue(&mut q, row);
            added += 1;
        }
        drop(q);
        if added > 0 {
            self.ready.notify_one();
        }
        added
    }

    /// The next event to process, taking tenants in turn and skipping those `may_start`
    /// refuses (at their in-flight cap, or throttled).
    pub fn next(&self, mut may_start: impl FnMut(&TenantId) -> bool) -> Option<EventRow> {
        let mut q = self.lock();
        for _ in 0..q.turns.len() {
            let tenant = q.turns.pop_front()?;
            if !may_start(&tenant) {
                q.turns.push_back(tenant);
                continue;
            }
            let Some(queue) = q.queues.get_mut(&tenant) else { continue };
            let row = queue.pop_front();
            if queue.is_empty() {
                q.queues.remove(&tenant);
            } else {
                q.turns.push_back(tenant);
            }
            if row.is_some() {
                return row;
            }
        }
        None
    }

    /// The event's completion is durable (or was given up on): its slot is free.
    pub fn completed(&self, id: &EventId, processed: bool) {
        let mut q = self.lock();
        if let Some((tenant, bytes)) = q.held.remove(id) {
            Self::free_slot(&mut q, &tenant, bytes);
            if processed && let Some(n) = q.backlog.get_mut(&tenant) {
                *n = n.saturating_sub(1);
            }
        }
        drop(q);
        self.ready.notify_one();
    }

    /// An event could not be completed and was released to the poll.
    pub fn released(&self, id: &EventId, tenant: &TenantId) {
        self.completed(id, false);
        self.mark_overflow(tenant);
    }

    /// Events of `tenant` are committed that memory does not hold: the poll has work.
    pub fn mark_overflow(&self, tenant: &TenantId) {
        self.lock().overflowed.insert(tenant.clone());
        self.ready.notify_one();
    }

    /// Whether the poll has work: a tenant has events only the database holds, and room for
    /// a good part of them (so the poll reads in batches, not one event at a time).
    pub fn wants_poll(&self) -> bool {
        let q = self.lock();
        q.overflowed.iter().any(|t| q.slots.get(t).copied().unwrap_or(0) <= self.limits.per_tenant / 2)
            && q.bytes <= self.limits.total_bytes / 2
    }

    /// The poll read every ready event of the tenants not in `skipped` (`complete`), or hit
    /// its batch limit, so the tenants it read (`seen`) may have more.
    pub fn polled(&self, skipped: &[TenantId], complete: bool, seen: &[TenantId]) {
        let mut q = self.lock();
        if complete {
            q.overflowed.retain(|t| skipped.contains(t));
        } else {
            q.overflowed.extend(seen.iter().cloned());
        }
    }

    /// Tenants with no room left, which the poll should not load more events for.
    pub fn full_tenants(&self) -> Vec<TenantId> {
        let q = self.lock();
        q.slots.iter().filter(|(_, n)| **n >= self.limits.per_tenant).map(|(t, _)| t.clone()).collect()
    }

    /// Counts one more event into `tenant`'s backlog unless it already holds `limit` (then
    /// false: ingest refuses). Counted before the event is stored, so concurrent requests
    /// cannot all pass the check at once; `unadmit` takes it back if nothing was stored.
    pub fn admit(&self, tenant: &TenantId, limit: u64) -> bool {
        let mut q = self.lock();
        let n = q.backlog.entry(tenant.clone()).or_default();
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    /// An admitted event was not stored (a duplicate, or the commit failed).
    pub fn unadmit(&self, tenant: &TenantId) {
        if let Some(n) = self.lock().backlog.get_mut(tenant) {
            *n = n.saturating_sub(1);
        }
    }

    /// Pending events of `tenant` in the database (and admitted, about to be).
    pub fn backlog(&self, tenant: &TenantId) -> u64 {
        self.lock().backlog.get(tenant).copied().unwrap_or(0)
    }

    /// Sets each tenant's backlog from the database, at start-up.
    pub fn set_backlog(&self, counts: impl IntoIterator<Item = (TenantId, u64)>) {
        self.lock().backlog = counts.into_iter().collect();
    }

    /// Events queued in memory and not yet started, and slots held, for tests and metrics.
    pub fn sizes(&self) -> (usize, usize) {
        let q = self.lock();
        (q.queues.values().map(VecDeque::len).sum(), q.held.len())
    }
}

/// Bounds of the delivery queue.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryQueueLimits {
    /// Deliveries held in memory (queued or being attempted).
    pub max_jobs: usize,
    /// Bytes of delivery bodies held in memory.
    pub max_bytes: usize,
    /// Deliveries of one tenant held in memory: a tenant whose receivers are slow cannot fill
    /// memory with its backlog and leave other tenants' new deliveries to the poll.
    pub per_tenant: usize,
}

/// Deliveries ready for an attempt, in memory: one FIFO per tenant, tenants taking turns.
pub struct DeliveryQueue {
    limits: DeliveryQueueLimits,
    inner: Mutex<DeliveryQueueInner>,
    /// Signalled when a delivery was queued or a slot freed.
    pub ready: Notify,
}

#[derive(Default)]
struct DeliveryQueueInner {
    queues: HashMap<TenantId, VecDeque<DeliveryJob>>,
    /// Tenants with queued deliveries, in turn order: the one served last goes to the back.
    turns: VecDeque<TenantId>,
    /// Deliveries in memory (queued or being attempted): whose, and their body sizes.
    held: HashMap<DeliveryId, (TenantId, usize)>,
    /// Room taken: held deliveries plus reservations whose commit is under way, in all and
    /// per tenant.
    jobs: usize,
    bytes: usize,
    per_tenant: HashMap<TenantId, usize>,
    /// Deliveries were stored that memory could not take: the poll has work.
    overflowed: bool,
}

impl DeliveryQueueInner {
    fn take_room(&mut self, tenant: &TenantId, bytes: usize) {
        self.jobs += 1;
        self.bytes += bytes;
        *self.per_tenant.entry(tenant.clone()).or_default() += 1;
    }

    fn free_room(&mut self, tenant: &TenantId, bytes: usize) {
        self.jobs = self.jobs.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
        if let Some(n) = self.per_tenant.get_mut(tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_tenant.remove(tenant);
            }
        }
    }

    fn enqueue(&mut self, job: DeliveryJob) {
        let queue = self.queues.entry(job.tenant_id.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(job.tenant_id.clone());
        }
        queue.push_back(job);
    }
}

/// How far into one tenant's queue `next` looks for a delivery it may start: bounded, so a
/// long queue for one busy destination costs each pass little.
const LOOKAHEAD: usize = 256;

impl DeliveryQueue {
    pub fn new(limits: DeliveryQueueLimits) -> Self {
        Self { limits, inner: Mutex::default(), ready: Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DeliveryQueueInner> {
        self.inner.lock().expect("not poisoned")
    }

    /// Reserves room for a delivery of `tenant` of `bytes`; false when memory (or the
    /// tenant's share of it) is full: it is then stored unleased, and once committed the
    /// writer calls `mark_overflow`.
    pub fn reserve(&self, tenant: &TenantId, bytes: usize) -> bool {
        let mut q = self.lock();
        let tenant_full = q.per_tenant.get(tenant).is_some_and(|n| *n >= self.limits.per_tenant);
        if tenant_full || q.jobs >= self.limits.max_jobs || q.bytes + bytes > self.limits.max_bytes {
            return false;
        }
        q.take_room(tenant, bytes);
        true
    }

    pub fn unreserve(&self, tenant: &TenantId, bytes: usize) {
        self.lock().free_room(tenant, bytes);
    }

    /// Queues a stored delivery into its reserved room.
    pub fn push_reserved(&self, job: DeliveryJob) {
        let mut q = self.lock();
        q.held.insert(job.id.clone(), (job.tenant_id.clone(), job.body.len()));
        q.enqueue(job);
        drop(q);
        self.ready.notify_one();
    }

    /// Queues deliveries the poll claimed (already leased). Returns how many were new.
    pub fn push_polled(&self, jobs: Vec<DeliveryJob>) -> usize {
        let mut q = self.lock();
        let mut added = 0;
        for job in jobs {
            if q.held.insert(job.id.clone(), (job.tenant_id.clone(), job.body.len())).is_some() {
                continue;
            }
            q.take_room(&job.tenant_id, job.body.len());
            q.enqueue(job);
            added += 1;
        }
        drop(q);
        if added > 0 {
            self.ready.notify_one();
        }
        added
    }

    /// The next delivery to start, with what `admit` said of it. Tenants take turns, and one
    /// that `tenant_may_start` refuses (at its in-flight cap) is passed over; within a
    /// tenant, the first of its oldest `LOOKAHEAD` deliveries that `admit` accepts, so a
    /// destination at its in-flight limit does not hold up the tenant's others.
    pub fn next<T>(
        &self,
        mut tenant_may_start: impl FnMut(&TenantId) -> bool,
        mut admit: impl FnMut(&DeliveryJob) -> Option<T>,
    ) -> Option<(DeliveryJob, T)> {
        let mut q = self.lock();
        for turn in 0..q.turns.len() {
            let tenant = q.turns[turn].clone();
            if !tenant_may_start(&tenant) {
                continue;
            }
            let queue = q.queues.get_mut(&tenant).expect("a tenant in turn has a queue");
            let found = queue.iter().take(LOOKAHEAD).enumerate().find_map(|(i, job)| admit(job).map(|a| (i, a)));
            let Some((i, admission)) = found else { continue };
            let job = queue.remove(i).expect("index in range");
            let emptied = queue.is_empty();
            q.turns.remove(turn);
            if emptied {
                q.queues.remove(&tenant);
            } else {
                q.turns.push_back(tenant);
            }
            return Some((job, admission));
        }
        None
    }

    /// The delivery's attempt (or deferral) is recorded: its room is free.
    pub fn finished(&self, id: &DeliveryId) {
        let mut q = self.lock();
        if let Some((tenant, bytes)) = q.held.remove(id) {
            q.free_room(&tenant, bytes);
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Whether deliveries were stored that memory could not take, and there is room for a
    /// good part of a poll's batch.
    pub fn wants_poll(&self) -> bool {
        let q = self.lock();
        q.overflowed && q.jobs <= self.limits.max_jobs / 2 && q.bytes <= self.limits.max_bytes / 2
    }

    /// The poll found every due delivery (`complete`), or may have left some.
    pub fn polled(&self, complete: bool) {
        self.lock().overflowed = !complete;
    }

    /// A delivery is committed that memory does not hold (not due yet, or no room): the
    /// poll has work, now or when it falls due.
    pub fn mark_overflow(&self) {
        self.lock().overflowed = true;
        self.ready.notify_one();
    }

    /// Room for polled deliveries.
    pub fn room(&self) -> usize {
        let q = self.lock();
        self.limits.max_jobs.saturating_sub(q.jobs)
    }

    /// Tenants holding their whole share of memory: the poll leaves their deliveries alone.
    pub fn full_tenants(&self) -> Vec<TenantId> {
        let q = self.lock();
        q.per_tenant.iter().filter(|(_, n)| **n >= self.limits.per_tenant).map(|(t, _)| t.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tenant: &TenantId, bytes: usize) -> EventRow {
        EventRow {
            id: EventId::generate(),
            tenant_id: tenant.clone(),
            tenant: "t".into(),
            source: "s".into(),
            upstream_id: "u".into(),
            event_type: "e".into(),
            time: "2026-01-01T00:00:00Z".into(),
            subject: None,
            data: "x".repeat(bytes),
            status: crate::store::EventStatus::Pending,
            received_at: 0,
            processed_at: None,
            route_version: None,
            tries: 0,
            last_error: None,
            traceparent: None,
        }
    }

    #[test]
    fn event_slots_are_bounded_per_tenant_and_in_bytes_until_completion() {
        let q = EventQueue::new(EventQueueLimits { per_tenant: 2, total_bytes: 100 });
        let (a, b) = (TenantId::generate(), TenantId::generate());
        assert!(q.reserve(&a, 10) && q.reserve(&a, 10));
        assert!(!q.reserve(&a, 10), "a tenant's third event waits in the database");
        assert!(q.reserve(&b, 10), "other tenants are not held up");
        assert!(!q.reserve(&b, 90), "nor is memory over its byte bound");
        assert!(!q.wants_poll(), "nothing is marked before a commit");
        q.mark_overflow(&a); // as the writer does once the refused event is committed
        assert!(!q.wants_poll(), "a has no room yet");
        let first = row(&a, 10);
        q.push_reserved(first.clone());
        q.unreserve(&a, 10);
        assert!(q.wants_poll(), "a now has room for what overflowed");
        assert_eq!(q.next(|_| true).map(|r| r.id), Some(first.id.clone()));
        assert!(q.reserve(&a, 10), "one slot left");
        assert!(!q.reserve(&a, 10), "out of the queue but not completed, the event still holds its slot");
        q.completed(&first.id, true);
        assert!(q.reserve(&a, 10), "its completion frees it");
        assert_eq!(q.sizes(), (0, 0));
    }

    #[test]
    fn tenants_take_turns_and_a_blocked_tenant_is_skipped() {
        let q = EventQueue::new(EventQueueLimits { per_tenant: 10, total_bytes: 1 << 20 });
        let (a, b) = (TenantId::generate(), TenantId::generate());
        let rows: Vec<EventRow> = [&a, &a, &a, &b].iter().map(|t| row(t, 1)).collect();
        assert_eq!(q.push_polled(rows.clone()), 4);
        assert_eq!(q.push_polled(rows[..1].to_vec()), 0, "an event held already is not queued twice");
        let order: Vec<bool> = std::iter::from_fn(|| q.next(|_| true)).map(|r| r.tenant_id == a).collect();
        assert_eq!(order, [true, false, true, true], "a, b, then a's rest");
        q.push_polled(vec![row(&a, 1), row(&b, 1)]);
        let next = q.next(|t| *t != a).unwrap();
        assert_eq!(next.tenant_id, b, "a tenant at its cap is passed over");
        assert!(q.next(|t| *t != a).is_none());
        assert_eq!(q.next(|_| true).unwrap().tenant_id, a, "and keeps its turn");
    }

    #[test]
    fn the_backlog_admits_up_to_its_limit() {
        let q = EventQueue::new(EventQueueLimits { per_tenant: 1, total_bytes: 1 });
        let t = TenantId::generate();
        q.set_backlog([(t.clone(), 1)]);
        assert!(q.admit(&t, 2));
        assert!(!q.admit(&t, 2), "two pending: refused");
        q.unadmit(&t);
        assert!(q.admit(&t, 2), "a duplicate gave its place back");
        let e = row(&t, 0);
        q.push_polled(vec![e.clone()]);
        q.completed(&e.id, true);
        assert_eq!(q.backlog(&t), 1, "a completion commits one off the backlog");
    }

    fn job(tenant: &TenantId, url: &str) -> DeliveryJob {
        DeliveryJob {
            id: DeliveryId::generate(),
            tenant_id: tenant.clone(),
            event_id: crate::event::EventId::generate(),
            url: url.into(),
            secret: String::new(),
            event_type: String::new(),
            content_type: String::new(),
            body: vec![0; 10],
            attempts: 0,
            tries: 0,
            traceparent: None,
        }
    }

    #[test]
    fn a_busy_destination_does_not_hold_up_the_queue() {
        let q = DeliveryQueue::new(DeliveryQueueLimits { max_jobs: 3, max_bytes: 1 << 20, per_tenant: 3 });
        let t = TenantId::generate();
        assert!(q.reserve(&t, 10) && q.reserve(&t, 10) && q.reserve(&t, 10));
        assert!(!q.reserve(&t, 10), "full: the next one is stored for the poll");
        q.mark_overflow();
        assert!(!q.wants_poll(), "no room to poll into yet");
        for url in ["busy", "busy", "free"] {
            q.push_reserved(job(&t, url));
        }
        let (taken, ()) = q.next(|_| true, |j| (j.url != "busy").then_some(())).unwrap();
        assert_eq!(taken.url, "free");
        q.finished(&taken.id);
        assert_eq!(q.room(), 1);
    }

    #[test]
    fn tenants_take_turns_for_deliveries_within_their_share() {
        let q = DeliveryQueue::new(DeliveryQueueLimits { max_jobs: 100, max_bytes: 1 << 20, per_tenant: 3 });
        let (slow, fast) = (TenantId::generate(), TenantId::generate());
        for _ in 0..3 {
            assert!(q.reserve(&slow, 10));
            q.push_reserved(job(&slow, "slow"));
        }
        assert!(!q.reserve(&slow, 10), "the slow tenant's share is full");
        assert_eq!(q.full_tenants(), vec![slow.clone()]);
        assert!(q.reserve(&fast, 10), "another tenant still has room");
        q.push_reserved(job(&fast, "fast"));
        // Queued behind three of the slow tenant's, the fast one goes second.
        let order: Vec<String> =
            std::iter::from_fn(|| q.next(|_| true, |_| Some(())).map(|(j, ())| j.url)).take(2).collect();
        assert_eq!(order, ["slow", "fast"]);
        // A tenant at its in-flight cap is passed over.
        q.push_polled(vec![job(&fast, "fast")]);
        let (j, ()) = q.next(|t| *t != slow, |_| Some(())).unwrap();
        assert_eq!(j.url, "fast");
        assert!(q.next(|t| *t != slow, |_| Some(())).is_none());
    }
}
