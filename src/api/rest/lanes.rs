//! A config's gray lanes: listing, starting, changing, previewing, promoting and aborting them.

use super::CONFIGS;
use crate::api::extract::{governed, optional_governed, optional_message, outcome, Json, LanePath};
use crate::model::{ConfigPath, LaneUpdate, NewLane};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{CONFIGS}/{{key}}/lanes"),
            get(list_lanes).post(create_lane),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/preview"),
            post(preview_lane),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}"),
            patch(update_lane),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/preview"),
            post(preview_lane_change),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/promote"),
            post(promote_lane),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/abort"),
            post(abort_lane),
        )
}

/// The body of `POST …/promote`, besides `apply_at` and `override`.
#[derive(Default, serde::Deserialize)]
struct MessageBody {
    #[serde(default)]
    message: Option<String>,
}

async fn list_lanes(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
) -> Result<impl IntoResponse> {
    Ok(Json(ops::lanes::list(&state, &actor, &path).await?))
}

async fn create_lane(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    Json(body): Json<serde_json::Value>,
) -> Result<impl IntoResponse> {
    let (body, governed) = governed::<NewLane>(body)?;
    let done = ops::lanes::create(&state, &actor, &path, body, &governed).await?;
    Ok(outcome(done, StatusCode::CREATED))
}

async fn update_lane(
    State(state): State<AppState>,
    actor: Actor,
    LanePath { config: path, id }: LanePath,
    Json(body): Json<serde_json::Value>,
) -> Result<impl IntoResponse> {
    let (body, governed) = governed::<LaneUpdate>(body)?;
    let done = ops::lanes::update(&state, &actor, &path, id, body, &governed).await?;
    Ok(outcome(done, StatusCode::OK))
}

async fn promote_lane(
    State(state): State<AppState>,
    actor: Actor,
    LanePath { config: path, id }: LanePath,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    let (body, governed) = optional_governed::<MessageBody>(&body)?;
    let done = ops::lanes::promote(&state, &actor, &path, id, body.message, &governed).await?;
    Ok(outcome(done, StatusCode::OK))
}

async fn abort_lane(
    State(state): State<AppState>,
    actor: Actor,
    LanePath { config: path, id }: LanePath,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    let message = optional_message(&body)?;
    Ok(Json(
        ops::lanes::abort(&state, &actor, &path, id, message).await?,
    ))
}

async fn preview_lane(
    State(state): State<AppState>,
    actor: Actor,
    Path(path): Path<ConfigPath>,
    Json(body): Json<NewLane>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::lanes::preview(&state, &actor, &path, body).await?,
    ))
}

async fn preview_lane_change(
    State(state): State<AppState>,
    actor: Actor,
    LanePath { config: path, id }: LanePath,
    Json(body): Json<LaneUpdate>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::lanes::preview_change(&state, &actor, &path, id, body).await?,
    ))
}
