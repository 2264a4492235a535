//! What the dashboard shows of change governance (issue 28, point 6): a config's protection,
//! freeze, open requests and unreviewed overrides; an environment's settings; one request with
//! what holds for it now; and how many requests wait for the caller. Reads only: the changes
//! go through [`super::change_requests`], [`super::governance`] and [`super::freezes`].

use super::change_requests::{describe, load, shown};
use super::freezes;
use super::governance;
use crate::model::{
    ChangeRequestView, ChangeStatus, ConfigGovernance, ConfigPath, EnvGovernance, Role, Scope,
};
use crate::server::auth::Actor;
use crate::server::db;
use crate::server::Core;
use crate::Result;

/// The most open requests the config page lists.
pub const CONFIG_OPEN_REQUESTS: i64 = 20;

/// A config's governance (viewer of its environment): protection, the freeze in force, its
/// open requests and its unreviewed overrides.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn config(core: &Core, actor: &Actor, path: &ConfigPath) -> Result<ConfigGovernance> {
    actor.require(Role::Viewer, path.scope())?;
    let mut conn = core.db.acquire().await?;
    let approvals = db::change_requests::protection(&mut *conn, &path.env)
        .await?
        .unwrap_or_default();
    let frozen = freezes::frozen_now(&mut conn, &path.env, core.clock.now())
        .await?
        .map(freezes::Frozen::shown);
    let open_requests = db::change_requests::list(
        &mut conn,
        db::change_requests::Filter {
            namespace: Some(path.namespace.clone()),
            env: Some(path.env.clone()),
            key: Some(path.key.clone()),
            open: true,
            limit: CONFIG_OPEN_REQUESTS,
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .map(shown)
    .collect();
    let unreviewed_overrides = match db::configs::find(&mut *conn, path).await? {
        Some(config) => {
            db::change_requests::unreviewed_override_entries(&mut *conn, config.id).await?
        }
        None => Vec::new(),
    };
    Ok(ConfigGovernance {
        approvals,
        frozen,
        open_requests,
        unreviewed_overrides,
    })
}

/// An environment's protection and freeze windows (viewer of that environment).
#[tracing::instrument(skip_all)]
pub async fn env(core: &Core, actor: &Actor, env: &str) -> Result<EnvGovernance> {
    let protection = governance::protection(core, actor, env).await?;
    let windows = freezes::list(core, actor, env).await?;
    let mut conn = core.db.acquire().await?;
    let frozen = freezes::frozen_now(&mut conn, env, core.clock.now())
        .await?
        .map(freezes::Frozen::shown);
    Ok(EnvGovernance {
        env: env.to_string(),
        protection,
        frozen,
        freezes: windows,
    })
}

/// The freeze in force now in each of `envs` (for lists of environments).
pub async fn frozen_envs(core: &Core, envs: &mut [crate::model::Environment]) -> Result<()> {
    let mut conn = core.db.acquire().await?;
    let now = core.clock.now();
    for env in envs {
        env.frozen = freezes::frozen_now(&mut conn, &env.name, now)
            .await?
            .map(freezes::Frozen::shown);
    }
    Ok(())
}

/// How many pending requests the caller could approve now: people with the releaser role who
/// are not admins (admins never approve), in their limits, not the author, not approved yet.
#[tracing::instrument(skip_all)]
pub async fn waiting_for_me(core: &Core, actor: &Actor) -> Result<i64> {
    actor.require(Role::Viewer, Scope::ANY)?;
    if actor.role < Role::Releaser || actor.role == Role::Admin || actor.user_id.is_none() {
        return Ok(0);
    }
    Ok(db::change_requests::waiting_for(
        &core.db,
        &actor.name,
        actor.namespace.as_deref(),
        actor.env.as_deref(),
    )
    .await?)
}

/// One request (viewer of its environment) with what holds for it now: an open lane request's
/// blast radius against the instances connected now, and why applying it now would be refused
/// as stale, if it would.
#[tracing::instrument(skip_all)]
pub async fn request(core: &Core, actor: &Actor, id: i64) -> Result<ChangeRequestView> {
    let mut tx = db::begin_read(&core.db).await?;
    let stored = load(&mut tx, actor, Role::Viewer, id).await?;
    let r = &stored.request;
    let (mut preview_now, mut stale_now) = (None, None);
    if r.status.is_open() {
        let path = ConfigPath::new(&r.namespace, &r.env, &r.key);
        match db::configs::find(&mut *tx, &path).await? {
            Some(config) if config.id == stored.config_id => {
                let version = r.snapshot["version"].as_i64().unwrap_or_default();
                let now = governance::snapshot(&mut tx, &config, version).await?;
                stale_now = governance::what_changed(&r.snapshot, &now);
                if stale_now.is_none() {
                    match describe(
                        core,
                        &mut tx,
                        &config,
                        r.action,
                        r.body.clone(),
                        Some(r.message.clone()),
                    )
                    .await
                    {
                        Ok(change) => {
                            if let Some(rule) = &change.rule {
                                preview_now =
                                    Some(super::blast::preview_rule(core, &path, rule).await?);
                            }
                        }
                        Err(e) if e.status < 500 => {
                            stale_now = Some(format!("the action is refused now: {}", e.message));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            _ => stale_now = Some("the config was deleted since the request was made.".into()),
        }
    }
    let override_entry = match r.override_id {
        Some(o) => db::change_requests::find_override(&mut *tx, o).await?,
        None => None,
    };
    tx.rollback().await?;
    let approved_by_me = r.approvals.iter().any(|a| a.approver == actor.name);
    let can_approve = r.status == ChangeStatus::Pending
        || (r.status == ChangeStatus::Scheduled && r.approvals_needed > 0);
    let can_approve = can_approve
        && actor.role >= Role::Releaser
        && actor.role != Role::Admin
        && actor.user_id.is_some()
        && r.author != actor.name
        && !approved_by_me
        && (r.approvals.len() as i64) < r.approvals_needed.max(1);
    let can_withdraw = r.status.is_open() && r.author == actor.name;
    Ok(ChangeRequestView {
        request: shown(stored.request),
        preview_now,
        stale_now,
        can_approve,
        can_withdraw,
        override_entry,
    })
}
