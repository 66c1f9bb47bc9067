//! Scenario 5's history: already-processed events written straight into a stopped router's
//! SQLite file, each with what the router itself would have left behind: a route result, a
//! delivered delivery and its one attempt. Columns are named explicitly; any others keep their
//! defaults, so the schema may grow without breaking this.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Sqlite, SqliteConnection};

/// Rows per INSERT: at 16 binds per delivery row, far below SQLite's limit of 32,766.
const CHUNK: usize = 1_000;
/// The history spans the week before the run.
const SPAN_MS: i64 = 7 * 24 * 3600 * 1000;

/// One prefilled event and the ids and times of its rows.
struct Row {
    event: String,
    delivery: String,
    received_at: i64,
    raw: Vec<u8>,
    data: String,
}

/// Inserts `n` processed events of tenant `bench` (route `r`, delivered to `url`) into
/// `data_dir/switchyard.db` in one transaction. Returns the time it took.
pub async fn prefill(data_dir: &Path, n: usize, url: &str, secret: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut db = SqliteConnectOptions::new()
        .filename(data_dir.join("switchyard.db"))
        .journal_mode(SqliteJournalMode::Wal)
        // One transaction, one sync at its commit; the router's own setting is not changed.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .connect()
        .await
        .context("opening the router's database")?;
    let tenant: String = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'bench'").fetch_one(&mut db).await?;
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM route_sets WHERE tenant_id = ?")
        .bind(&tenant)
        .fetch_one(&mut db)
        .await?;
    let mut seed: serde_json::Value = serde_json::from_slice(&std::fs::read(
        crate::plugins::repo_root().join("tests/fixtures/call-tracking/call_outcome_tagged.json"),
    )?)?;
    let first_ms = chrono::Utc::now().timestamp_millis() - SPAN_MS;
    let mut tx = db.begin().await?;
    for start in (0..n).step_by(CHUNK) {
        let rows: Vec<Row> = (start..(start + CHUNK).min(n))
            .map(|i| {
                // Ids far above the measured events', so nothing here is mistaken for them.
                seed["data"]["id"] = json!(1_000_000_000 + i);
                let received_at = first_ms + (i as i64 * SPAN_MS) / n as i64;
                Row {
                    event: id("evt_", received_at),
                    delivery: id("dlv_", received_at + 5),
                    received_at,
                    raw: serde_json::to_vec(&seed).expect("JSON"),
                    data: seed["data"].to_string(),
                }
            })
            .collect();
        insert(&mut tx, &rows, &tenant, version, url, secret).await?;
    }
    tx.commit().await?;
    // Closing checkpoints the write-ahead log into the database file, as a stopped router's is.
    db.close().await?;
    Ok(started.elapsed())
}

/// A router-style id: prefix and a lowercase ULID of the row's time.
fn id(prefix: &str, ms: i64) -> String {
    format!("{prefix}{}", ulid::Ulid::from_parts(ms as u64, rand::random()).to_string().to_lowercase())
}

async fn insert(
    tx: &mut SqliteConnection,
    rows: &[Row],
    tenant: &str,
    version: i64,
    url: &str,
    secret: &str,
) -> anyhow::Result<()> {
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    QueryBuilder::<Sqlite>::new(
        "INSERT INTO events (id, tenant_id, source, upstream_id, event_type, time, data, raw, received_at, status, \
         processed_at, route_version) ",
    )
    .push_values(rows, |mut b, r| {
        b.push_bind(&r.event)
            .push_bind(tenant)
            .push_bind("calls")
            // Shaped like the router's own body hash, which cannot collide with these.
            .push_bind(format!("sha256:{}", &r.event[4..]))
            .push_bind("call.outcome_tagged")
            .push_bind(time(r.received_at))
            .push_bind(&r.data)
            .push_bind(&r.raw)
            .push_bind(r.received_at)
            .push_bind("processed")
            .push_bind(r.received_at + 4)
            .push_bind(version);
    })
    .build()
    .execute(&mut *tx)
    .await?;
    QueryBuilder::<Sqlite>::new("INSERT INTO route_results (event_id, route, outcome, outputs) ")
        .push_values(rows, |mut b, r| {
            b.push_bind(&r.event).push_bind("r").push_bind("emitted").push_bind(1);
        })
        .build()
        .execute(&mut *tx)
        .await?;
    QueryBuilder::<Sqlite>::new(
        "INSERT INTO deliveries (id, tenant_id, event_id, route, url, secret, event_type, content_type, body, status, \
         attempts, tries, next_attempt_at, last_status, created_at, updated_at) ",
    )
    .push_values(rows, |mut b, r| {
        b.push_bind(&r.delivery)
            .push_bind(tenant)
            .push_bind(&r.event)
            .push_bind("r")
            .push_bind(url)
            .push_bind(secret)
            .push_bind("call.outcome_tagged")
            .push_bind("application/json")
            .push_bind(r.data.as_bytes())
            .push_bind("delivered")
            .push_bind(1)
            .push_bind(1)
            .push_bind(r.received_at + 5)
            .push_bind(200)
            .push_bind(r.received_at + 5)
            .push_bind(r.received_at + 9);
    })
    .build()
    .execute(&mut *tx)
    .await?;
    QueryBuilder::<Sqlite>::new(
        "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, response_snippet) ",
    )
    .push_values(rows, |mut b, r| {
        b.push_bind(&r.delivery).push_bind(1).push_bind(r.received_at + 6).push_bind(3).push_bind(200).push_bind("ok");
    })
    .build()
    .execute(&mut *tx)
    .await?;
    Ok(())
}
