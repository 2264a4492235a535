//! Who is calling: passwords, API tokens, sessions, the sign-in throttle and
//! the same-origin rule for cookie-authenticated mutations.

use super::{db, AppState};
use crate::model::{Role, TokenInfo, User};
use crate::{Error, Result};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, request::Parts, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tower_sessions::Session;

/// Session key holding the signed-in user's id.
pub const SESSION_USER_ID: &str = "user_id";

/// Hashes with argon2id (the crate default) off the async runtime.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

/// Verifies off the async runtime; a malformed hash never matches.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

pub fn random_password() -> String {
    random_string(20)
}

fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new API token secret: `gc_` and 40 random characters (about 234 bits).
pub fn new_token_secret() -> String {
    format!("gc_{}", random_string(40))
}

/// Tokens are long random strings, so one SHA-256 is enough to store them safely.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub const TOKEN_PREFIX_LEN: usize = 8;

pub const MAX_LOGIN_FAILURES: usize = 5;
pub const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Which tokens had their `last_used_at` written recently: the database keeps
/// it to the minute, so a token used again within the minute (a fleet of
/// subscribers reconnecting with one token) costs no write.
#[derive(Default)]
pub struct TokenUse {
    touched: Mutex<HashMap<i64, Instant>>,
}

const TOKEN_USE_EVERY: Duration = Duration::from_secs(60);

impl TokenUse {
    /// Whether `last_used_at` of token `id` should be written now.
    pub fn due(&self, id: i64) -> bool {
        let mut touched = self.touched.lock().expect("token use lock");
        let now = Instant::now();
        if touched
            .get(&id)
            .is_some_and(|at| now.duration_since(*at) < TOKEN_USE_EVERY)
        {
            return false;
        }
        if touched.len() > 10_000 {
            touched.retain(|_, at| now.duration_since(*at) < TOKEN_USE_EVERY);
        }
        touched.insert(id, now);
        true
    }
}

/// Counts sign-in failures per username over a sliding minute.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// `Err(429)` while the username has had too many recent failures.
    pub fn check(&self, username: &str) -> Result<()> {
        let mut failures = self.failures.lock().expect("throttle lock");
        let now = Instant::now();
        if let Some(times) = failures.get_mut(username) {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= LOGIN_FAILURE_WINDOW)
            {
                times.pop_front();
            }
            if times.len() >= MAX_LOGIN_FAILURES {
                let wait = LOGIN_FAILURE_WINDOW.saturating_sub(now.duration_since(times[0]));
                return Err(Error::too_many_requests(format!(
                    "Too many failed sign-ins for {username:?}; try again in {} seconds.",
                    wait.as_secs().max(1)
                )));
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, username: &str) {
        let mut failures = self.failures.lock().expect("throttle lock");
        let now = Instant::now();
        // Forget usernames whose failures all left the window, so the map stays small.
        if failures.len() > 10_000 {
            failures.retain(|_, t| {
                t.back()
                    .is_some_and(|t| now.duration_since(*t) < LOGIN_FAILURE_WINDOW)
            });
        }
        failures
            .entry(username.to_string())
            .or_default()
            .push_back(now);
    }

    pub fn clear(&self, username: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(username);
    }
}

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

    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "This needs the {role} role; you are {}.",
                self.role
            )))
        }
    }

    /// 403 unless the caller has `role` and its limits allow `namespace` and `env`.
    pub fn require_in(&self, role: Role, namespace: Option<&str>, env: Option<&str>) -> Result<()> {
        self.require(role)?;
        if let (Some(limit), Some(env)) = (&self.env, env) {
            if limit != env {
                return Err(Error::forbidden(format!(
                    "You are limited to the {limit} environment."
                )));
            }
        }
        if let (Some(limit), Some(ns)) = (&self.namespace, namespace) {
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
        self.require(role)?;
        match self.limits() {
            None => Ok(()),
            Some(limits) => Err(Error::forbidden(format!(
                "{what} is for admins without limits, and you are limited to {limits}; \
                 ask an admin without limits."
            ))),
        }
    }

    /// Whether something limited to `namespace` and `env` (`None`: not
    /// limited) lies inside the caller's limits, i.e. is limited at least as
    /// narrowly as the caller.
    pub fn covers(&self, namespace: Option<&str>, env: Option<&str>) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|limit| namespace == Some(limit))
            && self.env.as_deref().is_none_or(|limit| env == Some(limit))
    }
}

/// Resolves the caller from a bearer token or the session cookie.
pub async fn actor_from_parts(parts: &mut Parts, state: &AppState) -> Result<Actor> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(Error::unauthorized)?;
        let token = db::tokens::find_active_by_hash(&state.db, &token_hash(secret))
            .await?
            .ok_or_else(Error::unauthorized)?;
        if state.token_use.due(token.id) {
            db::tokens::touch(&state.db, token.id).await?;
        }
        return Ok(Actor::from_token(&token));
    }
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|_| Error::unauthorized())?;
    session_user(&session, state)
        .await?
        .map(|u| Actor::from_user(&u))
        .ok_or_else(Error::unauthorized)
}

/// The enabled user signed in on this session, if any.
pub async fn session_user(session: &Session, state: &AppState) -> Result<Option<User>> {
    let Some(id) = session
        .get::<i64>(SESSION_USER_ID)
        .await
        .map_err(Error::internal)?
    else {
        return Ok(None);
    };
    Ok(db::users::find(&state.db, id)
        .await?
        .filter(|u| !u.disabled))
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        actor_from_parts(parts, state).await
    }
}

/// Refuses state-changing requests that a browser sent from another origin.
/// Requests carrying a bearer token are not cookie-authenticated and pass.
pub async fn same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || request.headers().contains_key(header::AUTHORIZATION) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|r| r.to_str().ok())
                .and_then(origin_of_url)
        });
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    let allowed = match (&origin, host) {
        _ if cross_site => false,
        (Some(origin), Some(host)) => origin_host(origin) == Some(host),
        (Some(_), None) => false,
        // No Origin at all: not a browser (browsers send it on every POST).
        (None, _) => true,
    };
    if allowed {
        next.run(request).await
    } else {
        Error::forbidden("Cross-origin request refused: this server accepts cookie-authenticated changes only from its own pages.")
            .into_response()
    }
}

/// `http://host:port/path` → `http://host:port`.
fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

fn origin_host(origin: &str) -> Option<&str> {
    let (_, host) = origin.split_once("://")?;
    Some(host.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_blocks_after_five_failures_for_one_username() {
        let throttle = LoginThrottle::default();
        for _ in 0..MAX_LOGIN_FAILURES {
            assert!(throttle.check("alice").is_ok());
            throttle.record_failure("alice");
        }
        assert_eq!(throttle.check("alice").unwrap_err().status, 429);
        assert!(
            throttle.check("bob").is_ok(),
            "another username is not affected"
        );
        throttle.clear("alice");
        assert!(throttle.check("alice").is_ok());
    }

    #[test]
    fn token_use_is_written_once_a_minute_per_token() {
        let uses = TokenUse::default();
        assert!(uses.due(1), "the first use is written");
        assert!(!uses.due(1), "a second use within the minute is not");
        assert!(uses.due(2), "another token is");
        uses.touched
            .lock()
            .unwrap()
            .insert(1, Instant::now() - TOKEN_USE_EVERY);
        assert!(uses.due(1), "a minute later it is written again");
    }

    #[test]
    fn token_secrets_are_random_and_hashed() {
        let a = new_token_secret();
        let b = new_token_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("gc_") && a.len() == 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn environment_limit_is_enforced() {
        let actor = Actor {
            env: Some("staging".into()),
            ..Actor::cli()
        };
        assert!(actor.require_in(Role::Admin, None, Some("staging")).is_ok());
        assert_eq!(
            actor
                .require_in(Role::Viewer, None, Some("prod"))
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn limits_cover_only_what_is_limited_as_narrowly() {
        let unlimited = Actor::cli();
        assert!(unlimited.covers(None, None));
        assert!(unlimited
            .require_unlimited(Role::Admin, "Managing users")
            .is_ok());
        let staging = Actor {
            env: Some("staging".into()),
            ..Actor::cli()
        };
        assert!(staging.covers(Some("shop"), Some("staging")));
        assert!(!staging.covers(None, None));
        assert!(!staging.covers(None, Some("prod")));
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
        assert!(shop.covers(Some("shop"), None));
        assert!(!shop.covers(Some("other"), Some("prod")));
        assert!(!shop.covers(None, Some("prod")));
    }

    #[test]
    fn origin_parsing() {
        assert_eq!(
            origin_of_url("http://127.0.0.1:8080/login?x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_host("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(origin_host("null"), None);
    }
}
