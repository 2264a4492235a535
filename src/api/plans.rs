//! REST routes of rollout plans and templates (docs/plans.md); each calls
//! `server::ops::plans` or `server::ops::templates`, which authorize the caller.

use super::extract::{lane_id, Json, LanePath, QueryParams};
use super::rest::CONFIGS;
use crate::model::{AttachPlan, DefaultTemplate, NewRolloutTemplate, PlanControl};
use crate::server::auth::Actor;
use crate::server::{ops, AppState};
use crate::{Error, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::Deserialize;

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
        .route(
            "/rollout-templates",
            get(list_templates).post(create_template),
        )
        .route("/rollout-templates/{name}", delete(delete_template))
        .route(
            "/environments/{env}/default-template",
            put(set_default_template),
        )
}

/// An optional `{force?, message?}` body: no body counts as `{}`.
fn control_of(body: &[u8]) -> Result<PlanControl> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PlanControl::default());
    }
    serde_json::from_slice(body).map_err(Error::invalid_json)
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
    let control = control_of(&body)?;
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
    let control = control_of(&body)?;
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
    let control = control_of(&body)?;
    Ok(Json(
        ops::plans::advance(&state, &actor, &path, id, control).await?,
    ))
}

#[derive(Deserialize)]
struct EnvQuery {
    env: String,
}

async fn list_templates(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<EnvQuery>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::templates::list(&state, &actor, &query.env).await?,
    ))
}

async fn create_template(
    State(state): State<AppState>,
    actor: Actor,
    QueryParams(query): QueryParams<EnvQuery>,
    Json(body): Json<NewRolloutTemplate>,
) -> Result<impl IntoResponse> {
    let template = ops::templates::create(&state, &actor, &query.env, body).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

async fn delete_template(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<EnvQuery>,
) -> Result<StatusCode> {
    ops::templates::delete(&state, &actor, &query.env, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_default_template(
    State(state): State<AppState>,
    actor: Actor,
    Path(env): Path<String>,
    Json(body): Json<DefaultTemplate>,
) -> Result<impl IntoResponse> {
    Ok(Json(
        ops::templates::set_default(&state, &actor, &env, body).await?,
    ))
}
