-- The in-memory hot path. An event or delivery that the router holds in memory (handed over
-- by the writer right after the commit that stored it) carries a lease; the database polls
-- only read rows without one. Those are what memory did not hold: the overflow of a full
-- queue, retries that fell due, and everything left over from before a restart (start-up
-- releases every lease: the SQLite router is a single process).
ALTER TABLE events ADD COLUMN lease_until INTEGER;

DROP INDEX events_pending_by_tenant;
CREATE INDEX events_ready_by_tenant ON events (tenant_id, received_at, id)
    WHERE status = 'pending' AND lease_until IS NULL;
-- Counting each tenant's backlog at start-up, and releasing leases.
CREATE INDEX events_leased ON events (lease_until) WHERE lease_until IS NOT NULL;

DROP INDEX deliveries_due;
CREATE INDEX deliveries_ready ON deliveries (next_attempt_at) WHERE status = 'pending' AND lease_until IS NULL;
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE lease_until IS NOT NULL;
