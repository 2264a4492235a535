//! Connected instances and rollout progress, live over server-sent events.

use crate::api::instances::list_instances;
use crate::app::components::StableBadge;
use crate::app::sentences::rollout_lines;
use crate::model::{Instance, InstancePage, ReportStatus, Rollout};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use std::collections::BTreeMap;

/// The instances a page holds: the pages of the list it loaded, kept up to date by the live
/// feed's changes. Only changes within the loaded pages are kept; an instance further on in
/// the list shows when its page is loaded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// By client id, the list's order.
    pub instances: BTreeMap<String, Instance>,
    /// The last client id of the pages loaded; `None` once the last page is.
    pub next_after: Option<String>,
}

impl Loaded {
    pub fn new(page: InstancePage) -> Self {
        let mut loaded = Loaded::default();
        loaded.add_page(page);
        loaded
    }

    /// The next page of the list arrived.
    pub fn add_page(&mut self, page: InstancePage) {
        for instance in page.instances {
            self.instances.insert(instance.client_id.clone(), instance);
        }
        self.next_after = page.next_after;
    }

    #[cfg(any(feature = "hydrate", test))]
    /// Whether `client_id` falls within the pages loaded.
    fn covers(&self, client_id: &str) -> bool {
        self.next_after
            .as_deref()
            .is_none_or(|last| client_id <= last)
    }

    #[cfg(any(feature = "hydrate", test))]
    /// An instance as it is now, from the live feed.
    pub fn update(&mut self, instance: Instance) {
        if self.covers(&instance.client_id) {
            self.instances.insert(instance.client_id.clone(), instance);
        }
    }

    #[cfg(any(feature = "hydrate", test))]
    /// An instance forgotten after the retention period.
    pub fn remove(&mut self, client_id: &str) {
        self.instances.remove(client_id);
    }

    pub fn list(&self) -> Vec<Instance> {
        self.instances.values().cloned().collect()
    }
}

/// The instances of (namespace, env): first the server-rendered first page, then the live
/// feed, which the browser follows with an EventSource.
#[derive(Clone, Copy)]
pub struct LiveInstances {
    pub initial: Resource<Result<InstancePage, crate::Error>>,
    /// The feed's first page with the changes since (and the pages loaded after it).
    pub live: RwSignal<Option<Loaded>>,
    /// Counts the feed's events (at most one count per tenth of a second): each says
    /// something in the namespace and environment changed.
    pub updates: RwSignal<u32>,
    /// Changes when an instance connects or disconnects (or reconnects with other labels)
    /// on the live feed; not when only what it runs changes.
    pub connected: Memo<Option<u64>>,
}

impl LiveInstances {
    pub fn current(&self) -> Option<Loaded> {
        self.live
            .get()
            .or_else(|| self.initial.get().and_then(|r| r.ok()).map(Loaded::new))
    }
}

pub fn use_live_instances(ns: Memo<String>, env: Memo<String>) -> LiveInstances {
    let initial = Resource::new(
        move || (ns.get(), env.get()),
        |(ns, env)| list_instances(ns, env, None),
    );
    let live = RwSignal::new(None::<Loaded>);
    let updates = RwSignal::new(0u32);
    let connected_changes = RwSignal::new(None::<u64>);
    Effect::new(move |_| {
        let url = format!(
            "/api/v1/namespaces/{}/envs/{}/instances/stream",
            ns.get(),
            env.get()
        );
        follow(url, live, updates, connected_changes);
    });
    LiveInstances {
        initial,
        live,
        updates,
        connected: Memo::new(move |_| connected_changes.get()),
    }
}

/// What the feed last said of each instance's connection and labels (a hash of them), for
/// every instance it told of: whether an event changes who is connected.
#[cfg(any(feature = "hydrate", test))]
#[derive(Default)]
struct Connections(std::collections::HashMap<String, u64>);

#[cfg(any(feature = "hydrate", test))]
impl Connections {
    fn fingerprint(instance: &Instance) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (instance.connected, &instance.labels).hash(&mut hasher);
        hasher.finish()
    }

    /// Records `instance`; whether who is connected (or their labels) changed.
    fn record(&mut self, instance: &Instance) -> bool {
        let now = Self::fingerprint(instance);
        match self.0.insert(instance.client_id.clone(), now) {
            Some(before) => before != now,
            None => instance.connected,
        }
    }
}

#[cfg(feature = "hydrate")]
fn follow(
    url: String,
    live: RwSignal<Option<Loaded>>,
    updates: RwSignal<u32>,
    connected: RwSignal<Option<u64>>,
) {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Ok(source) = web_sys::EventSource::new(&url) else {
        return;
    };
    // A release hands versions to many instances at once, an event each: who counts
    // `updates` (and asks the server again) hears of them once.
    let counting = Rc::new(Cell::new(false));
    let count = move || {
        if !counting.replace(true) {
            let counting = counting.clone();
            set_timeout(
                move || {
                    counting.set(false);
                    updates.try_update(|n| *n += 1);
                },
                std::time::Duration::from_millis(100),
            );
        }
    };
    let connections = Rc::new(RefCell::new(Connections::default()));
    let bump = move || connected.try_update(|c| *c = Some(c.map_or(0, |n| n + 1)));
    let on = |mut handle: Box<dyn FnMut(String)>| {
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(text) = ev.data().as_string() {
                handle(text);
            }
        })
    };
    let first_page = {
        let (count, connections) = (count.clone(), connections.clone());
        on(Box::new(move |text| {
            if let Ok(page) = serde_json::from_str::<InstancePage>(&text) {
                let mut seen = Connections::default();
                for instance in &page.instances {
                    seen.record(instance);
                }
                *connections.borrow_mut() = seen;
                live.set(Some(Loaded::new(page)));
                bump();
                count();
            }
        }))
    };
    let instance = {
        let (count, connections) = (count.clone(), connections.clone());
        on(Box::new(move |text| {
            if let Ok(instance) = serde_json::from_str::<Instance>(&text) {
                if connections.borrow_mut().record(&instance) {
                    bump();
                }
                live.update(|l| {
                    if let Some(l) = l {
                        l.update(instance)
                    }
                });
                count();
            }
        }))
    };
    let removed = {
        let count = count.clone();
        on(Box::new(move |text| {
            #[derive(serde::Deserialize)]
            struct Removed {
                client_id: String,
            }
            if let Ok(gone) = serde_json::from_str::<Removed>(&text) {
                connections.borrow_mut().0.remove(&gone.client_id);
                live.update(|l| {
                    if let Some(l) = l {
                        l.remove(&gone.client_id)
                    }
                });
                count();
            }
        }))
    };
    let changed = on(Box::new(move |_| count()));
    for (name, handler) in [
        ("instances", &first_page),
        ("instance", &instance),
        ("removed", &removed),
        ("changed", &changed),
    ] {
        let _ = source.add_event_listener_with_callback(name, handler.as_ref().unchecked_ref());
    }
    let held = StoredValue::new_local((source, [first_page, instance, removed, changed]));
    on_cleanup(move || held.with_value(|(source, _)| source.close()));
}

#[cfg(not(feature = "hydrate"))]
fn follow(_: String, _: RwSignal<Option<Loaded>>, _: RwSignal<u32>, _: RwSignal<Option<u64>>) {}

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
    let LiveInstances { updates, live, .. } = instances;
    // Paused, the page shows what it showed then; the feed's changes still arrive.
    let frozen = RwSignal::new(None::<Loaded>);
    let paused = Memo::new(move |_| frozen.with(Option::is_some));
    // `?tab=outdated` (e.g. from the banner of an aborted lane) opens that tab.
    let query = leptos_router::hooks::use_query_map();
    let tab = RwSignal::new(match query.read_untracked().get("tab").as_deref() {
        Some("outdated") => Tab::Outdated,
        Some("latest") => Tab::Latest,
        _ => Tab::All,
    });
    let instances = StoredValue::new(instances);
    let shown = move || {
        frozen
            .get()
            .or_else(|| instances.with_value(|i| i.current()))
            .unwrap_or_default()
    };
    let rows = move || {
        let t = tab.get();
        shown()
            .list()
            .into_iter()
            .filter(|i| match t {
                Tab::All => true,
                Tab::Outdated => outdated(i),
                Tab::Latest => !outdated(i),
            })
            .collect::<Vec<_>>()
    };
    let summary = move || {
        let shown = shown();
        let connected = shown.instances.values().filter(|i| i.connected).count();
        let more = if shown.next_after.is_some() {
            " (more below)"
        } else {
            ""
        };
        format!(
            "{connected} connected, {} listed{more}",
            shown.instances.len()
        )
    };
    let pause = move |_| {
        if frozen.with_untracked(Option::is_some) {
            frozen.set(None);
        } else {
            frozen.set(Some(
                instances.with_value(|i| i.current()).unwrap_or_default(),
            ));
        }
    };
    // The next page of the list, after the last one loaded.
    let loading_more = RwSignal::new(false);
    let more_error = RwSignal::new(None::<String>);
    let show_more = move |_| {
        let Some(loaded) = instances.with_value(|i| i.current()) else {
            return;
        };
        let Some(after) = loaded.next_after.clone() else {
            return;
        };
        loading_more.set(true);
        let (ns, env) = (ns.get_untracked(), env.get_untracked());
        leptos::task::spawn_local(async move {
            let answer = list_instances(ns, env, Some(after.clone())).await;
            loading_more.try_set(false);
            match answer {
                Ok(page) => {
                    more_error.try_set(None);
                    live.try_update(|l| {
                        let l = l.get_or_insert(loaded);
                        // Unless the feed started over meanwhile, this page follows the last.
                        if l.next_after.as_deref() == Some(after.as_str()) {
                            l.add_page(page);
                        }
                    });
                }
                Err(e) => {
                    more_error.try_set(Some(e.message));
                }
            }
        });
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
                <button class="btn" on:click=pause>{move || if paused.get() { "Resume" } else { "Pause" }}</button>
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
            <Show when=move || shown().next_after.is_some()>
                <p class="more">
                    <button class="btn" data-testid="more-instances" disabled=move || loading_more.get() on:click=show_more>
                        {move || if loading_more.get() { "Loading…" } else { "Show more" }}
                    </button>
                    {move || more_error.get().map(|e| view! { <span class="error" role="alert">" " {e}</span> })}
                </p>
            </Show>
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

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(client_id: &str, connected: bool) -> Instance {
        Instance {
            client_id: client_id.into(),
            labels: BTreeMap::new(),
            connected,
            connected_at: crate::model::Timestamp::from_unix_ms(0).unwrap(),
            last_seen: crate::model::Timestamp::from_unix_ms(0).unwrap(),
            configs: BTreeMap::new(),
        }
    }

    fn page(ids: &[&str], next_after: Option<&str>) -> InstancePage {
        InstancePage {
            instances: ids.iter().map(|id| instance(id, true)).collect(),
            next_after: next_after.map(str::to_string),
        }
    }

    fn ids(loaded: &Loaded) -> Vec<&str> {
        loaded.instances.keys().map(String::as_str).collect()
    }

    #[test]
    fn changes_are_kept_within_the_pages_loaded() {
        let mut loaded = Loaded::new(page(&["pod-1", "pod-3"], Some("pod-3")));
        loaded.update(instance("pod-2", true));
        // Past the last page loaded: it shows when its page is loaded.
        loaded.update(instance("pod-4", true));
        assert_eq!(ids(&loaded), ["pod-1", "pod-2", "pod-3"]);
        loaded.update(instance("pod-3", false));
        assert!(!loaded.instances["pod-3"].connected);
        loaded.remove("pod-1");
        loaded.add_page(page(&["pod-4", "pod-5"], None));
        assert_eq!(ids(&loaded), ["pod-2", "pod-3", "pod-4", "pod-5"]);
        // Every page loaded: a new instance anywhere shows.
        loaded.update(instance("pod-9", true));
        assert_eq!(ids(&loaded).last(), Some(&"pod-9"));
    }

    #[test]
    fn only_connects_disconnects_and_new_labels_change_who_is_connected() {
        let mut seen = Connections::default();
        assert!(
            seen.record(&instance("pod-1", true)),
            "a new connected instance"
        );
        assert!(
            !seen.record(&instance("pod-2", false)),
            "a new disconnected one"
        );
        let mut reported = instance("pod-1", true);
        reported
            .configs
            .insert("app.json".into(), Default::default());
        assert!(
            !seen.record(&reported),
            "what it runs changed, not who is connected"
        );
        let mut relabelled = instance("pod-1", true);
        relabelled.labels.insert("zone".into(), "a".into());
        assert!(seen.record(&relabelled));
        assert!(seen.record(&instance("pod-2", true)));
        assert!(seen.record(&instance("pod-2", false)));
    }
}
