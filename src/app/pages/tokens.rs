use super::users::RoleSelect;
use crate::api::admin::{list_environments, list_tokens, CreateToken, RevokeToken};
use crate::app::components::{action_error, ErrorLine};
use crate::model::{NewToken, Role, TokenInfo};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let environments = Resource::new(|| (), |_| list_environments());
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Subscriber);
    let namespace = RwSignal::new(String::new());
    let env = RwSignal::new(String::new());
    let on_create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (ns, env) = (namespace.get_untracked(), env.get_untracked());
        create.dispatch(CreateToken {
            token: NewToken {
                name: name.get_untracked(),
                role: role.get_untracked(),
                namespace: (!ns.trim().is_empty()).then(|| ns.trim().to_string()),
                env: (!env.is_empty()).then_some(env),
            },
        });
    };
    let created = move || create.value().get().and_then(|r| r.ok());

    view! {
        <Title text="API tokens" />
        <h1>"API tokens"</h1>
        <section class="card">
            <h2>"Create a token"</h2>
            <p class="muted">"Services and automation authenticate with " <code>"Authorization: Bearer <token>"</code> ". The secret is shown once."</p>
            <form class="inline-form" on:submit=on_create>
                <label>"Name" <input name="token-name" required bind:value=name /></label>
                <label>"Role" <RoleSelect name="token-role" value=role /></label>
                <label>"Namespace limit" <input name="token-namespace" placeholder="any" bind:value=namespace /></label>
                <label>
                    "Environment limit"
                    <select name="token-env" on:change=move |ev| env.set(event_target_value(&ev))>
                        <option value="">"All environments"</option>
                        <Transition>
                            {move || environments.get().and_then(|r| r.ok()).unwrap_or_default().into_iter()
                                .map(|e| view! { <option value=e.name.clone()>{e.name.clone()}</option> }).collect_view()}
                        </Transition>
                    </select>
                </label>
                <button class="btn primary" type="submit" disabled=create.pending()>"Create token"</button>
            </form>
            <ErrorLine error=action_error(create) />
            {move || created().map(|c| view! {
                <div class="secret" role="status">
                    <p>"Token " <strong>{c.info.name.clone()}</strong> " created. Copy the secret now — it will not be shown again."</p>
                    <code data-testid="token-secret">{c.token.clone()}</code>
                    <CopyButton text=c.token.clone() />
                </div>
            })}
        </section>
        <ErrorLine error=action_error(revoke) />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match tokens.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No tokens yet — create one for each service or pipeline."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="grid" data-testid="tokens">
                            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Scope"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|t| view! { <TokenRow token=t revoke /> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TokenRow(token: TokenInfo, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let id = token.id;
    let scope = match (&token.namespace, &token.env) {
        (None, None) => "everything".to_string(),
        (ns, env) => format!(
            "{}{}",
            ns.as_ref()
                .map(|n| format!("namespace {n} "))
                .unwrap_or_default(),
            env.as_ref().map(|e| format!("env {e}")).unwrap_or_default()
        ),
    };
    let revoked = token.revoked_at.is_some();
    view! {
        <tr data-token=token.name.clone() class:revoked=revoked>
            <td>{token.name.clone()}</td>
            <td>{token.role.to_string()}</td>
            <td>{scope}</td>
            <td><code>{token.prefix.clone()} "…"</code></td>
            <td class="muted">{token.created_at.minutes()} " by " {token.created_by.clone()}</td>
            <td class="muted">{token.last_used_at.map(|t| t.minutes()).unwrap_or_else(|| "never".into())}</td>
            <td>
                {if revoked {
                    view! { <span class="badge red">"✕ revoked"</span> }.into_any()
                } else {
                    view! {
                        <Show
                            when=move || confirming.get()
                            fallback=move || view! { <button class="btn" on:click=move |_| confirming.set(true)>"Revoke…"</button> }
                        >
                            <span class="confirm">
                                "Services using it lose access at once. "
                                <button class="btn" on:click=move |_| confirming.set(false)>"Keep"</button>
                                <button class="btn danger" on:click=move |_| { revoke.dispatch(RevokeToken { id }); }>"Revoke token"</button>
                            </span>
                        </Show>
                    }.into_any()
                }}
            </td>
        </tr>
    }
}

#[component]
pub(crate) fn CopyButton(text: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    view! {
        <button
            class="btn"
            type="button"
            on:click=move |_| {
                let clipboard = window().navigator().clipboard();
                let _ = clipboard.write_text(&text);
                copied.set(true);
            }
        >
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}
