//! Change requests (issue 28): the list, its filters in the URL, and one request with its
//! diff, blast radius then and now, plan, approvals and the decisions a person can take.

use crate::api::governance::{
    list_change_requests, load_change_request, unreviewed_overrides, ApplyChangeRequest,
    DecideChangeRequest, Decision, ReviewOverride,
};
use crate::app::components::{action_error, DiffView, ErrorLine};
use crate::app::pages::shared::capitalized;
use crate::app::sentences::request_words;
use crate::app::use_current_user;
use crate::model::{
    ChangeRequest, ChangeRequestQuery, ChangeRequestView, ChangeStatus, OverrideEntry, Preview,
    Role,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

/// The statuses a person filters by, in the order of the tabs.
const STATUSES: [ChangeStatus; 7] = [
    ChangeStatus::Pending,
    ChangeStatus::Scheduled,
    ChangeStatus::Applied,
    ChangeStatus::Rejected,
    ChangeStatus::Stale,
    ChangeStatus::Withdrawn,
    ChangeStatus::Expired,
];

/// A request's status in the dashboard's vocabulary (text, icon and colour).
pub fn status_badge(r: &ChangeRequest) -> impl IntoView {
    let (class, text) = match r.status {
        ChangeStatus::Pending => (
            "badge blue",
            format!(
                "⏳ pending: {} of {} approvals",
                r.approvals.len(),
                r.approvals_needed
            ),
        ),
        ChangeStatus::Scheduled => (
            "badge blue",
            match r.apply_at {
                Some(at) => format!("⏲ scheduled for {} UTC", at.minutes()),
                None => "⏲ scheduled".to_string(),
            },
        ),
        ChangeStatus::Applied => ("badge green", "✓ applied".to_string()),
        ChangeStatus::Rejected => ("badge red", "✕ rejected".to_string()),
        ChangeStatus::Stale => ("badge grey superseded", "stale".to_string()),
        ChangeStatus::Withdrawn => ("badge grey superseded", "withdrawn".to_string()),
        ChangeStatus::Expired => ("badge grey superseded", "expired".to_string()),
    };
    view! { <span class=class data-status=r.status.as_str()>{text}</span> }
}

/// The list the URL asks for.
fn url_query() -> Memo<ChangeRequestQuery> {
    let query_map = use_query_map();
    let param = move |name: &str| query_map.read().get(name).filter(|v| !v.is_empty());
    Memo::new(move |_| ChangeRequestQuery {
        env: param("env"),
        namespace: param("namespace"),
        status: param("status").and_then(|s| s.parse().ok()),
        author: param("author"),
        before: param("before").and_then(|v| v.parse().ok()),
        limit: None,
    })
}

/// The URL of a list: `query` without its page.
fn list_url(query: &ChangeRequestQuery, before: Option<i64>) -> String {
    let pairs = [
        ("status", query.status.map(|s| s.as_str().to_string())),
        ("env", query.env.clone()),
        ("namespace", query.namespace.clone()),
        ("author", query.author.clone()),
        ("before", before.map(|b| b.to_string())),
    ];
    let q = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| format!("{k}={}", crate::domain::percent_encode(v)))
        })
        .collect::<Vec<_>>()
        .join("&");
    if q.is_empty() {
        "/requests".to_string()
    } else {
        format!("/requests?{q}")
    }
}

/// Every change request the caller may see, newest first, filtered by the URL.
#[component]
pub fn RequestsPage() -> impl IntoView {
    let query = url_query();
    let review = ServerAction::<ReviewOverride>::new();
    let page = Resource::new(move || query.get(), list_change_requests);
    let overrides = Resource::new(move || review.version().get(), |_| unreviewed_overrides());
    let (env, namespace, author) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    Effect::new(move |_| {
        let q = query.get();
        env.set(q.env.unwrap_or_default());
        namespace.set(q.namespace.unwrap_or_default());
        author.set(q.author.unwrap_or_default());
    });
    let navigate = use_navigate();
    let on_filter = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let field = |s: RwSignal<String>| {
            let v = s.get_untracked().trim().to_string();
            (!v.is_empty()).then_some(v)
        };
        let q = ChangeRequestQuery {
            env: field(env),
            namespace: field(namespace),
            author: field(author),
            status: query.get_untracked().status,
            ..Default::default()
        };
        navigate(&list_url(&q, None), Default::default());
    };
    view! {
        <Title text="Change requests" />
        <h1>"Change requests"</h1>
        <Transition>
            {move || Suspend::new(async move {
                overrides.await.ok().map(|list| view! { <OverrideBanners list review /> })
            })}
        </Transition>
        <div class="tabs" role="tablist" aria-label="Status">
            {move || {
                let q = query.get();
                let all = ChangeRequestQuery { status: None, ..q.clone() };
                let tab = |label: String, href: String, selected: bool| view! {
                    <A href=href attr:class=if selected { "tab selected" } else { "tab" } attr:role="tab" attr:aria-selected=selected.to_string()>{label}</A>
                };
                let mut tabs = vec![tab("All".into(), list_url(&all, None), q.status.is_none())];
                for s in STATUSES {
                    let this = ChangeRequestQuery { status: Some(s), ..q.clone() };
                    tabs.push(tab(capitalized(s.as_str()), list_url(&this, None), q.status == Some(s)));
                }
                tabs.collect_view()
            }}
        </div>
        <form class="inline-form" on:submit=on_filter aria-label="Filter the requests">
            <label>"Environment" <input name="env" placeholder="prod" bind:value=env /></label>
            <label>"Namespace" <input name="namespace" placeholder="shop" bind:value=namespace /></label>
            <label>"Author" <input name="author" placeholder="eve" bind:value=author /></label>
            <button class="btn" type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) if p.requests.is_empty() => view! {
                        <p class="empty">"No change requests here. In a protected environment, a release, a new lane or a wider one becomes a request that other releasers approve."</p>
                    }.into_any(),
                    Ok(p) => {
                        let older = p.next_before.map(|b| list_url(&query.get_untracked(), Some(b)));
                        view! {
                            <div class="table-box">
                                <table class="grid" data-testid="requests">
                                    <thead><tr><th>"Request"</th><th>"Config"</th><th>"Change"</th><th>"Author"</th><th>"Status"</th><th>"Made"</th></tr></thead>
                                    <tbody>
                                        {p.requests.into_iter().map(|r| {
                                            let config = format!("{} · {} · {}", r.namespace, r.env, r.key);
                                            view! {
                                                <tr data-request=r.id>
                                                    <td><A href=format!("/requests/{}", r.id)>{format!("#{}", r.id)}</A></td>
                                                    <td><A href=format!("/ns/{}/{}/{}", r.namespace, r.env, r.key)>{config}</A></td>
                                                    <td>{request_words(&r)}</td>
                                                    <td>{r.author.clone()}</td>
                                                    <td>{status_badge(&r)}</td>
                                                    <td class="muted">{r.created_at.minutes()}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {older.map(|href| view! { <A href=href attr:class="btn">"Older requests"</A> })}
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Break-glass overrides nobody reviewed yet: a red banner each, until another releaser marks
/// it reviewed.
#[component]
pub fn OverrideBanners(
    list: Vec<OverrideEntry>,
    review: ServerAction<ReviewOverride>,
) -> impl IntoView {
    let me = use_current_user();
    let releaser = me.as_ref().is_some_and(|u| u.role >= Role::Releaser);
    let my_name = me.map(|u| u.username).unwrap_or_default();
    view! {
        <div class="override-banners">
            {list.into_iter().map(|o| {
                let mine = o.actor == my_name;
                let id = o.id;
                let what = match o.change_request {
                    Some(r) => format!("applied change request #{r} ({})", o.action),
                    None => format!("applied {} at once", o.action),
                };
                view! {
                    <div class="banner danger" role="alert" data-testid="override-banner" data-override=id>
                        <p>
                            <strong>{format!("Break glass: {} {what} on {} · {} · {}, without the approvals, at {} UTC.", o.actor, o.namespace, o.env, o.key, o.at.minutes())}</strong>
                        </p>
                        <p>"Reason: " {o.reason.clone()}</p>
                        <p class="banner-links">
                            <span>"Not reviewed yet: another releaser should check it."</span>
                            {o.change_request.map(|r| view! { <A href=format!("/requests/{r}")>"Open the request"</A> })}
                            <button class="btn small"
                                disabled=!releaser || mine
                                title=if mine { "Someone other than the admin who overrode reviews it" } else if releaser { "" } else { "Reviewing needs the releaser role" }
                                on:click=move |_| { review.dispatch(ReviewOverride { id }); }
                            >"Mark reviewed"</button>
                        </p>
                    </div>
                }
            }).collect_view()}
            <ErrorLine error=action_error(review) />
        </div>
    }
}

/// One change request: what it does, what it puts live, whom it reaches, its approvals, and
/// the decisions the caller may take.
#[component]
pub fn RequestPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .read()
            .get("id")
            .and_then(|i| i.parse::<i64>().ok())
            .unwrap_or(0)
    });
    let decide = ServerAction::<DecideChangeRequest>::new();
    let apply = ServerAction::<ApplyChangeRequest>::new();
    let review = ServerAction::<ReviewOverride>::new();
    let view_of = Resource::new(
        move || {
            (
                id.get(),
                decide.version().get(),
                apply.version().get(),
                review.version().get(),
            )
        },
        |(id, ..)| load_change_request(id),
    );
    view! {
        <Title text=move || format!("Change request #{}", id.get()) />
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/requests" exact=true>"Change requests"</A> " / "
            <strong aria-current="page">{move || format!("#{}", id.get())}</strong>
        </nav>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match view_of.await {
                    Ok(v) => view! { <RequestView v decide apply review /> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn preview_words(p: &Preview) -> String {
    format!(
        "matches {} of {} connected instances",
        p.matched_count, p.connected_count
    )
}

#[component]
fn RequestView(
    v: ChangeRequestView,
    decide: ServerAction<DecideChangeRequest>,
    apply: ServerAction<ApplyChangeRequest>,
    review: ServerAction<ReviewOverride>,
) -> impl IntoView {
    let me = use_current_user();
    let is_admin = me.as_ref().is_some_and(|u| u.role == Role::Admin);
    let releaser = me.as_ref().is_some_and(|u| u.role >= Role::Releaser);
    let ChangeRequestView {
        request: r,
        preview_now,
        stale_now,
        can_approve,
        can_withdraw,
        override_entry,
    } = v;
    let id = r.id;
    let open = r.status.is_open();
    let config_href = format!("/ns/{}/{}/{}", r.namespace, r.env, r.key);
    let diff: Option<crate::domain::diff::Diff> =
        serde_json::from_value(r.diff["diff"].clone()).ok();
    let diff_title = match (r.diff["from"].as_i64(), r.diff["to"].as_i64()) {
        (Some(from), Some(to)) => format!("What it puts live: stable v{from} → v{to}"),
        (None, Some(to)) => format!("What it puts live: v{to} (nothing released before)"),
        _ => "What it puts live".to_string(),
    };
    let ended = (!open).then(|| {
        let by = r.ended_by.clone().unwrap_or_default();
        let when = r
            .ended_at
            .map(|t| format!(" at {} UTC", t.minutes()))
            .unwrap_or_default();
        let why = r
            .reason
            .clone()
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        format!("{} by {by}{when}{why}", capitalized(r.status.as_str()))
    });
    let comment = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let send = move |decision: Decision| {
        let c = comment.get_untracked();
        decide.dispatch(DecideChangeRequest {
            id,
            decision,
            comment: (!c.trim().is_empty()).then_some(c),
        });
    };
    let override_banner = override_entry
        .filter(|o| o.reviewed_at.is_none())
        .map(|o| view! { <OverrideBanners list=vec![o] review /> });
    let plan = r
        .plan
        .as_ref()
        .map(|p| serde_json::to_string_pretty(p).unwrap_or_default());
    view! {
        {override_banner}
        <header class="card request-head">
            <h1>{format!("Change request #{id}")}</h1>
            <p class="lead" data-testid="request-action">{request_words(&r)}</p>
            <p>{status_badge(&r)}</p>
            <dl class="facts">
                <dt>"Config"</dt><dd><A href=config_href>{format!("{} · {} · {}", r.namespace, r.env, r.key)}</A></dd>
                <dt>"Asked by"</dt><dd>{r.author.clone()} " at " {r.created_at.minutes()} " UTC"</dd>
                <dt>"Message"</dt><dd>{if r.message.is_empty() { "—".to_string() } else { r.message.clone() }}</dd>
                <dt>"Approvals"</dt><dd>{format!("{} of {} needed", r.approvals.len(), r.approvals_needed)}</dd>
                {r.apply_at.map(|at| view! { <dt>"Applies at"</dt><dd>{at.minutes()} " UTC"</dd> })}
            </dl>
            {ended.map(|e| view! { <p class="ended" data-testid="request-ended">{e}</p> })}
            {stale_now.clone().filter(|_| open).map(|why| view! {
                <p class="error" role="alert" data-testid="stale-now">"Applying it now would be refused as stale: " {why} " Make the request again."</p>
            })}
        </header>
        <section class="card">
            <h2>{diff_title}</h2>
            {match diff {
                Some(diff) => view! { <DiffView diff /> }.into_any(),
                None => view! { <p class="muted">"No content diff is kept for this request."</p> }.into_any(),
            }}
        </section>
        {(r.preview.is_some() || preview_now.is_some()).then(|| view! {
            <section class="card" data-testid="blast-radius">
                <h2>"Blast radius"</h2>
                <p>"When it was asked: " {r.preview.as_ref().map(preview_words).unwrap_or_else(|| "not known".into())}</p>
                <p>"Now: " {preview_now.as_ref().map(preview_words).unwrap_or_else(|| "not known (the request is no longer open)".into())}</p>
            </section>
        })}
        {plan.map(|p| view! {
            <section class="card">
                <h2>"Rollout plan"</h2>
                <pre class="plan-json" tabindex="0">{p}</pre>
            </section>
        })}
        <section class="card">
            <h2>"Approvals and comments"</h2>
            {if r.approvals.is_empty() {
                view! { <p class="muted">"No approvals yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="approvals" data-testid="approvals">
                        {r.approvals.iter().map(|a| view! {
                            <li>"✓ " <strong>{a.approver.clone()}</strong> " approved at " {a.at.minutes()} " UTC"
                                {(!a.comment.is_empty()).then(|| format!(": {}", a.comment))}</li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {open.then(|| view! {
                <div class="stack decide">
                    <label>"Comment" <textarea name="comment" rows="2" placeholder="Why (needed to reject)" bind:value=comment></textarea></label>
                    <div class="actions">
                        <button class="btn primary" data-testid="approve"
                            disabled=move || !can_approve || decide.pending().get()
                            title=if can_approve { "" } else { "Another releaser of this environment approves: not its author, not an admin, once each" }
                            on:click=move |_| send(Decision::Approve)>"Approve"</button>
                        <button class="btn"
                            disabled=move || !can_withdraw || decide.pending().get()
                            title=if can_withdraw { "" } else { "Only its author withdraws a request" }
                            on:click=move |_| send(Decision::Withdraw)>"Withdraw"</button>
                        <span class="spacer"></span>
                        <button class="btn danger"
                            disabled=move || !releaser || comment.with(|c| c.trim().is_empty()) || decide.pending().get()
                            title=move || if !releaser { "Rejecting needs the releaser role" } else if comment.with(|c| c.trim().is_empty()) { "Say why in the comment first" } else { "" }
                            on:click=move |_| send(Decision::Reject)>"Reject"</button>
                    </div>
                </div>
            })}
            // Outside the open request's controls: a refused approval (stale) still says why
            // after the request, now ended, reloads.
            <ErrorLine error=action_error(decide) />
            {(open && is_admin).then(|| view! {
                <details class="break-glass">
                    <summary>"Break glass: apply now without the approvals"</summary>
                    <p>"Audited as an override and shown in red on the config and here until another releaser reviews it."</p>
                    <label>"Reason (at least 10 characters)" <input name="override-reason" bind:value=reason /></label>
                    <button class="btn danger"
                        disabled=move || reason.with(|r| r.trim().chars().count() < 10) || apply.pending().get()
                        on:click=move |_| { apply.dispatch(ApplyChangeRequest { id, reason: reason.get_untracked() }); }
                    >"Apply now"</button>
                    <ErrorLine error=action_error(apply) />
                </details>
            })}
        </section>
    }
}
