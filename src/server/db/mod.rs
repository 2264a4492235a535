//! All SQL lives under this module, one file per table group, so a second
//! database backend touches only here.

pub mod audit;
mod columns;
pub mod configs;
pub mod environments;
pub mod lanes;
pub mod namespaces;
pub mod plans;
pub mod releases;
pub mod subscribers;
pub mod templates;
pub mod tokens;
pub mod users;
pub mod watch;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

// The engine is named in this module alone. Everything outside `db` speaks of
// `db::Pool`, `db::Conn`, `db::Tx`, `db::Executor` and `db::SessionStore`, and
// every engine-specific piece of SQL (placeholders, `strftime`, `randomblob`,
// `BEGIN IMMEDIATE`, FTS5 and its quoting, trigger errors) is written here, so a
// second engine is work in this module and in its migrations.
type Engine = sqlx::Sqlite;
/// The connection pool.
pub type Pool = sqlx::Pool<Engine>;
/// One connection (inside a transaction: `&mut *tx`).
pub type Conn = <Engine as sqlx::Database>::Connection;
pub type Tx<'a> = sqlx::Transaction<'a, Engine>;
/// Anything a query runs on: `&Pool`, `&mut Conn`.
pub trait Executor<'c>: sqlx::Executor<'c, Database = Engine> {}
impl<'c, T: sqlx::Executor<'c, Database = Engine>> Executor<'c> for T {}
/// Where the dashboard's sessions are kept: the same database.
pub type SessionStore = tower_sessions_sqlx_store::SqliteStore;

/// The session store on `pool`, its table created if missing.
pub async fn session_store(pool: &Pool) -> sqlx::Result<SessionStore> {
    let store = SessionStore::new(pool.clone());
    store.migrate().await?;
    Ok(store)
}

/// A write transaction: it takes the write lock at once, so reading the current state and
/// then changing it cannot be interleaved with another writer, and it waits for the lock
/// (up to the busy timeout) instead of failing when another writer came first, which a
/// deferred transaction that reads before it writes would.
pub async fn begin_write(pool: &Pool) -> sqlx::Result<Tx<'static>> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Whether `e` is a unique-constraint violation (the caller answers 409).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Opens (creating if needed) the database in WAL mode and runs the migrations.
/// A start-up step: its error (a process error) names the URL and what failed.
pub async fn connect(url: &str) -> anyhow::Result<Pool> {
    use anyhow::Context;
    // sqlx would take `mysql://host/db` as a relative SQLite file path and create it.
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme != "sqlite" {
            anyhow::bail!(
                "unsupported database URL {url:?}: graycast stores its data in SQLite; use sqlite://PATH"
            );
        }
    }
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("invalid database URL {url:?}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let filename = options.get_filename();
    if let Some(dir) = filename.parent() {
        if !dir.as_os_str().is_empty() && filename.as_os_str() != ":memory:" {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "could not create the directory {} for the database {url:?}",
                    dir.display()
                )
            })?;
        }
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(flat)
        .with_context(|| format!("could not open the database {url:?}"))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(flat)
        .with_context(|| format!("could not migrate the database {url:?}"))?;
    Ok(pool)
}

/// sqlx's messages already include their source: keep them, not their chain too.
fn flat(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Whether the database answers queries (the readiness probe).
pub async fn ping(pool: &Pool) -> std::result::Result<(), ()> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|e| tracing::warn!(error = %e, "the database does not answer"))
}
