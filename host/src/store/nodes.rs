//! Router nodes sharing one database: who holds which lease, how a dead node's work is taken
//! over, and how a change made through one node reaches the others.
//!
//! - **Liveness.** Each process registers a row in `nodes` under a new id at every start and
//!   stamps `heartbeat_at` with the database's clock every `cluster.heartbeat_interval`. A
//!   lease (`lease_owner`, `lease_until` on events and deliveries) lasts while its owner's
//!   heartbeat is fresh, and at most until `lease_until`. Node clocks never decide: staleness
//!   is `heartbeat_at` against the database's clock.
//! - **Take-over.** A node that finds another's heartbeat older than `cluster.node_timeout`
//!   deletes that row and releases every lease it held, in one transaction; the polls then
//!   claim the rows. A starting node does the same for what a dead predecessor left, and
//!   nothing else: live nodes' leases are never touched.
//! - **Changes.** After a change to routes, plugins, tenants, keys, sources or destinations
//!   commits, the store sends a notice (`pg_notify` on PostgreSQL; nothing on SQLite, where
//!   there is one node). Every node listens, and also reconciles on a timer for a notice it
//!   missed.
//! - **Change locks.** Checks that must hold across nodes (a tenant's plugin quota, deleting
//!   a version no live route pins, route version order) run under a transaction-scoped
//!   advisory lock per tenant on PostgreSQL.

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::backend::Db;
use super::dialect::Dialect;
use super::{Result, Store};
use crate::event::{PluginId, TenantId};

/// The PostgreSQL channel change notices go out on.
const CHANNEL: &str = "switchyard_changes";

/// A new node id: `node_` and 16 random hex digits.
pub(super) fn new_node_id() -> String {
    format!("node_{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// A change another node must learn of: what it caches about that part is stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A route version was applied or rolled back: load the tenant's latest.
    Routes(TenantId),
    /// A plugin version was deleted: drop it from memory.
    PluginDeleted(PluginId),
    /// A source was declared, changed or deleted: what ingest caches is stale. (Tenants
    /// and API keys are read from the database on every request: nothing to forget.)
    Sources,
    /// A destination was enabled or its settings or secret changed.
    Destinations(TenantId),
}

impl Change {
    /// `kind:argument`, the notice's payload after the sender's node id.
    fn encode(&self) -> String {
        match self {
            Self::Routes(t) => format!("routes:{t}"),
            Self::PluginDeleted(p) => format!("plugin-deleted:{p}"),
            Self::Sources => "sources:".to_owned(),
            Self::Destinations(t) => format!("destinations:{t}"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let (kind, arg) = text.split_once(':')?;
        Some(match kind {
            "routes" => Self::Routes(TenantId::parse(arg)?),
            "plugin-deleted" => Self::PluginDeleted(PluginId::parse(arg)?),
            "sources" => Self::Sources,
            "destinations" => Self::Destinations(TenantId::parse(arg)?),
            _ => return None,
        })
    }
}

/// What a take-over released: nodes found dead, and the leases of theirs (or expired ones).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TakenOver {
    pub dead_nodes: Vec<String>,
    pub events: u64,
    pub deliveries: u64,
}

/// Held while a tenant's change is checked and made (see the module doc). Dropping it ends
/// the lock: on PostgreSQL the transaction that holds the advisory lock rolls back.
pub struct ChangeLock {
    _tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
}

/// Change notices from other nodes (PostgreSQL only).
pub struct ChangeListener {
    listener: PgListener,
    node: std::sync::Arc<str>,
}

impl ChangeListener {
    /// The next change another node made. `Ok(None)`: the connection was lost and has been
    /// re-established, so notices may have been missed; reconcile everything.
    pub async fn next(&mut self) -> Result<Option<Change>> {
        loop {
            let Some(notice) = self.listener.try_recv().await? else { return Ok(None) };
            let Some((node, change)) = notice.payload().split_once('|') else { continue };
            if node == &*self.node {
                continue;
            }
            match Change::decode(change) {
                Some(change) => return Ok(Some(change)),
                None => {
                    tracing::warn!(payload = notice.payload(), "ignoring a change notice this version does not know")
                }
            }
        }
    }
}

impl Store {
    /// This process's node id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether other processes may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// Registers this node, then frees what earlier processes left leased. On SQLite this
    /// process is the only one, so every lease is released at once (no wait). On PostgreSQL
    /// only leases of nodes dead for `node_timeout`, of no node, or past `lease_until` are.
    pub async fn start_node(&self, node_timeout: Duration) -> Result<TakenOver> {
        let sql = format!(
            "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, {now}, {now})",
            now = now_sql(&self.db)
        );
        on_pool!(&self.db, p => sqlx::query(&sql).bind(&*self.node).execute(p).await.map(drop)?);
        match &self.db {
            Db::Sqlite(p) => {
                // Rows of earlier processes of this one file: all gone.
                sqlx::query("DELETE FROM nodes WHERE id <> $1").bind(&*self.node).execute(p).await?;
                let (deliveries, events) = self.release_leases().await?;
                Ok(TakenOver { dead_nodes: Vec::new(), events, deliveries })
            }
            Db::Postgres(_) => self.take_over(node_timeout, true).await,
        }
    }

    /// Stamps this node's heartbeat. False if its row was gone: another node took it for
    /// dead (it missed heartbeats for `node_timeout`) and released its leases; the row is
    /// written again so this node's new leases are its own.
    pub async fn heartbeat(&self) -> Result<bool> {
        let now = now_sql(&self.db);
        let sql = format!("UPDATE nodes SET heartbeat_at = {now} WHERE id = $1");
        let found = on_pool!(&self.db, p => sqlx::query(&sql).bind(&*self.node).execute(p).await?.rows_affected());
        if found == 0 {
            let sql = format!(
                "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, {now}, {now}) ON CONFLICT (id) DO NOTHING"
            );
            on_pool!(&self.db, p => sqlx::query(&sql).bind(&*self.node).execute(p).await.map(drop)?);
        }
        Ok(found > 0)
    }

    /// Deletes nodes whose heartbeat is older than `node_timeout` and releases their leases.
    /// With `sweep`, also releases leases of no known node or past `lease_until` (start-up,
    /// and the periodic reconcile); without it, does nothing more when no node died.
    pub async fn take_over(&self, node_timeout: Duration, sweep: bool) -> Result<TakenOver> {
        let timeout = node_timeout.as_millis() as i64;
        let now = now_sql(&self.db);
        let mut tx = self.db.begin().await?;
        let dead: Vec<String> = on_tx!(&mut tx, c => {
            let sql = format!("DELETE FROM nodes WHERE heartbeat_at < {now} - $1 AND id <> $2 RETURNING id");
            sqlx::query_scalar(&sql).bind(timeout).bind(&*self.node).fetch_all(&mut **c).await?
        });
        if dead.is_empty() && !sweep {
            return Ok(TakenOver::default());
        }
        let mut counts = [0u64; 2];
        for (table, count) in ["events", "deliveries"].into_iter().zip(&mut counts) {
            *count = on_tx!(&mut tx, c => {
                let sql = format!(
                    "UPDATE {table} SET lease_until = NULL, lease_owner = NULL
                     WHERE lease_until IS NOT NULL
                       AND (lease_owner IS NULL OR lease_owner NOT IN (SELECT id FROM nodes) OR lease_until < {now})"
                );
                sqlx::query(&sql).execute(&mut **c).await?.rows_affected()
            });
        }
        tx.commit().await?;
        Ok(TakenOver { dead_nodes: dead, events: counts[0], deliveries: counts[1] })
    }

    /// A clean stop: gives back every lease this node holds (what it did not finish goes to
    /// the other nodes now, not after `node_timeout`) and removes its row.
    pub async fn leave(&self) -> Result<()> {
        let mut tx = self.db.begin().await?;
        for table in ["events", "deliveries"] {
            on_tx!(&mut tx, c => {
                let sql = format!(
                    "UPDATE {table} SET lease_until = NULL, lease_owner = NULL WHERE lease_until IS NOT NULL AND lease_owner = $1"
                );
                sqlx::query(&sql).bind(&*self.node).execute(&mut **c).await.map(drop)?
            });
        }
        on_tx!(&mut tx, c => sqlx::query("DELETE FROM nodes WHERE id = $1").bind(&*self.node).execute(&mut **c).await.map(drop)?);
        tx.commit().await?;
        Ok(())
    }

    /// The nodes registered now, with their heartbeat's age in ms by the database's clock.
    pub async fn nodes(&self) -> Result<Vec<(String, i64)>> {
        let sql = format!("SELECT id, {} - heartbeat_at FROM nodes ORDER BY started_at, id", now_sql(&self.db));
        Ok(on_pool!(&self.db, p => sqlx::query_as(&sql).fetch_all(p).await?))
    }

    /// Drops every lease, of deliveries and events, whoever holds it. Only where this process
    /// is the only one (SQLite start-up, tests): waiting would only delay recovery. Returns
    /// (deliveries, events) released.
    pub async fn release_leases(&self) -> Result<(u64, u64)> {
        let release = |table: &'static str| async move {
            let sql =
                format!("UPDATE {table} SET lease_until = NULL, lease_owner = NULL WHERE lease_until IS NOT NULL");
            Ok::<_, sqlx::Error>(on_pool!(&self.db, p => sqlx::query(&sql).execute(p).await?.rows_affected()))
        };
        Ok((release("deliveries").await?, release("events").await?))
    }

    /// Tells the other nodes that `change` committed. Best effort: a notice that is lost (the
    /// connection failed just now) is made up for by their periodic reconcile.
    pub async fn announce(&self, change: Change) {
        let Db::Postgres(pool) = &self.db else { return };
        let payload = format!("{}|{}", self.node, change.encode());
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(&payload).execute(pool).await {
            tracing::warn!(
                change = payload,
                "could not announce a change; other nodes see it at their next reconcile: {e}"
            );
        }
    }

    /// Listens for other nodes' change notices; `None` on SQLite (one node).
    pub async fn listen(&self) -> Result<Option<ChangeListener>> {
        let Db::Postgres(pool) = &self.db else { return Ok(None) };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(ChangeListener { listener, node: self.node.clone() }))
    }

    /// Takes the tenant's change lock (see the module doc). On SQLite there is one process,
    /// and the caller's in-process lock is enough.
    pub async fn lock_changes(&self, tenant: &TenantId) -> Result<ChangeLock> {
        let Db::Postgres(pool) = &self.db else { return Ok(ChangeLock { _tx: None }) };
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("switchyard.changes.{tenant}"))
            .execute(&mut *tx)
            .await?;
        Ok(ChangeLock { _tx: Some(tx) })
    }
}

/// The database's clock in unix ms, as SQL.
fn now_sql(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => <sqlx::Sqlite as Dialect>::NOW_MS,
        Db::Postgres(_) => <sqlx::Postgres as Dialect>::NOW_MS,
    }
}
