//! A lane's rollout plan (docs/plans.md): reading and attaching it, and its controls; each
//! calls `server::ops::plans`, which authorizes the caller.

use super::CONFIGS;
use crate::api::extract::{lane_id, optional_json, Json, LanePath};
use crate::model::AttachPlan;
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::Result;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/plan"),
            get(get_plan).put(attach_plan),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/plan/pause"),
            post(pause_plan),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/plan/resume"),
            post(resume_plan),
        )
        .route(
            &format!("{CONFIGS}/{{key}}/lanes/{{id}}/plan/advance"),
            post(advance_plan),
        )
}

async fn get_plan(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    Ok(Json(ops::plans::get(&state, &actor, &path, id).await?))
}

async fn attach_plan(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
    Json(body): Json<AttachPlan>,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    Ok(Json(
        ops::plans::attach(&state, &actor, &path, id, body).await?,
    ))
}

async fn pause_plan(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    let control = optional_json(&body)?;
    Ok(Json(
        ops::plans::pause(&state, &actor, &path, id, control).await?,
    ))
}

async fn resume_plan(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    let control = optional_json(&body)?;
    Ok(Json(
        ops::plans::resume(&state, &actor, &path, id, control).await?,
    ))
}

async fn advance_plan(
    State(state): State<AppState>,
    actor: Actor,
    Path(LanePath { config: path, id }): Path<LanePath>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    let id = lane_id(&id)?;
    let control = optional_json(&body)?;
    Ok(Json(
        ops::plans::advance(&state, &actor, &path, id, control).await?,
    ))
}
