use crate::api::audit::search_audit;
use crate::model::{AuditEntry, AuditQuery};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AuditPage() -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let query = RwSignal::new(AuditQuery::default());
    let page = Resource::new(move || query.get(), search_audit);
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let nonempty = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
        query.set(AuditQuery {
            actor: nonempty(actor.get_untracked()),
            action: nonempty(action.get_untracked()),
            ..Default::default()
        });
    };
    view! {
        <Title text="Audit" />
        <h1>"Audit trail"</h1>
        <form class="inline-form card" role="search" on:submit=on_search>
            <label>"Actor" <input name="actor" bind:value=actor /></label>
            <label>"Action" <input name="action" placeholder="e.g. auth.login" bind:value=action /></label>
            <button class="btn primary" type="submit">"Search"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) if p.entries.is_empty() => view! { <p class="empty">"No entries match."</p> }.into_any(),
                    Ok(p) => {
                        let next = p.next_before_id;
                        view! {
                            <ol class="audit" data-testid="audit">
                                {p.entries.into_iter().map(|e| view! { <AuditRow entry=e /> }).collect_view()}
                            </ol>
                            {next.map(|before| view! {
                                <button class="btn" on:click=move |_| query.update(|q| q.before_id = Some(before))>"Older entries"</button>
                            })}
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let target = [entry.namespace.clone(), entry.env.clone(), entry.key.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    let details = serde_json::to_string_pretty(&entry.details).unwrap_or_default();
    view! {
        <li class="audit-entry" data-action=entry.action.clone()>
            <time datetime=entry.at.clone()>{entry.at.get(..19).unwrap_or_default().replace('T', " ")}</time>
            <span class="actor">{entry.actor.clone()}</span>
            <code class="action">{entry.action.clone()}</code>
            <span class="target">{target}</span>
            <details><summary>"details"</summary><pre>{details}</pre></details>
        </li>
    }
}
