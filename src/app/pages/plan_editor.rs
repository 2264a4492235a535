//! The rollout plan editor inside "Start a gray lane" (UI.md "Rollout plans"): a template
//! picker with the environment's default preselected (or no plan), step rows, guard cards,
//! the three policies as radio groups, and the blast radius of every step before start.
//!
//! Checked in the browser with the server's own code ([`parse_plan`]), so every error names
//! its field exactly as a refused request would. The state lives in [`PlanDraft`], owned by
//! the page's [`super::lanes::LanePanelState`] outside the reloading view.

use crate::api::configs::preview_lane;
use crate::api::plan_fns::plan_templates;
use crate::app::pages::plan_rows::{
    check, field_words, guard_defaults, guard_fields, guard_json, guard_words, lane_warnings,
    step_reach, word, Reach, Row,
};
use crate::app::pages::shared::{format_pct, Keys};
use crate::domain::compare::Verdict;
use crate::domain::plan::decide::human_secs;
use crate::domain::plan::{parse_plan, Guard, Plan, PlanError};
use crate::model::{ConfigPath, NewLane, PlanTemplates};
use crate::Error;
use leptos::prelude::*;
use serde_json::Value;

/// The picker's value for "edit the steps by hand, from no template".
const CUSTOM: &str = "(custom)";

/// What a lane request carries for its plan, once the plan checks out.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    /// The plan, unless it is exactly a template (then the template's name goes instead).
    pub plan: Option<Value>,
    pub template: Option<String>,
    /// `(percentage, hold_secs)` of each step.
    pub steps: Vec<(f64, u32)>,
}

#[derive(Clone, Copy)]
pub struct PlanDraft {
    templates: RwSignal<Option<PlanTemplates>>,
    /// `""` for no plan, a template's name, or [`CUSTOM`].
    chosen: RwSignal<String>,
    /// The user picked something: the default arriving late no longer overrides it.
    picked: RwSignal<bool>,
    steps: RwSignal<Vec<Row>>,
    guards: RwSignal<Vec<Row>>,
    on_failure: RwSignal<String>,
    no_data: RwSignal<String>,
    finish: RwSignal<String>,
    next_key: StoredValue<u32>,
    checked: Memo<Option<Result<Plan, Vec<PlanError>>>>,
    /// The config the lane is for: a tested query gets its `{{namespace}}`, `{{env}}`, `{{key}}`.
    keys: Keys,
}

impl PlanDraft {
    /// Reads the templates of `env` (in the browser) and preselects its default.
    pub fn new(keys: Keys) -> Self {
        let env = keys.env;
        let chosen = RwSignal::new(String::new());
        let steps = RwSignal::new(Vec::<Row>::new());
        let guards = RwSignal::new(Vec::<Row>::new());
        let on_failure = RwSignal::new("abort".to_string());
        let no_data = RwSignal::new("wait".to_string());
        let finish = RwSignal::new("hold".to_string());
        let checked = Memo::new(move |_| {
            if chosen.with(String::is_empty) {
                return None;
            }
            Some(check(
                &steps.get(),
                &guards.get(),
                [on_failure.get(), no_data.get(), finish.get()],
            ))
        });
        let draft = PlanDraft {
            templates: RwSignal::new(None),
            chosen,
            picked: RwSignal::new(false),
            steps,
            guards,
            on_failure,
            no_data,
            finish,
            next_key: StoredValue::new(0),
            checked,
            keys,
        };
        Effect::new(move |_| {
            let env = env.get();
            leptos::task::spawn_local(async move {
                let Ok(list) = plan_templates(env).await else {
                    return;
                };
                let default = list.default_template.clone();
                draft.templates.try_set(Some(list));
                if !draft.picked.get_untracked() {
                    draft.pick(default.unwrap_or_default());
                }
            });
        });
        draft
    }

    /// After a lane started: back to the environment's default.
    pub fn reset(&self) {
        self.picked.set(false);
        self.steps.set(Vec::new());
        self.guards.set(Vec::new());
        let default = self
            .templates
            .with_untracked(|t| t.as_ref().and_then(|t| t.default_template.clone()));
        self.pick(default.unwrap_or_default());
    }

    /// Whether the lane is to run a plan.
    pub fn active(&self) -> bool {
        !self.chosen.with(String::is_empty)
    }

    /// `None` without a plan; the request's plan, or the first error in words.
    pub fn request(&self) -> Option<Result<PlanRequest, String>> {
        let checked = self.checked.get()?;
        Some(match checked {
            Err(errors) => Err(errors
                .first()
                .map(|e| format!("{}: {}", field_words(&e.field), e.message))
                .unwrap_or_default()),
            Ok(plan) => {
                let spec = plan;
                let chosen = self.chosen.get();
                let same_as_template = self.templates.with(|t| {
                    t.as_ref().is_some_and(|t| {
                        t.templates
                            .iter()
                            .any(|t| t.name == chosen && t.plan == spec)
                    })
                });
                Ok(PlanRequest {
                    steps: spec
                        .steps
                        .iter()
                        .map(|s| (s.percentage.as_f64(), s.hold_secs))
                        .collect(),
                    plan: (!same_as_template)
                        .then(|| serde_json::to_value(&spec).unwrap_or_default()),
                    template: same_as_template.then_some(chosen),
                })
            }
        })
    }

    fn key(&self) -> u32 {
        let key = self.next_key.get_value() + 1;
        self.next_key.set_value(key);
        key
    }

    /// Chooses no plan (`""`), a template (its rows are filled in) or [`CUSTOM`].
    fn pick(&self, name: String) {
        let spec = self.templates.with_untracked(|t| {
            t.as_ref()
                .and_then(|t| t.templates.iter().find(|t| t.name == name))
                .map(|t| t.plan.clone())
        });
        match &spec {
            Some(spec) => self.fill(spec),
            None if name == CUSTOM && self.steps.with_untracked(Vec::is_empty) => {
                let row = self.row(
                    "step",
                    &[("percentage", "10".into()), ("hold", "10 min".into())],
                );
                self.steps.set(vec![row]);
            }
            None if name != CUSTOM => self.chosen.set(String::new()),
            None => {}
        }
        if spec.is_some() || name == CUSTOM {
            self.chosen.set(name);
        }
    }

    fn fill(&self, spec: &Plan) {
        let steps = spec
            .steps
            .iter()
            .map(|s| {
                self.row(
                    "step",
                    &[
                        ("percentage", format_pct(s.percentage.as_f64())),
                        ("hold", human_secs(u64::from(s.hold_secs))),
                    ],
                )
            })
            .collect();
        let guards = spec.guards.iter().map(|g| self.guard_row(g)).collect();
        self.steps.set(steps);
        self.guards.set(guards);
        self.on_failure.set(word(&spec.on_failure));
        self.no_data.set(word(&spec.no_data));
        self.finish.set(word(&spec.finish));
    }

    fn row(&self, kind: &'static str, fields: &[(&'static str, String)]) -> Row {
        Row {
            key: self.key(),
            kind,
            fields: fields.iter().cloned().collect(),
        }
    }

    fn guard_row(&self, guard: &Guard) -> Row {
        let (kind, fields) = guard_fields(guard);
        self.row(kind, &fields)
    }

    /// A step after the last, at twice its percentage (10 % for the first).
    fn add_step(&self) {
        self.edited();
        let last = self.steps.with_untracked(|s| {
            s.last().and_then(|r| {
                r.fields
                    .get("percentage")
                    .and_then(|p| p.parse::<f64>().ok())
            })
        });
        let next = last.map_or(10.0, |p| (p * 2.0).min(100.0));
        let row = self.row(
            "step",
            &[("percentage", format_pct(next)), ("hold", "10 min".into())],
        );
        self.steps.update(|s| s.push(row));
    }

    /// A guard of `kind` (`reports`, `prometheus`, `webhook` or `compare`) with its defaults
    /// filled in.
    fn add_guard(&self, kind: &'static str) {
        self.edited();
        let row = self.row(kind, &guard_defaults(kind));
        self.guards.update(|g| g.push(row));
    }

    /// The user edited the plan: it is no longer "no plan" (a template's name stays, and the
    /// request sends the edited plan when it differs).
    fn edited(&self) {
        self.picked.set(true);
        if !self.active() {
            self.chosen.set(CUSTOM.into());
        }
    }

    fn error_at(&self, field: &str) -> Option<String> {
        self.checked.with(|c| match c {
            Some(Err(errors)) => errors
                .iter()
                .find(|e| e.field == field)
                .map(|e| e.message.clone()),
            _ => None,
        })
    }
}

/// What a lane's rule reaches now, for each step's blast radius: asked again (in the browser)
/// when the rule changes or instances come and go; a late answer never overwrites a newer one.
pub fn follow_reach(
    path: impl Fn() -> ConfigPath + Copy + Send + Sync + 'static,
    rule: Memo<Option<NewLane>>,
    connected: Memo<Option<u64>>,
) -> RwSignal<Option<Reach>> {
    let reach = RwSignal::new(None::<Reach>);
    let asked = StoredValue::new(0u64);
    Effect::new(move |_| {
        connected.track();
        let n = asked.get_value() + 1;
        asked.set_value(n);
        let Some(lane) = rule.get() else {
            reach.set(None);
            return;
        };
        leptos::task::spawn_local(async move {
            // At 100 %: every eligible instance; at 0 %: only the targets, in at every step.
            let all = NewLane {
                percentage: 100.0,
                ..lane.clone()
            };
            let targets = NewLane {
                percentage: 0.0,
                ..lane
            };
            let (Ok(all), Ok(targets)) = (
                preview_lane(path(), all).await,
                preview_lane(path(), targets).await,
            ) else {
                return;
            };
            if asked.try_get_value() == Some(n) {
                reach.try_set(Some(Reach {
                    eligible: all.matched_count,
                    targets: targets.matched_count,
                    connected: all.connected_count,
                }));
            }
        });
    });
    reach
}

#[component]
pub fn PlanEditor(
    draft: PlanDraft,
    /// What the rule matches at 100 %: the eligible instances.
    eligible: RwSignal<Option<Reach>>,
    /// The lane's stickiness key.
    #[prop(into)]
    stickiness: Signal<String>,
    /// The server's refusal of the last start, if any: one about the guards shows beside them.
    #[prop(into)]
    refused: Signal<Option<Error>>,
    /// The lane being drafted (while its rule is complete): a compare guard's test compares it.
    #[prop(into)]
    lane: Signal<Option<NewLane>>,
) -> impl IntoView {
    let PlanDraft { steps, guards, .. } = draft;
    let warnings = move || {
        let reach = eligible.get().filter(|_| draft.active());
        lane_warnings(reach.as_ref(), &stickiness.get())
    };
    // A template chosen by name is refused on `template`, naming the plan's field inside it.
    let guards_refused = move || {
        refused.get().filter(|e| {
            e.field.as_deref() == Some("plan.guards") || e.message.contains("plan.guards:")
        })
    };
    view! {
        <fieldset class="plan-editor" data-testid="plan-editor">
            <legend>"Rollout plan"</legend>
            <TemplatePicker draft />
            <Show when=move || draft.active()>
                <h4>"Steps"</h4>
                <ol class="plan-steps">
                    <For each=move || steps.get() key=|r| r.key let:row>
                        <StepRow draft key=row.key eligible />
                    </For>
                </ol>
                <button type="button" class="btn small" on:click=move |_| draft.add_step()>"+ Add a step"</button>
                {move || draft.error_at("plan.steps").map(|e| view! { <p class="field-error">{e}</p> })}
                <h4>"Guards"</h4>
                <p class="hint">"Every step waits for all guards to pass; a failing guard acts at once, also during a hold."</p>
                <div class="guard-cards">
                    <For each=move || guards.get() key=|r| r.key let:row>
                        <GuardCard draft key=row.key kind=row.kind lane />
                    </For>
                </div>
                <div class="actions">
                    <button type="button" class="btn small" on:click=move |_| draft.add_guard("reports")>"+ Reports guard"</button>
                    <button type="button" class="btn small" on:click=move |_| draft.add_guard("prometheus")>"+ Prometheus guard"</button>
                    <button type="button" class="btn small" on:click=move |_| draft.add_guard("webhook")>"+ Webhook guard"</button>
                    <button type="button" class="btn small" on:click=move |_| draft.add_guard("compare")>"+ Compare guard"</button>
                </div>
                <div data-testid="guards-error">
                    {move || draft.error_at("plan.guards").map(|e| view! { <p class="field-error">{format!("✕ {e}")}</p> })}
                    {move || guards_refused().map(|e| view! { <p class="field-error" role="alert">{format!("✕ The server refused the plan: {}", e.message)}</p> })}
                </div>
                <Policies draft />
                <PlanJson draft />
                <div class="plan-errors" role="status" data-testid="plan-errors">
                    {move || match draft.checked.get() {
                        Some(Err(errors)) => errors.into_iter().map(|e| view! {
                            <p class="error">{format!("✕ {}: {}", field_words(&e.field), e.message)}</p>
                        }).collect_view().into_any(),
                        Some(Ok(_)) => view! { <p class="ok">"✓ The plan is valid."</p> }.into_any(),
                        None => ().into_any(),
                    }}
                </div>
            </Show>
            {move || {
                let warnings = warnings();
                (!warnings.is_empty()).then(|| view! {
                    <ul class="plan-warnings" role="status" data-testid="plan-warnings">
                        {warnings.into_iter().map(|w| view! { <li class="warning">{format!("⚠ {w}")}</li> }).collect_view()}
                    </ul>
                })
            }}
        </fieldset>
    }
}

/// The template picker: no plan, one of the environment's templates, or custom steps.
#[component]
fn TemplatePicker(draft: PlanDraft) -> impl IntoView {
    let PlanDraft {
        templates, chosen, ..
    } = draft;
    let options = move || {
        templates.with(|t| {
            t.as_ref()
                .map(|t| {
                    t.templates
                        .iter()
                        .map(|t| (t.name.clone(), t.default))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    view! {
        <label>
            "Plan"
            <select name="plan-template" on:change=move |ev| {
                draft.picked.set(true);
                draft.pick(event_target_value(&ev));
            }>
                <option value="" selected=move || chosen.with(String::is_empty)>"No plan: I set the weight by hand"</option>
                {move || options().into_iter().map(|(name, default)| {
                    let label = if default { format!("{name} (default of this environment)") } else { name.clone() };
                    let value = name.clone();
                    view! { <option value=value selected=move || chosen.with(|c| *c == name)>{label}</option> }
                }).collect_view()}
                <option value=CUSTOM selected=move || chosen.with(|c| c == CUSTOM)>"Custom steps"</option>
            </select>
            <span class="hint">"A plan widens the lane step by step by itself, and stops it when a guard fails."</span>
        </label>
    }
}

/// What the plan does when a guard fails, when a guard has no data, and after the last step.
#[component]
fn Policies(draft: PlanDraft) -> impl IntoView {
    view! {
        <Policy draft name="on_failure" legend="When a guard fails"
            choices=vec![
                ("abort", "Abort the lane at once: its instances go back to the stable release."),
                ("pause", "Pause the plan and leave the lane as it is, for a person to decide."),
            ] />
        <Policy draft name="no_data" legend="When the hold is over and a guard has no data yet"
            choices=vec![
                ("wait", "Keep waiting; the plan says what it waits for."),
                ("advance", "Advance anyway: no news counts as good news."),
                ("abort", "Abort the lane with the reason \u{201c}no data\u{201d}."),
            ] />
        <Policy draft name="finish" legend="After the last step"
            choices=vec![
                ("hold", "Hold: the lane stays for a person to promote."),
                ("promote", "Promote: the lane's version becomes the stable release by itself."),
            ] />
    }
}

#[component]
fn StepRow(draft: PlanDraft, key: u32, eligible: RwSignal<Option<Reach>>) -> impl IntoView {
    let steps = draft.steps;
    let index = move || steps.with(|s| s.iter().position(|r| r.key == key).unwrap_or(0));
    let value = move |name: &'static str| {
        move || {
            steps.with(|s| {
                s.iter()
                    .find(|r| r.key == key)
                    .and_then(|r| r.fields.get(name).cloned())
                    .unwrap_or_default()
            })
        }
    };
    let set = move |name: &'static str, text: String| {
        draft.edited();
        steps.update(|s| {
            if let Some(r) = s.iter_mut().find(|r| r.key == key) {
                r.fields.insert(name, text);
            }
        });
    };
    let error = move |name: &'static str| {
        move || {
            draft
                .error_at(&format!("plan.steps[{}].{name}", index()))
                .map(|e| view! { <span class="field-error">{e}</span> })
        }
    };
    let reach = move || {
        let pct = value("percentage")().trim().parse::<f64>().ok()?;
        eligible.with(|e| e.as_ref().map(|e| step_reach(pct, e)))
    };
    view! {
        <li class="plan-step" data-key=key>
            <label>
                {move || format!("Step {} percentage", index() + 1)}
                <input class="pct" name="plan-step-percentage" inputmode="decimal" autocomplete="off"
                    aria-invalid=move || draft.error_at(&format!("plan.steps[{}].percentage", index())).is_some().to_string()
                    prop:value=value("percentage") on:input=move |ev| set("percentage", event_target_value(&ev)) />
                "%"
            </label>
            <label>
                {move || format!("Step {} hold", index() + 1)}
                <input name="plan-step-hold" placeholder="10 min" autocomplete="off"
                    aria-invalid=move || draft.error_at(&format!("plan.steps[{}].hold_secs", index())).is_some().to_string()
                    prop:value=value("hold") on:input=move |ev| set("hold", event_target_value(&ev)) />
            </label>
            <span class="muted reach" data-testid="step-reach">
                {move || match reach() {
                    Some(r) => format!("step {}: {r}", index() + 1),
                    None => format!("step {}: reach appears when the rule is valid", index() + 1),
                }}
            </span>
            <button type="button" class="btn small" aria-label=move || format!("Remove step {}", index() + 1)
                on:click=move |_| { draft.edited(); steps.update(|s| s.retain(|r| r.key != key)); }>"Remove"</button>
            {error("percentage")}
            {error("hold_secs")}
        </li>
    }
}

#[component]
fn GuardCard(
    draft: PlanDraft,
    key: u32,
    kind: &'static str,
    lane: Signal<Option<NewLane>>,
) -> impl IntoView {
    let guards = draft.guards;
    let index = move || guards.with(|g| g.iter().position(|r| r.key == key).unwrap_or(0));
    let row = move || guards.with(|g| g.iter().find(|r| r.key == key).cloned());
    let value = move |name: &'static str| {
        row()
            .and_then(|r| r.fields.get(name).cloned())
            .unwrap_or_default()
    };
    let set = move |name: &'static str, text: String| {
        draft.edited();
        guards.update(|g| {
            if let Some(r) = g.iter_mut().find(|r| r.key == key) {
                r.fields.insert(name, text);
            }
        });
    };
    let path = move |name: &'static str| format!("plan.guards[{}].{name}", index());
    let error = move |name: &'static str| {
        move || {
            draft
                .error_at(&path(name))
                .map(|e| view! { <span class="field-error">{e}</span> })
        }
    };
    let field = move |name: &'static str, label: &'static str, placeholder: &'static str| {
        view! {
            <label class="plan-field">
                {label}
                <input name=format!("guard-{name}") placeholder=placeholder autocomplete="off" spellcheck="false"
                    aria-invalid=move || draft.error_at(&path(name)).is_some().to_string()
                    prop:value=move || value(name)
                    on:input=move |ev| set(name, event_target_value(&ev)) />
                {error(name)}
            </label>
        }
    };
    let choice = move |name: &'static str, label: &'static str, words: &'static [&'static str]| {
        view! {
            <label class="plan-field">
                {label}
                <select name=format!("guard-{name}") on:change=move |ev| set(name, event_target_value(&ev))>
                    {words.iter().copied().map(|w| view! {
                        <option value=w selected=move || value(name) == w>{w}</option>
                    }).collect_view()}
                </select>
                {error(name)}
            </label>
        }
    };
    let title = match kind {
        "reports" => "Reports guard: the lane's instances applied it",
        "prometheus" => "Prometheus guard: a query stays within bounds",
        "compare" => "Compare guard: the lane is not worse than stable",
        _ => "Webhook guard: your endpoint says go",
    };
    let fields = match kind {
        "reports" => view! {
            {field("max_failed", "Most failed instances", "0")}
            {field("max_failed_ratio", "Most failed share (0–1)", "0")}
            {field("min_applied_ratio", "Least applied share (0–1)", "1")}
            {field("min_instances", "Least instances served", "1")}
        }
        .into_any(),
        "prometheus" => view! {
            {field("url", "Prometheus URL", "http://prometheus:9090")}
            {field("query", "PromQL query ({{namespace}}, {{env}}, {{key}}, {{lane}}, {{version}})", "sum(rate(errors_total{version=\"{{version}}\"}[1m]))")}
            {field("min", "Min", "")}
            {field("max", "Max", "")}
            {field("interval_secs", "Every (s)", "30")}
            {field("failures", "Failures in a row", "2")}
            {choice("no_data", "Empty result", &["wait", "pass", "fail"])}
            <TestQuery draft key />
        }
        .into_any(),
        "compare" => view! {
            {field("url", "Prometheus URL", "http://prometheus:9090")}
            {field("query", "PromQL query, one sample per instance ({{instances}} selects a population)", "sum by (instance) (rate(errors_total{instance=~\"{{instances}}\"}[5m]))")}
            {field("label", "Label naming the instance", "instance")}
            {field("metric", "Metric name (in the sentence)", "error rate")}
            {choice("direction", "Better is", &["lower_is_better", "higher_is_better"])}
            {field("max_ratio", "Most times worse (ratio, ≥ 1)", "1.2")}
            {field("max_delta", "Most worse by (metric's unit)", "")}
            {field("min_instances_per_side", "Least instances per side", "3")}
            {field("confidence", "Confidence (0.5 to below 1)", "0.95")}
            {field("interval_secs", "Every (s)", "30")}
            {field("failures", "Failures in a row", "2")}
            <CompareQuery draft key lane />
        }
        .into_any(),
        _ => view! {
            {field("url", "Webhook URL", "https://hooks.example/canary")}
            {field("interval_secs", "Every (s)", "30")}
            {field("failures", "Failures in a row", "2")}
            {field("timeout_secs", "Timeout (s)", "5")}
            <label class="radio">
                <input type="checkbox" name="guard-quote_body"
                    prop:checked=move || value("quote_body") == "true"
                    on:change=move |ev| set("quote_body", event_target_checked(&ev).to_string()) />
                "Quote a failing answer's first line in the reason"
            </label>
        }
        .into_any(),
    };
    view! {
        <div class="guard-card card" data-kind=kind>
            <div class="guard-head">
                <strong>{move || format!("Guard {} · {title}", index() + 1)}</strong>
                <button type="button" class="btn small" aria-label=move || format!("Remove guard {}", index() + 1)
                    on:click=move |_| { draft.edited(); guards.update(|g| g.retain(|r| r.key != key)); }>"Remove"</button>
            </div>
            <div class="inline-form">{fields}</div>
            <p class="hint">{move || row().map(|r| guard_words(&r)).unwrap_or_default()}</p>
        </div>
    }
}

/// "Test query now": asks the guard's Prometheus for the query's value right now, read by the
/// guard's own rule, and says whether it is within the bounds typed.
#[component]
fn TestQuery(draft: PlanDraft, key: u32) -> impl IntoView {
    use crate::api::probes::test_prometheus_query;
    use crate::domain::plan::probe::{QueryTest, QueryTestRequest};
    // Reference-counted: this view is rebuilt with the page (see lanes.rs ActiveLane).
    let answer = ArcRwSignal::new(None::<Result<QueryTest, crate::Error>>);
    let asking = ArcRwSignal::new(false);
    let field = move |name: &str| {
        draft.guards.with(|g| {
            g.iter()
                .find(|r| r.key == key)
                .and_then(|r| r.fields.get(name).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        })
    };
    let missing = move || {
        if field("url").is_empty() {
            Some("Type the Prometheus URL first")
        } else if field("query").is_empty() {
            Some("Type the query first")
        } else {
            None
        }
    };
    let ask = {
        let (answer, asking) = (answer.clone(), asking.clone());
        move |_| {
            let keys = draft.keys;
            let request = QueryTestRequest {
                url: field("url"),
                query: field("query"),
                namespace: Some(keys.ns.get_untracked()),
                env: Some(keys.env.get_untracked()),
                key: Some(keys.key.get_untracked()),
                lane: None,
                version: None,
            };
            let (answer, asking) = (answer.clone(), asking.clone());
            asking.set(true);
            leptos::task::spawn_local(async move {
                let result = test_prometheus_query(request).await;
                answer.try_set(Some(result));
                asking.try_set(false);
            });
        }
    };
    let bounds = move |v: f64| {
        let min = field("min").parse::<f64>().ok();
        let max = field("max").parse::<f64>().ok();
        let inside = min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m);
        if inside {
            "✓ within the bounds: the guard would pass"
        } else {
            "✕ outside the bounds: the guard would count a failure"
        }
    };
    let shown = move || {
        answer.get().map(|result| match result {
            Err(e) => format!("✕ {}", e.message),
            Ok(t) => match (t.error, t.value) {
                (Some(why), _) => format!("✕ {why}"),
                (None, Some(v)) => format!("current value {v} — {}", bounds(v)),
                (None, None) if t.samples == 0 => {
                    "… no data: the query returned nothing right now".to_string()
                }
                (None, None) => format!("… {} samples without a number", t.samples),
            },
        })
    };
    let disabled = {
        let asking = asking.clone();
        move || missing().is_some() || asking.get()
    };
    view! {
        <div class="test-query" aria-live="polite">
            <button type="button" class="btn small" disabled=disabled
                title=move || missing().unwrap_or_default() aria-description=move || missing().unwrap_or_default()
                on:click=ask>"Test query now"</button>
            <span class="muted" data-testid="query-test">{move || shown().unwrap_or_else(|| "Shows the query's value now, as the guard would read it.".into())}</span>
        </div>
    }
}

/// "Test the query now" for a compare guard: both populations' queries as the guard would run
/// them for the lane being drafted, their samples side by side and the guard's sentence.
#[component]
fn CompareQuery(draft: PlanDraft, key: u32, lane: Signal<Option<NewLane>>) -> impl IntoView {
    use crate::api::probes::test_compare_query;
    use crate::domain::plan::probe::{CompareTest, CompareTestRequest};
    // Reference-counted: this view is rebuilt with the page (see lanes.rs ActiveLane).
    let answer = ArcRwSignal::new(None::<Result<CompareTest, Error>>);
    let asking = ArcRwSignal::new(false);
    let row = move || {
        draft
            .guards
            .with(|g| g.iter().find(|r| r.key == key).cloned())
    };
    let missing = move || {
        let filled = |name: &str| {
            row().is_some_and(|r| r.fields.get(name).is_some_and(|v| !v.trim().is_empty()))
        };
        if !filled("url") {
            Some("Type the Prometheus URL first")
        } else if !filled("query") {
            Some("Type the query first")
        } else if lane.with(Option::is_none) {
            Some("Choose the lane's version and a valid rule first")
        } else {
            None
        }
    };
    let ask = {
        let (answer, asking) = (answer.clone(), asking.clone());
        move |_| {
            let Some(guard) = row().map(|r| guard_json(&r)) else {
                return;
            };
            let guard = match guard {
                Ok(guard) => guard,
                Err(bad) => {
                    let said = bad.into_iter().map(|(name, why)| format!("{name}: {why}"));
                    let error = Error::invalid("guard", said.collect::<Vec<_>>().join("; "));
                    answer.set(Some(Err(error)));
                    return;
                }
            };
            let keys = draft.keys;
            let request = CompareTestRequest {
                namespace: keys.ns.get_untracked(),
                env: keys.env.get_untracked(),
                key: keys.key.get_untracked(),
                guard,
                lane: None,
                draft: lane.get_untracked(),
            };
            let (answer, asking) = (answer.clone(), asking.clone());
            asking.set(true);
            leptos::task::spawn_local(async move {
                let result = test_compare_query(request).await;
                answer.try_set(Some(result));
                asking.try_set(false);
            });
        }
    };
    let disabled = {
        let asking = asking.clone();
        move || missing().is_some() || asking.get()
    };
    let shown = move || {
        match answer.get() {
        None => view! { <p class="muted">"Runs the query for the lane's instances and for stable's, as the guard would now."</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error">{format!("✕ {}", e.message)}</p> }.into_any(),
        Some(Ok(t)) => {
            let mark = match t.comparison.as_ref().map(|c| c.verdict) {
                Some(Verdict::Passing) => "✓",
                Some(Verdict::Failing) => "✕",
                _ => "…",
            };
            view! {
                <p data-testid="compare-sentence">{format!("{mark} {}", t.sentence)}</p>
                <div class="populations">
                    <Population title="Lane" side=t.lane />
                    <Population title="Stable" side=t.stable />
                </div>
            }
            .into_any()
        }
    }
    };
    view! {
        <div class="test-query compare-test" aria-live="polite" data-testid="compare-test">
            <button type="button" class="btn small" disabled=disabled
                title=move || missing().unwrap_or_default() aria-description=move || missing().unwrap_or_default()
                on:click=ask>"Test the query now"</button>
            {shown}
        </div>
    }
}

/// One population of a compare test: its samples by client id, the instances without one, and
/// its query's error.
#[component]
fn Population(
    title: &'static str,
    side: crate::domain::plan::probe::PopulationTest,
) -> impl IntoView {
    let more = |n: usize, what: &str| (n > 0).then(|| format!("and {n} more {what}"));
    let caption = format!("{title}: {} instances", side.instances);
    let rows = side
        .samples
        .iter()
        .map(|s| view! { <tr><td>{s.client_id.clone()}</td><td>{s.value.to_string()}</td></tr> })
        .collect_view();
    let without = (!side.without_sample.is_empty()).then(|| {
        let mut text = format!("Without a sample: {}", side.without_sample.join(", "));
        if let Some(more) = more(side.more_without_sample, "") {
            text.push_str(&format!(" {}", more.trim_end()));
        }
        view! { <p class="muted">{text}</p> }
    });
    view! {
        <div class="population" data-testid=format!("population-{}", title.to_lowercase())>
            <table class="grid">
                <caption>{caption}</caption>
                <thead><tr><th scope="col">"Instance"</th><th scope="col">"Value"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            {more(side.more_samples, "samples").map(|m| view! { <p class="muted">{m}</p> })}
            {without}
            {side.error.map(|e| view! { <p class="error">{format!("✕ {e}")}</p> })}
        </div>
    }
}

/// The plan as JSON, as the lane request sends it (defaults filled in): edit or paste a plan
/// and apply it, and the steps and guards above become it.
#[component]
fn PlanJson(draft: PlanDraft) -> impl IntoView {
    // What the user typed, until applied; `None`: the rows' plan is shown.
    let typed = ArcRwSignal::new(None::<String>);
    let refused = ArcRwSignal::new(None::<String>);
    let current = move || match draft.checked.get() {
        Some(Ok(plan)) => serde_json::to_string_pretty(&plan).unwrap_or_default(),
        _ => String::new(),
    };
    let text = {
        let typed = typed.clone();
        move || typed.get().unwrap_or_else(current)
    };
    let on_input = {
        let typed = typed.clone();
        move |ev| typed.set(Some(event_target_value(&ev)))
    };
    let apply = {
        let (typed, refused) = (typed.clone(), refused.clone());
        move |_| {
            let Some(text) = typed.get_untracked() else {
                return;
            };
            let parsed = serde_json::from_str::<Value>(&text)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|v| {
                    parse_plan(&v, "plan")
                        .map_err(|e| format!("{}: {}", field_words(&e.field), e.message))
                });
            match parsed {
                Ok(plan) => {
                    draft.edited();
                    draft.fill(&plan);
                    typed.set(None);
                    refused.set(None);
                }
                Err(why) => refused.set(Some(why)),
            }
        }
    };
    let unapplied = {
        let typed = typed.clone();
        move || typed.with(Option::is_none)
    };
    view! {
        <details class="plan-json-view">
            <summary>"Plan as JSON"</summary>
            <label class="plan-field">
                "The plan the lane starts with (edit it and apply, or paste one)"
                <textarea name="plan-json" rows="12" spellcheck="false" class="plan-json"
                    placeholder="The rows above do not make a valid plan yet"
                    prop:value=text on:input=on_input></textarea>
            </label>
            <button type="button" class="btn small" disabled=unapplied on:click=apply>"Apply JSON"</button>
            {move || refused.get().map(|why| view! { <p class="field-error" role="alert">{format!("✕ {why}")}</p> })}
        </details>
    }
}

#[component]
fn Policy(
    draft: PlanDraft,
    name: &'static str,
    legend: &'static str,
    choices: Vec<(&'static str, &'static str)>,
) -> impl IntoView {
    let signal = match name {
        "on_failure" => draft.on_failure,
        "no_data" => draft.no_data,
        _ => draft.finish,
    };
    view! {
        <fieldset class="policy">
            <legend>{legend}</legend>
            {choices.into_iter().map(|(value, explained)| view! {
                <label class="radio">
                    <input type="radio" name=format!("plan-{name}") value=value
                        prop:checked=move || signal.with(|s| s == value)
                        on:change=move |_| { draft.edited(); signal.set(value.to_string()); } />
                    <strong>{value}</strong> " — " {explained}
                </label>
            }).collect_view()}
        </fieldset>
    }
}
