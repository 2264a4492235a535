//! Carrying out a plan's moves — the scheduler's and a person's alike — in one transaction
//! each, the lane changes going through [`super::super::lanes`].

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

/// Carries out a move in one transaction: the lane change (through [`super::lanes`], with its
/// release event and audit entry), the plan's new position, its transition and the `rollout.*`
/// audit entry; then hands the release event to the hub. 409 when the plan is no longer where
/// the move was decided (a person or another move came first). `Wait` does nothing.
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
    let row = plan_row(&mut *tx, path, lane_id).await?;
    let plan = load(&row)?;
    if row.step as usize != m.step || !m.allowed.contains(&row.state) {
        return Err(Error::conflict(format!(
            "The plan of lane {lane_id} is {} at step {}; the move was decided at step {}.",
            row.state,
            row.step + 1,
            m.step + 1
        )));
    }
    let at = state.clock.now();
    let now = at.unix_ms();
    let step = m.step;
    let steps = plan.steps.len();
    let position = |state: PlanState, step, started, paused_at, event, reason| {
        (state, step, started, paused_at, event, reason)
    };
    let (event, (new_state, new_step, started, paused_at, step_event, reason), action) =
        match m.decision {
            Decision::Advance {
                to_step,
                percentage,
            } => {
                let reason = format!("{}; step {} of {steps}: {}", m.why, to_step + 1, percentage);
                let change = LaneUpdate {
                    percentage: Some(percentage.as_f64()),
                    message: Some(fit(&format!("rollout plan: {reason}"))),
                    ..LaneUpdate::default()
                };
                let (_, event) =
                    lane_changes::update_in(&mut tx, at, actor, &config, lane_id, &change).await?;
                db::plans::reset_polled_guards(&mut tx, lane_id).await?;
                let id = event.id;
                (
                    Some(event),
                    position(
                        PlanState::Running,
                        *to_step,
                        now,
                        None,
                        Some(id),
                        Some(reason),
                    ),
                    PlanAction::Advance,
                )
            }
            Decision::Complete { promote } => {
                let (event, reason) = if *promote {
                    let reason = format!("{}; the last step is done, the lane is promoted", m.why);
                    let (_, event) = lane_changes::close_in(
                        &mut tx,
                        at,
                        actor,
                        &config,
                        lane_id,
                        &fit(&format!("rollout plan: {reason}")),
                        Close::Promote,
                    )
                    .await?;
                    (Some(event), reason)
                } else {
                    let reason = format!(
                        "{}; the last step is done, the lane stays for a person to promote",
                        m.why
                    );
                    (None, reason)
                };
                let id = event.as_ref().map(|e| e.id);
                (
                    event,
                    position(
                        PlanState::Completed,
                        step,
                        row.step_started_at,
                        None,
                        id,
                        Some(reason),
                    ),
                    PlanAction::Complete,
                )
            }
            Decision::Abort { reason } => {
                let (_, event) = lane_changes::close_in(
                    &mut tx,
                    at,
                    actor,
                    &config,
                    lane_id,
                    &fit(reason),
                    Close::Abort,
                )
                .await?;
                let id = event.id;
                (
                    Some(event),
                    position(
                        PlanState::Aborted,
                        step,
                        row.step_started_at,
                        None,
                        Some(id),
                        Some(reason.clone()),
                    ),
                    PlanAction::Abort,
                )
            }
            Decision::Pause { reason } => (
                None,
                position(
                    PlanState::Paused,
                    step,
                    row.step_started_at,
                    Some(now),
                    None,
                    Some(reason.clone()),
                ),
                PlanAction::Pause,
            ),
            Decision::Wait { .. } => unreachable!("waiting was answered above"),
        };
    let reason = reason.unwrap_or_default();
    db::plans::set_position(
        &mut tx,
        at,
        lane_id,
        db::plans::PlanPosition {
            state: new_state,
            step: new_step,
            step_started_at: started,
            paused_at,
            step_event,
            reason: Some(&reason),
            waiting_for: None,
        },
    )
    .await?;
    let percentage = match m.decision {
        Decision::Advance { percentage, .. } => *percentage,
        _ => plan.steps[step].percentage,
    };
    db::plans::insert_transition(
        &mut tx,
        db::plans::NewTransition {
            lane_id,
            action,
            actor: &actor.name,
            from_step: Some(step),
            step: new_step,
            state: new_state,
            percentage,
            reason: Some(&reason),
            release_event: event.as_ref().map(|e| e.id),
            forced: m.forced,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        at,
        audit_entry(actor, audited(action), path).details(json!({
            "lane": lane_id, "from_step": step, "step": new_step,
            "percentage": percentage, "reason": reason,
            "forced": m.forced, "release_event": event.as_ref().map(|e| e.id),
        })),
    )
    .await?;
    tx.commit().await?;
    if let Some(event) = &event {
        state.hub.publish(event);
    }
    state.metrics.rollout_transition(action.done());
    state.scheduler.forget_probes(lane_id);
    state.scheduler.wake();
    // Live views of the scope (the dashboard's instances stream) hear of the plan's move.
    state
        .instances
        .changed(&crate::model::EnvPath::new(&path.namespace, &path.env));
    tracing::info!(lane = lane_id, action = action.as_str(), reason = %reason, "rollout plan moved");
    Ok(event)
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
    let reason = format!("the lane was {status} outside the plan");
    let step = row.step as usize;
    let action = if status == LaneStatus::Promoted {
        PlanAction::Complete
    } else {
        PlanAction::Abort
    };
    db::plans::set_position(
        &mut tx,
        at,
        lane_id,
        db::plans::PlanPosition {
            state: action.leads_to(),
            step,
            step_started_at: row.step_started_at,
            paused_at: None,
            step_event: None,
            reason: Some(&reason),
            waiting_for: None,
        },
    )
    .await?;
    let plan = load(&row)?;
    db::plans::insert_transition(
        &mut tx,
        db::plans::NewTransition {
            lane_id,
            action,
            actor: SCHEDULER,
            from_step: Some(step),
            step,
            state: action.leads_to(),
            percentage: plan.steps[step].percentage,
            reason: Some(&reason),
            release_event: None,
            forced: false,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        at,
        audit_entry(&scheduler(), audited(action), path)
            .details(json!({ "lane": lane_id, "step": step, "reason": reason })),
    )
    .await?;
    tx.commit().await?;
    state.metrics.rollout_transition(action.done());
    Ok(())
}
