//! Connected instances and rollout progress, live over server-sent events.

use crate::api::instances::list_instances;
use crate::app::components::StableBadge;
use crate::app::sentences::rollout_lines;
use crate::domain::selector::Selector;
use crate::model::{Instance, InstanceConfig, InstancePage, ReportStatus, Rollout};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
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

/// The instances page's tabs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Tab {
    Latest,
    Outdated,
    Failed,
    #[default]
    All,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::Latest, Tab::Outdated, Tab::Failed, Tab::All];

    fn parse(word: &str) -> Tab {
        match word {
            "latest" => Tab::Latest,
            "outdated" => Tab::Outdated,
            "failed" => Tab::Failed,
            _ => Tab::All,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Tab::Latest => "latest",
            Tab::Outdated => "outdated",
            Tab::Failed => "failed",
            Tab::All => "all",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tab::Latest => "Latest",
            Tab::Outdated => "Outdated",
            Tab::Failed => "Failed",
            Tab::All => "All",
        }
    }
}

/// What the instances page shows: its tab and filters, all kept in the URL's query so a link
/// (e.g. an abort banner's "Failing instances") can be shared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub tab: Tab,
    /// Only this config key (and only its state counts for the tab and the version).
    pub key: Option<String>,
    /// Only instances served, applying or failing this version.
    pub version: Option<i64>,
    /// A label selector over the instance's labels and client id.
    pub labels: Option<String>,
    /// Only connected (`Some(true)`) or disconnected ones.
    pub connected: Option<bool>,
}

impl Filter {
    /// Reads `tab`, `key`, `version`, `labels` and `state` from the URL's query.
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> Filter {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Filter {
            tab: get("tab").map(|t| Tab::parse(&t)).unwrap_or_default(),
            key: get("key"),
            version: get("version").and_then(|v| v.trim_start_matches('v').parse().ok()),
            labels: get("labels"),
            connected: match get("state").as_deref() {
                Some("connected") => Some(true),
                Some("disconnected") => Some(false),
                _ => None,
            },
        }
    }

    /// The page's URL with this filter.
    pub fn href(&self, ns: &str, env: &str) -> String {
        let mut pairs = Vec::new();
        if self.tab != Tab::All {
            pairs.push(("tab", self.tab.word().to_string()));
        }
        if let Some(key) = &self.key {
            pairs.push(("key", key.clone()));
        }
        if let Some(version) = self.version {
            pairs.push(("version", version.to_string()));
        }
        if let Some(labels) = &self.labels {
            pairs.push(("labels", labels.clone()));
        }
        if let Some(connected) = self.connected {
            let state = if connected {
                "connected"
            } else {
                "disconnected"
            };
            pairs.push(("state", state.to_string()));
        }
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::domain::percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let base = format!("/instances/{ns}/{env}");
        if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        }
    }

    /// Whether `i` is shown; `selector` is `labels` parsed (an invalid one filters nothing).
    pub fn matches(&self, i: &Instance, selector: Option<&Selector>) -> bool {
        if self.connected.is_some_and(|c| c != i.connected) {
            return false;
        }
        if let Some(selector) = selector {
            let mut context = i.labels.clone();
            context.insert("client_id".into(), i.client_id.clone());
            if !selector.matches(&context) {
                return false;
            }
        }
        let configs: Vec<&InstanceConfig> = match &self.key {
            Some(key) => match i.configs.get(key) {
                Some(c) => vec![c],
                None => return false,
            },
            None => i.configs.values().collect(),
        };
        if let Some(v) = self.version {
            let about = |c: &&InstanceConfig| {
                c.served == Some(v)
                    || c.applied == Some(v)
                    || c.failure.as_ref().is_some_and(|f| f.version == v)
            };
            if !configs.iter().any(about) {
                return false;
            }
        }
        match self.tab {
            Tab::All => true,
            Tab::Outdated => configs.iter().any(|c| outdated(c)),
            Tab::Latest => !configs.iter().any(|c| outdated(c)),
            Tab::Failed => configs.iter().any(|c| failing(c)),
        }
    }
}

/// A config an instance was served but has not applied yet, or failed to.
fn outdated(c: &InstanceConfig) -> bool {
    c.served.is_some() && (c.applied != c.served || c.status == Some(ReportStatus::Failed))
}

/// A config whose last report failed, or whose failure stands (the instance has applied no
/// version as new since, e.g. it is back on stable after an abort).
fn failing(c: &InstanceConfig) -> bool {
    c.status == Some(ReportStatus::Failed) || c.failure.is_some()
}

/// Client ids in natural order: runs of digits compare as numbers (`pod-2` before `pod-10`).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn runs(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut digits = None;
        for (i, c) in s.char_indices() {
            let d = c.is_ascii_digit();
            if digits.is_some_and(|was| was != d) {
                out.push((digits.unwrap_or(false), &s[start..i]));
                start = i;
            }
            digits = Some(d);
        }
        if let Some(d) = digits {
            out.push((d, &s[start..]));
        }
        out
    }
    let (ra, rb) = (runs(a), runs(b));
    for (x, y) in ra.iter().zip(&rb) {
        let order = match (x, y) {
            ((true, x), (true, y)) => {
                let (tx, ty) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    // Equal runs: the shorter first, then byte order (`pod-01` and `pod-1` stay apart).
    ra.len().cmp(&rb.len()).then_with(|| a.cmp(b))
}

#[component]
pub fn InstancesPage() -> impl IntoView {
    let params = use_params_map();
    let ns = Memo::new(move |_| params.read().get("ns").unwrap_or_default());
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());
    let instances = use_live_instances(ns, env);
    // Paused, the page shows what it showed then; the feed's changes still arrive.
    let frozen = RwSignal::new(None::<Loaded>);
    let query = use_query_map();
    let filter = Memo::new(move |_| Filter::from_query(|name| query.read().get(name)));
    let selector =
        Memo::new(move |_| filter.with(|f| f.labels.as_deref().map(Selector::parse_input)));
    let instances = StoredValue::new(instances);
    let shown = move || {
        frozen
            .get()
            .or_else(|| instances.with_value(|i| i.current()))
            .unwrap_or_default()
    };
    let rows = move || {
        let f = filter.get();
        let selector = selector.get().and_then(Result::ok);
        let mut list = shown()
            .list()
            .into_iter()
            .filter(|i| f.matches(i, selector.as_ref()))
            .collect::<Vec<_>>();
        list.sort_by(|a, b| natural_cmp(&a.client_id, &b.client_id));
        list
    };
    let summary = {
        move || {
            let shown = shown();
            let connected = shown.instances.values().filter(|i| i.connected).count();
            let more = if shown.next_after.is_some() {
                " (more below)"
            } else {
                ""
            };
            format!(
                "{connected} connected, {} listed{more}, {} shown",
                shown.instances.len(),
                rows().len()
            )
        }
    };
    // The next page of the list, after the last one loaded.
    let loading_more = RwSignal::new(false);
    let more_error = RwSignal::new(None::<String>);
    let tab_link = move |t: Tab| {
        view! {
            <A href=move || Filter { tab: t, ..filter.get() }.href(&ns.get(), &env.get())
                attr:class=move || if filter.with(|f| f.tab) == t { "tab selected" } else { "tab" }
                attr:role="tab" attr:aria-selected=move || (filter.with(|f| f.tab) == t).to_string()>
                {t.label()}
            </A>
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
            <LiveStatus instances frozen />
        </div>
        <FilterForm ns env filter selector />
        <div class="tabs" role="tablist" aria-label="Which instances">
            {Tab::ALL.into_iter().map(tab_link).collect_view()}
        </div>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <p class="sr-only" aria-live="polite" data-testid="instances-summary">{summary}</p>
            {move || {
                let rows = rows();
                let filtered = filter.with(|f| *f != Filter::default());
                if rows.is_empty() && filtered && !shown().instances.is_empty() {
                    view! { <p class="empty">"No instances match these filters."</p> }.into_any()
                } else if rows.is_empty() {
                    view! { <p class="empty">"No instances here yet — start a subscriber (graycast agent) against this namespace and environment."</p> }.into_any()
                } else {
                    let key = filter.with(|f| f.key.clone());
                    view! {
                        <table class="grid" data-testid="instances">
                            <thead><tr><th>"Client id"</th><th>"Labels"</th><th>"Configs"</th><th>"Connection"</th><th>"Last seen"</th></tr></thead>
                            <tbody>{rows.into_iter().map(|i| view! { <InstanceRow instance=i key=key.clone() /> }).collect_view()}</tbody>
                        </table>
                    }.into_any()
                }
            }}
            <Show when=move || shown().next_after.is_some()>
                <MorePages instances ns env loading_more more_error />
            </Show>
        </Transition>
    }
}

/// Live or paused, how fresh the list is, and the button that pauses it.
#[component]
fn LiveStatus(
    instances: StoredValue<LiveInstances>,
    /// What the page shows while paused.
    frozen: RwSignal<Option<Loaded>>,
) -> impl IntoView {
    let updates = instances.with_value(|i| i.updates);
    let paused = Memo::new(move |_| frozen.with(Option::is_some));
    // Seconds since the live feed last said something changed (`None` before it first did);
    // while paused, since the page was paused.
    let since_update = RwSignal::new(None::<u64>);
    Effect::new(move |_| {
        if updates.get() > 0 && !paused.get_untracked() {
            since_update.set(Some(0));
        }
    });
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                since_update.try_update(|s| {
                    if let Some(s) = s {
                        *s += 1
                    }
                });
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
    let freshness = move || match since_update.get() {
        None => "waiting for the live feed".to_string(),
        Some(s) if paused.get() => format!("paused; last updated {s} s ago"),
        Some(s) => format!("updated {s} s ago"),
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
    view! {
        <div class="live">
            <span class=move || if paused.get() { "badge grey" } else { "badge blue" }>
                {move || if paused.get() { "⏸ paused" } else { "● live" }}
            </span>
            <span class="muted" data-testid="updated">{freshness}</span>
            <span class="muted" data-testid="updates">{move || format!("{} update(s) received", updates.get())}</span>
            <button class="btn" on:click=pause>{move || if paused.get() { "Resume" } else { "Pause" }}</button>
        </div>
    }
}

/// The filter form: it shows the filter of the URL; applying it changes the URL.
#[component]
fn FilterForm(
    ns: Memo<String>,
    env: Memo<String>,
    filter: Memo<Filter>,
    selector: Memo<Option<Result<Selector, crate::domain::selector::SelectorError>>>,
) -> impl IntoView {
    let (key, version, labels, state) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    Effect::new(move |_| {
        let f = filter.get();
        key.set(f.key.unwrap_or_default());
        version.set(f.version.map(|v| v.to_string()).unwrap_or_default());
        labels.set(f.labels.unwrap_or_default());
        state.set(match f.connected {
            Some(true) => "connected".into(),
            Some(false) => "disconnected".into(),
            None => String::new(),
        });
    });
    let navigate = use_navigate();
    let on_filter = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let f = Filter::from_query(|name| {
            Some(match name {
                "tab" => filter.with_untracked(|f| f.tab.word().to_string()),
                "key" => key.get_untracked(),
                "version" => version.get_untracked(),
                "labels" => labels.get_untracked(),
                "state" => state.get_untracked(),
                _ => return None,
            })
        });
        navigate(
            &f.href(&ns.get_untracked(), &env.get_untracked()),
            Default::default(),
        );
    };
    let selector_error = move || selector.get().and_then(Result::err).map(|e| e.to_string());
    view! {
        <form class="card inline-form instance-filters" role="search" aria-label="Filter instances" on:submit=on_filter>
            <label>"Config key" <input name="filter-key" placeholder="app.json" bind:value=key /></label>
            <label>"Version" <input name="filter-version" inputmode="numeric" placeholder="5" bind:value=version /></label>
            <label class="grow">"Labels" <input name="filter-labels" placeholder="region=beijing" aria-describedby="labels-error" bind:value=labels /></label>
            <label>
                "Connection"
                <select name="filter-state" on:change=move |ev| state.set(event_target_value(&ev)) prop:value=state>
                    <option value="">"any"</option>
                    <option value="connected">"connected"</option>
                    <option value="disconnected">"disconnected"</option>
                </select>
            </label>
            <button class="btn primary" type="submit">"Filter"</button>
            <span id="labels-error" class="error">{selector_error}</span>
        </form>
    }
}

/// "Show more": the next page of the list, after the last one loaded.
#[component]
fn MorePages(
    instances: StoredValue<LiveInstances>,
    ns: Memo<String>,
    env: Memo<String>,
    loading_more: RwSignal<bool>,
    more_error: RwSignal<Option<String>>,
) -> impl IntoView {
    let live = instances.with_value(|i| i.live);
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
    view! {
        <p class="more">
            <button class="btn" data-testid="more-instances" disabled=move || loading_more.get() on:click=show_more>
                {move || if loading_more.get() { "Loading…" } else { "Show more" }}
            </button>
            {move || more_error.get().map(|e| view! { <span class="error" role="alert">" " {e}</span> })}
        </p>
    }
}

#[component]
fn InstanceRow(
    instance: Instance,
    /// Only this config is listed (the page's key filter).
    key: Option<String>,
) -> impl IntoView {
    let labels = instance
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let configs = instance
        .configs
        .into_iter()
        .filter(|(k, _)| key.as_ref().is_none_or(|only| only == k));
    view! {
        <tr data-client=instance.client_id.clone()>
            <td><code>{instance.client_id.clone()}</code></td>
            <td class="muted">{if labels.is_empty() { "no labels".to_string() } else { labels }}</td>
            <td>
                <ul class="instance-configs">
                    {configs.map(|(key, c)| view! {
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
                                Some(ReportStatus::Failed) => view! { <span class="badge red" data-testid="failure">{format!("✕ failed v{}: {}", c.reported.unwrap_or_default(), c.message.clone().unwrap_or_default())}</span> }.into_any(),
                                None => view! { <span class="muted">"no report"</span> }.into_any(),
                            }}
                            // A failure the last report no longer shows (e.g. back on stable after an abort).
                            {c.failure.clone().filter(|_| c.status != Some(ReportStatus::Failed)).map(|f| view! {
                                " "
                                <span class="badge red" data-testid="failure">
                                    {format!("✕ failed v{} at {}: {}", f.version, f.at.minutes(), f.message.unwrap_or_else(|| "no message".into()))}
                                </span>
                            })}
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
    fn client_ids_sort_naturally() {
        let mut ids = vec![
            "pod-10", "pod-2", "pod-1", "pod-11", "api-3", "pod-1a", "pod-01",
        ];
        ids.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            ids,
            ["api-3", "pod-01", "pod-1", "pod-1a", "pod-2", "pod-10", "pod-11"]
        );
        assert_eq!(natural_cmp("a", "a"), std::cmp::Ordering::Equal);
        assert_eq!(natural_cmp("", "a"), std::cmp::Ordering::Less);
    }

    fn with_config(client_id: &str, key: &str, config: InstanceConfig) -> Instance {
        let mut i = instance(client_id, true);
        i.configs.insert(key.into(), config);
        i
    }

    #[test]
    fn the_failed_tab_shows_failures_that_stand_also_back_on_stable() {
        let at = crate::model::Timestamp::from_unix_ms(0).unwrap();
        // Failed v5, the lane was aborted, it applied stable v3 since.
        let back_on_stable = with_config(
            "pod-7",
            "app.json",
            InstanceConfig {
                served: Some(3),
                applied: Some(3),
                status: Some(ReportStatus::Applied),
                reported: Some(3),
                failure: Some(crate::model::Failure {
                    version: 5,
                    message: Some("nginx: [emerg]".into()),
                    at,
                }),
                ..Default::default()
            },
        );
        let healthy = with_config(
            "pod-8",
            "app.json",
            InstanceConfig {
                served: Some(3),
                applied: Some(3),
                status: Some(ReportStatus::Applied),
                reported: Some(3),
                ..Default::default()
            },
        );
        let url = "/instances/shop/prod?tab=failed&key=app.json";
        let query: BTreeMap<&str, &str> = [("tab", "failed"), ("key", "app.json")].into();
        let failed = Filter::from_query(|n| query.get(n).map(|v| v.to_string()));
        assert_eq!(failed.href("shop", "prod"), url);
        assert!(failed.matches(&back_on_stable, None));
        assert!(!failed.matches(&healthy, None));
        // Another key: not about this one.
        let other = Filter {
            key: Some("other.json".into()),
            ..failed.clone()
        };
        assert!(!other.matches(&back_on_stable, None));
        // The version filter knows the failed version too.
        let v5 = Filter {
            tab: Tab::All,
            version: Some(5),
            ..Default::default()
        };
        assert!(v5.matches(&back_on_stable, None));
        assert!(!v5.matches(&healthy, None));
    }

    #[test]
    fn labels_state_and_the_url_round_trip() {
        let mut i = instance("pod-1", false);
        i.labels.insert("region".into(), "beijing".into());
        let f = Filter {
            tab: Tab::Outdated,
            labels: Some("region=beijing".into()),
            connected: Some(false),
            version: Some(2),
            key: None,
        };
        let href = f.href("shop", "dev");
        assert_eq!(
            href,
            "/instances/shop/dev?tab=outdated&version=2&labels=region%3Dbeijing&state=disconnected"
        );
        let query: BTreeMap<&str, &str> = [
            ("tab", "outdated"),
            ("version", "2"),
            ("labels", "region=beijing"),
            ("state", "disconnected"),
        ]
        .into();
        assert_eq!(
            Filter::from_query(|n| query.get(n).map(|v| v.to_string())),
            f
        );
        let any = Filter::default();
        let beijing = Selector::parse("region=beijing").unwrap();
        let shanghai = Selector::parse("region=shanghai").unwrap();
        assert!(any.matches(&i, Some(&beijing)));
        assert!(!any.matches(&i, Some(&shanghai)));
        assert!(any.matches(&i, Some(&Selector::parse("client_id=pod-1").unwrap())));
        let connected = Filter {
            connected: Some(true),
            ..Default::default()
        };
        assert!(!connected.matches(&i, None));
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
