//! Durable state, through sqlx on an embedded SQLite file (WAL) or on PostgreSQL (`backend`:
//! each query compiled once per backend). One `impl Store` block per concern lives in the
//! sibling files; SQL never leaves this module.
//!
//! Every multi-row change that must be all-or-nothing (routing an event into the outbox,
//! recording an attempt) runs in one transaction, so a crash between any two statements
//! leaves the previous consistent state and the worker that owns it resumes from there.

#[macro_use]
mod backend;
mod deliveries;
mod destinations;
mod dialect;
mod events;
pub mod handoff;
mod keys;
mod kv;
mod nodes;
mod pages;
mod plugins;
mod retention;
mod routes;
pub mod secrets;
mod stats;
mod tenants;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use backend::{Db, Tx};

pub use backend::{DatabaseUrl, redact_url};
pub use deliveries::{
    AttemptRecord, AttemptRow, DeadFilter, DeliveryJob, DeliveryRecord, DeliveryRow, DeliveryStatus, NewDelivery,
};
pub use destinations::{DestinationRow, DestinationSettings};
pub use events::{
    EventRecord, EventRow, EventStatus, InsertOutcome, NewEvent, RouteOutcome, RouteResult, traceparent_of,
};
pub use keys::{ApiKey, KEY_PREFIX};
pub use kv::{KvQuota, KvQuotaError, KvReservation, KvUsage};
pub use nodes::{Change, ChangeListener, ChangeLock, TakenOver};
pub use pages::{ListFilter, Page, PageCursor};
pub use plugins::{NewPluginVersion, PluginVersion, PluginVersionMeta};
pub use retention::PruneCursor;
pub use routes::{DamagedRouteSet, RouteOrigin, RouteSetRow, RouteVersionSummary};
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
    /// A stored row that does not decode (damaged outside the router): an error, never read
    /// as a default.
    #[error("damaged row: {0}")]
    Damaged(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    caches: Arc<Caches>,
    /// Seals secrets before they are stored and opens them when read (see `secrets`).
    keys: Arc<secrets::Keyring>,
    /// This process's node id (`node_<hex>`, new at every start): the owner its leases name.
    node: Arc<str>,
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
        Self::open_url(&DatabaseUrl::sqlite_in(dir), keys).await
    }

    /// Connects to the database at `url` (creating an SQLite file if needed) and applies
    /// pending migrations, with the keyring that seals secrets at rest.
    pub async fn open_url(url: &DatabaseUrl, keys: secrets::Keyring) -> Result<Self> {
        let db = Db::connect(url).await?;
        let store = Self { db, caches: Arc::default(), keys: Arc::new(keys), node: nodes::new_node_id().into() };
        store.kv_usage_load().await?;
        Ok(store)
    }

    /// Which backend this store runs on, for logs: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection (waiting for those in use to come back).
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// A cheap query that reads the database file (not only a pooled connection), for
    /// readiness checks.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(&self.db, p => sqlx::query("SELECT 1 FROM tenants LIMIT 1").fetch_optional(p).await.map(drop)?);
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

/// A lease on a row that memory holds: the node that holds it, and the latest moment it
/// lasts to. It ends sooner if the node's heartbeat goes stale (see `nodes`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease<'a> {
    pub until: i64,
    pub owner: &'a str,
}

/// Leases to `lease.owner` those rows of `table` (events or deliveries) with these ids that
/// are still pending and unleased, and returns their ids. A poll reads candidates without
/// locks; this is where two nodes polling together are told apart: on PostgreSQL the inner
/// `FOR UPDATE SKIP LOCKED` passes over rows another claim is leasing right now, and the
/// re-checked `lease_until IS NULL` over rows one already leased.
async fn lease<'a>(
    tx: &mut Tx<'_>,
    table: &str,
    ids: impl Iterator<Item = &'a str>,
    lease: Lease<'_>,
) -> Result<HashSet<String>> {
    let leased: Vec<String> = on_tx!(tx, c => {
        let mut q = sqlx::QueryBuilder::<DB>::new(format!("UPDATE {table} SET lease_until = "));
        q.push_bind(lease.until).push(", lease_owner = ").push_bind(lease.owner);
        q.push(format!(
            " WHERE id IN (SELECT id FROM {table} WHERE status = 'pending' AND lease_until IS NULL AND id IN ("
        ));
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id);
        }
        q.push(format!(") {}) RETURNING id", <DB as dialect::Dialect>::SKIP_LOCKED));
        q.build_query_scalar().fetch_all(&mut **c).await?
    });
    Ok(leased.into_iter().collect())
}

impl Store {
    /// Leases to this node the `rows` of `table` a poll read, until `until` at the latest, and
    /// returns those it got: rows another node leased between the read and this are its.
    ///
    /// The read took no locks and is not part of this transaction: `lease` re-checks each
    /// row. On SQLite a read-then-write transaction would fail with SQLITE_BUSY_SNAPSHOT
    /// whenever the writer committed in between.
    async fn lease_read<T>(&self, table: &str, rows: Vec<T>, id: impl Fn(&T) -> &str, until: i64) -> Result<Vec<T>> {
        if rows.is_empty() {
            return Ok(rows);
        }
        let mut tx = self.db.begin().await?;
        let leased = lease(&mut tx, table, rows.iter().map(&id), Lease { until, owner: &self.node }).await?;
        tx.commit().await?;
        Ok(rows.into_iter().filter(|r| leased.contains(id(r))).collect())
    }
}

/// Milliseconds since the Unix epoch, the store's clock unit.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A stored millisecond timestamp as RFC 3339, as the API shows times.
pub fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The inverse of [`ms_to_rfc3339`], for answers read back (the CLI).
pub fn rfc3339_to_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

/// A unix-ms field shown as RFC 3339 (`#[serde(with = "ms_as_rfc3339")]`), and read back.
pub(crate) mod ms_as_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::ms_to_rfc3339(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        super::rfc3339_to_ms(&text).ok_or_else(|| D::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

/// [`ms_as_rfc3339`] for optional fields: `None` is `null`.
pub(crate) mod opt_ms_as_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => super::ms_as_rfc3339::serialize(ms, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::rfc3339_to_ms(&text)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("{text:?} is not an RFC 3339 time"))),
            None => Ok(None),
        }
    }
}

/// Runs an insert that numbers its row `MAX(version) + 1` in the statement, until it does not
/// collide. On SQLite it never does (the write lock serialises writers). On PostgreSQL two
/// transactions can read the same maximum; the unique index on the version refuses the later
/// one, which numbers again. A bounded number of times: a collision that persists is an error.
async fn next_version_retries<T, F, Fut>(mut insert: F) -> std::result::Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut collisions = 0;
    loop {
        match insert().await {
            Err(e) if is_unique_violation(&e) && collisions < 16 => collisions += 1,
            done => return done,
        }
    }
}

/// True when a database error is a uniqueness violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod time_tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::ApiKey;
    use crate::event::KeyId;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Times {
        #[serde(with = "super::ms_as_rfc3339")]
        at: i64,
        #[serde(with = "super::opt_ms_as_rfc3339")]
        maybe: Option<i64>,
    }

    #[test]
    fn ms_fields_read_back_as_they_were_written() {
        for times in [
            Times { at: 1_750_000_000_123, maybe: Some(0) },
            Times { at: 0, maybe: None },
            Times { at: -1, maybe: Some(4_102_444_800_000) },
        ] {
            let text = serde_json::to_string(&times).unwrap();
            assert_eq!(serde_json::from_str::<Times>(&text).unwrap(), times, "{text}");
        }
        let text = serde_json::to_value(Times { at: 1_750_000_000_123, maybe: None }).unwrap();
        assert_eq!(text, json!({"at": "2025-06-15T15:06:40.123Z", "maybe": null}));
        // Other offsets are the same instant; anything else is refused, naming the text.
        let shifted: Times =
            serde_json::from_value(json!({"at": "2025-06-15T17:06:40.123+02:00", "maybe": null})).unwrap();
        assert_eq!(shifted.at, 1_750_000_000_123);
        let err = serde_json::from_value::<Times>(json!({"at": "yesterday", "maybe": null})).unwrap_err();
        assert!(err.to_string().contains("\"yesterday\" is not an RFC 3339 time"), "{err}");
    }

    /// The API's rows read back into equal rows that serialise to the same JSON.
    #[test]
    fn rows_round_trip_through_their_json() {
        let key = ApiKey {
            id: KeyId::parse("key_1").unwrap(),
            name: "ci".into(),
            prefix: "syk_ab".into(),
            created_at: 1_750_000_000_123,
            last_used_at: Some(1_750_000_001_000),
            revoked_at: None,
        };
        let json = serde_json::to_value(&key).unwrap();
        let back: ApiKey = serde_json::from_value(json.clone()).unwrap();
        assert_eq!((back.created_at, back.last_used_at, back.revoked_at), (key.created_at, key.last_used_at, None));
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }
}
#[cfg(test)]
mod nodes_tests;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;
