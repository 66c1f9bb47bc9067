//! Durable state, through sqlx on an embedded SQLite file (WAL). One `impl Store` block per
//! concern lives in the sibling files; SQL never leaves this module.
//!
//! Every multi-row change that must be all-or-nothing (routing an event into the outbox,
//! recording an attempt) runs in one transaction, so a crash between any two statements
//! leaves the previous consistent state and the worker that owns it resumes from there.

mod deliveries;
mod destinations;
mod events;
pub mod handoff;
mod keys;
mod kv;
mod pages;
mod plugins;
mod retention;
mod routes;
pub mod secrets;
mod stats;
mod tenants;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serializer;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use deliveries::{
    AttemptRecord, AttemptRow, DeadFilter, DeliveryDetail, DeliveryJob, DeliveryRow, DeliveryStatus, NewDelivery,
};
pub use destinations::{DestinationRow, DestinationSettings};
pub use events::{EventDetail, EventRow, InsertOutcome, NewEvent, RouteOutcome, RouteResult, traceparent_of};
pub use keys::{ApiKey, KEY_PREFIX};
pub use kv::{KvQuota, KvQuotaError, KvReservation, KvUsage};
pub use pages::{ListFilter, Page, PageCursor};
pub use plugins::{NewPluginVersion, PluginVersion, PluginVersionMeta};
pub use retention::PruneCursor;
pub use routes::{RouteOrigin, RouteSetRow, RouteVersionSummary};
pub use stats::AttemptMinute;
pub use tenants::{SourceRow, Tenant};
pub use writer::{AttemptDone, Completion, EventRetry, LEASE, Writer, WriterParts};

/// A storage failure. Callers treat these as internal errors: retried by workers, logged and
/// answered with 500 by the API.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("database: {0}")]
    Batch(String),
    #[error("the event writer has stopped")]
    Closed,
    #[error("secrets: {0}")]
    Secrets(#[from] secrets::SecretsError),
    #[error("{0}")]
    Io(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    caches: Arc<Caches>,
    /// Seals secrets before they are stored and opens them when read (see `secrets`).
    keys: Arc<secrets::Keyring>,
}

/// What the hot path reads on every event, kept in memory. Every change goes through this
/// `Store`, which updates or drops the entry it touched: a single process cannot read a
/// stale entry. (Several nodes will need the database to tell them; see ARCHITECTURE.)
#[derive(Default)]
struct Caches {
    /// Tenant and source by (tenant name, source name), for ingest. Only hits are kept, so
    /// requests for names that do not exist cannot grow it.
    sources: Mutex<HashMap<(String, String), (Tenant, SourceRow)>>,
    /// Counts source writes, so a read that raced one does not cache what it read.
    source_writes: std::sync::atomic::AtomicU64,
    /// Destination rows (settings, secrets, health) by tenant and URL.
    destinations: Mutex<HashMap<(crate::event::TenantId, String), Option<DestinationRow>>>,
    /// Counts destination writes, so a read that raced one does not cache what it read.
    destination_writes: std::sync::atomic::AtomicU64,
    kv: kv::KvOverlay,
    /// Each tenant's kv usage: committed, and reserved by calls in flight (see `kv`).
    kv_usage: Mutex<HashMap<crate::event::TenantId, kv::TenantUsage>>,
}

/// Entries a cache holds before it starts over: a bound, not a working-set size.
const CACHE_ENTRIES: usize = 10_000;

impl Store {
    /// Opens (creating if needed) `<dir>/switchyard.db` and applies pending migrations, with
    /// the secrets key kept in `<dir>` (generated on first use).
    pub async fn open(dir: &Path) -> Result<Self> {
        let keys = secrets::keyring(dir, None, &[])?;
        Self::open_with_keys(dir, keys).await
    }

    /// `open`, with the keyring that seals secrets at rest.
    pub async fn open_with_keys(dir: &Path, keys: secrets::Keyring) -> Result<Self> {
        let file = dir.join("switchyard.db");
        create_private_file(&file)?;
        let url = format!("sqlite://{}", file.display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged event survives power loss too, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let store = Self { pool, caches: Arc::default(), keys: Arc::new(keys) };
        store.kv_usage_load().await?;
        Ok(store)
    }

    /// A cheap query that reads the database file (not only a pooled connection), for
    /// readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1 FROM tenants LIMIT 1").fetch_optional(&self.pool).await?;
        Ok(())
    }
}

/// Creates the database file readable by the router's user only (0600), before SQLite opens
/// it: SQLite gives its WAL and shared-memory files the database file's permissions. An
/// existing file is left as it is.
fn create_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Db(sqlx::Error::Io(e))),
    }
}

/// Leases the rows of `table` (events or deliveries) with these ids until `until`: claimed by
/// a poll, they are this process's until then.
async fn lease<'a>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    table: &str,
    ids: impl Iterator<Item = &'a str>,
    until: i64,
) -> Result<()> {
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!("UPDATE {table} SET lease_until = "));
    q.push_bind(until).push(" WHERE id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    q.push(")");
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Milliseconds since the Unix epoch, the store's clock unit.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A stored millisecond timestamp as RFC 3339, as the API shows times.
pub fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn ms_as_rfc3339<S: Serializer>(ms: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&ms_to_rfc3339(*ms))
}

pub(crate) fn opt_ms_as_rfc3339<S: Serializer>(ms: &Option<i64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => ms_as_rfc3339(ms, s),
        None => s.serialize_none(),
    }
}

/// True when a database error is a uniqueness violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;
