//! Freeze windows per environment (docs/api.md, "Freeze windows"): while one is in force, every
//! action that widens what is live is refused with 409 `frozen` ([`guard_widening`]), and
//! running plans hold at their step (the plan scheduler). Shrinking actions never ask.
//! Viewers of an environment read its windows; its admins change them.

use crate::domain::audit::AuditAction;
pub use crate::model::{Freeze, NewFreeze, Occurrence, WeeklyWindow};
use crate::model::{Role, Scope, Timestamp};
use crate::server::auth::Actor;
use crate::server::clock::timestamp;
use crate::server::db::{self, audit::NewEntry, freezes::FreezeRow};
use crate::server::freezes::{
    self as arithmetic, frozen_at, wall_time, Schedule, Span, WeekTime, WeekTimeError, Weekly,
};
use crate::server::Core;
use crate::{Error, Result};
use serde_json::json;

/// At most this many windows per environment.
pub const MAX_FREEZES: i64 = 50;
/// The most characters of a window's reason.
pub const MAX_REASON_CHARS: usize = 200;
/// The longest one-off window.
pub const MAX_ONCE_DAYS: i64 = 366;
/// How many occurrences after the one in force a window lists.
pub const NEXT_OCCURRENCES: usize = 3;

/// A stored window's schedule; a row the table's checks should have kept out is an error.
fn schedule_of(row: &FreezeRow) -> Result<Schedule> {
    let corrupt = || Error::internal(format!("freeze window {} is corrupt", row.id));
    if let (Some(from), Some(to)) = (row.starts_at, row.ends_at) {
        return Ok(Schedule::Once(Span {
            start_ms: from.unix_ms(),
            end_ms: to.unix_ms(),
        }));
    }
    let field = |f: &Option<String>| f.clone().ok_or_else(corrupt);
    let weekly = WeeklyWindow {
        from_day: field(&row.from_day)?,
        from_time: field(&row.from_time)?,
        to_day: field(&row.to_day)?,
        to_time: field(&row.to_time)?,
        time_zone: field(&row.time_zone)?,
    };
    parse_weekly(&weekly)
        .map(Schedule::Weekly)
        .map_err(|_| corrupt())
}

/// The weekly window a body describes, or 400 naming the field that is wrong.
fn parse_weekly(w: &WeeklyWindow) -> Result<Weekly> {
    let end = |day: &str, time: &str, name: &str| {
        WeekTime::parse(day, time).map_err(|e| match e {
            WeekTimeError::Day => Error::invalid(
                &format!("weekly.{name}_day"),
                format!(
                    "weekly.{name}_day {} is not a day: use one of {}.",
                    crate::error::quoted(day),
                    arithmetic::DAYS.join(", ")
                ),
            ),
            WeekTimeError::Time => Error::invalid(
                &format!("weekly.{name}_time"),
                format!(
                    "weekly.{name}_time {} is not a time of day: use HH:MM, 00:00 to 23:59.",
                    crate::error::quoted(time)
                ),
            ),
        })
    };
    let from = end(&w.from_day, &w.from_time, "from")?;
    let to = end(&w.to_day, &w.to_time, "to")?;
    let zone = arithmetic::zone(&w.time_zone).ok_or_else(|| {
        Error::invalid(
            "weekly.time_zone",
            format!(
                "weekly.time_zone {} is not an IANA time zone: use a name such as \
                 Europe/Berlin or America/New_York.",
                crate::error::quoted(&w.time_zone)
            ),
        )
    })?;
    Weekly::new(from, to, zone).ok_or_else(|| {
        Error::invalid(
            "weekly.to_time",
            "A weekly window must end at another day or time than it starts.",
        )
    })
}

/// An RFC 3339 instant of the body, or 400 naming it.
fn instant(field: &str, text: Option<&str>) -> Result<Timestamp> {
    let text = text.ok_or_else(|| {
        Error::invalid(
            field,
            format!("A one-off window needs `from` and `to`; {field} is missing."),
        )
    })?;
    text.parse().map_err(|_| {
        Error::invalid(
            field,
            format!(
                "{field} {} is not an RFC 3339 time such as 2026-12-24T00:00:00Z.",
                crate::error::quoted(text)
            ),
        )
    })
}

/// What a new window is, checked: the one-off instants or the weekly fields.
enum Checked {
    Once(Timestamp, Timestamp),
    Weekly(WeeklyWindow),
}

fn check(new: &NewFreeze, now: Timestamp) -> Result<Checked> {
    let reason = new.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::invalid(
            "reason",
            format!("Give the window a reason of 1 to {MAX_REASON_CHARS} characters: it is what a refused action names."),
        ));
    }
    match (&new.weekly, new.from.is_some() || new.to.is_some()) {
        (Some(_), true) => Err(Error::invalid(
            "weekly",
            "Send either `from` and `to` (one-off) or `weekly`, not both.",
        )),
        (Some(weekly), false) => {
            let zone = parse_weekly(weekly)?.zone;
            // Stored as the database spells it (lookups ignore case: `europe/berlin`).
            let time_zone = zone.iana_name().unwrap_or(&weekly.time_zone).to_string();
            Ok(Checked::Weekly(WeeklyWindow {
                time_zone,
                ..weekly.clone()
            }))
        }
        (None, _) => {
            let from = instant("from", new.from.as_deref())?;
            let to = instant("to", new.to.as_deref())?;
            if to <= from {
                return Err(Error::invalid("to", "to must be later than from."));
            }
            if to.unix_ms() - from.unix_ms() > MAX_ONCE_DAYS * 86_400_000 {
                return Err(Error::invalid(
                    "to",
                    format!("A one-off window lasts at most {MAX_ONCE_DAYS} days; use a weekly one for what recurs."),
                ));
            }
            if to <= now {
                return Err(Error::invalid(
                    "to",
                    "The window is over already: to is in the past.",
                ));
            }
            Ok(Checked::Once(from, to))
        }
    }
}

fn shown(env: &str, row: FreezeRow, now_ms: i64) -> Result<Freeze> {
    let schedule = schedule_of(&row)?;
    let next = schedule.next(now_ms, NEXT_OCCURRENCES);
    let active = next.first().is_some_and(|s| s.contains(now_ms));
    let next = next
        .into_iter()
        .take(NEXT_OCCURRENCES + usize::from(active))
        .map(|s| Occurrence {
            from: timestamp(s.start_ms),
            to: timestamp(s.end_ms),
        })
        .collect();
    let weekly = match (
        &row.from_day,
        &row.from_time,
        &row.to_day,
        &row.to_time,
        &row.time_zone,
    ) {
        (Some(a), Some(b), Some(c), Some(d), Some(e)) => Some(WeeklyWindow {
            from_day: a.clone(),
            from_time: b.clone(),
            to_day: c.clone(),
            to_time: d.clone(),
            time_zone: e.clone(),
        }),
        _ => None,
    };
    Ok(Freeze {
        id: row.id,
        env: env.to_string(),
        reason: row.reason,
        from: row.starts_at,
        to: row.ends_at,
        weekly,
        active,
        next,
        created_by: row.created_by,
        created_at: row.created_at,
    })
}

/// 403 unless `actor` may change `env`'s windows: an admin allowed in it, not limited to a
/// namespace (a window freezes every namespace of the environment).
fn require_change(actor: &Actor, env: &str) -> Result<()> {
    actor.require(Role::Admin, Scope::env(env))?;
    if let Some(ns) = &actor.namespace {
        return Err(Error::forbidden(format!(
            "A freeze window holds every namespace of {env}, and you are limited to the {ns} \
             namespace."
        )));
    }
    Ok(())
}

/// The environment's id, or 404.
async fn env_id(conn: &mut db::Conn, env: &str) -> Result<i64> {
    db::templates::environment(&mut *conn, env)
        .await?
        .map(|(id, _)| id)
        .ok_or_else(|| {
            Error::not_found(format!(
                "There is no environment {}.",
                crate::error::quoted(env)
            ))
        })
}

/// `GET /api/v1/environments/{env}/freezes` (viewer of the environment), oldest first.
#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor, env: &str) -> Result<Vec<Freeze>> {
    actor.require(Role::Viewer, Scope::env(env))?;
    let mut conn = state.db.acquire().await?;
    let id = env_id(&mut conn, env).await?;
    let now = state.clock.now_ms();
    db::freezes::list(&mut *conn, id)
        .await?
        .into_iter()
        .map(|row| shown(env, row, now))
        .collect()
}

/// `POST /api/v1/environments/{env}/freezes` (admin of the environment).
#[tracing::instrument(skip_all)]
pub async fn create(state: &Core, actor: &Actor, env: &str, new: NewFreeze) -> Result<Freeze> {
    require_change(actor, env)?;
    let now = state.clock.now();
    let checked = check(&new, now)?;
    let reason = new.reason.trim();
    let mut tx = db::begin_write(&state.db).await?;
    let id = env_id(&mut tx, env).await?;
    if db::freezes::count(&mut *tx, id).await? >= MAX_FREEZES {
        return Err(Error::conflict(format!(
            "{env} has {MAX_FREEZES} freeze windows, the most it may have; delete one first."
        )));
    }
    let row = db::freezes::insert(
        &mut tx,
        db::freezes::NewFreeze {
            env_id: id,
            reason,
            once: match &checked {
                Checked::Once(from, to) => Some((*from, *to)),
                Checked::Weekly(_) => None,
            },
            weekly: match &checked {
                Checked::Weekly(w) => Some((
                    w.from_day.as_str(),
                    w.from_time.as_str(),
                    w.to_day.as_str(),
                    w.to_time.as_str(),
                    w.time_zone.as_str(),
                )),
                Checked::Once(..) => None,
            },
            created_by: &actor.name,
            created_at: now,
        },
    )
    .await?;
    let freeze = shown(env, row, now.unix_ms())?;
    record(&mut tx, state, actor, AuditAction::FreezeCreate, &freeze).await?;
    tx.commit().await?;
    // A running plan may be held (or freed) by it.
    state.scheduler.wake();
    Ok(freeze)
}

/// `DELETE /api/v1/environments/{env}/freezes/{id}` (admin of the environment).
#[tracing::instrument(skip_all)]
pub async fn delete(state: &Core, actor: &Actor, env: &str, id: i64) -> Result<Freeze> {
    require_change(actor, env)?;
    let now = state.clock.now();
    let mut tx = db::begin_write(&state.db).await?;
    let env_id = env_id(&mut tx, env).await?;
    let row = db::freezes::delete(&mut tx, env_id, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("{env} has no freeze window {id}.")))?;
    let freeze = shown(env, row, now.unix_ms())?;
    record(&mut tx, state, actor, AuditAction::FreezeDelete, &freeze).await?;
    tx.commit().await?;
    state.scheduler.wake();
    Ok(freeze)
}

async fn record(
    tx: &mut db::Tx<'_>,
    state: &Core,
    actor: &Actor,
    action: AuditAction,
    freeze: &Freeze,
) -> Result<()> {
    db::audit::record(
        tx,
        state.clock.now(),
        NewEntry::new(&actor.name, action)
            .env(&freeze.env)
            .details(json!({
                "id": freeze.id, "reason": freeze.reason, "from": freeze.from, "to": freeze.to,
                "weekly": freeze.weekly,
            })),
    )
    .await?;
    Ok(())
}

/// The freeze in force in an environment at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Frozen {
    /// The reason of the window in force that ends last.
    pub reason: String,
    /// When the environment is free again (windows that overlap or touch chain).
    pub until: Timestamp,
    /// `until` as the wall time of that window's zone (UTC for a one-off window).
    pub until_wall: String,
}

impl Frozen {
    /// As the API shows it.
    pub fn shown(self) -> crate::model::FrozenNow {
        crate::model::FrozenNow {
            reason: self.reason,
            until: self.until,
            until_wall: self.until_wall,
        }
    }

    /// `frozen (release freeze) until 2026-12-07T07:00:00.000Z (Monday 2026-12-07 08:00 CET)`.
    pub fn words(&self) -> String {
        format!(
            "frozen ({}) until {} ({})",
            self.reason, self.until, self.until_wall
        )
    }
}

/// An environment's windows as schedules with their reasons (for the scheduler, which reads
/// them once per plan per turn).
pub async fn schedules(conn: impl db::Executor<'_>, env: &str) -> Result<Vec<(Schedule, String)>> {
    db::freezes::of_env(conn, env)
        .await?
        .into_iter()
        .map(|row| Ok((schedule_of(&row)?, row.reason)))
        .collect()
}

/// The freeze in force at `now` among `windows`, if any.
pub fn frozen(windows: &[(Schedule, String)], now: Timestamp) -> Option<Frozen> {
    let schedules: Vec<Schedule> = windows.iter().map(|(s, _)| s.clone()).collect();
    let (i, until_ms) = frozen_at(&schedules, now.unix_ms())?;
    let zone = match &windows[i].0 {
        Schedule::Weekly(w) => w.zone.clone(),
        Schedule::Once(_) => jiff::tz::TimeZone::UTC,
    };
    Some(Frozen {
        reason: windows[i].1.clone(),
        until: timestamp(until_ms),
        until_wall: wall_time(&zone, until_ms),
    })
}

/// How much of `[from, to)` fell inside `windows`, in milliseconds (a plan's hold does not
/// count it).
pub fn frozen_ms(windows: &[(Schedule, String)], from_ms: i64, to_ms: i64) -> i64 {
    let schedules: Vec<Schedule> = windows.iter().map(|(s, _)| s.clone()).collect();
    arithmetic::overlap_ms(
        &schedules,
        Span {
            start_ms: from_ms,
            end_ms: to_ms,
        },
    )
}

/// Where a plan's hold counts from at `now_ms`: the step's start moved later by the frozen
/// time since it (a hold does not count the time its environment was frozen).
pub fn hold_start(windows: &[(Schedule, String)], step_started_at_ms: i64, now_ms: i64) -> i64 {
    step_started_at_ms + frozen_ms(windows, step_started_at_ms, now_ms)
}

/// 409 `frozen` when a freeze window of `env` is in force at `now`, naming the window (its
/// reason) and when the freeze ends; reads the windows on `conn` (inside the caller's
/// transaction, or a pooled connection).
pub async fn refuse_if_frozen_on(conn: &mut db::Conn, env: &str, now: Timestamp) -> Result<()> {
    match frozen_now(conn, env, now).await? {
        None => Ok(()),
        Some(f) => Err(f.refusal(env)),
    }
}

/// The freeze of `env` in force at `now`, if any.
pub async fn frozen_now(conn: &mut db::Conn, env: &str, now: Timestamp) -> Result<Option<Frozen>> {
    let windows = schedules(&mut *conn, env).await?;
    Ok(frozen(&windows, now))
}

impl Frozen {
    /// 409 `frozen`: a widening action in `env` waits until the freeze ends.
    pub fn refusal(&self, env: &str) -> Error {
        Error::frozen(
            format!(
                "{env} is frozen ({}) until {} ({}); this change widens what is live and \
                 must wait until then. Shrinking changes (abort, rollback, lowering a \
                 percentage, pausing a plan) still work.",
                self.reason, self.until, self.until_wall
            ),
            self.until,
        )
    }
}

/// [`refuse_if_frozen_on`] on a connection of the pool.
pub async fn refuse_if_frozen(core: &Core, env: &str, now: Timestamp) -> Result<()> {
    let mut conn = core.db.acquire().await?;
    refuse_if_frozen_on(&mut conn, env, now).await
}

/// Refuses while `env` is frozen: called by a person advancing a plan. The other widening
/// actions are checked in `governance::gate` (an admin's override passes) and when a change
/// request is applied. Shrinking actions never call it.
pub async fn guard_widening(core: &Core, conn: &mut db::Conn, env: &str) -> Result<()> {
    refuse_if_frozen_on(conn, env, core.clock.now()).await
}
