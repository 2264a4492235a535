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
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

/// Opens (creating if needed) the database in WAL mode and runs the migrations.
/// A start-up step: its error (a process error) names the URL and what failed.
pub async fn connect(url: &str) -> anyhow::Result<SqlitePool> {
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
pub async fn ping(pool: &SqlitePool) -> std::result::Result<(), ()> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|e| tracing::warn!(error = %e, "the database does not answer"))
}
