use crate::api::audit::search_audit;
use crate::app::sentences::{audit_raw, audit_sentence};
use crate::model::{AuditEntry, AuditQuery};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

/// The audit trail: full-text search plus filters, newest first, as sentences.
/// The query lives in the URL, so a config page can link to its own history.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query_map = use_query_map();
    let param = move |name: &str| query_map.read().get(name).filter(|v| !v.is_empty());
    let query = Memo::new(move |_| AuditQuery {
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
    });
    let page = Resource::new(move || query.get(), search_audit);
    let q = RwSignal::new(String::new());
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let namespace = RwSignal::new(String::new());
    let env = RwSignal::new(String::new());
    let since = RwSignal::new(String::new());
    let until = RwSignal::new(String::new());
    let trace_id = RwSignal::new(String::new());
    // The form shows the query of the URL.
    Effect::new(move |_| {
        let current = query.get();
        q.set(current.q.unwrap_or_default());
        actor.set(current.actor.unwrap_or_default());
        action.set(current.action.unwrap_or_default());
        namespace.set(current.namespace.unwrap_or_default());
        env.set(current.env.unwrap_or_default());
        since.set(current.since.unwrap_or_default());
        until.set(current.until.unwrap_or_default());
        trace_id.set(current.trace_id.unwrap_or_default());
    });
    let navigate = use_navigate();
    let to_url = move |before_id: Option<i64>| {
        let pairs = [
            ("q", q.get_untracked()),
            ("actor", actor.get_untracked()),
            ("action", action.get_untracked()),
            ("namespace", namespace.get_untracked()),
            ("env", env.get_untracked()),
            ("since", since.get_untracked()),
            ("until", until.get_untracked()),
            ("trace_id", trace_id.get_untracked()),
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
    };
    let nav = navigate.clone();
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        nav(&to_url(None), Default::default());
    };
    view! {
        <Title text="Audit" />
        <h1>"Audit trail"</h1>
        <form class="card stack" role="search" on:submit=on_search>
            <div class="inline-form">
                <label class="grow">"Search" <input type="search" name="q" placeholder="words in actors, actions, targets, messages, details" bind:value=q /></label>
                <button class="btn primary" type="submit">"Search"</button>
            </div>
            <div class="inline-form">
                <label>"Actor" <input name="actor" bind:value=actor /></label>
                <label>"Action" <input name="action" placeholder="release.rollback or release." bind:value=action /></label>
                <label>"Namespace" <input name="namespace" bind:value=namespace /></label>
                <label>"Environment" <input name="env" bind:value=env /></label>
                <label>"Since" <input name="since" placeholder="2026-11-01" bind:value=since /></label>
                <label>"Until" <input name="until" placeholder="2026-12-01" bind:value=until /></label>
                <label>"Trace id" <input name="trace_id" placeholder="32 hex digits" bind:value=trace_id /></label>
            </div>
        </form>
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
                                    <button class="btn" on:click=move |_| navigate(&to_url(Some(before)), Default::default())>"Older entries"</button>
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

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let details = serde_json::to_string_pretty(&entry.details).unwrap_or_default();
    // The request's trace id, linking to every entry that request wrote.
    let trace = entry.trace_id.clone().map(|id| {
        view! { <p class="trace">"trace " <a href=format!("/audit?trace_id={id}")><code>{id.clone()}</code></a></p> }
    });
    view! {
        <li class="audit-entry" data-action=entry.action.clone()>
            <time datetime=entry.at.to_string()>{format!("{} {}", entry.at.date(), entry.at.clock())}</time>
            <span class="sentence">{audit_sentence(&entry).unwrap_or_else(|| audit_raw(&entry))}</span>
            <code class="action">{entry.action.clone()}</code>
            <details><summary>"details"</summary>{trace}<pre>{details}</pre></details>
        </li>
    }
}
