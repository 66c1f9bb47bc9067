//! The two backends' migrations must describe one schema: the same tables, columns (with
//! their type family and nullability), indexes and triggers. Applies both to fresh databases
//! (a SQLite file, and a PostgreSQL database this test creates and drops) and compares them.
//! PostgreSQL is found at `SWITCHYARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); if nothing answers there the test fails,
//! it never skips (`.ci/run` starts the machine's cluster first).

use std::collections::BTreeSet;

use sqlx::Row;

use super::test_db::TestDatabase;

/// (table, column, type family, not null)
type Column = (String, String, &'static str, bool);

fn family(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "text" => "text",
        "integer" | "bigint" => "integer",
        "blob" | "bytea" => "bytes",
        other => panic!("a column type the backends do not share: {other}"),
    }
}

async fn sqlite_schema(dir: &std::path::Path) -> (BTreeSet<Column>, BTreeSet<String>, BTreeSet<String>) {
    let store = super::Store::open(dir).await.unwrap();
    let columns = sqlx::query(
        "SELECT m.name AS tbl, p.name AS col, p.type AS ty, p.\"notnull\" OR p.pk > 0 AS not_null
         FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name != '_sqlx_migrations'",
    )
    .fetch_all(store.sqlite_pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("tbl"), r.get("col"), family(r.get("ty")), r.get("not_null")))
    .collect();
    let names = |kind: &'static str| {
        let pool = store.sqlite_pool().clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_autoindex%'",
            )
            .bind(kind)
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<_>>()
        }
    };
    (columns, names("index").await, names("trigger").await)
}

async fn postgres_schema(url: &str) -> (BTreeSet<Column>, BTreeSet<String>, BTreeSet<String>) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::migrate!("./migrations/postgres").run(&pool).await.unwrap();
    let columns = sqlx::query(
        "SELECT table_name::text AS tbl, column_name::text AS col, data_type::text AS ty,
                is_nullable = 'NO' AS not_null
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name != '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("tbl"), r.get("col"), family(r.get("ty")), r.get("not_null")))
    .collect();
    // Primary keys and UNIQUE constraints are indexes in PostgreSQL and implicit in SQLite.
    let indexes = sqlx::query_scalar::<_, String>(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'
         AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let triggers = sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT trigger_name::text FROM information_schema.triggers WHERE trigger_schema = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    pool.close().await;
    (columns, indexes, triggers)
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (lite_columns, lite_indexes, lite_triggers) = sqlite_schema(dir.path()).await;
    let db = TestDatabase::create().await;
    let (pg_columns, pg_indexes, pg_triggers) = postgres_schema(&db.url).await;
    drop(db);

    let only = |a: &BTreeSet<Column>, b: &BTreeSet<Column>| a.difference(b).cloned().collect::<Vec<_>>();
    assert!(
        lite_columns == pg_columns,
        "columns only in SQLite: {:?}\ncolumns only in PostgreSQL: {:?}",
        only(&lite_columns, &pg_columns),
        only(&pg_columns, &lite_columns)
    );
    assert!(lite_columns.len() > 100, "the whole schema was read: {} columns", lite_columns.len());
    assert_eq!(lite_indexes, pg_indexes);
    assert_eq!(lite_triggers, pg_triggers);
}
