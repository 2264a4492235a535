use super::Tx;
use crate::model::Timestamp;
use crate::model::{Lane, Percentage};
use sqlx::FromRow;
use sqlx::Result;

#[derive(FromRow)]
struct LaneRow {
    id: i64,
    version: i64,
    selector: String,
    targets: super::columns::Targets,
    #[sqlx(rename = "percentage_bp")]
    percentage: Percentage,
    stickiness: String,
    salt: String,
    priority: i64,
    status: crate::model::LaneStatus,
    created_by: String,
    created_at: Timestamp,
    closed_at: Option<Timestamp>,
}

impl From<LaneRow> for Lane {
    fn from(r: LaneRow) -> Self {
        Lane {
            id: r.id,
            version: r.version,
            selector: r.selector,
            targets: r.targets.0,
            percentage: r.percentage,
            stickiness: r.stickiness,
            salt: r.salt,
            priority: r.priority,
            status: r.status,
            created_by: r.created_by,
            created_at: r.created_at,
            closed_at: r.closed_at,
            plan: None,
        }
    }
}

const COLUMNS: &str = "id, version, selector, targets, percentage_bp, stickiness, salt, priority,
        status, created_by, created_at, closed_at";

/// Active lanes first in resolution order (priority, id), then closed ones, newest closed first.
const HISTORY_ORDER: &str = "ORDER BY status <> 'active', \
     CASE WHEN status = 'active' THEN priority END, \
     CASE WHEN status = 'active' THEN id END, \
     closed_by DESC";

/// Every lane of a config: active ones in resolution order, then closed ones, newest first.
pub async fn list(db: impl super::Executor<'_>, config_id: i64) -> Result<Vec<Lane>> {
    let rows: Vec<LaneRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lanes WHERE config_id = $1 {HISTORY_ORDER}"
    ))
    .bind(config_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// A config's active lanes in resolution order (priority, id).
pub async fn active(db: impl super::Executor<'_>, config_id: i64) -> Result<Vec<Lane>> {
    let rows: Vec<LaneRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lanes WHERE config_id = $1 AND status = 'active'
          ORDER BY priority, id"
    ))
    .bind(config_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// How many active lanes a config has.
pub async fn count_active(db: impl super::Executor<'_>, config_id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM lanes WHERE config_id = $1 AND status = 'active'")
        .bind(config_id)
        .fetch_one(db)
        .await
}

/// A lane with its config's key (the lists over a whole namespace and environment).
#[derive(FromRow)]
struct KeyedRow {
    key: String,
    #[sqlx(flatten)]
    lane: LaneRow,
}

/// The active lanes of every config in one namespace and environment, with
/// their config's key, each config's lanes in resolution order.
pub async fn active_in_scope(
    db: impl super::Executor<'_>,
    namespace_id: i64,
    env_id: i64,
) -> Result<Vec<(String, Lane)>> {
    let rows: Vec<KeyedRow> = sqlx::query_as(
        "SELECT c.key, l.id, l.version, l.selector, l.targets, l.percentage_bp, l.stickiness,
                l.salt, l.priority, l.status, l.created_by, l.created_at, l.closed_at
           FROM lanes l JOIN configs c ON c.id = l.config_id
          WHERE c.namespace_id = $1 AND c.env_id = $2 AND l.status = 'active'
          ORDER BY c.key, l.priority, l.id",
    )
    .bind(namespace_id)
    .bind(env_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.key, r.lane.into())).collect())
}

/// The lanes of every config in one namespace and environment that their rollout plan
/// aborted, with their config's key: each config's newest first.
pub async fn plan_aborted_in_scope(
    db: impl super::Executor<'_>,
    namespace_id: i64,
    env_id: i64,
) -> Result<Vec<(String, Lane)>> {
    let rows: Vec<KeyedRow> = sqlx::query_as(
        "SELECT c.key, l.id, l.version, l.selector, l.targets, l.percentage_bp, l.stickiness,
                l.salt, l.priority, l.status, l.created_by, l.created_at, l.closed_at
           FROM lanes l JOIN configs c ON c.id = l.config_id
                        JOIN lane_plans p ON p.lane_id = l.id
          WHERE c.namespace_id = $1 AND c.env_id = $2 AND l.status = 'aborted'
            AND p.state = 'aborted'
          ORDER BY c.key, l.closed_by DESC",
    )
    .bind(namespace_id)
    .bind(env_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.key, r.lane.into())).collect())
}

/// One lane of a config (any status).
pub async fn find(db: impl super::Executor<'_>, config_id: i64, id: i64) -> Result<Option<Lane>> {
    let row: Option<LaneRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lanes WHERE config_id = $1 AND id = $2"
    ))
    .bind(config_id)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// A lane about to be started.
pub struct NewLaneRow<'a> {
    pub config_id: i64,
    pub version: i64,
    pub selector: &'a str,
    pub targets: &'a [String],
    pub percentage: Percentage,
    pub stickiness: &'a str,
    pub salt: &'a str,
    pub priority: i64,
    pub created_by: &'a str,
}

pub async fn insert(tx: &mut Tx<'_>, l: NewLaneRow<'_>) -> Result<Lane> {
    let row: LaneRow = sqlx::query_as(&format!(
        "INSERT INTO lanes (config_id, version, selector, targets, percentage_bp, stickiness, salt,
                            priority, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    ))
    .bind(l.config_id)
    .bind(l.version)
    .bind(l.selector)
    .bind(targets_json(l.targets))
    .bind(l.percentage)
    .bind(l.stickiness)
    .bind(l.salt)
    .bind(l.priority)
    .bind(l.created_by)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// The new rule of an active lane.
pub struct LaneRuleRow<'a> {
    pub selector: &'a str,
    pub targets: &'a [String],
    pub percentage: Percentage,
    pub priority: i64,
}

pub async fn update(
    tx: &mut Tx<'_>,
    now: crate::domain::time::Timestamp,
    id: i64,
    r: LaneRuleRow<'_>,
) -> Result<Lane> {
    let row: LaneRow = sqlx::query_as(&format!(
        "UPDATE lanes
            SET selector = $1, targets = $2, percentage_bp = $3, priority = $4,
                updated_at = $6
          WHERE id = $5 RETURNING {COLUMNS}"
    ))
    .bind(r.selector)
    .bind(targets_json(r.targets))
    .bind(r.percentage)
    .bind(r.priority)
    .bind(id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// Closes an active lane as `promoted` or `aborted` by release event `event`.
pub async fn close(
    tx: &mut Tx<'_>,
    now: crate::domain::time::Timestamp,
    id: i64,
    status: crate::model::LaneStatus,
    event: i64,
) -> Result<Lane> {
    let row: LaneRow = sqlx::query_as(&format!(
        "UPDATE lanes
            SET status = $1, closed_by = $2, closed_at = $4,
                updated_at = $4
          WHERE id = $3 RETURNING {COLUMNS}"
    ))
    .bind(status)
    .bind(event)
    .bind(id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// The salt the config's next lane will get (drawn when the config or its
/// previous lane was created; see the lanes migration).
pub async fn next_salt(db: impl super::Executor<'_>, config_id: i64) -> Result<String> {
    sqlx::query_scalar("SELECT next_lane_salt FROM configs WHERE id = $1")
        .bind(config_id)
        .fetch_one(db)
        .await
}

/// Hands out the config's next salt to the lane being created and draws a fresh one.
pub async fn take_next_salt(tx: &mut Tx<'_>, config_id: i64) -> Result<String> {
    let salt = next_salt(&mut **tx, config_id).await?;
    sqlx::query("UPDATE configs SET next_lane_salt = $2 WHERE id = $1")
        .bind(config_id)
        .bind(super::random_salt())
        .execute(&mut **tx)
        .await?;
    Ok(salt)
}

fn targets_json(targets: &[String]) -> String {
    serde_json::Value::from(targets.to_vec()).to_string()
}
