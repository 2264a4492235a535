use crate::api::audit::{audit_actors, search_audit};
use crate::api::configs::diff_versions;
use crate::app::components::DiffView;
use crate::app::sentences::{audit_raw, audit_sentence};
use crate::model::{AuditAction, AuditEntry, AuditQuery, ConfigPath};
use crate::Error;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use serde_json::Value;

/// The audit trail: full-text search plus filters, newest first, as sentences.
/// The query lives in the URL, so a config page can link to its own history.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = url_query();
    let page = Resource::new(move || query.get(), search_audit);
    let actors = Resource::new(|| (), |_| audit_actors());
    let filters = Filters::new();
    // The form shows the query of the URL.
    Effect::new(move |_| filters.show(query.get()));
    view! {
        <Title text="Audit" />
        <h1>"Audit trail"</h1>
        <SearchForm filters actors />
        <Results filters page />
    }
}

/// The search the URL asks for.
fn url_query() -> Memo<AuditQuery> {
    let query_map = use_query_map();
    let param = move |name: &str| query_map.read().get(name).filter(|v| !v.is_empty());
    Memo::new(move |_| AuditQuery {
        q: param("q"),
        actor: param("actor"),
        action: param("action"),
        namespace: param("namespace"),
        env: param("env"),
        since: param("since"),
        until: param("until"),
        limit: None,
        before_id: param("before_id").and_then(|v| v.parse().ok()),
        trace_id: param("trace_id"),
    })
}

/// The search form's fields as typed, until a search puts them into the URL.
#[derive(Clone, Copy)]
struct Filters {
    q: RwSignal<String>,
    actor: RwSignal<String>,
    action: RwSignal<String>,
    namespace: RwSignal<String>,
    env: RwSignal<String>,
    since: RwSignal<String>,
    until: RwSignal<String>,
    trace_id: RwSignal<String>,
}

impl Filters {
    fn new() -> Self {
        let field = || RwSignal::new(String::new());
        Filters {
            q: field(),
            actor: field(),
            action: field(),
            namespace: field(),
            env: field(),
            since: field(),
            until: field(),
            trace_id: field(),
        }
    }

    /// Fills the fields from `query`.
    fn show(&self, query: AuditQuery) {
        self.q.set(query.q.unwrap_or_default());
        self.actor.set(query.actor.unwrap_or_default());
        self.action.set(query.action.unwrap_or_default());
        self.namespace.set(query.namespace.unwrap_or_default());
        self.env.set(query.env.unwrap_or_default());
        self.since.set(query.since.unwrap_or_default());
        self.until.set(query.until.unwrap_or_default());
        self.trace_id.set(query.trace_id.unwrap_or_default());
    }

    /// The page's URL for the search the fields hold, from the entries older than `before_id`.
    fn url(&self, before_id: Option<i64>) -> String {
        let pairs = [
            ("q", self.q.get_untracked()),
            ("actor", self.actor.get_untracked()),
            ("action", self.action.get_untracked()),
            ("namespace", self.namespace.get_untracked()),
            ("env", self.env.get_untracked()),
            ("since", self.since.get_untracked()),
            ("until", self.until.get_untracked()),
            ("trace_id", self.trace_id.get_untracked()),
            (
                "before_id",
                before_id.map(|b| b.to_string()).unwrap_or_default(),
            ),
        ];
        let query = pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", crate::domain::percent_encode(v.trim())))
            .collect::<Vec<_>>()
            .join("&");
        format!("/audit?{query}")
    }

    /// Searches for what the fields hold (from the entries older than `before_id`).
    fn search(&self, navigate: &impl Fn(&str, NavigateOptions), before_id: Option<i64>) {
        navigate(&self.url(before_id), Default::default());
    }

    /// Sets `field` to a picked value and searches at once, as a search would.
    fn pick(
        &self,
        navigate: &impl Fn(&str, NavigateOptions),
        field: RwSignal<String>,
        value: String,
    ) {
        field.set(value);
        self.search(navigate, None);
    }
}

/// The words to search for and the filters; a picked actor or action applies at once.
#[component]
fn SearchForm(filters: Filters, actors: Resource<Result<Vec<String>, Error>>) -> impl IntoView {
    let navigate = use_navigate();
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        filters.search(&navigate, None);
    };
    view! {
        <form class="card stack" role="search" on:submit=on_search>
            <div class="inline-form">
                <label class="grow">"Search" <input type="search" name="q" placeholder="words as shown: rolled back, promoted, a key, a message" bind:value=filters.q /></label>
                <button class="btn primary" type="submit">"Search"</button>
            </div>
            <div class="inline-form">
                <Transition fallback=|| view! { <label>"Actor" <select name="actor" disabled=true><option>"anyone"</option></select></label> }>
                    <ActorPicker filters actors />
                </Transition>
                <ActionPicker filters />
                <label>"Namespace" <input name="namespace" bind:value=filters.namespace /></label>
                <label>"Environment" <input name="env" bind:value=filters.env /></label>
                <label>"Since" <input name="since" placeholder="2026-11-01" bind:value=filters.since /></label>
                <label>"Until" <input name="until" placeholder="2026-12-01" bind:value=filters.until /></label>
                <label>"Trace id" <input name="trace_id" placeholder="32 hex digits" bind:value=filters.trace_id /></label>
            </div>
        </form>
    }
}

/// The actors that wrote entries (loaded with the page), and the one in force.
#[component]
fn ActorPicker(filters: Filters, actors: Resource<Result<Vec<String>, Error>>) -> impl IntoView {
    let navigate = use_navigate();
    let actor = filters.actor;
    move || {
        let navigate = navigate.clone();
        Suspend::new(async move {
            let mut known = actors.await.unwrap_or_default();
            // An actor from the URL that the list does not hold (a name typed at a failed
            // sign-in) is still shown as the filter in force.
            let current = actor.get_untracked();
            if !current.is_empty() && !known.contains(&current) {
                known.push(current);
            }
            view! {
                <label>
                    "Actor"
                    <select name="actor" on:change=move |ev| filters.pick(&navigate, actor, event_target_value(&ev))>
                        <option value="" selected=move || actor.get().is_empty()>"anyone"</option>
                        {known.into_iter().map(|name| {
                            let value = name.clone();
                            view! { <option value=name.clone() selected=move || actor.get() == value>{name.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
            }
        })
    }
}

/// Every known action, grouped by its noun, each group also as a whole (`release.`).
#[component]
fn ActionPicker(filters: Filters) -> impl IntoView {
    let navigate = use_navigate();
    let action = filters.action;
    view! {
        <label>
            "Action"
            <select name="action" on:change=move |ev| filters.pick(&navigate, action, event_target_value(&ev))>
                <option value="" selected=move || action.get().is_empty()>"any action"</option>
                {action_groups().into_iter().map(|(noun, names)| {
                    let family = format!("{noun}.");
                    let every = family.clone();
                    view! {
                        <optgroup label=noun>
                            <option value=family.clone() selected=move || action.get() == every>{format!("every {noun} action")}</option>
                            {names.into_iter().map(|name| view! {
                                <option value=name selected=move || action.get() == name>{name}</option>
                            }).collect_view()}
                        </optgroup>
                    }
                }).collect_view()}
            </select>
        </label>
    }
}

/// The entries found, newest first, with a button for the older ones.
#[component]
fn Results(
    filters: Filters,
    page: Resource<Result<crate::model::AuditPage, Error>>,
) -> impl IntoView {
    let navigate = use_navigate();
    view! {
        <Transition fallback=|| view! { <p class="loading">"Searching…"</p> }>
            {move || {
                let navigate = navigate.clone();
                Suspend::new(async move {
                    match page.await {
                        Ok(p) if p.entries.is_empty() => view! { <p class="empty">"No entries match."</p> }.into_any(),
                        Ok(p) => {
                            let next = p.next_before_id;
                            view! {
                                <ol class="audit" data-testid="audit">
                                    {p.entries.into_iter().map(|e| view! { <AuditRow entry=e /> }).collect_view()}
                                </ol>
                                {next.map(|before| view! {
                                    <button class="btn" on:click=move |_| filters.search(&navigate, Some(before))>"Older entries"</button>
                                })}
                            }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// The known actions grouped by their noun (`release` → `release.stable`, `release.rollback`).
fn action_groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for action in AuditAction::ALL {
        let (noun, name) = (action.noun(), action.as_str());
        match groups.iter_mut().find(|(n, _)| *n == noun) {
            Some((_, names)) => names.push(name),
            None => groups.push((noun, vec![name])),
        }
    }
    groups
}

/// The versions an entry's change is between: `(from, to)` for a saved version (its base) and
/// a release or rollback (the stable release before it). `from` is `None` for a first release.
fn change_of(entry: &AuditEntry) -> Option<(Option<i64>, i64)> {
    let number = |k: &str| entry.details.get(k).and_then(Value::as_i64);
    let to = number("version")?;
    match entry.action {
        AuditAction::VersionCreate => Some((number("base_version"), to)),
        AuditAction::ReleaseStable | AuditAction::ReleaseRollback => {
            Some((number("previous_version"), to))
        }
        _ => None,
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    // The request's trace id, linking to every entry that request wrote.
    let trace = entry.trace_id.clone().map(|id| {
        view! { <p class="trace">"trace " <a href=format!("/audit?trace_id={id}")><code>{id.clone()}</code></a></p> }
    });
    let path = match (&entry.namespace, &entry.env, &entry.key) {
        (Some(ns), Some(env), Some(key)) => Some(ConfigPath::new(ns, env, key)),
        _ => None,
    };
    let change = path.clone().zip(change_of(&entry));
    let links = path.clone().map(|p| {
        let config = format!("/ns/{}/{}/{}", p.namespace, p.env, p.key);
        let version = change.as_ref().map(|(_, (from, to))| {
            let href = match from {
                Some(from) => format!("{config}/diff?from={from}&to={to}"),
                None => format!("{config}#v{to}"),
            };
            view! { " · " <A href=href>{format!("v{to}")}</A> }
        });
        view! { <p class="audit-links"><A href=config.clone()>{format!("{}/{}/{}", p.namespace, p.env, p.key)}</A>{version}</p> }
    });
    let diff = change.map(|(path, (from, to))| match from {
        Some(from) => view! { <ChangeDiff path from to /> }.into_any(),
        None => view! { <p class="muted">"The first release: nothing was stable before."</p> }
            .into_any(),
    });
    let fields = match &entry.details {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                view! { <dt>{k.clone()}</dt><dd>{shown}</dd> }
            })
            .collect_view()
            .into_any(),
        other => view! { <dt>"details"</dt><dd>{other.to_string()}</dd> }.into_any(),
    };
    view! {
        <li class="audit-entry" data-action=entry.action.as_str()>
            <time datetime=entry.at.to_string()>{format!("{} {}", entry.at.date(), entry.at.clock())}</time>
            <span class="sentence">{audit_sentence(&entry).unwrap_or_else(|| audit_raw(&entry))}</span>
            <code class="action">{entry.action.as_str()}</code>
            <details>
                <summary>"details"</summary>
                {links}
                {diff}
                {trace}
                <dl class="audit-details">{fields}</dl>
            </details>
        </li>
    }
}

/// The content change of a version, release or rollback entry, fetched when asked for.
#[component]
fn ChangeDiff(path: ConfigPath, from: i64, to: i64) -> impl IntoView {
    let loaded: RwSignal<Option<Result<crate::domain::diff::Diff, crate::Error>>> =
        RwSignal::new(None);
    let asked = RwSignal::new(false);
    let show = move |_| {
        asked.set(true);
        let path = path.clone();
        leptos::task::spawn_local(async move {
            loaded.set(Some(diff_versions(path, from, to, false).await));
        });
    };
    view! {
        <div class="audit-change">
            {move || match (asked.get(), loaded.get()) {
                (false, _) => view! {
                    <button type="button" class="btn small" on:click=show.clone()>{format!("Show the change v{from} → v{to}")}</button>
                }.into_any(),
                (true, None) => view! { <p class="loading">"Computing the diff…"</p> }.into_any(),
                (true, Some(Ok(diff))) => view! { <DiffView diff unified=true /> }.into_any(),
                (true, Some(Err(e))) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
            }}
        </div>
    }
}
