//! Change requests (issue 28, docs/api.md "Change requests, schedules and overrides"):
//! making one, the approvals that apply it as its author, rejecting and withdrawing it, the
//! scheduler's application of scheduled ones, and reviewing break-glass overrides. What a
//! request is bound to and the gate that makes them live in [`super::governance`].

use super::freezes;
use super::governance::{self, Widening};
use super::lane_changes::{find_active, Close};
use super::lookups::{find, message_of};
use super::{configs, lanes, plans};
use crate::domain::audit::AuditAction;
use crate::model::{
    ChangeAction, ChangeComment, ChangeRequest, ChangeRequestPage, ChangeRequestQuery,
    ChangeStatus, ConfigPath, LaneUpdate, NewChangeRequest, NewLane, OverrideEntry, OverrideQuery,
    ReleaseEvent, Role, Scope, Timestamp,
};
use crate::server::auth::Actor;
use crate::server::db::{
    self, audit::NewEntry, change_requests::StoredRequest, configs::StoredConfig,
};
use crate::server::Core;
use crate::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest comment on an approval, rejection or withdrawal.
pub const MAX_COMMENT_CHARS: usize = 2000;

fn comment_of(comment: Option<String>) -> Result<String> {
    let comment = comment.unwrap_or_default().trim().to_string();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(Error::invalid(
            "comment",
            format!("The comment has more than {MAX_COMMENT_CHARS} characters; shorten it."),
        ));
    }
    Ok(comment)
}

fn body_of<T: serde::de::DeserializeOwned>(body: Value) -> Result<T> {
    serde_json::from_value(body).map_err(|e| {
        Error::invalid(
            "body",
            format!(
                "The body does not fit the action: {}",
                crate::error::elided(&e.to_string(), 300)
            ),
        )
    })
}

/// The lane a lane action names: `{lane: 3, …}`; the rest of the body is the action's own.
fn take_lane(body: &mut Value) -> Result<i64> {
    body.as_object_mut()
        .and_then(|o| o.remove("lane"))
        .and_then(|l| l.as_i64())
        .ok_or_else(|| Error::invalid("body", "A lane action names its lane: {\"lane\": 3, …}."))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    version: i64,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachBody {
    #[serde(default)]
    plan: Option<Value>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The action of a request, checked against the config now, as the gate describes it.
pub(super) async fn describe(
    core: &Core,
    tx: &mut db::Tx<'_>,
    config: &StoredConfig,
    action: ChangeAction,
    mut body: Value,
    message: Option<String>,
) -> Result<Widening> {
    let path = config.config.path();
    match action {
        ChangeAction::Release => {
            let b: ReleaseBody = body_of(body)?;
            let message = message_of(message.or(b.message))?;
            super::lookups::find_version(&mut **tx, config, b.version)
                .await
                .map_err(|e| Error::invalid("version", e.message))?;
            configs::release_widening(tx, config, b.version, message).await
        }
        ChangeAction::LaneCreate => {
            let mut new: NewLane = body_of(body)?;
            if message.is_some() {
                new.message = message;
            }
            let start = lanes::check_start(core, &path, new).await?;
            super::lane_changes::check_version(tx, config, start.lane.version).await?;
            Ok(start.widening(db::lanes::next_salt(&mut **tx, config.id).await?))
        }
        ChangeAction::LaneUpdate => {
            let id = take_lane(&mut body)?;
            let mut change: LaneUpdate = body_of(body)?;
            if message.is_some() {
                change.message = message;
            }
            lanes::update_widening(&find_active(tx, config, id).await?, &change)
        }
        ChangeAction::LanePromote => {
            let id = take_lane(&mut body)?;
            let b: PromoteBody = body_of(body)?;
            let message = message_of(message.or(b.message))?;
            Ok(lanes::promote_widening(
                &find_active(tx, config, id).await?,
                message,
            ))
        }
        ChangeAction::PlanAttach => {
            let id = take_lane(&mut body)?;
            let b: AttachBody = body_of(body)?;
            let message = message_of(message.or(b.message))?;
            let lane = find_active(tx, config, id).await?;
            let choice = plans::choose(core, &path.env, b.plan.as_ref(), b.template)
                .await?
                .ok_or_else(|| Error::invalid("plan", "Send a plan, or a template by name."))?;
            plans::attach_widening(&lane, &choice, message)
        }
    }
}

/// A request as callers see it: a plan's credentials stay hidden.
pub(super) fn shown(mut request: ChangeRequest) -> ChangeRequest {
    if let (Some(plan), Some(body)) = (&request.plan, request.body.as_object_mut()) {
        if body.contains_key("plan") {
            body.insert("plan".into(), plan.clone());
        }
    }
    request
}

/// `POST …/configs/{key}/change-requests` (editor): a request for a widening action, pending
/// its approvals, or scheduled with `apply_at`. It needs the environment's approvals; one at
/// least when it is not scheduled, or when its author may not do the action itself (an editor).
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn create(
    core: &Core,
    actor: &Actor,
    path: &ConfigPath,
    new: NewChangeRequest,
) -> Result<ChangeRequest> {
    actor.require(Role::Editor, path.scope())?;
    let apply_at = governance::check_apply_at(core.clock.now(), new.apply_at)?;
    let mut tx = db::begin_write(&core.db).await?;
    let config = find(&mut tx, path).await?;
    let change = describe(core, &mut tx, &config, new.action, new.body, new.message).await?;
    let protection = governance::approvals_of(&mut tx, &path.env).await?;
    let mut needed = if change.widens { protection } else { 0 };
    if apply_at.is_none() || actor.role < Role::Releaser {
        needed = needed.max(1);
    }
    let request =
        governance::request_in(core, &mut tx, actor, &config, &change, apply_at, needed).await?;
    tx.commit().await?;
    if apply_at.is_some() {
        core.scheduler.wake();
    }
    Ok(shown(request))
}

/// `GET /api/v1/change-requests?env=&namespace=&status=&author=&before=&limit=` (viewer): newest
/// first; a limited caller sees only its environment and namespace.
#[tracing::instrument(skip_all)]
pub async fn list(
    core: &Core,
    actor: &Actor,
    query: ChangeRequestQuery,
) -> Result<ChangeRequestPage> {
    actor.require(
        Role::Viewer,
        Scope {
            namespace: query.namespace.as_deref(),
            env: query.env.as_deref(),
        },
    )?;
    let limit = ChangeRequestQuery::page_size(query.limit);
    let mut conn = core.db.acquire().await?;
    let mut requests = db::change_requests::list(
        &mut conn,
        db::change_requests::Filter {
            namespace: query.namespace.or_else(|| actor.namespace.clone()),
            env: query.env.or_else(|| actor.env.clone()),
            status: query.status,
            author: query.author,
            key: None,
            open: false,
            before: query.before,
            limit: limit + 1,
        },
    )
    .await?;
    let more = requests.len() as i64 > limit;
    requests.truncate(limit as usize);
    let next_before = if more {
        requests.last().map(|r| r.id)
    } else {
        None
    };
    Ok(ChangeRequestPage {
        requests: requests.into_iter().map(shown).collect(),
        next_before,
    })
}

/// A request the caller may see with `role`: 404 without it, 403 outside the caller's limits.
pub(super) async fn load(
    conn: &mut db::Conn,
    actor: &Actor,
    role: Role,
    id: i64,
) -> Result<StoredRequest> {
    let stored = db::change_requests::find(conn, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("There is no change request {id}.")))?;
    let r = &stored.request;
    actor.require(role, Scope::of(&r.namespace, &r.env))?;
    Ok(stored)
}

/// `GET /api/v1/change-requests/{id}` (viewer of its environment).
#[tracing::instrument(skip_all)]
pub async fn get(core: &Core, actor: &Actor, id: i64) -> Result<ChangeRequest> {
    let mut conn = core.db.acquire().await?;
    Ok(shown(
        load(&mut conn, actor, Role::Viewer, id).await?.request,
    ))
}

fn still_open(r: &ChangeRequest) -> Result<()> {
    if r.status.is_open() {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "Change request {} is {}{}; it can no longer change.",
        r.id,
        r.status,
        r.reason
            .as_deref()
            .map(|why| format!(" ({why})"))
            .unwrap_or_default()
    )))
}

fn audit_of(r: &ChangeRequest, actor: &str, action: AuditAction) -> NewEntry {
    NewEntry::new(actor, action).config(&ConfigPath::new(&r.namespace, &r.env, &r.key))
}

/// What applying a request did.
enum Applied {
    /// It went live: its release events (to publish) and whether a plan started.
    Done(Vec<ReleaseEvent>, bool),
    /// It was not applied and ended `stale`, for this reason.
    Stale(String),
}

/// `POST /api/v1/change-requests/{id}/approve` (releaser of its environment, not its author,
/// not an admin): the last approval a pending request needs applies it at once, as its author.
/// 403 for the author, an admin or a token; 409 when it is no longer open or the caller
/// approved it already; 409 `stale` when what it was bound to changed (it ends `stale`).
#[tracing::instrument(skip_all)]
pub async fn approve(
    core: &Core,
    actor: &Actor,
    id: i64,
    comment: ChangeComment,
) -> Result<ChangeRequest> {
    let comment = comment_of(comment.comment)?;
    let mut tx = db::begin_write(&core.db).await?;
    let stored = load(&mut tx, actor, Role::Releaser, id).await?;
    let r = &stored.request;
    if r.author == actor.name {
        return Err(Error::forbidden(format!(
            "You made change request {id}; another releaser must approve it (self-approval is \
             never allowed)."
        )));
    }
    if actor.role == Role::Admin {
        return Err(Error::forbidden(
            "Admins do not approve change requests: another releaser must. An admin may apply \
             one at once with an override (break glass).",
        ));
    }
    if actor.user_id.is_none() {
        return Err(Error::forbidden(
            "Approvals come from people: sign in as a releaser to approve.",
        ));
    }
    still_open(r)?;
    let at = core.clock.now();
    if !db::change_requests::approve(&mut tx, at, id, &actor.name, &comment).await? {
        return Err(Error::conflict(format!(
            "You approved change request {id} already."
        )));
    }
    let approvals = r.approvals.len() as i64 + 1;
    db::audit::record(
        &mut tx,
        at,
        audit_of(r, &actor.name, AuditAction::ChangeApprove).details(json!({
            "change_request": id, "approvals": approvals,
            "approvals_needed": r.approvals_needed, "message": comment,
        })),
    )
    .await?;
    let applied = if r.status == ChangeStatus::Pending && approvals >= r.approvals_needed {
        // The last approval applies it now: not while the environment is frozen (approve
        // again after the freeze; the approval is not kept, so nothing applies it unseen).
        freezes::guard_widening(core, &mut tx, &r.env).await?;
        Some(apply_in(core, &mut tx, id, &actor.name).await?)
    } else {
        None
    };
    tx.commit().await?;
    finish(core, id, applied).await
}

/// After the commit: publishes what an application released, and answers with the request,
/// or 409 `stale` when it went stale.
async fn finish(core: &Core, id: i64, applied: Option<Applied>) -> Result<ChangeRequest> {
    match applied {
        Some(Applied::Stale(why)) => {
            return Err(Error::stale(
                id,
                format!("Change request {id} was not applied: {why}"),
            ))
        }
        Some(Applied::Done(events, wake)) => {
            for event in &events {
                core.hub.publish(event);
            }
            if wake {
                core.metrics.rollout_transition("started");
            }
            core.scheduler.wake();
        }
        None => {}
    }
    let mut conn = core.db.acquire().await?;
    let stored = db::change_requests::find(&mut conn, id)
        .await?
        .ok_or_else(|| Error::internal(format!("change request {id} vanished")))?;
    Ok(shown(stored.request))
}

/// Applies open request `id` inside `tx`, as its author, unless what it was bound to changed
/// (then it ends `stale`, and so it does when the action itself is refused now); `by` applied
/// it (the last approver, an admin's override, or the scheduler).
async fn apply_in(core: &Core, tx: &mut db::Tx<'_>, id: i64, by: &str) -> Result<Applied> {
    let at = core.clock.now();
    let stored = db::change_requests::find(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::internal(format!("change request {id} vanished")))?;
    let r = &stored.request;
    still_open(r)?;
    let path = ConfigPath::new(&r.namespace, &r.env, &r.key);
    let version = r.snapshot["version"].as_i64().unwrap_or_default();
    let stale = match db::configs::find(&mut **tx, &path).await? {
        Some(config) if config.id == stored.config_id => {
            let now = governance::snapshot(tx, &config, version).await?;
            match governance::what_changed(&r.snapshot, &now) {
                Some(why) => Some(why),
                None => {
                    let mut inner = sqlx::Acquire::begin(&mut **tx).await?;
                    match execute(core, &mut inner, &config, r).await {
                        Ok((mut events, wake)) => {
                            inner.commit().await?;
                            applied(tx, at, r, by, &mut events).await?;
                            return Ok(Applied::Done(events, wake));
                        }
                        Err(e) if e.status < 500 => {
                            Some(format!("the action is refused now: {}", e.message))
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        _ => Some("the config was deleted since the request was made.".to_string()),
    };
    let why = stale.unwrap_or_default();
    db::change_requests::end(tx, at, id, ChangeStatus::Stale, by, Some(&why), None).await?;
    db::audit::record(
        tx,
        at,
        audit_of(r, by, AuditAction::ChangeStale)
            .details(json!({ "change_request": id, "reason": why })),
    )
    .await?;
    Ok(Applied::Stale(why))
}

/// Records that `r` was applied with `events` (which get its approvers): its status, the
/// approvers beside each event, and the `change.apply` audit entry by the author, as whom it
/// was applied. 409 when another node or caller ended it meanwhile.
async fn applied(
    tx: &mut db::Tx<'_>,
    at: Timestamp,
    r: &ChangeRequest,
    by: &str,
    events: &mut [ReleaseEvent],
) -> Result<()> {
    let approved_by: Vec<String> = r.approvals.iter().map(|a| a.approver.clone()).collect();
    for event in events.iter_mut() {
        db::change_requests::record_approvers(tx, event.id, r.id, &approved_by).await?;
        event.change_request = Some(r.id);
        event.approved_by = approved_by.clone();
    }
    let first = events.first().map(|e| e.id);
    if !db::change_requests::end(tx, at, r.id, ChangeStatus::Applied, by, None, first).await? {
        return Err(Error::conflict(format!(
            "Change request {} was ended meanwhile.",
            r.id
        )));
    }
    db::audit::record(
        tx,
        at,
        audit_of(r, &r.author, AuditAction::ChangeApply).details(json!({
            "change_request": r.id, "action": r.action, "approved_by": approved_by,
            "applied_by": by, "release_event": first,
        })),
    )
    .await?;
    Ok(())
}

/// Runs the request's action as its author inside `tx` (passed by its approvals): its release
/// events, and whether a plan started.
async fn execute(
    core: &Core,
    tx: &mut db::Tx<'_>,
    config: &StoredConfig,
    r: &ChangeRequest,
) -> Result<(Vec<ReleaseEvent>, bool)> {
    let at = core.clock.now();
    let author = Actor {
        name: r.author.clone(),
        role: Role::Releaser,
        ..Actor::cli()
    };
    let mut body = r.body.clone();
    let message = r.message.clone();
    Ok(match r.action {
        ChangeAction::Release => {
            let b: ReleaseBody = body_of(body)?;
            let event = configs::release_in(tx, at, &author, config, b.version, &message).await?;
            (vec![event], false)
        }
        ChangeAction::LaneCreate => {
            let start = lanes::check_start(core, &config.config.path(), body_of(body)?).await?;
            let (_, event) = lanes::create_in(tx, at, &author, config, &start).await?;
            (vec![event], start.choice.is_some())
        }
        ChangeAction::LaneUpdate => {
            let id = take_lane(&mut body)?;
            let change: LaneUpdate = body_of(body)?;
            let (_, event, _) = lanes::update_lane_in(tx, at, &author, config, id, &change).await?;
            (vec![event], false)
        }
        ChangeAction::LanePromote => {
            let id = take_lane(&mut body)?;
            let (event, _) =
                lanes::close_lane_in(tx, at, &author, config, id, &message, Close::Promote).await?;
            (vec![event], false)
        }
        ChangeAction::PlanAttach => {
            let id = take_lane(&mut body)?;
            let b: AttachBody = body_of(body)?;
            let choice = plans::choose(core, &config.config.env, b.plan.as_ref(), None)
                .await?
                .ok_or_else(|| Error::internal("a stored plan.attach request has no plan"))?;
            let event = plans::attach_in(tx, at, &author, config, id, &choice, &message).await?;
            (vec![event], true)
        }
    })
}

/// `POST /api/v1/change-requests/{id}/reject` (releaser of its environment) with a comment.
#[tracing::instrument(skip_all)]
pub async fn reject(
    core: &Core,
    actor: &Actor,
    id: i64,
    comment: ChangeComment,
) -> Result<ChangeRequest> {
    let comment = comment_of(comment.comment)?;
    if comment.is_empty() {
        return Err(Error::invalid(
            "comment",
            "Say why you reject the change in a comment.",
        ));
    }
    end_by(core, actor, id, ChangeStatus::Rejected, &comment).await
}

/// `POST /api/v1/change-requests/{id}/withdraw` (its author only), until it is applied.
#[tracing::instrument(skip_all)]
pub async fn withdraw(
    core: &Core,
    actor: &Actor,
    id: i64,
    comment: ChangeComment,
) -> Result<ChangeRequest> {
    let comment = comment_of(comment.comment)?;
    end_by(core, actor, id, ChangeStatus::Withdrawn, &comment).await
}

async fn end_by(
    core: &Core,
    actor: &Actor,
    id: i64,
    status: ChangeStatus,
    comment: &str,
) -> Result<ChangeRequest> {
    let at = core.clock.now();
    let mut tx = db::begin_write(&core.db).await?;
    let (role, audit) = match status {
        ChangeStatus::Withdrawn => (Role::Editor, AuditAction::ChangeWithdraw),
        _ => (Role::Releaser, AuditAction::ChangeReject),
    };
    let stored = load(&mut tx, actor, role, id).await?;
    let r = &stored.request;
    if status == ChangeStatus::Withdrawn && r.author != actor.name {
        return Err(Error::forbidden(format!(
            "Only its author ({}) may withdraw change request {id}; reject it instead.",
            r.author
        )));
    }
    still_open(r)?;
    let reason = (!comment.is_empty()).then_some(comment);
    if !db::change_requests::end(&mut tx, at, id, status, &actor.name, reason, None).await? {
        return Err(Error::conflict(format!(
            "Change request {id} was ended meanwhile."
        )));
    }
    db::audit::record(
        &mut tx,
        at,
        audit_of(r, &actor.name, audit)
            .details(json!({ "change_request": id, "message": comment })),
    )
    .await?;
    tx.commit().await?;
    finish(core, id, None).await
}

/// `POST /api/v1/change-requests/{id}/apply` `{override: {reason}}` (admin, break glass):
/// applies an open request at once without its approvals (still refused when stale); audited
/// as `change.override` and marked unreviewed until another releaser reviews it.
#[tracing::instrument(skip_all)]
pub async fn apply_now(
    core: &Core,
    actor: &Actor,
    id: i64,
    body: ChangeComment,
) -> Result<ChangeRequest> {
    let Some(reason) = body.break_glass.as_ref() else {
        return Err(Error::invalid(
            "override",
            "Applying a request before its approvals is break glass: send override: {reason}.",
        ));
    };
    let reason = governance::check_override(reason)?;
    let mut tx = db::begin_write(&core.db).await?;
    let stored = load(&mut tx, actor, Role::Admin, id).await?;
    let r = &stored.request;
    still_open(r)?;
    let path = ConfigPath::new(&r.namespace, &r.env, &r.key);
    let config = find(&mut tx, &path).await?;
    let at = core.clock.now();
    governance::record_override(&mut tx, at, actor, &config, r.action, Some(id), &reason).await?;
    let applied = apply_in(core, &mut tx, id, &actor.name).await?;
    tx.commit().await?;
    finish(core, id, Some(applied)).await
}

/// The scheduler's part (on the lease holder): every scheduled request whose time came is
/// applied once, if it has its approvals and is not stale; else it ends `expired` or `stale`
/// with the reason. The status is re-read and changed in one write transaction with a
/// conditional update, so two nodes cannot both apply it.
pub async fn apply_due(core: &Core) -> Result<()> {
    for id in db::change_requests::due(&core.db, core.clock.now()).await? {
        let mut tx = db::begin_write(&core.db).await?;
        let Some(stored) = db::change_requests::find(&mut tx, id).await? else {
            continue;
        };
        let r = &stored.request;
        if r.status != ChangeStatus::Scheduled {
            continue;
        }
        // Inside a freeze a scheduled change waits for its end (it stays scheduled and is
        // due again on every turn after).
        if freezes::frozen_now(&mut tx, &r.env, core.clock.now())
            .await?
            .is_some()
        {
            continue;
        }
        let got = r.approvals.len() as i64;
        let applied = if got < r.approvals_needed {
            let at = core.clock.now();
            let why = format!(
                "its time came with {got} of the {} approvals it needed",
                r.approvals_needed
            );
            db::change_requests::end(
                &mut tx,
                at,
                id,
                ChangeStatus::Expired,
                plans::SCHEDULER,
                Some(&why),
                None,
            )
            .await?;
            db::audit::record(
                &mut tx,
                at,
                audit_of(r, plans::SCHEDULER, AuditAction::ChangeExpire)
                    .details(json!({ "change_request": id, "reason": why })),
            )
            .await?;
            None
        } else {
            Some(apply_in(core, &mut tx, id, plans::SCHEDULER).await?)
        };
        tx.commit().await?;
        if let Some(Applied::Done(events, started)) = applied {
            for event in &events {
                core.hub.publish(event);
            }
            if started {
                core.metrics.rollout_transition("started");
            }
        }
    }
    Ok(())
}

/// `GET /api/v1/overrides?reviewed=&env=&limit=` (viewer): break-glass overrides, newest first;
/// a limited caller sees only its environment and namespace.
#[tracing::instrument(skip_all)]
pub async fn overrides(
    core: &Core,
    actor: &Actor,
    query: OverrideQuery,
) -> Result<Vec<OverrideEntry>> {
    actor.require(
        Role::Viewer,
        Scope {
            namespace: None,
            env: query.env.as_deref(),
        },
    )?;
    let limit = ChangeRequestQuery::page_size(query.limit);
    Ok(db::change_requests::list_overrides(
        &core.db,
        actor.namespace.clone(),
        query.env.or_else(|| actor.env.clone()),
        query.reviewed,
        limit,
    )
    .await?)
}

/// `POST /api/v1/overrides/{id}/review` (releaser of its environment, not the admin who
/// overrode): the override is reviewed; its unreviewed marker goes.
#[tracing::instrument(skip_all)]
pub async fn review(core: &Core, actor: &Actor, id: i64) -> Result<OverrideEntry> {
    let mut tx = db::begin_write(&core.db).await?;
    let o = db::change_requests::find_override(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("There is no override {id}.")))?;
    actor.require(Role::Releaser, Scope::of(&o.namespace, &o.env))?;
    if o.actor == actor.name {
        return Err(Error::forbidden(
            "You made this override; another releaser must review it.",
        ));
    }
    let at = core.clock.now();
    if !db::change_requests::review_override(&mut tx, at, id, &actor.name).await? {
        return Err(Error::conflict(format!(
            "Override {id} was reviewed already by {}.",
            o.reviewed_by.as_deref().unwrap_or("someone")
        )));
    }
    db::audit::record(
        &mut tx,
        at,
        NewEntry::new(&actor.name, AuditAction::OverrideReview)
            .config(&ConfigPath::new(&o.namespace, &o.env, &o.key))
            .details(json!({
                "override": id, "overridden_by": o.actor, "change_request": o.change_request,
            })),
    )
    .await?;
    tx.commit().await?;
    db::change_requests::find_override(&core.db, id)
        .await?
        .ok_or_else(|| Error::internal(format!("override {id} vanished")))
}
