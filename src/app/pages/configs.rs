use crate::api::admin::list_environments;
use crate::api::configs::{list_configs, CreateConfig};
use crate::app::components::{action_error, DraftBadge, ErrorLine, StableBadge};
use crate::app::pages::editor::ContentEditor;
use crate::app::pages::governance::FrozenMark;
use crate::app::sentences::{lane_badge, plan_phrase};
use crate::app::use_current_user;
use crate::domain::format::{validate, ConfigFormat};
use crate::domain::plan::decide::PlanState;
use crate::model::{NewConfig, Role};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

/// The environments as tabs (a frozen one marked), and the selected one's freeze.
#[component]
fn EnvTabs(
    ns: Memo<String>,
    env: Memo<String>,
    environments: Resource<Result<Vec<crate::model::Environment>, crate::Error>>,
) -> impl IntoView {
    view! {
        <Transition>
            <div class="tabs" role="tablist" aria-label="Environments">
                {move || environments.get().and_then(|r| r.ok()).unwrap_or_default().into_iter().map(|e| {
                    let selected = e.name == env.get();
                    let mark = e.frozen.is_some().then(|| {
                        view! { <span class="frozen-dot" title="frozen now">" ❄"<span class="sr-only">" (frozen)"</span></span> }
                    });
                    view! {
                        <A href=format!("/ns/{}/{}", ns.get(), e.name) attr:class=if selected { "tab selected" } else { "tab" } attr:role="tab" attr:aria-selected=selected.to_string()>
                            {e.name.clone()}{mark}
                        </A>
                    }
                }).collect_view()}
            </div>
        </Transition>
        <Transition>
            {move || Suspend::new(async move {
                let here = env.get();
                let frozen = environments.await.ok().and_then(|list| {
                    list.into_iter().find(|e| e.name == here).and_then(|e| e.frozen)
                });
                view! { <FrozenMark frozen /> }
            })}
        </Transition>
    }
}

/// The configs of one namespace in one environment, with environment tabs.
#[component]
pub fn ConfigListPage() -> impl IntoView {
    let params = use_params_map();
    let ns = Memo::new(move |_| params.read().get("ns").unwrap_or_default());
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());
    let create = ServerAction::<CreateConfig>::new();
    let configs = Resource::new(
        move || (ns.get(), env.get(), create.version().get()),
        |(ns, env, _)| list_configs(ns, env),
    );
    let environments = Resource::new(|| (), |_| list_environments());
    let can_create = use_current_user().is_some_and(|u| u.role >= Role::Editor);

    view! {
        <Title text=move || format!("{} · {}", ns.get(), env.get()) />
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/" exact=true>"Namespaces"</A> " / " <strong aria-current="page">{ns}</strong>
        </nav>
        <div class="page-head">
            <h1>{ns}</h1>
            <A href=move || format!("/instances/{}/{}", ns.get(), env.get())>"Instances in " {env}</A>
        </div>
        <EnvTabs ns env environments />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match configs.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">{format!("No configs in {} yet — create the first one below.", env.get_untracked())}</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="grid" data-testid="configs">
                            <thead><tr><th>"Config"</th><th>"Format"</th><th>"Serving"</th><th>"Latest"</th><th>"Updated"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|c| {
                                    // A version a lane serves is released to its slice, not a draft.
                                    let draft = c.stable_version.is_none_or(|s| c.latest_version > s)
                                        && c.lanes.iter().all(|l| l.version != c.latest_version);
                                    let href = format!("/ns/{}/{}/{}", c.namespace, c.env, c.key);
                                    let label = c.key.clone();
                                    view! {
                                        <tr data-config=c.key.clone()>
                                            <td><A href=href><strong>{label}</strong></A></td>
                                            <td><code>{c.format.to_string()}</code></td>
                                            <td class="serving-list" data-testid="serving">
                                                {match c.stable_version {
                                                    Some(v) => view! { <StableBadge version=v /> }.into_any(),
                                                    None => view! { <span class="muted">"not released"</span> }.into_any(),
                                                }}
                                                // Every active lane, and where its plan is: no need to open the config.
                                                {c.lanes.iter().map(|l| view! {
                                                    " "
                                                    <span class="badge violet" data-lane=l.id title=format!("Gray lane {}", l.id)>{format!("◐ {}", lane_badge(l))}</span>
                                                    {l.plan.as_ref().map(|p| {
                                                        let class = match p.state {
                                                            PlanState::Running => "badge blue",
                                                            PlanState::Paused => "badge grey",
                                                            PlanState::Completed => "badge green",
                                                            PlanState::Aborted => "badge red",
                                                        };
                                                        view! { " " <span class=class data-plan=p.state.as_str()>{plan_phrase(p)}</span> }
                                                    })}
                                                }).collect_view()}
                                                {c.aborted_lane.as_ref().map(|l| {
                                                    let when = l.closed_at.map(|t| format!(" on {} UTC", t.minutes())).unwrap_or_default();
                                                    view! {
                                                        " "
                                                        <span class="badge red" data-plan="aborted" title=l.plan.as_ref().and_then(|p| p.reason.clone()).unwrap_or_default()>
                                                            {format!("✕ plan of lane {} (v{}) aborted{when}", l.id, l.version)}
                                                        </span>
                                                    }
                                                })}
                                            </td>
                                            <td>{if draft { view! { <DraftBadge version=c.latest_version /> }.into_any() } else { view! { <span class="muted">"v" {c.latest_version}</span> }.into_any() }}</td>
                                            <td class="muted">{c.updated_at.minutes()}</td>
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
        <Show when=move || can_create>
            <NewConfigForm ns env create />
        </Show>
    }
}

#[component]
fn NewConfigForm(
    ns: Memo<String>,
    env: Memo<String>,
    create: ServerAction<CreateConfig>,
) -> impl IntoView {
    let key = RwSignal::new(String::new());
    let format = RwSignal::new(ConfigFormat::Json);
    let content = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    // Nothing typed yet is not an error to show; Create stays disabled with its reason.
    let error = Signal::derive(move || {
        let text = content.get();
        (!text.trim().is_empty())
            .then(|| validate(format.get(), &text).err())
            .flatten()
    });
    let reason = move || {
        if let Some(e) = error.get() {
            Some(format!("Fix the error first ({e})."))
        } else if validate(format.get(), &content.get()).is_err() {
            Some("Type the content of version 1 first.".to_string())
        } else {
            None
        }
    };
    Effect::new(move |_| {
        if let Some(Ok(c)) = create.value().get() {
            let _ = window()
                .location()
                .set_href(&format!("/ns/{}/{}/{}", c.namespace, c.env, c.key));
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let m = message.get_untracked();
        create.dispatch(CreateConfig {
            namespace: ns.get_untracked(),
            env: env.get_untracked(),
            config: NewConfig {
                key: key.get_untracked().trim().to_string(),
                format: format.get_untracked(),
                content: content.get_untracked(),
                message: (!m.trim().is_empty()).then_some(m),
            },
        });
    };
    view! {
        <section class="card">
            <h2>"Create a config in " {env}</h2>
            <form class="stack" on:submit=on_submit>
                <div class="inline-form">
                    <label>"Key" <input name="config-key" placeholder="app.json" required bind:value=key /></label>
                    <label>
                        "Format"
                        <select name="config-format" on:change=move |ev| {
                            if let Ok(f) = event_target_value(&ev).parse() { format.set(f) }
                        }>
                            {ConfigFormat::ALL.into_iter().map(|f| view! { <option value=f.as_str() selected=move || format.get() == f>{f.as_str()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="grow">"Message" <input name="config-message" placeholder="What is this config for?" bind:value=message /></label>
                </div>
                <ContentEditor content error label="Content" />
                <div class="actions">
                    <button class="btn primary" type="submit" disabled=move || reason().is_some() || create.pending().get()
                        aria-describedby="create-reason">
                        "Create config (version 1)"
                    </button>
                    <span class="muted" id="create-reason" data-testid="create-reason">
                        {move || reason().unwrap_or_else(|| "Creating a config releases nothing.".to_string())}
                    </span>
                </div>
                <ErrorLine error=action_error(create) />
            </form>
        </section>
    }
}
