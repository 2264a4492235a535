use super::Tx;
use crate::model::Timestamp;
use crate::model::{ReleaseEvent, ReleaseKind};
use sqlx::FromRow;
use sqlx::Result;

#[derive(FromRow)]
struct ReleaseEventRow {
    id: i64,
    namespace: String,
    env: String,
    key: String,
    kind: ReleaseKind,
    version: i64,
    previous_version: Option<i64>,
    lane: Option<i64>,
    actor: String,
    message: String,
    created_at: Timestamp,
    change_request: Option<i64>,
    approved_by: Option<super::columns::Targets>,
}

impl From<ReleaseEventRow> for ReleaseEvent {
    fn from(r: ReleaseEventRow) -> Self {
        ReleaseEvent {
            id: r.id,
            namespace: r.namespace,
            env: r.env,
            key: r.key,
            kind: r.kind,
            version: r.version,
            previous_version: r.previous_version,
            lane: r.lane,
            actor: r.actor,
            message: r.message,
            created_at: r.created_at,
            change_request: r.change_request,
            approved_by: r.approved_by.map(|a| a.0).unwrap_or_default(),
        }
    }
}

const SELECT: &str = "SELECT r.id, n.name AS namespace, e.name AS env, c.key, r.kind, r.version,
        r.previous_version, r.lane, r.actor, r.message, r.created_at,
        ra.change_request, ra.approved_by
   FROM release_events r
   LEFT JOIN release_approvals ra ON ra.release_event = r.id
   JOIN configs c ON c.id = r.config_id
   JOIN namespaces n ON n.id = c.namespace_id
   JOIN environments e ON e.id = c.env_id";

/// A release event about to be appended.
pub struct NewReleaseEvent<'a> {
    pub config_id: i64,
    pub kind: ReleaseKind,
    pub version: i64,
    pub previous_version: Option<i64>,
    pub lane: Option<i64>,
    pub actor: &'a str,
    pub message: &'a str,
}

/// Appends an event and returns it with its number in the global sequence.
pub async fn insert(tx: &mut Tx<'_>, e: NewReleaseEvent<'_>) -> Result<ReleaseEvent> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO release_events (config_id, kind, version, previous_version, lane, actor, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(e.config_id)
    .bind(e.kind)
    .bind(e.version)
    .bind(e.previous_version)
    .bind(e.lane)
    .bind(e.actor)
    .bind(e.message)
    .fetch_one(&mut **tx)
    .await?;
    super::notify::release_event(tx, id).await?;
    let row: ReleaseEventRow = sqlx::query_as(&format!("{SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.into())
}

/// A config's release events, newest first.
pub async fn list(db: impl super::Executor<'_>, config_id: i64) -> Result<Vec<ReleaseEvent>> {
    let rows: Vec<ReleaseEventRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE r.config_id = $1 ORDER BY r.id DESC"
    ))
    .bind(config_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The newest event that set a config's stable release (a release, a rollback or a promotion).
pub async fn last_stable(
    db: impl super::Executor<'_>,
    config_id: i64,
) -> Result<Option<ReleaseEvent>> {
    let row: Option<ReleaseEventRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE r.config_id = $1 AND r.kind IN ($2, $3, $4) ORDER BY r.id DESC LIMIT 1"
    ))
    .bind(config_id)
    .bind(ReleaseKind::Stable)
    .bind(ReleaseKind::Rollback)
    .bind(ReleaseKind::LanePromote)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}
