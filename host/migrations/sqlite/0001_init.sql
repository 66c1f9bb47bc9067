-- Switchyard schema (SQLite). Times are unix milliseconds unless named otherwise.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- Where a tenant's events come in, and in which envelope.
CREATE TABLE sources (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    format      TEXT NOT NULL,
    secret      TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Immutable plugin versions. The component bytes are kept so artifacts can be rebuilt
-- when the engine changes.
CREATE TABLE plugins (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    wasm        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name, version)
);

-- Each apply of a tenant's routes is a new version; the highest is live.
CREATE TABLE route_sets (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    document    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- Accepted inbound events. Written before the 202; `pending` until routed.
CREATE TABLE events (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    source         TEXT NOT NULL,
    upstream_id    TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    time           TEXT NOT NULL,
    subject        TEXT,
    data           TEXT NOT NULL,
    raw            BLOB NOT NULL,
    received_at    INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'processed')),
    processed_at   INTEGER,
    route_version  INTEGER,
    UNIQUE (tenant_id, source, upstream_id)
);
CREATE INDEX events_pending ON events (received_at) WHERE status = 'pending';
CREATE INDEX events_by_tenant ON events (tenant_id, received_at);

-- What each matching route did with an event: emitted N outputs, dropped, or failed.
CREATE TABLE route_results (
    event_id    TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    route       TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('emitted', 'dropped', 'failed')),
    detail      TEXT,
    outputs     INTEGER NOT NULL,
    PRIMARY KEY (event_id, route)
);

-- The outbox: one row per output event and destination. `id` is the webhook-id.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    route            TEXT NOT NULL,
    url              TEXT NOT NULL,
    secret           TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    body             BLOB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    tries            INTEGER NOT NULL DEFAULT 0,   -- attempts since creation or last replay
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, created_at);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE attempts (
    delivery_id       TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    duration_ms       INTEGER NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_snippet  TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

-- The per-tenant key-value store plugins reach through the `kv` capability.
CREATE TABLE kv (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
