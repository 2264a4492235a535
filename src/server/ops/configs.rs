//! Configs and their life: versions, releases, rollbacks, diffs and resolution.

use super::governance::{self, Gate, Outcome, Widening};
use super::lookups::{env_ids, find, find_version, message_of};
use crate::domain::audit::AuditAction;
use crate::domain::diff::Diff;
use crate::domain::format::ConfigFormat;
use crate::domain::Context;
use crate::model::{
    ChangeAction, Config, ConfigPath, EnvPath, Governed, LaneStatus, NewConfig, NewVersion,
    ReleaseEvent, ReleaseKind, Resolved, Role, Timestamp, Version,
};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry, configs::StoredConfig, releases::NewReleaseEvent};
use crate::server::hub::Answer;
use crate::server::Core;
use crate::{Error, Result};
use sha2::{Digest, Sha256};

pub use super::lookups::MAX_MESSAGE_CHARS;
pub use crate::domain::key::MAX_KEY_LEN;

/// Config keys: the rule agents apply to file names ([`crate::domain::key::check_key`]).
pub fn check_key(key: &str) -> Result<()> {
    crate::domain::key::check_key(key).map_err(|message| Error::invalid("key", message))
}

/// `sha256:<hex of the content bytes>`.
pub fn checksum(content: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(content.as_bytes())))
}

/// Refuses content over the size limit (413) or not well-formed for its format
/// (422 naming the line and column), before anything is stored. Validation runs
/// off the async workers within a time budget (see [`super::content`]).
async fn check_content(state: &Core, format: ConfigFormat, content: String) -> Result<String> {
    let limit = state.config.max_content_bytes;
    if content.len() > limit {
        return Err(Error::too_large(format!(
            "The content is {} bytes; the limit is {limit} bytes.",
            content.len()
        ))
        .on_field("content"));
    }
    state.content.validate(format, content).await
}

#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor, at: &EnvPath) -> Result<Vec<Config>> {
    actor.require(Role::Viewer, at.scope())?;
    let (ns_id, env_id) = env_ids(&state.db, at).await?;
    let mut configs = db::configs::list(&state.db, ns_id, env_id).await?;
    for (key, lane) in db::lanes::active_in_scope(&state.db, ns_id, env_id).await? {
        if let Some(config) = configs.iter_mut().find(|c| c.key == key) {
            config.lanes.push(lane);
        }
    }
    // A plan that aborted lately shows in the list too, until a newer lane starts.
    let since = state.clock.now_ms() - Config::ABORT_SHOWN_HOURS * 3_600_000;
    for (key, lane) in db::lanes::plan_aborted_in_scope(&state.db, ns_id, env_id).await? {
        let recent = lane.closed_at.is_some_and(|t| t.unix_ms() >= since);
        if let Some(config) = configs.iter_mut().find(|c| c.key == key) {
            let newest =
                config.aborted_lane.is_none() && config.lanes.iter().all(|l| l.id < lane.id);
            if recent && newest {
                config.aborted_lane = Some(lane);
            }
        }
    }
    for config in &mut configs {
        super::plans::summarize(&state.db, &at.env, state.clock.now(), &mut config.lanes).await?;
        if let Some(lane) = config.aborted_lane.as_mut() {
            super::plans::summarize(
                &state.db,
                &at.env,
                state.clock.now(),
                std::slice::from_mut(lane),
            )
            .await?;
        }
    }
    Ok(configs)
}

#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn get(state: &Core, actor: &Actor, path: &ConfigPath) -> Result<Config> {
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let StoredConfig { id, mut config } = find(&mut conn, path).await?;
    config.lanes = db::lanes::active(&mut *conn, id).await?;
    config.unreviewed_overrides = db::change_requests::unreviewed_overrides(&mut *conn, id).await?;
    drop(conn);
    super::plans::summarize(&state.db, &path.env, state.clock.now(), &mut config.lanes).await?;
    Ok(config)
}

/// Creates the config with its content as version 1; releases nothing.
#[tracing::instrument(skip_all)]
pub async fn create(state: &Core, actor: &Actor, at: &EnvPath, new: NewConfig) -> Result<Config> {
    actor.require(Role::Editor, at.scope())?;
    check_key(&new.key)?;
    let new = NewConfig {
        content: check_content(state, new.format, new.content).await?,
        ..new
    };
    let message = message_of(new.message)?;
    let checksum = checksum(&new.content);
    let mut tx = db::begin_write(&state.db).await?;
    let (ns_id, env_id) = env_ids(&mut *tx, at).await?;
    let config_id = db::configs::insert(&mut tx, ns_id, env_id, &new.key, new.format)
        .await
        .map_err(|e| {
            super::conflict_on_unique(
                e,
                format!(
                    "A config named {:?} already exists in namespace {:?}, environment {:?}.",
                    new.key, at.namespace, at.env
                ),
            )
        })?;
    db::configs::insert_version(
        &mut tx,
        db::configs::NewVersionRow {
            config_id,
            version: 1,
            content: &new.content,
            checksum: &checksum,
            message: &message,
            author: &actor.name,
        },
    )
    .await?;
    let path = at.config(&new.key);
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::ConfigCreate)
            .config(&path)
            .details(serde_json::json!({
                "format": new.format, "version": 1, "message": message, "checksum": checksum,
            })),
    )
    .await?;
    let config = find(&mut tx, &path).await?.config;
    tx.commit().await?;
    Ok(config)
}

#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn version(state: &Core, actor: &Actor, path: &ConfigPath, n: i64) -> Result<Version> {
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    find_version(&mut *conn, &config, n).await
}

/// Saves an edit as the next version, unless someone saved since the edit
/// began (`base_version` is not the latest): then 409, so no work is lost.
/// Changes nothing live.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn save_version(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    new: NewVersion,
) -> Result<Version> {
    actor.require(Role::Editor, path.scope())?;
    let message = message_of(new.message)?;
    let stale = |latest: i64| {
        Error::conflict(format!(
            "version {latest} is the latest; your edit is based on {}. Compare your edit with version {latest}, \
             then save again with base_version {latest}.",
            new.base_version
        ))
        .on_field("base_version")
    };
    // The costly parts, validating the content and diffing it against its base, run before the
    // write transaction and off the async workers. Versions never change, so the diff stays
    // right as long as the transaction finds the base still the latest.
    let (config, previous) = {
        let mut conn = state.db.acquire().await?;
        let config = find(&mut conn, path).await?;
        let latest = config.config.latest_version;
        if new.base_version != latest {
            return Err(stale(latest));
        }
        let previous = find_version(&mut *conn, &config, latest).await?;
        (config, previous)
    };
    let content = check_content(state, config.config.format, new.content).await?;
    let checksum = checksum(&content);
    let diff = state
        .content
        .diff(
            (&previous.checksum, &previous.content),
            (&checksum, &content),
            false,
        )
        .await?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, path).await?;
    let latest = config.config.latest_version;
    if new.base_version != latest
        || !db::configs::advance_latest(&mut tx, state.clock.now(), config.id, new.base_version)
            .await?
    {
        return Err(stale(latest));
    }
    let number = latest + 1;
    let version = db::configs::insert_version(
        &mut tx,
        db::configs::NewVersionRow {
            config_id: config.id,
            version: number,
            content: &content,
            checksum: &checksum,
            message: &message,
            author: &actor.name,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::VersionCreate)
            .config(path)
            .details(serde_json::json!({
                "version": number, "base_version": new.base_version, "message": message,
                "checksum": checksum, "added": diff.added, "removed": diff.removed,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(version)
}

/// Makes `version` the stable release. A version older than the current
/// stable one is recorded as a rollback; history is only ever appended to. In a protected
/// environment a release that widens what is live passes the gate (`ops::governance`).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn release(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    version: i64,
    message: Option<String>,
    governed: &Governed,
) -> Result<Outcome<ReleaseEvent>> {
    actor.require(Role::Releaser, path.scope())?;
    let message = message_of(message)?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, path).await?;
    find_version(&mut *tx, &config, version).await?;
    let widening = release_widening(&mut tx, &config, version, message.clone()).await?;
    if let Gate::Requested(request) =
        governance::gate(state, &mut tx, actor, &config, &widening, governed).await?
    {
        tx.commit().await?;
        return governance::requested(request);
    }
    let event = release_in(
        &mut tx,
        state.clock.now(),
        actor,
        &config,
        version,
        &message,
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(&event);
    Ok(Outcome::Done(event))
}

/// Releasing `version` as the gate sees it (and a change request stores it).
pub async fn release_widening(
    conn: &mut db::Conn,
    config: &StoredConfig,
    version: i64,
    message: String,
) -> Result<Widening> {
    Ok(Widening {
        action: ChangeAction::Release,
        body: serde_json::json!({ "version": version, "message": message }),
        message,
        version,
        rule: None,
        plan: None,
        widens: governance::release_widens(conn, config, version).await?,
    })
}

/// Makes `version` the stable release inside `tx`, with its release event and audit entry
/// (the caller authorized `actor`, passed the gate, and publishes the event after the commit).
pub async fn release_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    version: i64,
    message: &str,
) -> Result<ReleaseEvent> {
    let path = config.config.path();
    find_version(&mut **tx, config, version).await?;
    let previous = config.config.stable_version;
    if previous == Some(version) {
        return Err(Error::conflict(format!(
            "Version {version} is already the stable release of {path}."
        ))
        .on_field("version"));
    }
    let (kind, action) = match previous {
        Some(stable) if version < stable => (ReleaseKind::Rollback, AuditAction::ReleaseRollback),
        _ => (ReleaseKind::Stable, AuditAction::ReleaseStable),
    };
    let event = db::releases::insert(
        tx,
        NewReleaseEvent {
            config_id: config.id,
            kind,
            version,
            previous_version: previous,
            lane: None,
            actor: &actor.name,
            message,
        },
    )
    .await?;
    db::configs::set_stable(tx, at, config.id, version).await?;
    db::audit::record(
        tx,
        at,
        NewEntry::new(&actor.name, action)
            .config(&path)
            .details(serde_json::json!({
                "version": version, "previous_version": previous, "message": message,
                "release_event": event.id,
            })),
    )
    .await?;
    Ok(event)
}

/// Newest first.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn releases(state: &Core, actor: &Actor, path: &ConfigPath) -> Result<Vec<ReleaseEvent>> {
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    Ok(db::releases::list(&mut *conn, config.id).await?)
}

/// Side-by-side diff of version `from` (left) against version `to` (right); with
/// `ignore_whitespace`, lines that differ only in whitespace count as equal.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn diff(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    from: i64,
    to: i64,
    ignore_whitespace: bool,
) -> Result<Diff> {
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    let left = find_version(&mut *conn, &config, from).await?;
    let right = find_version(&mut *conn, &config, to).await?;
    drop(conn);
    let diff = state
        .content
        .diff(
            (&left.checksum, &left.content),
            (&right.checksum, &right.content),
            ignore_whitespace,
        )
        .await?;
    Ok(Diff::clone(&diff))
}

/// What a subscriber with context `ctx` gets: the version of the first active
/// lane that matches, else the stable release; 404 when neither exists. From
/// memory (the hub's catalog), with the answer serialized once per served
/// version; no database round trip.
pub async fn resolve(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    ctx: &Context,
) -> Result<Answer> {
    may_resolve(actor, path)?;
    state.hub.catalog().fresh().await?;
    if let Some(answer) = resolve_held(state, path, ctx) {
        return answer;
    }
    // Not held: it does not exist. The database says which part is missing.
    let mut conn = state.db.acquire().await?;
    find(&mut conn, path).await?;
    Err(nothing_resolves(path))
}

/// [`resolve`] when it can answer at once, from memory (the fast path,
/// src/server/fast.rs): `None` when it would wait (the catalog is catching
/// up with a release) or read the database (the config is not held).
pub fn resolve_now(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    ctx: &Context,
) -> Option<Result<Answer>> {
    if let Err(refused) = may_resolve(actor, path) {
        return Some(Err(refused));
    }
    state.hub.catalog().fresh_now()?;
    resolve_held(state, path, ctx)
}

fn may_resolve(actor: &Actor, path: &ConfigPath) -> Result<()> {
    actor.require(Role::Subscriber, path.scope())
}

/// The answer from the catalog; `None` when the config is not held.
fn resolve_held(state: &Core, path: &ConfigPath, ctx: &Context) -> Option<Result<Answer>> {
    let config = state
        .hub
        .catalog()
        .config(&path.namespace, &path.env, &path.key)?;
    Some(match config.evaluate(ctx) {
        Some(evaluation) => Ok(config.answer(&evaluation).clone()),
        None => Err(nothing_resolves(path)),
    })
}

/// What `ctx` gets, read from the database (for answers that also explain why).
pub async fn resolve_stored(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    ctx: &Context,
) -> Result<Resolved> {
    actor.require(Role::Subscriber, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    super::lanes::resolve_stored(&mut conn, &config, ctx)
        .await?
        .ok_or_else(|| nothing_resolves(path))
}

fn nothing_resolves(path: &ConfigPath) -> Error {
    Error::not_found(format!(
        "{path} has no stable release yet and no gray lane matches this context; \
         release a version first."
    ))
}

/// Deletes a config: its active lanes close (aborted, by the deletion's
/// release event), a `config.delete` release event and audit entry are
/// written, and subscribers that had it get `deleted`. Its versions, release
/// events and lanes stay as history; the key may be created again from version 1.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn delete(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    message: Option<String>,
) -> Result<ReleaseEvent> {
    actor.require(Role::Releaser, path.scope())?;
    let message = message_of(message)?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, path).await?;
    let lanes = db::lanes::active(&mut *tx, config.id).await?;
    let event = db::releases::insert(
        &mut tx,
        NewReleaseEvent {
            config_id: config.id,
            kind: ReleaseKind::ConfigDelete,
            version: config.config.latest_version,
            previous_version: config.config.stable_version,
            lane: None,
            actor: &actor.name,
            message: &message,
        },
    )
    .await?;
    for lane in &lanes {
        db::lanes::close(
            &mut tx,
            state.clock.now(),
            lane.id,
            LaneStatus::Aborted,
            event.id,
        )
        .await?;
        super::plans::lane_closed(
            &mut tx,
            state.clock.now(),
            actor,
            path,
            lane,
            super::lane_changes::Close::Abort,
            event.id,
        )
        .await?;
    }
    db::configs::mark_deleted(&mut tx, state.clock.now(), config.id).await?;
    db::instances::forget_key(&mut tx, path).await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::ConfigDelete)
            .config(path)
            .details(serde_json::json!({
                "format": config.config.format,
                "latest_version": config.config.latest_version,
                "stable_version": config.config.stable_version,
                "closed_lanes": lanes.iter().map(|l| l.id).collect::<Vec<_>>(),
                "message": message, "release_event": event.id,
            })),
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(&event);
    Ok(event)
}
