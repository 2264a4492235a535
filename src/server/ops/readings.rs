//! A plan's guard readings as stored, and its `reports` guard judged now: what the rollout
//! scheduler evaluates each turn and what a person's `advance` checks. A leaf the plan
//! operations and the scheduler share.

use crate::domain::plan::guard::{judge_reports, GuardStatus, Reading};
use crate::domain::plan::{Guard, Plan};
use crate::model::LaneStatus;
use crate::server::clock::timestamp;
use crate::server::db::{self, plans::LivePlan};
use crate::server::Core;
use crate::Result;

/// The running or paused plan of an active lane, with its lane and config.
pub async fn live_plan(db: &db::Pool, lane: i64) -> Result<Option<LivePlan>> {
    Ok(db::plans::live(db)
        .await?
        .into_iter()
        .find(|p| p.row.lane_id == lane && p.lane_status == LaneStatus::Active))
}

/// The `reports` guard of `live` right now (its polled guards as last read), for a person's
/// `advance`; stores nothing.
pub async fn readings_now(core: &Core, live: &LivePlan, plan: &Plan) -> Result<Vec<Reading>> {
    let rows = db::plans::guards(&core.db, live.row.lane_id).await?;
    let mut readings = Vec::with_capacity(plan.guards.len());
    for (i, guard) in plan.guards.iter().enumerate() {
        readings.push(match guard {
            Guard::Reports(g) => reports(core, live, g).await?,
            _ => match rows.get(i) {
                Some(row) => reading_of(row),
                None => not_evaluated(),
            },
        });
    }
    Ok(readings)
}

pub fn not_evaluated() -> Reading {
    Reading {
        status: GuardStatus::NoData,
        value: None,
        message: "not evaluated yet".into(),
        streak: 0,
        applied: None,
        comparison: None,
    }
}

pub async fn reports(
    core: &Core,
    live: &LivePlan,
    guard: &crate::domain::plan::ReportsGuard,
) -> Result<Reading> {
    let step_event = live.row.step_event.unwrap_or(0);
    if core.instances.written_through() < step_event {
        return Ok(Reading {
            status: GuardStatus::NoData,
            value: None,
            message: format!(
                "reports guard: waiting for the lane's slice at {} to be served",
                live.percentage
            ),
            streak: 0,
            applied: None,
            comparison: None,
        });
    }
    let served = db::plans::served_set(
        &core.db,
        (&live.namespace, &live.env, &live.key),
        live.version,
        live.row.lane_id,
        timestamp(live.row.step_started_at),
    )
    .await?;
    Ok(judge_reports(guard, live.version, &served))
}

/// A stored guard reading.
pub fn reading_of(row: &db::plans::GuardRow) -> Reading {
    Reading {
        status: row.status,
        value: row.value,
        message: row.message.clone(),
        streak: u32::try_from(row.streak).unwrap_or(0),
        // Stored readings serve polled guards; `reports` is judged afresh when it counts.
        applied: None,
        comparison: row
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok()),
    }
}
