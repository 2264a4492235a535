use crate::api::admin::{list_environments, CreateEnvironment};
use crate::app::components::{action_error, ErrorLine};
use crate::app::pages::governance::FrozenMark;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// Environments (admins): list and create. Configs of different environments
/// are fully isolated.
#[component]
pub fn EnvironmentsPage() -> impl IntoView {
    let create = ServerAction::<CreateEnvironment>::new();
    let environments = Resource::new(move || create.version().get(), |_| list_environments());
    let name = RwSignal::new(String::new());
    let on_create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateEnvironment {
            name: name.get_untracked().trim().to_string(),
        });
    };
    view! {
        <Title text="Environments" />
        <h1>"Environments"</h1>
        <section class="card">
            <h2>"Add an environment"</h2>
            <p class="muted">"Configs, releases and permissions are separate per environment. " <code>"prod"</code> " asks for the environment name to confirm rollbacks. Open an environment to protect it (approvals) and to set its freeze windows."</p>
            <form class="inline-form" on:submit=on_create>
                <label>"Name" <input name="environment-name" placeholder="qa" required bind:value=name /></label>
                <button class="btn primary" type="submit" disabled=create.pending()>"Add environment"</button>
            </form>
            <ErrorLine error=action_error(create) />
        </section>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match environments.await {
                    Ok(list) => view! {
                        <table class="grid" data-testid="environments">
                            <thead><tr><th>"Environment"</th><th>"Protected"</th><th>"Frozen"</th><th>"Created"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|e| {
                                    let protected = match e.approvals {
                                        0 => "no".to_string(),
                                        1 => "yes — 1 approval".to_string(),
                                        n => format!("yes — {n} approvals"),
                                    };
                                    let settings = format!("/admin/environments/{}", e.name);
                                    let name = e.name.clone();
                                    view! {
                                        <tr data-environment=e.name.clone()>
                                            <td><A href=settings><strong>{name}</strong></A></td>
                                            <td data-testid="env-protection">{protected}</td>
                                            <td>{match e.frozen.clone() { Some(_) => view! { <FrozenMark frozen=e.frozen.clone() /> }.into_any(), None => "no".into_any() }}</td>
                                            <td class="muted">{e.created_at.minutes()}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
