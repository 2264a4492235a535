//! The polled guards' probes: each (plan, guard) is probed by a spawned task every
//! `interval_secs` (never more often than the server's `min_probe_interval_secs`), with a
//! deadline, one call at a time; the answer waits in its slot for the scheduler's next turn
//! (which it wakes). Answers from an earlier step are dropped. A probe holds one of the
//! server's places in flight ([`crate::server::probe::Prober::try_slot`]) while it runs; when
//! none is free it is skipped for that interval, which reads as no data.

use super::Scheduler;
use crate::domain::plan::baseline::{instances_regex, read_samples, CompareAnswer};
use crate::domain::plan::guard::{substitute, HookAnswer, Sample};
use crate::domain::plan::probe::PopulationAnswer;
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

/// What a query's `{{namespace}}`, `{{env}}`, `{{key}}`, `{{lane}}` and `{{version}}` stand for
/// (a lane not started yet has no id: its `{{lane}}` stays as written).
pub(crate) fn query_vars(
    (namespace, env, key): (&str, &str, &str),
    lane: Option<i64>,
    version: i64,
) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("namespace", namespace.to_string()),
        ("env", env.to_string()),
        ("key", key.to_string()),
        ("version", version.to_string()),
    ];
    if let Some(lane) = lane {
        vars.push(("lane", lane.to_string()));
    }
    vars
}

/// One probe of a polled guard, within its time limit; `None` for `reports`.
async fn probe_once(core: &Core, guard: &Guard, facts: &Facts) -> Option<Answer> {
    let vars = query_vars(
        (&facts.namespace, &facts.env, &facts.key),
        Some(facts.lane),
        facts.version,
    );
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
            let limit = compare_limit(g);
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

/// The longest one evaluation of a compare guard may take: its two queries, and a little.
pub(crate) fn compare_limit(guard: &CompareGuard) -> Duration {
    probe::compare_timeout(guard) * 2 + GRACE
}

/// The lane's population of a compare guard: its served set since `since` (the step's start),
/// as client ids, sorted.
pub(crate) async fn lane_population(
    core: &Core,
    config: (&str, &str, &str),
    version: i64,
    lane: i64,
    since: i64,
) -> crate::Result<Vec<String>> {
    let served = crate::server::db::plans::served_set(
        &core.db,
        config,
        version,
        lane,
        crate::server::clock::timestamp(since),
    )
    .await?;
    Ok(served.into_iter().map(|s| s.client_id).collect())
}

/// Stable's population of a compare guard: the connected instances served the stable release
/// of the key that `selector` matches (targets aside), not in `lane`; client ids, sorted.
pub(crate) async fn stable_population(
    core: &Core,
    (namespace, env, key): (&str, &str, &str),
    selector: &str,
    lane: &[String],
) -> crate::Result<Vec<String>> {
    let selector = crate::domain::selector::Selector::parse(selector).ok();
    let mut baseline: Vec<String> = core
        .instances
        .list(namespace, env)
        .await?
        .into_iter()
        .filter(|i| i.connected && !lane.contains(&i.client_id))
        .filter(|i| {
            i.configs
                .get(key)
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
    Ok(baseline)
}

/// The two populations of a running plan's compare guard: the lane's served set since its step
/// began, and stable's connected instances that the lane's selector matches.
async fn populations(core: &Core, facts: &Facts) -> crate::Result<(Vec<String>, Vec<String>)> {
    let config = (
        facts.namespace.as_str(),
        facts.env.as_str(),
        facts.key.as_str(),
    );
    let lane = lane_population(
        core,
        config,
        facts.version,
        facts.lane,
        facts.step_started_at,
    )
    .await?;
    let baseline = stable_population(core, config, &facts.selector, &lane).await?;
    Ok((lane, baseline))
}

/// Both populations' queries of a compare guard, at once, each with `{{instances}}` the regex
/// of its client ids, read as (client id, value) samples. An empty population is not queried:
/// it has no values.
pub(crate) async fn sample_populations(
    prober: &probe::Prober,
    guard: &CompareGuard,
    vars: &[(&str, &str)],
    lane: &[String],
    baseline: &[String],
) -> (PopulationAnswer, PopulationAnswer) {
    tokio::join!(
        sample_population(prober, guard, vars, lane),
        sample_population(prober, guard, vars, baseline)
    )
}

async fn sample_population(
    prober: &probe::Prober,
    guard: &CompareGuard,
    vars: &[(&str, &str)],
    ids: &[String],
) -> PopulationAnswer {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let regex = instances_regex(ids);
    let mut pairs = vars.to_vec();
    pairs.push(("instances", regex.as_str()));
    let query = substitute(&guard.query, &pairs);
    let body = probe::compare_query(prober, guard, &query).await?;
    read_samples(&body, &guard.label, ids)
}

/// One evaluation of a compare guard: its populations, then their samples.
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
    let values = |answer: PopulationAnswer, side: &str| {
        answer
            .map(|samples| samples.into_iter().map(|(_, x)| x).collect::<Vec<f64>>())
            .map_err(|why| format!("the {side} query: {why}"))
    };
    let (lane_answer, baseline_answer) =
        sample_populations(&core.prober, guard, vars, &lane, &baseline).await;
    match (
        values(lane_answer, "lane's"),
        values(baseline_answer, "stable instances'"),
    ) {
        (Ok(lane), Ok(baseline)) => CompareAnswer::Samples { lane, baseline },
        (Err(why), _) | (_, Err(why)) => CompareAnswer::Error(why),
    }
}
