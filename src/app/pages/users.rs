use crate::api::admin::{list_environments, list_users, CreateUser, UpdateUser};
use crate::app::components::{action_error, ErrorLine};
use crate::app::use_current_user;
use crate::model::{Environment, NewUser, Role, User, UserUpdate};
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
    let env_names = move || environment_names(environments);
    // A row saves only on its explicit Save (or Disable/Enable); the sentence says what changed.
    let last_change = StoredValue::new(None::<UserUpdate>);
    let saved = RwSignal::new(None::<String>);
    Effect::new(move |_| match update.value().get() {
        Some(Ok(user)) => saved.set(
            last_change
                .get_value()
                .map(|change| change_sentence(&user, &change)),
        ),
        Some(Err(_)) => saved.set(None),
        None => {}
    });
    let save = move |id: i64, change: UserUpdate| {
        last_change.set_value(Some(change.clone()));
        update.dispatch(UpdateUser { id, change });
    };

    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        <AddUserForm create environments />
        <ErrorLine error=action_error(update) />
        <p class="saved" role="status" data-testid="user-saved">
            {move || saved.get().map(|s| view! { <span>"✓ " {s}</span> })}
        </p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                // The rows read the environment names: load them first.
                let _ = environments.await;
                match users.await {
                    Ok(list) => view! {
                        <table class="grid" data-testid="users">
                            <thead><tr><th>"User"</th><th>"Role"</th><th>"Environment"</th><th>"Status"</th><th>"Created"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| { let is_me = Some(u.id) == me; view! { <UserRow user=u save pending=update.pending() env_names=Signal::derive(env_names) is_me /> } }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// "Add a user": name, password, role and environment limit.
#[component]
fn AddUserForm(
    create: ServerAction<CreateUser>,
    environments: Resource<Result<Vec<Environment>, crate::Error>>,
) -> impl IntoView {
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
    let env_names = move || environment_names(environments);
    view! {
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
    }
}

/// The names of the environments, once loaded.
fn environment_names(
    environments: Resource<Result<Vec<Environment>, crate::Error>>,
) -> Vec<String> {
    environments
        .get()
        .and_then(|r| r.ok())
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
}

/// "alice is now releaser", "bob is limited to prod": what a saved change did, said once.
fn change_sentence(user: &User, change: &UserUpdate) -> String {
    let mut parts = Vec::new();
    if change.role.is_some() {
        parts.push(format!("is now {}", user.role));
    }
    if change.env.is_some() {
        parts.push(match &user.env {
            Some(env) => format!("is limited to {env}"),
            None => "may act in every environment".to_string(),
        });
    }
    if change.disabled.is_some() {
        parts.push(if user.disabled {
            "is disabled and cannot sign in".to_string()
        } else {
            "is enabled and can sign in again".to_string()
        });
    }
    format!("{} {}", user.username, parts.join(" and "))
}

#[component]
fn UserRow<F>(
    user: User,
    /// Sends one user's change.
    save: F,
    pending: Memo<bool>,
    env_names: Signal<Vec<String>>,
    is_me: bool,
) -> impl IntoView
where
    F: Fn(i64, UserUpdate) + Copy + Send + Sync + 'static,
{
    let id = user.id;
    // The row's edit, sent only by Save.
    let role = RwSignal::new(user.role);
    let saved_role = user.role;
    let saved_env = user.env.clone().unwrap_or_default();
    let env = RwSignal::new(saved_env.clone());
    let change = {
        let saved_env = saved_env.clone();
        move || {
            let env_now = env.get();
            UserUpdate {
                role: (role.get() != saved_role).then(|| role.get()),
                env: (env_now != saved_env).then(|| (!env_now.is_empty()).then_some(env_now)),
                disabled: None,
            }
        }
    };
    let changed = {
        let change = change.clone();
        move || {
            let c = change();
            c.role.is_some() || c.env.is_some()
        }
    };
    let disabled = user.disabled;
    let name = user.username.clone();
    view! {
        <tr data-user=user.username.clone()>
            <td>{user.username.clone()}</td>
            <td>
                <RoleSelect name="role" value=role disabled=is_me label=format!("Role of {name}") />
            </td>
            <td>
                <select
                    name="env"
                    disabled=is_me
                    aria-label=format!("Environment limit of {name}")
                    on:change=move |ev| env.set(event_target_value(&ev))
                >
                    <option value="" selected=move || env.get().is_empty()>"All environments"</option>
                    {move || {
                        env_names.get().into_iter().map(move |n| {
                            let option = n.clone();
                            view! { <option value=n.clone() selected=move || env.get() == option>{n.clone()}</option> }
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
            <td class="row-actions">
                <button
                    class="btn primary"
                    disabled={
                        let changed = changed.clone();
                        move || !changed() || pending.get()
                    }
                    title={
                        let changed = changed.clone();
                        move || if changed() { "" } else { "Change the role or the environment first" }
                    }
                    on:click=move |_| save(id, change())
                >
                    "Save"
                </button>
                <Show when=changed.clone()>
                    <span class="muted">"not saved yet"</span>
                </Show>
                <button
                    class="btn"
                    disabled=is_me
                    title=if is_me { "You cannot disable your own account" } else { "" }
                    on:click=move |_| save(id, UserUpdate { disabled: Some(!disabled), ..Default::default() })
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
    /// The select's accessible name; "Role" unless given.
    #[prop(optional, into)]
    label: Option<String>,
) -> impl IntoView {
    view! {
        <select
            name=name
            disabled=disabled
            aria-label=label.unwrap_or_else(|| "Role".to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, env: Option<&str>, disabled: bool) -> User {
        User {
            id: 7,
            username: "alice".into(),
            role,
            env: env.map(str::to_string),
            disabled,
            created_at: "2026-12-02T14:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_saved_change_says_what_changed() {
        let role = UserUpdate {
            role: Some(Role::Releaser),
            ..Default::default()
        };
        assert_eq!(
            change_sentence(&user(Role::Releaser, None, false), &role),
            "alice is now releaser"
        );
        let both = UserUpdate {
            role: Some(Role::Editor),
            env: Some(Some("prod".into())),
            ..Default::default()
        };
        assert_eq!(
            change_sentence(&user(Role::Editor, Some("prod"), false), &both),
            "alice is now editor and is limited to prod"
        );
        let unlimited = UserUpdate {
            env: Some(None),
            ..Default::default()
        };
        assert_eq!(
            change_sentence(&user(Role::Viewer, None, false), &unlimited),
            "alice may act in every environment"
        );
        let disable = UserUpdate {
            disabled: Some(true),
            ..Default::default()
        };
        assert_eq!(
            change_sentence(&user(Role::Viewer, None, true), &disable),
            "alice is disabled and cannot sign in"
        );
    }
}
