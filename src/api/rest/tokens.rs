//! `/tokens`: API tokens (admins).

use crate::api::extract::Json;
use crate::model::NewToken;
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
}

async fn list_tokens(State(state): State<AppState>, actor: Actor) -> Result<impl IntoResponse> {
    Ok(Json(ops::tokens::list(&state, &actor).await?))
}

async fn create_token(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewToken>,
) -> Result<impl IntoResponse> {
    let created = ops::tokens::create(&state, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn revoke_token(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::tokens::revoke(&state, &actor, id).await?))
}
