//! The authenticated caller, from a bearer token or the session cookie.

use super::tokens::token_hash;
use super::SESSION_USER_ID;
use crate::model::{Role, Scope, TokenInfo, User};
use crate::server::hub::Owner;
use crate::server::{db, AppState, Core};
use crate::{Error, Result};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use std::collections::HashMap;
use std::sync::RwLock;
use tower_sessions::Session;

/// The authenticated caller of a route or server function.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Shown in the audit trail: the username, or `token:<name>`.
    pub name: String,
    pub role: Role,
    pub env: Option<String>,
    pub namespace: Option<String>,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
}

impl Actor {
    pub fn from_user(user: &User) -> Self {
        Self {
            name: user.username.clone(),
            role: user.role,
            env: user.env.clone(),
            namespace: None,
            user_id: Some(user.id),
            token_id: None,
        }
    }

    pub fn from_token(token: &TokenInfo) -> Self {
        Self {
            name: format!("token:{}", token.name),
            role: token.role,
            env: token.env.clone(),
            namespace: token.namespace.clone(),
            user_id: None,
            token_id: Some(token.id),
        }
    }

    /// The caller for actions taken from the command line on the database.
    pub fn cli() -> Self {
        Self {
            name: "cli".into(),
            role: Role::Admin,
            env: None,
            namespace: None,
            user_id: None,
            token_id: None,
        }
    }

    /// 403 unless the caller has at least `role` and its limits allow `scope` (an action in
    /// no particular namespace or environment, [`Scope::ANY`], is allowed to a limited caller,
    /// which then sees only what it [`covers`](Self::covers)).
    pub fn require(&self, role: Role, scope: Scope<'_>) -> Result<()> {
        if self.role < role {
            return Err(Error::forbidden(format!(
                "This needs the {role} role; you are {}.",
                self.role
            )));
        }
        if let (Some(limit), Some(env)) = (&self.env, scope.env) {
            if limit != env {
                return Err(Error::forbidden(format!(
                    "You are limited to the {limit} environment."
                )));
            }
        }
        if let (Some(limit), Some(ns)) = (&self.namespace, scope.namespace) {
            if limit != ns {
                return Err(Error::forbidden(format!(
                    "This token is limited to the {limit} namespace."
                )));
            }
        }
        Ok(())
    }

    /// The caller's limits in words ("the staging environment"), `None` without any.
    pub fn limits(&self) -> Option<String> {
        match (&self.namespace, &self.env) {
            (None, None) => None,
            (Some(ns), None) => Some(format!("the {ns} namespace")),
            (None, Some(env)) => Some(format!("the {env} environment")),
            (Some(ns), Some(env)) => Some(format!("the {ns} namespace and the {env} environment")),
        }
    }

    /// 403 unless the caller has `role` and neither an environment nor a
    /// namespace limit: for what spans every environment and namespace (users,
    /// environments). `what` names the action, e.g. "Managing users".
    pub fn require_unlimited(&self, role: Role, what: &str) -> Result<()> {
        self.require(role, Scope::ANY)?;
        match self.limits() {
            None => Ok(()),
            Some(limits) => Err(Error::forbidden(format!(
                "{what} is for admins without limits, and you are limited to {limits}; \
                 ask an admin without limits."
            ))),
        }
    }

    /// Whether something limited to `scope` (`None`: not limited) lies inside the caller's
    /// limits, i.e. is limited at least as narrowly as the caller.
    pub fn covers(&self, scope: Scope<'_>) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|limit| scope.namespace == Some(limit))
            && self
                .env
                .as_deref()
                .is_none_or(|limit| scope.env == Some(limit))
    }
}

/// Resolves the caller from a bearer token or the session cookie.
pub async fn actor_from_parts(parts: &mut Parts, state: &Core) -> Result<Actor> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let secret = bearer_secret(value.as_bytes()).ok_or_else(Error::unauthorized)?;
        return token_actor(state, secret).await;
    }
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|_| Error::unauthorized())?;
    session_user(&session, state)
        .await?
        .map(|u| Actor::from_user(&u))
        .ok_or_else(Error::unauthorized)
}

/// The secret of an `Authorization: Bearer <secret>` value (visible ASCII,
/// like any header read as text); `None` for anything else. The scheme's name is
/// case-insensitive (RFC 9110, section 11.1: `bearer` and `BEARER` too), followed by one or
/// more spaces.
pub fn bearer_secret(value: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(value).ok()?;
    let visible = text
        .bytes()
        .all(|b| (b' '..0x7f).contains(&b) || b == b'\t');
    let (scheme, secret) = text.split_once(' ')?;
    (visible && scheme.eq_ignore_ascii_case("Bearer"))
        .then(|| secret.trim())
        .filter(|secret| !secret.is_empty())
}

/// The caller a bearer token stands for: from memory once the token was seen
/// (a revocation ends that at once: [`Hub::is_closed`]), from the database the
/// first time. `last_used_at` is written behind, at most once a minute.
/// Bearer requests never touch the session store.
///
/// [`Hub::is_closed`]: crate::server::hub::Hub::is_closed
pub async fn token_actor(state: &Core, secret: &str) -> Result<Actor> {
    let hash = token_hash(secret);
    if let Some(known) = cached_token_actor_by_hash(state, &hash) {
        return known;
    }
    // Read before the token: a notification lost during the read makes this entry stale.
    let epoch = state.hub.missed_notifications();
    let token = db::tokens::find_active_by_hash(&state.db, &hash)
        .await?
        .ok_or_else(Error::unauthorized)?;
    let actor = Actor::from_token(&token);
    state.tokens.insert(hash, actor.clone(), epoch);
    admit(state, actor)
}

/// [`token_actor`] when the token is in memory, without waiting for
/// anything; `None` when it has to be read from the database.
pub fn cached_token_actor(state: &Core, secret: &str) -> Option<Result<Actor>> {
    cached_token_actor_by_hash(state, &token_hash(secret))
}

fn cached_token_actor_by_hash(state: &Core, hash: &str) -> Option<Result<Actor>> {
    state
        .tokens
        .get(hash, state.hub.missed_notifications())
        .map(|actor| admit(state, actor))
}

/// A token's caller, unless the token was revoked meanwhile; notes its use.
fn admit(state: &Core, actor: Actor) -> Result<Actor> {
    let id = actor.token_id.ok_or_else(Error::unauthorized)?;
    if state.hub.is_closed(Owner::Token(id)) {
        state.tokens.forget(id);
        return Err(Error::unauthorized());
    }
    if state.token_use.due(id) {
        let db = state.db.clone();
        let now = state.clock.now();
        tokio::spawn(async move {
            if let Err(e) = db::tokens::touch(&db, now, id).await {
                tracing::warn!(error = %e, token = id, "could not record a token's use");
            }
        });
    }
    Ok(actor)
}

/// Tokens seen, by secret hash: what a bearer request is authenticated with.
/// Bounded; a revoked token is forgotten. Each entry keeps the count of interrupted
/// notifications it was read under ([`Hub::missed_notifications`]): after an interruption
/// (a revocation through another node may have gone unheard) it is read again.
///
/// [`Hub::missed_notifications`]: crate::server::hub::Hub::missed_notifications
#[derive(Default)]
pub struct TokenCache {
    by_hash: RwLock<HashMap<String, (Actor, u64)>>,
}

/// Tokens kept at most; past that the cache starts over (each is read again once).
const MAX_CACHED_TOKENS: usize = 10_000;

impl TokenCache {
    fn get(&self, hash: &str, epoch: u64) -> Option<Actor> {
        self.by_hash
            .read()
            .expect("token cache")
            .get(hash)
            .filter(|(_, read_in)| *read_in == epoch)
            .map(|(actor, _)| actor.clone())
    }

    fn insert(&self, hash: String, actor: Actor, epoch: u64) {
        let mut tokens = self.by_hash.write().expect("token cache");
        if tokens.len() >= MAX_CACHED_TOKENS {
            tokens.clear();
        }
        tokens.insert(hash, (actor, epoch));
    }

    /// Drops token `id` (it was revoked).
    pub fn forget(&self, id: i64) {
        self.by_hash
            .write()
            .expect("token cache")
            .retain(|_, (actor, _)| actor.token_id != Some(id));
    }
}

/// The enabled user signed in on this session, if any: a session ended since (see
/// `db::user_sessions`) signs in nobody.
pub async fn session_user(session: &Session, state: &Core) -> Result<Option<User>> {
    let Some(id) = session
        .get::<i64>(SESSION_USER_ID)
        .await
        .map_err(Error::internal)?
    else {
        return Ok(None);
    };
    let Some(session_id) = session.id() else {
        return Ok(None);
    };
    Ok(
        db::users::find_for_session(&state.db, id, &session_id.to_string())
            .await?
            .filter(|u| !u.disabled),
    )
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        actor_from_parts(parts, state).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_limit_is_enforced() {
        let actor = Actor {
            env: Some("staging".into()),
            ..Actor::cli()
        };
        assert!(actor.require(Role::Admin, Scope::env("staging")).is_ok());
        assert_eq!(
            actor
                .require(Role::Viewer, Scope::env("prod"))
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn limits_cover_only_what_is_limited_as_narrowly() {
        let unlimited = Actor::cli();
        assert!(unlimited.covers(Scope::ANY));
        assert!(unlimited
            .require_unlimited(Role::Admin, "Managing users")
            .is_ok());
        let staging = Actor {
            env: Some("staging".into()),
            ..Actor::cli()
        };
        assert!(staging.covers(Scope::of("shop", "staging")));
        assert!(!staging.covers(Scope::ANY));
        assert!(!staging.covers(Scope::env("prod")));
        let refused = staging
            .require_unlimited(Role::Admin, "Managing users")
            .unwrap_err();
        assert_eq!(refused.status, 403);
        assert!(
            refused.message.contains("the staging environment"),
            "{refused}"
        );
        let shop = Actor {
            namespace: Some("shop".into()),
            ..Actor::cli()
        };
        assert!(shop.covers(Scope::namespace("shop")));
        assert!(!shop.covers(Scope::of("other", "prod")));
        assert!(!shop.covers(Scope::env("prod")));
    }
}
