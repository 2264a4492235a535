use crate::api::auth::SignIn;
use crate::app::components::{action_error, ErrorLine};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn LoginPage() -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let sign_in = ServerAction::<SignIn>::new();
    let pending = sign_in.pending();
    Effect::new(move |_| {
        if let Some(Ok(_)) = sign_in.value().get() {
            let _ = window().location().set_href("/");
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        sign_in.dispatch(SignIn {
            username: username.get_untracked(),
            password: password.get_untracked(),
        });
    };
    view! {
        <Title text="Sign in" />
        <main class="login">
            <form class="card login-card" on:submit=on_submit>
                <h1>
                    <span class="brand-mark" aria-hidden="true">"◐"</span>
                    " graycast"
                </h1>
                <p class="muted">"Configuration with gray release control"</p>
                <label for="username">"Username"</label>
                <input id="username" name="username" autocomplete="username" required bind:value=username />
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                    bind:value=password
                />
                <ErrorLine error=action_error(sign_in) />
                <button class="btn primary" type="submit" disabled=pending>
                    {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </main>
    }
}
