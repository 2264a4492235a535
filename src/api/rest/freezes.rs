//! Freeze windows (docs/api.md, "Freeze windows"): an environment's windows; each calls
//! `server::ops::freezes`, which authorizes the caller.

use crate::api::extract::Json;
use crate::server::auth::Actor;
use crate::server::ops::freezes::NewFreeze;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/environments/{env}/freezes",
            get(list_freezes).post(create_freeze),
        )
        .route("/environments/{env}/freezes/{id}", delete(delete_freeze))
}

async fn list_freezes(
    State(state): State<AppState>,
    actor: Actor,
    Path(env): Path<String>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::freezes::list(&state, &actor, &env).await?))
}

async fn create_freeze(
    State(state): State<AppState>,
    actor: Actor,
    Path(env): Path<String>,
    Json(body): Json<NewFreeze>,
) -> Result<impl IntoResponse> {
    let freeze = ops::freezes::create(&state, &actor, &env, body).await?;
    Ok((StatusCode::CREATED, Json(freeze)))
}

async fn delete_freeze(
    State(state): State<AppState>,
    actor: Actor,
    Path((env, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    // An id that is no number names no window.
    let id = id
        .parse()
        .map_err(|_| Error::not_found(format!("{env} has no freeze window {id}.")))?;
    ops::freezes::delete(&state, &actor, &env, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
