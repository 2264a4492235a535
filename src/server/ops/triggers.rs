//! Trigger URLs (docs/api.md, "Triggers"): a URL with an unguessable token that an alerting
//! system (Alertmanager, Grafana) calls to stop a rollout: abort the lanes of a config (or of
//! every config of a namespace in an environment), pause their running plans, or roll a config
//! back to its previous stable version. A fire only ever shrinks what is live, so it passes no
//! approval gate and no freeze (`ops::governance`, `ops::freezes`), and doing it again when
//! there is nothing left to shrink does nothing. Releasers of the scope make and change them;
//! its viewers list them. Only the token's SHA-256 is stored.

use super::lane_changes::Close;
use super::lookups::{env_ids, find};
use super::plans::{self, Carried, Move};
use super::{configs, lanes};
use crate::domain::audit::AuditAction;
use crate::domain::plan::decide::{Decision, PlanState};
use crate::model::{
    ChangeRequestQuery, ConfigPath, EnvPath, NewTrigger, ReleaseEvent, ReleaseKind, Role, Scope,
    Trigger, TriggerAction, TriggerDone, TriggerFired, TriggerPage, TriggerQuery, TriggerUpdate,
    TriggerWithToken,
};
use crate::server::auth::{new_trigger_secret, token_hash, Actor};
use crate::server::db::{self, audit::NewEntry};
use crate::server::Core;
use crate::{Error, Result};
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// At most this many triggers per namespace and environment.
pub const MAX_TRIGGERS: i64 = 50;
/// The most characters of a trigger's description.
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// The largest body a hook reads (an alert notification is a few kilobytes).
pub const MAX_HOOK_BODY_BYTES: usize = 1024 * 1024;
/// How much of a hook's body its audit entry keeps.
pub const BODY_EXCERPT_CHARS: usize = 200;
/// Fires of one trigger in a burst; after it, one more every [`FIRE_EVERY`].
pub const FIRE_BURST: u32 = 10;
/// A trigger may fire [`FIRE_BURST`] times a minute, on each node.
pub const FIRE_EVERY: Duration = Duration::from_secs(6);
/// Where a trigger's URL is, under the server's origin.
pub const HOOKS: &str = "/hooks";

/// The action a request names, or 400 naming the words it may be.
fn action_of(text: &str) -> Result<TriggerAction> {
    text.parse().map_err(|_| {
        Error::invalid(
            "action",
            format!(
                "action {} is not one a trigger takes: use abort-lanes, pause-plans or rollback.",
                crate::error::quoted(text)
            ),
        )
    })
}

/// A description, trimmed; 400 past [`MAX_DESCRIPTION_CHARS`].
fn description_of(text: Option<String>) -> Result<String> {
    let text = text.unwrap_or_default().trim().to_string();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "description",
            format!(
                "The description has more than {MAX_DESCRIPTION_CHARS} characters; shorten it."
            ),
        ));
    }
    Ok(text)
}

fn scope_of(trigger: &Trigger) -> Scope<'_> {
    Scope::of(&trigger.namespace, &trigger.env)
}

/// The URL of a token: under `--public-url`, else under the origin the request came to (a path
/// when it named none).
fn url(state: &Core, origin: Option<&str>, token: &str) -> String {
    let base = state.config.public_url.as_deref().or(origin).unwrap_or("");
    format!("{base}{HOOKS}/{token}")
}

/// A trigger the caller may see with `role`: 404 when there is none, 403 outside its limits.
async fn visible(
    conn: impl db::Executor<'_>,
    actor: &Actor,
    id: i64,
    role: Role,
) -> Result<Trigger> {
    let trigger = db::triggers::find(conn, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("There is no trigger {id}.")))?;
    actor.require(role, scope_of(&trigger))?;
    Ok(trigger)
}

/// The audit entry of a trigger's change, on its namespace and environment (and key).
fn entry(actor: &str, action: AuditAction, trigger: &Trigger) -> NewEntry {
    let entry = NewEntry::new(actor, action);
    match &trigger.key {
        Some(key) => entry.config(&ConfigPath::new(&trigger.namespace, &trigger.env, key)),
        None => entry.namespace(&trigger.namespace).env(&trigger.env),
    }
}

/// `POST /api/v1/triggers` (releaser of the namespace and environment). `origin`: where the
/// request came to, for the URL when there is no `--public-url`.
#[tracing::instrument(skip_all)]
pub async fn create(
    state: &Core,
    actor: &Actor,
    new: NewTrigger,
    origin: Option<&str>,
) -> Result<TriggerWithToken> {
    actor.require(Role::Releaser, Scope::of(&new.namespace, &new.env))?;
    let action = action_of(&new.action)?;
    let description = description_of(new.description)?;
    if action == TriggerAction::Rollback && new.key.is_none() {
        return Err(Error::invalid(
            "key",
            "A rollback trigger needs a key: rolling back every config of an environment at \
             once is not one action anyone means. Make one trigger per config.",
        ));
    }
    let at = EnvPath::new(&new.namespace, &new.env);
    let token = new_trigger_secret();
    let mut tx = db::begin_write(&state.db).await?;
    let (namespace_id, env_id) = env_ids(&mut *tx, &at).await?;
    if let Some(key) = &new.key {
        find(&mut tx, &ConfigPath::new(&new.namespace, &new.env, key)).await?;
    }
    if db::triggers::count(&mut *tx, namespace_id, env_id).await? >= MAX_TRIGGERS {
        return Err(Error::conflict(format!(
            "{at} has {MAX_TRIGGERS} triggers, the most it may have; delete one first."
        )));
    }
    let trigger = db::triggers::insert(
        &mut tx,
        db::triggers::NewTriggerRow {
            namespace_id,
            env_id,
            key: new.key.as_deref(),
            action,
            description: &description,
            token_hash: &token_hash(&token),
            created_by: &actor.name,
            created_at: state.clock.now(),
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        entry(&actor.name, AuditAction::TriggerCreate, &trigger).details(json!({
            "id": trigger.id, "action": trigger.action, "key": trigger.key,
            "description": trigger.description, "enabled": trigger.enabled,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(TriggerWithToken {
        url: url(state, origin, &token),
        trigger,
        token,
    })
}

/// `GET /api/v1/triggers?namespace=&env=&after=&limit=` (viewer of the namespace and
/// environment), oldest first, without their tokens.
#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor, query: TriggerQuery) -> Result<TriggerPage> {
    actor.require(Role::Viewer, Scope::of(&query.namespace, &query.env))?;
    let limit = ChangeRequestQuery::page_size(query.limit);
    let mut conn = state.db.acquire().await?;
    let (namespace_id, env_id) =
        env_ids(&mut *conn, &EnvPath::new(&query.namespace, &query.env)).await?;
    let after = query.after.unwrap_or(0);
    let mut triggers =
        db::triggers::list(&mut *conn, namespace_id, env_id, after, limit + 1).await?;
    let more = triggers.len() as i64 > limit;
    triggers.truncate(limit as usize);
    let next_after = if more {
        triggers.last().map(|t| t.id)
    } else {
        None
    };
    Ok(TriggerPage {
        triggers,
        next_after,
    })
}

/// `PATCH /api/v1/triggers/{id}` (releaser of its scope): enables or disables it, changes its
/// description. A disabled trigger's URL answers like an unknown one.
#[tracing::instrument(skip_all)]
pub async fn update(
    state: &Core,
    actor: &Actor,
    id: i64,
    change: TriggerUpdate,
) -> Result<Trigger> {
    if change.enabled.is_none() && change.description.is_none() {
        return Err(Error::bad_request(
            "Send enabled, description or both to change a trigger.",
        ));
    }
    let description = change
        .description
        .map(Some)
        .map(description_of)
        .transpose()?;
    let mut tx = db::begin_write(&state.db).await?;
    let before = visible(&mut *tx, actor, id, Role::Releaser).await?;
    let enabled = change.enabled.unwrap_or(before.enabled);
    let description = description.unwrap_or_else(|| before.description.clone());
    db::triggers::update(&mut tx, id, enabled, &description).await?;
    let after = db::triggers::find(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("There is no trigger {id}.")))?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        entry(&actor.name, AuditAction::TriggerUpdate, &after).details(json!({
            "id": id, "action": after.action,
            "before": {"enabled": before.enabled, "description": before.description},
            "after": {"enabled": after.enabled, "description": after.description},
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// `POST /api/v1/triggers/{id}/rotate` (releaser of its scope): a new token; the old URL stops
/// working with the commit.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    state: &Core,
    actor: &Actor,
    id: i64,
    origin: Option<&str>,
) -> Result<TriggerWithToken> {
    let token = new_trigger_secret();
    let mut tx = db::begin_write(&state.db).await?;
    let trigger = visible(&mut *tx, actor, id, Role::Releaser).await?;
    db::triggers::set_token(&mut tx, id, &token_hash(&token)).await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        entry(&actor.name, AuditAction::TriggerRotate, &trigger)
            .details(json!({ "id": id, "action": trigger.action })),
    )
    .await?;
    tx.commit().await?;
    Ok(TriggerWithToken {
        url: url(state, origin, &token),
        trigger,
        token,
    })
}

/// `DELETE /api/v1/triggers/{id}` (releaser of its scope).
#[tracing::instrument(skip_all)]
pub async fn delete(state: &Core, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = db::begin_write(&state.db).await?;
    let trigger = visible(&mut *tx, actor, id, Role::Releaser).await?;
    db::triggers::delete(&mut tx, id).await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        entry(&actor.name, AuditAction::TriggerDelete, &trigger).details(json!({
            "id": id, "action": trigger.action, "description": trigger.description,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The caller a trigger acts as: `trigger:<id>`, a releaser limited to its namespace and
/// environment.
pub fn actor_of(trigger: &Trigger) -> Actor {
    Actor {
        name: format!("trigger:{}", trigger.id),
        role: Role::Releaser,
        env: Some(trigger.env.clone()),
        namespace: Some(trigger.namespace.clone()),
        user_id: None,
        token_id: None,
    }
}

/// What a hook's caller sent, as its audit entry keeps it: the first [`BODY_EXCERPT_CHARS`]
/// characters (invalid UTF-8 replaced), without control characters.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(BODY_EXCERPT_CHARS)
        .collect()
}

/// The answer to a token that names no enabled trigger, the same for an unknown and a
/// disabled one.
fn no_trigger() -> Error {
    Error::not_found("There is no trigger with this token (or it is disabled).")
}

/// `POST /hooks/{token}` from `address` with `body`: carries out the trigger's action, in one
/// transaction with its audit entry (`trigger.fire`) and the usual entries of each abort, pause
/// or rollback (by `trigger:<id>`). 404 for an unknown or disabled token; 429 past the rate
/// limit (not audited: a flood of refused calls writes nothing).
#[tracing::instrument(skip_all)]
pub async fn fire(state: &Core, token: &str, address: IpAddr, body: &[u8]) -> Result<TriggerFired> {
    let hash = token_hash(token);
    let trigger = db::triggers::find_enabled_by_hash(&state.db, &hash)
        .await?
        .ok_or_else(no_trigger)?;
    if let Err(wait) = state.trigger_fires.take(trigger.id, state.clock.now_ms()) {
        state.metrics.trigger_fire("limited");
        return Err(Error::retry_in(
            format!(
                "Trigger {} fired {FIRE_BURST} times within a minute; it fires again in {} s.",
                trigger.id,
                wait.as_secs_f64().ceil()
            ),
            wait,
        ));
    }
    let actor = actor_of(&trigger);
    let at = state.clock.now();
    let mut tx = db::begin_write(&state.db).await?;
    // Disabled, rotated or deleted since it was read: the same answer as before.
    let trigger = db::triggers::find_enabled_by_hash(&mut *tx, &hash)
        .await?
        .ok_or_else(no_trigger)?;
    let message = match trigger.description.as_str() {
        "" => format!("trigger {} fired", trigger.id),
        d => format!("trigger {} fired: {d}", trigger.id),
    };
    let mut shrunk = Shrunk::default();
    match trigger.action {
        TriggerAction::AbortLanes => {
            abort_lanes(&mut tx, at, &actor, &trigger, &message, &mut shrunk).await?
        }
        TriggerAction::PausePlans => {
            pause_plans(&mut tx, at, &actor, &trigger, &mut shrunk).await?
        }
        TriggerAction::Rollback => {
            roll_back(&mut tx, at, &actor, &trigger, &message, &mut shrunk).await?
        }
    }
    db::triggers::fired(&mut tx, trigger.id, at).await?;
    db::audit::record(
        &mut tx,
        at,
        entry(&actor.name, AuditAction::TriggerFire, &trigger).details(json!({
            "id": trigger.id, "action": trigger.action, "address": address.to_string(),
            "body": excerpt(body), "done": shrunk.done,
        })),
    )
    .await?;
    tx.commit().await?;
    state.metrics.trigger_fire(if shrunk.done.is_empty() {
        "nothing"
    } else {
        "acted"
    });
    shrunk.announce(state, &trigger);
    Ok(TriggerFired {
        trigger: trigger.id,
        action: trigger.action,
        done: shrunk.done,
    })
}

/// What a fire did, and what to announce once it is committed.
#[derive(Default)]
struct Shrunk {
    done: Vec<TriggerDone>,
    /// Aborted lanes: the release event and whether a plan ended with the lane.
    closed: Vec<(ReleaseEvent, bool)>,
    /// Paused plans: the config's key, the lane and the move.
    paused: Vec<(String, i64, Carried)>,
    /// The rollback's release event.
    rolled_back: Option<ReleaseEvent>,
}

impl Shrunk {
    /// After the commit, what the operations themselves do after theirs.
    fn announce(&self, state: &Core, trigger: &Trigger) {
        for (event, ended) in &self.closed {
            lanes::closed(state, event, *ended, Close::Abort);
        }
        for (key, lane, carried) in &self.paused {
            let path = ConfigPath::new(&trigger.namespace, &trigger.env, key);
            carried.announce(state, &path, *lane);
        }
        if let Some(event) = &self.rolled_back {
            state.hub.publish(event);
        }
    }
}

/// The active lanes of the trigger's config (or of every config of its scope), with their keys.
async fn active_lanes(tx: &mut db::Tx<'_>, trigger: &Trigger) -> Result<Vec<(String, i64)>> {
    let (namespace_id, env_id) =
        env_ids(&mut **tx, &EnvPath::new(&trigger.namespace, &trigger.env)).await?;
    Ok(db::lanes::active_in_scope(&mut **tx, namespace_id, env_id)
        .await?
        .into_iter()
        .filter(|(key, _)| trigger.key.as_ref().is_none_or(|k| k == key))
        .map(|(key, lane)| (key, lane.id))
        .collect())
}

/// The trigger's scope's config `key`.
async fn config(
    tx: &mut db::Tx<'_>,
    trigger: &Trigger,
    key: &str,
) -> Result<db::configs::StoredConfig> {
    find(tx, &ConfigPath::new(&trigger.namespace, &trigger.env, key)).await
}

/// Aborts every active lane (as `ops::lanes::abort` does); their plans end aborted.
async fn abort_lanes(
    tx: &mut db::Tx<'_>,
    at: crate::model::Timestamp,
    actor: &Actor,
    trigger: &Trigger,
    message: &str,
    shrunk: &mut Shrunk,
) -> Result<()> {
    for (key, lane) in active_lanes(tx, trigger).await? {
        let config = config(tx, trigger, &key).await?;
        let (event, ended) =
            lanes::close_lane_in(tx, at, actor, &config, lane, message, Close::Abort).await?;
        shrunk.done.push(TriggerDone {
            key,
            action: AuditAction::LaneAbort,
            lane: Some(lane),
            version: Some(event.version),
            previous_version: None,
        });
        shrunk.closed.push((event, ended));
    }
    Ok(())
}

/// Pauses every running plan (as `ops::plans::pause` does); the lanes stay as they are.
async fn pause_plans(
    tx: &mut db::Tx<'_>,
    at: crate::model::Timestamp,
    actor: &Actor,
    trigger: &Trigger,
    shrunk: &mut Shrunk,
) -> Result<()> {
    // `paused by trigger:3: HighErrorRate` (the plan's reason names the actor already).
    let decision = Decision::Pause {
        reason: plans::done_by("paused", actor, &trigger.description),
    };
    for (key, lane) in active_lanes(tx, trigger).await? {
        let Some(row) = db::plans::find(&mut **tx, lane).await? else {
            continue;
        };
        if row.state != PlanState::Running {
            continue;
        }
        let config = config(tx, trigger, &key).await?;
        let m = Move {
            step: row.step as usize,
            allowed: &[PlanState::Running],
            decision: &decision,
            why: "",
            forced: false,
        };
        let carried = plans::carry_out_in(tx, at, actor, &config, lane, &m).await?;
        shrunk.done.push(TriggerDone {
            key: key.clone(),
            action: AuditAction::RolloutPause,
            lane: Some(lane),
            version: None,
            previous_version: None,
        });
        shrunk.paused.push((key, lane, carried));
    }
    Ok(())
}

/// Makes the version that was stable before the current one the stable release again (as a
/// release of an older version does: a rollback). Nothing when the current stable release is
/// itself a rollback (so a second fire does not walk further back), when nothing was stable
/// before it, or when the config is gone.
async fn roll_back(
    tx: &mut db::Tx<'_>,
    at: crate::model::Timestamp,
    actor: &Actor,
    trigger: &Trigger,
    message: &str,
    shrunk: &mut Shrunk,
) -> Result<()> {
    let Some(key) = &trigger.key else {
        return Ok(());
    };
    let path = ConfigPath::new(&trigger.namespace, &trigger.env, key);
    let Some(config) = db::configs::find(&mut **tx, &path).await? else {
        return Ok(());
    };
    let Some(stable) = config.config.stable_version else {
        return Ok(());
    };
    let Some(last) = db::releases::last_stable(&mut **tx, config.id).await? else {
        return Ok(());
    };
    let previous = match last.previous_version {
        // Only an older version: a newer one would widen what is live.
        Some(previous)
            if last.kind != ReleaseKind::Rollback
                && last.version == stable
                && previous < stable =>
        {
            previous
        }
        _ => return Ok(()),
    };
    let event = configs::release_in(tx, at, actor, &config, previous, message).await?;
    shrunk.done.push(TriggerDone {
        key: key.clone(),
        action: AuditAction::ReleaseRollback,
        lane: None,
        version: Some(previous),
        previous_version: Some(stable),
    });
    shrunk.rolled_back = Some(event);
    Ok(())
}

/// Fires per trigger: a token bucket of [`FIRE_BURST`] refilled one every [`FIRE_EVERY`], kept
/// in memory on each node, on the server's clock.
#[derive(Default)]
pub struct FireLimit {
    /// Trigger id → (fires left, as of when in ms).
    buckets: Mutex<HashMap<i64, (f64, i64)>>,
}

impl FireLimit {
    /// Takes one fire of trigger `id` at `now_ms`, or says how long until one is free.
    pub fn take(&self, id: i64, now_ms: i64) -> std::result::Result<(), Duration> {
        let per_ms = 1.0 / FIRE_EVERY.as_millis() as f64;
        let burst = f64::from(FIRE_BURST);
        let mut buckets = self.buckets.lock().expect("fire limit lock");
        if buckets.len() > 10_000 {
            // Full buckets are as good as none.
            buckets.retain(|_, (left, at)| *left + (now_ms - *at) as f64 * per_ms < burst);
        }
        let (left, at) = buckets.entry(id).or_insert((burst, now_ms));
        *left = (*left + (now_ms - *at).max(0) as f64 * per_ms).min(burst);
        *at = now_ms.max(*at);
        if *left >= 1.0 {
            *left -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_millis(((1.0 - *left) / per_ms).ceil() as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_fires_ten_times_a_minute() {
        let limit = FireLimit::default();
        for _ in 0..FIRE_BURST {
            assert!(limit.take(1, 0).is_ok());
        }
        assert_eq!(limit.take(1, 0), Err(FIRE_EVERY));
        assert!(limit.take(2, 0).is_ok(), "each trigger has its own");
        assert_eq!(limit.take(1, 3_000), Err(Duration::from_secs(3)));
        assert!(limit.take(1, 6_000).is_ok());
        assert!(limit.take(1, 6_000).is_err());
        for _ in 0..FIRE_BURST {
            assert!(limit.take(1, 6_000 + 60_000).is_ok());
        }
        assert!(
            limit.take(1, 66_000).is_err(),
            "a quiet minute refills the burst, no more"
        );
    }

    #[test]
    fn excerpts_are_short_printable_text() {
        assert_eq!(excerpt(b"{\"a\":\n\t1}"), "{\"a\":1}");
        assert_eq!(excerpt(b"caf\xc3\xa9 \xff"), "café \u{fffd}");
        let long = "é".repeat(300);
        assert_eq!(excerpt(long.as_bytes()).chars().count(), BODY_EXCERPT_CHARS);
    }

    #[test]
    fn actions_are_named_and_descriptions_bounded() {
        assert_eq!(action_of("pause-plans").unwrap(), TriggerAction::PausePlans);
        let e = action_of("explode").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("action"));
        assert!(e.message.contains("abort-lanes"), "{}", e.message);
        assert_eq!(description_of(Some(" pager ".into())).unwrap(), "pager");
        let e = description_of(Some("x".repeat(201))).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("description"));
    }
}
