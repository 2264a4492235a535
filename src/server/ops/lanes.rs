//! Gray lanes (docs/lanes.md): start, change, promote, abort, preview,
//! and the resolution of a context to a version, with its explanation.

use super::lookups::{find, find_version, message_of};
use crate::domain::audit::AuditAction;
use crate::domain::lane::{self, LaneRule, LaneVerdict};
use crate::domain::selector::Selector;
use crate::domain::Context;
use crate::error::quoted;
use crate::model::{
    ConfigPath, Explanation, Lane, LaneId, LaneStatus, LaneUpdate, NewLane, Preview, ReleaseEvent,
    ReleaseKind, Resolved, Role, Timestamp,
};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry, configs::StoredConfig, releases::NewReleaseEvent};
use crate::server::Core;
use crate::{Error, Result};
use serde_json::json;

/// The priority of a lane started without one. Lanes are tried by (priority,
/// id) ascending, so by default the oldest active lane wins; give a lane a
/// negative priority to put it in front, a positive one to put it behind.
pub const DEFAULT_PRIORITY: i64 = 0;
/// The stickiness key of a lane started without one.
pub const DEFAULT_STICKINESS: &str = "client_id";
pub const MAX_TARGETS: usize = 1000;
pub const MAX_TARGET_CHARS: usize = 256;
/// The most bytes a lane's targets may have together: they are kept in memory, evaluated on
/// every resolve and repeated in the lane's audit entries, which must stay small.
pub const MAX_TARGETS_BYTES: usize = 16 * 1024;
/// Priorities lie in `-MAX_PRIORITY..=MAX_PRIORITY`: room for any ordering of a config's lanes,
/// and numbers every client reads exactly.
pub const MAX_PRIORITY: i64 = 1000;
/// The most active lanes one config may have: each is tried on every resolve of the config.
pub const MAX_ACTIVE_LANES: usize = 20;

/// The id an unsaved (draft) lane has in previews and explanations.
pub const DRAFT_LANE_ID: i64 = 0;

fn parse_selector(text: &str) -> Result<Selector> {
    Selector::parse_input(text).map_err(|e| {
        Error::invalid(
            "selector",
            format!("selector {} is not valid at {e}", quoted(text)),
        )
    })
}

fn parse_percentage(percentage: f64) -> Result<u32> {
    lane::parse_percentage(percentage).map_err(|message| Error::invalid("percentage", message))
}

/// Trims each target and drops repeats (keeping the first); refuses empty,
/// over-long or control-character values and lists over [`MAX_TARGETS`].
fn check_targets(targets: Vec<String>) -> Result<Vec<String>> {
    if targets.len() > MAX_TARGETS {
        return Err(Error::invalid(
            "targets",
            format!(
                "{} targets is too many; a lane takes at most {MAX_TARGETS} (use a selector for larger groups).",
                targets.len()
            ),
        ));
    }
    let mut checked: Vec<String> = Vec::with_capacity(targets.len());
    for (i, target) in targets.iter().enumerate() {
        let target = target.trim();
        if target.is_empty()
            || target.chars().count() > MAX_TARGET_CHARS
            || target.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "targets",
                format!(
                    "target {} ({}) is not valid: use 1–{MAX_TARGET_CHARS} characters without control characters.",
                    i + 1,
                    quoted(target)
                ),
            ));
        }
        if !checked.iter().any(|t| t == target) {
            checked.push(target.to_string());
        }
    }
    let bytes: usize = checked.iter().map(String::len).sum();
    if bytes > MAX_TARGETS_BYTES {
        return Err(Error::invalid(
            "targets",
            format!(
                "The targets have {bytes} bytes together; a lane takes at most {MAX_TARGETS_BYTES} \
                 (use a selector for larger groups)."
            ),
        ));
    }
    Ok(checked)
}

fn check_stickiness(stickiness: Option<String>) -> Result<String> {
    let stickiness = stickiness
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_STICKINESS.to_string());
    if stickiness.len() > 63
        || !stickiness
            .chars()
            .all(crate::domain::selector::is_token_char)
    {
        return Err(Error::invalid(
            "stickiness",
            format!(
                "stickiness {} is not a context key: use 1–63 of A-Z a-z 0-9 . _ / - \
                 (e.g. client_id or user_id).",
                quoted(&stickiness)
            ),
        ));
    }
    Ok(stickiness)
}

/// A lane body, checked: everything but the version, which needs the database.
struct CheckedLane {
    version: i64,
    selector: Selector,
    targets: Vec<String>,
    percentage_bp: u32,
    stickiness: String,
    priority: i64,
    message: String,
}

fn check_priority(priority: i64) -> Result<i64> {
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        return Err(Error::invalid(
            "priority",
            format!(
                "priority {priority} is out of range; use a number from -{MAX_PRIORITY} to \
                 {MAX_PRIORITY} (lower is tried first)."
            ),
        ));
    }
    Ok(priority)
}

fn check_new_lane(new: NewLane) -> Result<CheckedLane> {
    Ok(CheckedLane {
        version: new.version,
        selector: parse_selector(new.selector.as_deref().unwrap_or(""))?,
        targets: check_targets(new.targets.unwrap_or_default())?,
        percentage_bp: parse_percentage(new.percentage)?,
        stickiness: check_stickiness(new.stickiness)?,
        priority: check_priority(new.priority.unwrap_or(DEFAULT_PRIORITY))?,
        message: message_of(new.message)?,
    })
}

impl CheckedLane {
    fn rule(&self, id: i64, salt: String) -> LaneRule {
        LaneRule {
            id,
            version: self.version,
            selector: self.selector.clone(),
            targets: self.targets.clone(),
            percentage_bp: self.percentage_bp,
            stickiness: self.stickiness.clone(),
            salt,
            priority: self.priority,
        }
    }
}

/// The matching rule of a stored lane.
fn rule_of(lane: &Lane) -> Result<LaneRule> {
    Ok(LaneRule {
        id: lane.id,
        version: lane.version,
        // Stored selectors were parsed before they were stored.
        selector: Selector::parse(&lane.selector).map_err(Error::internal)?,
        targets: lane.targets.clone(),
        percentage_bp: basis_points(lane.percentage),
        stickiness: lane.stickiness.clone(),
        salt: lane.salt.clone(),
        priority: lane.priority,
    })
}

/// Stored percentages are whole basis points divided by 100.
pub(super) fn basis_points(percentage: f64) -> u32 {
    (percentage * 100.0).round() as u32
}

fn rules_of(lanes: &[Lane]) -> Result<Vec<LaneRule>> {
    lanes.iter().map(rule_of).collect()
}

/// The version with checksum and content that `ctx` gets, and the lane that
/// gave it; `None` when no lane matches and nothing is released.
#[tracing::instrument(skip_all)]
pub async fn resolve_stored(
    conn: &mut db::Conn,
    stored: &StoredConfig,
    ctx: &Context,
) -> Result<Option<Resolved>> {
    let rules = rules_of(&db::lanes::active(&mut *conn, stored.id).await?)?;
    let (version, lane) = match lane::resolve(&rules, ctx) {
        Some(rule) => (rule.version, Some(rule.id)),
        None => match stored.config.stable_version {
            Some(stable) => (stable, None),
            None => return Ok(None),
        },
    };
    let version = db::configs::version(&mut *conn, stored.id, version)
        .await?
        .ok_or_else(|| {
            Error::internal(format!(
                "version {version} of config {} is missing",
                stored.id
            ))
        })?;
    let config = &stored.config;
    Ok(Some(Resolved {
        namespace: config.namespace.clone(),
        env: config.env.clone(),
        key: config.key.clone(),
        format: config.format,
        version: version.version,
        lane,
        checksum: version.checksum,
        content: version.content,
    }))
}

/// Why `ctx` gets the version it gets from the config's active lanes, plus
/// `draft` when given (see [`explain`]).
fn explanation(stable_version: Option<i64>, rules: &[LaneRule], ctx: &Context) -> Explanation {
    let verdicts: Vec<LaneVerdict> = lane::explain(rules, ctx)
        .into_iter()
        .map(|mut v| {
            if v.lane_id == i64::MAX {
                v.lane_id = DRAFT_LANE_ID;
            }
            v
        })
        .collect();
    let chosen = verdicts.iter().find(|v| v.matched);
    let (version, lane, reason) = match (chosen, stable_version) {
        (Some(v), _) => {
            let name = if v.lane_id == DRAFT_LANE_ID {
                "draft lane".to_string()
            } else {
                format!("lane {}", v.lane_id)
            };
            (
                Some(v.version),
                Some(v.lane_id),
                format!("{name} matched: {} → v{}", v.reason, v.version),
            )
        }
        (None, Some(stable)) => (
            Some(stable),
            None,
            if verdicts.is_empty() {
                format!("no active lanes → stable v{stable}")
            } else {
                format!("no lane matched → stable v{stable}")
            },
        ),
        (None, None) => (
            None,
            None,
            "nothing released and no lane matched → 404".to_string(),
        ),
    };
    Explanation {
        context: ctx.clone(),
        stable_version,
        version,
        lane,
        lanes: verdicts,
        reason,
    }
}

/// Every lane of a config: active ones in resolution order, then closed ones, newest first.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn list(state: &Core, actor: &Actor, path: &ConfigPath) -> Result<Vec<Lane>> {
    let (namespace, env, key) = path.parts();
    actor.require_in(Role::Viewer, Some(namespace), Some(env))?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, namespace, env, key).await?;
    let mut lanes = db::lanes::list(&mut *conn, config.id).await?;
    drop(conn);
    super::plans::summarize(&state.db, state.clock.now(), &mut lanes).await?;
    Ok(lanes)
}

/// Starts a lane: its salt is assigned now and never changes. With a `plan` (or a `template`)
/// the lane starts at the plan's first step and the plan runs (docs/plans.md).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn create(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    mut new: NewLane,
) -> Result<Lane> {
    let (namespace, env, key) = path.parts();
    actor.require_in(Role::Releaser, Some(namespace), Some(env))?;
    let choice =
        super::plans::choose(state, env, new.plan.take().as_ref(), new.template.take()).await?;
    if let Some(choice) = &choice {
        new.percentage = choice.start_percentage(new.percentage)?;
    } else if new.percentage.is_nan() {
        return Err(Error::invalid(
            "percentage",
            "A lane needs a percentage (0 to 100), or a plan whose first step gives it.",
        ));
    }
    let new = check_new_lane(new)?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, namespace, env, key).await?;
    check_version(&mut tx, &config, new.version).await?;
    // Writes are serialized (`begin_write`), so the count cannot change before the insert.
    let active = db::lanes::count_active(&mut *tx, config.id).await?;
    if active >= MAX_ACTIVE_LANES as i64 {
        return Err(Error::conflict(format!(
            "{path} already has {active} active lanes, the most a config may have \
             ({MAX_ACTIVE_LANES}); promote or abort one before starting another."
        )));
    }
    let salt = db::lanes::take_next_salt(&mut tx, config.id).await?;
    let selector = new.selector.to_string();
    let mut lane = db::lanes::insert(
        &mut tx,
        db::lanes::NewLaneRow {
            config_id: config.id,
            version: new.version,
            selector: &selector,
            targets: &new.targets,
            percentage_bp: new.percentage_bp,
            stickiness: &new.stickiness,
            salt: &salt,
            priority: new.priority,
            created_by: &actor.name,
        },
    )
    .await?;
    let event = lane_event(
        &mut tx,
        actor,
        &config,
        &lane,
        ReleaseKind::LaneCreate,
        &new.message,
    )
    .await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::LaneCreate)
            .namespace(namespace)
            .env(env)
            .key(key)
            .details(json!({
                "lane": lane.id, "version": lane.version, "selector": lane.selector,
                "targets": lane.targets, "percentage": lane.percentage,
                "stickiness": lane.stickiness, "salt": lane.salt, "priority": lane.priority,
                "message": new.message, "release_event": event.id,
                "plan": choice.as_ref().map(|c| c.spec()),
                "template": choice.as_ref().and_then(|c| c.template.clone()),
            })),
    )
    .await?;
    if let Some(choice) = &choice {
        super::plans::start_in(
            &mut tx,
            state.clock.now(),
            actor,
            path,
            &lane,
            choice,
            event.id,
        )
        .await?;
    }
    tx.commit().await?;
    state.hub.publish(&event);
    if choice.is_some() {
        state.metrics.rollout_transition("started");
        state.rollouts.wake();
        super::plans::summarize(
            &state.db,
            state.clock.now(),
            std::slice::from_mut(&mut lane),
        )
        .await?;
    }
    Ok(lane)
}

/// 400 (field `version`) unless the config has `version`.
async fn check_version(conn: &mut db::Conn, config: &StoredConfig, version: i64) -> Result<()> {
    find_version(&mut *conn, config, version)
        .await
        .map(drop)
        .map_err(|e| Error::invalid("version", e.message))
}

/// Appends the release event of a lane action.
pub(super) async fn lane_event(
    tx: &mut db::Tx<'_>,
    actor: &Actor,
    config: &StoredConfig,
    lane: &Lane,
    kind: ReleaseKind,
    message: &str,
) -> Result<ReleaseEvent> {
    Ok(db::releases::insert(
        tx,
        NewReleaseEvent {
            config_id: config.id,
            kind,
            version: lane.version,
            previous_version: config.config.stable_version,
            lane: Some(lane.id),
            actor: &actor.name,
            message,
        },
    )
    .await?)
}

/// An active lane of the config, or 404 / 409 (closed lanes are history).
pub(super) async fn find_active(
    conn: &mut db::Conn,
    config: &StoredConfig,
    id: i64,
) -> Result<Lane> {
    let c = &config.config;
    let lane = db::lanes::find(&mut *conn, config.id, id)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "{} has no lane {id}.",
                ConfigPath::new(&c.namespace, &c.env, &c.key)
            ))
        })?;
    if lane.status != LaneStatus::Active {
        return Err(Error::conflict(format!(
            "lane {id} was {} at {}; a closed lane cannot change. Start a new lane instead.",
            lane.status,
            lane.closed_at
                .map_or_else(|| "an earlier time".to_string(), |t| t.to_string()),
        )));
    }
    Ok(lane)
}

/// The rule `change` gives `lane`, checked; 400 when `change` has nothing to change.
fn apply(lane: &Lane, change: &LaneUpdate) -> Result<CheckedLane> {
    if change.selector.is_none()
        && change.targets.is_none()
        && change.percentage.is_none()
        && change.priority.is_none()
    {
        return Err(Error::bad_request(
            "Send at least one of selector, targets, percentage, priority to change a lane.",
        ));
    }
    Ok(CheckedLane {
        version: lane.version,
        selector: parse_selector(change.selector.as_deref().unwrap_or(&lane.selector))?,
        targets: match &change.targets {
            Some(targets) => check_targets(targets.clone())?,
            None => lane.targets.clone(),
        },
        percentage_bp: match change.percentage {
            Some(percentage) => parse_percentage(percentage)?,
            None => basis_points(lane.percentage),
        },
        stickiness: lane.stickiness.clone(),
        priority: match change.priority {
            Some(priority) => check_priority(priority)?,
            None => lane.priority,
        },
        message: message_of(change.message.clone())?,
    })
}

/// The fields `change` names, with their values in `lane`.
fn changed_fields(lane: &Lane, change: &LaneUpdate) -> serde_json::Value {
    let mut fields = serde_json::Map::new();
    if change.selector.is_some() {
        fields.insert("selector".into(), json!(lane.selector));
    }
    if change.targets.is_some() {
        fields.insert("targets".into(), json!(lane.targets));
    }
    if change.percentage.is_some() {
        fields.insert("percentage".into(), json!(lane.percentage));
    }
    if change.priority.is_some() {
        fields.insert("priority".into(), json!(lane.priority));
    }
    fields.into()
}

/// Changes an active lane's selector, targets, percentage or priority. The
/// salt stays, so raising the percentage keeps everyone already inside. A
/// percentage changed by hand pauses the lane's running plan (a person took over).
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn update(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    change: LaneUpdate,
) -> Result<Lane> {
    let (namespace, env, key) = path.parts();
    let LaneId(id) = lane;
    actor.require_in(Role::Releaser, Some(namespace), Some(env))?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, namespace, env, key).await?;
    let at = state.clock.now();
    let (mut after, event) = update_in(&mut tx, at, actor, &config, id, &change).await?;
    let paused = if change.percentage.is_some() {
        super::plans::person_took_over(&mut tx, at, actor, path, &after, event.id).await?
    } else {
        false
    };
    tx.commit().await?;
    state.hub.publish(&event);
    if paused {
        state.metrics.rollout_transition("paused");
        state.rollouts.wake();
    }
    super::plans::summarize(
        &state.db,
        state.clock.now(),
        std::slice::from_mut(&mut after),
    )
    .await?;
    Ok(after)
}

/// Changes an active lane inside `tx`, with its release event and audit entry (the caller
/// authorized `actor` and publishes the event after the commit).
pub(super) async fn update_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    id: i64,
    change: &LaneUpdate,
) -> Result<(Lane, ReleaseEvent)> {
    let c = &config.config;
    let before = find_active(&mut *tx, config, id).await?;
    let rule = apply(&before, change)?;
    let selector = rule.selector.to_string();
    let after = db::lanes::update(
        tx,
        at,
        id,
        db::lanes::LaneRuleRow {
            selector: &selector,
            targets: &rule.targets,
            percentage_bp: rule.percentage_bp,
            priority: rule.priority,
        },
    )
    .await?;
    let event = lane_event(
        tx,
        actor,
        config,
        &after,
        ReleaseKind::LaneUpdate,
        &rule.message,
    )
    .await?;
    db::audit::record(
        tx,
        at,
        NewEntry::new(&actor.name, AuditAction::LaneUpdate)
            .namespace(&c.namespace)
            .env(&c.env)
            .key(&c.key)
            .details(json!({
                "lane": id, "version": after.version,
                "before": changed_fields(&before, change),
                "after": changed_fields(&after, change),
                "message": rule.message, "release_event": event.id,
            })),
    )
    .await?;
    Ok((after, event))
}

/// Makes the lane's version the stable release and closes the lane.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn promote(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    message: Option<String>,
) -> Result<ReleaseEvent> {
    close(state, actor, path, lane, message, Close::Promote).await
}

/// Closes the lane; its subscribers fall back to the stable release.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn abort(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    message: Option<String>,
) -> Result<ReleaseEvent> {
    close(state, actor, path, lane, message, Close::Abort).await
}

#[derive(Clone, Copy, PartialEq)]
pub enum Close {
    Promote,
    Abort,
}

async fn close(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    message: Option<String>,
    how: Close,
) -> Result<ReleaseEvent> {
    let (namespace, env, key) = path.parts();
    let LaneId(id) = lane;
    actor.require_in(Role::Releaser, Some(namespace), Some(env))?;
    let message = message_of(message)?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, namespace, env, key).await?;
    let at = state.clock.now();
    let (lane, event) = close_in(&mut tx, at, actor, &config, id, &message, how).await?;
    let ended = super::plans::lane_closed(&mut tx, at, actor, path, &lane, how, event.id).await?;
    tx.commit().await?;
    state.hub.publish(&event);
    if ended {
        state.metrics.rollout_transition(match how {
            Close::Promote => "completed",
            Close::Abort => "aborted",
        });
        state.rollouts.wake();
    }
    Ok(event)
}

/// Promotes or aborts an active lane inside `tx`, with its release event and audit entry (the
/// caller authorized `actor` and publishes the event after the commit).
pub(super) async fn close_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    id: i64,
    message: &str,
    how: Close,
) -> Result<(Lane, ReleaseEvent)> {
    let c = &config.config;
    let (status, action, audit) = match how {
        Close::Promote => (
            LaneStatus::Promoted,
            ReleaseKind::LanePromote,
            AuditAction::LanePromote,
        ),
        Close::Abort => (
            LaneStatus::Aborted,
            ReleaseKind::LaneAbort,
            AuditAction::LaneAbort,
        ),
    };
    let lane = find_active(&mut *tx, config, id).await?;
    let event = lane_event(tx, actor, config, &lane, action, message).await?;
    let closed = db::lanes::close(tx, at, id, status, event.id).await?;
    if how == Close::Promote {
        db::configs::set_stable(tx, at, config.id, lane.version).await?;
    }
    db::audit::record(
        tx,
        at,
        NewEntry::new(&actor.name, audit)
            .namespace(&c.namespace)
            .env(&c.env)
            .key(&c.key)
            .details(json!({
                "lane": id, "version": lane.version,
                "stable_version": c.stable_version,
                "message": message, "release_event": event.id,
            })),
    )
    .await?;
    Ok((closed, event))
}

/// Which connected subscribers `rule` matches, on its own.
async fn preview_rule(
    state: &Core,
    namespace: &str,
    env: &str,
    rule: &LaneRule,
) -> Result<Preview> {
    let connected = connected_everywhere(state, namespace, env).await?;
    let matched: Vec<String> = connected
        .iter()
        .filter(|instance| rule.matches(&instance.context))
        .map(|instance| instance.client_id.clone())
        .collect();
    Ok(Preview {
        matched_count: matched.len(),
        matched,
        connected_count: connected.len(),
    })
}

/// The subscribers connected to (namespace, env) now: this node's, and with several nodes
/// also those the shared instance rows say other nodes serve (
/// docs/nodes.md), by client id.
async fn connected_everywhere(
    state: &Core,
    namespace: &str,
    env: &str,
) -> Result<Vec<crate::server::hub::ConnectedInstance>> {
    let mut connected = state.hub.connected(namespace, env);
    if state.nodes.shared() {
        let here: std::collections::HashSet<String> =
            connected.iter().map(|c| c.client_id.clone()).collect();
        for instance in state.instances.list(namespace, env).await? {
            if instance.connected && !here.contains(&instance.client_id) {
                let mut context = instance.labels.clone();
                context.insert("client_id".into(), instance.client_id.clone());
                connected.push(crate::server::hub::ConnectedInstance {
                    client_id: instance.client_id,
                    context,
                });
            }
        }
        connected.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    }
    Ok(connected)
}

/// Which connected subscribers of the config's namespace and environment an
/// unsaved lane would match, on its own. It is evaluated with the salt the
/// config's next lane will get, so the preview is exact for the lane created next.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn preview(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: NewLane,
) -> Result<Preview> {
    let (namespace, env, key) = path.parts();
    actor.require_in(Role::Viewer, Some(namespace), Some(env))?;
    let lane = check_new_lane(lane)?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, namespace, env, key).await?;
    let salt = db::lanes::next_salt(&mut *conn, config.id).await?;
    preview_rule(state, namespace, env, &lane.rule(DRAFT_LANE_ID, salt)).await
}

/// Like [`preview`], for a change to an active lane (with that lane's salt).
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn preview_change(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    change: LaneUpdate,
) -> Result<Preview> {
    let (namespace, env, key) = path.parts();
    let LaneId(id) = lane;
    actor.require_in(Role::Viewer, Some(namespace), Some(env))?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, namespace, env, key).await?;
    let lane = find_active(&mut conn, &config, id).await?;
    let rule = apply(&lane, &change)?.rule(lane.id, lane.salt.clone());
    preview_rule(state, namespace, env, &rule).await
}

/// Why `ctx` gets the version it gets. With `draft`, as if that lane had just
/// been created: with the salt the config's next lane will get, tried after
/// the active lanes of the same priority (it would have the highest id), and
/// reported as lane 0.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn explain(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    ctx: &Context,
    draft: Option<NewLane>,
) -> Result<Explanation> {
    let (namespace, env, key) = path.parts();
    actor.require_in(Role::Viewer, Some(namespace), Some(env))?;
    let draft = draft.map(check_new_lane).transpose()?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, namespace, env, key).await?;
    let mut rules = rules_of(&db::lanes::active(&mut *conn, config.id).await?)?;
    if let Some(draft) = draft {
        check_version(&mut conn, &config, draft.version).await?;
        let salt = db::lanes::next_salt(&mut *conn, config.id).await?;
        // The largest id sorts it last among equal priorities; `explanation` shows it as 0.
        rules.push(draft.rule(i64::MAX, salt));
    }
    Ok(explanation(config.config.stable_version, &rules, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rule(id: i64, percentage_bp: u32) -> LaneRule {
        LaneRule {
            id,
            version: 2,
            selector: Selector::default(),
            targets: Vec::new(),
            percentage_bp,
            stickiness: "client_id".into(),
            salt: "lane-1".into(),
            priority: 0,
        }
    }

    #[test]
    fn explanations_name_the_deciding_fact() {
        let pod = ctx(&[("client_id", "pod-1")]);
        assert_eq!(
            explanation(Some(1), &[rule(3, 3000)], &pod).reason,
            "lane 3 matched: bucket 374 < threshold 3000 → v2"
        );
        let missed = explanation(Some(1), &[rule(3, 300)], &pod);
        assert_eq!(missed.reason, "no lane matched → stable v1");
        assert_eq!((missed.version, missed.lane), (Some(1), None));
        assert_eq!(
            explanation(Some(1), &[], &pod).reason,
            "no active lanes → stable v1"
        );
        let nothing = explanation(None, &[rule(3, 300)], &pod);
        assert_eq!(nothing.reason, "nothing released and no lane matched → 404");
        assert_eq!(nothing.version, None);
        let draft = explanation(None, &[rule(3, 300), rule(i64::MAX, 3000)], &pod);
        assert_eq!(draft.lane, Some(DRAFT_LANE_ID));
        assert_eq!(draft.lanes[1].lane_id, DRAFT_LANE_ID);
        assert_eq!(
            draft.reason,
            "draft lane matched: bucket 374 < threshold 3000 → v2"
        );
    }

    #[test]
    fn targets_are_trimmed_and_deduplicated() {
        let targets = vec![" pod-1".into(), "pod-2".into(), "pod-1 ".into()];
        assert_eq!(check_targets(targets).unwrap(), ["pod-1", "pod-2"]);
        let err = check_targets(vec!["pod-1".into(), " ".into()]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("targets"));
        assert!(err.message.contains("target 2"), "{}", err.message);
    }

    #[test]
    fn targets_are_bounded_in_count_and_bytes() {
        let many: Vec<String> = (0..=MAX_TARGETS).map(|i| format!("u{i}")).collect();
        let err = check_targets(many).unwrap_err();
        assert!(err.message.contains("at most 1000"), "{}", err.message);
        // 100 targets of 200 characters: each fits, together they do not.
        let long: Vec<String> = (0..100).map(|i| format!("{i:0>200}")).collect();
        let err = check_targets(long).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("targets"));
        assert!(
            err.message.contains("20000 bytes together") && err.message.contains("16384"),
            "{}",
            err.message
        );
        let fits: Vec<String> = (0..80).map(|i| format!("{i:0>200}")).collect();
        assert_eq!(check_targets(fits).unwrap().len(), 80);
    }

    #[test]
    fn a_refused_target_is_quoted_short() {
        let err = check_targets(vec![format!("{}\n", "x".repeat(100_000))]).unwrap_err();
        assert!(err.message.len() < 300, "{}", err.message);
        assert!(err.message.contains("…"), "{}", err.message);
    }

    #[test]
    fn priorities_lie_within_the_range() {
        assert_eq!(check_priority(-1000).unwrap(), -1000);
        assert_eq!(check_priority(1000).unwrap(), 1000);
        for bad in [1001, -1001, i64::MIN, i64::MAX] {
            let err = check_priority(bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("priority"));
            assert!(err.message.contains("-1000 to 1000"), "{}", err.message);
        }
    }

    #[test]
    fn stickiness_defaults_to_client_id() {
        assert_eq!(check_stickiness(None).unwrap(), "client_id");
        assert_eq!(check_stickiness(Some("user_id".into())).unwrap(), "user_id");
        let err = check_stickiness(Some("user id".into())).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("stickiness"));
    }
}
