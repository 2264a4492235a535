//! The server functions the dashboard calls, and (server only) the REST API.
//! Both are thin: they find the caller and call `server::ops`.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod configs;
pub mod instances;

#[cfg(feature = "ssr")]
pub mod rest;
#[cfg(feature = "ssr")]
pub mod watch;

/// The application state and the signed-in caller of a server function.
#[cfg(feature = "ssr")]
pub(crate) async fn caller() -> crate::Result<(crate::server::AppState, crate::server::auth::Actor)>
{
    let (state, session) = state_and_session().await?;
    let user = crate::server::auth::session_user(&session, &state)
        .await?
        .ok_or_else(crate::Error::unauthorized)?;
    Ok((state, crate::server::auth::Actor::from_user(&user)))
}

#[cfg(feature = "ssr")]
pub(crate) async fn state_and_session(
) -> crate::Result<(crate::server::AppState, tower_sessions::Session)> {
    let state = leptos::prelude::use_context::<crate::server::AppState>().ok_or_else(|| {
        crate::Error::internal("application state missing from the server function context")
    })?;
    let session = leptos_axum::extract::<tower_sessions::Session>()
        .await
        .map_err(|_| crate::Error::internal("session layer missing"))?;
    Ok((state, session))
}
