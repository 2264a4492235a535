//! Connected instances and rollout progress, live over server-sent events.

use crate::api::instances::list_instances;
use crate::app::components::StableBadge;
use crate::app::sentences::rollout_lines;
use crate::model::{Instance, ReportStatus, Rollout};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

/// The instances of (namespace, env): first from the server-rendered list,
/// then from the live feed, which the browser follows with an EventSource.
#[derive(Clone, Copy)]
pub struct LiveInstances {
    pub initial: Resource<Result<Vec<Instance>, crate::Error>>,
    pub live: RwSignal<Option<Vec<Instance>>>,
    pub updates: RwSignal<u32>,
    pub paused: RwSignal<bool>,
    /// Changes when an instance connects or disconnects (or reconnects with
    /// other labels) on the live feed; not when only what it runs changes.
    pub connected: Memo<Option<u64>>,
}

impl LiveInstances {
    pub fn current(&self) -> Option<Vec<Instance>> {
        self.live
            .get()
            .or_else(|| self.initial.get().and_then(|r| r.ok()))
    }
}

pub fn use_live_instances(ns: Memo<String>, env: Memo<String>) -> LiveInstances {
    let initial = Resource::new(
        move || (ns.get(), env.get()),
        |(ns, env)| list_instances(ns, env),
    );
    let live = RwSignal::new(None::<Vec<Instance>>);
    let updates = RwSignal::new(0u32);
    let paused = RwSignal::new(false);
    Effect::new(move |_| {
        let url = format!(
            "/api/v1/namespaces/{}/envs/{}/instances/stream",
            ns.get(),
            env.get()
        );
        follow(url, live, updates, paused);
    });
    let connected = Memo::new(move |_| {
        use std::hash::{Hash, Hasher};
        live.with(|list| {
            list.as_ref().map(|list| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                for instance in list.iter().filter(|i| i.connected) {
                    (&instance.client_id, &instance.labels).hash(&mut hasher);
                }
                hasher.finish()
            })
        })
    });
    LiveInstances {
        initial,
        live,
        updates,
        paused,
        connected,
    }
}

#[cfg(feature = "hydrate")]
fn follow(
    url: String,
    live: RwSignal<Option<Vec<Instance>>>,
    updates: RwSignal<u32>,
    paused: RwSignal<bool>,
) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Ok(source) = web_sys::EventSource::new(&url) else {
        return;
    };
    let on_instances =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if paused.get_untracked() {
                return;
            }
            if let Some(list) = ev
                .data()
                .as_string()
                .and_then(|t| serde_json::from_str::<Vec<Instance>>(&t).ok())
            {
                live.set(Some(list));
                updates.update(|n| *n += 1);
            }
        });
    let _ =
        source.add_event_listener_with_callback("instances", on_instances.as_ref().unchecked_ref());
    let held = StoredValue::new_local((source, on_instances));
    on_cleanup(move || held.with_value(|(source, _)| source.close()));
}

#[cfg(not(feature = "hydrate"))]
fn follow(_: String, _: RwSignal<Option<Vec<Instance>>>, _: RwSignal<u32>, _: RwSignal<bool>) {}

#[derive(Clone, Copy, PartialEq)]
enum Tab {
    Latest,
    Outdated,
    All,
}

/// An instance is outdated when some config it was served is not applied yet, or failed.
fn outdated(i: &Instance) -> bool {
    i.configs.values().any(|c| {
        c.served.is_some() && (c.applied != c.served || c.status == Some(ReportStatus::Failed))
    })
}

#[component]
pub fn InstancesPage() -> impl IntoView {
    let params = use_params_map();
    let ns = Memo::new(move |_| params.read().get("ns").unwrap_or_default());
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());
    let instances = use_live_instances(ns, env);
    let LiveInstances {
        updates, paused, ..
    } = instances;
    // `?tab=outdated` (e.g. from the banner of an aborted lane) opens that tab.
    let query = leptos_router::hooks::use_query_map();
    let tab = RwSignal::new(match query.read_untracked().get("tab").as_deref() {
        Some("outdated") => Tab::Outdated,
        Some("latest") => Tab::Latest,
        _ => Tab::All,
    });
    let instances = StoredValue::new(instances);
    let rows = move || {
        let list = instances.with_value(|i| i.current()).unwrap_or_default();
        let t = tab.get();
        list.into_iter()
            .filter(|i| match t {
                Tab::All => true,
                Tab::Outdated => outdated(i),
                Tab::Latest => !outdated(i),
            })
            .collect::<Vec<_>>()
    };
    let summary = move || {
        let list = instances.with_value(|i| i.current()).unwrap_or_default();
        let connected = list.iter().filter(|i| i.connected).count();
        format!("{connected} connected, {} listed", list.len())
    };
    let tab_button = move |t: Tab, label: &'static str| {
        view! {
            <button class=move || if tab.get() == t { "tab selected" } else { "tab" } role="tab" aria-selected=move || (tab.get() == t).to_string()
                on:click=move |_| tab.set(t)>{label}</button>
        }
    };
    view! {
        <Title text=move || format!("Instances · {} · {}", ns.get(), env.get()) />
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/" exact=true>"Namespaces"</A> " / " <A href=move || format!("/ns/{}/{}", ns.get(), env.get()) exact=true>{ns} " · " {env}</A> " / "
            <strong aria-current="page">"instances"</strong>
        </nav>
        <div class="page-head">
            <h1>"Instances"</h1>
            <div class="live">
                <span class=move || if paused.get() { "badge grey" } else { "badge blue" }>
                    {move || if paused.get() { "⏸ paused" } else { "● live" }}
                </span>
                <span class="muted" data-testid="updates">{move || format!("{} update(s) received", updates.get())}</span>
                <button class="btn" on:click=move |_| paused.update(|p| *p = !*p)>{move || if paused.get() { "Resume" } else { "Pause" }}</button>
            </div>
        </div>
        <div class="tabs" role="tablist" aria-label="Which instances">
            {tab_button(Tab::Latest, "Latest")}
            {tab_button(Tab::Outdated, "Outdated")}
            {tab_button(Tab::All, "All")}
        </div>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <p class="sr-only" aria-live="polite" data-testid="instances-summary">{summary}</p>
            {move || {
                let rows = rows();
                if rows.is_empty() {
                    view! { <p class="empty">"No instances here yet — start a subscriber (graycast agent) against this namespace and environment."</p> }.into_any()
                } else {
                    view! {
                        <table class="grid" data-testid="instances">
                            <thead><tr><th>"Client id"</th><th>"Labels"</th><th>"Configs"</th><th>"Connection"</th><th>"Last seen"</th></tr></thead>
                            <tbody>{rows.into_iter().map(|i| view! { <InstanceRow instance=i /> }).collect_view()}</tbody>
                        </table>
                    }.into_any()
                }
            }}
        </Transition>
    }
}

#[component]
fn InstanceRow(instance: Instance) -> impl IntoView {
    let labels = instance
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <tr data-client=instance.client_id.clone()>
            <td><code>{instance.client_id.clone()}</code></td>
            <td class="muted">{if labels.is_empty() { "no labels".to_string() } else { labels }}</td>
            <td>
                <ul class="instance-configs">
                    {instance.configs.into_iter().map(|(key, c)| view! {
                        <li data-key=key.clone()>
                            <code>{key.clone()}</code> " "
                            {match (c.served, c.lane) {
                                (Some(v), Some(lane)) => view! { <span class="badge violet">{format!("◐ GRAY v{v} · lane {lane}")}</span> }.into_any(),
                                (Some(v), None) => view! { <StableBadge version=v /> }.into_any(),
                                (None, _) => view! { <span class="muted">"not served"</span> }.into_any(),
                            }}
                            " "
                            {match c.status {
                                Some(ReportStatus::Applied) => view! { <span class="badge green">{format!("✓ applied v{}", c.reported.unwrap_or_default())}</span> }.into_any(),
                                Some(ReportStatus::Failed) => view! { <span class="badge red" title=c.message.clone().unwrap_or_default()>{format!("✕ failed v{}: {}", c.reported.unwrap_or_default(), c.message.clone().unwrap_or_default())}</span> }.into_any(),
                                None => view! { <span class="muted">"no report"</span> }.into_any(),
                            }}
                        </li>
                    }).collect_view()}
                </ul>
            </td>
            <td>
                {if instance.connected {
                    view! { <span class="badge green">"● connected"</span> }.into_any()
                } else {
                    view! { <span class="badge grey">"○ disconnected"</span> }.into_any()
                }}
                <span class="muted">" since " {instance.connected_at.clock()}</span>
            </td>
            <td class="muted">{instance.last_seen.clock()}</td>
        </tr>
    }
}

/// Rollout progress of one config, counted by the server: how many connected
/// instances run stable and each lane (among the instances the lane's selector
/// makes eligible), applied against failed — live.
#[component]
pub fn RolloutProgress(
    /// As the page loaded it.
    initial: Rollout,
    /// As the live feed last updated it (owned by the page, which outlives this view).
    now: RwSignal<Option<Rollout>>,
    ns: String,
    env: String,
) -> impl IntoView {
    let current = move || now.get().unwrap_or_else(|| initial.clone());
    let total = {
        let current = current.clone();
        move || format!("{} connected instance(s)", current().connected)
    };
    let items = move || {
        rollout_lines(&current())
            .into_iter()
            .map(|l| view! { <li>{l}</li> })
            .collect_view()
    };
    view! {
        <section class="card rollout" aria-labelledby="rollout-title">
            <h2 id="rollout-title">"Rollout progress"</h2>
            <p class="muted">{total} " · " <A href=format!("/instances/{ns}/{env}")>"all instances"</A></p>
            <ul data-testid="rollout" aria-live="polite">{items}</ul>
        </section>
    }
}
