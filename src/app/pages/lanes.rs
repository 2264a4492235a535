// Not mounted on the config page yet (see pages::config): kept compiled and
// ready while its resources move up to ConfigPage.
#![allow(dead_code)]
//! The gray release panel: active lanes with weight, promote and abort; a new
//! lane with a selector that validates as you type, a weight slider and a live
//! blast-radius preview; and "test a context" with the reasons per lane.

use crate::api::configs::{
    list_lanes, preview_lane, AbortLane, CreateLane, ExplainResolve, PromoteLane, UpdateLane,
};
use crate::app::components::{action_error, ErrorLine};
use crate::domain::lane::{parse_labels, parse_percentage};
use crate::domain::selector::Selector;
use crate::model::{Config, Lane, LaneUpdate, NewLane, Version};
use leptos::prelude::*;
use leptos_router::components::A;

/// `GRAY v13 · 10% · region=beijing` (violet).
#[component]
pub fn GrayBadge(lane: Lane) -> impl IntoView {
    let selector = if lane.selector.is_empty() {
        String::new()
    } else {
        format!(" · {}", lane.selector)
    };
    view! {
        <span class="badge violet" title="A gray lane">
            "◐ GRAY v" {lane.version} " · " {format_pct(lane.percentage)} "%" {selector}
        </span>
    }
}

pub fn format_pct(p: f64) -> String {
    let s = format!("{p:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[derive(Clone, Copy)]
struct Keys {
    config: StoredValue<Config>,
}

impl Keys {
    fn ns(&self) -> String {
        self.config.with_value(|c| c.namespace.clone())
    }
    fn env(&self) -> String {
        self.config.with_value(|c| c.env.clone())
    }
    fn key(&self) -> String {
        self.config.with_value(|c| c.key.clone())
    }
}

#[component]
pub fn GrayPanel(
    config: StoredValue<Config>,
    versions: StoredValue<Vec<Version>>,
    refresh: RwSignal<u32>,
    can_release: bool,
) -> impl IntoView {
    let keys = Keys { config };
    let lanes = Resource::new(
        move || refresh.get(),
        move |_| list_lanes(keys.ns(), keys.env(), keys.key()),
    );
    view! {
        <section class="card gray-panel" aria-labelledby="gray-title">
            <h2 id="gray-title">"Gray release"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading lanes…"</p> }>
                {move || Suspend::new(async move {
                    match lanes.await {
                        Ok(list) => {
                            let active: Vec<Lane> = list.iter().filter(|l| l.status == "active").cloned().collect();
                            let closed: Vec<Lane> = list.into_iter().filter(|l| l.status != "active").collect();
                            view! {
                                {if active.is_empty() {
                                    view! { <p class="muted">"No active gray lane: every subscriber gets the stable release."</p> }.into_any()
                                } else {
                                    view! {
                                        <ul class="lanes" data-testid="active-lanes">
                                            {active.into_iter().map(|lane| view! { <ActiveLane lane keys refresh can_release /> }).collect_view()}
                                        </ul>
                                    }.into_any()
                                }}
                                {(!closed.is_empty()).then(|| view! {
                                    <details class="closed-lanes">
                                        <summary>{format!("{} closed lane(s)", closed.len())}</summary>
                                        <ul>
                                            {closed.into_iter().map(|l| view! {
                                                <li data-lane=l.id>
                                                    <span class=if l.status == "aborted" { "badge red" } else { "badge grey superseded" }>
                                                        {if l.status == "aborted" { "✕ aborted" } else { "promoted" }}
                                                    </span>
                                                    " lane " {l.id} " · v" {l.version} " · " {format_pct(l.percentage)} "% · " {l.selector.clone()}
                                                </li>
                                            }).collect_view()}
                                        </ul>
                                    </details>
                                })}
                            }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    }
                })}
            </Transition>
            <Show when=move || can_release>
                <NewLaneForm keys versions refresh />
            </Show>
            <TestContext keys />
        </section>
    }
}

#[component]
fn ActiveLane(lane: Lane, keys: Keys, refresh: RwSignal<u32>, can_release: bool) -> impl IntoView {
    let update = ServerAction::<UpdateLane>::new();
    let promote = ServerAction::<PromoteLane>::new();
    let abort = ServerAction::<AbortLane>::new();
    Effect::new(move |_| {
        if matches!(update.value().get(), Some(Ok(_)))
            || matches!(promote.value().get(), Some(Ok(_)))
            || matches!(abort.value().get(), Some(Ok(_)))
        {
            refresh.update(|n| *n += 1);
        }
    });
    let id = lane.id;
    let weight = RwSignal::new(lane.percentage);
    let saved = lane.percentage;
    let confirm: RwSignal<Option<&'static str>> = RwSignal::new(None);
    let stable = keys.config.with_value(|c| c.stable_version);
    let compare = stable.map(|s| {
        format!(
            "/ns/{}/{}/{}/diff?from={s}&to={}",
            keys.ns(),
            keys.env(),
            keys.key(),
            lane.version
        )
    });
    let targets = lane.targets.len();
    let errors = Signal::derive(move || {
        action_error(update)
            .get()
            .or_else(|| action_error(promote).get())
            .or_else(|| action_error(abort).get())
    });
    view! {
        <li class="lane" data-lane=id>
            <div class="lane-head">
                <GrayBadge lane=lane.clone() />
                <span class="muted">
                    "lane " {id} " · priority " {lane.priority} " · sticky on " <code>{lane.stickiness.clone()}</code>
                    {(targets > 0).then(|| format!(" · {targets} target(s)"))}
                </span>
                {compare.map(|href| view! { <A href=href>"Diff against stable"</A> })}
            </div>
            <Show when=move || can_release>
                <div class="lane-controls">
                    <WeightControl weight label=format!("Weight of lane {id}") />
                    <button class="btn" disabled=move || (weight.get() - saved).abs() < 1e-9 || update.pending().get()
                        on:click=move |_| {
                            update.dispatch(UpdateLane {
                                namespace: keys.ns(), env: keys.env(), key: keys.key(), id,
                                change: LaneUpdate { percentage: Some(weight.get_untracked()), ..Default::default() },
                            });
                        }>"Apply weight"</button>
                    <span class="spacer"></span>
                    <button class="btn primary" on:click=move |_| confirm.set(Some("promote"))>"Promote…"</button>
                    <button class="btn danger" on:click=move |_| confirm.set(Some("abort"))>"Abort…"</button>
                </div>
            </Show>
            <ErrorLine error=errors />
            {move || confirm.get().map(|what| {
                let env = keys.env();
                let needs_typing = env == "prod";
                let typed = RwSignal::new(String::new());
                let message = RwSignal::new(String::new());
                let env_check = env.clone();
                let ok = move || !needs_typing || typed.get() == env_check;
                let (title, effect) = if what == "promote" {
                    (format!("Promote lane {id}: v{} becomes the stable release of {env}", lane.version),
                     "Every subscriber receives this version; the lane closes.".to_string())
                } else {
                    (format!("Abort lane {id} in {env}"),
                     "Its subscribers fall back to the stable release immediately; the lane closes.".to_string())
                };
                view! {
                    <div class="backdrop">
                        <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="lane-dialog-title">
                            <h2 id="lane-dialog-title">{title}</h2>
                            <p>{effect}</p>
                            <label>"Message" <input name="lane-message" bind:value=message /></label>
                            {needs_typing.then(|| view! { <label>"Type " <code>{env.clone()}</code> " to confirm" <input name="confirm-env" bind:value=typed /></label> })}
                            <div class="dialog-actions">
                                <button class="btn" on:click=move |_| confirm.set(None)>"Cancel"</button>
                                <span class="spacer"></span>
                                <button class=if what == "promote" { "btn primary" } else { "btn danger" } disabled=move || !ok()
                                    on:click=move |_| {
                                        let m = message.get_untracked();
                                        let m = (!m.trim().is_empty()).then_some(m);
                                        if what == "promote" {
                                            promote.dispatch(PromoteLane { namespace: keys.ns(), env: keys.env(), key: keys.key(), id, message: m });
                                        } else {
                                            abort.dispatch(AbortLane { namespace: keys.ns(), env: keys.env(), key: keys.key(), id, message: m });
                                        }
                                        confirm.set(None);
                                    }>
                                    {if what == "promote" { "Promote lane" } else { "Abort lane" }}
                                </button>
                            </div>
                        </div>
                    </div>
                }
            })}
        </li>
    }
}

/// A labelled slider (whole percents; arrows ±1, PageUp/PageDown ±10,
/// Home/End) paired with a number box for two decimals, plus quick buttons.
#[component]
fn WeightControl(
    weight: RwSignal<f64>,
    label: String,
    #[prop(optional)] connected: Option<Signal<usize>>,
) -> impl IntoView {
    let id = format!(
        "w{}",
        label.len() + label.bytes().map(usize::from).sum::<usize>()
    );
    let list_id = format!("{id}-marks");
    let value_text = move || {
        let p = weight.get();
        match connected.map(|c| c.get()) {
            Some(n) => format!(
                "{} percent, about {} of {n} instances",
                format_pct(p),
                (p / 100.0 * n as f64).round()
            ),
            None => format!("{} percent", format_pct(p)),
        }
    };
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
                prop:value=move || weight.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f64>() {
                        weight.set(v)
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
                prop:value=move || format_pct(weight.get())
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f64>() {
                        weight.set(v.clamp(0.0, 100.0))
                    }
                }
            />
            "%"
            <span class="quick">
                {[1.0, 5.0, 10.0, 50.0].into_iter().map(|q| view! {
                    <button type="button" class="btn small" on:click=move |_| weight.set(q)>{format!("{q}%")}</button>
                }).collect_view()}
            </span>
        </div>
    }
}

#[component]
fn NewLaneForm(
    keys: Keys,
    versions: StoredValue<Vec<Version>>,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let create = ServerAction::<CreateLane>::new();
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(_))) {
            refresh.update(|n| *n += 1);
        }
    });
    let newest = versions.with_value(|v| v.first().map(|v| v.version).unwrap_or(1));
    let version = RwSignal::new(newest);
    let selector = RwSignal::new(String::new());
    let targets = RwSignal::new(String::new());
    let stickiness = RwSignal::new("client_id".to_string());
    let other_key = RwSignal::new(String::new());
    let weight = RwSignal::new(10.0);
    let parsed = Memo::new(move |_| Selector::parse(&selector.get()));
    let pct_error = Memo::new(move |_| parse_percentage(weight.get()).err());
    let draft = Memo::new(move |_| NewLane {
        version: version.get(),
        selector: Some(selector.get()).filter(|s| !s.trim().is_empty()),
        targets: Some(
            targets
                .get()
                .lines()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        percentage: weight.get(),
        stickiness: Some(if stickiness.get() == "other" {
            other_key.get()
        } else {
            stickiness.get()
        }),
        priority: None,
        message: None,
    });
    // The blast-radius preview follows the rule and the weight as they change,
    // but only while they are valid.
    let preview = Resource::new(
        move || {
            (
                draft.get(),
                parsed.get().is_ok() && pct_error.get().is_none(),
                refresh.get(),
            )
        },
        move |(lane, valid, _)| async move {
            if !valid {
                return None;
            }
            preview_lane(keys.ns(), keys.env(), keys.key(), lane)
                .await
                .ok()
        },
    );
    let connected = Signal::derive(move || {
        preview
            .get()
            .flatten()
            .map(|p| p.connected_count)
            .unwrap_or(0)
    });
    let invalid_reason = move || {
        if let Err(e) = parsed.get() {
            Some(format!("Fix the selector: {e}"))
        } else {
            pct_error.get().map(|e| format!("Fix the weight: {e}"))
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateLane {
            namespace: keys.ns(),
            env: keys.env(),
            key: keys.key(),
            lane: draft.get_untracked(),
        });
    };
    view! {
        <details class="new-lane" open>
            <summary>"Start a gray lane"</summary>
            <form class="stack" on:submit=on_submit>
                <div class="inline-form">
                    <label>
                        "Version"
                        <select name="lane-version" on:change=move |ev| {
                            if let Ok(v) = event_target_value(&ev).parse() {
                                version.set(v)
                            }
                        }>
                            {versions.get_value().into_iter().map(|v| {
                                let n = v.version;
                                view! { <option value=n selected=move || version.get() == n>{format!("v{n} — {}", v.message)}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label class="grow">
                        "Selector"
                        <input name="lane-selector" placeholder="region=beijing,tier in (web,api),version>=2.1" autocomplete="off" spellcheck="false"
                            aria-invalid=move || parsed.get().is_err().to_string() aria-describedby="selector-help"
                            bind:value=selector />
                    </label>
                </div>
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
                <div class="inline-form">
                    <label>
                        "Targets (one per line)"
                        <textarea name="lane-targets" rows="3" placeholder="pod-1\npod-2" bind:value=targets></textarea>
                    </label>
                    <label>
                        "Stickiness"
                        <select name="lane-stickiness" on:change=move |ev| stickiness.set(event_target_value(&ev))>
                            <option value="client_id">"client_id (instance)"</option>
                            <option value="user_id">"user_id (request user)"</option>
                            <option value="other">"another context key…"</option>
                        </select>
                        <span class="hint">"The same value always lands in the same bucket, so raising the weight keeps everyone already inside."</span>
                    </label>
                    <Show when=move || stickiness.get() == "other">
                        <label>"Context key" <input name="lane-stickiness-key" bind:value=other_key /></label>
                    </Show>
                </div>
                <WeightControl weight label="Weight".to_string() connected />
                <div class="preview" data-testid="lane-preview" aria-live="polite">
                    <Transition>
                    {move || match preview.get().flatten() {
                        Some(p) => view! {
                            <p><strong>{format!("matches {} of {} connected instances", p.matched_count, p.connected_count)}</strong> <span class="muted">" (based on instances connected now)"</span></p>
                            <ul class="chips">{p.matched.into_iter().map(|c| view! { <li class="chip">{c}</li> }).collect_view()}</ul>
                        }.into_any(),
                        None => view! { <p class="muted">"Preview appears when the rule is valid."</p> }.into_any(),
                    }}
                    </Transition>
                </div>
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

#[component]
fn TestContext(keys: Keys) -> impl IntoView {
    let explain = ServerAction::<ExplainResolve>::new();
    let client_id = RwSignal::new(String::new());
    let user_id = RwSignal::new(String::new());
    let labels = RwSignal::new(String::new());
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
            namespace: keys.ns(),
            env: keys.env(),
            key: keys.key(),
            context,
            draft: None,
        });
    };
    view! {
        <details class="test-context">
            <summary>"Test a context"</summary>
            <div class="two-columns">
                <form class="stack" on:submit=on_submit>
                    <label>"client_id" <input name="ctx-client-id" bind:value=client_id /></label>
                    <label>"user_id" <input name="ctx-user-id" bind:value=user_id /></label>
                    <label>"Labels" <input name="ctx-labels" placeholder="region=beijing,tier=web" bind:value=labels /></label>
                    {move || labels_error.get().map(|e| view! { <p class="error">{e}</p> })}
                    <button class="btn" type="submit" disabled=move || labels_error.get().is_some()>"Which version does it get?"</button>
                </form>
                <div class="verdict" data-testid="verdict" aria-live="polite">
                    <ErrorLine error=action_error(explain) />
                    {move || explain.value().get().and_then(|r| r.ok()).map(|x| view! {
                        <p class="verdict-line"><strong>{match x.version { Some(v) => format!("Gets v{v}"), None => "Gets nothing (404)".to_string() }}</strong> " — " {x.reason.clone()}</p>
                        <table class="grid">
                            <thead><tr><th>"Lane"</th><th>"Selector"</th><th>"Bucket / threshold"</th><th>"Reason"</th></tr></thead>
                            <tbody>
                                {x.lanes.into_iter().map(|v| view! {
                                    <tr class:matched=v.matched>
                                        <td>{if v.matched { "✓ " } else { "✗ " }} "lane " {v.lane_id} " (v" {v.version} ")"</td>
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
