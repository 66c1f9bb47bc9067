-- The delivery poll takes tenants in turn (every tenant's oldest due delivery first, then
-- every tenant's second, ...), so one tenant's backlog of due retries cannot fill a batch:
-- one index seek per tenant reads only the heads it needs.
CREATE INDEX deliveries_ready_by_tenant ON deliveries (tenant_id, next_attempt_at)
    WHERE status = 'pending' AND lease_until IS NULL;

-- An event whose processing hit a transient fault (no free plugin instance, a storage error
-- in a host call, a plugin's `retryable` error) stays pending and is tried again at
-- `retry_at`; `tries` counts those runs, `last_error` says why it is waiting.
ALTER TABLE events ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN retry_at INTEGER;
ALTER TABLE events ADD COLUMN last_error TEXT;
