-- Switchyard schema (PostgreSQL): the same tables, columns, constraints and indexes as the
-- SQLite migrations 0001-0012 together (host/migrations/sqlite), in one step, because no
-- PostgreSQL database predates it. From here on every schema change is a migration in both
-- folders with the same number and meaning; `store::tests::schema` compares the two.
-- Times are unix milliseconds (BIGINT) unless named otherwise; JSON is kept as TEXT, as in
-- SQLite, so both backends store and return the same bytes.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE sources (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    format      TEXT NOT NULL,
    secret      TEXT,
    created_at  BIGINT NOT NULL,
    auth        TEXT,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE plugins (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    wasm        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    world       TEXT NOT NULL DEFAULT 'switchyard:plugin/plugin@0.1.0',
    imports     TEXT NOT NULL DEFAULT '[]',
    UNIQUE (tenant_id, name, version)
);
CREATE INDEX plugins_by_sha ON plugins (sha256);

CREATE TABLE route_sets (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    document    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    origin      TEXT NOT NULL DEFAULT 'api',
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE events (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    source         TEXT NOT NULL,
    upstream_id    TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    time           TEXT NOT NULL,
    subject        TEXT,
    data           TEXT NOT NULL,
    raw            BYTEA NOT NULL,
    received_at    BIGINT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'processed')),
    processed_at   BIGINT,
    route_version  BIGINT,
    lease_until    BIGINT,
    tries          BIGINT NOT NULL DEFAULT 0,
    retry_at       BIGINT,
    last_error     TEXT,
    traceparent    TEXT,
    UNIQUE (tenant_id, source, upstream_id)
);
CREATE INDEX events_pending ON events (received_at) WHERE status = 'pending';
CREATE INDEX events_ready_by_tenant ON events (tenant_id, received_at, id)
    WHERE status = 'pending' AND lease_until IS NULL;
CREATE INDEX events_leased ON events (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX events_by_tenant ON events (tenant_id, received_at, id);
CREATE INDEX events_by_type ON events (tenant_id, event_type, received_at, id);
CREATE INDEX events_pending_page ON events (tenant_id, received_at, id) WHERE status = 'pending';

CREATE TABLE route_results (
    event_id    TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    route       TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('emitted', 'dropped', 'failed')),
    detail      TEXT,
    outputs     BIGINT NOT NULL,
    PRIMARY KEY (event_id, route)
);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    route            TEXT NOT NULL,
    url              TEXT NOT NULL,
    secret           TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    body             BYTEA NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    tries            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    superseded_at    BIGINT,
    traceparent      TEXT
);
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_dead ON deliveries (tenant_id, updated_at) WHERE status = 'dead';
CREATE INDEX deliveries_ready ON deliveries (next_attempt_at) WHERE status = 'pending' AND lease_until IS NULL;
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX deliveries_ready_by_tenant ON deliveries (tenant_id, next_attempt_at)
    WHERE status = 'pending' AND lease_until IS NULL;
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, created_at, id);
CREATE INDEX deliveries_by_route ON deliveries (tenant_id, route, created_at, id);
CREATE INDEX deliveries_dead_page ON deliveries (tenant_id, created_at, id) WHERE status = 'dead';

CREATE TABLE attempts (
    delivery_id       TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt           BIGINT NOT NULL,
    started_at        BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    status_code       BIGINT,
    error             TEXT,
    response_snippet  TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE kv (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE destinations (
    tenant_id              TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url                    TEXT NOT NULL,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  BIGINT,
    retry_schedule         TEXT,
    timeout_ms             BIGINT,
    max_in_flight          BIGINT,
    failing_since          BIGINT,
    disabled_at            BIGINT,
    disabled_reason        TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, url)
);

-- Each tenant's kv footprint, kept by triggers in the same transaction as the change, so
-- quotas read one row and every node sees the same count.
CREATE TABLE kv_usage (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    keys       BIGINT NOT NULL,
    bytes      BIGINT NOT NULL
);

CREATE FUNCTION kv_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO kv_usage (tenant_id, keys, bytes)
            VALUES (NEW.tenant_id, 1, octet_length(NEW.key) + octet_length(NEW.value))
            ON CONFLICT (tenant_id) DO UPDATE
            SET keys = kv_usage.keys + 1, bytes = kv_usage.bytes + excluded.bytes;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE kv_usage SET bytes = bytes + octet_length(NEW.value) - octet_length(OLD.value)
            WHERE tenant_id = NEW.tenant_id;
    ELSE
        UPDATE kv_usage
            SET keys = keys - 1, bytes = bytes - octet_length(OLD.key) - octet_length(OLD.value)
            WHERE tenant_id = OLD.tenant_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER kv_usage_insert AFTER INSERT ON kv FOR EACH ROW EXECUTE FUNCTION kv_usage_track();
CREATE TRIGGER kv_usage_update AFTER UPDATE OF value ON kv FOR EACH ROW EXECUTE FUNCTION kv_usage_track();
CREATE TRIGGER kv_usage_delete AFTER DELETE ON kv FOR EACH ROW EXECUTE FUNCTION kv_usage_track();
