//! Gray lanes (docs/lanes.md): start, change, promote, abort, preview,
//! and the resolution of a context to a version, with its explanation.

use super::blast::preview_rule;
use super::governance::{self, Gate, Outcome, Widening};
use super::lane_changes::{
    apply, check_new_lane, check_version, close_in, find_active, lane_event, update_in,
    CheckedLane, Close,
};
use super::lookups::{find, message_of};
use crate::domain::audit::AuditAction;
use crate::domain::lane::{self, LaneRule, LaneVerdict};
use crate::domain::selector::Selector;
use crate::domain::Context;
use crate::model::{
    ChangeAction, ConfigPath, Explanation, Governed, Lane, LaneId, LaneUpdate, NewLane, Preview,
    ReleaseEvent, ReleaseKind, Resolved, Role, Timestamp,
};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry, configs::StoredConfig};
use crate::server::Core;
use crate::{Error, Result};
use serde_json::json;

/// The most active lanes one config may have: each is tried on every resolve of the config.
pub const MAX_ACTIVE_LANES: usize = 20;

/// The id an unsaved (draft) lane has in previews and explanations.
pub const DRAFT_LANE_ID: i64 = 0;

/// The matching rule of a stored lane.
fn rule_of(lane: &Lane) -> Result<LaneRule> {
    Ok(LaneRule {
        id: lane.id,
        version: lane.version,
        // Stored selectors were parsed before they were stored.
        selector: Selector::parse(&lane.selector).map_err(Error::internal)?,
        targets: lane.targets.clone(),
        percentage: lane.percentage,
        stickiness: lane.stickiness.clone(),
        salt: lane.salt.clone(),
        priority: lane.priority,
    })
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
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    let mut lanes = db::lanes::list(&mut *conn, config.id).await?;
    drop(conn);
    super::plans::summarize(&state.db, &path.env, state.clock.now(), &mut lanes).await?;
    Ok(lanes)
}

/// A lane request, checked, with its plan: what starting it needs besides the database.
pub struct LaneStart {
    pub(super) lane: CheckedLane,
    pub(super) choice: Option<super::plans::PlanChoice>,
    /// The body as a change request stores it: the plan spelled out, no template name.
    pub(super) body: serde_json::Value,
}

impl LaneStart {
    /// Starting the lane as the gate sees it; `salt` is the one the config's next lane gets.
    pub fn widening(&self, salt: String) -> Widening {
        Widening {
            action: ChangeAction::LaneCreate,
            body: self.body.clone(),
            message: self.lane.message.clone(),
            version: self.lane.version,
            rule: Some(self.lane.rule(DRAFT_LANE_ID, salt)),
            plan: self.choice.as_ref().map(|c| json!(c.spec())),
            widens: true,
        }
    }
}

/// Changing active lane `lane` by `change` as the gate sees it.
pub fn update_widening(lane: &Lane, change: &LaneUpdate) -> Result<Widening> {
    let rule = apply(lane, change)?;
    let mut body = serde_json::to_value(change).map_err(Error::internal)?;
    body["lane"] = json!(lane.id);
    Ok(Widening {
        action: ChangeAction::LaneUpdate,
        body,
        message: rule.message.clone(),
        version: lane.version,
        rule: Some(rule.rule(lane.id, lane.salt.clone())),
        plan: None,
        widens: governance::update_widens(lane, change),
    })
}

/// Promoting active lane `lane` as the gate sees it.
pub fn promote_widening(lane: &Lane, message: String) -> Widening {
    Widening {
        action: ChangeAction::LanePromote,
        body: json!({ "lane": lane.id, "message": message }),
        message,
        version: lane.version,
        rule: None,
        plan: None,
        widens: true,
    }
}

/// Checks a lane request and chooses its plan (a template is read now).
pub async fn check_start(state: &Core, path: &ConfigPath, mut new: NewLane) -> Result<LaneStart> {
    let choice = super::plans::choose(
        state,
        &path.env,
        new.plan.take().as_ref(),
        new.template.take(),
    )
    .await?;
    if let Some(choice) = &choice {
        new.percentage = choice.start_percentage(new.percentage)?;
        new.plan = Some(serde_json::to_value(&choice.plan).map_err(Error::internal)?);
    } else if new.percentage.is_nan() {
        return Err(Error::invalid(
            "percentage",
            "A lane needs a percentage (0 to 100), or a plan whose first step gives it.",
        ));
    }
    let body = serde_json::to_value(&new).map_err(Error::internal)?;
    Ok(LaneStart {
        lane: check_new_lane(new)?,
        choice,
        body,
    })
}

/// Starts a lane: its salt is assigned now and never changes. With a `plan` (or a `template`)
/// the lane starts at the plan's first step and the plan runs (docs/plans.md). Starting a lane
/// widens what is live: it passes the gate (`ops::governance`).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn create(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    new: NewLane,
    governed: &Governed,
) -> Result<Outcome<Lane>> {
    actor.require(Role::Releaser, path.scope())?;
    let start = check_start(state, path, new).await?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, path).await?;
    check_version(&mut tx, &config, start.lane.version).await?;
    let salt = db::lanes::next_salt(&mut *tx, config.id).await?;
    let widening = start.widening(salt);
    if let Gate::Requested(request) =
        governance::gate(state, &mut tx, actor, &config, &widening, governed).await?
    {
        tx.commit().await?;
        return governance::requested(request);
    }
    let (mut lane, event) = create_in(&mut tx, state.clock.now(), actor, &config, &start).await?;
    tx.commit().await?;
    state.hub.publish(&event);
    if start.choice.is_some() {
        state.metrics.rollout_transition("started");
        state.scheduler.wake();
        super::plans::summarize(
            &state.db,
            &path.env,
            state.clock.now(),
            std::slice::from_mut(&mut lane),
        )
        .await?;
    }
    Ok(Outcome::Done(lane))
}

/// Starts a checked lane inside `tx`, with its release event, audit entry and plan (the
/// caller authorized `actor`, passed the gate, and publishes the event after the commit).
pub async fn create_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    start: &LaneStart,
) -> Result<(Lane, ReleaseEvent)> {
    let path = config.config.path();
    let (new, choice) = (&start.lane, &start.choice);
    check_version(&mut *tx, config, new.version).await?;
    // Writes are serialized (`begin_write`), so the count cannot change before the insert.
    let active = db::lanes::count_active(&mut **tx, config.id).await?;
    if active >= MAX_ACTIVE_LANES as i64 {
        return Err(Error::conflict(format!(
            "{path} already has {active} active lanes, the most a config may have \
             ({MAX_ACTIVE_LANES}); promote or abort one before starting another."
        )));
    }
    let salt = db::lanes::take_next_salt(tx, config.id).await?;
    let selector = new.selector.to_string();
    let lane = db::lanes::insert(
        tx,
        db::lanes::NewLaneRow {
            config_id: config.id,
            version: new.version,
            selector: &selector,
            targets: &new.targets,
            percentage: new.percentage,
            stickiness: &new.stickiness,
            salt: &salt,
            priority: new.priority,
            created_by: &actor.name,
        },
    )
    .await?;
    let event = lane_event(
        tx,
        actor,
        config,
        &lane,
        ReleaseKind::LaneCreate,
        &new.message,
    )
    .await?;
    db::audit::record(
        tx,
        at,
        NewEntry::new(&actor.name, AuditAction::LaneCreate)
            .config(&path)
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
    if let Some(choice) = choice {
        super::plans::start_in(tx, at, actor, &path, &lane, choice, event.id).await?;
    }
    Ok((lane, event))
}

/// Changes an active lane's selector, targets, percentage or priority. The
/// salt stays, so raising the percentage keeps everyone already inside. A
/// percentage changed by hand pauses the lane's running plan (a person took over). A change
/// that widens the lane passes the gate (`ops::governance`); lowering the percentage does not
/// wait.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn update(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    change: LaneUpdate,
    governed: &Governed,
) -> Result<Outcome<Lane>> {
    let LaneId(id) = lane;
    actor.require(Role::Releaser, path.scope())?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, path).await?;
    let before = find_active(&mut tx, &config, id).await?;
    let widening = update_widening(&before, &change)?;
    if let Gate::Requested(request) =
        governance::gate(state, &mut tx, actor, &config, &widening, governed).await?
    {
        tx.commit().await?;
        return governance::requested(request);
    }
    let at = state.clock.now();
    let (mut after, event, paused) =
        update_lane_in(&mut tx, at, actor, &config, id, &change).await?;
    tx.commit().await?;
    state.hub.publish(&event);
    if paused {
        state.metrics.rollout_transition("paused");
        state.scheduler.wake();
    }
    super::plans::summarize(
        &state.db,
        &path.env,
        state.clock.now(),
        std::slice::from_mut(&mut after),
    )
    .await?;
    Ok(Outcome::Done(after))
}

/// Changes an active lane inside `tx`; a changed percentage pauses its running plan (returns
/// whether it did).
pub async fn update_lane_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    id: i64,
    change: &LaneUpdate,
) -> Result<(Lane, ReleaseEvent, bool)> {
    let path = config.config.path();
    let (after, event) = update_in(tx, at, actor, config, id, change).await?;
    let paused = if change.percentage.is_some() {
        super::plans::person_took_over(tx, at, actor, &path, &after, event.id).await?
    } else {
        false
    };
    Ok((after, event, paused))
}

/// Makes the lane's version the stable release and closes the lane. Promoting widens what is
/// live: it passes the gate (`ops::governance`).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn promote(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    message: Option<String>,
    governed: &Governed,
) -> Result<Outcome<ReleaseEvent>> {
    close(state, actor, path, lane, message, Close::Promote, governed).await
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
    close(
        state,
        actor,
        path,
        lane,
        message,
        Close::Abort,
        &Governed::default(),
    )
    .await?
    .done()
}

async fn close(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    message: Option<String>,
    how: Close,
    governed: &Governed,
) -> Result<Outcome<ReleaseEvent>> {
    let LaneId(id) = lane;
    actor.require(Role::Releaser, path.scope())?;
    let message = message_of(message)?;
    let mut tx = db::begin_write(&state.db).await?;
    let config = find(&mut tx, path).await?;
    if how == Close::Promote {
        let active = find_active(&mut tx, &config, id).await?;
        let widening = promote_widening(&active, message.clone());
        if let Gate::Requested(request) =
            governance::gate(state, &mut tx, actor, &config, &widening, governed).await?
        {
            tx.commit().await?;
            return governance::requested(request);
        }
    }
    let at = state.clock.now();
    let (event, ended) = close_lane_in(&mut tx, at, actor, &config, id, &message, how).await?;
    tx.commit().await?;
    closed(state, &event, ended, how);
    Ok(Outcome::Done(event))
}

/// After [`close_lane_in`] was committed: the event to the hub, and a plan that ended counted
/// and its scheduler woken.
pub fn closed(state: &Core, event: &ReleaseEvent, plan_ended: bool, how: Close) {
    state.hub.publish(event);
    if plan_ended {
        state.metrics.rollout_transition(match how {
            Close::Promote => "completed",
            Close::Abort => "aborted",
        });
        state.scheduler.wake();
    }
}

/// Promotes or aborts an active lane inside `tx`, ending its plan; returns the event and
/// whether a plan ended.
pub async fn close_lane_in(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    actor: &Actor,
    config: &StoredConfig,
    id: i64,
    message: &str,
    how: Close,
) -> Result<(ReleaseEvent, bool)> {
    let path = config.config.path();
    let (lane, event) = close_in(tx, at, actor, config, id, message, how).await?;
    let ended = super::plans::lane_closed(tx, at, actor, &path, &lane, how, event.id).await?;
    Ok((event, ended))
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
    actor.require(Role::Viewer, path.scope())?;
    let lane = check_new_lane(lane)?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    let salt = db::lanes::next_salt(&mut *conn, config.id).await?;
    preview_rule(state, path, &lane.rule(DRAFT_LANE_ID, salt)).await
}

/// Like [`preview`], for a change to an active lane (with that lane's salt).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn preview_change(
    state: &Core,
    actor: &Actor,
    path: &ConfigPath,
    lane: LaneId,
    change: LaneUpdate,
) -> Result<Preview> {
    let LaneId(id) = lane;
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
    let lane = find_active(&mut conn, &config, id).await?;
    let rule = apply(&lane, &change)?.rule(lane.id, lane.salt.clone());
    preview_rule(state, path, &rule).await
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
    actor.require(Role::Viewer, path.scope())?;
    let draft = draft.map(check_new_lane).transpose()?;
    let mut conn = state.db.acquire().await?;
    let config = find(&mut conn, path).await?;
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
            percentage: crate::model::Percentage::from_bp(percentage_bp).unwrap(),
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
}
