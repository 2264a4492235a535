//! `/users`: the accounts that sign in to the dashboard (admins).

use crate::api::extract::Json;
use crate::model::{NewUser, UserUpdate};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", patch(update_user))
}

async fn list_users(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::users::list(&state, &actor).await?))
}

async fn create_user(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewUser>,
) -> Result<impl IntoResponse> {
    let user = ops::users::create(&state, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn update_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<UserUpdate>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::users::update(&state, &actor, id, body).await?))
}
