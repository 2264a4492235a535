//! Sign-in attempts shared by every node (PostgreSQL; docs/nodes.md#sign-in-limits-across-nodes): the
//! same limits as the in-memory throttle (`auth::LoginThrottle`), counted over all nodes.

use super::Pool;
use crate::domain::time::Timestamp;
use sqlx::Result;

/// Why an attempt was refused: which count is full, and how long until its oldest
/// attempt leaves the window (ms).
pub enum Full {
    Source(i64),
    Pair(i64),
}

/// Counts an attempt by `username` (when it can be a user's) from `source` against the
/// attempts of the `window_ms` before `now` on every node: `Ok(id)` of the row that counts it
/// (removed again by [`forget`] when it was no failure), or the count that is full.
pub async fn reserve(
    db: &Pool,
    now: Timestamp,
    source: &str,
    username: Option<&str>,
    window_ms: i64,
    (per_source, per_pair): (i64, i64),
) -> Result<std::result::Result<i64, Full>> {
    let since = crate::server::clock::timestamp(now.unix_ms() - window_ms);
    let mut tx = super::begin_write(db).await?;
    sqlx::query("DELETE FROM login_attempts WHERE at < $1")
        .bind(since)
        .execute(&mut *tx)
        .await?;
    let wait = |oldest: Option<crate::model::Timestamp>| {
        oldest
            .map_or(0, |t| t.unix_ms() + window_ms - now.unix_ms())
            .max(1)
    };
    let (count, oldest): (i64, Option<crate::model::Timestamp>) =
        sqlx::query_as("SELECT COUNT(*), min(at) FROM login_attempts WHERE source = $1")
            .bind(source)
            .fetch_one(&mut *tx)
            .await?;
    if count >= per_source {
        return Ok(Err(Full::Source(wait(oldest))));
    }
    if let Some(name) = username {
        let (count, oldest): (i64, Option<crate::model::Timestamp>) = sqlx::query_as(
            "SELECT COUNT(*), min(at) FROM login_attempts WHERE username = $1 AND source = $2",
        )
        .bind(name)
        .bind(source)
        .fetch_one(&mut *tx)
        .await?;
        if count >= per_pair {
            return Ok(Err(Full::Pair(wait(oldest))));
        }
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO login_attempts (source, username, at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(source)
    .bind(username)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(id))
}

/// The attempt `id` was no failure (not verified, or it signed in); on a sign-in, also
/// that username's earlier failures from that source (`pair`).
pub async fn forget(db: &Pool, id: i64, pair: Option<(&str, &str)>) -> Result<()> {
    sqlx::query("DELETE FROM login_attempts WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    if let Some((username, source)) = pair {
        sqlx::query("DELETE FROM login_attempts WHERE username = $1 AND source = $2")
            .bind(username)
            .bind(source)
            .execute(db)
            .await?;
    }
    Ok(())
}
