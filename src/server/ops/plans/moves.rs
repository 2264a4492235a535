//! Carrying out a plan's moves — the scheduler's and a person's alike — in one transaction
//! each, the lane changes going through [`super::lane_changes`], and recording every move the
//! same way: the plan's new position, its transition and its `rollout.*` audit entry.

use super::*;

/// A move of a plan, decided at `step` in one of the `allowed` states.
pub struct Move<'a> {
    pub step: usize,
    pub allowed: &'a [PlanState],
    pub decision: &'a Decision,
    /// Why it advances or completes (the abort and pause decisions carry their reasons).
    pub why: &'a str,
    pub forced: bool,
}

/// Carries out a move in one transaction: the lane change (through [`super::lane_changes`],
/// with its release event and audit entry), then the move as [`record`]ed; then hands the
/// release event to the hub. 409 when the plan is no longer where the move was decided (a
/// person or another move came first). `Wait` does nothing.
pub async fn carry_out(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane_id: i64,
    m: Move<'_>,
) -> Result<Option<ReleaseEvent>> {
    if matches!(m.decision, Decision::Wait { .. }) {
        return Ok(None);
    }
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, path).await?;
    let carried = carry_out_in(&mut tx, state.clock.now(), actor, &config, lane_id, &m).await?;
    tx.commit().await?;
    carried.announce(state, path, lane_id);
    Ok(carried.event)
}

/// A move carried out inside a transaction, to be [announced](Carried::announce) after its
/// commit.
pub struct Carried {
    pub action: PlanAction,
    pub reason: String,
    /// The release event of the lane change, if the lane changed.
    pub event: Option<ReleaseEvent>,
}

impl Carried {
    /// After the commit: the release event to the hub, and the move [`moved`].
    pub fn announce(&self, state: &Core, path: &ConfigPath, lane_id: i64) {
        if let Some(event) = &self.event {
            state.hub.publish(event);
        }
        moved(state, path, lane_id, self.action);
        tracing::info!(lane = lane_id, action = self.action.as_str(), reason = %self.reason, "rollout plan moved");
    }
}

/// [`carry_out`]'s work inside `tx` (a `Wait` is the caller's to skip): the lane change and
/// the move as [`record`]ed, or 409 when the plan is no longer where the move was decided.
pub async fn carry_out_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &db::configs::StoredConfig,
    lane_id: i64,
    m: &Move<'_>,
) -> Result<Carried> {
    let path = config.config.path();
    let row = plan_row(&mut **tx, &path, lane_id).await?;
    let plan = load(&row)?;
    if row.step as usize != m.step || !m.allowed.contains(&row.state) {
        return Err(Error::conflict(format!(
            "The plan of lane {lane_id} is {} at step {}; the move was decided at step {}.",
            row.state,
            row.step + 1,
            m.step + 1
        )));
    }
    let done = change_lane(tx, at, actor, config, &row, &plan, m).await?;
    let release_event = done.event.as_ref().map(|e| e.id);
    record(
        tx,
        at,
        actor,
        &path,
        Moved {
            row: &row,
            action: done.action,
            step: done.step,
            step_started_at: done.step_started_at,
            paused_at: done.paused_at,
            step_event: release_event,
            percentage: done.percentage,
            reason: &done.reason,
            release_event,
            forced: m.forced,
            details: json!({
                "lane": lane_id, "from_step": m.step, "step": done.step,
                "percentage": done.percentage, "reason": done.reason,
                "forced": m.forced, "release_event": release_event,
            }),
        },
    )
    .await?;
    Ok(Carried {
        action: done.action,
        reason: done.reason,
        event: done.event,
    })
}

/// What a move did to the lane, and where it leaves the plan.
struct LaneChanged {
    action: PlanAction,
    /// The plan's step after the move.
    step: usize,
    step_started_at: i64,
    paused_at: Option<i64>,
    /// The lane's percentage after the move.
    percentage: Percentage,
    reason: String,
    /// The release event of the lane change, if the lane changed.
    event: Option<ReleaseEvent>,
}

/// The lane change a decision asks for: widen the lane to the next step, promote it, abort it,
/// or none (a pause, or a completion that leaves the lane for a person).
async fn change_lane(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &db::configs::StoredConfig,
    row: &PlanRow,
    plan: &Plan,
    m: &Move<'_>,
) -> Result<LaneChanged> {
    let lane_id = row.lane_id;
    let stays = |action, reason: String, event| LaneChanged {
        action,
        step: m.step,
        step_started_at: row.step_started_at,
        paused_at: None,
        percentage: plan.steps[m.step].percentage,
        reason,
        event,
    };
    let message = |reason: &str| fit(&format!("rollout plan: {reason}"));
    Ok(match m.decision {
        Decision::Advance {
            to_step,
            percentage,
        } => {
            let reason = format!(
                "{}; step {} of {}: {percentage}",
                m.why,
                to_step + 1,
                plan.steps.len()
            );
            let change = LaneUpdate {
                percentage: Some(percentage.as_f64()),
                message: Some(message(&reason)),
                ..LaneUpdate::default()
            };
            let (_, event) =
                lane_changes::update_in(tx, at, actor, config, lane_id, &change).await?;
            db::plans::reset_polled_guards(tx, lane_id).await?;
            LaneChanged {
                action: PlanAction::Advance,
                step: *to_step,
                step_started_at: at.unix_ms(),
                paused_at: None,
                percentage: *percentage,
                reason,
                event: Some(event),
            }
        }
        Decision::Complete { promote: true } => {
            let reason = format!("{}; the last step is done, the lane is promoted", m.why);
            let (_, event) = lane_changes::close_in(
                tx,
                at,
                actor,
                config,
                lane_id,
                &message(&reason),
                Close::Promote,
            )
            .await?;
            stays(PlanAction::Complete, reason, Some(event))
        }
        Decision::Complete { promote: false } => {
            let reason = format!(
                "{}; the last step is done, the lane stays for a person to promote",
                m.why
            );
            stays(PlanAction::Complete, reason, None)
        }
        Decision::Abort { reason } => {
            let (_, event) =
                lane_changes::close_in(tx, at, actor, config, lane_id, &fit(reason), Close::Abort)
                    .await?;
            stays(PlanAction::Abort, reason.clone(), Some(event))
        }
        Decision::Pause { reason } => LaneChanged {
            paused_at: Some(at.unix_ms()),
            ..stays(PlanAction::Pause, reason.clone(), None)
        },
        Decision::Wait { .. } => unreachable!("waiting was answered before"),
    })
}

/// A move of a plan as it is recorded.
pub(super) struct Moved<'a> {
    /// The plan before the move.
    pub row: &'a PlanRow,
    pub action: PlanAction,
    /// Where the plan is after the move.
    pub step: usize,
    pub step_started_at: i64,
    pub paused_at: Option<i64>,
    /// The release event that put the lane at the new step's percentage, when it moved there.
    pub step_event: Option<i64>,
    /// The lane's percentage after the move.
    pub percentage: Percentage,
    pub reason: &'a str,
    /// The release event the move caused or followed, if any.
    pub release_event: Option<i64>,
    /// An `advance` that skipped the guards.
    pub forced: bool,
    /// The details of the `rollout.*` audit entry.
    pub details: Value,
}

/// Records a move inside `tx`: the plan's new position, its transition (by `actor`, in the
/// plan's history) and its `rollout.*` audit entry.
pub(super) async fn record(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    path: &ConfigPath,
    m: Moved<'_>,
) -> Result<()> {
    let lane_id = m.row.lane_id;
    let state = m.action.leads_to();
    db::plans::set_position(
        tx,
        at,
        lane_id,
        db::plans::PlanPosition {
            state,
            step: m.step,
            step_started_at: m.step_started_at,
            paused_at: m.paused_at,
            step_event: m.step_event,
            // A resumed plan no longer says why it was paused.
            reason: Some(m.reason).filter(|_| m.action != PlanAction::Resume),
            waiting_for: None,
        },
    )
    .await?;
    db::plans::insert_transition(
        tx,
        db::plans::NewTransition {
            lane_id,
            action: m.action,
            actor: &actor.name,
            from_step: Some(m.row.step as usize),
            step: m.step,
            state,
            percentage: m.percentage,
            reason: Some(m.reason),
            release_event: m.release_event,
            forced: m.forced,
        },
    )
    .await?;
    db::audit::record(
        tx,
        at,
        audit_entry(actor, audited(m.action), path).details(m.details),
    )
    .await?;
    Ok(())
}

/// After a move was committed: counted, the probes start afresh, the scheduler looks again,
/// and live views of the scope (the dashboard's instances stream) hear of it.
pub(super) fn moved(state: &Core, path: &ConfigPath, lane_id: i64, action: PlanAction) {
    state.metrics.rollout_transition(action.done());
    state.scheduler.forget_probes(lane_id);
    state.scheduler.wake();
    state
        .instances
        .changed(&crate::model::EnvPath::new(&path.namespace, &path.env));
}

/// Ends a plan whose lane was closed without it (a config deletion closes its lanes).
pub async fn end_orphan(
    state: &Core,
    path: &ConfigPath,
    lane_id: i64,
    status: LaneStatus,
) -> Result<()> {
    let at = state.clock.now();
    let mut tx = db::begin_write(&state.db).await?;
    let Some(row) = db::plans::find(&mut *tx, lane_id).await? else {
        return Ok(());
    };
    if row.state.is_final() {
        return Ok(());
    }
    let plan = load(&row)?;
    let reason = format!("the lane was {status} outside the plan");
    let step = row.step as usize;
    let action = if status == LaneStatus::Promoted {
        PlanAction::Complete
    } else {
        PlanAction::Abort
    };
    record(
        &mut tx,
        at,
        &scheduler(),
        path,
        Moved {
            row: &row,
            action,
            step,
            step_started_at: row.step_started_at,
            paused_at: None,
            step_event: None,
            percentage: plan.steps[step].percentage,
            reason: &reason,
            release_event: None,
            forced: false,
            details: json!({ "lane": lane_id, "step": step, "reason": reason }),
        },
    )
    .await?;
    tx.commit().await?;
    state.metrics.rollout_transition(action.done());
    Ok(())
}
