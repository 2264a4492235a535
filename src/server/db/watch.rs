//! What the push hub reads: the tail of the release-event sequence and, per
//! config, everything needed to resolve it for any subscriber (the stable
//! release and the active lanes, each with its content).

use crate::model::{ConfigPath, EnvPath};
use sqlx::FromRow;
use sqlx::Result;

/// A release event as the hub needs it: its number and the config it touched.
#[derive(Debug, Clone, FromRow)]
pub struct TailEvent {
    pub id: i64,
    pub namespace: String,
    pub env: String,
    pub key: String,
}

/// Release events after `after`, in sequence order.
///
/// The push hub remembers only the highest id it has processed and asks for
/// the ids above it, so it relies on this: **an id becomes visible only after
/// every smaller id is visible** (ids are handed out in commit order). SQLite
/// gives that for free, since one writer at a time assigns `id` inside its
/// write transaction. A database with concurrent writers (PostgreSQL with
/// sequences) does not: a transaction can commit id 11 while id 10's is still
/// open, and a tail that read 11 would skip 10 forever. On PostgreSQL the
/// guarantee is kept by [`super::begin_write`]: every write transaction takes
/// one advisory lock first, so ids are drawn and committed in one order.
pub async fn tail(conn: &mut super::Conn, after: i64) -> Result<Vec<TailEvent>> {
    sqlx::query_as(
        "SELECT r.id, n.name AS namespace, e.name AS env, c.key
           FROM release_events r
           JOIN configs c ON c.id = r.config_id
           JOIN namespaces n ON n.id = c.namespace_id
           JOIN environments e ON e.id = c.env_id
          WHERE r.id > $1
          ORDER BY r.id",
    )
    .bind(after)
    .fetch_all(conn)
    .await
}

/// The number of the newest release event (0 when there is none).
pub async fn last_event_id(conn: impl super::Executor<'_>) -> Result<i64> {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM release_events")
        .fetch_one(conn)
        .await
}

/// A config's row as the hub needs it.
#[derive(Debug, Clone, FromRow)]
pub struct ConfigHead {
    pub id: i64,
    pub key: String,
    pub format: crate::domain::format::ConfigFormat,
    pub stable_version: Option<i64>,
    /// The newest release event of this config (0 when there is none).
    pub event_id: i64,
}

const HEAD: &str = "SELECT c.id, c.key, c.format, c.stable_version,
        coalesce((SELECT max(r.id) FROM release_events r WHERE r.config_id = c.id), 0) AS event_id
   FROM configs c
   JOIN namespaces n ON n.id = c.namespace_id
   JOIN environments e ON e.id = c.env_id";

pub async fn head(conn: &mut super::Conn, path: &ConfigPath) -> Result<Option<ConfigHead>> {
    sqlx::query_as(&format!(
        "{HEAD} WHERE n.name = $1 AND e.name = $2 AND c.key = $3 AND c.deleted_at IS NULL"
    ))
    .bind(&path.namespace)
    .bind(&path.env)
    .bind(&path.key)
    .fetch_optional(conn)
    .await
}

/// Every config of a namespace and environment.
pub async fn heads_in_scope(conn: &mut super::Conn, at: &EnvPath) -> Result<Vec<ConfigHead>> {
    sqlx::query_as(&format!(
        "{HEAD} WHERE n.name = $1 AND e.name = $2 AND c.deleted_at IS NULL ORDER BY c.key"
    ))
    .bind(&at.namespace)
    .bind(&at.env)
    .fetch_all(conn)
    .await
}

/// Every (namespace, environment) that has a config.
pub async fn scopes(conn: &mut super::Conn) -> Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT DISTINCT n.name, e.name
           FROM configs c
           JOIN namespaces n ON n.id = c.namespace_id
           JOIN environments e ON e.id = c.env_id
          WHERE c.deleted_at IS NULL",
    )
    .fetch_all(conn)
    .await
}

/// A version's checksum and content.
#[derive(Debug, Clone, FromRow)]
pub struct Content {
    pub checksum: String,
    pub content: String,
}

pub async fn content(
    conn: &mut super::Conn,
    config_id: i64,
    version: i64,
) -> Result<Option<Content>> {
    sqlx::query_as("SELECT checksum, content FROM versions WHERE config_id = $1 AND version = $2")
        .bind(config_id)
        .bind(version)
        .fetch_optional(conn)
        .await
}

/// An active lane with its version's content.
#[derive(Debug, Clone, FromRow)]
pub struct ActiveLane {
    pub id: i64,
    pub version: i64,
    pub selector: String,
    pub targets: super::columns::Targets,
    #[sqlx(rename = "percentage_bp")]
    pub percentage: crate::model::Percentage,
    pub stickiness: String,
    pub salt: String,
    pub priority: i64,
    pub checksum: String,
    pub content: String,
}

/// A config's active lanes in resolution order (priority, id), each with the
/// content of the version it serves.
pub async fn active_lanes(conn: &mut super::Conn, config_id: i64) -> Result<Vec<ActiveLane>> {
    sqlx::query_as(
        "SELECT l.id, l.version, l.selector, l.targets, l.percentage_bp, l.stickiness, l.salt,
                l.priority, v.checksum, v.content
           FROM lanes l
           JOIN versions v ON v.config_id = l.config_id AND v.version = l.version
          WHERE l.config_id = $1 AND l.status = 'active'
          ORDER BY l.priority, l.id",
    )
    .bind(config_id)
    .fetch_all(conn)
    .await
}

/// Per key of a namespace and environment whose config a `config.delete`
/// release event after `after` deleted (whether or not the key was created
/// again since): the newest such event.
pub async fn deletions_after(
    conn: &mut super::Conn,
    at: &EnvPath,
    after: i64,
) -> Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT c.key, max(r.id)
           FROM release_events r
           JOIN configs c ON c.id = r.config_id
           JOIN namespaces n ON n.id = c.namespace_id
           JOIN environments e ON e.id = c.env_id
          WHERE n.name = $1 AND e.name = $2 AND r.kind = 'config.delete' AND r.id > $3
          GROUP BY c.key",
    )
    .bind(&at.namespace)
    .bind(&at.env)
    .bind(after)
    .fetch_all(conn)
    .await
}
