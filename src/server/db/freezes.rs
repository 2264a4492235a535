//! Freeze windows per environment (the arithmetic is `server::freezes`).

use super::Tx;
use crate::model::Timestamp;
use sqlx::FromRow;
use sqlx::Result;

/// A stored window: one-off (`starts_at`, `ends_at`) or weekly (the other five), as the
/// table's check guarantees.
#[derive(Debug, Clone, FromRow)]
pub struct FreezeRow {
    pub id: i64,
    pub reason: String,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub from_day: Option<String>,
    pub from_time: Option<String>,
    pub to_day: Option<String>,
    pub to_time: Option<String>,
    pub time_zone: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, reason, starts_at, ends_at, from_day, from_time, to_day, to_time, \
                       time_zone, created_by, created_at";

/// A window to store; the weekly fields are `(from_day, from_time, to_day, to_time, zone)`.
pub struct NewFreeze<'a> {
    pub env_id: i64,
    pub reason: &'a str,
    pub once: Option<(Timestamp, Timestamp)>,
    pub weekly: Option<(&'a str, &'a str, &'a str, &'a str, &'a str)>,
    pub created_by: &'a str,
    pub created_at: Timestamp,
}

/// An environment's windows, oldest first.
pub async fn list(db: impl super::Executor<'_>, env_id: i64) -> Result<Vec<FreezeRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM freeze_windows WHERE env_id = $1 ORDER BY id"
    ))
    .bind(env_id)
    .fetch_all(db)
    .await
}

/// The windows of the environment named `env`, oldest first.
pub async fn of_env(db: impl super::Executor<'_>, env: &str) -> Result<Vec<FreezeRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM freeze_windows
         WHERE env_id = (SELECT id FROM environments WHERE name = $1) ORDER BY id"
    ))
    .bind(env)
    .fetch_all(db)
    .await
}

pub async fn count(db: impl super::Executor<'_>, env_id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM freeze_windows WHERE env_id = $1")
        .bind(env_id)
        .fetch_one(db)
        .await
}

pub async fn insert(tx: &mut Tx<'_>, new: NewFreeze<'_>) -> Result<FreezeRow> {
    let (starts_at, ends_at) = new.once.unzip();
    let (from_day, from_time, to_day, to_time, time_zone) = match new.weekly {
        Some((a, b, c, d, e)) => (Some(a), Some(b), Some(c), Some(d), Some(e)),
        None => (None, None, None, None, None),
    };
    sqlx::query_as(&format!(
        "INSERT INTO freeze_windows (env_id, reason, starts_at, ends_at, from_day, from_time,
             to_day, to_time, time_zone, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING {COLUMNS}"
    ))
    .bind(new.env_id)
    .bind(new.reason)
    .bind(starts_at)
    .bind(ends_at)
    .bind(from_day)
    .bind(from_time)
    .bind(to_day)
    .bind(to_time)
    .bind(time_zone)
    .bind(new.created_by)
    .bind(new.created_at)
    .fetch_one(&mut **tx)
    .await
}

/// Deletes window `id` of the environment; the deleted row, if there was one.
pub async fn delete(tx: &mut Tx<'_>, env_id: i64, id: i64) -> Result<Option<FreezeRow>> {
    sqlx::query_as(&format!(
        "DELETE FROM freeze_windows WHERE env_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(env_id)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}
