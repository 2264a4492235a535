use crate::api::auth::SignIn;
use crate::app::components::{action_error, ErrorLine};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Where the sign-in page sends someone who asked for `path` (a path with its query) while
/// signed out: back to it after signing in.
pub fn login_href(path: &str) -> String {
    if path.is_empty() || path == "/" || path.starts_with("/login") {
        "/login".to_string()
    } else {
        format!("/login?next={}", crate::domain::percent_encode(path))
    }
}

/// The page to open after signing in: `next` when it is a path on this site (`/ns/a/prod/k`),
/// else the home page — never another site (`//evil.example`, `https://…`, `/\evil.example`).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.chars().any(|c| c.is_control() || c == '\\') =>
        {
            path
        }
        _ => "/",
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let sign_in = ServerAction::<SignIn>::new();
    let pending = sign_in.pending();
    let query = use_query_map();
    Effect::new(move |_| {
        if let Some(Ok(_)) = sign_in.value().get() {
            let next = query.with_untracked(|q| safe_next(q.get_str("next")).to_string());
            let _ = window().location().set_href(&next);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_path_goes_through_the_login_url_and_back() {
        assert_eq!(login_href("/"), "/login");
        let href = login_href("/ns/a/prod/k?x=1");
        assert_eq!(href, "/login?next=%2Fns%2Fa%2Fprod%2Fk%3Fx%3D1");
        assert_eq!(safe_next(Some("/ns/a/prod/k?x=1")), "/ns/a/prod/k?x=1");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn only_paths_on_this_site_are_followed() {
        for other in [
            "//evil.example/x",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "",
            "ns/a",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(other)), "/", "{other:?}");
        }
    }
}
