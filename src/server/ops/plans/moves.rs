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
    let (plan, plan_state) = load(&row)?;
    if row.step as usize != m.step || !m.allowed.contains(&plan_state) {
        return Err(Error::conflict(format!(
            "The plan of lane {lane_id} is {} at step {}; the move was decided at step {}.",
            plan_state.as_str(),
            row.step + 1,
            m.step + 1
        )));
    }
    let at = state.clock.now();
    let now = at.unix_ms();
    let step = m.step;
    let steps = plan.steps.len();
    let position = |state: &'static str, step, started, paused_at, event, reason| {
        (state, step, started, paused_at, event, reason)
    };
    let (event, (new_state, new_step, started, paused_at, step_event, reason), action, audit, to) =
        match m.decision {
            Decision::Advance {
                to_step,
                percentage_bp,
            } => {
                let reason = format!(
                    "{}; step {} of {steps}: {}",
                    m.why,
                    to_step + 1,
                    show_bp(*percentage_bp)
                );
                let change = LaneUpdate {
                    percentage: Some(percentage_of(*percentage_bp)),
                    message: Some(fit(&format!("rollout plan: {reason}"))),
                    ..LaneUpdate::default()
                };
                let (_, event) =
                    lane_changes::update_in(&mut tx, at, actor, &config, lane_id, &change).await?;
                db::plans::reset_polled_guards(&mut tx, lane_id).await?;
                let id = event.id;
                (
                    Some(event),
                    position("running", *to_step, now, None, Some(id), Some(reason)),
                    "advance",
                    AuditAction::RolloutAdvance,
                    "advanced",
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
                        "completed",
                        step,
                        row.step_started_at,
                        None,
                        id,
                        Some(reason),
                    ),
                    "complete",
                    AuditAction::RolloutComplete,
                    "completed",
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
                        "aborted",
                        step,
                        row.step_started_at,
                        None,
                        Some(id),
                        Some(reason.clone()),
                    ),
                    "abort",
                    AuditAction::RolloutAbort,
                    "aborted",
                )
            }
            Decision::Pause { reason } => (
                None,
                position(
                    "paused",
                    step,
                    row.step_started_at,
                    Some(now),
                    None,
                    Some(reason.clone()),
                ),
                "pause",
                AuditAction::RolloutPause,
                "paused",
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
    let percentage_bp = match m.decision {
        Decision::Advance { percentage_bp, .. } => *percentage_bp,
        _ => plan.steps[step].percentage_bp,
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
            percentage_bp,
            reason: Some(&reason),
            release_event: event.as_ref().map(|e| e.id),
            forced: m.forced,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        at,
        audit_entry(actor, audit, path).details(json!({
            "lane": lane_id, "from_step": step, "step": new_step,
            "percentage": percentage_of(percentage_bp), "reason": reason,
            "forced": m.forced, "release_event": event.as_ref().map(|e| e.id),
        })),
    )
    .await?;
    tx.commit().await?;
    if let Some(event) = &event {
        state.hub.publish(event);
    }
    state.metrics.rollout_transition(to);
    state.rollouts.forget_probes(lane_id);
    state.rollouts.wake();
    // Live views of the scope (the dashboard's instances stream) hear of the plan's move.
    state
        .instances
        .changed(&crate::model::EnvPath::new(&path.namespace, &path.env));
    tracing::info!(lane = lane_id, action, reason = %reason, "rollout plan moved");
    Ok(event)
}

/// Ends a plan whose lane was closed without it (a config deletion closes its lanes).
pub async fn end_orphan(state: &Core, path: &ConfigPath, lane_id: i64, status: &str) -> Result<()> {
    let at = state.clock.now();
    let mut tx = db::begin_write(&state.db).await?;
    let Some(row) = db::plans::find(&mut *tx, lane_id).await? else {
        return Ok(());
    };
    let (_, plan_state) = load(&row)?;
    if plan_state.is_final() {
        return Ok(());
    }
    let reason = format!("the lane was {status} outside the plan");
    let step = row.step as usize;
    let state_word = if status == "promoted" {
        "completed"
    } else {
        "aborted"
    };
    db::plans::set_position(
        &mut tx,
        at,
        lane_id,
        db::plans::PlanPosition {
            state: state_word,
            step,
            step_started_at: row.step_started_at,
            paused_at: None,
            step_event: None,
            reason: Some(&reason),
            waiting_for: None,
        },
    )
    .await?;
    let (plan, _) = load(&row)?;
    db::plans::insert_transition(
        &mut tx,
        db::plans::NewTransition {
            lane_id,
            action: if state_word == "completed" {
                "complete"
            } else {
                "abort"
            },
            actor: SCHEDULER,
            from_step: Some(step),
            step,
            state: state_word,
            percentage_bp: plan.steps[step].percentage_bp,
            reason: Some(&reason),
            release_event: None,
            forced: false,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        at,
        audit_entry(
            &scheduler(),
            if state_word == "completed" {
                AuditAction::RolloutComplete
            } else {
                AuditAction::RolloutAbort
            },
            path,
        )
        .details(json!({ "lane": lane_id, "step": step, "reason": reason })),
    )
    .await?;
    tx.commit().await?;
    state
        .metrics
        .rollout_transition(if state_word == "completed" {
            "completed"
        } else {
            "aborted"
        });
    Ok(())
}
