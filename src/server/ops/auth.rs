use crate::model::User;
use crate::server::auth::{self as authn, SESSION_USER_ID};
use crate::server::db::{self, audit::NewEntry};
use crate::server::AppState;
use crate::{Error, Result};
use tower_sessions::Session;

/// Signs in: throttled per username, constant work for unknown users, a fresh
/// session id on success, an audit entry either way.
pub async fn login(
    state: &AppState,
    session: &Session,
    username: &str,
    password: &str,
) -> Result<User> {
    let username = username.trim();
    state.login_throttle.check(username)?;
    let credentials = db::users::credentials(&state.db, username).await?;
    let hash = credentials
        .as_ref()
        .map(|c| c.password_hash.as_str())
        .unwrap_or(&state.dummy_password_hash);
    let password_ok = authn::verify_password(password, hash).await;
    let user = match credentials {
        Some(c) if password_ok && !c.user.disabled => c.user,
        other => {
            state.login_throttle.record_failure(username);
            let reason = match other {
                None => "unknown user",
                Some(c) if c.user.disabled => "user disabled",
                Some(_) => "wrong password",
            };
            let mut tx = state.db.begin().await?;
            db::audit::record(
                &mut tx,
                NewEntry::new(username, "auth.login_failed")
                    .details(serde_json::json!({ "reason": reason })),
            )
            .await?;
            tx.commit().await?;
            return Err(Error::new(
                401,
                "invalid_credentials",
                "Wrong username or password.",
            ));
        }
    };
    state.login_throttle.clear(username);
    session.cycle_id().await.map_err(Error::internal)?;
    session
        .insert(SESSION_USER_ID, user.id)
        .await
        .map_err(Error::internal)?;
    let mut tx = state.db.begin().await?;
    db::audit::record(&mut tx, NewEntry::new(&user.username, "auth.login")).await?;
    tx.commit().await?;
    Ok(user)
}

pub async fn logout(state: &AppState, session: &Session) -> Result<()> {
    let user = authn::session_user(session, state).await?;
    session.flush().await.map_err(Error::internal)?;
    if let Some(user) = user {
        let mut tx = state.db.begin().await?;
        db::audit::record(&mut tx, NewEntry::new(&user.username, "auth.logout")).await?;
        tx.commit().await?;
    }
    Ok(())
}
