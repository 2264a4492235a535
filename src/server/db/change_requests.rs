//! Change governance (issue 28): environments' protection, change requests with their
//! approvals, the approvers of the release events they applied, and break-glass overrides.

use super::columns::{Details, Targets};
use super::{Sql, Tx};
use crate::model::{
    Approval, ChangeAction, ChangeRequest, ChangeStatus, OverrideEntry, Preview, Timestamp,
};
use sqlx::FromRow;
use sqlx::Result;

/// The approvals widening actions in `env` need (0: unprotected); `None` without such an
/// environment.
pub async fn protection(db: impl super::Executor<'_>, env: &str) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT approvals FROM environments WHERE name = $1")
        .bind(env)
        .fetch_optional(db)
        .await
}

/// Sets the approvals of `env`; returns the ones before, `None` without such an environment.
pub async fn set_protection(tx: &mut Tx<'_>, env: &str, approvals: i64) -> Result<Option<i64>> {
    let before = protection(&mut **tx, env).await?;
    if before.is_some() {
        sqlx::query("UPDATE environments SET approvals = $2 WHERE name = $1")
            .bind(env)
            .bind(approvals)
            .execute(&mut **tx)
            .await?;
    }
    Ok(before)
}

#[derive(FromRow)]
struct RequestRow {
    id: i64,
    config_id: i64,
    namespace: String,
    env: String,
    key: String,
    action: ChangeAction,
    body: Details,
    message: String,
    author: String,
    status: ChangeStatus,
    approvals_needed: i64,
    apply_at: Option<Timestamp>,
    diff: Details,
    preview: Option<Details>,
    plan: Option<Details>,
    snapshot: Details,
    reason: Option<String>,
    ended_by: Option<String>,
    ended_at: Option<Timestamp>,
    release_event: Option<i64>,
    override_id: Option<i64>,
    override_reviewed_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// A stored change request and the config it is about.
pub struct StoredRequest {
    pub config_id: i64,
    pub request: ChangeRequest,
}

impl TryFrom<RequestRow> for StoredRequest {
    type Error = sqlx::Error;

    fn try_from(r: RequestRow) -> Result<Self> {
        let preview = r
            .preview
            .map(|p| serde_json::from_value::<Preview>(p.0))
            .transpose()
            .map_err(|e| {
                sqlx::Error::Decode(format!("corrupt row: change request preview: {e}").into())
            })?;
        Ok(StoredRequest {
            config_id: r.config_id,
            request: ChangeRequest {
                id: r.id,
                namespace: r.namespace,
                env: r.env,
                key: r.key,
                action: r.action,
                body: r.body.0,
                message: r.message,
                author: r.author,
                status: r.status,
                approvals_needed: r.approvals_needed,
                approvals: Vec::new(),
                apply_at: r.apply_at,
                diff: r.diff.0,
                preview,
                plan: r.plan.map(|p| p.0),
                snapshot: r.snapshot.0,
                reason: r.reason,
                ended_by: r.ended_by,
                ended_at: r.ended_at,
                release_event: r.release_event,
                unreviewed_override: r.override_id.is_some() && r.override_reviewed_at.is_none(),
                override_id: r.override_id,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
        })
    }
}

const SELECT: &str = "SELECT r.id, r.config_id, r.namespace, r.env, r.key, r.action, r.body,
        r.message, r.author, r.status, r.approvals_needed, r.apply_at, r.diff, r.preview, r.plan,
        r.snapshot, r.reason, r.ended_by, r.ended_at, r.release_event,
        o.id AS override_id, o.reviewed_at AS override_reviewed_at, r.created_at, r.updated_at
   FROM change_requests r
   LEFT JOIN overrides o ON o.change_request = r.id";

/// A change request about to be stored.
pub struct NewRequestRow<'a> {
    pub config_id: i64,
    pub namespace: &'a str,
    pub env: &'a str,
    pub key: &'a str,
    pub action: ChangeAction,
    pub body: &'a serde_json::Value,
    pub message: &'a str,
    pub author: &'a str,
    pub status: ChangeStatus,
    pub approvals_needed: i64,
    pub apply_at: Option<Timestamp>,
    pub diff: &'a serde_json::Value,
    pub preview: Option<&'a Preview>,
    pub plan: Option<&'a serde_json::Value>,
    pub snapshot: &'a serde_json::Value,
}

pub async fn insert(tx: &mut Tx<'_>, at: Timestamp, r: NewRequestRow<'_>) -> Result<i64> {
    let preview = r
        .preview
        .map(|p| serde_json::to_string(p).expect("a preview serializes"));
    sqlx::query_scalar(
        "INSERT INTO change_requests (config_id, namespace, env, key, action, body, message,
             author, status, approvals_needed, apply_at, diff, preview, plan, snapshot,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
         RETURNING id",
    )
    .bind(r.config_id)
    .bind(r.namespace)
    .bind(r.env)
    .bind(r.key)
    .bind(r.action)
    .bind(r.body.to_string())
    .bind(r.message)
    .bind(r.author)
    .bind(r.status)
    .bind(r.approvals_needed)
    .bind(r.apply_at)
    .bind(r.diff.to_string())
    .bind(preview)
    .bind(r.plan.map(ToString::to_string))
    .bind(r.snapshot.to_string())
    .bind(at)
    .fetch_one(&mut **tx)
    .await
}

/// A change request with its approvals.
pub async fn find(conn: &mut super::Conn, id: i64) -> Result<Option<StoredRequest>> {
    let row: Option<RequestRow> = sqlx::query_as(&format!("{SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut stored = StoredRequest::try_from(row)?;
    stored.request.approvals = approvals(&mut *conn, id).await?;
    Ok(Some(stored))
}

#[derive(FromRow)]
struct ApprovalRow {
    approver: String,
    comment: String,
    at: Timestamp,
}

async fn approvals(db: impl super::Executor<'_>, id: i64) -> Result<Vec<Approval>> {
    let rows: Vec<ApprovalRow> = sqlx::query_as(
        "SELECT approver, comment, at FROM change_approvals
          WHERE change_request = $1 ORDER BY at, approver",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(approval).collect())
}

fn approval(r: ApprovalRow) -> Approval {
    Approval {
        approver: r.approver,
        comment: r.comment,
        at: r.at,
    }
}

/// Which requests a list shows: each `Some` narrows it.
#[derive(Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub env: Option<String>,
    pub status: Option<ChangeStatus>,
    pub author: Option<String>,
    /// One config's requests (with `namespace` and `env`).
    pub key: Option<String>,
    /// Only open requests (pending or scheduled).
    pub open: bool,
    pub before: Option<i64>,
    pub limit: i64,
}

/// Change requests, newest first, with their approvals.
pub async fn list(conn: &mut super::Conn, f: Filter) -> Result<Vec<ChangeRequest>> {
    let mut sql = Sql::new(&format!("{SELECT} WHERE 1 = 1"));
    if let Some(ns) = f.namespace {
        sql.push(" AND r.namespace = ").bind(ns);
    }
    if let Some(env) = f.env {
        sql.push(" AND r.env = ").bind(env);
    }
    if let Some(status) = f.status {
        sql.push(" AND r.status = ").bind(status);
    }
    if let Some(author) = f.author {
        sql.push(" AND r.author = ").bind(author);
    }
    if let Some(key) = f.key {
        sql.push(" AND r.key = ").bind(key);
    }
    if f.open {
        sql.push(" AND r.status IN ('pending', 'scheduled')");
    }
    if let Some(before) = f.before {
        sql.push(" AND r.id < ").bind(before);
    }
    sql.push(" ORDER BY r.id DESC LIMIT ").bind(f.limit);
    let rows: Vec<RequestRow> = sql.fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut request = StoredRequest::try_from(row)?.request;
        request.approvals = approvals(&mut *conn, request.id).await?;
        out.push(request);
    }
    Ok(out)
}

/// How many pending requests `user` could approve: made by someone else, not approved by them
/// yet, within the namespace and environment they are limited to (`None`: any).
pub async fn waiting_for(
    db: impl super::Executor<'_>,
    user: &str,
    namespace: Option<&str>,
    env: Option<&str>,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM change_requests r
          WHERE r.status = 'pending' AND r.author <> $1
            AND ($2 IS NULL OR r.namespace = $2) AND ($3 IS NULL OR r.env = $3)
            AND NOT EXISTS (SELECT 1 FROM change_approvals a
                             WHERE a.change_request = r.id AND a.approver = $1)",
    )
    .bind(user)
    .bind(namespace)
    .bind(env)
    .fetch_one(db)
    .await
}

/// Records `approver`'s approval; false when they approved before.
pub async fn approve(
    tx: &mut Tx<'_>,
    at: Timestamp,
    id: i64,
    approver: &str,
    comment: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO change_approvals (change_request, approver, comment, at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(approver)
    .bind(comment)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends an open request (pending or scheduled) with `status`: false when it was no longer
/// open, so two nodes or two callers cannot both end (or apply) it.
pub async fn end(
    tx: &mut Tx<'_>,
    at: Timestamp,
    id: i64,
    status: ChangeStatus,
    by: &str,
    reason: Option<&str>,
    release_event: Option<i64>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE change_requests
            SET status = $2, ended_by = $3, reason = $4, release_event = $5, ended_at = $6,
                updated_at = $6
          WHERE id = $1 AND status IN ('pending', 'scheduled')",
    )
    .bind(id)
    .bind(status)
    .bind(by)
    .bind(reason)
    .bind(release_event)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The scheduled requests whose time has come, oldest first.
pub async fn due(db: impl super::Executor<'_>, now: Timestamp) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM change_requests
          WHERE status = 'scheduled' AND apply_at <= $1 ORDER BY apply_at, id LIMIT 100",
    )
    .bind(now)
    .fetch_all(db)
    .await
}

/// Writes the approvers of the change request a release event applied, beside the event.
pub async fn record_approvers(
    tx: &mut Tx<'_>,
    release_event: i64,
    change_request: i64,
    approved_by: &[String],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO release_approvals (release_event, change_request, approved_by)
         VALUES ($1, $2, $3)",
    )
    .bind(release_event)
    .bind(change_request)
    .bind(serde_json::to_string(approved_by).expect("names serialize"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The change request and approvers of each release event that has them.
pub async fn approvers_of(
    db: impl super::Executor<'_>,
    release_events: &[i64],
) -> Result<Vec<(i64, i64, Vec<String>)>> {
    if release_events.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(
        "SELECT release_event, change_request, approved_by FROM release_approvals
          WHERE release_event IN (",
    );
    for (i, id) in release_events.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(*id);
    }
    sql.push(")");
    let rows: Vec<(i64, i64, Targets)> = sql.fetch_all(db).await?;
    Ok(rows.into_iter().map(|(e, r, t)| (e, r, t.0)).collect())
}

/// A break-glass override about to be stored.
pub struct NewOverride<'a> {
    pub config_id: i64,
    pub namespace: &'a str,
    pub env: &'a str,
    pub key: &'a str,
    pub action: ChangeAction,
    pub change_request: Option<i64>,
    pub actor: &'a str,
    pub reason: &'a str,
}

pub async fn insert_override(tx: &mut Tx<'_>, at: Timestamp, o: NewOverride<'_>) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO overrides (config_id, namespace, env, key, action, change_request, actor,
             reason, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(o.config_id)
    .bind(o.namespace)
    .bind(o.env)
    .bind(o.key)
    .bind(o.action)
    .bind(o.change_request)
    .bind(o.actor)
    .bind(o.reason)
    .bind(at)
    .fetch_one(&mut **tx)
    .await
}

#[derive(FromRow)]
struct OverrideRow {
    id: i64,
    namespace: String,
    env: String,
    key: String,
    action: ChangeAction,
    change_request: Option<i64>,
    actor: String,
    reason: String,
    at: Timestamp,
    reviewed_by: Option<String>,
    reviewed_at: Option<Timestamp>,
}

impl From<OverrideRow> for OverrideEntry {
    fn from(r: OverrideRow) -> Self {
        OverrideEntry {
            id: r.id,
            namespace: r.namespace,
            env: r.env,
            key: r.key,
            action: r.action,
            change_request: r.change_request,
            actor: r.actor,
            reason: r.reason,
            at: r.at,
            reviewed_by: r.reviewed_by,
            reviewed_at: r.reviewed_at,
        }
    }
}

const OVERRIDE_COLUMNS: &str =
    "id, namespace, env, key, action, change_request, actor, reason, at, reviewed_by, reviewed_at";

pub async fn find_override(db: impl super::Executor<'_>, id: i64) -> Result<Option<OverrideEntry>> {
    let row: Option<OverrideRow> = sqlx::query_as(&format!(
        "SELECT {OVERRIDE_COLUMNS} FROM overrides WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// Overrides, newest first.
pub async fn list_overrides(
    db: impl super::Executor<'_>,
    namespace: Option<String>,
    env: Option<String>,
    reviewed: Option<bool>,
    limit: i64,
) -> Result<Vec<OverrideEntry>> {
    let mut sql = Sql::new(&format!(
        "SELECT {OVERRIDE_COLUMNS} FROM overrides WHERE 1 = 1"
    ));
    if let Some(ns) = namespace {
        sql.push(" AND namespace = ").bind(ns);
    }
    if let Some(env) = env {
        sql.push(" AND env = ").bind(env);
    }
    match reviewed {
        Some(true) => {
            sql.push(" AND reviewed_at IS NOT NULL");
        }
        Some(false) => {
            sql.push(" AND reviewed_at IS NULL");
        }
        None => {}
    }
    sql.push(" ORDER BY id DESC LIMIT ").bind(limit);
    let rows: Vec<OverrideRow> = sql.fetch_all(db).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The unreviewed overrides on a config, newest first, whole.
pub async fn unreviewed_override_entries(
    db: impl super::Executor<'_>,
    config_id: i64,
) -> Result<Vec<OverrideEntry>> {
    let rows: Vec<OverrideRow> = sqlx::query_as(&format!(
        "SELECT {OVERRIDE_COLUMNS} FROM overrides
          WHERE config_id = $1 AND reviewed_at IS NULL ORDER BY id DESC"
    ))
    .bind(config_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The unreviewed overrides on a config, newest first.
pub async fn unreviewed_overrides(
    db: impl super::Executor<'_>,
    config_id: i64,
) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM overrides WHERE config_id = $1 AND reviewed_at IS NULL ORDER BY id DESC",
    )
    .bind(config_id)
    .fetch_all(db)
    .await
}

/// Marks an override reviewed; false when it was reviewed before.
pub async fn review_override(tx: &mut Tx<'_>, at: Timestamp, id: i64, by: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE overrides SET reviewed_by = $2, reviewed_at = $3
          WHERE id = $1 AND reviewed_at IS NULL",
    )
    .bind(id)
    .bind(by)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
