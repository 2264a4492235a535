//! The nodes sharing the database and the leases between them (
//! docs/nodes.md). Times are the nodes' own clocks (`now`, from the core's clock), like every
//! `…_at` column.

use super::Pool;
use crate::domain::time::Timestamp;
use crate::server::clock::timestamp;
use sqlx::Result;

/// Records `id` as a live node (a restarted node draws a new id).
pub async fn join(db: &Pool, now: Timestamp, id: &str, address: Option<&str>) -> Result<()> {
    sqlx::query(
        "INSERT INTO nodes (id, started_at, heartbeat_at, address) VALUES ($1, $2, $2, $3)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    )
    .bind(id)
    .bind(now)
    .bind(address)
    .execute(db)
    .await?;
    Ok(())
}

/// The node says it is alive.
pub async fn heartbeat(db: &Pool, now: Timestamp, id: &str) -> Result<()> {
    let done = sqlx::query("UPDATE nodes SET heartbeat_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        // Swept by another node after a long pause: it is back.
        join(db, now, id, None).await?;
    }
    Ok(())
}

/// Marks disconnected the instances of every node that has not heartbeaten for
/// `timeout_ms` before `now` (and those of no known node), then forgets nodes silent for an hour.
/// Returns how many instances it marked.
pub async fn sweep(db: &Pool, now: Timestamp, timeout_ms: i64) -> Result<u64> {
    let marked = sqlx::query(
        "UPDATE instances SET connected = 0
          WHERE connected = 1
            AND (node IS NULL
                 OR node NOT IN (SELECT id FROM nodes WHERE heartbeat_at >= $1))",
    )
    .bind(timestamp(now.unix_ms() - timeout_ms))
    .execute(db)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1")
        .bind(timestamp(now.unix_ms() - 3_600_000))
        .execute(db)
        .await?;
    Ok(marked)
}

/// Takes or renews the lease `name` for `holder` until `ttl_ms` from now: true when
/// `holder` holds it at `now` (it held it, or the last holder's lease had expired).
pub async fn take_lease(
    db: &Pool,
    now: Timestamp,
    name: &str,
    holder: &str,
    ttl_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
          WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
    )
    .bind(name)
    .bind(holder)
    .bind(timestamp(now.unix_ms() + ttl_ms))
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the lease up (a node shutting down), so another takes it at once.
pub async fn release_lease(db: &Pool, name: &str, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(db)
        .await?;
    Ok(())
}

/// The holder of lease `name` while it has not expired.
pub async fn lease_holder(db: &Pool, now: Timestamp, name: &str) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2")
        .bind(name)
        .bind(now)
        .fetch_optional(db)
        .await
}
