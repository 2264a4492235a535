//! The plan scheduler (docs/plans.md): one task per serving process that drives every
//! running plan. It ticks every `--plan-tick-ms` and wakes at once when something a plan
//! depends on happened: the instance registry wrote reports or served versions
//! ([`crate::server::instances::Instances::flushed`]), a lane or plan changed, or a guard
//! probe answered ([`Scheduler::wake`]). A failed report therefore aborts its lane within the
//! registry's flush delay (≤ 1.3 s) plus one evaluation.
//!
//! Each turn, for every running plan: its guards are read ([`evaluate`]), the pure
//! [`decide`](crate::domain::plan::decide::decide) says what to do, and
//! [`ops::plans::carry_out`] does it as lane changes through `ops::lane_changes`, so subscribers see
//! them through the push hub like any release. Holds are wall-clock time (`step_started_at` is
//! stored), so a restart mid-hold continues with the time the hold had left.
//!
//! Polled guards (Prometheus, webhooks) are probed by spawned tasks on their own intervals
//! ([`probes`]), with deadlines; their answers are picked up at the next turn. Nothing here
//! blocks a release, the push hub or a request.

mod evaluate;
pub(crate) mod probes;

use crate::domain::plan::decide::{decide, Decision, PlanState};
use crate::model::{ConfigPath, LaneStatus};
use crate::server::db;
use crate::server::freezes::Schedule;
use crate::server::node::{Lease, SoleNode};
use crate::server::ops::freezes;
use crate::server::ops::plans::{self as plan_ops, Move};
use crate::server::Core;
use crate::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Whether this node may drive plans now.
///
/// The scheduler's handle, kept in the [`Core`].
pub struct Scheduler {
    tick: Duration,
    wake: Notify,
    lease: Box<dyn Lease>,
    probes: Mutex<probes::Slots>,
    /// The last stored reading of each `reports` guard and when it was stored.
    stored: Mutex<HashMap<(i64, usize), evaluate::Stored>>,
}

impl Scheduler {
    pub fn new(tick: Duration) -> Self {
        Self::with_lease(tick, Box::new(SoleNode))
    }

    pub fn with_lease(tick: Duration, lease: Box<dyn Lease>) -> Self {
        Self {
            tick,
            wake: Notify::new(),
            lease,
            probes: Mutex::default(),
            stored: Mutex::default(),
        }
    }

    /// Whether this node drives the plans now (for `/metrics`).
    pub fn drives_plans(&self) -> bool {
        self.lease.holds()
    }

    /// Something a plan depends on changed: evaluate now rather than at the next tick.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A plan moved to another step or ended: its probes start afresh.
    pub fn forget_probes(&self, lane: i64) {
        self.probes.lock().expect("probes lock").forget(lane);
        self.stored
            .lock()
            .expect("stored lock")
            .retain(|(l, _), _| *l != lane);
    }
}

/// Starts the scheduler of a serving process; it ends when the server begins to shut down
/// or the core is dropped.
pub fn spawn(core: &Arc<Core>) {
    let weak = Arc::downgrade(core);
    let mut closing = core.closing.subscribe();
    tokio::spawn(async move {
        loop {
            let Some(core) = weak.upgrade() else {
                return;
            };
            if *closing.borrow() {
                core.scheduler.lease.give_up().await;
                return;
            }
            if core.scheduler.lease.held().await {
                if let Err(e) = turn(&core).await {
                    tracing::error!(error = e.detail(), "the plan scheduler cannot read plans");
                }
                // Scheduled change requests (issue 28) run on the lease holder too.
                if let Err(e) = crate::server::ops::change_requests::apply_due(&core).await {
                    tracing::error!(error = e.detail(), "cannot apply scheduled change requests");
                }
            }
            let scheduler = core.scheduler.clone();
            let instances = core.instances.clone();
            let clock = core.clock.clone();
            drop(core);
            tokio::select! {
                // A manual clock moved past a hold's end wakes it too.
                _ = clock.sleep(scheduler.tick) => {}
                _ = scheduler.wake.notified() => {}
                _ = instances.flushed().notified() => {}
                _ = closing.changed() => {}
            }
        }
    });
}

/// One turn: every live plan is driven once.
async fn turn(core: &Arc<Core>) -> Result<()> {
    let plans = db::plans::live(&core.db).await?;
    core.metrics.set_rollouts_active(plans.len());
    let running: Vec<i64> = plans
        .iter()
        .filter(|p| p.row.state == PlanState::Running && p.lane_status == LaneStatus::Active)
        .map(|p| p.row.lane_id)
        .collect();
    core.scheduler
        .probes
        .lock()
        .expect("probes lock")
        .keep_only(&running);
    core.metrics.keep_comparisons_of(&running);
    // Each environment's freeze windows, read once per turn.
    let mut windows = HashMap::new();
    for live in &plans {
        if let Err(e) = drive(core, live, &mut windows).await {
            if e.status == 409 {
                // A person (or an earlier move) came first; the next turn decides afresh.
                tracing::debug!(
                    lane = live.row.lane_id,
                    error = e.detail(),
                    "plan moved meanwhile"
                );
            } else {
                tracing::error!(
                    lane = live.row.lane_id,
                    error = e.detail(),
                    "cannot drive a rollout plan"
                );
            }
        }
    }
    Ok(())
}

/// During a freeze a plan holds: it neither advances nor completes (guards are still read, and
/// a failing one still aborts or pauses it), and it says it is frozen and until when.
fn held(decision: Decision, frozen: Option<freezes::Frozen>) -> Decision {
    match (decision, frozen) {
        (Decision::Abort { reason }, _) => Decision::Abort { reason },
        (Decision::Pause { reason }, _) => Decision::Pause { reason },
        (_, Some(frozen)) => Decision::Wait {
            remaining_secs: 0,
            waiting_for: frozen.words(),
        },
        (decision, None) => decision,
    }
}

async fn drive(
    core: &Arc<Core>,
    live: &db::plans::LivePlan,
    windows: &mut HashMap<String, Vec<(Schedule, String)>>,
) -> Result<()> {
    let path = ConfigPath::new(&live.namespace, &live.env, &live.key);
    let lane = live.row.lane_id;
    if live.lane_status != LaneStatus::Active {
        return plan_ops::end_orphan(core, &path, lane, live.lane_status).await;
    }
    let plan = plan_ops::load(&live.row)?;
    if live.row.state != PlanState::Running {
        return Ok(());
    }
    probes::start_due(core, live, &plan);
    let readings = evaluate::readings(core, live, &plan).await?;
    let step = live.row.step as usize;
    if !windows.contains_key(&live.env) {
        let read = freezes::schedules(&core.db, &live.env).await?;
        windows.insert(live.env.clone(), read);
    }
    let windows = &windows[&live.env];
    let now = core.clock.now();
    let decision = decide(
        &plan,
        step,
        freezes::hold_start(windows, live.row.step_started_at, now.unix_ms()),
        now.unix_ms(),
        &readings,
    );
    let decision = held(decision, freezes::frozen(windows, now));
    if let Decision::Wait {
        waiting_for,
        remaining_secs,
    } = &decision
    {
        // A hold's countdown is told at read time (see ops::plans::summary), so a holding
        // plan writes nothing turn after turn; what else it waits for is written on change.
        let stored = (*remaining_secs == 0).then_some(waiting_for.as_str());
        if live.row.waiting_for.as_deref() != stored {
            db::plans::set_waiting_for(&core.db, lane, stored).await?;
        }
        return Ok(());
    }
    let why = format!(
        "step {} of {} held {} with every guard {}",
        step + 1,
        plan.steps.len(),
        crate::domain::plan::decide::human_secs(u64::from(plan.steps[step].hold_secs)),
        if readings
            .iter()
            .all(|r| r.status == crate::domain::plan::guard::GuardStatus::Passing)
        {
            "passing"
        } else {
            "passing or without data (no_data: advance)"
        }
    );
    plan_ops::carry_out(
        core,
        &plan_ops::scheduler(),
        &path,
        lane,
        Move {
            step,
            allowed: &[PlanState::Running],
            decision: &decision,
            why: &why,
            forced: false,
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Percentage;

    #[test]
    fn a_freeze_holds_every_move_but_an_abort_or_a_pause() {
        let frozen = || {
            Some(freezes::Frozen {
                reason: "peak sale".into(),
                until: crate::server::clock::timestamp(0),
                until_wall: "Thursday 1970-01-01 00:00 UTC".into(),
            })
        };
        let hold = Decision::Wait {
            remaining_secs: 0,
            waiting_for: "frozen (peak sale) until 1970-01-01T00:00:00.000Z \
                          (Thursday 1970-01-01 00:00 UTC)"
                .into(),
        };
        let moves = [
            Decision::Advance {
                to_step: 1,
                percentage: Percentage::from_bp(5000).unwrap(),
            },
            Decision::Complete { promote: true },
            Decision::Complete { promote: false },
            Decision::Wait {
                remaining_secs: 30,
                waiting_for: "holding at 10 % for 30 s more".into(),
            },
        ];
        for decision in moves {
            assert_eq!(held(decision.clone(), frozen()), hold);
            assert_eq!(held(decision.clone(), None), decision);
        }
        for decision in [
            Decision::Abort {
                reason: "bad".into(),
            },
            Decision::Pause {
                reason: "bad".into(),
            },
        ] {
            assert_eq!(held(decision.clone(), frozen()), decision);
        }
    }
}
