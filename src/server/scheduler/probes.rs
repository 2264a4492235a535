//! The polled guards' probes: each (plan, guard) is probed by a spawned task every
//! `interval_secs` (never more often than the server's `min_probe_interval_secs`), with a
//! deadline, one call at a time; the answer waits in its slot for the scheduler's next turn
//! (which it wakes). Answers from an earlier step are dropped. A probe holds one of the
//! server's places in flight ([`crate::server::probe::Prober::try_slot`]) while it runs; when
//! none is free it is skipped for that interval, which reads as no data.

use super::Scheduler;
use crate::domain::plan::baseline::{instances_regex, read_samples, CompareAnswer};
use crate::domain::plan::guard::{substitute, HookAnswer, Sample};
use crate::domain::plan::{CompareGuard, Guard, Plan};
use crate::server::db::plans::LivePlan;
use crate::server::{probe, Core};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Beyond its own timeout, a probe gets this long before its task gives up on it.
const GRACE: Duration = Duration::from_secs(1);

pub(super) enum Answer {
    Sample(Sample),
    Hook(HookAnswer),
    Compare(CompareAnswer),
    /// Not probed: every place in flight was taken.
    Skipped,
}

struct Slot {
    step: usize,
    due: Instant,
    running: bool,
    answer: Option<Answer>,
}

#[derive(Default)]
pub(super) struct Slots(HashMap<(i64, usize), Slot>);

impl Slots {
    pub(super) fn forget(&mut self, lane: i64) {
        self.0.retain(|(l, _), _| *l != lane);
    }

    /// Drops the slots of plans that are not running (paused, ended).
    pub(super) fn keep_only(&mut self, running: &[i64]) {
        self.0.retain(|(l, _), _| running.contains(l));
    }
}

impl Scheduler {
    /// The latest answer of guard `guard` of `lane`'s plan, if one came at `step` since the
    /// last turn.
    pub(super) fn take_answer(&self, lane: i64, guard: usize, step: usize) -> Option<Answer> {
        let mut slots = self.probes.lock().expect("probes lock");
        let slot = slots.0.get_mut(&(lane, guard))?;
        if slot.step != step {
            return None;
        }
        slot.answer.take()
    }
}

/// Starts the probes of `live`'s polled guards that are due and not already running.
pub(super) fn start_due(core: &Arc<Core>, live: &LivePlan, plan: &Plan) {
    let lane = live.row.lane_id;
    let step = live.row.step as usize;
    let now = Instant::now();
    let min_interval = core.config.min_probe_interval_secs;
    for (i, guard) in plan.guards.iter().enumerate() {
        let Some(interval) = guard.interval_secs() else {
            continue;
        };
        let interval = interval.max(min_interval);
        let place = {
            let mut slots = core.scheduler.probes.lock().expect("probes lock");
            let slot = slots.0.entry((lane, i)).or_insert(Slot {
                step,
                due: now,
                running: false,
                answer: None,
            });
            if slot.step != step {
                *slot = Slot {
                    step,
                    due: now,
                    running: false,
                    answer: None,
                };
            }
            if slot.running || slot.due > now {
                continue;
            }
            slot.due = now + Duration::from_secs(u64::from(interval));
            match core.prober.try_slot() {
                Some(place) => {
                    slot.running = true;
                    place
                }
                None => {
                    slot.answer = Some(Answer::Skipped);
                    continue;
                }
            }
        };
        let facts = Facts {
            namespace: live.namespace.clone(),
            env: live.env.clone(),
            key: live.key.clone(),
            version: live.version,
            lane,
            step,
            percentage: live.percentage,
            step_started_at: live.row.step_started_at,
            selector: live.selector.clone(),
        };
        let core = core.clone();
        let scheduler = core.scheduler.clone();
        let guard = guard.clone();
        tokio::spawn(async move {
            let Some(answer) = probe_once(&core, &guard, &facts).await else {
                return;
            };
            // The request (and its connection) is gone: the place is free for another probe.
            drop(place);
            {
                let mut slots = scheduler.probes.lock().expect("probes lock");
                match slots.0.get_mut(&(lane, i)) {
                    Some(slot) if slot.step == step => {
                        slot.running = false;
                        slot.answer = Some(answer);
                    }
                    // The plan moved on (or ended) while the probe ran.
                    _ => return,
                }
            }
            scheduler.wake();
        });
    }
}

/// What a probe needs of its plan: the facts its query or call names, and what a compare
/// guard's populations are drawn from.
struct Facts {
    namespace: String,
    env: String,
    key: String,
    version: i64,
    lane: i64,
    step: usize,
    percentage: crate::model::Percentage,
    step_started_at: i64,
    selector: String,
}

/// One probe of a polled guard, within its time limit; `None` for `reports`.
async fn probe_once(core: &Core, guard: &Guard, facts: &Facts) -> Option<Answer> {
    let vars = [
        ("namespace", facts.namespace.clone()),
        ("env", facts.env.clone()),
        ("key", facts.key.clone()),
        ("lane", facts.lane.to_string()),
        ("version", facts.version.to_string()),
    ];
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let prober = &core.prober;
    Some(match guard {
        Guard::Prometheus(g) => {
            let query = substitute(&g.query, &pairs);
            let limit = probe::prometheus_timeout(g) + GRACE;
            Answer::Sample(
                tokio::time::timeout(limit, probe::prometheus(prober, g, &query))
                    .await
                    .unwrap_or_else(|_| Sample::Error("Prometheus did not answer in time".into())),
            )
        }
        Guard::Webhook(g) => {
            let body = json!({
                "namespace": facts.namespace, "env": facts.env, "key": facts.key,
                "lane": facts.lane, "version": facts.version, "step": facts.step,
                "percentage": facts.percentage,
            });
            let limit = Duration::from_secs(u64::from(g.timeout_secs)) + GRACE;
            Answer::Hook(
                tokio::time::timeout(limit, probe::webhook(prober, g, &body))
                    .await
                    .unwrap_or(HookAnswer::TimedOut),
            )
        }
        Guard::Compare(g) => {
            // Two queries, one after the other at worst.
            let limit = probe::compare_timeout(g) * 2 + GRACE;
            Answer::Compare(
                tokio::time::timeout(limit, compare(core, g, facts, &pairs))
                    .await
                    .unwrap_or_else(|_| {
                        CompareAnswer::Error("Prometheus did not answer in time".into())
                    }),
            )
        }
        Guard::Reports(_) => return None,
    })
}

/// The two populations of a compare guard: the lane's served set since its step began, and
/// stable's connected instances that the lane's selector matches (client ids, sorted).
async fn populations(core: &Core, facts: &Facts) -> crate::Result<(Vec<String>, Vec<String>)> {
    let served = crate::server::db::plans::served_set(
        &core.db,
        (&facts.namespace, &facts.env, &facts.key),
        facts.version,
        facts.lane,
        crate::server::clock::timestamp(facts.step_started_at),
    )
    .await?;
    let lane: Vec<String> = served.into_iter().map(|s| s.client_id).collect();
    let selector = crate::domain::selector::Selector::parse(&facts.selector).ok();
    let mut baseline: Vec<String> = core
        .instances
        .list(&facts.namespace, &facts.env)
        .await?
        .into_iter()
        .filter(|i| i.connected && !lane.contains(&i.client_id))
        .filter(|i| {
            i.configs
                .get(&facts.key)
                .is_some_and(|c| c.served.is_some() && c.lane.is_none())
        })
        .filter(|i| {
            let mut context = i.labels.clone();
            context.insert("client_id".into(), i.client_id.clone());
            selector.as_ref().is_none_or(|s| s.matches(&context))
        })
        .map(|i| i.client_id)
        .collect();
    baseline.sort();
    Ok((lane, baseline))
}

/// One evaluation of a compare guard: both populations' queries, each with `{{instances}}` the
/// regex of its client ids. A population too small to judge is not queried.
async fn compare(
    core: &Core,
    guard: &CompareGuard,
    facts: &Facts,
    vars: &[(&str, &str)],
) -> CompareAnswer {
    let (lane, baseline) = match populations(core, facts).await {
        Ok(both) => both,
        Err(e) => {
            return CompareAnswer::Error(format!(
                "the populations could not be read: {}",
                e.message
            ))
        }
    };
    let query_of = |ids: &[String]| {
        let regex = instances_regex(ids);
        let mut pairs = vars.to_vec();
        pairs.push(("instances", regex.as_str()));
        substitute(&guard.query, &pairs)
    };
    let (lane_query, baseline_query) = (query_of(&lane), query_of(&baseline));
    // An empty population is not asked about: it has no values.
    let ask = |ids: &[String], query: String| {
        let empty = ids.is_empty();
        async move {
            if empty {
                Ok(None)
            } else {
                probe::compare_query(&core.prober, guard, &query)
                    .await
                    .map(Some)
            }
        }
    };
    let (lane_body, baseline_body) =
        tokio::join!(ask(&lane, lane_query), ask(&baseline, baseline_query));
    let read = |body: Result<Option<serde_json::Value>, String>, ids: &[String], side: &str| {
        body.and_then(|b| match b {
            Some(b) => read_samples(&b, &guard.label, ids),
            None => Ok(Vec::new()),
        })
        .map_err(|why| format!("the {side} query: {why}"))
    };
    match (
        read(lane_body, &lane, "lane's"),
        read(baseline_body, &baseline, "stable instances'"),
    ) {
        (Ok(lane), Ok(baseline)) => CompareAnswer::Samples { lane, baseline },
        (Err(why), _) | (_, Err(why)) => CompareAnswer::Error(why),
    }
}
