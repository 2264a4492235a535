//! Reading a plan's guards: `reports` from the lane's served set as the instance registry
//! wrote it, polled guards from their probes' latest answers; every evaluation stored.
//!
//! Storing is bounded: a polled guard's evaluation is stored at every probe answer (at most one
//! per `interval_secs`, identical ones merged into one row by [`db::plans::record_evaluation`]);
//! a `reports` guard, judged at every turn, is stored when its status, value or message changes
//! and otherwise every [`REFRESH`], so a steady guard costs one row update per half minute.

use super::probes::Answer;
use crate::domain::plan::baseline::judge_compare;
use crate::domain::plan::guard::{judge_prometheus, judge_webhook, skipped, Reading};
use crate::domain::plan::{Guard, GuardKind, Plan};
use crate::server::db::{self, plans::LivePlan};
use crate::server::ops::readings::{not_evaluated, reading_of, reports};
use crate::server::Core;
use crate::Result;
use std::time::{Duration, Instant};

/// An unchanged `reports` reading is stored again after this long.
pub const REFRESH: Duration = Duration::from_secs(30);

/// A `reports` reading as last stored.
pub(super) struct Stored {
    reading: Reading,
    at: Instant,
}

/// A polled guard's reading from its probe's answer at `step`, if one came since the last turn.
fn answered(
    core: &Core,
    guard: &Guard,
    (lane, i, step): (i64, usize, usize),
    previous: &Reading,
) -> Option<Reading> {
    let answer = core.scheduler.take_answer(lane, i, step)?;
    let streak = previous.streak;
    Some(match (guard, answer) {
        (Guard::Prometheus(g), Answer::Sample(sample)) => judge_prometheus(g, streak, &sample),
        (Guard::Webhook(g), Answer::Hook(answer)) => judge_webhook(g, streak, &answer),
        (Guard::Compare(g), Answer::Compare(answer)) => judge_compare(g, streak, &answer),
        (guard, Answer::Skipped) => {
            let failures = match guard {
                Guard::Prometheus(g) => g.failures,
                Guard::Webhook(g) => g.failures,
                Guard::Compare(g) => g.failures,
                Guard::Reports(_) => return None,
            };
            skipped(guard.kind(), failures, streak, core.prober.max_in_flight())
        }
        _ => return None,
    })
}

/// Every guard of a running plan, evaluated for this turn, and stored as described above.
pub(super) async fn readings(core: &Core, live: &LivePlan, plan: &Plan) -> Result<Vec<Reading>> {
    let lane = live.row.lane_id;
    let step = live.row.step as usize;
    let rows = db::plans::guards(&core.db, lane).await?;
    let mut readings = Vec::with_capacity(plan.guards.len());
    let mut to_store: Vec<(usize, GuardKind, Reading)> = Vec::new();
    for (i, guard) in plan.guards.iter().enumerate() {
        let previous = match rows.get(i) {
            Some(row) => reading_of(row),
            None => not_evaluated(),
        };
        let mut store = |reading: Reading| {
            to_store.push((i, guard.kind(), reading.clone()));
            reading
        };
        let reading = match guard {
            Guard::Reports(g) => {
                let reading = reports(core, live, g).await?;
                let mut stored = core.scheduler.stored.lock().expect("stored lock");
                let due = match stored.get(&(lane, i)) {
                    Some(s) => s.reading != reading || s.at.elapsed() >= REFRESH,
                    None => {
                        reading != previous || rows.get(i).is_none_or(|r| r.evaluated_at.is_none())
                    }
                };
                if due {
                    stored.insert(
                        (lane, i),
                        Stored {
                            reading: reading.clone(),
                            at: Instant::now(),
                        },
                    );
                    store(reading)
                } else {
                    reading
                }
            }
            polled => match answered(core, polled, (lane, i, step), &previous) {
                Some(reading) => store(reading),
                None => previous,
            },
        };
        readings.push(reading);
    }
    if !to_store.is_empty() {
        let at = core.clock.now();
        let mut tx = db::begin_write(&core.db).await?;
        for (guard, kind, reading) in &to_store {
            let details = reading
                .comparison
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok());
            db::plans::record_evaluation(
                &mut tx,
                &db::plans::Evaluation {
                    lane_id: lane,
                    step,
                    guard: *guard,
                    kind: *kind,
                    status: reading.status,
                    value: reading.value,
                    message: &reading.message,
                    streak: reading.streak,
                    at,
                    details: details.as_deref(),
                },
            )
            .await?;
        }
        tx.commit().await?;
        for (guard, kind, reading) in &to_store {
            core.metrics
                .guard_evaluated(kind.as_str(), reading.status.as_str());
            if let Some(c) = &reading.comparison {
                core.metrics.compared(lane, *guard, c);
            }
        }
    }
    Ok(readings)
}
