use super::check_name;
use crate::model::{CreatedToken, NewToken, Role, TokenInfo};
use crate::server::auth::{new_token_secret, token_hash, Actor, TOKEN_PREFIX_LEN};
use crate::server::db::{self, audit::NewEntry};
use crate::server::hub::Owner;
use crate::server::AppState;
use crate::{Error, Result};
use sqlx::SqlitePool;

pub async fn list(db_pool: &SqlitePool, actor: &Actor) -> Result<Vec<TokenInfo>> {
    actor.require(Role::Admin)?;
    Ok(db::tokens::list(db_pool).await?)
}

/// Creates a token; the secret is in the answer and nowhere else.
pub async fn create(db_pool: &SqlitePool, actor: &Actor, new: NewToken) -> Result<CreatedToken> {
    actor.require(Role::Admin)?;
    check_name("name", &new.name)?;
    if let Some(ns) = &new.namespace {
        check_name("namespace", ns)?;
    }
    // An environment-limited admin cannot mint a token wider than itself.
    let env = match (&actor.env, new.env) {
        (Some(limit), None) => Some(limit.clone()),
        (Some(limit), Some(env)) if &env != limit => {
            return Err(Error::forbidden(format!(
                "You are limited to the {limit} environment."
            )))
        }
        (_, env) => env,
    };
    let mut tx = db_pool.begin().await?;
    if let Some(env) = &env {
        if db::environments::find(&mut tx, env).await?.is_none() {
            return Err(Error::invalid(
                "env",
                format!("There is no environment named {env:?}."),
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
            namespace: new.namespace.as_deref(),
            env: env.as_deref(),
            created_by: &actor.name,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        NewEntry::new(&actor.name, "token.create").details(serde_json::json!({
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

pub async fn revoke(state: &AppState, actor: &Actor, id: i64) -> Result<TokenInfo> {
    actor.require(Role::Admin)?;
    let mut tx = state.db.begin().await?;
    let token = db::tokens::find(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("No token with id {id}.")))?;
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    db::tokens::revoke(&mut tx, id).await?;
    db::audit::record(
        &mut tx,
        NewEntry::new(&actor.name, "token.revoke")
            .details(serde_json::json!({ "id": id, "name": token.name, "prefix": token.prefix })),
    )
    .await?;
    let token = db::tokens::find(&mut tx, id)
        .await?
        .ok_or_else(|| Error::internal("token vanished"))?;
    tx.commit().await?;
    state.hub.close_streams_of(Owner::Token(id));
    Ok(token)
}
