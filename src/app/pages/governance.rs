//! Change governance where configs are (issue 28, point 6): the config page's protection hint,
//! freeze banner, open requests and break-glass banners; the frozen mark beside an
//! environment's name; and an environment's settings — protection and freeze windows, with a
//! week view of the weekly ones and the next windows listed.

use crate::api::governance::{
    load_env_governance, CreateFreeze, DeleteFreeze, ReviewOverride, SetProtection,
};
use crate::app::components::{action_error, ErrorLine};
use crate::app::pages::requests::{status_badge, OverrideBanners};
use crate::app::pages::shared::capitalized;
use crate::app::sentences::request_words;
use crate::app::use_current_user;
use crate::model::{ConfigGovernance, Freeze, FrozenNow, NewFreeze, Role, WeeklyWindow};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

/// `❄ frozen until …` beside an environment's name, wherever its configs appear.
#[component]
pub fn FrozenMark(frozen: Option<FrozenNow>) -> impl IntoView {
    frozen.map(|f| {
        let title = format!(
            "Frozen: {}. Widening changes wait until {}.",
            f.reason, f.until_wall
        );
        view! {
            <span class="badge blue frozen" data-testid="frozen-mark" title=title>
                {format!("❄ frozen until {} UTC", f.until.minutes())}
            </span>
        }
    })
}

/// What governs changes to one config: a freeze in force, overrides nobody reviewed, the
/// environment's protection (said before the user acts) and the open requests.
#[component]
pub fn ConfigGovernancePanel(
    gov: ConfigGovernance,
    env: String,
    review: ServerAction<ReviewOverride>,
) -> impl IntoView {
    let ConfigGovernance {
        approvals,
        frozen,
        open_requests,
        unreviewed_overrides,
    } = gov;
    let settings = format!("/admin/environments/{env}");
    let (env_f, settings_f) = (env.clone(), settings.clone());
    let frozen_banner = frozen.map(move |f| {
        let (env, settings) = (env_f, settings_f);
        view! {
            <div class="banner frozen-banner" role="status" data-testid="frozen-banner">
                <p>
                    <strong>{format!("❄ {env} is frozen until {} ({} UTC)", f.until_wall, f.until.minutes())}</strong>
                    {format!(": {}.", f.reason)}
                </p>
                <p>"Releases, new lanes, wider lanes and promotions wait until then. Aborts, rollbacks to an earlier stable version, lower percentages and pausing a plan still work; running plans hold at their step."</p>
                <p><A href=settings.clone()>"Freeze windows of " {env.clone()}</A></p>
            </div>
        }
    });
    let overrides = (!unreviewed_overrides.is_empty())
        .then(|| view! { <OverrideBanners list=unreviewed_overrides review /> });
    let hint = (approvals > 0).then(|| {
        let n = if approvals == 1 {
            "1 approval".to_string()
        } else {
            format!("{approvals} approvals")
        };
        view! {
            <p class="protected-hint" data-testid="protected-hint">
                <span aria-hidden="true">"🔒 "</span>
                <strong>{format!("{env} is protected: your change becomes a request needing {n}")}</strong>
                " from other releasers before it goes live. Aborts, rollbacks to an earlier stable version and lower percentages apply at once. "
                <A href=settings>"Protection settings"</A>
            </p>
        }
    });
    let pending = (!open_requests.is_empty()).then(|| {
        view! {
            <section class="card" data-testid="open-requests">
                <h2>"Open change requests"</h2>
                <ul class="plain">
                    {open_requests.into_iter().map(|r| view! {
                        <li data-request=r.id>
                            <A href=format!("/requests/{}", r.id)>{format!("#{}", r.id)}</A>
                            " " {request_words(&r)} " — " {r.author.clone()} " " {status_badge(&r)}
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        }
    });
    view! {
        {frozen_banner}
        {overrides}
        {hint}
        {pending}
    }
}

use crate::model::WEEKDAYS as DAYS;
const DAY_MINUTES: i64 = 24 * 60;
const WEEK_MINUTES: i64 = 7 * DAY_MINUTES;

/// Minutes since Monday 00:00 of a day and `HH:MM`.
fn week_minute(day: &str, time: &str) -> Option<i64> {
    let d = DAYS.iter().position(|x| x.eq_ignore_ascii_case(day))? as i64;
    let (h, m) = time.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    Some(d * DAY_MINUTES + h * 60 + m)
}

/// The parts of a weekly window on each day it covers: `(day, from minute, to minute)`; the
/// window ends at the first `to` after `from` (a whole week when they are equal).
pub fn day_segments(w: &WeeklyWindow) -> Vec<(usize, i64, i64)> {
    let (Some(start), Some(end)) = (
        week_minute(&w.from_day, &w.from_time),
        week_minute(&w.to_day, &w.to_time),
    ) else {
        return Vec::new();
    };
    let end = if end > start { end } else { end + WEEK_MINUTES };
    let mut out = Vec::new();
    let mut t = start;
    while t < end {
        let day_end = (t / DAY_MINUTES + 1) * DAY_MINUTES;
        let stop = day_end.min(end);
        let day = ((t / DAY_MINUTES) % 7) as usize;
        out.push((day, t % DAY_MINUTES, stop - (t / DAY_MINUTES) * DAY_MINUTES));
        t = stop;
    }
    out
}

fn hhmm(minute: i64) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// A window in words: `every Friday 16:00 to Monday 08:00 (Europe/Berlin)` or
/// `once, 2026-12-24 00:00 to 2026-12-27 00:00 UTC`.
fn window_words(f: &Freeze) -> String {
    match (&f.weekly, f.from, f.to) {
        (Some(w), ..) => format!(
            "every {} {} to {} {} ({})",
            capitalized(&w.from_day),
            w.from_time,
            capitalized(&w.to_day),
            w.to_time,
            w.time_zone
        ),
        (None, Some(from), Some(to)) => {
            format!("once, {} to {} UTC", from.minutes(), to.minutes())
        }
        _ => "—".to_string(),
    }
}

/// The weekly windows on a week, one column a day, each in its own time zone's wall time.
#[component]
fn WeekView(freezes: Vec<Freeze>) -> impl IntoView {
    let weekly: Vec<(Freeze, WeeklyWindow)> = freezes
        .into_iter()
        .filter_map(|f| f.weekly.clone().map(|w| (f, w)))
        .collect();
    if weekly.is_empty() {
        return view! { <p class="muted">"No weekly windows."</p> }.into_any();
    }
    let zones: std::collections::BTreeSet<String> =
        weekly.iter().map(|(_, w)| w.time_zone.clone()).collect();
    let zones = zones.into_iter().collect::<Vec<_>>().join(", ");
    view! {
        <p class="muted">"Each window in its own time zone's wall time (" {zones} ")."</p>
        <div class="week-view" data-testid="week-view" role="list" aria-label="Weekly freeze windows">
            {DAYS.iter().enumerate().map(|(d, day)| {
                let blocks: Vec<_> = weekly.iter().flat_map(|(f, w)| {
                    day_segments(w).into_iter().filter(move |(x, ..)| *x == d).map(move |(_, a, b)| {
                        let label = format!("{} {}–{} ({}): {}", capitalized(day), hhmm(a), hhmm(b), w.time_zone, f.reason);
                        let style = format!("top:{:.2}%;height:{:.2}%", a as f64 * 100.0 / DAY_MINUTES as f64, (b - a) as f64 * 100.0 / DAY_MINUTES as f64);
                        let title = label.clone();
                        view! { <span class="week-block" style=style title=title><span class="sr-only">{label}</span></span> }
                    })
                }).collect();
                view! {
                    <div class="week-day" role="listitem">
                        <span class="week-day-name">{capitalized(&day[..3])}</span>
                        <div class="week-day-hours">{blocks}</div>
                    </div>
                }
            }).collect_view()}
        </div>
    }
    .into_any()
}

/// An environment's settings: protection and freeze windows.
#[component]
pub fn EnvSettingsPage() -> impl IntoView {
    let params = use_params_map();
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());
    let protect = ServerAction::<SetProtection>::new();
    let create = ServerAction::<CreateFreeze>::new();
    let delete = ServerAction::<DeleteFreeze>::new();
    let gov = Resource::new(
        move || {
            (
                env.get(),
                protect.version().get(),
                create.version().get(),
                delete.version().get(),
            )
        },
        |(env, ..)| load_env_governance(env),
    );
    let me = use_current_user();
    let is_admin = me.is_some_and(|u| u.role == Role::Admin);
    view! {
        <Title text=move || format!("{} · settings", env.get()) />
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/admin/environments" exact=true>"Environments"</A> " / "
            <strong aria-current="page">{env}</strong>
        </nav>
        <h1>{move || format!("Environment {}", env.get())}</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match gov.await {
                    Ok(g) => view! {
                        <FrozenMark frozen=g.frozen.clone() />
                        <ProtectionCard env=g.env.clone() approvals=g.protection.approvals protect is_admin />
                        <FreezesCard env=g.env.clone() freezes=g.freezes.clone() create delete is_admin />
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ProtectionCard(
    env: String,
    approvals: i64,
    protect: ServerAction<SetProtection>,
    is_admin: bool,
) -> impl IntoView {
    let n = RwSignal::new(approvals.to_string());
    let state = if approvals == 0 {
        "Not protected: releasers apply changes directly.".to_string()
    } else {
        format!(
            "Protected: a release of a newer version, a new lane or plan, a wider lane and a promotion each need {approvals} approval(s) from other releasers (never the author, never an admin)."
        )
    };
    let env_for_submit = env.clone();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let approvals = n.get_untracked().trim().parse().unwrap_or(-1);
        protect.dispatch(SetProtection {
            env: env_for_submit.clone(),
            approvals,
        });
    };
    view! {
        <section class="card" data-testid="protection">
            <h2>"Protection"</h2>
            <p data-testid="protection-state">{state}</p>
            {is_admin.then(|| view! {
                <form class="inline-form" on:submit=on_submit>
                    <label>"Approvals needed (0 lifts the protection)"
                        <input name="approvals" type="number" min="0" max="10" bind:value=n />
                    </label>
                    <button class="btn primary" type="submit" disabled=protect.pending()>"Save protection"</button>
                </form>
                <ErrorLine error=action_error(protect) />
            })}
        </section>
    }
}

#[component]
fn FreezesCard(
    env: String,
    freezes: Vec<Freeze>,
    create: ServerAction<CreateFreeze>,
    delete: ServerAction<DeleteFreeze>,
    is_admin: bool,
) -> impl IntoView {
    let mut next: Vec<(crate::model::Occurrence, String)> = freezes
        .iter()
        .flat_map(|f| f.next.iter().map(|o| (o.clone(), f.reason.clone())))
        .collect();
    next.sort_by_key(|(o, _)| o.from);
    next.truncate(10);
    let rows = freezes.clone();
    let env_delete = env.clone();
    view! {
        <section class="card" data-testid="freezes">
            <h2>"Freeze windows"</h2>
            <p class="muted">"While a window is in force, every change that widens what is live is refused (an admin may break glass, audited); running plans hold at their step and go on after it."</p>
            {if rows.is_empty() {
                view! { <p class="empty">"No freeze windows."</p> }.into_any()
            } else {
                view! {
                    <div class="table-box">
                        <table class="grid" data-testid="freeze-list">
                            <thead><tr><th>"Window"</th><th>"Reason"</th><th>"Now"</th><th>"By"</th><th>"Actions"</th></tr></thead>
                            <tbody>
                                {rows.into_iter().map(|f| {
                                    let id = f.id;
                                    let env = env_delete.clone();
                                    view! {
                                        <tr data-freeze=id>
                                            <td>{window_words(&f)}</td>
                                            <td>{f.reason.clone()}</td>
                                            <td>{if f.active { "❄ in force" } else { "—" }}</td>
                                            <td>{f.created_by.clone()}</td>
                                            <td>{is_admin.then(|| view! {
                                                <button class="btn small danger" on:click=move |_| { delete.dispatch(DeleteFreeze { env: env.clone(), id }); }>"Remove"</button>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            <ErrorLine error=action_error(delete) />
            <h3>"Week"</h3>
            <WeekView freezes />
            <h3>"Next windows"</h3>
            {if next.is_empty() {
                view! { <p class="muted">"None coming."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain" data-testid="next-windows">
                        {next.into_iter().map(|(o, reason)| view! {
                            <li>{format!("{} to {} UTC: {reason}", o.from.minutes(), o.to.minutes())}</li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {is_admin.then(|| view! { <NewFreezeForm env=env.clone() create /> })}
        </section>
    }
}

/// `2026-12-07T10:00` (a datetime-local input, read as UTC) as RFC 3339.
fn utc_of(local: &str) -> Option<String> {
    let local = local.trim();
    if local.is_empty() {
        return None;
    }
    Some(if local.len() == 16 {
        format!("{local}:00Z")
    } else {
        format!("{local}Z")
    })
}

#[component]
fn NewFreezeForm(env: String, create: ServerAction<CreateFreeze>) -> impl IntoView {
    let weekly = RwSignal::new(false);
    let (from, to, reason) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let (from_day, from_time, to_day, to_time, zone) = (
        RwSignal::new("friday".to_string()),
        RwSignal::new("16:00".to_string()),
        RwSignal::new("monday".to_string()),
        RwSignal::new("08:00".to_string()),
        RwSignal::new("UTC".to_string()),
    );
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let freeze = if weekly.get_untracked() {
            NewFreeze {
                weekly: Some(WeeklyWindow {
                    from_day: from_day.get_untracked(),
                    from_time: from_time.get_untracked(),
                    to_day: to_day.get_untracked(),
                    to_time: to_time.get_untracked(),
                    time_zone: zone.get_untracked().trim().to_string(),
                }),
                reason: reason.get_untracked(),
                ..Default::default()
            }
        } else {
            NewFreeze {
                from: utc_of(&from.get_untracked()),
                to: utc_of(&to.get_untracked()),
                reason: reason.get_untracked(),
                ..Default::default()
            }
        };
        create.dispatch(CreateFreeze {
            env: env.clone(),
            freeze,
        });
    };
    let day_options = move || {
        DAYS.iter()
            .map(|d| view! { <option value=*d>{capitalized(d)}</option> })
            .collect_view()
    };
    view! {
        <form class="stack new-freeze" on:submit=on_submit aria-label="Add a freeze window">
            <h3>"Add a window"</h3>
            <fieldset class="radios">
                <legend>"Kind"</legend>
                <label><input type="radio" name="freeze-kind" value="once" prop:checked=move || !weekly.get() on:change=move |_| weekly.set(false) /> " Once"</label>
                <label><input type="radio" name="freeze-kind" value="weekly" prop:checked=move || weekly.get() on:change=move |_| weekly.set(true) /> " Every week"</label>
            </fieldset>
            <Show when=move || !weekly.get()>
                <div class="inline-form">
                    <label>"From (UTC)" <input name="freeze-from" type="datetime-local" bind:value=from /></label>
                    <label>"To (UTC)" <input name="freeze-to" type="datetime-local" bind:value=to /></label>
                </div>
            </Show>
            <Show when=move || weekly.get()>
                <div class="inline-form">
                    <label>"From day" <select name="freeze-from-day" bind:value=from_day>{day_options()}</select></label>
                    <label>"From time" <input name="freeze-from-time" type="time" bind:value=from_time /></label>
                    <label>"To day" <select name="freeze-to-day" bind:value=to_day>{day_options()}</select></label>
                    <label>"To time" <input name="freeze-to-time" type="time" bind:value=to_time /></label>
                    <label>"Time zone (IANA)" <input name="freeze-zone" placeholder="Europe/Berlin" bind:value=zone /></label>
                </div>
            </Show>
            <label>"Reason" <input name="freeze-reason" placeholder="Release freeze" required bind:value=reason /></label>
            <div class="actions">
                <button class="btn primary" type="submit" disabled=create.pending()>"Add window"</button>
            </div>
            <ErrorLine error=action_error(create) />
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(fd: &str, ft: &str, td: &str, tt: &str) -> WeeklyWindow {
        WeeklyWindow {
            from_day: fd.into(),
            from_time: ft.into(),
            to_day: td.into(),
            to_time: tt.into(),
            time_zone: "UTC".into(),
        }
    }

    #[test]
    fn a_weekend_window_covers_friday_evening_to_monday_morning() {
        assert_eq!(
            day_segments(&w("friday", "16:00", "monday", "08:00")),
            [(4, 960, 1440), (5, 0, 1440), (6, 0, 1440), (0, 0, 480)]
        );
    }

    #[test]
    fn a_window_within_a_day_and_a_whole_week() {
        assert_eq!(
            day_segments(&w("tuesday", "09:30", "tuesday", "10:00")),
            [(1, 570, 600)]
        );
        let week = day_segments(&w("monday", "00:00", "monday", "00:00"));
        assert_eq!(week.len(), 7);
        assert!(week.iter().all(|(_, a, b)| *a == 0 && *b == DAY_MINUTES));
        assert!(day_segments(&w("someday", "09:00", "monday", "10:00")).is_empty());
    }
}
