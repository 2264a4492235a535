use crate::model::User;
use crate::Error;
use leptos::prelude::*;

#[server]
pub async fn sign_in(username: String, password: String) -> Result<User, Error> {
    let (state, session) = super::state_and_session().await?;
    let axum::Extension(client) =
        leptos_axum::extract::<axum::Extension<crate::server::auth::Client>>()
            .await
            .map_err(|_| Error::internal("client layer missing"))?;
    crate::server::ops::auth::login(&state, &session, client.addr, &username, &password).await
}

#[server]
pub async fn sign_out() -> Result<(), Error> {
    let (state, session) = super::state_and_session().await?;
    crate::server::ops::auth::logout(&state, &session).await
}

/// The signed-in user, or `None`.
#[server]
pub async fn current_user() -> Result<Option<User>, Error> {
    let (state, session) = super::state_and_session().await?;
    crate::server::auth::session_user(&session, &state).await
}
