//! The gray release panel: active lanes with weight, promote and abort; a new
//! lane with a selector that validates as you type, a weight slider and a live
//! blast-radius preview; and "test a context" with the reasons per lane.
//!
//! Everything that outlives a reload of the config page (resources, actions,
//! the unsaved lane, the context under test) lives in [`LanePanelState`], created
//! once by the page outside its `<Transition>`. The views below are rebuilt on
//! every reload; they only read and write that state. The lane list is awaited
//! by the page together with the config: a `Suspend` nested in the rebuilt view
//! could finish after its owner was disposed and build views in a dead scope.

use crate::api::configs::{
    list_lanes, preview_lane, preview_lane_change, AbortLane, ExplainResolve, PromoteLane,
    UpdateLane,
};
use crate::api::plan_fns::{ConfigPlans, StartLane};
use crate::app::components::{action_error, Dialog, DialogBar, ErrorLine};
use crate::app::pages::plan_editor::{follow_reach, PlanDraft, PlanEditor};
use crate::app::pages::plan_rows::Reach;
use crate::app::pages::plan_timeline::{PlanControlErrors, PlanLive, PlanTimeline};
use crate::app::pages::shared::{format_pct, Keys};
use crate::domain::lane::parse_labels;
use crate::domain::percentage::Percentage;
use crate::domain::plan::decide::PlanState;
use crate::domain::selector::Selector;
use crate::model::{
    ConfigPath, Lane, LaneId, LanePlan, LaneStatus, LaneUpdate, NewLane, Preview, VersionSummary,
};
use crate::Error;
use leptos::prelude::*;
use leptos_router::components::A;

/// `GRAY v13 · 10% · region=beijing` (violet).
#[component]
pub fn LaneBadge(lane: Lane) -> impl IntoView {
    // No empty text node: it would not survive hydration.
    let selector = (!lane.selector.is_empty()).then(|| format!(" · {}", lane.selector));
    view! {
        <span class="badge violet" title="A gray lane">
            "◐ GRAY v" {lane.version} " · " {format_pct(lane.percentage.as_f64())} "%" {selector}
        </span>
    }
}

/// The state of the gray release panel, owned by the config page.
#[derive(Clone, Copy)]
pub struct LanePanelState {
    keys: Keys,
    pub lanes: Resource<Result<Vec<Lane>, Error>>,
    create: ServerAction<StartLane>,
    /// The rollout plan of the lane being drafted, and what its rule reaches at 100 %.
    plan: PlanDraft,
    eligible: RwSignal<Option<Reach>>,
    /// The plans of the config's lanes, live.
    pub plans: PlanLive,
    update: ServerAction<UpdateLane>,
    promote: ServerAction<PromoteLane>,
    abort: ServerAction<AbortLane>,
    /// The lane being drafted, as typed.
    form: LaneForm,
    parsed: Memo<Result<Selector, crate::domain::selector::SelectorError>>,
    pct_error: Memo<Option<String>>,
    draft: Memo<Option<NewLane>>,
    preview: RwSignal<Option<Preview>>,
    // An active lane's weight being moved (lane id, weight) and what it would match.
    adjust: RwSignal<Option<(i64, f64)>>,
    adjust_preview: RwSignal<Option<(i64, f64, Preview)>>,
    context: ContextTest,
}

/// The fields of the lane being drafted. `version` is None until the user picks one: the
/// newest version is meant, which the page fills in once it knows it.
#[derive(Clone, Copy)]
struct LaneForm {
    version: RwSignal<Option<i64>>,
    newest: RwSignal<Option<i64>>,
    selector: RwSignal<String>,
    targets: RwSignal<String>,
    stickiness: RwSignal<String>,
    other_key: RwSignal<String>,
    weight: RwSignal<f64>,
}

impl LaneForm {
    fn new() -> Self {
        LaneForm {
            version: RwSignal::new(None),
            newest: RwSignal::new(None),
            selector: RwSignal::new(String::new()),
            targets: RwSignal::new(String::new()),
            stickiness: RwSignal::new("client_id".to_string()),
            other_key: RwSignal::new(String::new()),
            weight: RwSignal::new(10.0),
        }
    }

    /// The stickiness key: a chosen one, or the other key typed.
    fn stickiness_key(&self) -> String {
        if self.stickiness.get() == "other" {
            self.other_key.get()
        } else {
            self.stickiness.get()
        }
    }

    /// The lane as typed, once a version is known. With a plan, the lane starts at its first
    /// step.
    fn lane(&self, plan: &PlanDraft) -> Option<NewLane> {
        Some(NewLane {
            version: self.version.get().or(self.newest.get())?,
            selector: Some(self.selector.get()).filter(|s| !s.trim().is_empty()),
            targets: Some(
                self.targets
                    .get()
                    .lines()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            percentage: match plan.request() {
                Some(Ok(r)) => r.steps.first().map_or(self.weight.get(), |s| s.0),
                _ => self.weight.get(),
            },
            stickiness: Some(self.stickiness_key()),
            priority: None,
            message: None,
            plan: None,
            template: None,
        })
    }

    /// The lane exists now: the next draft starts afresh.
    fn clear(&self) {
        self.selector.set(String::new());
        self.targets.set(String::new());
        self.version.set(None);
    }
}

/// "Test a context": the context typed, and the server's answer.
#[derive(Clone, Copy)]
struct ContextTest {
    explain: ServerAction<ExplainResolve>,
    client_id: RwSignal<String>,
    user_id: RwSignal<String>,
    labels: RwSignal<String>,
    with_draft: RwSignal<bool>,
    open: RwSignal<bool>,
}

impl ContextTest {
    fn new() -> Self {
        ContextTest {
            explain: ServerAction::new(),
            client_id: RwSignal::new(String::new()),
            user_id: RwSignal::new(String::new()),
            labels: RwSignal::new(String::new()),
            with_draft: RwSignal::new(false),
            open: RwSignal::new(false),
        }
    }
}

impl LanePanelState {
    /// `connected` changes when instances connect or disconnect: the
    /// previews, which count and list the connected instances a lane would
    /// reach, are asked again then.
    pub fn new(
        keys: Keys,
        refresh: RwSignal<u32>,
        connected: Memo<Option<u64>>,
        plans: PlanLive,
    ) -> Self {
        let lanes = Resource::new(
            move || (keys.ns.get(), keys.env.get(), keys.key.get(), refresh.get()),
            |(ns, env, key, _)| list_lanes(ConfigPath::new(ns, env, key)),
        );
        let create = ServerAction::<StartLane>::new();
        let plan = PlanDraft::new(keys);
        let update = ServerAction::<UpdateLane>::new();
        let promote = ServerAction::<PromoteLane>::new();
        let abort = ServerAction::<AbortLane>::new();
        let form = LaneForm::new();
        let parsed = Memo::new(move |_| Selector::parse_input(&form.selector.get()));
        let pct_error = Memo::new(move |_| Percentage::parse(form.weight.get()).err());
        let draft = Memo::new(move |_| form.lane(&plan));
        let preview = follow_preview(keys, connected, parsed, pct_error, draft);
        let valid_rule = Memo::new(move |_| {
            let valid = parsed.with(|p| p.is_ok());
            draft.get().filter(|_| valid && plan.active())
        });
        let eligible = follow_reach(move || keys.path(), valid_rule, connected);
        let adjust = RwSignal::new(None::<(i64, f64)>);
        let adjust_preview = follow_weight_change(keys, connected, adjust);
        Effect::new(move |_| {
            // Read all three (no short circuit) so each one is tracked.
            let done = [
                matches!(update.value().get(), Some(Ok(_))),
                matches!(promote.value().get(), Some(Ok(_))),
                matches!(abort.value().get(), Some(Ok(_))),
            ];
            if done.contains(&true) {
                adjust.set(None);
                refresh.update(|n| *n += 1);
            }
        });
        Effect::new(move |_| {
            if matches!(create.value().get(), Some(Ok(_))) {
                form.clear();
                plan.reset();
                refresh.update(|n| *n += 1);
            }
        });
        LanePanelState {
            keys,
            lanes,
            create,
            plan,
            eligible,
            plans,
            update,
            promote,
            abort,
            form,
            parsed,
            pct_error,
            draft,
            preview,
            adjust,
            adjust_preview,
            context: ContextTest::new(),
        }
    }
}

/// The blast-radius preview of the lane being drafted: it follows the rule and the weight as
/// they change, but only while they are valid. Fetched by effects, so only in the browser,
/// into plain signals: nothing to stream from the server or to match during hydration; a late
/// answer never overwrites a newer one.
fn follow_preview(
    keys: Keys,
    connected: Memo<Option<u64>>,
    parsed: Memo<Result<Selector, crate::domain::selector::SelectorError>>,
    pct_error: Memo<Option<String>>,
    draft: Memo<Option<NewLane>>,
) -> RwSignal<Option<Preview>> {
    let preview = RwSignal::new(None::<Preview>);
    let preview_asked = StoredValue::new(0u64);
    Effect::new(move |_| {
        connected.track();
        let valid = parsed.with(|p| p.is_ok()) && pct_error.with(|e| e.is_none());
        let lane = draft.get().filter(|_| valid);
        let asked = preview_asked.get_value() + 1;
        preview_asked.set_value(asked);
        let Some(lane) = lane else {
            preview.set(None);
            return;
        };
        leptos::task::spawn_local(async move {
            let answer = preview_lane(keys.path(), lane).await.ok();
            if preview_asked.try_get_value() == Some(asked) {
                preview.try_set(answer);
            }
        });
    });
    preview
}

/// An active lane's weight being moved (lane id, weight), and what the lane would match at
/// that weight, asked in the browser like the draft's preview.
fn follow_weight_change(
    keys: Keys,
    connected: Memo<Option<u64>>,
    adjust: RwSignal<Option<(i64, f64)>>,
) -> RwSignal<Option<(i64, f64, Preview)>> {
    let adjust_preview = RwSignal::new(None::<(i64, f64, Preview)>);
    let adjust_asked = StoredValue::new(0u64);
    Effect::new(move |_| {
        connected.track();
        let moving = adjust.get().filter(|(_, w)| Percentage::parse(*w).is_ok());
        let asked = adjust_asked.get_value() + 1;
        adjust_asked.set_value(asked);
        let Some((id, weight)) = moving else {
            adjust_preview.set(None);
            return;
        };
        let change = LaneUpdate {
            percentage: Some(weight),
            ..Default::default()
        };
        leptos::task::spawn_local(async move {
            let answer = preview_lane_change(keys.path(), LaneId(id), change)
                .await
                .ok()
                .map(|p| (id, weight, p));
            if adjust_asked.try_get_value() == Some(asked) {
                adjust_preview.try_set(answer);
            }
        });
    });
    adjust_preview
}

#[component]
pub fn LanePanel(
    state: LanePanelState,
    /// The stable version when the page loaded.
    stable: Option<i64>,
    versions: StoredValue<Vec<VersionSummary>>,
    /// The config's lanes, loaded with the page.
    lanes: Result<Vec<Lane>, Error>,
    /// The plans of the lanes, loaded with the page.
    plans: Option<ConfigPlans>,
    can_release: bool,
) -> impl IntoView {
    let plan_of = move |id: i64| {
        plans
            .as_ref()
            .and_then(|p| p.plans.iter().find(|p| p.lane == id).cloned())
    };
    let newest = versions.with_value(|v| v.first().map(|v| v.version));
    // Client side only: the server renders the panel without a preview.
    Effect::new(move |_| state.form.newest.set(newest));
    view! {
        <section class="card gray-panel" aria-labelledby="gray-title">
            <h2 id="gray-title">"Gray release"</h2>
            <ErrorLine error=action_error(state.update) />
            <ErrorLine error=action_error(state.promote) />
            <ErrorLine error=action_error(state.abort) />
            <PlanControlErrors live=state.plans />
            {match lanes {
                Ok(list) => {
                    let active: Vec<Lane> = list.iter().filter(|l| l.status == LaneStatus::Active).cloned().collect();
                    let closed: Vec<Lane> = list.into_iter().filter(|l| l.status != LaneStatus::Active).collect();
                    view! {
                        {if active.is_empty() {
                            view! { <p class="muted">"No active gray lane: every subscriber gets the stable release."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="lanes" data-testid="active-lanes">
                                    {active.into_iter().map(|lane| {
                                        let plan = plan_of(lane.id);
                                        view! { <ActiveLane lane state stable can_release plan /> }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                        {(!closed.is_empty()).then(|| view! { <ClosedLanes closed /> })}
                    }.into_any()
                }
                Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
            }}
            {can_release.then(|| view! { <NewLaneForm state versions /> })}
            <TestContext state />
        </section>
    }
}

#[component]
fn ClosedLanes(closed: Vec<Lane>) -> impl IntoView {
    view! {
        <details class="closed-lanes">
            <summary>{format!("{} closed lane(s)", closed.len())}</summary>
            <ul>
                {closed.into_iter().map(|l| {
                    let aborted = l.status == LaneStatus::Aborted;
                    let rule = if l.selector.is_empty() { "every instance".to_string() } else { l.selector.clone() };
                    view! {
                        <li data-lane=l.id>
                            <span class=if aborted { "badge red" } else { "badge grey superseded" }>
                                {if aborted { "✕ aborted" } else { "promoted" }}
                            </span>
                            {format!(" lane {} · v{} · {}% · {rule}", l.id, l.version, format_pct(l.percentage.as_f64()))}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </details>
    }
}

#[component]
fn ActiveLane(
    lane: Lane,
    state: LanePanelState,
    stable: Option<i64>,
    can_release: bool,
    /// The lane's rollout plan as the page loaded it.
    plan: Option<LanePlan>,
) -> impl IntoView {
    let has_plan = lane.plan.is_some();
    let plan_running = lane
        .plan
        .as_ref()
        .is_some_and(|p| p.state == PlanState::Running);
    let LanePanelState { keys, plans, .. } = state;
    let id = lane.id;
    let saved = lane.percentage.as_f64();
    // Reference-counted, not owned by this view's scope: this view is rebuilt
    // when the page reloads, and its closures may still run once in between.
    let weight = ArcRwSignal::new(saved);
    // Tell the panel which weight to preview; back at the saved weight, nothing.
    Effect::new({
        let weight = weight.clone();
        move |prev: Option<f64>| {
            let w = weight.get();
            if prev.is_some_and(|p| p != w) {
                state
                    .adjust
                    .set(((w - saved).abs() > 1e-9).then_some((id, w)));
            }
            w
        }
    });
    let confirm: RwSignal<Option<&'static str>> = RwSignal::new(None);
    let compare = stable.map(|s| {
        format!(
            "/ns/{}/{}/{}/diff?from={s}&to={}",
            keys.ns(),
            keys.env(),
            keys.key(),
            lane.version
        )
    });
    let details = lane_details(&lane);
    let version = lane.version;
    view! {
        <li class="lane" data-lane=id>
            <div class="lane-head">
                <LaneBadge lane=lane.clone() />
                <span class="muted">{details}</span>
                {compare.map(|href| view! { <A href=href>"Diff against stable"</A> })}
            </div>
            {has_plan.then(|| view! { <PlanTimeline lane=id live=plans initial=plan can_release /> })}
            <Show when=move || can_release>
                <LaneControls state id saved weight=weight.clone() confirm plan_running />
            </Show>
            {move || confirm.get().map(|what| view! { <CloseLaneDialog state stable id version what confirm /> })}
        </li>
    }
}

/// `lane 3 · priority 0 · sticky on client_id · 2 target(s)`.
fn lane_details(lane: &Lane) -> String {
    let targets = lane.targets.len();
    format!(
        "lane {} · priority {} · sticky on {}{}",
        lane.id,
        lane.priority,
        lane.stickiness,
        if targets > 0 {
            format!(" · {targets} target(s)")
        } else {
            String::new()
        }
    )
}

/// An active lane's weight, applied by hand, what it would match, and the buttons that open
/// the promote and abort dialogs.
#[component]
fn LaneControls(
    state: LanePanelState,
    /// The lane.
    id: i64,
    /// The lane's weight as saved.
    saved: f64,
    /// The weight being moved (see ActiveLane).
    weight: ArcRwSignal<f64>,
    /// Which dialog is open: `"promote"` or `"abort"`.
    confirm: RwSignal<Option<&'static str>>,
    /// Whether the lane's plan runs (applying a weight by hand pauses it).
    plan_running: bool,
) -> impl IntoView {
    let LanePanelState {
        keys,
        update,
        adjust_preview,
        ..
    } = state;
    let moving = {
        let weight = weight.clone();
        move || {
            adjust_preview
                .get()
                .filter(|(lane, w, _)| *lane == id && (*w - weight.get()).abs() < 1e-9)
                .map(|(_, _, p)| p)
        }
    };
    let reach = {
        let moving = moving.clone();
        move || moving().map(|p| (p.matched_count, p.connected_count))
    };
    let unchanged = {
        let weight = weight.clone();
        move || (weight.get() - saved).abs() < 1e-9
    };
    let apply = {
        let weight = weight.clone();
        move |_| {
            update.dispatch(UpdateLane {
                path: keys.path(),
                lane: LaneId(id),
                change: LaneUpdate {
                    percentage: Some(weight.get_untracked()),
                    ..Default::default()
                },
            });
        }
    };
    let preview_line = {
        let weight = weight.clone();
        move || {
            moving().map(|p| {
                format!(
                    "At {}%: matches {} of {} connected instances{}",
                    format_pct(weight.get()),
                    p.matched_count,
                    p.connected_count,
                    if p.matched.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", p.matched.join(", "))
                    },
                )
            })
        }
    };
    view! {
        <div class="lane-controls">
            <WeightControl weight=weight.clone() label=format!("Weight of lane {id}") reach=reach.clone() />
            <button class="btn" disabled={ let unchanged = unchanged.clone(); move || unchanged() || update.pending().get() }
                title={ let unchanged = unchanged.clone(); move || if unchanged() { "Move the weight first" } else { "" } }
                on:click=apply.clone()>"Apply weight"</button>
            <span class="spacer"></span>
            <button class="btn primary" on:click=move |_| confirm.set(Some("promote"))>"Promote…"</button>
            <button class="btn danger" on:click=move |_| confirm.set(Some("abort"))>"Abort…"</button>
        </div>
        <p class="preview muted" aria-live="polite">{preview_line.clone()}</p>
        {plan_running.then(|| view! { <p class="hint">"Applying a weight by hand pauses the rollout plan: a person took over."</p> })}
    }
}

/// Promote or abort a lane, after a message and (in prod) the environment's name typed.
#[component]
fn CloseLaneDialog(
    state: LanePanelState,
    stable: Option<i64>,
    /// The lane and its version.
    id: i64,
    version: i64,
    /// `"promote"` or `"abort"`.
    what: &'static str,
    /// Which dialog is open; closing sets it to `None`.
    confirm: RwSignal<Option<&'static str>>,
) -> impl IntoView {
    let LanePanelState {
        keys,
        promote,
        abort,
        ..
    } = state;
    let env = keys.env();
    let needs_typing = env == "prod";
    let typed = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let env_check = StoredValue::new(env.clone());
    let ok = move || !needs_typing || env_check.with_value(|e| typed.with(|t| t == e));
    let (title, effect) = if what == "promote" {
        (
            format!("Promote lane {id}: v{version} becomes the stable release of {env}"),
            "Every subscriber receives this version; the lane closes.".to_string(),
        )
    } else {
        (
            format!("Abort lane {id} in {env}"),
            "Its subscribers fall back to the stable release immediately; the lane closes."
                .to_string(),
        )
    };
    view! {
        <Dialog title on_close=move || confirm.set(None)>
            <p>{effect}</p>
            <LaneDiff keys stable version what />
            <DialogBar slot>
                <label>"Message" <input name="lane-message" bind:value=message /></label>
                {needs_typing.then(|| view! { <label><span>"Type " <code>{env.clone()}</code> " to confirm"</span> <input name="confirm-env" bind:value=typed /></label> })}
                <div class="dialog-actions">
                    <button class="btn" on:click=move |_| confirm.set(None)>"Cancel"</button>
                    <span class="spacer"></span>
                    <button class=if what == "promote" { "btn primary" } else { "btn danger" } disabled=move || !ok()
                        title=move || if ok() { String::new() } else { "Type the environment name to confirm".to_string() }
                        on:click=move |_| {
                            let m = message.get_untracked();
                            let m = (!m.trim().is_empty()).then_some(m);
                            if what == "promote" {
                                promote.dispatch(PromoteLane { path: keys.path(), lane: LaneId(id), message: m });
                            } else {
                                abort.dispatch(AbortLane { path: keys.path(), lane: LaneId(id), message: m });
                            }
                            confirm.set(None);
                        }>
                        {if what == "promote" { "Promote lane" } else { "Abort lane" }}
                    </button>
                </div>
            </DialogBar>
        </Dialog>
    }
}

/// What a promote or abort changes for the instances it touches: the diff
/// between stable and the lane's version (promote: stable → lane; abort: lane
/// → stable).
#[component]
fn LaneDiff(keys: Keys, stable: Option<i64>, version: i64, what: &'static str) -> impl IntoView {
    use crate::api::configs::diff_versions;
    let (ns, env, key) = (keys.ns(), keys.env(), keys.key());
    let Some(stable) = stable.filter(|s| *s != version) else {
        return view! { <p class="muted">"The lane serves the stable version: no content changes."</p> }
            .into_any();
    };
    let (from, to) = if what == "promote" {
        (stable, version)
    } else {
        (version, stable)
    };
    // Created when the dialog opens and read only inside it, so it lives as
    // long as the dialog.
    let diff = LocalResource::new(move || {
        diff_versions(
            ConfigPath::new(ns.clone(), env.clone(), key.clone()),
            from,
            to,
            false,
        )
    });
    view! {
        <h3>{format!("Changes v{from} → v{to}")}</h3>
        <Suspense fallback=|| view! { <p class="loading">"Loading the diff…"</p> }>
            {move || Suspend::new(async move {
                match diff.await {
                    Ok(d) => view! { <crate::app::components::DiffView diff=d /> }.into_any(),
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

/// A labelled slider (whole percents; arrows ±1, PageUp/PageDown ±10,
/// Home/End) paired with a number box for two decimals, plus quick buttons.
#[component]
fn WeightControl<C>(
    /// Reference-counted so the control outlives nothing it reads (see ActiveLane).
    weight: ArcRwSignal<f64>,
    label: String,
    /// What the preview says the lane matches at this weight, of the connected instances, when
    /// known (for "about 12 of 120 instances": the selector's count, as the preview shows it).
    reach: C,
) -> impl IntoView
where
    C: Fn() -> Option<(usize, usize)> + Clone + Send + Sync + 'static,
{
    let id = format!(
        "w{}",
        label.len() + label.bytes().map(usize::from).sum::<usize>()
    );
    let list_id = format!("{id}-marks");
    let value_text = {
        let weight = weight.clone();
        move || {
            let p = format_pct(weight.get());
            match reach() {
                Some((matched, connected)) => {
                    format!("{p} percent, about {matched} of {connected} instances")
                }
                None => format!("{p} percent"),
            }
        }
    };
    let (w1, w2, w3, w4) = (
        weight.clone(),
        weight.clone(),
        weight.clone(),
        weight.clone(),
    );
    view! {
        <div class="weight">
            <label for=id.clone()>{label.clone()}</label>
            <input
                id=id.clone()
                type="range"
                min="0"
                max="100"
                step="1"
                list=list_id.clone()
                aria-valuetext=value_text
                prop:value=move || w1.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f64>() {
                        w2.set(v)
                    }
                }
            />
            <datalist id=list_id>
                <option value="0"></option><option value="25"></option><option value="50"></option><option value="75"></option><option value="100"></option>
            </datalist>
            <input
                class="weight-number"
                type="number"
                min="0"
                max="100"
                step="0.01"
                aria-label=format!("{label} in percent")
                prop:value=move || format_pct(w3.get())
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f64>() {
                        w4.set(v.clamp(0.0, 100.0))
                    }
                }
            />
            "%"
            <span class="quick">
                {[1.0, 5.0, 10.0, 50.0].into_iter().map(|q| {
                    let weight = weight.clone();
                    view! {
                        <button type="button" class="btn small" on:click=move |_| weight.set(q)>{format!("{q}%")}</button>
                    }
                }).collect_view()}
            </span>
        </div>
    }
}

#[component]
fn NewLaneForm(state: LanePanelState, versions: StoredValue<Vec<VersionSummary>>) -> impl IntoView {
    let LanePanelState {
        keys,
        create,
        form,
        parsed,
        draft,
        preview,
        plan,
        eligible,
        ..
    } = state;
    let LaneForm {
        selector,
        targets,
        weight,
        ..
    } = form;
    let reach = move || preview.with(|p| p.as_ref().map(|p| (p.matched_count, p.connected_count)));
    let invalid_reason = move || why_not_start(&state);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(mut lane) = draft.get_untracked() else {
            return;
        };
        match plan.request() {
            Some(Ok(request)) => {
                lane.plan = request.plan;
                lane.template = request.template;
            }
            Some(Err(_)) => return,
            None => {}
        }
        create.dispatch(StartLane {
            path: keys.path(),
            lane,
        });
    };
    view! {
        <details class="new-lane" open>
            <summary>"Start a gray lane"</summary>
            <form class="stack" on:submit=on_submit>
                <div class="inline-form">
                    <VersionSelect form versions />
                    <label class="grow">
                        "Selector"
                        <input name="lane-selector" placeholder="region=beijing,tier in (web,api),version>=2.1" autocomplete="off" spellcheck="false"
                            aria-invalid=move || parsed.get().is_err().to_string() aria-describedby="selector-help"
                            bind:value=selector />
                    </label>
                </div>
                <SelectorHelp selector parsed />
                <div class="inline-form">
                    <label>
                        "Targets (one per line)"
                        <textarea name="lane-targets" rows="3" placeholder="pod-1\npod-2" bind:value=targets></textarea>
                    </label>
                    <StickinessField form />
                </div>
                <PlanEditor draft=plan eligible refused=action_error(create)
                    lane=Signal::derive(move || draft.get().filter(|_| parsed.with(|p| p.is_ok())))
                    stickiness=Signal::derive(move || form.stickiness_key()) />
                <Show when=move || !plan.active()>
                    <WeightControl weight=weight.into() label="Weight".to_string() reach />
                </Show>
                <Show when=move || plan.active()>
                    <p class="hint">"The plan's first step sets the lane's weight; each next step widens it."</p>
                </Show>
                <DraftPreview preview />
                <div class="actions">
                    <button class="btn primary" type="submit" disabled=move || invalid_reason().is_some() || create.pending().get()
                        title=move || invalid_reason().unwrap_or_default()>"Start lane"</button>
                    <span class="muted">{invalid_reason}</span>
                </div>
                <ErrorLine error=action_error(create) />
            </form>
        </details>
    }
}

/// Why the drafted lane cannot start yet, if it cannot.
fn why_not_start(state: &LanePanelState) -> Option<String> {
    if let Some(Err(e)) = state.plan.request() {
        Some(format!("Fix the plan: {e}"))
    } else if let Err(e) = state.parsed.get() {
        Some(format!("Fix the selector: {e}"))
    } else if let (Some(e), false) = (state.pct_error.get(), state.plan.active()) {
        Some(format!("Fix the weight: {e}"))
    } else if state.draft.with(|d| d.is_none()) {
        Some("Choose a version.".to_string())
    } else {
        None
    }
}

/// The version the lane serves: the newest unless another is picked.
#[component]
fn VersionSelect(form: LaneForm, versions: StoredValue<Vec<VersionSummary>>) -> impl IntoView {
    let LaneForm {
        version, newest, ..
    } = form;
    let chosen = move || version.get().or(newest.get());
    view! {
        <label>
            "Version"
            <select name="lane-version" on:change=move |ev| {
                if let Ok(v) = event_target_value(&ev).parse() {
                    version.set(Some(v))
                }
            }>
                {versions.get_value().into_iter().map(|v| {
                    let n = v.version;
                    let text = if v.message.is_empty() { format!("v{n}") } else { format!("v{n} — {}", v.message) };
                    view! { <option value=n selected=move || chosen() == Some(n)>{text}</option> }
                }).collect_view()}
            </select>
        </label>
    }
}

/// The selector as parsed while it is typed: what it means, or where it goes wrong.
#[component]
fn SelectorHelp(
    selector: RwSignal<String>,
    parsed: Memo<Result<Selector, crate::domain::selector::SelectorError>>,
) -> impl IntoView {
    view! {
        <div id="selector-help" class="selector-help" role="status">
            {move || match parsed.get() {
                Ok(s) if s.is_empty() => view! { <span class="muted">"Empty selector: every instance is eligible."</span> }.into_any(),
                Ok(s) => view! { <span class="ok">"✓ " <code>{s.to_string()}</code></span> }.into_any(),
                Err(e) => {
                    let text = selector.get();
                    let chars: Vec<char> = text.chars().collect();
                    let at = e.position().min(chars.len());
                    let before: String = chars[..at].iter().collect();
                    let bad: String = chars.get(at).map(|c| c.to_string()).unwrap_or_else(|| " ".into());
                    let after: String = chars.iter().skip(at + 1).collect();
                    view! {
                        <span class="selector-error">
                            <code class="echo">{before}<u class="at">{bad}</u>{after}</code>
                            <span>"✕ " {e.to_string()}</span>
                        </span>
                    }.into_any()
                }
            }}
        </div>
    }
}

/// Which context key the lane's buckets follow.
#[component]
fn StickinessField(form: LaneForm) -> impl IntoView {
    let LaneForm {
        stickiness,
        other_key,
        ..
    } = form;
    view! {
        <label>
            "Stickiness"
            <select name="lane-stickiness" on:change=move |ev| stickiness.set(event_target_value(&ev))>
                <option value="client_id" selected=move || stickiness.get() == "client_id">"client_id (instance)"</option>
                <option value="user_id" selected=move || stickiness.get() == "user_id">"user_id (request user)"</option>
                <option value="other" selected=move || stickiness.get() == "other">"another context key…"</option>
            </select>
            <span class="hint">"The same value always lands in the same bucket, so raising the weight keeps everyone already inside."</span>
        </label>
        <Show when=move || stickiness.get() == "other">
            <label>"Context key" <input name="lane-stickiness-key" bind:value=other_key /></label>
        </Show>
    }
}

/// The blast radius of the drafted lane among the instances connected now.
#[component]
fn DraftPreview(preview: RwSignal<Option<Preview>>) -> impl IntoView {
    view! {
        <div class="preview" data-testid="lane-preview" aria-live="polite">
            {move || match preview.get() {
                Some(p) => view! {
                    <p><strong>{format!("matches {} of {} connected instances", p.matched_count, p.connected_count)}</strong> <span class="muted">" (based on instances connected now)"</span></p>
                    <ul class="chips">{p.matched.into_iter().map(|c| view! { <li class="chip">{c}</li> }).collect_view()}</ul>
                }.into_any(),
                None => view! { <p class="muted">"Preview appears when the rule is valid."</p> }.into_any(),
            }}
        </div>
    }
}

#[component]
fn TestContext(state: LanePanelState) -> impl IntoView {
    let LanePanelState {
        keys,
        draft,
        context,
        ..
    } = state;
    let ContextTest {
        explain,
        client_id,
        user_id,
        labels,
        with_draft,
        open,
    } = context;
    let labels_error = Memo::new(move |_| parse_labels(&labels.get()).err());
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(mut context) = parse_labels(&labels.get_untracked()) else {
            return;
        };
        for (k, v) in [
            ("client_id", client_id.get_untracked()),
            ("user_id", user_id.get_untracked()),
        ] {
            if !v.trim().is_empty() {
                context.insert(k.to_string(), v.trim().to_string());
            }
        }
        explain.dispatch(ExplainResolve {
            path: keys.path(),
            context,
            draft: if with_draft.get_untracked() {
                draft.get_untracked()
            } else {
                None
            },
        });
    };
    view! {
        // Stays open across reloads of the page (the view is rebuilt).
        <details class="test-context" open=move || open.get()
            on:toggle=move |ev| open.set(event_target::<web_sys::HtmlDetailsElement>(&ev).open())>
            <summary>"Test a context"</summary>
            <div class="two-columns">
                <form class="stack" on:submit=on_submit>
                    <label>"client_id" <input name="ctx-client-id" bind:value=client_id /></label>
                    <label>"user_id" <input name="ctx-user-id" bind:value=user_id /></label>
                    <label>"Labels" <input name="ctx-labels" placeholder="region=beijing,tier=web" bind:value=labels /></label>
                    {move || labels_error.get().map(|e| view! { <p class="error">{e}</p> })}
                    <fieldset class="rules-choice">
                        <legend>"Rules"</legend>
                        <label><input type="radio" name="ctx-rules" value="current" prop:checked=move || !with_draft.get() on:change=move |_| with_draft.set(false) /> "current rules"</label>
                        <label><input type="radio" name="ctx-rules" value="unsaved" prop:checked=move || with_draft.get() on:change=move |_| with_draft.set(true) /> "with the unsaved lane (shown as lane 0)"</label>
                    </fieldset>
                    <button class="btn" type="submit" disabled=move || labels_error.get().is_some()>"Which version does it get?"</button>
                </form>
                <div class="verdict" data-testid="verdict" aria-live="polite">
                    <ErrorLine error=action_error(explain) />
                    {move || explain.value().get().and_then(|r| r.ok()).map(|x| view! {
                        <p class="verdict-line"><strong>{match x.version { Some(v) => format!("Gets v{v}"), None => "Gets nothing (404)".to_string() }}</strong> {format!(" — {}", x.reason)}</p>
                        <table class="grid">
                            <thead><tr><th>"Lane"</th><th>"Selector"</th><th>"Bucket / threshold"</th><th>"Reason"</th></tr></thead>
                            <tbody>
                                {x.lanes.into_iter().map(|v| view! {
                                    <tr class:matched=v.matched>
                                        <td>{format!("{}lane {} (v{})", if v.matched { "✓ " } else { "✗ " }, v.lane_id, v.version)}</td>
                                        <td>{if v.selector_matched { "✓ matched" } else { "✗ no match" }}</td>
                                        <td>{match v.bucket { Some(b) => format!("{b} / {}", v.threshold_bp), None => format!("— / {}", v.threshold_bp) }}</td>
                                        <td>{v.reason}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    })}
                </div>
            </div>
        </details>
    }
}
