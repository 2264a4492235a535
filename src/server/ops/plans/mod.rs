//! Rollout plans of lanes (docs/plans.md): choosing a plan for a lane, attaching it,
//! showing it, the controls (pause, resume, advance), and carrying out every move of a plan —
//! the scheduler's and a person's alike — as lane changes through [`super::lane_changes`], so
//! subscribers see them through the push hub like any other release event.

use super::freezes;
use super::governance::{self, Gate, Outcome, Widening};
use super::lane_changes::{self, Close};
use super::lookups::{find, message_of, MAX_MESSAGE_CHARS};
use super::readings;
use crate::domain::audit::AuditAction;
use crate::domain::plan::decide::{
    human_secs, may_advance, next_step, remaining_ms, resumed_step_start, Decision, PlanAction,
    PlanState,
};
use crate::domain::plan::{check_new_plan, parse_plan, Plan, PlanError};
use crate::model::{
    AttachPlan, ChangeAction, ConfigPath, Governed, GuardReading, Lane, LaneId, LanePlan,
    LaneStatus, LaneUpdate, Percentage, PlanControl, PlanSummary, PlanTransition, ReleaseEvent,
    ReleaseKind, Role, Timestamp,
};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry, configs::StoredConfig, plans::PlanRow};
use crate::server::freezes::Schedule;
use crate::server::Core;
use crate::{Error, Result};
use serde_json::{json, Value};

/// The actor of the scheduler's own moves.
pub const SCHEDULER: &str = "graycast";

mod moves;
use moves::Moved;
pub use moves::{carry_out, carry_out_in, end_orphan, Carried, Move};

/// The caller the scheduler acts as.
pub fn scheduler() -> Actor {
    Actor {
        name: SCHEDULER.into(),
        ..Actor::cli()
    }
}

/// A plan chosen for a lane: given in the request, or a template's.
#[derive(Debug, Clone)]
pub struct PlanChoice {
    pub plan: Plan,
    pub template: Option<String>,
}

impl PlanChoice {
    /// The plan as views and the audit show it: credentials in guard URLs hidden. The stored
    /// plan keeps them (see [`start_in`]).
    pub fn spec(&self) -> Plan {
        self.plan.redacted()
    }

    /// The percentage a lane with this plan starts at: the first step's. A percentage given as
    /// well (not `NaN`) must be that one.
    pub fn start_percentage(&self, given: f64) -> Result<f64> {
        let first = self.first_percentage();
        if given.is_nan() || (given - first.as_f64()).abs() < 1e-9 {
            Ok(first.as_f64())
        } else {
            Err(Error::invalid(
                "percentage",
                format!(
                    "A lane with a plan starts at the plan's first step ({first}), not at \
                     {given} %; leave percentage out."
                ),
            ))
        }
    }

    fn first_percentage(&self) -> Percentage {
        self.plan.steps[0].percentage
    }
}

fn refused(e: PlanError) -> Error {
    Error::invalid(&e.field, format!("{}: {}", e.field, e.message))
}

/// The plan of a request (`plan`, or `template`: a name among `env`'s templates), checked,
/// also against the server's probe limits ([`check_new_plan`]).
pub async fn choose(
    state: &Core,
    env: &str,
    plan: Option<&Value>,
    template: Option<String>,
) -> Result<Option<PlanChoice>> {
    match (plan, template) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "template",
            "Send a plan or a template, not both.",
        )),
        (Some(plan), None) => {
            let plan = parse_plan(plan, "plan").map_err(refused)?;
            check_new_plan(&plan, "plan", state.config.min_probe_interval_secs).map_err(refused)?;
            Ok(Some(PlanChoice {
                plan,
                template: None,
            }))
        }
        (None, Some(name)) => {
            let plan = super::templates::plan_of(&state.db, env, &name).await?;
            check_new_plan(&plan, "plan", state.config.min_probe_interval_secs).map_err(|e| {
                Error::invalid(
                    "template",
                    format!("template {name:?}: {}: {}", e.field, e.message),
                )
            })?;
            Ok(Some(PlanChoice {
                plan,
                template: Some(name),
            }))
        }
        (None, None) => Ok(None),
    }
}

/// A stored plan, read back (it was checked before it was stored).
pub fn load(row: &PlanRow) -> Result<Plan> {
    let value: Value = serde_json::from_str(&row.plan)
        .map_err(|e| Error::internal(format!("plan of lane {} is corrupt: {e}", row.lane_id)))?;
    let plan = parse_plan(&value, "plan")
        .map_err(|e| Error::internal(format!("plan of lane {} is corrupt: {e}", row.lane_id)))?;
    if row.step as usize >= plan.steps.len() || row.step < 0 {
        return Err(Error::internal(format!(
            "plan of lane {} is at step {} of {}",
            row.lane_id,
            row.step,
            plan.steps.len()
        )));
    }
    Ok(plan)
}

/// The audit action of a plan's transition.
fn audited(action: PlanAction) -> AuditAction {
    match action {
        PlanAction::Start => AuditAction::RolloutStart,
        PlanAction::Advance => AuditAction::RolloutAdvance,
        PlanAction::Pause => AuditAction::RolloutPause,
        PlanAction::Resume => AuditAction::RolloutResume,
        PlanAction::Complete => AuditAction::RolloutComplete,
        PlanAction::Abort => AuditAction::RolloutAbort,
    }
}

fn audit_entry(actor: &Actor, action: AuditAction, path: &ConfigPath) -> NewEntry {
    NewEntry::new(&actor.name, action).config(path)
}

/// A sentence cut to fit a release event's message.
fn fit(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX_MESSAGE_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// Stores `choice` as the running plan of `lane` at step 0 (the lane is at its first step's
/// percentage since release event `event`), with its `start` transition and audit entry.
pub async fn start_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    path: &ConfigPath,
    lane: &Lane,
    choice: &PlanChoice,
    event: i64,
) -> Result<()> {
    let kinds: Vec<_> = choice.plan.guards.iter().map(|g| g.kind()).collect();
    db::plans::insert(
        tx,
        db::plans::NewPlanRow {
            lane_id: lane.id,
            // The real plan, credentials included: its probes need them.
            plan: &serde_json::to_string(&choice.plan).map_err(Error::internal)?,
            template: choice.template.as_deref(),
            step_started_at: at.unix_ms(),
            step_event: event,
            created_by: &actor.name,
            guards: &kinds,
        },
    )
    .await?;
    let first = choice.first_percentage();
    db::plans::insert_transition(
        tx,
        db::plans::NewTransition {
            lane_id: lane.id,
            action: PlanAction::Start,
            actor: &actor.name,
            from_step: None,
            step: 0,
            state: PlanAction::Start.leads_to(),
            percentage: first,
            reason: None,
            release_event: Some(event),
            forced: false,
        },
    )
    .await?;
    db::audit::record(
        tx,
        at,
        audit_entry(actor, audited(PlanAction::Start), path).details(json!({
            "lane": lane.id, "version": lane.version, "plan": choice.spec(),
            "template": choice.template, "percentage": first,
            "release_event": event,
        })),
    )
    .await?;
    Ok(())
}

/// After `actor` changed `lane`'s percentage by hand: pauses its running plan (a person took
/// over). Whether it did.
pub async fn person_took_over(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    path: &ConfigPath,
    lane: &Lane,
    event: i64,
) -> Result<bool> {
    let Some(row) = db::plans::find(&mut **tx, lane.id).await? else {
        return Ok(false);
    };
    if row.state != PlanState::Running {
        return Ok(false);
    }
    let reason = format!(
        "{} set the lane's percentage to {} by hand; the plan is paused (a person took over)",
        actor.name, lane.percentage
    );
    let step = row.step as usize;
    moves::record(
        tx,
        at,
        actor,
        path,
        Moved {
            row: &row,
            action: PlanAction::Pause,
            step,
            step_started_at: row.step_started_at,
            paused_at: Some(at.unix_ms()),
            step_event: None,
            percentage: lane.percentage,
            reason: &reason,
            release_event: Some(event),
            forced: false,
            details: json!({
                "lane": lane.id, "step": step, "reason": reason, "release_event": event,
            }),
        },
    )
    .await?;
    Ok(true)
}

/// After `lane` was promoted or aborted by a person (or deleted with its config): ends its
/// plan if it was still running or paused. Whether it did.
pub async fn lane_closed(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    path: &ConfigPath,
    lane: &Lane,
    how: Close,
    event: i64,
) -> Result<bool> {
    let Some(row) = db::plans::find(&mut **tx, lane.id).await? else {
        return Ok(false);
    };
    if row.state.is_final() {
        return Ok(false);
    }
    let (action, reason) = match how {
        Close::Promote => (
            PlanAction::Complete,
            format!("{} promoted the lane", actor.name),
        ),
        Close::Abort => (
            PlanAction::Abort,
            format!("{} aborted the lane", actor.name),
        ),
    };
    let step = row.step as usize;
    moves::record(
        tx,
        at,
        actor,
        path,
        Moved {
            row: &row,
            action,
            step,
            step_started_at: row.step_started_at,
            paused_at: None,
            step_event: None,
            percentage: lane.percentage,
            reason: &reason,
            release_event: Some(event),
            forced: false,
            details: json!({
                "lane": lane.id, "step": step, "reason": reason, "release_event": event,
            }),
        },
    )
    .await?;
    Ok(true)
}

/// The summary of a stored plan at `now`, in an environment with the freeze `windows` (a hold
/// does not count frozen time; a running plan says when it is frozen).
fn summary(row: &PlanRow, plan: &Plan, now: i64, windows: &[(Schedule, String)]) -> PlanSummary {
    let (step, state) = (row.step as usize, row.state);
    let remaining = match (state, row.paused_at) {
        (PlanState::Running, _) => remaining_ms(
            plan,
            step,
            freezes::hold_start(windows, row.step_started_at, now),
            now,
        ),
        (PlanState::Paused, Some(paused_at)) => remaining_ms(
            plan,
            step,
            freezes::hold_start(windows, row.step_started_at, paused_at),
            paused_at,
        ),
        _ => 0,
    };
    let frozen = match state {
        PlanState::Running => freezes::frozen(windows, crate::server::clock::timestamp(now)),
        _ => None,
    };
    PlanSummary {
        state,
        step,
        steps: plan.steps.len(),
        percentage: plan.steps[step].percentage,
        step_started_at: crate::server::clock::timestamp(row.step_started_at),
        remaining_secs: (remaining as u64).div_ceil(1000),
        waiting_for: match state {
            PlanState::Running if frozen.is_some() => frozen.map(|f| f.words()),
            PlanState::Running if remaining > 0 => Some(format!(
                "holding at {} for {} more",
                plan.steps[step].percentage,
                human_secs((remaining as u64).div_ceil(1000))
            )),
            PlanState::Running => row.waiting_for.clone(),
            _ => None,
        },
        reason: row.reason.clone(),
        template: row.template.clone(),
    }
}

/// Fills in the plan summary of each of `lanes` (of a config in `env`) that has a plan.
/// Fills in at `now` (the hold's countdown).
pub async fn summarize(db: &db::Pool, env: &str, now: Timestamp, lanes: &mut [Lane]) -> Result<()> {
    if lanes.is_empty() {
        return Ok(());
    }
    let now = now.unix_ms();
    let mut conn = db.acquire().await?;
    let mut windows = None;
    for lane in lanes.iter_mut() {
        if let Some(row) = db::plans::find(&mut *conn, lane.id).await? {
            let plan = load(&row)?;
            if windows.is_none() {
                windows = Some(freezes::schedules(&mut *conn, env).await?);
            }
            let windows = windows.as_deref().unwrap_or_default();
            lane.plan = Some(summary(&row, &plan, now, windows));
        }
    }
    Ok(())
}

/// The plan of a lane as `GET …/lanes/{id}/plan` shows it.
async fn show(state: &Core, path: &ConfigPath, lane: i64) -> Result<LanePlan> {
    let mut conn = state.db.acquire().await?;
    let row = plan_row(&mut *conn, path, lane).await?;
    let plan = load(&row)?;
    let windows = freezes::schedules(&mut *conn, &path.env).await?;
    let guards = db::plans::guards(&mut *conn, lane)
        .await?
        .into_iter()
        .map(|g| GuardReading {
            guard: g.guard as usize,
            kind: g.kind,
            status: g.status,
            value: g.value,
            message: g.message,
            evaluated_at: g.evaluated_at,
            comparison: g
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
        })
        .collect();
    let history = db::plans::transitions(&mut *conn, lane)
        .await?
        .into_iter()
        .map(|t| PlanTransition {
            id: t.id,
            at: t.at,
            action: t.action,
            actor: t.actor,
            from_step: t.from_step.map(|s| s as usize),
            step: t.step as usize,
            state: t.state,
            percentage: t.percentage,
            reason: t.reason,
            release_event: t.release_event,
            forced: t.forced,
        })
        .collect();
    Ok(LanePlan {
        lane,
        plan: plan.redacted(),
        summary: summary(&row, &plan, state.clock.now_ms(), &windows),
        guards,
        history,
    })
}

/// The plan of a lane, or 404 naming what is missing.
async fn plan_row(conn: impl db::Executor<'_>, path: &ConfigPath, lane: i64) -> Result<PlanRow> {
    db::plans::find(conn, lane)
        .await?
        .ok_or_else(|| Error::not_found(format!("Lane {lane} of {path} has no rollout plan.")))
}

/// 404 unless `lane` is a lane of the config at `path`.
async fn check_lane(state: &Core, path: &ConfigPath, lane: i64) -> Result<()> {
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    db::lanes::find(&mut *conn, config.id, lane)
        .await?
        .map(drop)
        .ok_or_else(|| Error::not_found(format!("{path} has no lane {lane}.")))
}

/// `GET …/lanes/{id}/plan` (viewer).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn get(state: &Core, actor: &Actor, path: &ConfigPath, lane: LaneId) -> Result<LanePlan> {
    actor.require(Role::Viewer, path.scope())?;
    check_lane(state, path, lane.0).await?;
    show(state, path, lane.0).await
}

/// `PUT …/lanes/{id}/plan` (releaser): runs a plan on an active lane that has none; the lane
/// moves to the plan's first step (a `lane.update` release event, when it is elsewhere).
/// Attaching a plan widens what is live: it passes the gate (`ops::governance`).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn attach(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    body: AttachPlan,
    governed: &Governed,
) -> Result<Outcome<LanePlan>> {
    let LaneId(id) = lane;
    actor.require(Role::Releaser, path.scope())?;
    let message = message_of(body.message)?;
    let Some(choice) = choose(state, &path.env, body.plan.as_ref(), body.template).await? else {
        return Err(Error::invalid(
            "plan",
            "Send a plan, or a template by name, to attach to the lane.",
        ));
    };
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, path).await?;
    let active = lane_changes::find_active(&mut tx, &config, id).await?;
    let widening = attach_widening(&active, &choice, message.clone())?;
    if let Gate::Requested(request) =
        governance::gate(state, &mut tx, actor, &config, &widening, governed).await?
    {
        tx.commit().await?;
        return governance::requested(request);
    }
    let at = state.clock.now();
    let event = attach_in(&mut tx, at, actor, &config, id, &choice, &message).await?;
    tx.commit().await?;
    state.hub.publish(&event);
    moves::moved(state, path, id, PlanAction::Start);
    Ok(Outcome::Done(show(state, path, id).await?))
}

/// Attaching `choice` to active lane `lane` as the gate sees it: the body keeps the plan itself
/// (with its credentials, to run it), `plan` the redacted one.
pub fn attach_widening(lane: &Lane, choice: &PlanChoice, message: String) -> Result<Widening> {
    let plan = serde_json::to_value(&choice.plan).map_err(Error::internal)?;
    Ok(Widening {
        action: ChangeAction::PlanAttach,
        body: json!({ "lane": lane.id, "plan": plan, "message": message }),
        message,
        version: lane.version,
        rule: None,
        plan: Some(json!(choice.spec())),
        widens: true,
    })
}

/// Runs `choice` on active lane `id` inside `tx` (the caller authorized `actor`, passed the
/// gate, and publishes the event and tells the scheduler after the commit).
pub async fn attach_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    id: i64,
    choice: &PlanChoice,
    message: &str,
) -> Result<ReleaseEvent> {
    let path = config.config.path();
    let mut lane = lane_changes::find_active(tx, config, id).await?;
    if db::plans::find(&mut **tx, id).await?.is_some() {
        return Err(Error::conflict(format!(
            "Lane {id} already has a rollout plan; a lane runs one plan in its life. Start a \
             new lane for another plan."
        )));
    }
    let first = choice.first_percentage();
    let event = if lane.percentage == first {
        lane_changes::lane_event(tx, actor, config, &lane, ReleaseKind::LaneUpdate, message).await?
    } else {
        let change = LaneUpdate {
            percentage: Some(first.as_f64()),
            message: Some(message.to_string()),
            ..LaneUpdate::default()
        };
        let (after, event) = lane_changes::update_in(tx, at, actor, config, id, &change).await?;
        lane = after;
        event
    };
    start_in(tx, at, actor, &path, &lane, choice, event.id).await?;
    Ok(event)
}

/// `paused by alice`, or `paused by alice: the error rate` with the person's message.
pub fn done_by(what: &str, actor: &Actor, message: &str) -> String {
    if message.is_empty() {
        format!("{what} by {}", actor.name)
    } else {
        format!("{what} by {}: {message}", actor.name)
    }
}

/// `POST …/lanes/{id}/plan/pause` (releaser): a running plan stops acting; its hold keeps the
/// time it had left.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn pause(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    control: PlanControl,
) -> Result<LanePlan> {
    if control.force {
        return Err(Error::invalid("force", "force is for advance only."));
    }
    let message = message_of(control.message)?;
    let decision = Decision::Pause {
        reason: done_by("paused", actor, &message),
    };
    control_move(state, actor, path, lane, &[PlanState::Running], &decision).await
}

/// `POST …/lanes/{id}/plan/resume` (releaser): a paused plan runs again, and its hold continues
/// with the time it had left.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn resume(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    control: PlanControl,
) -> Result<LanePlan> {
    if control.force {
        return Err(Error::invalid("force", "force is for advance only."));
    }
    let message = message_of(control.message)?;
    actor.require(Role::Releaser, path.scope())?;
    check_lane(state, path, lane.0).await?;
    let mut tx = db::begin_write(&state.db).await?;
    let row = plan_row(&mut *tx, path, lane.0).await?;
    let plan = load(&row)?;
    let Some(paused_at) = row.paused_at.filter(|_| row.state == PlanState::Paused) else {
        return Err(Error::conflict(format!(
            "The plan of lane {} is {}; only a paused plan resumes.",
            lane.0, row.state
        )));
    };
    let config = find(&mut tx, path).await?;
    let current = lane_changes::find_active(&mut tx, &config, lane.0).await?;
    let at = state.clock.now();
    let now = at.unix_ms();
    let step = row.step as usize;
    let started = resumed_step_start(row.step_started_at, paused_at, now);
    let reason = done_by("resumed", actor, &message);
    // What polled guards read before the pause is stale: they are judged afresh.
    db::plans::reset_polled_guards(&mut tx, lane.0).await?;
    moves::record(
        &mut tx,
        at,
        actor,
        path,
        Moved {
            row: &row,
            action: PlanAction::Resume,
            step,
            step_started_at: started,
            paused_at: None,
            step_event: None,
            percentage: current.percentage,
            reason: &reason,
            release_event: None,
            forced: false,
            details: json!({
                "lane": lane.0, "step": step, "reason": reason,
                "remaining_secs": (remaining_ms(&plan, step, started, now) as u64).div_ceil(1000),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    moves::moved(state, path, lane.0, PlanAction::Resume);
    show(state, path, lane.0).await
}

/// `POST …/lanes/{id}/plan/advance` (releaser): skips the rest of the hold of a running (or
/// paused) plan; every guard must pass unless `force` (audited as such).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn advance(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    control: PlanControl,
) -> Result<LanePlan> {
    let message = message_of(control.message)?;
    actor.require(Role::Releaser, path.scope())?;
    check_lane(state, path, lane.0).await?;
    let live = readings::live_plan(&state.db, lane.0)
        .await?
        .ok_or_else(|| {
            Error::conflict(format!(
                "The plan of lane {} is over (or the lane is closed); nothing to advance.",
                lane.0
            ))
        })?;
    let plan = load(&live.row)?;
    // Force skips the guards, never a freeze.
    super::freezes::guard_widening(state, &mut *state.db.acquire().await?, &path.env).await?;
    if !control.force {
        state.instances.flush().await?;
        let readings = readings::readings_now(state, &live, &plan).await?;
        may_advance(&plan, live.row.step as usize, &readings).map_err(Error::conflict)?;
    }
    let step = live.row.step as usize;
    let decision = next_step(&plan, step);
    let by = done_by("advanced", actor, &message);
    let why = if control.force {
        format!("{by} with force, skipping the guards")
    } else {
        by
    };
    let allowed = [PlanState::Running, PlanState::Paused];
    carry_out(
        state,
        actor,
        path,
        lane.0,
        Move {
            step,
            allowed: &allowed,
            decision: &decision,
            why: &why,
            forced: control.force,
        },
    )
    .await?;
    show(state, path, lane.0).await
}

async fn control_move(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    allowed: &[PlanState],
    decision: &Decision,
) -> Result<LanePlan> {
    actor.require(Role::Releaser, path.scope())?;
    check_lane(state, path, lane.0).await?;
    let row = plan_row(&state.db, path, lane.0).await?;
    carry_out(
        state,
        actor,
        path,
        lane.0,
        Move {
            step: row.step as usize,
            allowed,
            decision,
            why: "",
            forced: false,
        },
    )
    .await?;
    show(state, path, lane.0).await
}

/// The reading a stored guard row stands for.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(steps: Value) -> Plan {
        parse_plan(&json!({ "steps": steps }), "plan").unwrap()
    }

    #[test]
    fn a_lane_with_a_plan_starts_at_its_first_step() {
        let choice = PlanChoice {
            plan: plan(json!([{"percentage": 5}, {"percentage": 50}])),
            template: None,
        };
        assert_eq!(choice.start_percentage(f64::NAN).unwrap(), 5.0);
        assert_eq!(choice.start_percentage(5.0).unwrap(), 5.0);
        let e = choice.start_percentage(20.0).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("percentage"));
    }

    fn row(state: PlanState, paused_at: Option<i64>, waiting_for: Option<&str>) -> PlanRow {
        PlanRow {
            lane_id: 1,
            plan: String::new(),
            template: Some("canary".into()),
            state,
            step: 1,
            step_started_at: 1_000_000,
            paused_at,
            step_event: Some(3),
            reason: None,
            waiting_for: waiting_for.map(Into::into),
            created_by: "admin".into(),
        }
    }

    #[test]
    fn summaries_count_the_hold_down_and_stop_the_clock_while_paused() {
        let p =
            plan(json!([{"percentage": 5, "hold_secs": 10}, {"percentage": 25, "hold_secs": 60}]));
        let running = summary(&row(PlanState::Running, None, None), &p, 1_030_500, &[]);
        assert_eq!(running.remaining_secs, 30);
        assert_eq!(running.percentage.as_f64(), 25.0);
        assert_eq!(
            running.waiting_for.as_deref(),
            Some("holding at 25 % for 30 s more")
        );
        assert_eq!(
            running.step_started_at,
            crate::server::clock::timestamp(1_000_000)
        );
        let paused = summary(
            &row(PlanState::Paused, Some(1_010_000), None),
            &p,
            9_000_000,
            &[],
        );
        assert_eq!(paused.remaining_secs, 50);
        assert_eq!(paused.waiting_for, None);
        let waiting = summary(
            &row(
                PlanState::Running,
                None,
                Some("reports guard: waiting for reports"),
            ),
            &p,
            2_000_000,
            &[],
        );
        assert_eq!(waiting.remaining_secs, 0);
        assert_eq!(
            waiting.waiting_for.as_deref(),
            Some("reports guard: waiting for reports")
        );
    }

    #[test]
    fn long_reasons_fit_a_release_message() {
        let long = "x".repeat(MAX_MESSAGE_CHARS + 10);
        let cut = fit(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(fit("short"), "short");
    }
}
