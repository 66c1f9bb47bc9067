-- Destinations as the router keeps them between route versions: the current signing secret
-- (and the previous one during a rotation's grace period), per-destination delivery settings,
-- and health: failing since when, disabled since when and why.
CREATE TABLE destinations (
    tenant_id              TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url                    TEXT NOT NULL,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  INTEGER,
    retry_schedule         TEXT,      -- JSON array of milliseconds; NULL: delivery.retry_schedule
    timeout_ms             INTEGER,   -- NULL: delivery.timeout
    max_in_flight          INTEGER,   -- NULL: delivery.max_in_flight_per_destination
    failing_since          INTEGER,
    disabled_at            INTEGER,
    disabled_reason        TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, url)
);
CREATE INDEX deliveries_dead ON deliveries (tenant_id, updated_at) WHERE status = 'dead';
