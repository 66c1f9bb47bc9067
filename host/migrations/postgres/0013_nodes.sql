-- Several router nodes on one PostgreSQL database (the same schema on SQLite, one node).
--
-- A lease names the node that holds it. It lasts while that node's heartbeat in `nodes` is
-- fresh; the heartbeat is stamped by the database's clock, so nodes' clocks never decide
-- whose work is whose. When a node's heartbeat goes stale (cluster.node_timeout), any live
-- node deletes its row and releases every lease it held, in one transaction, and the polls
-- pick the rows up. A starting node registers under a new id and never touches a live
-- node's leases.
ALTER TABLE events ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
DROP INDEX events_leased;
CREATE INDEX events_leased ON events (lease_owner) WHERE lease_until IS NOT NULL;
DROP INDEX deliveries_leased;
CREATE INDEX deliveries_leased ON deliveries (lease_owner) WHERE lease_until IS NOT NULL;
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    -- Unix ms, by the database's clock.
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);
