//! Test databases for both backends: an SQLite file in a temporary directory, or a
//! PostgreSQL database created for one test and dropped after it. PostgreSQL is found at
//! `SWITCHYARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`); if
//! nothing answers there the test fails, it never skips (`.ci/run` starts the machine's
//! cluster first).

use std::future::Future;

use super::{DatabaseUrl, Store, secrets};

/// The same `TestDatabase` as the end-to-end suite's (one file, included by path): a
/// database of its own, dropped with the value, also when a test panics.
#[allow(dead_code)]
#[path = "../../../tests/e2e/support/postgres.rs"]
mod shared;
pub(crate) use shared::TestDatabase;

/// A store for one test, on either backend, that can be opened again (a restart). Derefs to
/// the `Store`.
pub(crate) struct TestStore {
    pub store: Store,
    pub url: DatabaseUrl,
    pub dir: tempfile::TempDir,
}

impl TestStore {
    async fn open(url: DatabaseUrl) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = match url {
            DatabaseUrl::Sqlite(_) => DatabaseUrl::sqlite_in(dir.path()),
            pg => pg,
        };
        let store = Store::open_url(&url, secrets::keyring(dir.path(), None, &[]).unwrap()).await.unwrap();
        Self { store, url, dir }
    }

    /// The same database opened again, as a restarted router would.
    pub async fn reopen(&self) -> Store {
        Store::open_url(&self.url, secrets::keyring(self.dir.path(), None, &[]).unwrap()).await.unwrap()
    }
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// Runs `test` on a fresh SQLite store.
pub(crate) async fn on_sqlite<F: Future<Output = ()>>(test: impl FnOnce(TestStore) -> F) {
    test(TestStore::open(DatabaseUrl::Sqlite(String::new())).await).await;
}

/// Runs `test` on a store in a PostgreSQL database of its own, dropped afterwards whether the
/// test passed or not.
pub(crate) async fn on_postgres<F: Future<Output = ()> + Send + 'static>(test: impl FnOnce(TestStore) -> F) {
    let db = TestDatabase::create().await;
    let store = TestStore::open(DatabaseUrl::Postgres(db.url.clone())).await;
    let outcome = tokio::spawn(test(store)).await;
    drop(db);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Generates, for each named `async fn(TestStore)`, a test on SQLite (`sqlite::<name>`) and
/// one on PostgreSQL (`postgres::<name>`): one conformance suite for both backends.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                $crate::store::test_db::on_sqlite(super::$name).await
            })+
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                $crate::store::test_db::on_postgres(super::$name).await
            })+
        }
    };
}

pub(crate) use on_both_backends;

impl Store {
    /// The SQLite pool, for tests of SQLite itself (query plans, its schema).
    pub(crate) fn sqlite_pool(&self) -> &sqlx::SqlitePool {
        match &self.db {
            super::Db::Sqlite(p) => p,
            super::Db::Postgres(_) => panic!("an SQLite store was expected"),
        }
    }

    /// Runs one statement (tests that damage rows); returns the rows it changed.
    pub(crate) async fn exec_for_test(&self, sql: &str) -> u64 {
        on_pool!(&self.db, p => sqlx::query(sql).execute(p).await.unwrap().rows_affected())
    }

    /// The one integer a query returns (tests that count rows).
    pub(crate) async fn count_for_test(&self, sql: &str) -> i64 {
        on_pool!(&self.db, p => sqlx::query_scalar(sql).fetch_one(p).await.unwrap())
    }
}
