-- Storage bounds: per-tenant kv usage kept by the database itself, and indexes for the
-- pruner and for artifact garbage collection.

-- Keys and bytes (key + value, UTF-8) of each tenant's kv store, maintained by triggers in
-- the same transaction as every kv write, so it can never drift from the table. The router
-- loads it at start-up and refreshes a tenant's row after each commit that wrote its kv.
CREATE TABLE kv_usage (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    keys       INTEGER NOT NULL,
    bytes      INTEGER NOT NULL
);

INSERT INTO kv_usage (tenant_id, keys, bytes)
    SELECT tenant_id, COUNT(*), SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)))
    FROM kv GROUP BY tenant_id;

-- An upsert that updates fires the UPDATE trigger, not the INSERT one.
CREATE TRIGGER kv_usage_insert AFTER INSERT ON kv BEGIN
    INSERT INTO kv_usage (tenant_id, keys, bytes)
        VALUES (NEW.tenant_id, 1, length(CAST(NEW.key AS BLOB)) + length(CAST(NEW.value AS BLOB)))
        ON CONFLICT (tenant_id) DO UPDATE SET keys = keys + 1, bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER kv_usage_update AFTER UPDATE OF value ON kv BEGIN
    UPDATE kv_usage
        SET bytes = bytes + length(CAST(NEW.value AS BLOB)) - length(CAST(OLD.value AS BLOB))
        WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER kv_usage_delete AFTER DELETE ON kv BEGIN
    UPDATE kv_usage
        SET keys = keys - 1, bytes = bytes - length(CAST(OLD.key AS BLOB)) - length(CAST(OLD.value AS BLOB))
        WHERE tenant_id = OLD.tenant_id;
END;

-- Is this component (by content hash) still stored for anyone? Asked when a version is
-- deleted and at start-up, to remove compiled artifacts nobody can use.
CREATE INDEX plugins_by_sha ON plugins (sha256);
