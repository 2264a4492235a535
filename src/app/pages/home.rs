use crate::api::admin::list_environments;
use crate::app::use_current_user;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HomePage() -> impl IntoView {
    let user = use_current_user();
    let environments = Resource::new(|| (), |_| list_environments());
    view! {
        <Title text="Namespaces" />
        <h1>"Namespaces"</h1>
        <p class="muted">
            "Signed in as " {user.map(|u| u.username)}
            ". Each service keeps its configs in a namespace, per environment."
        </p>
        <section class="card">
            <h2>"Environments"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match environments.await {
                        Ok(envs) => view! {
                            <ul class="chips" data-testid="environments">
                                {envs.into_iter().map(|e| view! { <li class="chip">{e.name}</li> }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
