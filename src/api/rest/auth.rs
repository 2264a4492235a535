//! `/auth`: signing in and out with a session cookie, and who the caller is.

use crate::api::extract::Json;
use crate::server::auth::{Actor, Client};
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    session: Session,
    Extension(client): Extension<Client>,
    Json(body): Json<LoginBody>,
) -> Result<Json<Value>> {
    let user = ops::auth::login(
        &state,
        &session,
        client.addr,
        &body.username,
        &body.password,
    )
    .await?;
    Ok(Json(json!({ "user": user })))
}

async fn logout(State(state): State<AppState>, session: Session) -> Result<StatusCode> {
    ops::auth::logout(&state, &session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: a signed-in user, or the token's identity.
async fn me(State(state): State<AppState>, actor: Actor) -> Result<Json<Value>> {
    let user = ops::auth::user_of(&state, &actor).await?;
    Ok(Json(json!({
        "user": user,
        "actor": { "name": actor.name, "role": actor.role, "env": actor.env, "namespace": actor.namespace },
    })))
}
