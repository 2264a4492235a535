//! All SQL lives under this module, one file per table group, so a second
//! database backend touches only here.

pub mod audit;
pub mod configs;
pub mod environments;
pub mod lanes;
pub mod namespaces;
pub mod releases;
pub mod subscribers;
pub mod tokens;
pub mod users;
pub mod watch;

use crate::model::Role;
use crate::server::FirstStart;
use crate::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

/// Opens (creating if needed) the database in WAL mode and runs the migrations.
/// A start-up step: its error (a process error) names the URL and what failed.
pub async fn connect(url: &str) -> anyhow::Result<SqlitePool> {
    use anyhow::Context;
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

pub const DEFAULT_ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// On first start (no users yet): creates the default environments and the
/// `admin` user. Returns what was created, or `None` on later starts.
pub async fn seed(pool: &SqlitePool, admin_password: Option<&str>) -> Result<Option<FirstStart>> {
    if users::count(pool).await? > 0 {
        return Ok(None);
    }
    let generated = admin_password
        .is_none()
        .then(crate::server::auth::random_password);
    let password = admin_password
        .map(str::to_string)
        .or_else(|| generated.clone())
        .unwrap_or_default();
    let hash = crate::server::auth::hash_password(&password).await?;
    let mut tx = pool.begin().await?;
    for env in DEFAULT_ENVIRONMENTS {
        if environments::find(&mut tx, env).await?.is_none() {
            environments::insert(&mut tx, env).await?;
            audit::record(
                &mut tx,
                audit::NewEntry::new("system", "environment.create")
                    .env(env)
                    .details(serde_json::json!({ "name": env, "reason": "first start" })),
            )
            .await?;
        }
    }
    let id = users::insert(&mut tx, "admin", &hash, Role::Admin, None).await?;
    audit::record(
        &mut tx,
        audit::NewEntry::new("system", "user.create")
            .details(serde_json::json!({ "id": id, "username": "admin", "role": "admin", "reason": "first start" })),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(FirstStart {
        admin_password_generated: generated,
    }))
}
