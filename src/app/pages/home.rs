use crate::api::admin::list_environments;
use crate::api::configs::{list_namespaces, CreateNamespace};
use crate::app::components::{action_error, ErrorLine};
use crate::app::use_current_user;
use crate::model::{Namespace, NewNamespace, Role};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn HomePage() -> impl IntoView {
    let user = use_current_user();
    let can_create = user.as_ref().is_some_and(|u| u.role >= Role::Editor);
    let search = RwSignal::new(String::new());
    let create = ServerAction::<CreateNamespace>::new();
    let namespaces = Resource::new(
        move || (search.get(), create.version().get()),
        |(q, _)| list_namespaces((!q.trim().is_empty()).then(|| q.trim().to_string())),
    );
    let environments = Resource::new(|| (), |_| list_environments());
    let env_names = move || {
        let limit = use_current_user().and_then(|u| u.env);
        environments
            .get()
            .and_then(|r| r.ok())
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.name, e.frozen.is_some()))
            .filter(|(n, _)| limit.as_ref().is_none_or(|l| l == n))
            .collect::<Vec<_>>()
    };

    view! {
        <Title text="Namespaces" />
        <div class="page-head">
            <h1>"Namespaces"</h1>
            <input
                type="search"
                class="search"
                placeholder="Search namespaces"
                aria-label="Search namespaces"
                on:input=move |ev| search.set(event_target_value(&ev))
                prop:value=search
            />
        </div>
        <Show when=move || can_create>
            <CreateNamespaceForm create />
        </Show>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                // Awaited here, not read in passing: a value still loading on the
                // server but present in the browser would not hydrate.
                let _ = environments.await;
                match namespaces.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No namespaces yet — create one for each service."</p>
                    }.into_any(),
                    Ok(list) => {
                        let envs = env_names();
                        view! {
                            <table class="grid" data-testid="namespaces">
                                <thead><tr><th>"Namespace"</th><th>"Description"</th><th>"Configs"</th><th>"Environments"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|ns| namespace_row(ns, &envs)).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// "Create a namespace": its name and description.
#[component]
fn CreateNamespaceForm(create: ServerAction<CreateNamespace>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            name.set(String::new());
            description.set(String::new());
        }
    });
    let on_create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let d = description.get_untracked();
        create.dispatch(CreateNamespace {
            namespace: NewNamespace {
                name: name.get_untracked().trim().to_string(),
                description: (!d.trim().is_empty()).then(|| d.trim().to_string()),
            },
        });
    };
    view! {
        <details class="card">
            <summary>"Create a namespace"</summary>
            <form class="inline-form" on:submit=on_create>
                <label>"Name" <input name="namespace-name" placeholder="order-service" required bind:value=name /></label>
                <label class="grow">"Description" <input name="namespace-description" bind:value=description /></label>
                <button class="btn primary" type="submit" disabled=create.pending()>"Create namespace"</button>
            </form>
            <ErrorLine error=action_error(create) />
        </details>
    }
}

/// A namespace with links to its configs in each environment.
fn namespace_row(ns: Namespace, envs: &[(String, bool)]) -> impl IntoView {
    // Where its configs are; an empty namespace opens the first environment.
    let first = ns
        .config_env
        .clone()
        .or_else(|| envs.first().map(|(e, _)| e.clone()))
        .unwrap_or_else(|| "dev".into());
    let name = ns.name.clone();
    let href = format!("/ns/{}/{}", ns.name, first);
    let label = ns.name.clone();
    let env_links = envs
        .iter()
        .map(|(e, frozen)| {
            let href = format!("/ns/{name}/{e}");
            let e = e.clone();
            // A frozen environment is marked wherever its configs appear.
            let mark = frozen.then(|| {
                view! { <span class="frozen-dot" title="frozen now">" ❄"<span class="sr-only">" (frozen)"</span></span> }
            });
            view! { <A href=href>{e}{mark}</A> }
        })
        .collect_view();
    view! {
        <tr data-namespace=ns.name.clone()>
            <td><A href=href><strong>{label}</strong></A></td>
            <td class="muted">{if ns.description.is_empty() { "—".to_string() } else { ns.description.clone() }}</td>
            <td>{ns.config_count}</td>
            <td class="env-links">
                {env_links}
            </td>
        </tr>
    }
}
