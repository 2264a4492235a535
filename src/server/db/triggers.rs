//! Trigger URLs: what each does where, and its token's hash (never the token).

use super::Tx;
use crate::model::{Timestamp, Trigger, TriggerAction};
use sqlx::FromRow;
use sqlx::Result;

#[derive(FromRow)]
struct TriggerRow {
    id: i64,
    namespace: String,
    env: String,
    key: Option<String>,
    action: TriggerAction,
    description: String,
    #[sqlx(try_from = "super::columns::Flag")]
    enabled: bool,
    created_by: String,
    created_at: Timestamp,
    last_fired_at: Option<Timestamp>,
    fired: i64,
}

impl From<TriggerRow> for Trigger {
    fn from(r: TriggerRow) -> Self {
        Trigger {
            id: r.id,
            namespace: r.namespace,
            env: r.env,
            key: r.key,
            action: r.action,
            description: r.description,
            enabled: r.enabled,
            created_by: r.created_by,
            created_at: r.created_at,
            last_fired_at: r.last_fired_at,
            fired: r.fired,
        }
    }
}

const SELECT: &str = "SELECT t.id, n.name AS namespace, e.name AS env, t.key, t.action,
        t.description, t.enabled, t.created_by, t.created_at, t.last_fired_at, t.fired
   FROM triggers t
   JOIN namespaces n ON n.id = t.namespace_id
   JOIN environments e ON e.id = t.env_id";

/// A trigger to store.
pub struct NewTriggerRow<'a> {
    pub namespace_id: i64,
    pub env_id: i64,
    pub key: Option<&'a str>,
    pub action: TriggerAction,
    pub description: &'a str,
    pub token_hash: &'a str,
    pub created_by: &'a str,
    pub created_at: Timestamp,
}

pub async fn insert(tx: &mut Tx<'_>, t: NewTriggerRow<'_>) -> Result<Trigger> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO triggers (namespace_id, env_id, key, action, description, token_hash,
                               created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(t.namespace_id)
    .bind(t.env_id)
    .bind(t.key)
    .bind(t.action)
    .bind(t.description)
    .bind(t.token_hash)
    .bind(t.created_by)
    .bind(t.created_at)
    .fetch_one(&mut **tx)
    .await?;
    find(&mut **tx, id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// How many triggers a namespace has in an environment.
pub async fn count(db: impl super::Executor<'_>, namespace_id: i64, env_id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM triggers WHERE namespace_id = $1 AND env_id = $2")
        .bind(namespace_id)
        .bind(env_id)
        .fetch_one(db)
        .await
}

/// A page of a namespace's triggers in an environment, oldest first, after id `after`.
pub async fn list(
    db: impl super::Executor<'_>,
    namespace_id: i64,
    env_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<Trigger>> {
    let rows: Vec<TriggerRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE t.namespace_id = $1 AND t.env_id = $2 AND t.id > $3
          ORDER BY t.id LIMIT $4"
    ))
    .bind(namespace_id)
    .bind(env_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn find(db: impl super::Executor<'_>, id: i64) -> Result<Option<Trigger>> {
    let row: Option<TriggerRow> = sqlx::query_as(&format!("{SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(Into::into))
}

/// The enabled trigger whose token has this hash.
pub async fn find_enabled_by_hash(
    db: impl super::Executor<'_>,
    token_hash: &str,
) -> Result<Option<Trigger>> {
    let row: Option<TriggerRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE t.token_hash = $1 AND t.enabled = 1"
    ))
    .bind(token_hash)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// Sets whether the trigger is enabled and its description.
pub async fn update(tx: &mut Tx<'_>, id: i64, enabled: bool, description: &str) -> Result<()> {
    sqlx::query("UPDATE triggers SET enabled = $2, description = $3 WHERE id = $1")
        .bind(id)
        .bind(i64::from(enabled))
        .bind(description)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Replaces the trigger's token: the old one stops working with the commit.
pub async fn set_token(tx: &mut Tx<'_>, id: i64, token_hash: &str) -> Result<()> {
    sqlx::query("UPDATE triggers SET token_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(token_hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Counts a fire.
pub async fn fired(tx: &mut Tx<'_>, id: i64, at: Timestamp) -> Result<()> {
    sqlx::query("UPDATE triggers SET fired = fired + 1, last_fired_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn delete(tx: &mut Tx<'_>, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM triggers WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
