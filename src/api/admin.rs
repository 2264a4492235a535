use crate::model::{CreatedToken, Environment, NewToken, NewUser, TokenInfo, User, UserUpdate};
use crate::Error;
use leptos::prelude::*;

#[server]
pub async fn list_users() -> Result<Vec<User>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::users::list(&state, &actor).await
}

#[server]
pub async fn create_user(user: NewUser) -> Result<User, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::users::create(&state, &actor, user).await
}

#[server]
pub async fn update_user(id: i64, change: UserUpdate) -> Result<User, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::users::update(&state, &actor, id, change).await
}

#[server]
pub async fn list_tokens() -> Result<Vec<TokenInfo>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::tokens::list(&state, &actor).await
}

#[server]
pub async fn create_token(token: NewToken) -> Result<CreatedToken, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::tokens::create(&state, &actor, token).await
}

#[server]
pub async fn revoke_token(id: i64) -> Result<TokenInfo, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::tokens::revoke(&state, &actor, id).await
}

#[server]
pub async fn list_environments() -> Result<Vec<Environment>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::environments::list(&state, &actor).await
}

#[server]
pub async fn create_environment(name: String) -> Result<Environment, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::environments::create(&state, &actor, &name).await
}

#[server]
pub async fn list_channels() -> Result<Vec<crate::model::Channel>, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::channels::list(&state, &actor).await
}

#[server]
pub async fn create_channel(
    channel: crate::model::NewChannel,
) -> Result<crate::model::Channel, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::channels::create(&state, &actor, channel).await
}

#[server]
pub async fn delete_channel(id: i64) -> Result<crate::model::Channel, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::channels::delete(&state, &actor, id).await
}

#[server]
pub async fn test_channel(id: i64) -> Result<crate::model::Delivery, Error> {
    let (state, actor) = super::caller().await?;
    crate::server::ops::channels::test(&state, &actor, id).await
}

/// One channel and a page of its deliveries (newest first, older than `before`).
#[server]
pub async fn load_deliveries(
    id: i64,
    before: Option<i64>,
) -> Result<(crate::model::Channel, crate::model::DeliveryPage), Error> {
    let (state, actor) = super::caller().await?;
    let channel = crate::server::ops::channels::get(&state, &actor, id).await?;
    let page = crate::server::ops::channels::deliveries(&state, &actor, id, before, None).await?;
    Ok((channel, page))
}
