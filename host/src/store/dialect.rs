//! Every place the store's SQL differs between SQLite and PostgreSQL, side by side. All other
//! SQL is shared, written once with `$N` placeholders.
//!
//! - Index hints: SQLite's planner needs `INDEXED BY` on a few reads; PostgreSQL has none.
//! - Per-tenant heads of a queue: SQLite takes `IN (correlated subquery)` in a join's `ON`,
//!   PostgreSQL a `LATERAL` subquery (the same plan: one index range per tenant).
//! - A JSON list parameter: `json_each` against `json_array_elements_text`.
//! - JSON inside a TEXT column: `json_array_length(doc, path)` against `->` on a cast.
//! - A row's physical key (`rowid` against `ctid`), for the start-up re-sealing pass.
//! - The database's clock in unix ms, which stamps node heartbeats (see `nodes`).

use sqlx::{Postgres, Sqlite};

pub(super) trait Dialect {
    /// `FROM events <this>` when counting pending events per tenant.
    const EVENTS_PENDING_INDEX: &'static str;
    /// `FROM events <this>` when walking one tenant's events in time order (retention).
    const EVENTS_BY_TENANT_INDEX: &'static str;
    /// The ids of each tenant's oldest `$2` events ready to run at `$3`, tenants in the JSON
    /// list `$1` left out.
    const READY_EVENT_HEADS: &'static str;
    /// The ids of each tenant's first `$2` deliveries due at `$3`, tenants in `$1` left out.
    const DUE_DELIVERY_HEADS: &'static str;
    /// The number of routes in a stored route document (`route_sets.document`), as BIGINT.
    const ROUTE_COUNT: &'static str;
    /// A row's physical key, as text.
    const ROW_KEY: &'static str;
    /// `WHERE <this>`: the row whose `ROW_KEY` is the first parameter.
    const ROW_KEY_IS_1: &'static str;
    /// The database's clock, in unix ms (BIGINT).
    const NOW_MS: &'static str;
    /// `SELECT id FROM <table> WHERE id IN (...) <this>`, when leasing the rows a poll read:
    /// on PostgreSQL, rows another node's claim has locked are skipped, not waited for.
    const SKIP_LOCKED: &'static str;
}

impl Dialect for Sqlite {
    // Left to itself the planner walks every event in tenant order, which grows with the
    // table, not the backlog.
    const EVENTS_PENDING_INDEX: &'static str = "INDEXED BY events_pending";
    const EVENTS_BY_TENANT_INDEX: &'static str = "INDEXED BY events_by_tenant";
    const READY_EVENT_HEADS: &'static str = "SELECT head.id FROM tenants w JOIN events head ON head.id IN (
            SELECT id FROM events
            WHERE status = 'pending' AND lease_until IS NULL AND tenant_id = w.id
              AND (retry_at IS NULL OR retry_at <= $3)
            ORDER BY received_at, id LIMIT $2)
        WHERE w.id NOT IN (SELECT value FROM json_each($1))";
    const DUE_DELIVERY_HEADS: &'static str = "SELECT head.id FROM tenants w JOIN deliveries head ON head.id IN (
            SELECT id FROM deliveries INDEXED BY deliveries_ready_by_tenant
            WHERE status = 'pending' AND lease_until IS NULL AND tenant_id = w.id
              AND next_attempt_at <= $3
            ORDER BY next_attempt_at LIMIT $2)
        WHERE w.id NOT IN (SELECT value FROM json_each($1))";
    const ROUTE_COUNT: &'static str = "COALESCE(json_array_length(document, '$.routes'), 0)";
    const ROW_KEY: &'static str = "CAST(rowid AS TEXT)";
    const ROW_KEY_IS_1: &'static str = "rowid = CAST($1 AS INTEGER)";
    // julianday, not unixepoch('subsec'): the latter needs SQLite 3.42.
    const NOW_MS: &'static str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
    // One writer at a time: there is nothing to skip.
    const SKIP_LOCKED: &'static str = "";
}

impl Dialect for Postgres {
    const EVENTS_PENDING_INDEX: &'static str = "";
    const EVENTS_BY_TENANT_INDEX: &'static str = "";
    // A plain read: two nodes polling together can read the same heads. The lease that
    // follows takes only rows still unleased, `FOR UPDATE SKIP LOCKED` (see `store::lease`).
    const READY_EVENT_HEADS: &'static str = "SELECT head.id FROM tenants w CROSS JOIN LATERAL (
            SELECT id FROM events
            WHERE status = 'pending' AND lease_until IS NULL AND tenant_id = w.id
              AND (retry_at IS NULL OR retry_at <= $3)
            ORDER BY received_at, id LIMIT $2) head
        WHERE w.id NOT IN (SELECT json_array_elements_text(CAST($1 AS json)))";
    // As READY_EVENT_HEADS: the lease decides.
    const DUE_DELIVERY_HEADS: &'static str = "SELECT head.id FROM tenants w CROSS JOIN LATERAL (
            SELECT id FROM deliveries
            WHERE status = 'pending' AND lease_until IS NULL AND tenant_id = w.id
              AND next_attempt_at <= $3
            ORDER BY next_attempt_at LIMIT $2) head
        WHERE w.id NOT IN (SELECT json_array_elements_text(CAST($1 AS json)))";
    // As SQLite: a document without a `routes` list counts 0.
    const ROUTE_COUNT: &'static str = "CAST(CASE WHEN json_typeof(CAST(document AS json) -> 'routes') = 'array'
            THEN json_array_length(CAST(document AS json) -> 'routes') ELSE 0 END AS BIGINT)";
    const ROW_KEY: &'static str = "CAST(ctid AS TEXT)";
    const ROW_KEY_IS_1: &'static str = "ctid = CAST($1 AS tid)";
    // clock_timestamp, not now(): now() is the transaction's start.
    const NOW_MS: &'static str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
    const SKIP_LOCKED: &'static str = "FOR UPDATE SKIP LOCKED";
}
