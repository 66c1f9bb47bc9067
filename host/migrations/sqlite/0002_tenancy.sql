-- Tenant API keys, plugin version metadata, and where each route version came from.

-- Only the sha256 of a key is kept: the key itself is shown once, at creation.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

-- The WIT world a version was validated against, and what it imports (JSON array).
ALTER TABLE plugins ADD COLUMN world TEXT NOT NULL DEFAULT 'switchyard:plugin/plugin@0.1.0';
ALTER TABLE plugins ADD COLUMN imports TEXT NOT NULL DEFAULT '[]';

-- 'api', 'file' (--routes-dir) or 'rollback'.
ALTER TABLE route_sets ADD COLUMN origin TEXT NOT NULL DEFAULT 'api';
