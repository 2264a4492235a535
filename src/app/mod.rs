//! The dashboard: shell, routes and the signed-in layout.

mod components;
mod pages;
pub(crate) mod sentences;

use crate::api::auth::{current_user, SignOut};
use crate::model::{Role, User};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Outlet, ParentRoute, Redirect, Route, Router, Routes, A};
use leptos_router::{path, SsrMode};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <HashedStylesheet options=options.clone() id="graycast" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| if page.is_empty() { "graycast".to_string() } else { format!("{page} · graycast") } />
        <Router>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=SignedIn ssr=SsrMode::Async>
                    <Route path=path!("") view=pages::home::HomePage />
                    <Route path=path!("admin/users") view=pages::users::UsersPage />
                    <Route path=path!("admin/tokens") view=pages::tokens::TokensPage />
                    <Route path=path!("admin/environments") view=pages::environments::EnvironmentsPage />
                    <Route path=path!("admin/environments/:env") view=pages::governance::EnvSettingsPage />
                    <Route path=path!("admin/notifications") view=pages::notifications::NotificationsPage />
                    <Route path=path!("admin/notifications/:id") view=pages::notifications::DeliveriesPage />
                    <Route path=path!("triggers") view=pages::triggers::TriggersPage />
                    <Route path=path!("requests") view=pages::requests::RequestsPage />
                    <Route path=path!("requests/:id") view=pages::requests::RequestPage />
                    <Route path=path!("audit") view=pages::audit::AuditPage />
                    <Route path=path!("ns/:ns/:env") view=pages::configs::ConfigListPage />
                    <Route path=path!("ns/:ns/:env/:key") view=pages::config::ConfigPage />
                    <Route path=path!("ns/:ns/:env/:key/diff") view=pages::diff::DiffPage />
                    <Route path=path!("instances/:ns/:env") view=pages::instances::InstancesPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The signed-in user, provided to every page under the layout.
#[derive(Clone)]
pub struct CurrentUser(pub User);

pub fn use_current_user() -> Option<User> {
    use_context::<CurrentUser>().map(|c| c.0)
}

/// The layout of every page behind sign-in; sends anyone else to /login.
#[component]
fn SignedIn() -> impl IntoView {
    let me = Resource::new(|| (), |_| current_user());
    // Signed out, the login page brings the visitor back here afterwards.
    let location = leptos_router::hooks::use_location();
    let login = move || {
        let (path, search) = (
            location.pathname.get_untracked(),
            location.search.get_untracked(),
        );
        let here = if search.is_empty() {
            path
        } else {
            format!("{path}?{search}")
        };
        pages::login::login_href(&here)
    };
    // The page is built once per render. The server dry-resolves what a Suspense holds (to
    // find the resources read inside) before it renders it, and the `<Outlet />` is a closure
    // that builds the page each time it is called: inside this Suspense, every page was built
    // twice (three times on some loads), each build with its own resources, fetched again. The
    // HTML came from the last build while the browser hydrated with the first build's data —
    // a hydration panic whenever they differed (a plan aborting while its page loaded).
    // `Unsuspend` keeps the dry resolve out of the page (its own Transitions wait for its
    // data), and a bare `Suspend` (not a `move ||` around one) is not called twice either:
    // `me` never changes while the page lives (signing out loads the login page).
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {Suspend::new(async move {
                match me.await {
                    Ok(Some(user)) => {
                        provide_context(CurrentUser(user.clone()));
                        let page = view! { <Outlet /> };
                        view! {
                            <Header user />
                            <main class="page">
                                {Unsuspend::new(move || page)}
                            </main>
                        }
                            .into_any()
                    }
                    Ok(None) => view! { <Redirect path=login() /> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// "Requests" in the top bar, with how many wait for the signed-in person's approval; asked
/// again on every navigation.
#[component]
fn RequestsLink() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let waiting = Resource::new(
        move || location.pathname.get(),
        |_| crate::api::governance::requests_waiting(),
    );
    view! {
        <A href="/requests">
            "Requests"
            <Transition>
                {move || Suspend::new(async move {
                    let n = waiting.await.unwrap_or(0);
                    (n > 0).then(|| view! {
                        <span class="count" data-testid="requests-waiting" title="Waiting for your approval">
                            {n}<span class="sr-only">" waiting for your approval"</span>
                        </span>
                    })
                })}
            </Transition>
        </A>
    }
}

#[component]
fn Header(user: User) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = sign_out.value().get() {
            let _ = window().location().set_href("/login");
        }
    });
    let is_admin = user.role == Role::Admin;
    let is_releaser = user.role >= Role::Releaser;
    // Users and environments span every environment: only admins without a
    // limit manage them (the server refuses the others).
    let unlimited_admin = is_admin && user.env.is_none();
    // On a phone the links and the account collapse behind a menu button; following a link
    // closes the menu again.
    let menu_open = RwSignal::new(false);
    let close_on_link = move |ev: leptos::ev::MouseEvent| {
        use leptos::wasm_bindgen::JsCast;
        let on_link = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| e.closest("a").ok().flatten().is_some());
        if on_link {
            menu_open.set(false);
        }
    };
    let menu_button = NodeRef::<leptos::html::Button>::new();
    let close_on_escape = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" && menu_open.get_untracked() {
            menu_open.set(false);
            if let Some(b) = menu_button.get_untracked() {
                let _ = b.focus();
            }
        }
    };
    view! {
        <header class="topbar" on:keydown=close_on_escape>
            <A href="/" attr:class="brand">
                <span class="brand-mark" aria-hidden="true">"◐"</span>
                " graycast"
            </A>
            <button
                class="btn menu-button"
                type="button"
                node_ref=menu_button
                aria-expanded=move || menu_open.get().to_string()
                aria-controls="topbar-menu"
                on:click=move |_| menu_open.update(|o| *o = !*o)
            >
                <span aria-hidden="true">"☰"</span>
                " Menu"
            </button>
            <div id="topbar-menu" class="topbar-menu" class:open=move || menu_open.get() on:click=close_on_link>
                <nav aria-label="Main">
                    <A href="/">"Namespaces"</A>
                    <A href="/audit">"Audit"</A>
                    <RequestsLink />
                    <Show when=move || is_releaser>
                        <A href="/triggers">"Triggers"</A>
                    </Show>
                    <Show when=move || unlimited_admin>
                        <A href="/admin/users">"Users"</A>
                    </Show>
                    <Show when=move || is_admin>
                        <A href="/admin/tokens">"Tokens"</A>
                        <A href="/admin/notifications">"Notifications"</A>
                    </Show>
                    <Show when=move || unlimited_admin>
                        <A href="/admin/environments">"Environments"</A>
                    </Show>
                </nav>
                <div class="who">
                    <span class="user" data-testid="current-user">
                        {user.username.clone()}
                        <span class="role">{user.role.to_string()}</span>
                        {user.env.clone().map(|e| view! { <span class="role">{e}</span> })}
                    </span>
                    <button class="btn" on:click=move |_| { sign_out.dispatch(SignOut {}); }>
                        "Sign out"
                    </button>
                </div>
            </div>
        </header>
    }
}
