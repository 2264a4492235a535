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
