//! `/environments`: the environments every namespace has.

use crate::api::extract::Json;
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/environments",
        get(list_environments).post(create_environment),
    )
}

async fn list_environments(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::environments::list(&state, &actor).await?))
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

async fn create_environment(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NameBody>,
) -> Result<impl IntoResponse> {
    let env = ops::environments::create(&state, &actor, &body.name).await?;
    Ok((StatusCode::CREATED, Json(env)))
}
