use super::{check_name, conflict_on_unique};
use crate::domain::audit::AuditAction;
use crate::model::{NewUser, Role, User, UserUpdate};
use crate::server::auth::{hash_password, Actor};
use crate::server::db::{self, audit::NewEntry};
use crate::server::hub::Owner;
use crate::server::Core;
use crate::{Error, Result};

pub const MIN_PASSWORD_LEN: usize = 8;

/// Users span every environment, so only admins without limits manage them: a
/// limited admin could otherwise create or widen an account beyond its limits.
const MANAGING_USERS: &str = "Managing users";

#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor) -> Result<Vec<User>> {
    actor.require_unlimited(Role::Admin, MANAGING_USERS)?;
    Ok(db::users::list(&state.db).await?)
}

#[tracing::instrument(skip_all)]
pub async fn create(state: &Core, actor: &Actor, new: NewUser) -> Result<User> {
    actor.require_unlimited(Role::Admin, MANAGING_USERS)?;
    check_name("username", &new.username)?;
    if new.password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            "password",
            format!("The password needs at least {MIN_PASSWORD_LEN} characters."),
        ));
    }
    let mut tx = db::begin_write(&state.db).await?;
    if let Some(env) = &new.env {
        require_environment(&mut tx, env).await?;
    }
    let hash = hash_password(&new.password).await?;
    let id = db::users::insert(&mut tx, &new.username, &hash, new.role, new.env.as_deref())
        .await
        .map_err(|e| {
            conflict_on_unique(
                e,
                format!("A user named {:?} already exists.", new.username),
            )
        })?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::UserCreate).details(serde_json::json!({
            "id": id, "username": new.username, "role": new.role, "env": new.env,
        })),
    )
    .await?;
    let user = db::users::find(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::internal("user vanished"))?;
    tx.commit().await?;
    Ok(user)
}

#[tracing::instrument(skip_all)]
pub async fn update(state: &Core, actor: &Actor, id: i64, change: UserUpdate) -> Result<User> {
    actor.require_unlimited(Role::Admin, MANAGING_USERS)?;
    let mut tx = db::begin_write(&state.db).await?;
    let before = db::users::find(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("No user with id {id}.")))?;
    let mut after = before.clone();
    if let Some(role) = change.role {
        after.role = role;
    }
    if let Some(env) = change.env {
        if let Some(env) = &env {
            require_environment(&mut tx, env).await?;
        }
        after.env = env;
    }
    if let Some(disabled) = change.disabled {
        after.disabled = disabled;
    }
    if actor.user_id == Some(id)
        && (after.role < Role::Admin || after.disabled || after.env.is_some())
    {
        return Err(Error::bad_request(
            "You cannot lower, limit or disable your own account; ask another admin.",
        ));
    }
    db::users::update(&mut tx, &after).await?;
    // A session signed in under the old role or limits ends with them: re-enabling a user or
    // restoring a role never revives an old cookie.
    let sessions_ended = if (after.role, &after.env, after.disabled)
        != (before.role, &before.env, before.disabled)
    {
        db::user_sessions::end_all(&mut tx, id).await?
    } else {
        0
    };
    db::notify::owner_closed(&mut tx, false, id).await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::UserUpdate).details(serde_json::json!({
            "id": id, "username": after.username,
            "before": { "role": before.role, "env": before.env, "disabled": before.disabled },
            "after": { "role": after.role, "env": after.env, "disabled": after.disabled },
            "sessions_ended": sessions_ended,
        })),
    )
    .await?;
    tx.commit().await?;
    state.hub.close_streams_of(Owner::User(id));
    Ok(after)
}

async fn require_environment(tx: &mut db::Tx<'_>, env: &str) -> Result<()> {
    db::environments::find(tx, env)
        .await?
        .map(|_| ())
        .ok_or_else(|| {
            Error::invalid(
                "env",
                format!(
                    "There is no environment named {}.",
                    crate::error::quoted(env)
                ),
            )
        })
}
