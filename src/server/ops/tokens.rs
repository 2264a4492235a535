use super::check_name;
use crate::domain::audit::AuditAction;
use crate::model::{CreatedToken, NewToken, Role, Scope, TokenInfo};
use crate::server::auth::{new_token_secret, token_hash, Actor, TOKEN_PREFIX_LEN};
use crate::server::db::{self, audit::NewEntry};
use crate::server::hub::Owner;
use crate::server::Core;
use crate::{Error, Result};

/// Admins list tokens; a limited admin only those inside its limits
/// ([`Actor::covers`]): limited to its environment and namespace too.
#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor) -> Result<Vec<TokenInfo>> {
    actor.require(Role::Admin, Scope::ANY)?;
    let mut tokens = db::tokens::list(&state.db).await?;
    tokens.retain(|t| actor.covers(t.scope()));
    Ok(tokens)
}

/// Creates a token; the secret is in the answer and nowhere else.
#[tracing::instrument(skip_all)]
pub async fn create(state: &Core, actor: &Actor, new: NewToken) -> Result<CreatedToken> {
    actor.require(Role::Admin, Scope::ANY)?;
    check_name("name", &new.name)?;
    if let Some(ns) = &new.namespace {
        check_name("namespace", ns)?;
    }
    // A limited admin mints only tokens inside its own limits.
    let env = within_limit(actor.env.as_deref(), new.env, "env", "environment")?;
    let namespace = within_limit(
        actor.namespace.as_deref(),
        new.namespace,
        "namespace",
        "namespace",
    )?;
    let mut tx = db::begin_write(&state.db).await?;
    if let Some(env) = &env {
        if db::environments::find(&mut tx, env).await?.is_none() {
            return Err(Error::invalid(
                "env",
                format!(
                    "There is no environment named {}.",
                    crate::error::quoted(env)
                ),
            ));
        }
    }
    let secret = new_token_secret();
    let info = db::tokens::insert(
        &mut tx,
        db::tokens::NewTokenRow {
            name: &new.name,
            token_hash: &token_hash(&secret),
            prefix: &secret[..TOKEN_PREFIX_LEN],
            role: new.role,
            namespace: namespace.as_deref(),
            env: env.as_deref(),
            created_by: &actor.name,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::TokenCreate).details(serde_json::json!({
            "id": info.id, "name": info.name, "role": info.role,
            "namespace": info.namespace, "env": info.env, "prefix": info.prefix,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedToken {
        token: secret,
        info,
    })
}

#[tracing::instrument(skip_all)]
pub async fn revoke(state: &Core, actor: &Actor, id: i64) -> Result<TokenInfo> {
    actor.require(Role::Admin, Scope::ANY)?;
    let mut tx = db::begin_write(&state.db).await?;
    let token = db::tokens::find(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("No token with id {id}.")))?;
    if !actor.covers(token.scope()) {
        return Err(Error::forbidden(format!(
            "You are limited to {} and token {id} is not; ask an admin without limits to \
             revoke it.",
            actor.limits().unwrap_or_default()
        )));
    }
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    db::tokens::revoke(&mut tx, state.clock.now(), id).await?;
    db::notify::owner_closed(&mut tx, true, id).await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(&actor.name, AuditAction::TokenRevoke)
            .details(serde_json::json!({ "id": id, "name": token.name, "prefix": token.prefix })),
    )
    .await?;
    let token = db::tokens::find(&mut tx, id)
        .await?
        .ok_or_else(|| Error::internal("token vanished"))?;
    tx.commit().await?;
    state.hub.close_streams_of(Owner::Token(id));
    state.tokens.forget(id);
    Ok(token)
}

/// A new token's `field` limit under the caller's `limit` of that kind: absent
/// becomes the caller's own, a different one is refused.
fn within_limit(
    limit: Option<&str>,
    asked: Option<String>,
    field: &str,
    noun: &str,
) -> Result<Option<String>> {
    match (limit, asked) {
        (Some(limit), None) => Ok(Some(limit.to_string())),
        (Some(limit), Some(asked)) if asked != limit => Err(Error::forbidden(format!(
            "You are limited to the {limit} {noun}, and so are the tokens you create: \
             leave {field:?} out or set it to {limit:?}."
        ))
        .on_field(field)),
        (_, asked) => Ok(asked),
    }
}
