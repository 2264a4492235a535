//! The server functions the dashboard calls, and (server only) the REST API.
//! Both are thin: they find the caller and call `server::ops`.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod configs;
pub mod governance;
pub mod instances;
pub mod plan_fns;
pub mod probes;
pub mod triggers;

#[cfg(feature = "ssr")]
pub mod body;
#[cfg(feature = "ssr")]
pub mod extract;
#[cfg(feature = "ssr")]
pub mod fast;
#[cfg(feature = "ssr")]
pub mod headers;
#[cfg(feature = "ssr")]
pub mod hooks;
#[cfg(feature = "ssr")]
pub mod nul;
#[cfg(feature = "ssr")]
pub mod ofrep;
#[cfg(feature = "ssr")]
pub mod rest;
#[cfg(feature = "ssr")]
pub mod router;
#[cfg(feature = "ssr")]
pub mod watch;

#[cfg(feature = "ssr")]
pub use router::Application;

/// The core and the signed-in caller of a server function.
#[cfg(feature = "ssr")]
pub(crate) async fn caller() -> crate::Result<(
    std::sync::Arc<crate::server::Core>,
    crate::server::auth::Actor,
)> {
    let (state, session) = state_and_session().await?;
    let user = crate::server::auth::session_user(&session, &state)
        .await?
        .ok_or_else(crate::Error::unauthorized)?;
    Ok((state, crate::server::auth::Actor::from_user(&user)))
}

#[cfg(feature = "ssr")]
pub(crate) async fn state_and_session(
) -> crate::Result<(std::sync::Arc<crate::server::Core>, tower_sessions::Session)> {
    let state =
        leptos::prelude::use_context::<std::sync::Arc<crate::server::Core>>().ok_or_else(|| {
            crate::Error::internal("the core is missing from the server function context")
        })?;
    let session = leptos_axum::extract::<tower_sessions::Session>()
        .await
        .map_err(|_| crate::Error::internal("session layer missing"))?;
    Ok((state, session))
}
