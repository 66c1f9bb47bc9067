//! The two databases the store runs on: an embedded SQLite file (one router process), or
//! PostgreSQL (the database several router nodes will share).
//!
//! Every query is compiled once per backend: `on_pool!` and `on_tx!` expand one body into
//! a `match` with one arm per backend, each with its own concrete types (`DB` names the
//! backend inside the body, for `QueryBuilder::<DB>`). So SQLite pays one branch per
//! statement, not `sqlx::Any`'s conversion of every argument and row. SQL is written once,
//! with `$1..$N` placeholders, which both drivers accept; where the dialects truly differ the
//! body takes the text from `dialect::Dialect`, implemented for each backend in one file.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, Postgres, Sqlite, Transaction};

use super::{Result, StoreError};

/// A pool of connections to one of the backends.
#[derive(Clone, Debug)]
pub(super) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An open transaction on one of the backends.
pub(super) enum Tx<'c> {
    Sqlite(Transaction<'c, Sqlite>),
    Postgres(Transaction<'c, Postgres>),
}

/// One connection taken from the pool and kept (the writer's).
pub(super) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// Runs `$body` with `$p` bound to the pool of whichever backend `$db` is, compiled once per
/// backend; `DB` is that backend's `sqlx::Database` inside the body.
macro_rules! on_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::backend::Db::Sqlite($p) => {
                #[allow(dead_code)]
                type DB = ::sqlx::Sqlite;
                $body
            }
            $crate::store::backend::Db::Postgres($p) => {
                #[allow(dead_code)]
                type DB = ::sqlx::Postgres;
                $body
            }
        }
    };
}

/// `on_pool!` for a transaction: `$c` is the backend's `sqlx::Transaction` (execute on
/// `&mut **$c`).
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::backend::Tx::Sqlite($c) => {
                #[allow(dead_code)]
                type DB = ::sqlx::Sqlite;
                $body
            }
            $crate::store::backend::Tx::Postgres($c) => {
                #[allow(dead_code)]
                type DB = ::sqlx::Postgres;
                $body
            }
        }
    };
}

/// Where the store lives, as `database_url` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://<path>` (or `sqlite:<path>`): an embedded file.
    Sqlite(String),
    /// `postgres://...` or `postgresql://...`.
    Postgres(String),
}

impl DatabaseUrl {
    /// Accepts the URL schemes the store knows; the error says which ones.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_owned()))
        } else {
            Err("must start with postgres:// (PostgreSQL) or sqlite: (an SQLite file)".into())
        }
    }

    /// The SQLite file `switchyard.db` in `dir`: the default.
    pub fn sqlite_in(dir: &std::path::Path) -> Self {
        Self::Sqlite(format!("sqlite://{}", dir.join("switchyard.db").display()))
    }

    /// The URL without its password, for logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(url) | Self::Postgres(url) => redact_url(url),
        }
    }
}

/// `url` with its password (if any) replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Db {
    /// Connects and applies the backend's pending migrations.
    pub(super) async fn connect(url: &DatabaseUrl) -> Result<Self> {
        match url {
            DatabaseUrl::Sqlite(url) => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: an acknowledged event survives power loss too, not only a process crash.
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let file = options.get_filename();
                if file != std::path::Path::new(":memory:") {
                    super::create_private_file(file)?;
                }
                let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                Ok(Self::Sqlite(pool))
            }
            DatabaseUrl::Postgres(url) => {
                let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
                // The migrator holds an advisory lock: nodes starting together migrate once.
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    pub(super) async fn begin(&self) -> Result<Tx<'static>> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    pub(super) async fn acquire(&self) -> Result<Conn> {
        Ok(match self {
            Db::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Db::Postgres(p) => Conn::Postgres(p.acquire().await?),
        })
    }

    pub(super) async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

impl Conn {
    pub(super) async fn begin(&mut self) -> Result<Tx<'_>> {
        Ok(match self {
            Conn::Sqlite(c) => Tx::Sqlite(c.begin().await?),
            Conn::Postgres(c) => Tx::Postgres(c.begin().await?),
        })
    }
}

impl Tx<'_> {
    pub(super) async fn commit(self) -> Result<()> {
        on_tx!(self, c => c.commit().await.map_err(StoreError::from))
    }
}

/// Text-stored enums (statuses, outcomes, origins): encoded and decoded as their lowercase
/// name on every backend. (sqlx's derive would expect a PostgreSQL enum type.)
macro_rules! text_enum {
    ($ty:ty { $($variant:ident = $name:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($ty))),
                }
            }
        }

        impl<DB: ::sqlx::Database> ::sqlx::Type<DB> for $ty
        where
            str: ::sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as ::sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as ::sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: ::sqlx::Database> ::sqlx::Encode<'q, DB> for $ty
        where
            &'q str: ::sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as ::sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&'q str as ::sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: ::sqlx::Database> ::sqlx::Decode<'r, DB> for $ty
        where
            &'r str: ::sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as ::sqlx::Database>::ValueRef<'r>) -> Result<Self, ::sqlx::error::BoxDynError> {
                Ok(<&'r str as ::sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }
    };
}

/// A JSON document stored as TEXT (both backends keep JSON as text, so they return the same
/// bytes); decoded by the row that holds it (`#[sqlx(try_from = "JsonText")]`), and a value
/// that does not decode is an error.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub(super) struct JsonText(pub String);

impl TryFrom<JsonText> for Vec<String> {
    type Error = serde_json::Error;
    fn try_from(text: JsonText) -> Result<Self, Self::Error> {
        serde_json::from_str(&text.0)
    }
}
