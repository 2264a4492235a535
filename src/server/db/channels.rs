//! Notification channels and their deliveries (the sender is `server::notifier`).

use super::Tx;
use crate::domain::audit::AuditAction;
use crate::model::{ChannelFormat, Delivery, DeliveryStatus, Timestamp};
use sqlx::FromRow;
use sqlx::Result;

/// A stored channel, secret included (never shown: `ops::channels` leaves it out).
#[derive(Debug, Clone, FromRow)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub secret: String,
    pub format: ChannelFormat,
    /// A JSON array of patterns.
    pub events: String,
    pub namespace: Option<String>,
    pub env: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
}

impl ChannelRow {
    /// The event filter's patterns (a corrupt column reads as no pattern, which matches
    /// nothing: never more than was asked for).
    pub fn patterns(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_else(|_| vec![String::new()])
    }
}

const CHANNEL: &str =
    "id, name, url, secret, format, events, namespace, env, created_by, created_at";

pub struct NewChannelRow<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub secret: &'a str,
    pub format: ChannelFormat,
    pub events: &'a str,
    pub namespace: Option<&'a str>,
    pub env: Option<&'a str>,
    pub created_by: &'a str,
    pub created_at: Timestamp,
}

pub async fn insert(tx: &mut Tx<'_>, c: NewChannelRow<'_>) -> Result<ChannelRow> {
    sqlx::query_as(&format!(
        "INSERT INTO notification_channels (name, url, secret, format, events, namespace, env,
             created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {CHANNEL}"
    ))
    .bind(c.name)
    .bind(c.url)
    .bind(c.secret)
    .bind(c.format)
    .bind(c.events)
    .bind(c.namespace)
    .bind(c.env)
    .bind(c.created_by)
    .bind(c.created_at)
    .fetch_one(&mut **tx)
    .await
}

pub async fn count(db: impl super::Executor<'_>) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM notification_channels")
        .fetch_one(db)
        .await
}

/// Every channel, oldest first (there are at most `ops::channels::MAX_CHANNELS`).
pub async fn list(db: impl super::Executor<'_>) -> Result<Vec<ChannelRow>> {
    sqlx::query_as(&format!(
        "SELECT {CHANNEL} FROM notification_channels ORDER BY id"
    ))
    .fetch_all(db)
    .await
}

pub async fn get(db: impl super::Executor<'_>, id: i64) -> Result<Option<ChannelRow>> {
    sqlx::query_as(&format!(
        "SELECT {CHANNEL} FROM notification_channels WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Deletes the channel and its deliveries; the deleted channel, if there was one.
pub async fn delete(tx: &mut Tx<'_>, id: i64) -> Result<Option<ChannelRow>> {
    sqlx::query("DELETE FROM notification_deliveries WHERE channel_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query_as(&format!(
        "DELETE FROM notification_channels WHERE id = $1 RETURNING {CHANNEL}"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// Writes a delivery of audit entry `audit_id` for every channel whose scope and event filter
/// take it, in the entry's own transaction.
pub async fn enqueue(
    tx: &mut Tx<'_>,
    now: Timestamp,
    audit_id: i64,
    action: AuditAction,
    namespace: Option<&str>,
    env: Option<&str>,
) -> Result<()> {
    let channels: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, events FROM notification_channels
         WHERE (namespace IS NULL OR namespace = $1) AND (env IS NULL OR env = $2)",
    )
    .bind(namespace)
    .bind(env)
    .fetch_all(&mut **tx)
    .await?;
    for (channel, events) in channels {
        let patterns: Vec<String> =
            serde_json::from_str(&events).unwrap_or_else(|_| vec![String::new()]);
        if crate::domain::notify::matches(&patterns, action) {
            insert_delivery(tx, channel, Some(audit_id), action.as_str(), now).await?;
        }
    }
    Ok(())
}

/// A pending delivery due at once.
pub async fn insert_delivery(
    tx: &mut Tx<'_>,
    channel: i64,
    audit_id: Option<i64>,
    event: &str,
    now: Timestamp,
) -> Result<Delivery> {
    let row: DeliveryRow = sqlx::query_as(&format!(
        "INSERT INTO notification_deliveries (channel_id, audit_id, event, status, created_at,
             next_attempt_at)
         VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING {DELIVERY}"
    ))
    .bind(channel)
    .bind(audit_id)
    .bind(event)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

#[derive(FromRow)]
struct DeliveryRow {
    id: i64,
    channel_id: i64,
    audit_id: Option<i64>,
    event: String,
    status: DeliveryStatus,
    attempts: i64,
    created_at: Timestamp,
    next_attempt_at: Option<Timestamp>,
    last_attempt_at: Option<Timestamp>,
    last_status: Option<i64>,
    last_error: Option<String>,
    delivered_at: Option<Timestamp>,
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        Delivery {
            id: r.id,
            channel: r.channel_id,
            event: r.event,
            audit_id: r.audit_id,
            status: r.status,
            attempts: r.attempts,
            created_at: r.created_at,
            next_attempt_at: r
                .next_attempt_at
                .filter(|_| r.status == DeliveryStatus::Pending),
            last_attempt_at: r.last_attempt_at,
            last_status: r.last_status,
            last_error: r.last_error,
            delivered_at: r.delivered_at,
        }
    }
}

const DELIVERY: &str = "id, channel_id, audit_id, event, status, attempts, created_at, \
                        next_attempt_at, last_attempt_at, last_status, last_error, delivered_at";

/// A channel's deliveries, newest first: `limit` of them older than `before`.
pub async fn deliveries(
    db: impl super::Executor<'_>,
    channel: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY} FROM notification_deliveries
         WHERE channel_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
    ))
    .bind(channel)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One delivery of a channel.
pub async fn delivery(
    db: impl super::Executor<'_>,
    channel: i64,
    id: i64,
) -> Result<Option<Delivery>> {
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY} FROM notification_deliveries WHERE channel_id = $1 AND id = $2"
    ))
    .bind(channel)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// How many deliveries of the channel wait.
pub async fn pending(db: impl super::Executor<'_>, channel: i64) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM notification_deliveries WHERE channel_id = $1 AND status = 'pending'",
    )
    .bind(channel)
    .fetch_one(db)
    .await
}

/// The channel's newest delivery that ended (delivered or given up).
pub async fn last_ended(db: impl super::Executor<'_>, channel: i64) -> Result<Option<Delivery>> {
    let row: Option<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT {DELIVERY} FROM notification_deliveries
         WHERE channel_id = $1 AND status <> 'pending' ORDER BY id DESC LIMIT 1"
    ))
    .bind(channel)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// A delivery due to be sent, with what sending it needs.
#[derive(Debug, Clone, FromRow)]
pub struct Due {
    pub id: i64,
    pub channel_id: i64,
    pub audit_id: Option<i64>,
    pub event: String,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub url: String,
    pub secret: String,
    pub format: ChannelFormat,
}

/// Up to `limit` pending deliveries due at `now` that no sender holds, oldest first.
pub async fn due(db: impl super::Executor<'_>, now: Timestamp, limit: i64) -> Result<Vec<Due>> {
    sqlx::query_as(
        "SELECT d.id, d.channel_id, d.audit_id, d.event, d.attempts, d.created_at,
                c.url, c.secret, c.format
         FROM notification_deliveries d JOIN notification_channels c ON c.id = d.channel_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1
           AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
         ORDER BY d.next_attempt_at, d.id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Takes delivery `id` for sending until `until`; false when another sender has it or it
/// ended meanwhile.
pub async fn claim(
    db: impl super::Executor<'_>,
    id: i64,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE notification_deliveries SET claimed_until = $3
         WHERE id = $1 AND status = 'pending' AND (claimed_until IS NULL OR claimed_until <= $2)",
    )
    .bind(id)
    .bind(now)
    .bind(until)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What an attempt came to.
pub struct Attempt<'a> {
    pub at: Timestamp,
    pub status: DeliveryStatus,
    /// When to try again (pending only).
    pub next: Option<Timestamp>,
    pub http_status: Option<i64>,
    pub error: Option<&'a str>,
}

/// Records an attempt of delivery `id` and frees it.
pub async fn attempted(db: impl super::Executor<'_>, id: i64, a: Attempt<'_>) -> Result<()> {
    let delivered = (a.status == DeliveryStatus::Delivered).then_some(a.at);
    sqlx::query(
        "UPDATE notification_deliveries
         SET attempts = attempts + 1, status = $2, next_attempt_at = $3, last_attempt_at = $4,
             last_status = $5, last_error = $6, delivered_at = $7, claimed_until = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(a.status)
    .bind(a.next)
    .bind(a.at)
    .bind(a.http_status)
    .bind(a.error)
    .bind(delivered)
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets deliveries that ended before `before`; how many.
pub async fn purge(db: impl super::Executor<'_>, before: Timestamp) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM notification_deliveries WHERE status <> 'pending' AND created_at < $1",
    )
    .bind(before)
    .execute(db)
    .await?
    .rows_affected())
}
