//! The Triggers page's server functions (`app::pages::triggers`); each calls
//! `server::ops::triggers`, which authorizes the caller.

use crate::model::{NewTrigger, Trigger, TriggerPage, TriggerUpdate, TriggerWithToken};
use crate::Error;
use leptos::prelude::*;

/// The origin the page was requested at (a trusted proxy's forwarded host and scheme, else the
/// `Host`), for a trigger's URL when the server has no `--public-url`.
#[cfg(feature = "ssr")]
async fn origin(state: &crate::server::Core) -> Option<String> {
    let parts = leptos_axum::extract::<axum::http::request::Parts>()
        .await
        .ok()?;
    let forwarded = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|peer| state.config.trusted_proxies.contains(&peer.0.ip()));
    crate::api::headers::origin(&parts.headers, forwarded)
}

#[server]
pub async fn list_triggers(
    namespace: String,
    env: String,
    after: Option<i64>,
) -> Result<TriggerPage, Error> {
    let (state, actor) = super::caller().await?;
    let query = crate::model::TriggerQuery {
        namespace,
        env,
        after,
        limit: None,
    };
    crate::server::ops::triggers::list(&state, &actor, query).await
}

#[server]
pub async fn create_trigger(trigger: NewTrigger) -> Result<TriggerWithToken, Error> {
    let (state, actor) = super::caller().await?;
    let origin = origin(&state).await;
    crate::server::ops::triggers::create(&state, &actor, trigger, origin.as_deref()).await
}

#[server]
pub async fn update_trigger(id: i64, change: TriggerUpdate) -> Result<Trigger, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::triggers::update(&state, &actor, id, change).await
}

#[server]
pub async fn rotate_trigger(id: i64) -> Result<TriggerWithToken, Error> {
    let (state, actor) = super::caller().await?;
    let origin = origin(&state).await;
    crate::server::ops::triggers::rotate(&state, &actor, id, origin.as_deref()).await
}

#[server]
pub async fn delete_trigger(id: i64) -> Result<(), Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::triggers::delete(&state, &actor, id).await
}
