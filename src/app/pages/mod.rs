pub mod audit;
pub mod config;
pub mod configs;
pub mod diff;
pub mod editor;
pub mod environments;
pub mod governance;
pub mod home;
pub mod instances;
pub mod lanes;
pub mod login;
pub mod notifications;
pub mod plan_editor;
pub mod plan_rows;
pub mod plan_timeline;
pub mod requests;
pub mod shared;
pub mod tokens;
pub mod triggers;
pub mod users;

use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="page narrow">
            <h1>"Page not found"</h1>
            <p>
                "Nothing lives at this address. " <A href="/">"Back to the namespaces"</A>
            </p>
        </main>
    }
}
