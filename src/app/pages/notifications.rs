//! Notification channels (admins): where release, lane, rollout and change-request events go,
//! and each channel's deliveries with a "send a test" button (docs/api.md, "Notification
//! channels").

use crate::api::admin::{
    list_channels, load_deliveries, CreateChannel, DeleteChannel, TestChannel,
};
use crate::app::components::{action_error, ErrorLine};
use crate::model::{Channel, ChannelFormat, Delivery, DeliveryStatus, NewChannel};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

/// `lane.*, rollback` → `["lane.*", "rollback"]`.
fn patterns(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn optional(text: String) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let create = ServerAction::<CreateChannel>::new();
    let delete = ServerAction::<DeleteChannel>::new();
    let test = ServerAction::<TestChannel>::new();
    let channels = Resource::new(
        move || {
            (
                create.version().get(),
                delete.version().get(),
                test.version().get(),
            )
        },
        |_| list_channels(),
    );
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let format = RwSignal::new(String::from("json"));
    let events = RwSignal::new(String::new());
    let namespace = RwSignal::new(String::new());
    let env = RwSignal::new(String::new());
    let on_create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateChannel {
            channel: NewChannel {
                name: name.get_untracked(),
                url: url.get_untracked(),
                secret: optional(secret.get_untracked()),
                format: format
                    .get_untracked()
                    .parse()
                    .unwrap_or(ChannelFormat::Json),
                events: patterns(&events.get_untracked()),
                namespace: optional(namespace.get_untracked()),
                env: optional(env.get_untracked()),
            },
        });
    };
    view! {
        <Title text="Notifications" />
        <h1>"Notifications"</h1>
        <section class="card">
            <h2>"Add a channel"</h2>
            <p class="muted">
                "Each event is POSTed to the URL after its change commits, signed with the secret ("
                <code>"X-Graycast-Signature-256"</code>
                "), and retried for 24 hours. Slack: create an incoming webhook in your Slack app, paste its URL and choose the slack format (no secret needed)."
            </p>
            <form class="inline-form" on:submit=on_create>
                <label>"Name" <input name="channel-name" required maxlength="64" bind:value=name /></label>
                <label>"URL" <input name="channel-url" type="url" required maxlength="2048" placeholder="https://hooks.slack.com/services/…" bind:value=url /></label>
                <label>
                    "Format"
                    <select name="channel-format" on:change=move |ev| format.set(event_target_value(&ev))>
                        <option value="json">"json"</option>
                        <option value="slack">"slack"</option>
                    </select>
                </label>
                <label>"Secret" <input name="channel-secret" type="password" autocomplete="new-password" maxlength="256" placeholder="16+ characters" bind:value=secret /></label>
                <label>"Events" <input name="channel-events" placeholder="all: or release, rollback, lane.*" bind:value=events /></label>
                <label>"Namespace" <input name="channel-namespace" placeholder="any" bind:value=namespace /></label>
                <label>"Environment" <input name="channel-env" placeholder="any" bind:value=env /></label>
                <button class="btn primary" type="submit" disabled=create.pending()>"Add channel"</button>
            </form>
            <ErrorLine error=action_error(create) />
        </section>
        <ErrorLine error=action_error(delete) />
        <ErrorLine error=action_error(test) />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match channels.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No channels yet: add one to hear of releases, rollbacks and rollouts where you are."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="grid" data-testid="channels">
                            <thead><tr><th>"Name"</th><th>"URL"</th><th>"Events"</th><th>"Scope"</th><th>"Last delivery"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|c| view! { <ChannelRow channel=c delete test /> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ChannelRow(
    channel: Channel,
    delete: ServerAction<DeleteChannel>,
    test: ServerAction<TestChannel>,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let id = channel.id;
    let events = if channel.events.is_empty() {
        "every event".to_string()
    } else {
        channel.events.join(", ")
    };
    let scope = match (&channel.namespace, &channel.env) {
        (None, None) => "everything".to_string(),
        (ns, env) => [ns.as_deref(), env.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/"),
    };
    let last = channel
        .last
        .as_ref()
        .map(|d| view! { <StatusBadge delivery=d.clone() /> });
    let pending = (channel.pending > 0).then(|| format!(" {} waiting", channel.pending));
    view! {
        <tr data-channel=channel.name.clone()>
            <td>
                {channel.name.clone()}
                " "
                <span class="badge blue">{channel.format.to_string()}</span>
                {(!channel.signed).then(|| view! { " " <span class="muted">"unsigned"</span> })}
            </td>
            <td><code>{channel.url.clone()}</code></td>
            <td>{events}</td>
            <td>{scope}</td>
            <td>{last}<span class="muted">{pending}</span></td>
            <td>
                <A href=format!("/admin/notifications/{id}")>"Deliveries"</A>
                " "
                <button class="btn" on:click=move |_| { test.dispatch(TestChannel { id }); }>"Send a test"</button>
                " "
                <Show
                    when=move || confirming.get()
                    fallback=move || view! { <button class="btn" on:click=move |_| confirming.set(true)>"Delete…"</button> }
                >
                    <span class="confirm">
                        "Its waiting deliveries are dropped. "
                        <button class="btn" on:click=move |_| confirming.set(false)>"Keep"</button>
                        <button class="btn danger" on:click=move |_| { delete.dispatch(DeleteChannel { id }); }>"Delete channel"</button>
                    </span>
                </Show>
            </td>
        </tr>
    }
}

/// `✓ delivered`, `… pending`, `✕ failed`: a word beside the color.
#[component]
fn StatusBadge(delivery: Delivery) -> impl IntoView {
    let (class, mark) = match delivery.status {
        DeliveryStatus::Delivered => ("badge green", "✓"),
        DeliveryStatus::Pending => ("badge amber", "…"),
        DeliveryStatus::Failed => ("badge red", "✕"),
    };
    view! { <span class=class>{mark} " " {delivery.status.to_string()}</span> }
}

/// `/admin/notifications/{id}`: a channel's deliveries, newest first, paged with `?before=`.
#[component]
pub fn DeliveriesPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let test = ServerAction::<TestChannel>::new();
    let refresh = RwSignal::new(0u32);
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|v| v.parse::<i64>().ok())
    };
    let page = Resource::new(
        move || (id(), before(), test.version().get(), refresh.get()),
        |(id, before, _, _)| load_deliveries(id, before),
    );
    view! {
        <Title text="Deliveries" />
        <p><A href="/admin/notifications">"← Notifications"</A></p>
        <ErrorLine error=action_error(test) />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok((channel, page)) => {
                        let cid = channel.id;
                        let older = page.next_before.map(|b| view! {
                            <A href=format!("/admin/notifications/{cid}?before={b}")>"Older deliveries"</A>
                        });
                        view! {
                            <h1>"Deliveries of " {channel.name.clone()}</h1>
                            <p class="muted"><code>{channel.url.clone()}</code></p>
                            <p>
                                <button class="btn primary" on:click=move |_| { test.dispatch(TestChannel { id: cid }); }>"Send a test"</button>
                                " "
                                <button class="btn" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
                            </p>
                            {if page.deliveries.is_empty() {
                                view! { <p class="empty">"Nothing delivered yet."</p> }.into_any()
                            } else {
                                view! {
                                    <table class="grid" data-testid="deliveries">
                                        <thead><tr><th>"#"</th><th>"Event"</th><th>"Status"</th><th>"Attempts"</th><th>"Last answer"</th><th>"When"</th></tr></thead>
                                        <tbody>{page.deliveries.into_iter().map(|d| view! { <DeliveryRow delivery=d /> }).collect_view()}</tbody>
                                    </table>
                                }.into_any()
                            }}
                            {older}
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DeliveryRow(delivery: Delivery) -> impl IntoView {
    let answer = match (&delivery.last_status, &delivery.last_error) {
        (_, Some(error)) => error.clone(),
        (Some(code), None) => format!("HTTP {code}"),
        (None, None) => "not tried yet".into(),
    };
    let when = match (&delivery.delivered_at, &delivery.next_attempt_at) {
        (Some(at), _) => format!("delivered {}", at.minutes()),
        (None, Some(next)) => format!("next try {}", next.minutes()),
        _ => format!("made {}", delivery.created_at.minutes()),
    };
    view! {
        <tr data-delivery=delivery.id>
            <td>{delivery.id}</td>
            <td><code>{delivery.event.clone()}</code></td>
            <td><StatusBadge delivery=delivery.clone() /></td>
            <td>{delivery.attempts}</td>
            <td>{answer}</td>
            <td class="muted">{when}</td>
        </tr>
    }
}
