//! PostgreSQL for the end-to-end tests: a database of its own per test, on the server at
//! `SWITCHYARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`). If
//! nothing answers there the test fails, it never skips (`.ci/run` starts the cluster).

use std::path::Path;

use sqlx::{Connection, Executor, PgConnection};

fn admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, dropped by `drop`.
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
        let name = format!("switchyard_e2e_{}", ulid::Ulid::new().to_string().to_lowercase());
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        Self { url: format!("{base}/{name}"), name }
    }

    pub async fn drop(self) {
        let mut conn = PgConnection::connect(&admin_url()).await.unwrap();
        conn.execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str()).await.unwrap();
    }
}

/// `SWITCHYARD_E2E_BACKEND=postgres` runs the whole suite on PostgreSQL: every data directory
/// gets a database of its own, recorded in it so a restart finds the same one. These
/// databases are not dropped (drop `switchyard_e2e_*` after such a run).
pub async fn database_for(data_dir: &Path) -> Option<String> {
    if std::env::var("SWITCHYARD_E2E_BACKEND").as_deref() != Ok("postgres") {
        return None;
    }
    let file = data_dir.join("e2e-database-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return Some(url);
    }
    let url = TestDatabase::create().await.url;
    std::fs::write(&file, &url).unwrap();
    Some(url)
}
