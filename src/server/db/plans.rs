//! Rollout plans of lanes: the plan and where it is, its guards' latest readings, its
//! evaluations and transitions, and the facts the scheduler judges (the lanes' served sets).

use super::Tx;
use crate::domain::plan::decide::{PlanAction, PlanState};
use crate::domain::plan::guard::{GuardStatus, LastReport, Served};
use crate::domain::plan::GuardKind;
use crate::model::{LaneStatus, Percentage, Timestamp};
use sqlx::FromRow;
use sqlx::Result;

/// At most this many evaluation rows are kept per plan; older ones are deleted first. A row is
/// a run of identical outcomes, so this bounds a plan whose polled values change at every
/// evaluation, not one that reads steadily.
pub const MAX_EVALUATIONS_PER_PLAN: i64 = 5000;

/// A lane's plan as stored; `plan` is the API's JSON.
#[derive(Debug, Clone, FromRow)]
pub struct PlanRow {
    pub lane_id: i64,
    pub plan: String,
    pub template: Option<String>,
    pub state: PlanState,
    pub step: i64,
    /// Milliseconds since the epoch.
    pub step_started_at: i64,
    pub paused_at: Option<i64>,
    pub step_event: Option<i64>,
    pub reason: Option<String>,
    pub waiting_for: Option<String>,
    pub created_by: String,
}

const COLUMNS: &str = "lane_id, plan, template, state, step, step_started_at, paused_at,
        step_event, reason, waiting_for, created_by";

pub struct NewPlanRow<'a> {
    pub lane_id: i64,
    pub plan: &'a str,
    pub template: Option<&'a str>,
    pub step_started_at: i64,
    pub step_event: i64,
    pub created_by: &'a str,
    /// The kind of each guard, in order.
    pub guards: &'a [GuardKind],
}

/// Stores a new running plan at step 0, each guard "no data" until it is first evaluated.
pub async fn insert(tx: &mut Tx<'_>, p: NewPlanRow<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO lane_plans (lane_id, plan, template, state, step, step_started_at,
                                 step_event, created_by)
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7)",
    )
    .bind(p.lane_id)
    .bind(p.plan)
    .bind(p.template)
    .bind(PlanState::Running)
    .bind(p.step_started_at)
    .bind(p.step_event)
    .bind(p.created_by)
    .execute(&mut **tx)
    .await?;
    for (i, kind) in p.guards.iter().enumerate() {
        sqlx::query(
            "INSERT INTO plan_guards (lane_id, guard, kind, status, message)
             VALUES ($1, $2, $3, $4, 'not evaluated yet')",
        )
        .bind(p.lane_id)
        .bind(i as i64)
        .bind(kind)
        .bind(GuardStatus::NoData)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn find(db: impl super::Executor<'_>, lane_id: i64) -> Result<Option<PlanRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lane_plans WHERE lane_id = $1"
    ))
    .bind(lane_id)
    .fetch_optional(db)
    .await
}

/// The plans of a config's lanes.
pub async fn of_config(db: impl super::Executor<'_>, config_id: i64) -> Result<Vec<PlanRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lane_plans
          WHERE lane_id IN (SELECT id FROM lanes WHERE config_id = $1)"
    ))
    .bind(config_id)
    .fetch_all(db)
    .await
}

/// The plans of the active lanes of every config in a namespace and environment.
pub async fn of_scope(
    db: impl super::Executor<'_>,
    namespace_id: i64,
    env_id: i64,
) -> Result<Vec<PlanRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM lane_plans
          WHERE lane_id IN (SELECT l.id FROM lanes l JOIN configs c ON c.id = l.config_id
                             WHERE c.namespace_id = $1 AND c.env_id = $2 AND l.status = $3)"
    ))
    .bind(namespace_id)
    .bind(env_id)
    .bind(LaneStatus::Active)
    .fetch_all(db)
    .await
}

/// Where a plan is after a transition.
pub struct PlanPosition<'a> {
    pub state: PlanState,
    pub step: usize,
    pub step_started_at: i64,
    pub paused_at: Option<i64>,
    pub step_event: Option<i64>,
    pub reason: Option<&'a str>,
    pub waiting_for: Option<&'a str>,
}

pub async fn set_position(
    tx: &mut Tx<'_>,
    now: crate::domain::time::Timestamp,
    lane_id: i64,
    p: PlanPosition<'_>,
) -> Result<()> {
    sqlx::query(
        "UPDATE lane_plans
            SET state = $1, step = $2, step_started_at = $3, paused_at = $4,
                step_event = coalesce($5, step_event), reason = $6, waiting_for = $7,
                updated_at = $9
          WHERE lane_id = $8",
    )
    .bind(p.state)
    .bind(p.step as i64)
    .bind(p.step_started_at)
    .bind(p.paused_at)
    .bind(p.step_event)
    .bind(p.reason)
    .bind(p.waiting_for)
    .bind(lane_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What a running plan waits for (written only when it changes).
pub async fn set_waiting_for(
    db: impl super::Executor<'_>,
    lane_id: i64,
    waiting_for: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE lane_plans SET waiting_for = $1
          WHERE lane_id = $2 AND state = $3 AND waiting_for IS DISTINCT FROM $4",
    )
    .bind(waiting_for)
    .bind(lane_id)
    .bind(PlanState::Running)
    .bind(waiting_for)
    .execute(db)
    .await?;
    Ok(())
}

/// A guard's latest reading as stored.
#[derive(Debug, Clone, FromRow)]
pub struct GuardRow {
    pub guard: i64,
    pub kind: GuardKind,
    pub status: GuardStatus,
    pub value: Option<f64>,
    pub message: String,
    pub streak: i64,
    pub evaluated_at: Option<Timestamp>,
    /// A compare guard's numbers (JSON of a comparison).
    pub details: Option<String>,
}

/// A plan's guards' latest readings, in the plan's order.
pub async fn guards(db: impl super::Executor<'_>, lane_id: i64) -> Result<Vec<GuardRow>> {
    sqlx::query_as(
        "SELECT guard, kind, status, value, message, streak, evaluated_at, details
           FROM plan_guards WHERE lane_id = $1 ORDER BY guard",
    )
    .bind(lane_id)
    .fetch_all(db)
    .await
}

/// One evaluation of one guard.
pub struct Evaluation<'a> {
    pub lane_id: i64,
    pub step: usize,
    pub guard: usize,
    pub kind: GuardKind,
    pub status: GuardStatus,
    pub value: Option<f64>,
    pub message: &'a str,
    pub streak: u32,
    pub at: Timestamp,
    /// A compare guard's numbers (JSON of a comparison).
    pub details: Option<&'a str>,
}

/// Records an evaluation: the guard's latest reading, and in the evaluations either one more
/// of the same run (same step, status, value and message as the guard's last row) or a new row.
/// Keeps at most [`MAX_EVALUATIONS_PER_PLAN`] rows per plan.
pub async fn record_evaluation(tx: &mut Tx<'_>, e: &Evaluation<'_>) -> Result<()> {
    record_evaluation_within(tx, e, MAX_EVALUATIONS_PER_PLAN).await
}

async fn record_evaluation_within(tx: &mut Tx<'_>, e: &Evaluation<'_>, cap: i64) -> Result<()> {
    sqlx::query(
        "UPDATE plan_guards SET status = $1, value = $2, message = $3, streak = $4, evaluated_at = $5,
                                details = $8
          WHERE lane_id = $6 AND guard = $7",
    )
    .bind(e.status)
    .bind(super::columns::Real(e.value))
    .bind(e.message)
    .bind(i64::from(e.streak))
    .bind(e.at)
    .bind(e.lane_id)
    .bind(e.guard as i64)
    .bind(e.details)
    .execute(&mut **tx)
    .await?;
    let same_run = sqlx::query(
        "UPDATE plan_evaluations SET last_at = $1, count = count + 1
          WHERE id = (SELECT max(id) FROM plan_evaluations WHERE lane_id = $2 AND guard = $3)
            AND step = $4 AND status = $5 AND value IS NOT DISTINCT FROM $6 AND message = $7",
    )
    .bind(e.at)
    .bind(e.lane_id)
    .bind(e.guard as i64)
    .bind(e.step as i64)
    .bind(e.status)
    .bind(super::columns::Real(e.value))
    .bind(e.message)
    .execute(&mut **tx)
    .await?;
    if same_run.rows_affected() > 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO plan_evaluations (lane_id, step, guard, kind, status, value, message, at, last_at,
                                       details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.lane_id)
    .bind(e.step as i64)
    .bind(e.guard as i64)
    .bind(e.kind)
    .bind(e.status)
    .bind(super::columns::Real(e.value))
    .bind(e.message)
    .bind(e.at)
    .bind(e.at)
    .bind(e.details)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM plan_evaluations
          WHERE lane_id = $1 AND id <= (SELECT id FROM plan_evaluations WHERE lane_id = $2
                                        ORDER BY id DESC LIMIT 1 OFFSET $3)",
    )
    .bind(e.lane_id)
    .bind(e.lane_id)
    .bind(cap)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets every polled guard of a plan back to "no data" at a new step or on resume (their
/// readings were of the previous slice, or stale); `reports` guards are judged afresh at every
/// turn anyway.
pub async fn reset_polled_guards(tx: &mut Tx<'_>, lane_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE plan_guards SET status = $1, value = NULL, streak = 0,
                message = 'not evaluated since the step began or the plan resumed', evaluated_at = NULL
          WHERE lane_id = $2 AND kind <> $3",
    )
    .bind(GuardStatus::NoData)
    .bind(lane_id)
    .bind(GuardKind::Reports)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct EvaluationRow {
    pub id: i64,
    pub step: i64,
    pub guard: i64,
    pub kind: GuardKind,
    pub status: GuardStatus,
    pub value: Option<f64>,
    pub message: String,
    pub at: Timestamp,
    pub last_at: Timestamp,
    pub count: i64,
}

/// A plan's evaluations, newest first, at most `limit`.
pub async fn evaluations(
    db: impl super::Executor<'_>,
    lane_id: i64,
    limit: i64,
) -> Result<Vec<EvaluationRow>> {
    sqlx::query_as(
        "SELECT id, step, guard, kind, status, value, message, at, last_at, count
           FROM plan_evaluations WHERE lane_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(lane_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub struct NewTransition<'a> {
    pub lane_id: i64,
    pub action: PlanAction,
    pub actor: &'a str,
    pub from_step: Option<usize>,
    pub step: usize,
    pub state: PlanState,
    pub percentage: Percentage,
    pub reason: Option<&'a str>,
    pub release_event: Option<i64>,
    pub forced: bool,
}

pub async fn insert_transition(tx: &mut Tx<'_>, t: NewTransition<'_>) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO plan_transitions (lane_id, action, actor, from_step, step, state,
                                       percentage_bp, reason, release_event, forced)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(t.lane_id)
    .bind(t.action)
    .bind(t.actor)
    .bind(t.from_step.map(|s| s as i64))
    .bind(t.step as i64)
    .bind(t.state)
    .bind(t.percentage)
    .bind(t.reason)
    .bind(t.release_event)
    .bind(i64::from(t.forced))
    .fetch_one(&mut **tx)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct TransitionRow {
    pub id: i64,
    pub at: Timestamp,
    pub action: PlanAction,
    pub actor: String,
    pub from_step: Option<i64>,
    pub step: i64,
    pub state: PlanState,
    #[sqlx(rename = "percentage_bp")]
    pub percentage: Percentage,
    pub reason: Option<String>,
    pub release_event: Option<i64>,
    #[sqlx(try_from = "super::columns::Flag")]
    pub forced: bool,
}

/// A plan's transitions, oldest first.
pub async fn transitions(db: impl super::Executor<'_>, lane_id: i64) -> Result<Vec<TransitionRow>> {
    sqlx::query_as(
        "SELECT id, at, action, actor, from_step, step, state, percentage_bp, reason,
                release_event, forced
           FROM plan_transitions WHERE lane_id = $1 ORDER BY id",
    )
    .bind(lane_id)
    .fetch_all(db)
    .await
}

/// A plan the scheduler drives (running or paused), with its lane and config.
#[derive(Debug, Clone, FromRow)]
pub struct LivePlan {
    #[sqlx(flatten)]
    pub row: PlanRow,
    pub lane_status: LaneStatus,
    pub version: i64,
    #[sqlx(rename = "percentage_bp")]
    pub percentage: Percentage,
    pub namespace: String,
    pub env: String,
    pub key: String,
    /// The lane's selector: a compare guard's baseline is stable's instances it matches.
    pub selector: String,
}

/// Every running or paused plan, by lane id.
pub async fn live(db: impl super::Executor<'_>) -> Result<Vec<LivePlan>> {
    sqlx::query_as(
        "SELECT p.lane_id, p.plan, p.template, p.state, p.step, p.step_started_at, p.paused_at,
                p.step_event, p.reason, p.waiting_for, p.created_by,
                l.status AS lane_status, l.version, l.percentage_bp, l.selector,
                n.name AS namespace, e.name AS env, c.key
           FROM lane_plans p
           JOIN lanes l ON l.id = p.lane_id
           JOIN configs c ON c.id = l.config_id
           JOIN namespaces n ON n.id = c.namespace_id
           JOIN environments e ON e.id = c.env_id
          WHERE p.state IN ($1, $2)
          ORDER BY p.lane_id",
    )
    .bind(PlanState::Running)
    .bind(PlanState::Paused)
    .fetch_all(db)
    .await
}

/// How many plans are running or paused.
pub async fn count_live(db: impl super::Executor<'_>) -> Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM lane_plans WHERE state IN ($1, $2)")
        .bind(PlanState::Running)
        .bind(PlanState::Paused)
        .fetch_one(db)
        .await
}

/// A lane's served set (docs/plans.md#the-reports-guard): the instances whose recorded served version
/// and lane for `key` are this lane's, connected now or seen at or after `since` (the step's
/// start, in the database's time format: they disconnected during the step), with their
/// latest report for the key.
pub async fn served_set(
    db: impl super::Executor<'_>,
    (namespace, env, key): (&str, &str, &str),
    version: i64,
    lane: i64,
    since: Timestamp,
) -> Result<Vec<Served>> {
    #[derive(FromRow)]
    struct Row {
        client_id: String,
        status: Option<String>,
        reported: Option<i64>,
        message: Option<String>,
        reported_at: Option<Timestamp>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT i.client_id, ic.status, ic.reported, ic.message,
                ic.reported_at
           FROM instance_configs ic
           JOIN instances i
             ON i.namespace = ic.namespace AND i.env = ic.env AND i.client_id = ic.client_id
          WHERE ic.namespace = $1 AND ic.env = $2 AND ic.key = $3 AND ic.served = $4 AND ic.lane = $5
            AND (i.connected = 1 OR i.last_seen >= $6)
          ORDER BY i.client_id",
    )
    .bind(namespace)
    .bind(env)
    .bind(key)
    .bind(version)
    .bind(lane)
    .bind(since)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Served {
            client_id: r.client_id,
            last_report: match (r.status, r.reported) {
                (Some(status), Some(version)) => Some(LastReport {
                    status,
                    version,
                    message: r.message,
                    at_ms: r.reported_at.map_or(0, Timestamp::unix_ms),
                }),
                _ => None,
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn identical_evaluations_make_one_run_and_old_runs_go_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let pool = crate::server::db::connect(&url).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        // Only these tables matter here, not the lane a plan belongs to.
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        insert(
            &mut tx,
            NewPlanRow {
                lane_id: 7,
                plan: "{}",
                template: None,
                step_started_at: 0,
                step_event: 1,
                created_by: "t",
                guards: &[GuardKind::Prometheus],
            },
        )
        .await
        .unwrap();
        let at = |ms| Timestamp::from_unix_ms(ms).unwrap();
        let eval = |value: f64, ms: i64| Evaluation {
            lane_id: 7,
            step: 0,
            guard: 0,
            kind: GuardKind::Prometheus,
            status: GuardStatus::Passing,
            value: Some(value),
            message: "ok",
            streak: 0,
            at: at(ms),
            details: None,
        };
        for (value, ms) in [
            (1.0, 1000),
            (1.0, 2000),
            (1.0, 3000),
            (2.0, 4000),
            (1.0, 5000),
        ] {
            record_evaluation_within(&mut tx, &eval(value, ms), 3)
                .await
                .unwrap();
        }
        let runs: Vec<(Option<f64>, i64, Timestamp, Timestamp)> = sqlx::query_as(
            "SELECT value, count, at, last_at FROM plan_evaluations WHERE lane_id = 7 ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(
            runs,
            [
                (Some(1.0), 3, at(1000), at(3000)),
                (Some(2.0), 1, at(4000), at(4000)),
                (Some(1.0), 1, at(5000), at(5000)),
            ]
        );
        for (i, value) in [3.0, 4.0].into_iter().enumerate() {
            record_evaluation_within(&mut tx, &eval(value, 6000 + i as i64), 3)
                .await
                .unwrap();
        }
        let values: Vec<Option<f64>> =
            sqlx::query_scalar("SELECT value FROM plan_evaluations WHERE lane_id = 7 ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        assert_eq!(
            values,
            [Some(1.0), Some(3.0), Some(4.0)],
            "the oldest go first"
        );
        let latest = guards(&mut *tx, 7).await.unwrap();
        assert_eq!(latest[0].value, Some(4.0));
        assert_eq!(latest[0].evaluated_at, Some(at(6001)));
    }
}
