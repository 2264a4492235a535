use super::Tx;
use crate::domain::format::ConfigFormat;
use crate::model::Timestamp;
use crate::model::{Config, ConfigPath, EnvPath, Version, VersionSummary};
use sqlx::FromRow;
use sqlx::Result;

#[derive(FromRow)]
struct ConfigRow {
    id: i64,
    namespace: String,
    env: String,
    key: String,
    format: ConfigFormat,
    latest_version: i64,
    stable_version: Option<i64>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// A config with its row id, for the operations that go on to its versions.
pub struct StoredConfig {
    pub id: i64,
    pub config: Config,
}

impl From<ConfigRow> for StoredConfig {
    fn from(r: ConfigRow) -> Self {
        StoredConfig {
            id: r.id,
            config: Config {
                namespace: r.namespace,
                env: r.env,
                key: r.key,
                format: r.format,
                latest_version: r.latest_version,
                stable_version: r.stable_version,
                lanes: Vec::new(),
                created_at: r.created_at,
                updated_at: r.updated_at,
                aborted_lane: None,
                unreviewed_overrides: Vec::new(),
            },
        }
    }
}

const SELECT: &str = "SELECT c.id, n.name AS namespace, e.name AS env, c.key, c.format,
        c.latest_version, c.stable_version, c.created_at, c.updated_at
   FROM configs c
   JOIN namespaces n ON n.id = c.namespace_id
   JOIN environments e ON e.id = c.env_id";

pub async fn find(db: impl super::Executor<'_>, path: &ConfigPath) -> Result<Option<StoredConfig>> {
    let row: Option<ConfigRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE n.name = $1 AND e.name = $2 AND c.key = $3 AND c.deleted_at IS NULL"
    ))
    .bind(&path.namespace)
    .bind(&path.env)
    .bind(&path.key)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// The configs of one namespace in one environment, by key.
pub async fn list(
    db: impl super::Executor<'_>,
    namespace_id: i64,
    env_id: i64,
) -> Result<Vec<Config>> {
    let rows: Vec<ConfigRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE c.namespace_id = $1 AND c.env_id = $2 AND c.deleted_at IS NULL ORDER BY c.key"
    ))
    .bind(namespace_id)
    .bind(env_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StoredConfig::from(r).config)
        .collect())
}

/// Inserts a config whose latest version is 1 (the caller inserts that version).
pub async fn insert(
    tx: &mut Tx<'_>,
    namespace_id: i64,
    env_id: i64,
    key: &str,
    format: ConfigFormat,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO configs (namespace_id, env_id, key, format, latest_version)
         VALUES ($1, $2, $3, $4, 1) RETURNING id",
    )
    .bind(namespace_id)
    .bind(env_id)
    .bind(key)
    .bind(format.as_str())
    .fetch_one(&mut **tx)
    .await
}

/// Moves the latest version from `base` to `base + 1`; false when `base` is
/// no longer the latest (someone saved in between).
pub async fn advance_latest(
    tx: &mut Tx<'_>,
    now: crate::domain::time::Timestamp,
    config_id: i64,
    base: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE configs
            SET latest_version = latest_version + 1,
                updated_at = $3
          WHERE id = $1 AND latest_version = $2",
    )
    .bind(config_id)
    .bind(base)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_stable(
    tx: &mut Tx<'_>,
    now: crate::domain::time::Timestamp,
    config_id: i64,
    version: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE configs
            SET stable_version = $1, updated_at = $3
          WHERE id = $2",
    )
    .bind(version)
    .bind(config_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks a live config deleted; its versions, release events and lanes stay
/// with its row as history, and its key is free for a new config.
pub async fn mark_deleted(
    tx: &mut Tx<'_>,
    now: crate::domain::time::Timestamp,
    config_id: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE configs
            SET deleted_at = $2,
                updated_at = $2
          WHERE id = $1",
    )
    .bind(config_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct VersionRow {
    version: i64,
    content: String,
    checksum: String,
    message: String,
    author: String,
    created_at: Timestamp,
}

impl From<VersionRow> for Version {
    fn from(r: VersionRow) -> Self {
        Version {
            version: r.version,
            content: r.content,
            checksum: r.checksum,
            message: r.message,
            author: r.author,
            created_at: r.created_at,
        }
    }
}

const VERSION_COLUMNS: &str = "version, content, checksum, message, author, created_at";

/// A version about to be stored.
pub struct NewVersionRow<'a> {
    pub config_id: i64,
    pub version: i64,
    pub content: &'a str,
    pub checksum: &'a str,
    pub message: &'a str,
    pub author: &'a str,
}

pub async fn insert_version(tx: &mut Tx<'_>, v: NewVersionRow<'_>) -> Result<Version> {
    let row: VersionRow = sqlx::query_as(&format!(
        "INSERT INTO versions (config_id, version, content, checksum, message, author)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {VERSION_COLUMNS}"
    ))
    .bind(v.config_id)
    .bind(v.version)
    .bind(v.content)
    .bind(v.checksum)
    .bind(v.message)
    .bind(v.author)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

pub async fn version(
    db: impl super::Executor<'_>,
    config_id: i64,
    version: i64,
) -> Result<Option<Version>> {
    let row: Option<VersionRow> = sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE config_id = $1 AND version = $2"
    ))
    .bind(config_id)
    .bind(version)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

#[derive(FromRow)]
struct SummaryRow {
    version: i64,
    checksum: String,
    message: String,
    author: String,
    created_at: Timestamp,
}

/// The `limit` newest versions of a config older than `before` (of all, without it), newest
/// first, without their content.
pub async fn version_summaries(
    db: impl super::Executor<'_>,
    config_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<VersionSummary>> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "SELECT version, checksum, message, author, created_at FROM versions
          WHERE config_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
    )
    .bind(config_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| VersionSummary {
            version: r.version,
            checksum: r.checksum,
            message: r.message,
            author: r.author,
            created_at: r.created_at,
        })
        .collect())
}

/// The ids of a namespace and an environment, each `None` when it does not exist.
pub async fn env_ids(
    db: impl super::Executor<'_>,
    at: &EnvPath,
) -> Result<(Option<i64>, Option<i64>)> {
    sqlx::query_as(
        "SELECT (SELECT id FROM namespaces WHERE name = $1), (SELECT id FROM environments WHERE name = $2)",
    )
    .bind(&at.namespace)
    .bind(&at.env)
    .fetch_one(db)
    .await
}
