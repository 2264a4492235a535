use crate::api::configs::{
    diff_versions, get_config, get_version, latest_version, rollout_progress, version_history,
    DeleteConfig, Release, SaveVersion,
};
use crate::api::governance::{load_config_governance, RequestChange, ReviewOverride};
use crate::app::components::{
    action_error, Dialog, DialogBar, DiffView, DraftBadge, ErrorLine, StableBadge,
};
use crate::app::pages::editor::ContentEditor;
use crate::app::pages::governance::ConfigGovernancePanel;
use crate::app::pages::instances::{use_live_instances, RolloutProgress};
use crate::app::pages::lanes::{LanePanel, LanePanelState};
use crate::app::pages::plan_timeline::{AbortBanners, PlanLive};
use crate::app::pages::shared::Keys;
use crate::app::sentences::{lane_rule, plan_notices};
use crate::app::use_current_user;
use crate::domain::diff::diff_lines;
use crate::domain::format::validate;
use crate::model::{
    ChangeAction, Config, ConfigGovernance, ConfigPath, HistoryPage, NewVersion, Role, Rollout,
    Version, VersionState, VersionStatus,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

/// One config: what is serving now, the editor, and the version history with
/// release and rollback.
#[component]
pub fn ConfigPage() -> impl IntoView {
    let params = use_params_map();
    let ns = Memo::new(move |_| params.read().get("ns").unwrap_or_default());
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());
    let key = Memo::new(move |_| params.read().get("key").unwrap_or_default());
    let save = ServerAction::<SaveVersion>::new();
    let release = ServerAction::<Release>::new();
    let delete = ServerAction::<DeleteConfig>::new();
    let request = ServerAction::<RequestChange>::new();
    let review = ServerAction::<ReviewOverride>::new();
    // Reload only after a change succeeded: a refused save must not reset the
    // editor and lose the user's edit.
    let refresh = RwSignal::new(0u32);
    // The edit in progress lives here, above the views that reload, so a
    // refused save never loses it.
    let draft: RwSignal<Option<String>> = RwSignal::new(None);
    let conflict = RwSignal::new(false);
    Effect::new(move |_| {
        match save.value().get() {
            Some(Ok(_)) => {
                draft.set(None);
                conflict.set(false);
                refresh.update(|n| *n += 1);
            }
            // Someone saved first: reload to show their version against the edit.
            Some(Err(e)) if e.status == 409 => {
                conflict.set(true);
                refresh.update(|n| *n += 1);
            }
            _ => {}
        }
    });
    Effect::new(move |_| {
        if matches!(release.value().get(), Some(Ok(_))) {
            refresh.update(|n| *n += 1);
        }
    });

    // A deleted config has no page left: go to the list it has left.
    let navigate = use_navigate();
    follow_governance(request, review, refresh);
    Effect::new(move |_| {
        if matches!(delete.value().get(), Some(Ok(()))) {
            navigate(
                &format!("/ns/{}/{}", ns.get_untracked(), env.get_untracked()),
                Default::default(),
            );
        }
    });
    let changes = move || refresh.get();
    let config = Resource::new(
        move || (ns.get(), env.get(), key.get(), changes()),
        |(ns, env, key, _)| get_config(ConfigPath::new(ns, env, key)),
    );
    // The newest version with its content (what an edit starts from); the history lists the
    // versions without contents, a page at a time.
    let latest = Resource::new(
        move || (ns.get(), env.get(), key.get(), changes()),
        |(ns, env, key, _)| latest_version(ConfigPath::new(ns, env, key)),
    );
    let history = Resource::new(
        move || (ns.get(), env.get(), key.get(), changes()),
        |(ns, env, key, _)| version_history(ConfigPath::new(ns, env, key), None),
    );
    let governance = Resource::new(
        move || (ns.get(), env.get(), key.get(), changes()),
        |(ns, env, key, _)| load_config_governance(ConfigPath::new(ns, env, key)),
    );
    // Created here, outside the Transition that rebuilds the view on every
    // reload, so nothing still awaited is disposed by a rebuild.
    let live = use_live_instances(ns, env);
    let keys = Keys { ns, env, key };
    let plans = PlanLive::new(keys, refresh, live.updates);
    let lane_panel = LanePanelState::new(keys, refresh, live.connected, plans);
    let notices = follow_plan_notices(keys, plans);
    let rollout = Resource::new(
        move || (ns.get(), env.get(), key.get(), changes()),
        |(ns, env, key, _)| rollout_progress(ConfigPath::new(ns, env, key)),
    );
    let rollout_now = follow_rollout(keys, refresh, live.updates);
    view! {
        <Title text=move || key.get() />
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/" exact=true>"Namespaces"</A> " / "
            <A href=move || format!("/ns/{}/{}", ns.get(), env.get()) exact=true>{ns} " · " {env}</A> " / "
            <strong aria-current="page">{key}</strong>
        </nav>
        <Notices notices />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                // Everything the view reads is loaded here, before it is built:
                // a resource still pending inside the rebuilt view would stream
                // separately and could hydrate out of step.
                let (config, latest, lanes) = (config.await, latest.await, lane_panel.lanes.await);
                let (history, progress) = (history.await, rollout.await);
                // Without it the page still works; the server still guards every change.
                let governance = governance.await.ok();
                // A plan that cannot be read leaves the page usable (the lanes still show).
                let plans = plans.loaded.await.ok();
                let _ = live.initial.await;
                match (config, latest, history, progress) {
                    (Ok(config), Ok(latest), Ok(history), Ok(progress)) => view! {
                        <ConfigView config latest history lanes plans save release delete draft conflict lane_panel progress rollout_now governance request review />
                    }.into_any(),
                    (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A change that became a request opens the request's page (it says where it stands and who
/// may approve it); a reviewed override reloads the page, which drops its banner.
fn follow_governance(
    request: ServerAction<RequestChange>,
    review: ServerAction<ReviewOverride>,
    refresh: RwSignal<u32>,
) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(r)) = request.value().get() {
            navigate(&format!("/requests/{}", r.id), Default::default());
        }
    });
    Effect::new(move |_| {
        if matches!(review.value().get(), Some(Ok(_))) {
            refresh.update(|n| *n += 1);
        }
    });
}

/// What the lanes' plans did while the page is open: a notice each, once (never for what
/// had happened before the page loaded).
fn follow_plan_notices(keys: Keys, plans: PlanLive) -> RwSignal<Vec<(u32, String)>> {
    let notices: RwSignal<Vec<(u32, String)>> = RwSignal::new(Vec::new());
    let seen_lanes = StoredValue::new(None::<(ConfigPath, Vec<crate::model::Lane>)>);
    Effect::new(move |_| {
        let Some(Ok(now)) = plans.loaded.get() else {
            return;
        };
        let path = keys.path();
        let fresh = seen_lanes.with_value(|seen| match seen {
            Some((p, before)) if *p == path => plan_notices(before, &now.lanes, &now.plans),
            _ => Vec::new(),
        });
        seen_lanes.set_value(Some((path, now.lanes)));
        if !fresh.is_empty() {
            notices.update(|list| {
                let mut next = list.iter().map(|(n, _)| *n).max().unwrap_or(0);
                for text in fresh {
                    next += 1;
                    list.push((next, text));
                }
            });
        }
    });
    notices
}

/// The plans' notices, each until dismissed.
#[component]
fn Notices(notices: RwSignal<Vec<(u32, String)>>) -> impl IntoView {
    view! {
        <div class="notices" role="status" aria-live="polite" data-testid="notices">
            <For each=move || notices.get() key=|(n, _)| *n let:notice>
                <p class="notice">
                    <span>{notice.1.clone()}</span>
                    " "
                    <button class="btn small" aria-label="Dismiss this notice"
                        on:click=move |_| notices.update(|list| list.retain(|(n, _)| *n != notice.0))>"Dismiss"</button>
                </p>
            </For>
        </div>
    }
}

/// The rollout as the server counts it, asked again whenever the live feed says instances
/// changed (or the page reloaded), in the browser only, into a plain signal. A late answer
/// never overwrites a newer one.
fn follow_rollout(
    keys: Keys,
    refresh: RwSignal<u32>,
    updates: RwSignal<u32>,
) -> RwSignal<Option<Rollout>> {
    let rollout_now = RwSignal::new(None::<Rollout>);
    let rollout_asked = StoredValue::new(0u64);
    Effect::new(move |_| {
        let updates = updates.get();
        refresh.track();
        let asked = rollout_asked.get_value() + 1;
        rollout_asked.set_value(asked);
        if updates == 0 {
            rollout_now.set(None);
            return;
        }
        let path = keys.path();
        leptos::task::spawn_local(async move {
            let answer = rollout_progress(path).await.ok();
            if rollout_asked.try_get_value() == Some(asked) && answer.is_some() {
                rollout_now.try_set(answer);
            }
        });
    });
    rollout_now
}

#[component]
fn ConfigView(
    config: Config,
    /// The newest version, with its content.
    latest: Version,
    /// The first page of the version history: the newest versions and what each is now.
    history: HistoryPage,
    lanes: Result<Vec<crate::model::Lane>, crate::Error>,
    /// The plans of the lanes, loaded with the page.
    plans: Option<crate::api::plan_fns::ConfigPlans>,
    save: ServerAction<SaveVersion>,
    release: ServerAction<Release>,
    delete: ServerAction<DeleteConfig>,
    draft: RwSignal<Option<String>>,
    conflict: RwSignal<bool>,
    lane_panel: LanePanelState,
    /// The rollout when the page loaded, and as the live feed updates it.
    progress: Rollout,
    rollout_now: RwSignal<Option<Rollout>>,
    /// The environment's protection and freeze, the config's open requests and overrides.
    governance: Option<ConfigGovernance>,
    request: ServerAction<RequestChange>,
    review: ServerAction<ReviewOverride>,
) -> impl IntoView {
    let user = use_current_user();
    let can_edit = user.as_ref().is_some_and(|u| u.role >= Role::Editor);
    let can_release = user.as_ref().is_some_and(|u| u.role >= Role::Releaser);
    let gate = ReleaseGate {
        approvals: governance.as_ref().map_or(0, |g| g.approvals),
        frozen: governance.as_ref().is_some_and(|g| g.frozen.is_some()),
        is_admin: user.as_ref().is_some_and(|u| u.role == Role::Admin),
        can_request: can_edit,
    };
    // The lane form picks among the versions of the first page.
    let versions = StoredValue::new(
        history
            .versions
            .iter()
            .map(|s| s.version.clone())
            .collect::<Vec<_>>(),
    );
    let config = StoredValue::new(config);
    let c = config.get_value();
    let audit_href = format!("/audit?namespace={}&env={}&q={}", c.namespace, c.env, c.key);
    let dialog: RwSignal<Option<i64>> = RwSignal::new(None);
    // The first page is newest first, so it holds the latest version.
    let latest_is_draft = history
        .versions
        .iter()
        .find(|s| s.version.version == c.latest_version)
        .is_none_or(|s| s.state == VersionState::NeverReleased);

    let banners = plans
        .clone()
        .map(|initial| view! { <AbortBanners live=lane_panel.plans initial /> });
    let governance_panel = governance.map(|gov| {
        let env = c.env.clone();
        view! { <ConfigGovernancePanel gov env review /> }
    });
    view! {
        {banners}
        {governance_panel}
        <header class="serving card" aria-live="polite">
            <div>
                <h1>{c.key.clone()} " " <code class="muted">{c.format.to_string()}</code></h1>
                <p class="muted">{c.namespace.clone()} " · " {c.env.clone()}</p>
            </div>
            <div class="serving-now" data-testid="serving-now">
                <span class="label">"Serving now"</span>
                {match c.stable_version {
                    Some(v) => view! { <StableBadge version=v /> }.into_any(),
                    None => view! { <span class="badge grey">"Nothing released — subscribers get 404"</span> }.into_any(),
                }}
                <span class="lanes-now" data-testid="lanes-now">
                    {c.lanes.iter().map(|l| {
                        let rule = lane_rule(l.version, l.percentage.as_f64(), &l.selector, &l.targets, &l.stickiness);
                        view! { <span class="badge violet" data-lane=l.id title="A gray lane">{format!("◐ lane {}: {rule}", l.id)}</span> }
                    }).collect_view()}
                </span>
                {latest_is_draft.then(|| view! { <DraftBadge version=c.latest_version /> })}
            </div>
            <A href=audit_href.clone()>"History in the audit trail"</A>
        </header>

        <Show when=move || can_edit>
            <Editor config latest=latest.clone() save draft conflict />
        </Show>

        <LanePanel state=lane_panel stable=c.stable_version versions lanes plans can_release />
        <RolloutProgress initial=progress now=rollout_now ns=c.namespace.clone() env=c.env.clone() />

        <VersionList config history release dialog can_release gate />
        {move || dialog.get().map(|target| view! { <ReleaseDialog config target release request gate close=move || dialog.set(None) /> })}
        <DangerZone config delete can_release />
    }
}

/// The version history, newest first, a page at a time: "Show older versions" fetches the next.
#[component]
fn VersionList(
    config: StoredValue<Config>,
    /// The first page, loaded with the page.
    history: HistoryPage,
    release: ServerAction<Release>,
    /// The version whose release dialog is open.
    dialog: RwSignal<Option<i64>>,
    can_release: bool,
    gate: ReleaseGate,
) -> impl IntoView {
    let HistoryPage {
        versions: first,
        next_before,
    } = history;
    // The pages fetched after the first, and where the next one starts.
    let older: RwSignal<Vec<VersionStatus>> = RwSignal::new(Vec::new());
    let next = RwSignal::new(next_before);
    let loading = RwSignal::new(false);
    let failed: RwSignal<Option<crate::Error>> = RwSignal::new(None);
    let show_older = move |_| {
        let Some(before) = next.get_untracked() else {
            return;
        };
        let path = config.with_value(|c| ConfigPath::new(&c.namespace, &c.env, &c.key));
        loading.set(true);
        leptos::task::spawn_local(async move {
            match version_history(path, Some(before)).await {
                Ok(page) => {
                    older.try_update(|o| o.extend(page.versions));
                    next.try_set(page.next_before);
                    failed.try_set(None);
                }
                Err(e) => {
                    failed.try_set(Some(e));
                }
            }
            loading.try_set(false);
        });
    };
    let row =
        move |s: VersionStatus| view! { <VersionRow config status=s dialog can_release gate /> };
    view! {
        <section class="card">
            <h2>"Versions"</h2>
            <ErrorLine error=action_error(release) />
            <table class="grid" data-testid="versions">
                <thead><tr><th>"Version"</th><th>"Status"</th><th>"Message"</th><th>"Author"</th><th>"Saved"</th><th>"Actions"</th></tr></thead>
                <tbody>
                    {first.into_iter().map(row).collect_view()}
                    {move || older.get().into_iter().map(row).collect_view()}
                </tbody>
            </table>
            <ErrorLine error=failed />
            <Show when=move || next.get().is_some()>
                <button class="btn" data-testid="older-versions" disabled=move || loading.get() on:click=show_older>
                    "Show older versions"
                </button>
            </Show>
        </section>
    }
}

/// One version in the history: what it is now, and links to compare, release or roll back.
#[component]
fn VersionRow(
    config: StoredValue<Config>,
    status: VersionStatus,
    dialog: RwSignal<Option<i64>>,
    can_release: bool,
    gate: ReleaseGate,
) -> impl IntoView {
    let c = config.get_value();
    let diff_base = format!("/ns/{}/{}/{}/diff", c.namespace, c.env, c.key);
    let VersionStatus { version: v, state } = status;
    let stable = c.stable_version;
    let n = v.version;
    let compare_from = stable
        .filter(|s| *s != n)
        .unwrap_or(if n > 1 { n - 1 } else { n });
    let action_label = match stable {
        Some(s) if n < s => Some("Roll back to this version"),
        Some(s) if n == s => None,
        // In a protected environment a release becomes a request, which editors may make.
        _ if gate.approvals > 0 => Some("Request release"),
        _ => Some("Release"),
    };
    view! {
        <tr data-version=n id=format!("v{n}")>
            <td><strong>"v" {n}</strong></td>
            <td>{version_badge(n, state)}</td>
            <td>{if v.message.is_empty() { "—".to_string() } else { v.message.clone() }}</td>
            <td>{v.author.clone()}</td>
            <td class="muted">{v.created_at.minutes()}</td>
            <td class="row-actions">
                <A href=format!("{diff_base}?from={compare_from}&to={n}")>"Compare"</A>
                {action_label.map(|label| {
                    let requested = label == "Request release";
                    let disabled = if requested { !gate.can_request } else { !can_release };
                    view! {
                        <button
                            class=if label == "Roll back to this version" { "btn" } else { "btn primary" }
                            disabled=disabled
                            title=match (disabled, requested) {
                                (false, _) => "",
                                (true, true) => "Requesting a release needs the editor role",
                                (true, false) => "Releasing needs the releaser role",
                            }
                            on:click=move |_| dialog.set(Some(n))
                        >{label}</button>
                    }
                })}
            </td>
        </tr>
    }
}

/// Deleting the config, at the bottom of its page, behind a dialog that asks
/// for the key to be typed.
#[component]
fn DangerZone(
    config: StoredValue<Config>,
    delete: ServerAction<DeleteConfig>,
    can_release: bool,
) -> impl IntoView {
    let c = config.get_value();
    let open = RwSignal::new(false);
    let message = RwSignal::new(String::new());
    let typed = RwSignal::new(String::new());
    let key = c.key.clone();
    let confirmed = move || typed.with(|t| t.trim() == key);
    let lanes = match c.lanes.len() {
        0 => String::new(),
        1 => " Its active gray lane closes.".to_string(),
        n => format!(" Its {n} active gray lanes close."),
    };
    let effect = format!(
        "Every subscriber of {} in {} · {} stops receiving it (a deleted event) and the config leaves every list.{lanes} \
         Its versions and release events stay in the audit trail; the key can be created again, starting at version 1.",
        c.key, c.namespace, c.env
    );
    let title = format!("Delete {} from {} · {}", c.key, c.namespace, c.env);
    let key_label = c.key.clone();
    let (ns, env, key) = (c.namespace.clone(), c.env.clone(), c.key.clone());
    let dispatch = move |_| {
        let m = message.get_untracked();
        delete.dispatch(DeleteConfig {
            path: ConfigPath::new(ns.clone(), env.clone(), key.clone()),
            message: (!m.trim().is_empty()).then_some(m),
        });
    };
    view! {
        <section class="card danger-zone" data-testid="danger-zone">
            <h2>"Danger zone"</h2>
            <p>"Delete this config from " {c.namespace.clone()} " · " {c.env.clone()} "."</p>
            <button
                class="btn danger"
                disabled=!can_release
                title=if can_release { "" } else { "Deleting a config needs the releaser role" }
                on:click=move |_| open.set(true)
            >"Delete this config…"</button>
        </section>
        {move || open.get().then(|| {
            let (key, title, effect) = (key_label.clone(), title.clone(), effect.clone());
            let (confirmed, dispatch) = (confirmed.clone(), dispatch.clone());
            view! {
                <Dialog title on_close=move || open.set(false)>
                    <p>{effect}</p>
                    <DialogBar slot>
                        <label>"Message" <input name="delete-message" placeholder="Why" bind:value=message /></label>
                        <label><span>"Type " <code>{key.clone()}</code> " to confirm"</span> <input name="confirm-key" bind:value=typed /></label>
                        <ErrorLine error=action_error(delete) />
                        <div class="dialog-actions">
                            <button class="btn" on:click=move |_| open.set(false)>"Cancel"</button>
                            <span class="spacer"></span>
                            <button
                                class="btn danger"
                                disabled={
                                    let confirmed = confirmed.clone();
                                    move || !confirmed() || delete.pending().get()
                                }
                                title={
                                    let confirmed = confirmed.clone();
                                    move || if confirmed() { String::new() } else { "Type the config's key to confirm".to_string() }
                                }
                                on:click=dispatch
                            >"Delete " {key}</button>
                        </div>
                    </DialogBar>
                </Dialog>
            }
        })}
    }
}

/// Exactly one state per version, in the dashboard's status vocabulary.
fn version_badge(version: i64, state: VersionState) -> AnyView {
    match state {
        VersionState::Stable => view! { <StableBadge version /> }.into_any(),
        VersionState::InLanes { lanes } => {
            let list = lanes
                .iter()
                .map(|l| format!("lane {} at {}", l.lane, l.percentage))
                .collect::<Vec<_>>()
                .join(", ");
            view! { <span class="badge violet" data-state="in-lanes">{format!("◐ in {list}")}</span> }.into_any()
        }
        VersionState::WasStable { until, by, rolled_back } => {
            let then = if rolled_back {
                "rolled back".to_string()
            } else {
                format!("superseded by v{by}")
            };
            view! {
                <span class="badge grey superseded" data-state="was-stable">
                    {format!("was stable until {}, {then}", until.minutes())}
                </span>
            }
            .into_any()
        }
        VersionState::WasInLanes { lanes } => {
            let list = lanes
                .iter()
                .map(|l| {
                    let when = l.closed_at.map(|t| format!(" {}", t.minutes())).unwrap_or_default();
                    format!("lane {} ({}{when})", l.lane, l.status.as_str())
                })
                .collect::<Vec<_>>()
                .join(", ");
            view! { <span class="badge grey" data-state="was-in-lanes">{format!("was in {list}")}</span> }.into_any()
        }
        VersionState::NeverReleased => {
            view! { <span class="badge amber" data-state="never-released">"✎ never released"</span> }.into_any()
        }
    }
}

#[component]
fn Editor(
    config: StoredValue<Config>,
    /// The newest version: the edit starts from it.
    latest: Version,
    save: ServerAction<SaveVersion>,
    draft: RwSignal<Option<String>>,
    conflict: RwSignal<bool>,
) -> impl IntoView {
    let base_version = latest.version;
    let base_content = latest.content.clone();
    let content = RwSignal::new(
        draft
            .get_untracked()
            .unwrap_or_else(|| base_content.clone()),
    );
    Effect::new(move |_| {
        let c = content.get();
        draft.set(Some(c));
    });
    let message = RwSignal::new(String::new());
    let format = config.with_value(|c| c.format);
    let error = Signal::derive(move || validate(format, &content.get()).err());
    let base = StoredValue::new(base_content);
    let unchanged = move || content.with(|c| base.with_value(|b| c == b));
    let reason = move || {
        if let Some(e) = error.get() {
            Some(format!("Fix the error first ({e})."))
        } else if unchanged() {
            Some("No changes to save.".to_string())
        } else {
            None
        }
    };
    let on_save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (ns, env, key) =
            config.with_value(|c| (c.namespace.clone(), c.env.clone(), c.key.clone()));
        let m = message.get_untracked();
        save.dispatch(SaveVersion {
            path: ConfigPath::new(ns, env, key),
            version: NewVersion {
                content: content.get_untracked(),
                message: (!m.trim().is_empty()).then_some(m),
                base_version,
            },
        });
    };
    view! {
        <section class="card">
            <h2>"Edit"</h2>
            {move || conflict.get().then(|| latest.clone()).map(|newer| {
                let diff = diff_lines(&newer.content, &content.get_untracked());
                let n = newer.version;
                view! {
                    <div class="conflict" role="alert">
                        <p>
                            <strong>"Version " {n} " was saved by " {newer.author.clone()} " while you were editing."</strong>
                            " Your edit is kept. Left: v" {n} "; right: your edit. Saving now creates v" {n + 1} " on top of v" {n} "."
                        </p>
                        <DiffView diff />
                        <button class="btn" on:click=move |_| conflict.set(false)>"Dismiss"</button>
                    </div>
                }
            })}
            <p class="muted">"Saving creates version " {base_version + 1} " from v" {base_version} "; it changes nothing live until released."</p>
            <form class="stack" on:submit=on_save>
                <ContentEditor content error label="Content" />
                <label class="grow">"Message" <input name="version-message" placeholder="What changed and why" bind:value=message /></label>
                <div class="actions">
                    <button class="btn primary" type="submit" disabled=move || reason().is_some() || save.pending().get() aria-describedby="save-reason">
                        "Save version"
                    </button>
                    <button class="btn" type="button" disabled=unchanged on:click=move |_| content.set(base.get_value())>"Discard changes"</button>
                    <span class="muted" id="save-reason" data-testid="save-reason">{reason}</span>
                </div>
                <ErrorLine error=Signal::derive(move || save.value().get().and_then(|r| r.err()).filter(|e| e.status != 409)) />
            </form>
        </section>
    }
}

/// What governs a release from this page: the environment's protection and freeze, and what the
/// signed-in person may do about them.
#[derive(Clone, Copy)]
struct ReleaseGate {
    /// Approvals a release of a newer version needs (0: none).
    approvals: i64,
    frozen: bool,
    /// Admins may break glass.
    is_admin: bool,
    /// Editors and above may request a release.
    can_request: bool,
}

#[component]
fn ReleaseDialog(
    config: StoredValue<Config>,
    target: i64,
    release: ServerAction<Release>,
    request: ServerAction<RequestChange>,
    gate: ReleaseGate,
    close: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let c = config.get_value();
    let stable = c.stable_version;
    let rollback = stable.is_some_and(|s| target < s);
    // A release of a newer version widens what is live: in a protected environment it becomes
    // a request; while frozen it waits. An admin may break glass instead.
    let requested = gate.approvals > 0 && !rollback;
    let can_break_glass = gate.is_admin && !rollback && (requested || gate.frozen);
    let break_glass = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    // Only the two versions compared are fetched. Created when the dialog opens and read only
    // inside it, so it lives as long as the dialog.
    let path = ConfigPath::new(&c.namespace, &c.env, &c.key);
    let diff = LocalResource::new(move || {
        let path = path.clone();
        async move {
            match stable {
                Some(stable) => diff_versions(path, stable, target, false).await,
                None => get_version(path, target)
                    .await
                    .map(|v| diff_lines("", &v.content)),
            }
        }
    });
    let message = RwSignal::new(String::new());
    let typed = RwSignal::new(String::new());
    let needs_typing = c.env == "prod";
    let env = c.env.clone();
    let env_check = env.clone();
    let confirmed = move || !needs_typing || typed.get() == env_check;
    let glass_ok = move || !break_glass.get() || reason.with(|r| r.trim().chars().count() >= 10);
    let title = if rollback {
        format!("Roll back {} to v{target}", c.env)
    } else if requested {
        format!("Request the release of v{target} to {}", c.env)
    } else {
        format!("Release v{target} to {}", c.env)
    };
    let effect = if rollback {
        format!("Every instance on stable receives v{target} immediately; no further release needed. History is kept: this is recorded as a rollback.")
    } else if requested {
        let n = gate.approvals;
        format!(
            "{} is protected: your change becomes a request needing {n} approval{} from other releasers. When the last one approves, every instance on stable receives v{target} — unless the stable release, the lanes or v{target} changed meanwhile (then the request is stale).",
            c.env,
            if n == 1 { "" } else { "s" }
        )
    } else {
        format!("Every instance on stable receives v{target} immediately.")
    };
    let frozen_note = (gate.frozen && !rollback).then(|| {
        format!(
            "{} is frozen: a release waits until the freeze ends (the banner at the top says until when).",
            c.env
        )
    });
    let (ns, key) = (c.namespace.clone(), c.key.clone());
    Effect::new(move |prev: Option<usize>| {
        let n = release.version().get();
        if prev.is_some_and(|p| p != n) && matches!(release.value().get_untracked(), Some(Ok(_))) {
            close();
        }
        n
    });
    let error = Signal::derive(move || {
        release
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| request.value().get().and_then(|r| r.err()))
    });
    let pending = move || release.pending().get() || request.pending().get();
    let button_label = move || {
        if rollback {
            format!("Roll back to v{target}")
        } else if break_glass.get() {
            format!("Release v{target} now (break glass)")
        } else if requested {
            format!("Request release v{target}")
        } else {
            format!("Release v{target}")
        }
    };
    let dispatch = move |_| {
        let m = message.get_untracked();
        let message = (!m.trim().is_empty()).then_some(m);
        let path = ConfigPath::new(
            ns.clone(),
            config.with_value(|c| c.env.clone()),
            key.clone(),
        );
        if requested && !break_glass.get_untracked() {
            request.dispatch(RequestChange {
                path,
                action: ChangeAction::Release,
                body: serde_json::json!({ "version": target }),
                message,
            });
        } else {
            release.dispatch(Release {
                path,
                version: target,
                message,
                break_glass: break_glass
                    .get_untracked()
                    .then(|| reason.get_untracked().trim().to_string()),
            });
        }
    };
    view! {
        <Dialog title on_close=close>
            <p data-testid="release-effect">{effect}</p>
            {frozen_note.map(|n| view! { <p class="warning">{n}</p> })}
            <h3>{match stable { Some(s) => format!("Changes against stable v{s}"), None => "Full content (nothing released yet)".to_string() }}</h3>
            <Suspense fallback=|| view! { <p class="loading">"Loading the diff…"</p> }>
                {move || Suspend::new(async move {
                    match diff.await {
                        Ok(diff) => view! { <DiffView diff /> }.into_any(),
                        Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    }
                })}
            </Suspense>
            <DialogBar slot>
                <label>"Message" <input name="release-message" placeholder="Why" bind:value=message /></label>
                {needs_typing.then(|| view! {
                    <label><span>"Type " <code>{env.clone()}</code> " to confirm"</span> <input name="confirm-env" bind:value=typed /></label>
                })}
                {can_break_glass.then(|| view! {
                    <label class="check break-glass">
                        <input type="checkbox" name="break-glass" prop:checked=move || break_glass.get() on:change=move |ev| break_glass.set(event_target_checked(&ev)) />
                        " Break glass: release now without approvals, audited and shown in red until another releaser reviews it"
                    </label>
                    <Show when=move || break_glass.get()>
                        <label>"Reason (at least 10 characters)" <input name="override-reason" bind:value=reason /></label>
                    </Show>
                })}
                <ErrorLine error />
                <div class="dialog-actions">
                    <button class="btn" on:click=move |_| close()>"Cancel"</button>
                    <span class="spacer"></span>
                    <button
                        class=move || if rollback || break_glass.get() { "btn danger" } else { "btn primary" }
                        disabled=move || !confirmed() || !glass_ok() || pending()
                        on:click=dispatch
                    >{button_label}</button>
                </div>
            </DialogBar>
        </Dialog>
    }
}
