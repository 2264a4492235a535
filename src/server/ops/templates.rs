//! Plan templates (docs/plans.md#templates): named plans kept per environment, and the
//! environment's default one. Viewers of an environment read them; its admins change them.

use super::check_name;
use crate::domain::audit::AuditAction;
use crate::domain::plan::{check_new_plan, parse_plan, Plan, PlanError};
use crate::model::{DefaultTemplate, NewPlanTemplate, PlanTemplate, PlanTemplates, Role};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry, templates::TemplateRow};
use crate::server::Core;
use crate::{Error, Result};
use serde_json::{json, Value};

/// At most this many templates per environment.
pub const MAX_TEMPLATES: usize = 100;

/// 403 unless `actor` may change `env`'s templates: an admin allowed in it, not limited to a
/// namespace (templates serve every namespace of the environment).
fn require_change(actor: &Actor, env: &str) -> Result<()> {
    actor.require(Role::Admin, crate::model::Scope::env(env))?;
    if let Some(ns) = &actor.namespace {
        return Err(Error::forbidden(format!(
            "Rollout templates serve every namespace of {env}, and you are limited to the {ns} \
             namespace."
        )));
    }
    Ok(())
}

/// The environment's id and default template, or 404.
async fn environment(db: impl db::Executor<'_>, env: &str) -> Result<(i64, Option<String>)> {
    db::templates::environment(db, env).await?.ok_or_else(|| {
        Error::not_found(format!(
            "There is no environment {}.",
            crate::error::quoted(env)
        ))
    })
}

fn stored_plan(row: &TemplateRow) -> Result<Plan> {
    let value: Value = serde_json::from_str(&row.plan).map_err(Error::internal)?;
    parse_plan(&value, "plan")
        .map_err(|e| Error::internal(format!("template {:?} is corrupt: {e}", row.name)))
}

fn template(env: &str, default: Option<&str>, row: TemplateRow) -> Result<PlanTemplate> {
    let plan = stored_plan(&row)?;
    Ok(PlanTemplate {
        env: env.to_string(),
        default: default == Some(row.name.as_str()),
        name: row.name,
        plan: plan.redacted(),
        builtin: row.builtin,
        created_by: row.created_by,
        created_at: row.created_at,
    })
}

/// The plan of `env`'s template `name`; 400 (field `template`) when there is none.
pub async fn plan_of(db: &db::Pool, env: &str, name: &str) -> Result<Plan> {
    let (env_id, _) = environment(db, env).await?;
    match db::templates::find(db, env_id, name).await? {
        Some(row) => stored_plan(&row),
        None => {
            let names: Vec<String> = db::templates::list(db, env_id)
                .await?
                .into_iter()
                .map(|t| t.name)
                .collect();
            Err(Error::invalid(
                "template",
                format!(
                    "{env} has no rollout template {}; its templates are: {}.",
                    crate::error::quoted(name),
                    names.join(", ")
                ),
            ))
        }
    }
}

/// `GET /api/v1/rollout-templates?env=` (viewer of the environment).
#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor, env: &str) -> Result<PlanTemplates> {
    actor.require(Role::Viewer, crate::model::Scope::env(env))?;
    let (env_id, default) = environment(&state.db, env).await?;
    let templates = db::templates::list(&state.db, env_id)
        .await?
        .into_iter()
        .map(|row| template(env, default.as_deref(), row))
        .collect::<Result<Vec<_>>>()?;
    Ok(PlanTemplates {
        env: env.to_string(),
        default_template: default,
        templates,
    })
}

/// `POST /api/v1/rollout-templates?env=` (admin): a named plan of the environment.
#[tracing::instrument(skip_all)]
pub async fn create(
    state: &Core,
    actor: &Actor,
    env: &str,
    new: NewPlanTemplate,
) -> Result<PlanTemplate> {
    require_change(actor, env)?;
    check_name("name", &new.name)?;
    let refused = |e: PlanError| Error::invalid(&e.field, format!("{}: {}", e.field, e.message));
    let plan = parse_plan(&new.plan, "plan").map_err(refused)?;
    check_new_plan(&plan, "plan", state.config.min_probe_interval_secs).map_err(refused)?;
    let mut tx = db::begin_write(&state.db).await?;
    let (env_id, default) = environment(&mut *tx, env).await?;
    if db::templates::list(&mut *tx, env_id).await?.len() >= MAX_TEMPLATES {
        return Err(Error::conflict(format!(
            "{env} has {MAX_TEMPLATES} rollout templates, the most it may have; delete one first."
        )));
    }
    let row = db::templates::insert(
        &mut tx,
        env_id,
        &new.name,
        &serde_json::to_string(&plan).map_err(Error::internal)?,
        &actor.name,
    )
    .await
    .map_err(|e| {
        super::conflict_on_unique(
            e,
            format!("{env} already has a rollout template named {:?}.", new.name),
        )
    })?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::TemplateCreate)
            .env(env)
            .details(json!({ "name": new.name, "plan": plan.redacted() })),
    )
    .await?;
    tx.commit().await?;
    template(env, default.as_deref(), row)
}

/// `DELETE /api/v1/rollout-templates/{name}?env=` (admin). Built-in templates and the
/// environment's default stay (409).
#[tracing::instrument(skip_all)]
pub async fn delete(state: &Core, actor: &Actor, env: &str, name: &str) -> Result<()> {
    require_change(actor, env)?;
    let mut tx = db::begin_write(&state.db).await?;
    let (env_id, default) = environment(&mut *tx, env).await?;
    let row = db::templates::find(&mut *tx, env_id, name)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "{env} has no rollout template {}.",
                crate::error::quoted(name)
            ))
        })?;
    if row.builtin {
        return Err(Error::conflict(format!(
            "{name:?} is a built-in template; every environment keeps it."
        )));
    }
    if default.as_deref() == Some(name) {
        return Err(Error::conflict(format!(
            "{name:?} is the default template of {env}; choose another default (or none) first."
        )));
    }
    db::templates::delete(&mut tx, env_id, name).await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::TemplateDelete)
            .env(env)
            .details(json!({ "name": name, "plan": stored_plan(&row)?.redacted() })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `PUT /api/v1/rollout-templates/default?env=` (admin): the template the dashboard
/// preselects in the environment, or none.
#[tracing::instrument(skip_all)]
pub async fn set_default(
    state: &Core,
    actor: &Actor,
    env: &str,
    body: DefaultTemplate,
) -> Result<PlanTemplates> {
    require_change(actor, env)?;
    let mut tx = db::begin_write(&state.db).await?;
    let (env_id, before) = environment(&mut *tx, env).await?;
    if let Some(name) = &body.template {
        if db::templates::find(&mut *tx, env_id, name).await?.is_none() {
            return Err(Error::invalid(
                "template",
                format!(
                    "{env} has no rollout template {}.",
                    crate::error::quoted(name)
                ),
            ));
        }
    }
    db::templates::set_default(&mut tx, env_id, body.template.as_deref()).await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::TemplateDefault)
            .env(env)
            .details(json!({ "before": before, "after": body.template })),
    )
    .await?;
    tx.commit().await?;
    list(state, actor, env).await
}
