//! A lane's rollout plan on its card (UI.md "Rollout plans"): one row per step (done ✓, current
//! with a live countdown and what it waits for, upcoming), the guards as status lights with
//! text, and Pause / Resume / Advance now; plus the red banner when graycast aborted a lane.
//!
//! [`PlanLive`] is created once by the config page, outside its `<Transition>`. The plans load
//! with the page (awaited in its one `Suspend`), then follow the live feed: every instances
//! update asks again, and so does a timer every few seconds while a plan runs (guard readings
//! change without release events). When the lanes themselves changed (a step advanced, a plan
//! paused or ended), the page reloads its data, as after a person's own action. The countdown
//! ticks in the browser. No page reload, ever.

use crate::api::plan_fns::{plans_of_config, AdvancePlan, ConfigPlans, PausePlan, ResumePlan};
use crate::app::components::{Dialog, DialogBar};
use crate::app::pages::shared::Keys;
use crate::domain::compare::{significant, Comparison};
use crate::domain::plan::decide::{human_secs, PlanAction, PlanState};
use crate::domain::plan::guard::GuardStatus;
use crate::domain::plan::Step;
use crate::domain::time::Timestamp;
use crate::model::{ConfigPath, GuardReading, Lane, LaneId, LanePlan, LaneStatus, PlanSummary};
use crate::Error;
use leptos::prelude::*;
use leptos_router::components::A;
use std::collections::BTreeSet;

/// How often the plans are asked again while one runs.
const POLL_SECS: u64 = 2;
/// The actor of the scheduler's own moves (the server's `ops::plans::SCHEDULER`).
const SCHEDULER: &str = "graycast";
/// Where the dismissed "graycast aborted" banners are remembered (lane ids, JSON).
const DISMISSED_KEY: &str = "graycast.dismissed-aborts";
/// At most this many dismissals are remembered (the oldest are forgotten first).
const MAX_DISMISSED: usize = 200;

/// What changes a lane's card: when any of it differs, the page reloads its data.
type LaneSignature = Vec<(i64, LaneStatus, u64, Option<PlanState>, Option<usize>)>;

fn signature(lanes: &[Lane]) -> LaneSignature {
    lanes
        .iter()
        .map(|l| {
            (
                l.id,
                l.status,
                u64::from(l.percentage.bp()),
                l.plan.as_ref().map(|p| p.state),
                l.plan.as_ref().map(|p| p.step),
            )
        })
        .collect()
}

fn any_running(plans: &ConfigPlans) -> bool {
    plans
        .plans
        .iter()
        .any(|p| p.summary.state == PlanState::Running)
}

/// The plans of the config page, loaded and live.
#[derive(Clone, Copy)]
pub struct PlanLive {
    keys: Keys,
    /// Loaded with the page; the page awaits it.
    pub loaded: Resource<Result<ConfigPlans, Error>>,
    /// Asked again since (`None` right after the page reloaded).
    now: RwSignal<Option<ConfigPlans>>,
    /// Seconds since `now` (or the page's data) arrived: the countdowns subtract it.
    elapsed: RwSignal<u64>,
    pause: ServerAction<PausePlan>,
    resume: ServerAction<ResumePlan>,
    advance: ServerAction<AdvancePlan>,
    /// Lanes whose abort banner was dismissed; `None` until read from the browser's storage.
    dismissed: RwSignal<Option<BTreeSet<i64>>>,
}

impl PlanLive {
    /// `updates` counts the live instances feed's updates; `refresh` reloads the page's data.
    pub fn new(keys: Keys, refresh: RwSignal<u32>, updates: RwSignal<u32>) -> Self {
        let loaded = Resource::new(
            move || (keys.ns.get(), keys.env.get(), keys.key.get(), refresh.get()),
            |(ns, env, key, _)| plans_of_config(ConfigPath::new(ns, env, key)),
        );
        let now = RwSignal::new(None::<ConfigPlans>);
        let elapsed = RwSignal::new(0u64);
        let pause = ServerAction::<PausePlan>::new();
        let resume = ServerAction::<ResumePlan>::new();
        let advance = ServerAction::<AdvancePlan>::new();
        let dismissed = RwSignal::new(None);
        // The lanes as the page shows them; a fresher answer that differs reloads the page.
        let seen = StoredValue::new(None::<LaneSignature>);
        // Whether a plan of the page's data runs, for the timer (which must not read the
        // resource outside an effect: it may still be loading after a navigation).
        let loaded_running = StoredValue::new(false);
        Effect::new(move |_| {
            if let Some(Ok(plans)) = loaded.get() {
                seen.set_value(Some(signature(&plans.lanes)));
                loaded_running.set_value(any_running(&plans));
            }
        });
        let asked = StoredValue::new(0u64);
        let ask = ask_again(keys, refresh, now, elapsed, seen, asked);
        // A reload (after any action) shows the page's own fresh data; answers asked before it
        // are dropped.
        Effect::new(move |_| {
            refresh.track();
            asked.update_value(|n| *n += 1);
            now.set(None);
            elapsed.set(0);
        });
        Effect::new(move |_| {
            if updates.get() > 0 {
                ask();
            }
        });
        tick_while_open(now, elapsed, loaded_running, ask);
        Effect::new(move |_| dismissed.set(Some(read_dismissed())));
        Effect::new(move |_| {
            let done = [
                matches!(pause.value().get(), Some(Ok(_))),
                matches!(resume.value().get(), Some(Ok(_))),
                matches!(advance.value().get(), Some(Ok(_))),
            ];
            if done.contains(&true) {
                refresh.update(|n| *n += 1);
            }
        });
        PlanLive {
            keys,
            loaded,
            now,
            elapsed,
            pause,
            resume,
            advance,
            dismissed,
        }
    }
}

/// Asks for the plans again (in the browser): the answer goes to `now`; when its lanes differ
/// from those `seen`, the page reloads its data. Only the latest question's answer counts.
fn ask_again(
    keys: Keys,
    refresh: RwSignal<u32>,
    now: RwSignal<Option<ConfigPlans>>,
    elapsed: RwSignal<u64>,
    seen: StoredValue<Option<LaneSignature>>,
    asked: StoredValue<u64>,
) -> impl Fn() + Copy + Send + Sync + 'static {
    move || {
        let n = asked.get_value() + 1;
        asked.set_value(n);
        let path = keys.path();
        leptos::task::spawn_local(async move {
            let Ok(answer) = plans_of_config(path).await else {
                return;
            };
            if asked.try_get_value() != Some(n) {
                return;
            }
            let lanes = signature(&answer.lanes);
            let changed = seen.try_with_value(|s| s.as_ref() != Some(&lanes)) == Some(true);
            now.try_set(Some(answer));
            elapsed.try_set(0);
            if changed {
                seen.set_value(Some(lanes));
                refresh.try_update(|n| *n += 1);
            }
        });
    }
}

/// Every second the countdowns tick; every [`POLL_SECS`] while a plan runs, the plans are
/// asked again (guard readings change without release events).
fn tick_while_open(
    now: RwSignal<Option<ConfigPlans>>,
    elapsed: RwSignal<u64>,
    loaded_running: StoredValue<bool>,
    ask: impl Fn() + Copy + Send + Sync + 'static,
) {
    Effect::new(move |_| {
        let ticks = std::cell::Cell::new(0u64);
        let handle = set_interval_with_handle(
            move || {
                ticks.set(ticks.get() + 1);
                elapsed.update(|e| *e += 1);
                let running = now
                    .with_untracked(|n| n.as_ref().map(any_running))
                    .unwrap_or_else(|| loaded_running.get_value());
                if running && ticks.get().is_multiple_of(POLL_SECS) {
                    ask();
                }
            },
            std::time::Duration::from_secs(1),
        )
        .ok();
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    });
}

/// The errors of the plan controls, shown once at the top of the gray release panel.
#[component]
pub fn PlanControlErrors(live: PlanLive) -> impl IntoView {
    use crate::app::components::{action_error, ErrorLine};
    view! {
        <ErrorLine error=action_error(live.pause) />
        <ErrorLine error=action_error(live.resume) />
        <ErrorLine error=action_error(live.advance) />
    }
}

#[cfg(feature = "hydrate")]
fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

#[cfg(feature = "hydrate")]
fn read_dismissed() -> BTreeSet<i64> {
    storage()
        .and_then(|s| s.get_item(DISMISSED_KEY).ok()?)
        .and_then(|text| serde_json::from_str::<Vec<i64>>(&text).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

#[cfg(feature = "hydrate")]
fn remember_dismissed(lane: i64) {
    let mut list: Vec<i64> = read_dismissed()
        .into_iter()
        .filter(|l| *l != lane)
        .collect();
    list.push(lane);
    if list.len() > MAX_DISMISSED {
        list.drain(..list.len() - MAX_DISMISSED);
    }
    if let (Some(s), Ok(text)) = (storage(), serde_json::to_string(&list)) {
        let _ = s.set_item(DISMISSED_KEY, &text);
    }
}

#[cfg(not(feature = "hydrate"))]
fn read_dismissed() -> BTreeSet<i64> {
    let _ = (DISMISSED_KEY, MAX_DISMISSED);
    BTreeSet::new()
}

#[cfg(not(feature = "hydrate"))]
fn remember_dismissed(_: i64) {}

/// `2026-12-07 14:02 UTC`, as the banner says when: with the date, since it stays until
/// dismissed.
fn when(at: Timestamp) -> String {
    format!("{} UTC", at.minutes())
}

/// A lane graycast aborted, as its banner says it.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoAbort {
    pub lane: i64,
    pub version: i64,
    pub at: Timestamp,
    pub reason: String,
}

/// The lanes whose plan graycast itself aborted (not a person), newest lane first.
pub fn auto_aborts(plans: &ConfigPlans) -> Vec<AutoAbort> {
    plans
        .plans
        .iter()
        .filter(|p| p.summary.state == PlanState::Aborted)
        .filter_map(|p| {
            let last = p
                .history
                .iter()
                .rev()
                .find(|t| t.action == PlanAction::Abort)?;
            if last.actor != SCHEDULER {
                return None;
            }
            let version = plans.lanes.iter().find(|l| l.id == p.lane)?.version;
            Some(AutoAbort {
                lane: p.lane,
                version,
                at: last.at,
                reason: last
                    .reason
                    .clone()
                    .or_else(|| p.summary.reason.clone())
                    .unwrap_or_else(|| "a guard failed".into()),
            })
        })
        .collect()
}

/// The red banners at the top of the config page: one per lane graycast aborted, until
/// dismissed (remembered in this browser; a new abort is a new lane, so a new banner).
#[component]
pub fn AbortBanners(live: PlanLive, initial: ConfigPlans) -> impl IntoView {
    let PlanLive {
        keys,
        now,
        dismissed,
        ..
    } = live;
    let (ns, env, key) = (
        keys.ns.get_untracked(),
        keys.env.get_untracked(),
        keys.key.get_untracked(),
    );
    // The instances whose report for this key failed, also those back on stable since.
    let instances = format!(
        "/instances/{ns}/{env}?tab=failed&key={}",
        crate::domain::percent_encode(&key)
    );
    let audit =
        format!("/audit?namespace={ns}&env={env}&action=rollout.abort&actor=graycast&q={key}");
    let shown = move || {
        let Some(dismissed) = dismissed.get() else {
            return Vec::new();
        };
        let aborts = now.with(|n| n.as_ref().map(auto_aborts));
        aborts
            .unwrap_or_else(|| auto_aborts(&initial))
            .into_iter()
            .filter(|a| !dismissed.contains(&a.lane))
            .collect::<Vec<_>>()
    };
    view! {
        <div class="abort-banners" data-ready=move || dismissed.with(Option::is_some).to_string()>
            {move || shown().into_iter().map(|a| {
                let lane = a.lane;
                let (instances, audit) = (instances.clone(), audit.clone());
                view! {
                    <div class="banner danger" role="alert" data-testid="abort-banner" data-lane=lane>
                        <p>
                            <strong>{format!("✕ graycast aborted lane {lane} (v{}) at ", a.version)}<time datetime=a.at.to_string() title=a.at.to_string()>{when(a.at)}</time> ":"</strong>
                            " " {a.reason.clone()}
                        </p>
                        <p class="banner-links">
                            <A href=instances>"Failing instances"</A>
                            " · "
                            <A href=audit>"Audit entry"</A>
                            <button class="btn small" aria-label=format!("Dismiss the abort of lane {lane}")
                                on:click=move |_| {
                                    remember_dismissed(lane);
                                    dismissed.update(|d| { if let Some(d) = d { d.insert(lane); } });
                                }>"Dismiss"</button>
                        </p>
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

fn status_light(status: GuardStatus) -> (&'static str, &'static str) {
    match status {
        GuardStatus::Passing => ("ok", "✓ passing"),
        GuardStatus::NoData => ("nodata", "… no data"),
        GuardStatus::Failing => ("failing", "✕ failing"),
    }
}

/// The lane's plan: steps, guards, and the controls.
#[component]
pub fn PlanTimeline(
    lane: i64,
    live: PlanLive,
    /// The plan as the page loaded it.
    initial: Option<LanePlan>,
    can_release: bool,
) -> impl IntoView {
    let PlanLive { now, elapsed, .. } = live;
    // Plain data and page-level signals only: this view is rebuilt on every reload.
    let current = move || {
        now.with(|n| {
            n.as_ref()
                .and_then(|p| p.plans.iter().find(|p| p.lane == lane).cloned())
        })
        .or_else(|| initial.clone())
    };
    let steps_view = {
        let current = current.clone();
        move || match current() {
            Some(p) => plan_view(p, elapsed),
            None => view! { <p class="muted">"Loading the plan…"</p> }.into_any(),
        }
    };
    let confirm_force = ArcRwSignal::new(false);
    let button = {
        let current = current.clone();
        let confirm_force = confirm_force.clone();
        move |what: &'static str, label: &'static str| {
            view! {
                <PlanButton live lane what label current=current.clone() can_release confirm_force=confirm_force.clone() />
            }
        }
    };
    let next_step = move || {
        current().map(|p| match p.plan.steps.get(p.summary.step + 1) {
            Some(s) => format!("step {} ({})", p.summary.step + 2, s.percentage),
            None => "the end of the plan (its finish)".to_string(),
        })
    };
    let force_dialog = {
        let confirm_force = confirm_force.clone();
        move || {
            let close = confirm_force.clone();
            confirm_force.get().then(|| {
                let title = format!("Force lane {lane} to {}", next_step().unwrap_or_default());
                view! { <ForceAdvanceDialog live lane title close /> }
            })
        }
    };
    view! {
        <section class="plan-timeline" data-testid="plan-timeline" data-lane=lane aria-label=format!("Rollout plan of lane {lane}") aria-live="polite">
            <h3>"Rollout plan"</h3>
            {steps_view}
            <div class="plan-controls">
                {button("pause", "Pause")}
                {button("resume", "Resume")}
                {button("advance", "Advance now")}
                {button("force", "Force advance…")}
            </div>
            {force_dialog}
        </section>
    }
}

/// The plan's state line, its reason, its steps and its guards' lights.
fn plan_view(p: LanePlan, elapsed: RwSignal<u64>) -> AnyView {
    let s = &p.summary;
    let rows = p
        .plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| step_row(i, step, s, elapsed))
        .collect_view();
    let (state_class, state_line) = match s.state {
        PlanState::Running => ("badge blue running", "▶ running"),
        PlanState::Paused => ("badge grey", "⏸ paused"),
        PlanState::Completed => ("badge green", "✓ completed"),
        PlanState::Aborted => ("badge red", "✕ aborted"),
    };
    let state_line = state_line.to_string();
    let template = s.template.as_ref().map(|t| format!(" · from template {t}"));
    let reason = s
        .reason
        .clone()
        .filter(|_| s.state != PlanState::Running)
        .map(|r| view! { <p class="muted plan-reason">{r}</p> });
    let guards = p.guards.iter().map(guard_light).collect_view();
    let no_guards = p.plan.guards.is_empty().then(
        || view! { <li class="muted">"No guards: each step advances when its hold is over."</li> },
    );
    view! {
        <p class="plan-state">
            <span class=state_class>{state_line}</span>
            {format!(" step {} of {}{}", (s.step + 1).min(s.steps), s.steps, template.unwrap_or_default())}
        </p>
        {reason}
        <ol class="plan-steps timeline">{rows}</ol>
        <ul class="guard-lights" aria-label="Guards">{guards}{no_guards}</ul>
    }
    .into_any()
}

/// One step of the timeline: done, current (with its countdown and what it waits for),
/// paused, aborted or upcoming.
fn step_row(i: usize, step: &Step, s: &PlanSummary, elapsed: RwSignal<u64>) -> impl IntoView {
    let (class, mark) = match s.state {
        PlanState::Completed => ("done", "✓"),
        _ if i < s.step => ("done", "✓"),
        PlanState::Aborted if i == s.step => ("aborted", "✕"),
        PlanState::Paused if i == s.step => ("paused", "⏸"),
        PlanState::Running if i == s.step => ("current", "●"),
        _ => ("upcoming", "○"),
    };
    let head = format!(
        "{mark} step {} · {} · hold {}",
        i + 1,
        step.percentage,
        human_secs(u64::from(step.hold_secs))
    );
    let detail = (class == "current" || class == "paused").then(|| {
        let (remaining, waiting, paused) =
            (s.remaining_secs, s.waiting_for.clone(), class == "paused");
        view! {
            <span class="step-now" data-testid="step-now">
                {move || {
                    let left = remaining.saturating_sub(if paused { 0 } else { elapsed.get() });
                    let mut text = if paused {
                        format!(" — paused with {} of the hold left", human_secs(left))
                    } else if left > 0 {
                        format!(" — {} left", human_secs(left))
                    } else {
                        " — hold over".to_string()
                    };
                    if let Some(w) = waiting.as_ref().filter(|_| !paused) {
                        text.push_str(&format!("; {w}"));
                    }
                    text
                }}
            </span>
        }
    });
    view! {
        <li class=format!("plan-step {class}") data-step=i data-state=class>
            <span>{head}</span>
            {detail}
        </li>
    }
}

/// A guard's status light, with its value, when it was read and its message; a compare
/// guard's numbers on a line of their own.
fn guard_light(g: &GuardReading) -> impl IntoView {
    let (class, text) = status_light(g.status);
    let value = g
        .value
        .filter(|_| g.comparison.is_none())
        .map(|v| format!(" · value {v}"));
    let when = g
        .evaluated_at
        .as_ref()
        .map(|t| format!(" · evaluated {}", t.clock()))
        .unwrap_or_else(|| " · not evaluated yet".into());
    let numbers = g.comparison.as_ref().map(|c| {
        view! { <span class="compare-numbers" data-testid="compare-numbers">{comparison_numbers(c)}</span> }
    });
    view! {
        <li class=format!("guard-light {class}") data-guard=g.guard data-status=class>
            <span class="light">{text}</span>
            <span>{format!(" guard {} ({}){}{when}", g.guard + 1, g.kind, value.unwrap_or_default())}</span>
            <span class="muted">{format!(" — {}", g.message)}</span>
            {numbers}
        </li>
    }
}

/// A compare guard's numbers: `medians lane 0.0305 · stable 0.0101 · ratio 3.02× · worse by
/// 0.0204 · U 24 · p 0.0048 · 4 vs 6 instances`; what is missing (too few values) is left out.
fn comparison_numbers(c: &Comparison) -> String {
    let n = |x: f64| significant(x, 3);
    let mut parts = Vec::new();
    if let (Some(lane), Some(stable)) = (c.lane_median, c.baseline_median) {
        parts.push(format!("medians lane {} · stable {}", n(lane), n(stable)));
    }
    match c.ratio {
        Some(r) if r.is_infinite() => parts.push("ratio ∞".into()),
        Some(r) => parts.push(format!("ratio {}×", n(r))),
        None => {}
    }
    if let Some(d) = c.delta {
        parts.push(format!("worse by {}", n(d)));
    }
    if let Some(u) = c.u {
        parts.push(format!("U {}", n(u)));
    }
    if let Some(p) = c.p_value {
        parts.push(format!("p {}", significant(p, 2)));
    }
    parts.push(format!("{} vs {} instances", c.lane_n, c.baseline_n));
    parts.join(" · ")
}

/// Why a plan control is disabled now, or `None` when it may be used.
fn why_not(
    what: &'static str,
    can_release: bool,
    state: Option<PlanState>,
    guards_pass: bool,
) -> Option<String> {
    if !can_release {
        return Some("Controlling a plan needs the releaser role".into());
    }
    let state = state?;
    match (what, state) {
        ("pause", PlanState::Running) => None,
        ("pause", PlanState::Paused) => Some("The plan is already paused".into()),
        ("resume", PlanState::Paused) => None,
        ("resume", PlanState::Running) => Some("The plan is running".into()),
        ("advance", PlanState::Running | PlanState::Paused) if guards_pass => None,
        ("advance", PlanState::Running | PlanState::Paused) => {
            Some("A guard does not pass yet; use Force advance to skip the guards".into())
        }
        ("force", PlanState::Running | PlanState::Paused) => None,
        _ => Some(format!("The plan is {}", state.as_str())),
    }
}

/// Whether every guard of the plan has a reading and passes.
fn guards_pass(p: &LanePlan) -> bool {
    p.guards.len() == p.plan.guards.len()
        && p.guards.iter().all(|g| g.status == GuardStatus::Passing)
}

/// Pause, Resume, Advance now or Force advance… (which asks first): disabled, with the reason
/// as its title, when it does not apply.
#[component]
fn PlanButton<C>(
    live: PlanLive,
    lane: i64,
    /// `pause`, `resume`, `advance` or `force`.
    what: &'static str,
    label: &'static str,
    /// The lane's plan as shown now.
    current: C,
    can_release: bool,
    /// Opens the force dialog.
    confirm_force: ArcRwSignal<bool>,
) -> impl IntoView
where
    C: Fn() -> Option<LanePlan> + Clone + Send + Sync + 'static,
{
    let PlanLive {
        keys,
        pause,
        resume,
        advance,
        ..
    } = live;
    let busy = move || pause.pending().get() || resume.pending().get() || advance.pending().get();
    let reason = move || {
        let state = current().map(|p| p.summary.state);
        let pass = current().is_some_and(|p| guards_pass(&p));
        why_not(what, can_release, state, pass)
    };
    let reason2 = reason.clone();
    let reason3 = reason.clone();
    view! {
        <button type="button" class="btn" data-control=what
            disabled=move || reason().is_some() || busy()
            title=move || reason2().unwrap_or_default()
            aria-description=move || reason3().unwrap_or_default()
            on:click=move |_| match what {
                "pause" => { pause.dispatch(PausePlan { path: keys.path(), lane: LaneId(lane), message: None }); }
                "resume" => { resume.dispatch(ResumePlan { path: keys.path(), lane: LaneId(lane), message: None }); }
                "advance" => { advance.dispatch(AdvancePlan { path: keys.path(), lane: LaneId(lane), force: false, message: None }); }
                _ => confirm_force.set(true),
            }>{label}</button>
    }
}

/// Asks before forcing the plan on to its next step, whatever its hold and guards say.
#[component]
fn ForceAdvanceDialog(
    live: PlanLive,
    lane: i64,
    /// Names the lane and the step it is forced to.
    title: String,
    /// Open while true; the dialog sets it to false to close.
    close: ArcRwSignal<bool>,
) -> impl IntoView {
    let PlanLive { keys, advance, .. } = live;
    let close2 = close.clone();
    let close3 = close.clone();
    let message = ArcRwSignal::new(String::new());
    let message2 = message.clone();
    let message3 = message.clone();
    view! {
        <Dialog title on_close=move || close3.set(false)>
            <p>"This skips the rest of the hold and the guards, whatever they say. It is recorded in the audit trail as a forced advance."</p>
            <DialogBar slot>
                <label>"Message" <input name="force-message" placeholder="Why"
                    prop:value=move || message.get() on:input=move |ev| message3.set(event_target_value(&ev)) /></label>
                <div class="dialog-actions">
                    <button class="btn" on:click=move |_| close.set(false)>"Cancel"</button>
                    <span class="spacer"></span>
                    <button class="btn danger" on:click=move |_| {
                        let m = message2.get_untracked();
                        advance.dispatch(AdvancePlan { path: keys.path(), lane: LaneId(lane), force: true, message: (!m.trim().is_empty()).then_some(m) });
                        close2.set(false);
                    }>"Force advance"</button>
                </div>
            </DialogBar>
        </Dialog>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::Plan;
    use crate::model::{Percentage, PlanTransition};

    fn lane(id: i64, status: &str) -> Lane {
        serde_json::from_value(serde_json::json!({
            "id": id, "version": 13, "selector": "", "targets": [], "percentage": 10.0,
            "stickiness": "client_id", "salt": "s", "priority": 0, "status": status,
            "created_by": "alice", "created_at": "2026-12-02T14:00:00Z", "closed_at": null
        }))
        .unwrap()
    }

    fn plan(id: i64, state: PlanState, actor: &str) -> LanePlan {
        LanePlan {
            lane: id,
            plan: Plan {
                steps: vec![Step {
                    percentage: Percentage::parse(10.0).unwrap(),
                    hold_secs: 60,
                }],
                guards: vec![],
                on_failure: Default::default(),
                no_data: Default::default(),
                finish: Default::default(),
            },
            summary: PlanSummary {
                state,
                step: 0,
                steps: 1,
                percentage: Percentage::parse(10.0).unwrap(),
                step_started_at: "2026-12-02T14:00:00Z".parse().unwrap(),
                remaining_secs: 0,
                waiting_for: None,
                reason: Some("reports guard: 1 of 2 instances failed".into()),
                template: None,
            },
            guards: vec![],
            history: vec![PlanTransition {
                id: 1,
                at: "2026-12-02T14:02:11.123Z".parse().unwrap(),
                action: PlanAction::Abort,
                actor: actor.into(),
                from_step: Some(0),
                step: 0,
                state,
                percentage: Percentage::parse(10.0).unwrap(),
                reason: Some(
                    "reports guard: 1 of 2 instances failed to apply v13 (limit 0); pod-2".into(),
                ),
                release_event: Some(9),
                forced: false,
            }],
        }
    }

    #[test]
    fn only_graycast_aborts_make_a_banner() {
        let plans = ConfigPlans {
            lanes: vec![lane(7, "aborted"), lane(8, "aborted")],
            plans: vec![
                plan(7, PlanState::Aborted, "graycast"),
                plan(8, PlanState::Aborted, "alice"),
            ],
        };
        let aborts = auto_aborts(&plans);
        assert_eq!(aborts.len(), 1);
        assert_eq!(aborts[0].lane, 7);
        assert_eq!(aborts[0].version, 13);
        assert!(aborts[0].reason.contains("pod-2"));
        assert_eq!(when(aborts[0].at), "2026-12-02 14:02 UTC");
    }

    #[test]
    fn the_signature_changes_with_a_step_not_with_the_countdown() {
        let mut a = lane(7, "active");
        a.plan = Some(plan(7, PlanState::Running, "graycast").summary);
        let mut b = a.clone();
        b.plan.as_mut().unwrap().remaining_secs = 42;
        b.plan.as_mut().unwrap().waiting_for = Some("waiting for reports".into());
        assert_eq!(signature(&[a.clone()]), signature(&[b.clone()]));
        b.plan.as_mut().unwrap().step = 1;
        assert_ne!(signature(&[a]), signature(&[b]));
    }

    #[test]
    fn a_compare_guards_numbers_read_in_one_line() {
        let c = Comparison {
            lane_median: Some(0.0305),
            baseline_median: Some(0.0101),
            ratio: Some(3.0198),
            delta: Some(0.0204),
            u: Some(24.0),
            p_value: Some(1.0 / 210.0),
            lane_n: 4,
            baseline_n: 6,
            verdict: crate::domain::compare::Verdict::Failing,
        };
        assert_eq!(
            comparison_numbers(&c),
            "medians lane 0.0305 · stable 0.0101 · ratio 3.02× · worse by 0.0204 · U 24 · \
             p 0.0048 · 4 vs 6 instances"
        );
        let few = Comparison {
            ratio: Some(f64::INFINITY),
            u: None,
            p_value: None,
            lane_n: 2,
            ..c
        };
        assert_eq!(
            comparison_numbers(&few),
            "medians lane 0.0305 · stable 0.0101 · ratio ∞ · worse by 0.0204 · 2 vs 6 instances"
        );
    }
}
