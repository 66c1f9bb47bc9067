//! The backend the suite runs on, and the few things tests do to the database directly.
//!
//! By default every router keeps its SQLite file in its data directory. With
//! `SWITCHYARD_E2E_BACKEND=postgres` every data directory gets a PostgreSQL database of its
//! own instead, its URL recorded in the directory, so a restart (in process or as a child
//! process) finds the same one. Data directories are `DataDir`s, which drop that database
//! with the directory, also when a test panics.

use std::ops::Deref;
use std::path::Path;

use sqlx::{Executor, PgPool, Row, SqlitePool};
use switchyard::store::{DatabaseUrl, Store, secrets};

use super::postgres::TestDatabase;

/// Where a data directory records its PostgreSQL database.
const RECORD: &str = "e2e-database-url";

/// Whether the suite runs on PostgreSQL (`SWITCHYARD_E2E_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("SWITCHYARD_E2E_BACKEND").as_deref() == Ok("postgres")
}

/// The `database_url` a router on `data_dir` uses: `None` (the SQLite file in it) by default;
/// on PostgreSQL the directory's database, created on first use.
pub async fn url_for(data_dir: &Path) -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let file = data_dir.join(RECORD);
    if let Ok(url) = std::fs::read_to_string(&file) {
        return Some(url);
    }
    let url = TestDatabase::create().await.keep();
    std::fs::write(&file, &url).unwrap();
    Some(url)
}

/// A router's data directory: a temporary directory, and on PostgreSQL the database recorded
/// in it; both are removed when this is dropped.
pub struct DataDir(tempfile::TempDir);

impl DataDir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
}

impl From<tempfile::TempDir> for DataDir {
    fn from(dir: tempfile::TempDir) -> Self {
        Self(dir)
    }
}

impl Deref for DataDir {
    type Target = tempfile::TempDir;
    fn deref(&self) -> &tempfile::TempDir {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Ok(url) = std::fs::read_to_string(self.0.path().join(RECORD)) {
            drop(TestDatabase::adopt(&url));
        }
    }
}

/// The store of a (stopped) router's data directory, opened as the router opens it.
pub async fn open_store(data_dir: &Path) -> Store {
    let url = match url_for(data_dir).await {
        Some(url) => DatabaseUrl::Postgres(url),
        None => DatabaseUrl::sqlite_in(data_dir),
    };
    Store::open_url(&url, secrets::keyring(data_dir, None, &[]).unwrap()).await.unwrap()
}

/// A connection pool on a data directory's database, for tests that change it behind the
/// router's back.
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// The database of `data_dir` (its SQLite file is created if missing).
    pub async fn open(data_dir: &Path) -> Self {
        match url_for(data_dir).await {
            Some(url) => Self::Postgres(PgPool::connect(&url).await.unwrap()),
            None => {
                let url = format!("sqlite://{}?mode=rwc", data_dir.join("switchyard.db").display());
                Self::Sqlite(SqlitePool::connect(&url).await.unwrap())
            }
        }
    }

    /// Runs one statement, written so both backends accept it.
    pub async fn execute(&self, sql: &str) {
        match self {
            Self::Sqlite(pool) => pool.execute(sql).await.map(drop),
            Self::Postgres(pool) => pool.execute(sql).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn close(self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// Damages every stored route version in the database of a stopped router, so its routes
/// cannot load at the next start.
pub async fn damage_stored_routes(data_dir: &Path) {
    let db = Db::open(data_dir).await;
    db.execute("UPDATE route_sets SET document = '{not json'").await;
    db.close().await;
}

/// Everything the database of `data_dir` keeps, to search for what must not be stored in the
/// clear. SQLite: the bytes of its file and write-ahead log. PostgreSQL: every row of every
/// table, as text (a secret stored in the clear shows there as it is).
pub async fn stored_bytes(data_dir: &Path) -> Vec<u8> {
    let Some(url) = url_for(data_dir).await else {
        let mut all = Vec::new();
        for name in ["switchyard.db", "switchyard.db-wal"] {
            all.extend(std::fs::read(data_dir.join(name)).unwrap_or_default());
        }
        return all;
    };
    let pool = PgPool::connect(&url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(tables.iter().any(|t| t == "sources"), "no tables in {url}: {tables:?}");
    let mut all = Vec::new();
    for table in tables {
        for row in sqlx::query(&format!("SELECT CAST(t AS text) FROM {table} t")).fetch_all(&pool).await.unwrap() {
            all.extend(row.get::<String, _>(0).into_bytes());
            all.push(b'\n');
        }
    }
    pool.close().await;
    all
}
