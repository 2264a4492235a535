use crate::domain::audit::AuditAction;
use crate::model::User;
use crate::server::auth::{self as authn, SESSION_USER_ID};
use crate::server::db::{self, audit::NewEntry};
use crate::server::ops::check_name;
use crate::server::Core;
use crate::{Error, Result};
use std::net::IpAddr;
use tower_sessions::Session;

/// Signs in: throttled per (username, source address) and per source
/// address, constant work for unknown users, a fresh session id on success,
/// an audit entry either way.
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &Core,
    session: &Session,
    source: IpAddr,
    username: &str,
    password: &str,
) -> Result<User> {
    let username = username.trim();
    // No user can have a name outside the rule: such a name is answered like
    // a wrong password without a verification, counted only against the
    // address, and audited shortened.
    let valid = check_name("username", username).is_ok();
    let attempt = state
        .login_throttle
        .reserve(valid.then_some(username), source)?;
    // Several nodes (PostgreSQL): the same limits over every node's attempts.
    let shared = match shared_reserve(state, valid.then_some(username), source).await {
        Ok(shared) => shared,
        Err(e) => {
            state.login_throttle.release(attempt);
            return Err(e);
        }
    };
    if !valid {
        audit_failure(state, &shown_name(username), "invalid username").await?;
        return Err(invalid_credentials());
    }
    let credentials = db::users::credentials(&state.db, username).await?;
    let hash = credentials
        .as_ref()
        .map(|c| c.password_hash.as_str())
        .unwrap_or(&state.dummy_password_hash);
    let password_ok = match state.password_checks.verify(password, hash).await {
        Ok(ok) => ok,
        Err(busy) => {
            state.login_throttle.release(attempt);
            if let Some(id) = shared {
                db::logins::forget(&state.db, id, None).await?;
            }
            return Err(busy);
        }
    };
    let user = match credentials {
        Some(c) if password_ok && !c.user.disabled => c.user,
        other => {
            let reason = match other {
                None => "unknown user",
                Some(c) if c.user.disabled => "user disabled",
                Some(_) => "wrong password",
            };
            audit_failure(state, username, reason).await?;
            return Err(invalid_credentials());
        }
    };
    state.login_throttle.succeeded(attempt);
    if let Some(id) = shared {
        let source = crate::server::auth::source_text(source);
        db::logins::forget(&state.db, id, Some((username, &source))).await?;
    }
    session.cycle_id().await.map_err(Error::internal)?;
    session
        .insert(SESSION_USER_ID, user.id)
        .await
        .map_err(Error::internal)?;
    // Saved now, not when the answer leaves: the store gives the session its id, which
    // `user_sessions` records in the same transaction as the audit entry.
    session.save().await.map_err(Error::internal)?;
    let session_id = session
        .id()
        .ok_or_else(|| Error::internal("a saved session has no id"))?
        .to_string();
    let mut tx = db::begin_write(&state.db).await?;
    let ended = db::user_sessions::register(&mut tx, &session_id, user.id).await?;
    let mut entry = NewEntry::new(&user.username, AuditAction::AuthLogin);
    if ended > 0 {
        entry = entry.details(serde_json::json!({ "sessions_ended": ended }));
    }
    db::audit::record(&mut tx, state.clock.now(), entry).await?;
    tx.commit().await?;
    Ok(user)
}

fn invalid_credentials() -> Error {
    Error::new(
        crate::ErrorCode::InvalidCredentials,
        "Wrong username or password.",
    )
}

async fn audit_failure(state: &Core, actor: &str, reason: &str) -> Result<()> {
    let mut tx = db::begin_write(&state.db).await?;
    db::audit::record(
        &mut tx,
        state.clock.now(),
        NewEntry::new(actor, AuditAction::AuthLoginFailed)
            .details(serde_json::json!({ "reason": reason })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A name outside the name rule as the audit trail shows it: its first 63
/// characters, each outside the rule's alphabet as `?`, `…` when cut.
fn shown_name(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(MAX_SHOWN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '?'
            }
        })
        .collect();
    if name.chars().nth(MAX_SHOWN).is_some() {
        shown.push('…');
    }
    if shown.is_empty() {
        shown.push('?');
    }
    shown
}

const MAX_SHOWN: usize = 63;

#[tracing::instrument(skip_all)]
pub async fn logout(state: &Core, session: &Session) -> Result<()> {
    let user = authn::session_user(session, state).await?;
    let session_id = session.id();
    session.flush().await.map_err(Error::internal)?;
    if let Some(user) = user {
        let mut tx = db::begin_write(&state.db).await?;
        if let Some(id) = session_id {
            db::user_sessions::end(&mut tx, &id.to_string()).await?;
        }
        db::audit::record(
            &mut tx,
            state.clock.now(),
            NewEntry::new(&user.username, AuditAction::AuthLogout),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The user behind `actor`: `None` for a token.
#[tracing::instrument(skip_all)]
pub async fn user_of(state: &Core, actor: &authn::Actor) -> Result<Option<User>> {
    match actor.user_id {
        Some(id) => Ok(db::users::find(&state.db, id).await?),
        None => Ok(None),
    }
}

/// With several nodes, counts the attempt against every node's (the in-memory throttle counts
/// this node's): the row's id, or the same 429 a full count gives. Nothing with one node.
async fn shared_reserve(
    state: &Core,
    username: Option<&str>,
    source: std::net::IpAddr,
) -> Result<Option<i64>> {
    if !state.nodes.shared() {
        return Ok(None);
    }
    let (window, per_source, per_pair) = state.login_throttle.limits();
    let source = crate::server::auth::source_text(source);
    let reserved = db::logins::reserve(
        &state.db,
        state.clock.now(),
        &source,
        username,
        window.as_millis() as i64,
        (per_source as i64, per_pair as i64),
    )
    .await?;
    use crate::server::auth::LoginThrottle;
    use std::time::Duration;
    match reserved {
        Ok(id) => Ok(Some(id)),
        Err(db::logins::Full::Source(ms)) => Err(LoginThrottle::refusal(
            None,
            Duration::from_millis(ms as u64),
        )),
        Err(db::logins::Full::Pair(ms)) => Err(LoginThrottle::refusal(
            username,
            Duration::from_millis(ms as u64),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::shown_name;

    #[test]
    fn invalid_names_are_audited_short_and_plain() {
        assert_eq!(shown_name(""), "?");
        assert_eq!(shown_name("bob smith"), "bob?smith");
        assert_eq!(shown_name("<script>"), "?script?");
        let long = shown_name(&"a".repeat(1 << 20));
        assert_eq!(long, format!("{}…", "a".repeat(63)));
    }
}
