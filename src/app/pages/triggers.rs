//! Trigger URLs (releasers): an alerting system POSTs to one to abort lanes, pause plans or roll
//! back a config (docs/api.md, "Triggers"). The URL is shown once, when a trigger is made or
//! rotated, with a copy button and an Alertmanager example.

use crate::api::triggers::{
    list_triggers, CreateTrigger, DeleteTrigger, RotateTrigger, UpdateTrigger,
};
use crate::app::components::{action_error, ErrorLine};
use crate::model::{NewTrigger, Trigger, TriggerUpdate, TriggerWithToken};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

/// The Alertmanager receiver that calls `url` (shown with a new URL).
fn alertmanager_example(url: &str) -> String {
    format!(
        "receivers:\n  - name: graycast-stop\n    webhook_configs:\n      - url: {url}\n        send_resolved: false\nroute:\n  routes:\n    - matchers: [severity=\"critical\"]\n      receiver: graycast-stop"
    )
}

#[component]
pub fn TriggersPage() -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let scope = move || {
        let q = query.read();
        (
            q.get("ns").unwrap_or_default(),
            q.get("env").unwrap_or_else(|| "prod".into()),
            q.get("after").and_then(|a| a.parse::<i64>().ok()),
        )
    };
    let create = ServerAction::<CreateTrigger>::new();
    let update = ServerAction::<UpdateTrigger>::new();
    let rotate = ServerAction::<RotateTrigger>::new();
    let delete = ServerAction::<DeleteTrigger>::new();
    let triggers = Resource::new(
        move || {
            (
                scope(),
                create.version().get(),
                update.version().get(),
                rotate.version().get(),
                delete.version().get(),
            )
        },
        |((ns, env, after), ..)| async move {
            if ns.is_empty() {
                return Ok(None);
            }
            list_triggers(ns, env, after).await.map(Some)
        },
    );
    let (ns_input, env_input) = {
        let (ns, env, _) = untrack(scope);
        (RwSignal::new(ns), RwSignal::new(env))
    };
    let on_scope = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        navigate(
            &format!(
                "/triggers?ns={}&env={}",
                ns_input.get_untracked().trim(),
                env_input.get_untracked().trim()
            ),
            Default::default(),
        );
    };
    // The newest URL made: of a trigger just created or rotated.
    let shown = RwSignal::new(None::<TriggerWithToken>);
    Effect::new(move || {
        if let Some(Ok(t)) = create.value().get() {
            shown.set(Some(t));
        }
    });
    Effect::new(move || {
        if let Some(Ok(t)) = rotate.value().get() {
            shown.set(Some(t));
        }
    });
    view! {
        <Title text="Triggers" />
        <h1>"Triggers"</h1>
        <p class="muted">
            "A trigger URL lets Alertmanager, Grafana or any alerting system stop a rollout without anyone at the dashboard: a POST with any body aborts the lanes, pauses the plans or rolls back. Triggers only ever shrink what is live."
        </p>
        <form class="inline-form" on:submit=on_scope>
            <label>"Namespace" <input name="trigger-ns" required bind:value=ns_input /></label>
            <label>"Environment" <input name="trigger-env" required bind:value=env_input /></label>
            <button class="btn" type="submit">"Show triggers"</button>
        </form>
        <Show when=move || !scope().0.is_empty()>
            <AddTrigger scope=Signal::derive(move || { let (ns, env, _) = scope(); (ns, env) }) create />
        </Show>
        {move || shown.get().map(|t| view! { <NewUrl made=t /> })}
        <ErrorLine error=action_error(update) />
        <ErrorLine error=action_error(rotate) />
        <ErrorLine error=action_error(delete) />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match triggers.await {
                    Ok(None) => view! { <p class="empty">"Choose a namespace and an environment."</p> }.into_any(),
                    Ok(Some(page)) if page.triggers.is_empty() => view! { <p class="empty">"No triggers here yet."</p> }.into_any(),
                    Ok(Some(page)) => {
                        let (ns, env, _) = scope();
                        let more = page.next_after.map(|a| view! {
                            <a href=format!("/triggers?ns={ns}&env={env}&after={a}")>"More triggers"</a>
                        });
                        view! {
                            <table class="grid" data-testid="triggers">
                                <thead><tr><th>"#"</th><th>"Config"</th><th>"Action"</th><th>"Description"</th><th>"Fired"</th><th></th></tr></thead>
                                <tbody>{page.triggers.into_iter().map(|t| view! { <TriggerRow trigger=t update rotate delete /> }).collect_view()}</tbody>
                            </table>
                            {more}
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The form that makes a trigger in the page's namespace and environment.
#[component]
fn AddTrigger(
    scope: Signal<(String, String)>,
    create: ServerAction<CreateTrigger>,
) -> impl IntoView {
    let key = RwSignal::new(String::new());
    let action = RwSignal::new(String::from("abort-lanes"));
    let description = RwSignal::new(String::new());
    let on_create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (ns, env) = scope.get_untracked();
        let k = key.get_untracked();
        let d = description.get_untracked();
        create.dispatch(CreateTrigger {
            trigger: NewTrigger {
                namespace: ns,
                env,
                key: (!k.trim().is_empty()).then(|| k.trim().to_string()),
                action: action.get_untracked(),
                description: (!d.trim().is_empty()).then(|| d.trim().to_string()),
            },
        });
    };
    view! {
        <section class="card">
            <h2>"Add a trigger"</h2>
            <form class="inline-form" on:submit=on_create>
                <label>"Config key" <input name="trigger-key" placeholder="every config" bind:value=key /></label>
                <label>
                    "Action"
                    <select name="trigger-action" on:change=move |ev| action.set(event_target_value(&ev))>
                        <option value="abort-lanes">"abort-lanes: abort every gray lane"</option>
                        <option value="pause-plans">"pause-plans: pause every rollout plan"</option>
                        <option value="rollback">"rollback: back to the previous stable (needs a key)"</option>
                    </select>
                </label>
                <label>"Description" <input name="trigger-description" maxlength="200" bind:value=description /></label>
                <button class="btn primary" type="submit" disabled=create.pending()>"Add trigger"</button>
            </form>
            <ErrorLine error=action_error(create) />
        </section>
    }
}

/// A URL just made: shown this once, with a copy button and how to use it.
#[component]
fn NewUrl(made: TriggerWithToken) -> impl IntoView {
    let example = alertmanager_example(&made.url);
    view! {
        <div class="secret" role="status">
            <p>
                "Trigger " {made.trigger.id} " (" {made.trigger.action.to_string()} ") — copy its URL now: it will not be shown again."
            </p>
            <code data-testid="trigger-url">{made.url.clone()}</code>
            <super::tokens::CopyButton text=made.url.clone() />
            <p class="muted">"Alertmanager (alertmanager.yml):"</p>
            <pre><code>{example}</code></pre>
            <p class="muted">"Grafana: add a contact point of type Webhook with this URL and method POST."</p>
        </div>
    }
}

#[component]
fn TriggerRow(
    trigger: Trigger,
    update: ServerAction<UpdateTrigger>,
    rotate: ServerAction<RotateTrigger>,
    delete: ServerAction<DeleteTrigger>,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let id = trigger.id;
    let enabled = trigger.enabled;
    let fired = match &trigger.last_fired_at {
        Some(at) => format!("{} times, last {}", trigger.fired, at.minutes()),
        None => "never".into(),
    };
    view! {
        <tr data-trigger=id class:revoked=!enabled>
            <td>{id}</td>
            <td>{trigger.key.clone().unwrap_or_else(|| "every config".into())}</td>
            <td>
                <code>{trigger.action.to_string()}</code>
                {(!enabled).then(|| view! { " " <span class="badge red">"✕ disabled"</span> })}
            </td>
            <td>{trigger.description.clone()}</td>
            <td class="muted">{fired}</td>
            <td>
                <button class="btn" on:click=move |_| {
                    update.dispatch(UpdateTrigger { id, change: TriggerUpdate { enabled: Some(!enabled), description: None } });
                }>{if enabled { "Disable" } else { "Enable" }}</button>
                " "
                <button class="btn" on:click=move |_| { rotate.dispatch(RotateTrigger { id }); }>"Rotate URL"</button>
                " "
                <Show
                    when=move || confirming.get()
                    fallback=move || view! { <button class="btn" on:click=move |_| confirming.set(true)>"Delete…"</button> }
                >
                    <span class="confirm">
                        "Its URL stops working at once. "
                        <button class="btn" on:click=move |_| confirming.set(false)>"Keep"</button>
                        <button class="btn danger" on:click=move |_| { delete.dispatch(DeleteTrigger { id }); }>"Delete trigger"</button>
                    </span>
                </Show>
            </td>
        </tr>
    }
}
