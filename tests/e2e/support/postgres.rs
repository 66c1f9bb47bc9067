//! PostgreSQL for tests (the end-to-end suite, and the store's conformance suite, which
//! includes this file): a database of its own per test, on the server at
//! `SWITCHYARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`). If
//! nothing answers there the test fails, it never skips (`.ci/run` starts the cluster).

use sqlx::{Connection, Executor, PgConnection};

fn admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, dropped with this value (also when the test panics).
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is needed at {admin} (set SWITCHYARD_TEST_POSTGRES, or start it: \
                 `pg_ctlcluster 15 main start`, as .ci/run does): {e}"
            )
        });
        let name = format!("switchyard_test_{}", ulid::Ulid::new().to_string().to_lowercase());
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        Self { url: format!("{base}/{name}"), name }
    }

    /// Takes charge of a database `create` made, known by its URL.
    pub fn adopt(url: &str) -> Self {
        let name = url.rsplit_once('/').map_or(url, |(_, name)| name);
        assert!(name.starts_with("switchyard_test_"), "not a test database: {url}");
        Self { url: url.to_owned(), name: name.to_owned() }
    }

    /// Leaves the database in place and returns its URL; whoever keeps the URL `adopt`s it
    /// later to drop it.
    pub fn keep(mut self) -> String {
        self.name.clear();
        std::mem::take(&mut self.url)
    }
}

impl Drop for TestDatabase {
    /// `Drop` cannot await, and the test's runtime may be the only thread there is: the drop
    /// runs on a thread of its own, with a runtime of its own. `WITH (FORCE)` ends the
    /// connections a router that was not stopped (a panic, a SIGKILL) still holds.
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let name = std::mem::take(&mut self.name);
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url()).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
                Ok::<_, sqlx::Error>(())
            })
            .map_err(|e| format!("dropping test database {name}: {e}"))
        })
        .join();
        // Never panic here: this may run while a failed test unwinds.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("{e}"),
            Err(_) => eprintln!("dropping a test database panicked"),
        }
    }
}
