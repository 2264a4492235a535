use crate::api::admin::{list_environments, list_users, CreateUser, UpdateUser};
use crate::app::components::{action_error, ErrorLine};
use crate::app::use_current_user;
use crate::model::{NewUser, Role, User, UserUpdate};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let update = ServerAction::<UpdateUser>::new();
    let users = Resource::new(
        move || (create.version().get(), update.version().get()),
        |_| list_users(),
    );
    let environments = Resource::new(|| (), |_| list_environments());
    let me = use_current_user().map(|u| u.id);

    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Viewer);
    let env = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            username.set(String::new());
            password.set(String::new());
        }
    });
    let on_create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let env = env.get_untracked();
        create.dispatch(CreateUser {
            user: NewUser {
                username: username.get_untracked(),
                password: password.get_untracked(),
                role: role.get_untracked(),
                env: (!env.is_empty()).then_some(env),
            },
        });
    };
    let env_names = move || {
        environments
            .get()
            .and_then(|r| r.ok())
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.name)
            .collect::<Vec<_>>()
    };

    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        <section class="card">
            <h2>"Add a user"</h2>
            <form class="inline-form" on:submit=on_create>
                <label>"Username" <input name="new-username" required bind:value=username /></label>
                <label>
                    "Password"
                    <input name="new-password" type="password" autocomplete="new-password" required minlength="8" bind:value=password />
                </label>
                <label>
                    "Role"
                    <RoleSelect name="new-role" value=role />
                </label>
                <label>
                    "Environment limit"
                    <select name="new-env" on:change=move |ev| env.set(event_target_value(&ev))>
                        <option value="">"All environments"</option>
                        <Transition>
                            {move || env_names().into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                        </Transition>
                    </select>
                </label>
                <button class="btn primary" type="submit" disabled=create.pending()>"Add user"</button>
            </form>
            <ErrorLine error=action_error(create) />
        </section>
        <ErrorLine error=action_error(update) />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                // The rows read the environment names: load them first.
                let _ = environments.await;
                match users.await {
                    Ok(list) => view! {
                        <table class="grid" data-testid="users">
                            <thead><tr><th>"User"</th><th>"Role"</th><th>"Environment"</th><th>"Status"</th><th>"Created"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| { let is_me = Some(u.id) == me; view! { <UserRow user=u update env_names=Signal::derive(env_names) is_me /> } }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn UserRow(
    user: User,
    update: ServerAction<UpdateUser>,
    env_names: Signal<Vec<String>>,
    is_me: bool,
) -> impl IntoView {
    let id = user.id;
    let role = RwSignal::new(user.role);
    Effect::new(move |prev: Option<Role>| {
        let now = role.get();
        if prev.is_some_and(|p| p != now) {
            update.dispatch(UpdateUser {
                id,
                change: UserUpdate {
                    role: Some(now),
                    ..Default::default()
                },
            });
        }
        now
    });
    let current_env = user.env.clone().unwrap_or_default();
    let disabled = user.disabled;
    view! {
        <tr data-user=user.username.clone()>
            <td>{user.username.clone()}</td>
            <td>
                <RoleSelect name="role" value=role disabled=is_me />
            </td>
            <td>
                <select
                    name="env"
                    disabled=is_me
                    aria-label="Environment limit"
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        update.dispatch(UpdateUser { id, change: UserUpdate { env: Some((!v.is_empty()).then_some(v)), ..Default::default() } });
                    }
                >
                    <option value="" selected=current_env.is_empty()>"All environments"</option>
                    {move || {
                        let current_env = current_env.clone();
                        env_names.get().into_iter().map(move |n| {
                            let selected = n == current_env;
                            view! { <option value=n.clone() selected=selected>{n.clone()}</option> }
                        }).collect_view()
                    }}
                </select>
            </td>
            <td>
                {if disabled {
                    view! { <span class="badge grey">"⏸ disabled"</span> }.into_any()
                } else {
                    view! { <span class="badge green">"✓ active"</span> }.into_any()
                }}
            </td>
            <td class="muted">{user.created_at.date()}</td>
            <td>
                <button
                    class="btn"
                    disabled=is_me
                    title=if is_me { "You cannot disable your own account" } else { "" }
                    on:click=move |_| {
                        update.dispatch(UpdateUser { id, change: UserUpdate { disabled: Some(!disabled), ..Default::default() } });
                    }
                >
                    {if disabled { "Enable" } else { "Disable" }}
                </button>
            </td>
        </tr>
    }
}

#[component]
pub fn RoleSelect(
    name: &'static str,
    value: RwSignal<Role>,
    #[prop(optional)] disabled: bool,
) -> impl IntoView {
    view! {
        <select
            name=name
            disabled=disabled
            aria-label="Role"
            on:change=move |ev| {
                if let Ok(r) = event_target_value(&ev).parse::<Role>() {
                    value.set(r);
                }
            }
        >
            {Role::ALL
                .into_iter()
                .map(|r| {
                    view! {
                        <option value=r.as_str() selected=move || value.get() == r>
                            {r.as_str()}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}
